"""The findings recorded against torchvision's losses (torchvision.toml binds them), each confirmed independently in
tests/bindings/test_torchvision.py.

``FINDINGS``: binding label -> findings. Each finding's domain is where its departure shows, computed here in
float64 NumPy (torch is imported lazily, only to form ``1 - p_t`` as torchvision forms it in the dtype).
"""

from __future__ import annotations

from functools import partial

import numpy as np

from lossguard.harness.kernel import tolerance
from lossguard.harness.kernel.model import Example, Finding
from lossguard.implementations.bindings.evidence import NO_VALIDATION, float_arrays, not_validated

UPSTREAM = "torchvision 0.29.1"
DEFAULT_EPS = 1e-7  # the eps complete_box_iou_loss passes to nothing: _diou_iou_loss's default


# --- sigmoid_focal_loss: 1 - p_t formed by subtraction --------------------------------------------------------


def _one_minus_p_t_lost(example: Example, dtype: str) -> bool:
    """Some finite element whose 1 - p_t, formed as torchvision forms it in the dtype (p = sigmoid(z),
    p_t = p y + (1 - p)(1 - y), then 1 - p_t), is 0; the exact 1 - p_t = (1 - y) p + y (1 - p) is positive for
    every finite z and y in [0, 1]."""
    import torch

    from lossguard.harness.kernel.frameworks.torch_binding import TORCH_DTYPES

    z = np.asarray(example.args["input"], dtype=np.float64)
    y = np.asarray(example.args["target"], dtype=np.float64)
    zt, yt = (torch.tensor(a, dtype=TORCH_DTYPES[dtype]) for a in (z, y))
    p = torch.sigmoid(zt)
    formed = (1 - (p * yt + (1 - p) * (1 - yt))).double().numpy()
    return bool(np.any((formed == 0.0) & np.isfinite(z)))


def _one_minus_p_t_lost_gamma_below_one(example: Example, dtype: str) -> bool:
    return 0.0 < example.params.get("gamma", 2.0) < 1.0 and _one_minus_p_t_lost(example, dtype)


_SATURATED = "where p = sigmoid(input) rounds to y (1 - p_t formed as 1 - p_t is 0; the exact 1 - p_t is positive)"
_NAN_GRADIENT = (
    "1 - p_t is formed by subtraction, 1 - (p y + (1 - p)(1 - y)), and is 0 where p = sigmoid(input) rounds to the "
    "hard target (z >= 37 for y = 1 in float64, z >= 17 in float32): for 0 < gamma < 1 the derivative of "
    "(1 - p_t)^gamma there is gamma 0^(gamma - 1) = inf, times 0 in the chain rule, so d loss / d input is NaN where "
    "the exact gradient is finite (for y = 1, -(1 - p)^gamma (gamma p softplus(-z) + 1 - p): -1.3e-26 at z = 40, "
    "gamma = 0.5)"
)


def _focal_nan_gradient(prop: str) -> Finding:
    return Finding(
        prop,
        _NAN_GRADIENT,
        UPSTREAM,
        witness=Example(float_arrays(input=[40.0], target=[1.0]), {"alpha": None, "gamma": 0.5, "reduction": "sum"}),
        domain=_one_minus_p_t_lost_gamma_below_one,
        where="0 < gamma < 1 and some element " + _SATURATED,
    )


_ZERO_VALUE = (
    "1 - p_t formed by subtraction is 0 where p = sigmoid(input) rounds to the hard target, so the loss "
    "(1 - p_t)^gamma BCE is 0 there for every gamma > 0: for small gamma the exact loss is nearly the BCE itself "
    "(input 80, target 1, gamma 2^-126: exact 1.8e-35, torchvision 0, a relative error of 1), where forming "
    "1 - p_t as sigmoid(-input) keeps it"
)

# --- the box losses -------------------------------------------------------------------------------------------

_BOX_DOCS = "the docstring only says boxes are 'expected' with x1 < x2, y1 < y2"
_ONE_BOX = float_arrays(boxes1=[[0.0, 0.0, 1.0, 1.0]], boxes2=[[0.0, 0.0, 1.0, 1.0]])


_not_validated = partial(
    not_validated, witness=Example(_ONE_BOX, {"eps": 1e-7, "reduction": "none"}), upstream=UPSTREAM
)


_NEGATIVE_EPS = _not_validated(
    "eps=-1.0: eps must be > 0", "eps = -1 (a negative denominator guard: 1 / (U - 1))", "eps is documented as small"
)
_INVERTED_BOXES = (
    _not_validated("a box of boxes1 with x2 = x1 - 1 (x2 < x1)", "a box with x2 < x1 (a negative width)", _BOX_DOCS),
    _not_validated("a box of boxes2 with y2 = y1 - 1 (y2 < y1)", "a box with y2 < y1 (a negative height)", _BOX_DOCS),
)


