"""segmentation_models_pytorch's losses whose convention needs code, and the findings recorded against it (0.6.0).

The binary focal loss flattens its 'none' output to (N * C * ...,): ``unflattened`` gives it the input's shape
back. ``FINDINGS``: binding label -> findings, each reproduced by lossguard and confirmed independently (float64
NumPy) in tests/bindings/test_smp.py; their domains are computed here in float64 NumPy (torch is imported lazily,
only to form ``1 - pt`` in the dtype as smp forms it).
"""

from __future__ import annotations

from functools import partial
from typing import Any

import numpy as np

from lossguard.harness.kernel.binding import Binding
from lossguard.harness.kernel.model import Example, Finding
from lossguard.implementations.bindings.evidence import float_arrays, half_in_float32, not_validated

UPSTREAM = "segmentation-models-pytorch 0.6.0"


def unflattened(module: Any, args: dict[str, Any], keywords: dict[str, Any]) -> Any:
    """``module(input, target)`` with a 'none' output, which binary mode flattens to (N * C * ...,), given the
    input's shape back (the same elements in the same order: a reshape)."""
    value = module(args["input"], args["target"], **keywords)
    return value.reshape(args["input"].shape) if value.dim() == 1 else value


BINDINGS = [
    Binding(
        target="segmentation_models_pytorch.losses:FocalLoss",
        name="smp.FocalLoss.binary",
        loss="sigmoid_focal_loss",
        init={"mode": "binary"},
        params={"alpha": "alpha", "gamma": "gamma", "reduction": "reduction"},
        domain=("hard-targets",),
        call=unflattened,
    ),
]


# --- validation gaps -------------------------------------------------------------------------------------------

_RESHAPED = (
    "a target of another shape than the input (an extra trailing axis of size 1)",
    "binary and multilabel modes reshape both to (N, C, -1) (binary focal: to (-1,)) before comparing, so any "
    "target with as many elements passes; the documented shapes are (N, C, H, W) or (N, H, W)",
)
_PROBABILITY = ("a prediction of 1.5 with from_logits=False", "from_logits=False documents [0..1] probabilities")
_SMOOTH = ("smooth = -1 (the score's denominator can reach 0)", "smooth is documented as a smoothness constant")
_SHAPE = "target shape differs from input shape (broadcastable)"
_PROBABILITY_CASE = "an input probability outside [0, 1] (1.5) with from_logits=False"
_SMOOTH_CASE = "smooth=-1.0: smooth must be non-negative"
_TARGET_CASE = "target (N, *) with a trailing extra dim of size 1"


_not_validated = partial(not_validated, upstream=UPSTREAM)


def _overlap_gaps(params: dict[str, Any]) -> tuple[Finding, ...]:
    witness = Example(float_arrays(input=[[0.25]], target=[[1.0]]), {"smooth": 1.0, "from_logits": False, **params})
    return (
        _not_validated(_SHAPE, *_RESHAPED, witness),
        _not_validated(_PROBABILITY_CASE, *_PROBABILITY, witness),
        _not_validated(_SMOOTH_CASE, *_SMOOTH, witness),
    )


_CLASSES = Example({"input": np.zeros((1, 2)), "target": np.zeros(1, dtype=np.int64)}, {"smooth": 1.0})
_MULTICLASS_GAPS = (
    _not_validated(
        _TARGET_CASE,
        "a class-index target with an extra trailing axis",
        "multiclass mode reshapes the target to (N, -1)",
        _CLASSES,
    ),
    _not_validated(_SMOOTH_CASE, *_SMOOTH, _CLASSES),
)


# --- FocalLoss -------------------------------------------------------------------------------------------------


def _one_minus_pt_lost(example: Example, dtype: str) -> bool:
    """Some element whose 1 - pt, formed as smp forms it in the dtype (pt = exp(-BCE-with-logits), then 1 - pt),
    is 0, where the exact 1 - p_t = (1 - y) sigmoid(z) + y sigmoid(-z) of a hard target and a finite logit is not
    (even where float64 rounds it to 0: z = 710)."""
    import torch
    import torch.nn.functional as F

    from lossguard.harness.kernel.frameworks.torch_binding import TORCH_DTYPES

    z = np.asarray(example.args["input"], dtype=np.float64)
    y = np.asarray(example.args["target"], dtype=np.float64)
    zt, yt = (torch.tensor(a, dtype=TORCH_DTYPES[dtype]) for a in (z, y))
    formed = (1.0 - torch.exp(-F.binary_cross_entropy_with_logits(zt, yt, reduction="none"))).double().numpy()
    return bool(np.any(formed == 0.0))


