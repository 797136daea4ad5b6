"""kornia.losses bindings whose convention needs code, and the findings recorded against kornia 0.9.0 (kornia.toml
binds the rest). Each finding is confirmed independently in tests/bindings/test_kornia.py.

kornia's softmax focal loss takes one number alpha: 1 - alpha weighs class 0 (the background), alpha every other
class. The catalog's alpha is a (C,) array of class weights; the domain ``background-alpha`` draws it as
[1 - a, a, ..., a] and ``background_alpha`` passes kornia the a it stands for. Two losses outside the catalog need
an adapter too: ``tversky_loss`` has no default alpha and beta, the Lovasz hinge takes (B, H, W) labels.
"""

from __future__ import annotations

from functools import partial
from typing import Any

import numpy as np

from lossguard.harness.kernel.binding import Binding
from lossguard.harness.kernel.model import Example, Finding
from lossguard.implementations.bindings.evidence import not_validated

UPSTREAM = "kornia 0.9.0"


def _one_number(alpha: Any) -> Any:
    """The class weights [1 - a, a, ..., a] (a tensor) as kornia's a: class 1's weight, or 1 - class 0's where
    there is one class; None and a number as they are."""
    if alpha is None or isinstance(alpha, (int, float)):
        return alpha
    weights = [float(w) for w in alpha.reshape(-1)]
    return weights[1] if len(weights) > 1 else 1.0 - weights[0]


def background_alpha(fn: Any, args: dict[str, Any], keywords: dict[str, Any]) -> Any:
    """``fn(input, target, alpha=a, ...)``, the class weights given as kornia's one number a: the function's keyword,
    or the constructed FocalLoss's attribute (set from its constructor's alpha, which it does not check)."""
    if "alpha" in keywords:
        keywords = {**keywords, "alpha": _one_number(keywords["alpha"])}
    elif hasattr(fn, "alpha"):
        fn.alpha = _one_number(fn.alpha)
    return fn(args["input"], args["target"], **keywords)


def fixed_tversky(fn: Any, args: dict[str, Any], keywords: dict[str, Any]) -> Any:
    """``tversky_loss(input, target, alpha, beta, ...)``: its alpha and beta have no default; the free audit fixes
    them at 0.3 and 0.7 (TverskyLoss's binding constructs it with the same)."""
    return fn(args["input"], args["target"], 0.3, 0.7, **keywords)


def one_mask(fn: Any, args: dict[str, Any], keywords: dict[str, Any]) -> Any:
    """``fn(input, target[:, 0])``: the one-channel mask (B, 1, H, W) as the (B, H, W) labels the Lovasz hinge
    takes against its one channel of logits."""
    return fn(args["input"], args["target"][:, 0], **keywords)


_SOFTMAX_FOCAL = {
    "loss": "softmax_focal_loss",
    "params": {"alpha": "alpha", "gamma": "gamma", "reduction": "reduction", "ignore_index": "ignore_index"},
    # 'none' is the (N, C, *) map of per-class terms; 'mean' divides by C times every position, ignored ones included
    "output": {"none": "sum-classes"},
    "variant": {"mean_over": "samples and classes"},
    "domain": ("batched", "background-alpha"),
    "call": background_alpha,
}

_LOVASZ_HINGE = {"like": "dice_loss", "domain": ("hard-targets", "one-channel", "image"), "call": one_mask}

BINDINGS = [
    Binding(target="kornia.losses:focal_loss", name="kornia.focal_loss", **_SOFTMAX_FOCAL),
    Binding(target="kornia.losses:FocalLoss", name="kornia.FocalLoss", **_SOFTMAX_FOCAL),
    Binding(
        target="kornia.losses:tversky_loss",
        name="kornia.tversky_loss",
        like="multiclass_dice_loss",
        params={"smooth": "eps", "ignore_index": "ignore_index"},
        domain=("image",),
        call=fixed_tversky,
    ),
    Binding(target="kornia.losses:lovasz_hinge_loss", name="kornia.lovasz_hinge_loss", **_LOVASZ_HINGE),
    Binding(target="kornia.losses:LovaszHingeLoss", name="kornia.LovaszHingeLoss", **_LOVASZ_HINGE),
]


_not_validated = partial(not_validated, upstream=UPSTREAM)


_LOGITS = Example({"input": np.zeros((1, 2)), "target": np.array([0])}, {"alpha": None, "gamma": 2.0})
_BINARY = Example({"input": np.zeros((1, 2)), "target": np.array([[0.0, 1.0]])}, {"alpha": 0.25, "gamma": 2.0})
_NEGATIVE_GAMMA = "gamma=-1.0: gamma must be non-negative"
_SOFTMAX_GAMMA = _not_validated(
    _NEGATIVE_GAMMA,
    "gamma < 0, with which a sure, right prediction no longer tends to loss 0 ((1 - p_t)^gamma grows)",
    "its Convention block says so: 'a negative gamma [is] not validated'; the catalog's contract requires raising",
    _LOGITS,
)
_BINARY_GAPS = (
    _not_validated(
        "alpha=1.5: alpha must lie in [0, 1]",
        "alpha outside [0, 1], which weighs the negative term by 1 - alpha < 0: a negative loss",
        "alpha is documented as a weighting factor in [0, 1]",
        _BINARY,
    ),
    _not_validated(
        _NEGATIVE_GAMMA,
        "gamma < 0, with which a sure, right prediction no longer tends to loss 0 ((1 - p_t)^gamma grows)",
        "gamma is documented as a focusing parameter >= 0",
        _BINARY,
    ),
)

_ONE_PIXEL = Example({"input": np.zeros((1, 2, 1, 1)), "target": np.zeros((1, 1, 1), dtype=np.int64)}, {})
_DICE_EPS = _not_validated(
    "smooth=-1.0: smooth must be non-negative",
    "eps = -1, which shrinks the Dice ratio's denominator sum p + sum y + eps (to 0 where sum p + sum y = 1: a "
    "division by zero; two classes, one pixel: a loss of 0 for a prediction of 1/2)",
    "eps is documented as a scalar added to the denominator for numerical stability",
    _ONE_PIXEL,
)

FINDINGS: dict[str, tuple[Finding, ...]] = {
    "kornia.dice_loss": (_DICE_EPS,),
    "kornia.DiceLoss": (_DICE_EPS,),
    "kornia.DiceLoss.macro": (_DICE_EPS,),
    "kornia.focal_loss": (_SOFTMAX_GAMMA,),
    "kornia.FocalLoss": (_SOFTMAX_GAMMA,),
    "kornia.binary_focal_loss_with_logits": _BINARY_GAPS,
    "kornia.BinaryFocalLossWithLogits": _BINARY_GAPS,
}