def _diou_part(example: Example, eps: float) -> np.ndarray:
    """-IoU + rho^2 / c^2 per row at ``eps``: the part of CIoU in which torchvision uses 1e-7 instead of eps."""
    b1, b2 = (np.asarray(example.args[k], dtype=np.float64) for k in ("boxes1", "boxes2"))
    w1, h1, w2, h2 = b1[:, 2] - b1[:, 0], b1[:, 3] - b1[:, 1], b2[:, 2] - b2[:, 0], b2[:, 3] - b2[:, 1]
    iw = np.maximum(0.0, np.minimum(b1[:, 2], b2[:, 2]) - np.maximum(b1[:, 0], b2[:, 0]))
    ih = np.maximum(0.0, np.minimum(b1[:, 3], b2[:, 3]) - np.maximum(b1[:, 1], b2[:, 1]))
    inter = iw * ih
    union = w1 * h1 + w2 * h2 - inter
    cw = np.maximum(b1[:, 2], b2[:, 2]) - np.minimum(b1[:, 0], b2[:, 0])
    ch = np.maximum(b1[:, 3], b2[:, 3]) - np.minimum(b1[:, 1], b2[:, 1])
    rho2 = ((b1[:, 0] + b1[:, 2]) / 2 - (b2[:, 0] + b2[:, 2]) / 2) ** 2
    rho2 = rho2 + ((b1[:, 1] + b1[:, 3]) / 2 - (b2[:, 1] + b2[:, 3]) / 2) ** 2
    return -inter / (union + eps) + rho2 / (cw**2 + ch**2 + eps)


def _eps_matters(spread: float):
    """The domain of the ignored eps: some row whose IoU and diagonal terms change by more than the dtype's
    roundoff between eps and 1e-7, each widened by the factor ``spread`` (box_scale_invariance also calls the loss
    at eps / s^2, s = 2^k, |k| <= 4, which its failing example does not show: ``spread`` 256 covers it)."""

    def domain(example: Example, dtype: str) -> bool:
        eps = float(example.params.get("eps", DEFAULT_EPS))
        low, high = min(eps, DEFAULT_EPS) / spread, max(eps, DEFAULT_EPS) * spread
        change = np.abs(_diou_part(example, low) - _diou_part(example, high))
        return bool(np.any(change > tolerance.roundoff(dtype)))

    return domain


_IGNORED_EPS = (
    "eps is not passed on to _diou_iou_loss (ciou_loss.py calls _diou_iou_loss(boxes1, boxes2)), so 1 - IoU and "
    "rho^2 / c^2 use its default 1e-7 whatever eps is given; only alpha's denominator uses eps (identical unit "
    "boxes, eps = 1e-3: 1e-7 instead of eps / (area + eps) = 9.99e-4)"
)


# a small overlapping pair (no kink: every gradient is compared; IoU 0.33 at eps 1e-7, 0.06 at 0.5), and a pair of
# small identical boxes
_OVERLAPPING = float_arrays(boxes1=[[0.0, 0.0, 0.25, 0.25]], boxes2=[[0.0625, 0.0625, 0.3125, 0.375]])
_SMALL = float_arrays(boxes1=[[0.0, 0.0, 0.0625, 0.0625]], boxes2=[[0.0, 0.0, 0.0625, 0.0625]])


def _ignored_eps(prop: str, boxes: dict[str, np.ndarray], eps: float, spread: float = 1.0) -> Finding:
    where = "some row whose IoU or diagonal term moves by more than the dtype's roundoff between eps and 1e-7"
    if spread != 1.0:
        where += f" (the range widened by {spread:g} each way: the property also calls the loss at eps / s^2)"
    return Finding(
        prop,
        _IGNORED_EPS,
        UPSTREAM,
        witness=Example(boxes, {"eps": eps, "reduction": "none"}),
        domain=_eps_matters(spread),
        where=where,
    )


FINDINGS: dict[str, tuple[Finding, ...]] = {
    "torchvision.sigmoid_focal_loss": (
        _focal_nan_gradient("gradient"),
        _focal_nan_gradient("stability"),
        Finding(
            "zero_at_perfect",
            _ZERO_VALUE,
            UPSTREAM,
            dtypes=("float64", "float32", "bfloat16"),
            witness=Example(float_arrays(input=[80.0], target=[1.0]), {"alpha": None, "gamma": 2.0**-126}),
            domain=_one_minus_p_t_lost,
            where="some element " + _SATURATED,
        ),
        Finding(
            "invalid_input",
            NO_VALIDATION.format(
                what="gamma = -1, with which a sure, right prediction tends to loss alpha_t, not 0 ((1 - p_t)^-1 "
                "grows as fast as BCE vanishes)",
                docs="only alpha is checked; gamma is documented as the exponent of the modulating factor",
            ),
            UPSTREAM,
            witness=Example(
                float_arrays(input=[0.5], target=[1.0]), {"alpha": 0.25, "gamma": 2.0, "reduction": "none"}
            ),
            case="gamma=-1.0: gamma must be non-negative",
        ),
    ),
    "torchvision.generalized_box_iou_loss": (_NEGATIVE_EPS, *_INVERTED_BOXES),
    "torchvision.distance_box_iou_loss": (_NEGATIVE_EPS, *_INVERTED_BOXES),
    "torchvision.complete_box_iou_loss": (
        _NEGATIVE_EPS,
        _ignored_eps("agreement", _OVERLAPPING, 0.5),
        _ignored_eps("gradient", _OVERLAPPING, 0.5),
        _ignored_eps("identical_boxes", _SMALL, 1e-3),
        _ignored_eps("box_loss_range", _SMALL, 1e-3),
        _ignored_eps("box_scale_invariance", _SMALL, 1e-7, spread=256.0),
    ),
}