def _one_minus_pt_lost_gamma_below_one(example: Example, dtype: str) -> bool:
    return 0.0 < example.params.get("gamma", 2.0) < 1.0 and _one_minus_pt_lost(example, dtype)


_SATURATED = "whose 1 - pt, formed as 1 - exp(-BCE) in the dtype, is 0"
_NAN_GRADIENT = (
    "1 - pt is formed by subtraction, 1 - exp(-BCE-with-logits), and is 0 wherever the BCE rounds to 0 or pt to 1 "
    "(a confident right prediction: z = 38 for y = 1 in float64, z = -15 for y = 0 in float32): for 0 < gamma < 1 "
    "the derivative of (1 - pt)^gamma there is gamma 0^(gamma - 1) = inf, times 0 in the chain rule, so "
    "d loss / d input is NaN where the exact gradient is finite (-2.6e-25 at z = 38, y = 1, gamma = 0.5)"
)
_ZERO_VALUE = (
    "1 - pt formed as 1 - exp(-BCE) is 0 where the BCE is below the dtype's roundoff, so the loss (1 - pt)^gamma BCE "
    "is 0 there for every gamma > 0: for small gamma the exact loss is nearly the BCE itself (input 80, target 1, "
    "gamma 2^-126: exact 1.8e-35, smp 0, a relative error of 1); -expm1(-BCE) would keep it"
)


def _focal_nan_gradient(prop: str, witness: Example) -> Finding:
    return Finding(
        prop,
        _NAN_GRADIENT,
        UPSTREAM,
        witness=witness,
        domain=_one_minus_pt_lost_gamma_below_one,
        where="0 < gamma < 1 and some element " + _SATURATED,
    )


def _focal_zero_value(witness: Example) -> Finding:
    return Finding(
        "zero_at_perfect",
        _ZERO_VALUE,
        UPSTREAM,
        dtypes=("float64", "float32", "bfloat16"),
        witness=witness,
        domain=_one_minus_pt_lost,
        where="some element " + _SATURATED,
    )


def _focal_gaps(witness: Example) -> tuple[Finding, ...]:
    docs = "alpha is documented as a prior probability, gamma as the focal power"
    return (
        _not_validated("alpha=1.5: alpha must lie in [0, 1]", "alpha = 1.5", docs, witness),
        _not_validated("gamma=-1.0: gamma must be non-negative", "gamma = -1", docs, witness),
    )


def _none_reduction(example: Example, dtype: str) -> bool:
    return example.params.get("reduction", "mean") == "none"


def _sum_over_classes(example: Example, dtype: str) -> bool:
    """reduction='sum' with more than one class (smp returns the sum divided by C)."""
    x = np.asarray(example.args["input"])
    return example.params.get("reduction", "mean") == "sum" and x.ndim >= 2 and x.shape[1] > 1


_NONE = (
    "multilabel mode computes one focal loss per class and returns class_losses.mean() whatever the reduction: "
    "reduction='none' gives that scalar (the mean over every element) instead of the (N, C, *) element-wise losses"
)
_SUM = (
    "multilabel mode averages the per-class losses (class_losses.mean()), so reduction='sum' returns the sum "
    "divided by the number of classes C (2 zero logits, targets 0, gamma 0: log 2 = 0.693, not 2 log 2)"
)


def _multilabel_reduction(prop: str, kind: str) -> Finding:
    zeros = float_arrays(input=[[0.0, 0.0]], target=[[0.0, 0.0]])
    if prop == "batch":  # the batch property judges a batch of two rows or more (one row: no example of it)
        zeros = float_arrays(input=[[0.0, 0.0], [0.0, 0.0]], target=[[0.0, 0.0], [0.0, 0.0]])
    if kind == "none":
        return Finding(
            prop,
            _NONE,
            UPSTREAM,
            witness=Example(zeros, {"alpha": None, "gamma": 0.0, "reduction": "none"}),
            domain=_none_reduction,
            where="reduction='none'",
        )
    return Finding(
        prop,
        _SUM,
        UPSTREAM,
        witness=Example(zeros, {"alpha": None, "gamma": 0.0, "reduction": "sum"}),
        domain=_sum_over_classes,
        where="reduction='sum' with C > 1 classes",
    )


