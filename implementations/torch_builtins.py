"""PyTorch's built-in losses bound to their canonical names, with the findings recorded against them.

Findings are data next to the binding (PyTorch OpInfo keeps its known failures the same way):
``(property, reason, dtypes or None)``. Each is a departure of torch from the canonical
contract that lossguard's properties detect; the property stays strict, the result is ``xfail``
while the finding reproduces and ``xpass`` (failing the run) once torch changes.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

UPSTREAM = f"torch {torch.__version__.split('+')[0]}"

BUILTINS = {
    "mse_loss": F.mse_loss,
    "l1_loss": F.l1_loss,
    "huber_loss": F.huber_loss,
    "smooth_l1_loss": F.smooth_l1_loss,
    "poisson_nll_loss": F.poisson_nll_loss,
    "gaussian_nll_loss": F.gaussian_nll_loss,
    "binary_cross_entropy": F.binary_cross_entropy,
    "binary_cross_entropy_with_logits": F.binary_cross_entropy_with_logits,
    "cross_entropy": F.cross_entropy,
    "nll_loss": F.nll_loss,
    "kl_div": F.kl_div,
    "multi_margin_loss": F.multi_margin_loss,
    "multilabel_soft_margin_loss": F.multilabel_soft_margin_loss,
}


def _broadcasts(**args: list) -> dict:
    """The shape-mismatch finding; the witness is a valid example the property then reshapes."""
    return {
        "property": "invalid_input",
        "reason": "a target whose shape differs from the input's only triggers a UserWarning and is broadcast, "
        "so (N,) against (N, 1) silently computes an N x N loss instead of raising",
        "witness": {"args": args or {"input": [0.5, 1.5], "target": [1.0, 2.0]}},
    }


_ZERO = {"input": [0.0], "target": [0.0]}

# loss -> findings: {property, reason, dtypes (None: all), witness: {args, params} on which it fails}
FINDINGS: dict[str, list[dict]] = {
    "mse_loss": [_broadcasts()],
    "l1_loss": [_broadcasts()],
    "huber_loss": [_broadcasts()],
    "smooth_l1_loss": [_broadcasts()],
    "poisson_nll_loss": [
        _broadcasts(),
        {
            "property": "gradient",
            "reason": "with full=True the Stirling term is computed for every target and masked afterwards "
            "(masked_fill(target <= 1, 0)), so its infinite derivative at target = 0 leaks into the target "
            "gradient as 0 * inf = NaN (the exact gradient at input = 0 is -input = 0)",
            "witness": {"args": _ZERO, "params": {"log_input": True, "full": True}},
        },
        {
            "property": "stability",
            "reason": "NaN target gradient at target = 0 with full=True (see its gradient finding)",
            "witness": {"args": _ZERO, "params": {"log_input": True, "full": True}},
        },
    ],
    "gaussian_nll_loss": [
        _broadcasts(input=[0.5, 1.5], target=[1.0, 2.0], var=[1.0, 1.0]),
        {
            "property": "agreement",
            "reason": "float16: (input - target)^2 / var is formed before halving and overflows to inf where "
            "the exact loss is representable",
            "dtypes": ["float16"],
            "witness": {"args": {"input": [22.0], "target": [-4.0], "var": [0.01000213623046875]}},
        },
        {
            "property": "gradient",
            "reason": "float16: a var below eps is clamped to eps = 1e-6, a subnormal number in float16, and the "
            "gradient is NaN",
            "dtypes": ["float16"],
            "witness": {"args": {**_ZERO, "var": [0.0]}},
        },
    ],
    "binary_cross_entropy": [
        {
            "property": "gradient",
            "reason": "the backward computes w (p - y) / max(p (1 - p), 1e-12) instead of the derivative of the "
            "clamped loss: 0 instead of 1 / (1 - p) at p = 0, wrong by the clamp for p within 1e-12 of 0 or 1, "
            "and in float16 the 1e-12 underflows to give 0 / 0 = NaN",
            "witness": {"args": _ZERO},
        },
        {
            "property": "stability",
            "reason": "the target gradient log(1 - p) - log(p) is computed without the -100 clamp of the value: "
            "infinite at p = 0 or 1 where the loss's derivative is +-100",
            "witness": {"args": _ZERO},
        },
    ],
    "kl_div": [_broadcasts(input=[[-0.5, -1.0]], target=[[0.6, 0.4]])],
    "multi_margin_loss": [
        {
            "property": "invalid_input",
            "reason": "a negative margin is accepted and silently computes a loss",
            "witness": {"args": {"input": [[0.0, 0.0]], "target": [0]}},
        },
    ],
    "multilabel_soft_margin_loss": [_broadcasts(input=[[0.0, 1.0]], target=[[0.0, 1.0]])],
}
