"""The findings recorded against timm.loss's shipped losses (bindings: timm.toml; none needs code).

Several timm losses compute in float32 whatever the input dtype (``x = x.float()``, or ``F.log_softmax(x.float())``):
intended for half-precision inputs (AsymmetricLossMultiLabel's comment: "low precision (fp16) probabilities
underflow the eps clamp"; their bindings declare float32 outputs for float16 and bfloat16), it also rounds a float64
input to float32 and returns float32. Each was reproduced by lossguard and confirmed independently in float64
NumPy (tests/bindings/test_timm.py).
"""

from __future__ import annotations

import numpy as np

from lossguard.harness.kernel.model import Example, Finding
from lossguard.implementations.bindings.evidence import float_arrays

UPSTREAM = "timm 1.0.31"

_DOWNCAST = (
    "computes in float32 whatever the input dtype ({where}): a float64 input is rounded to float32, its loss "
    "returned in float32 and its gradient float32-accurate (relative errors near 1e-7 where float64 promises 1e-16)"
)


def _float64(example: Example, dtype: str) -> bool:
    """Every float64 call: the departure is the dtype itself (the finding's ``dtypes`` scope it to float64)."""
    return dtype == "float64"


def _downcast(where: str, witness: Example) -> tuple[Finding, ...]:
    """The float32 computation's finding, claimed on the output dtype: float64 inputs come back float32. (The
    gradient against the loss's own float64 differences does not show it: gradcheck takes the precision of the
    loss's evaluations from the dtype it returns.)"""
    return (
        Finding(
            "dtype",
            _DOWNCAST.format(where=where),
            UPSTREAM,
            dtypes=("float64",),
            witness=witness,
            domain=_float64,
            where="every float64 input (the whole computation is in float32)",
        ),
    )


_CLASS_INDEX = Example({"input": np.zeros((1, 2)), "target": np.array([0])}, {})
_MULTI_LABEL = Example(float_arrays(input=[[0.0]], target=[[0.0]]), {})

FINDINGS: dict[str, tuple[Finding, ...]] = {
    "timm.PolyCrossEntropy": _downcast("F.log_softmax(x.float())", _CLASS_INDEX),
    "timm.PolyBinaryCrossEntropy": _downcast("x = x.float()", _MULTI_LABEL),
    "timm.AsymmetricLossMultiLabel": _downcast("x = x.float()", _MULTI_LABEL),
    "timm.TwoWayLoss": _downcast("x = x.float()", _MULTI_LABEL),
    "timm.ZlprLoss": _downcast("x = x.float()", _MULTI_LABEL),
}