_BINARY_WITNESS = Example(float_arrays(input=[0.5], target=[1.0]), {"alpha": None, "gamma": 2.0, "reduction": "none"})
_MULTILABEL_WITNESS = Example(
    float_arrays(input=[[0.5]], target=[[1.0]]), {"alpha": None, "gamma": 2.0, "reduction": "mean"}
)
_NAN_WITNESS = Example(float_arrays(input=[38.0], target=[1.0]), {"alpha": None, "gamma": 0.5, "reduction": "sum"})
_ZERO_WITNESS = Example(float_arrays(input=[80.0], target=[1.0]), {"alpha": None, "gamma": 2.0**-126})
_NAN_WITNESS_2D = Example(
    float_arrays(input=[[38.0]], target=[[1.0]]), {"alpha": None, "gamma": 0.5, "reduction": "sum"}
)


# --- SoftCrossEntropyLoss --------------------------------------------------------------------------------------


def _mean_with_ignored(example: Example, dtype: str) -> bool:
    target = np.asarray(example.args["target"])
    ignore = example.params.get("ignore_index", -100)
    return example.params.get("reduction", "mean") == "mean" and bool(np.any(target == ignore))


_IGNORED_MEAN = (
    "documented as a 'drop-in replacement for torch.nn.CrossEntropyLoss', but reduction='mean' divides by every "
    "element, ignored ones included (their loss masked to 0, then .mean()), where torch divides by the number of "
    "non-ignored targets: two rows, one ignored, give half torch's loss (and half its gradient), and every row "
    "ignored gives 0 where torch gives NaN (0 / 0)"
)


def _ignored_mean(prop: str) -> Finding:
    return Finding(
        prop,
        _IGNORED_MEAN,
        UPSTREAM,
        witness=Example(
            {"input": np.array([[0.0, 0.0], [0.0, 0.0]]), "target": np.array([0, -100])},
            {"ignore_index": -100, "reduction": "mean", "label_smoothing": 0.0},
        ),
        domain=_mean_with_ignored,
        where="reduction='mean' with some target equal to ignore_index",
    )


# --- LovaszLoss ---------------------------------------------------------------------------------------------

_LOVASZ_FLOAT32 = (
    "the Lovasz extension's gradient is built in float32 whatever the input dtype (_lovasz_grad: "
    "gt_sorted.float().cumsum(0); binary mode's signs: 2 * labels.float() - 1), then torch.dot(errors_sorted, "
    "grad) needs one dtype: every {raised} input raises 'dot : expected both vectors to have same dtype'"
)
_LOVASZ_PROMOTED = (
    "binary and multilabel modes form the errors as 1 - logits * (2 * labels.float() - 1): a float16 or bfloat16 "
    "input is promoted to float32 by the float32 signs, and the loss returned in float32"
)
_LOVASZ_RAISES = r"RuntimeError: dot : expected both vectors to have same dtype"
_LOVASZ_WITNESS = Example(float_arrays(input=[[[[0.5]]]], target=[[[[1.0]]]]), {})
_LOVASZ_CLASSES = Example({"input": np.array([[[[0.5]], [[0.0]]]]), "target": np.array([[[0]]])}, {})
_RAISING_PROPERTIES = ("finite", "gradcheck", "immutability", "state", "dtype", "determinism")


def _lovasz_findings(multiclass: bool) -> tuple[Finding, ...]:
    """Every reference-free property raises on float64 inputs (multiclass: on half-precision ones too, and
    low_precision with them); binary and multilabel return float32 for half-precision inputs."""
    raised = ("float64", "float16", "bfloat16") if multiclass else ("float64",)
    reason = _LOVASZ_FLOAT32.format(raised=" and ".join(raised))
    witness = _LOVASZ_CLASSES if multiclass else _LOVASZ_WITNESS
    found = [
        Finding(prop, reason, UPSTREAM, dtypes=raised, witness=witness, raises=_LOVASZ_RAISES)
        for prop in _RAISING_PROPERTIES
    ]
    if multiclass:
        found.append(
            Finding("low_precision", reason, UPSTREAM, dtypes=raised[1:], witness=witness, raises=_LOVASZ_RAISES)
        )
    else:
        found.append(half_in_float32(_LOVASZ_PROMOTED, witness, UPSTREAM))
    return tuple(found)


# --- MCCLoss: float16 underflow of the denominator's product --------------------------------------------------


def _mcc_product_out_of_range(example: Example, dtype: str) -> bool:
    """float16, and some partial product of (tp + fp)(tp + fn)(tn + fp)(tn + fn), formed as smp forms it in float16
    (each sum over every element plus eps = 1e-5, multiplied left to right), outside float16's normal range: below
    2^-14 (0, or a subnormal of few significant bits) or above 65504 (inf)."""
    if dtype != "float16":
        return False
    import torch

    p, t = (
        torch.tensor(np.asarray(example.args[k], dtype=np.float64), dtype=torch.float16) for k in ("input", "target")
    )
    tp, tn, fp, fn = (torch.sum(v) + 1e-5 for v in (p * t, (1 - p) * (1 - t), p * (1 - t), (1 - p) * t))
    first = torch.add(tp, fp) * torch.add(tp, fn)
    second = first * torch.add(tn, fp)
    products = (first, second, second * torch.add(tn, fn))
    return any(not 2.0**-14 <= float(product) <= 65504.0 for product in products)


_MCC_DENOMINATOR = (
    "float16: mcc.py:41-46 multiplies the four eps-smoothed sums (eps = 1e-5, mcc.py:35-38) before the square root, "
    "so the product's range is the square of the denominator's, beyond float16's. An empty mask and a near-empty "
    "prediction give (tp + fp)(tp + fn) <= 4e-10, which underflows (smallest subnormal 6e-8) to 0: MCC = numerator "
    "/ 0 = inf and the loss is -inf (gradients NaN) where the exact loss lies in [0, 2] (0.50001 at one pixel, p = "
    "0, target 0); a product that underflows to a subnormal (3 x 3 ones against an empty mask: 3.2e-8 -> 6e-8) "
    "makes the square root's derivative 1 / (2 sqrt) overflow; and one above 65504 (100 ones against 25 ones: "
    "100 x 25 x 75 = 187500) is inf, so the loss is 1 and its gradient 0 x inf = NaN (exact 1.00026 and 19.4)"
)


def _mcc_denominator(prop: str) -> Finding:
    return Finding(
        prop,
        _MCC_DENOMINATOR,
        UPSTREAM,
        dtypes=("float16",),
        witness=Example(float_arrays(input=[[0.0]], target=[[0.0]]), {}),
        domain=_mcc_product_out_of_range,
        where="float16, with a partial product of (tp + fp)(tp + fn)(tn + fp)(tn + fn), formed in float16, below "
        "2^-14 (0 or subnormal) or above 65504 (inf)",
    )


FINDINGS: dict[str, tuple[Finding, ...]] = {
    "smp.LovaszLoss.binary": _lovasz_findings(multiclass=False),
    "smp.LovaszLoss.multilabel": _lovasz_findings(multiclass=False),
    "smp.LovaszLoss.multiclass": _lovasz_findings(multiclass=True),
    **{
        f"smp.{loss}.{mode}": _overlap_gaps(params)
        for loss, params in (("DiceLoss", {}), ("JaccardLoss", {}), ("TverskyLoss", {"alpha": 0.5, "beta": 0.5}))
        for mode in ("binary", "multilabel")
    },
    "smp.DiceLoss.multiclass": _MULTICLASS_GAPS,
    "smp.FocalLoss.binary": (
        _focal_nan_gradient("gradient", _NAN_WITNESS),
        _focal_nan_gradient("stability", _NAN_WITNESS),
        _focal_zero_value(_ZERO_WITNESS),
        _not_validated(_SHAPE, *_RESHAPED, _BINARY_WITNESS),
        *_focal_gaps(_BINARY_WITNESS),
    ),
    "smp.FocalLoss.multilabel": (
        *(
            _multilabel_reduction(prop, "none")
            for prop in (
                "agreement",
                "gradient",
                "reduction",
                "batch",
                "stability",
                "non_negative",
                "focal_identities",
                "zero_at_perfect",
            )
        ),
        # reduction and zero_at_perfect judge 'none' first: the 'none' finding is what they show
        *(_multilabel_reduction(prop, "sum") for prop in ("agreement", "gradient")),
        _focal_nan_gradient("gradient", _NAN_WITNESS_2D),
        _focal_nan_gradient("stability", _NAN_WITNESS_2D),
        *_focal_gaps(_MULTILABEL_WITNESS),
    ),
    "smp.MCCLoss": (_mcc_denominator("finite"), _mcc_denominator("low_precision")),
    "smp.SoftCrossEntropyLoss": tuple(_ignored_mean(prop) for prop in ("agreement", "gradient", "reduction")),
}
