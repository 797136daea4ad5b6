"""lossguard's own PyTorch implementations of the segmentation losses.

Input ``(N, C, *)``; ``p = sigmoid(input)`` when ``from_logits``. Sums run over the spatial dims for
each (sample, channel), and over the batch too with ``batch=True``; ``reduction`` acts on the
resulting ``(N, C)`` (or ``(C,)``) values. Every overlap loss is computed in the cancellation-free
Tversky form ``(alpha FP + beta FN) / (TP + alpha FP + beta FN + smooth)`` with TP = sum(p y),
FP = sum(p (1 - y)), FN = sum((1 - p) y) and ``1 - p = sigmoid(-z)`` (see ``lossguard.reference.segmentation`` for
the algebra: Dice(s) = Tversky(1/2, 1/2, s/2), Jaccard(s) = Tversky(1, 1, s)), so values are accurate
relative to themselves, also near 0, and finite on empty masks for every smooth > 0. Vectorised,
device-agnostic, computed in the input's dtype.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F

from ._checks import (
    ClassIndexError,
    Reduction,
    check_class_indices,
    check_floating_tensor,
    check_integer_tensor,
    check_nonnegative,
    check_same_shape,
    fmt_shape,
    reduce,
    working_dtype,
)

__all__ = [
    "bce_dice_loss",
    "boundary_loss",
    "ce_dice_loss",
    "dice_loss",
    "jaccard_loss",
    "multiclass_dice_loss",
    "tversky_loss",
]


def _spatial_input(input: object, fn: str) -> torch.Tensor:
    x = check_floating_tensor(input, fn, "input")
    if x.dim() < 2:
        raise ValueError(f"{fn}: input must be (N, C, *), got shape {fmt_shape(x.shape)}")
    return x


def _probabilities(x: torch.Tensor, from_logits: bool, fn: str) -> tuple[torch.Tensor, torch.Tensor]:
    """(p, 1 - p): (sigmoid(z), sigmoid(-z)) from logits, else the probabilities (checked to lie in [0, 1])."""
    if from_logits:
        return torch.sigmoid(x), torch.sigmoid(-x)
    if bool(((x < 0) | (x > 1) | x.isnan()).any()):
        raise ValueError(f"{fn}: input must hold probabilities in [0, 1] when from_logits=False")
    return x, 1 - x


def _tversky(
    p: torch.Tensor, q: torch.Tensor, y: torch.Tensor, alpha: float, beta: float, smooth: float, batch: bool
) -> torch.Tensor:
    """(alpha FP + beta FN) / (TP + alpha FP + beta FN + smooth) per (sample, channel), or per channel."""
    dims = ((0,) if batch else ()) + tuple(range(2, p.dim()))
    tp = (p * y).sum(dim=dims) if dims else p * y
    fp = (p * (1 - y)).sum(dim=dims) if dims else p * (1 - y)
    fn = (q * y).sum(dim=dims) if dims else q * y
    a = alpha * fp + beta * fn
    return a / (tp + a + smooth)


def _binary_overlap(input, target, alpha, beta, smooth, from_logits, batch, reduction, fn) -> torch.Tensor:
    x = _spatial_input(input, fn)
    check_same_shape(x, target, fn)
    smooth = check_nonnegative(smooth, fn, "smooth")
    alpha = check_nonnegative(alpha, fn, "alpha")
    beta = check_nonnegative(beta, fn, "beta")
    work = working_dtype(x.dtype)  # in float16 the squared denominator of the gradient underflows
    p, q = _probabilities(x.to(work), from_logits, fn)
    return reduce(_tversky(p, q, target.to(work), alpha, beta, smooth, batch), reduction, fn).to(x.dtype)


def dice_loss(
    input: torch.Tensor,
    target: torch.Tensor,
    smooth: float = 1.0,
    from_logits: bool = True,
    batch: bool = False,
    reduction: Reduction = "mean",
) -> torch.Tensor:
    """Soft Dice loss 1 - (2 sum(p y) + smooth) / (sum p + sum y + smooth) (Milletari et al. 2016), as
    (FP + FN) / (2 TP + FP + FN + smooth); smooth >= 0; 'none' gives (N, C), or (C,) with ``batch``."""
    fn = "dice_loss"
    check_nonnegative(smooth, fn, "smooth")
    return _binary_overlap(input, target, 0.5, 0.5, 0.5 * smooth, from_logits, batch, reduction, fn)


def jaccard_loss(
    input: torch.Tensor,
    target: torch.Tensor,
    smooth: float = 1.0,
    from_logits: bool = True,
    batch: bool = False,
    reduction: Reduction = "mean",
) -> torch.Tensor:
    """Soft Jaccard (IoU) loss 1 - (sum(p y) + smooth) / (sum p + sum y - sum(p y) + smooth), as
    (FP + FN) / (TP + FP + FN + smooth) (Rahman & Wang 2016); smooth >= 0."""
    return _binary_overlap(input, target, 1.0, 1.0, smooth, from_logits, batch, reduction, "jaccard_loss")


def tversky_loss(
    input: torch.Tensor,
    target: torch.Tensor,
    alpha: float = 0.5,
    beta: float = 0.5,
    smooth: float = 1.0,
    from_logits: bool = True,
    batch: bool = False,
    reduction: Reduction = "mean",
) -> torch.Tensor:
    """Tversky loss 1 - (TP + smooth) / (TP + alpha FP + beta FN + smooth) (Salehi et al. 2017), as
    (alpha FP + beta FN) / (TP + alpha FP + beta FN + smooth); alpha, beta, smooth >= 0."""
    return _binary_overlap(input, target, alpha, beta, smooth, from_logits, batch, reduction, "tversky_loss")


def _softmax_parts(input: object, target: object, ignore_index: int | None, fn: str):
    """(p, 1 - p, one-hot y), all zero at ignored pixels, from (N, C, *) logits and (N, *) indices, in the
    working dtype (at least float32).

    p = exp(z - max) / sum (softmax, accurate to u (|z - max| + C + 3) relative); 1 - p is the sum of the other
    classes' probabilities (no cancellation for the largest class).
    """
    x = _spatial_input(input, fn)
    t = check_integer_tensor(target, fn, "target")
    if t.shape != (x.shape[0], *x.shape[2:]):
        raise ValueError(
            f"{fn}: target must be (N, *) class indices for input (N, C, *), "
            f"got {fmt_shape(t.shape)} and {fmt_shape(x.shape)}"
        )
    n_classes = x.shape[1]
    if ignore_index is None:
        bad = (t < 0) | (t >= n_classes)
        if bool(bad.any()):
            first = int(t[bad].reshape(-1)[0].item())
            raise ClassIndexError(f"{fn}: target contains class index {first} outside [0, {n_classes})")
        valid = torch.ones_like(t, dtype=torch.bool)
    else:
        valid = check_class_indices(t, n_classes, int(ignore_index), fn)
    x = x.to(working_dtype(x.dtype))
    keep = valid.unsqueeze(1).to(x.dtype)
    y = F.one_hot(torch.where(valid, t, torch.zeros_like(t)), n_classes).movedim(-1, 1).to(x.dtype) * keep
    e = (x - x.amax(dim=1, keepdim=True)).exp()
    total = e.sum(dim=1, keepdim=True)
    others = torch.einsum("kc,nc...->nk...", 1 - torch.eye(n_classes, dtype=x.dtype, device=x.device), e)
    p, q = e / total, others / total  # 1 - p summed from the other classes: no cancellation for the largest
    return p * keep, q * keep, y


def multiclass_dice_loss(
    input: torch.Tensor,
    target: torch.Tensor,
    smooth: float = 1.0,
    ignore_index: int | None = None,
    batch: bool = False,
    reduction: Reduction = "mean",
) -> torch.Tensor:
    """Dice per class of softmax(input) against one-hot class indices (ignored pixels take no part);
    'none' gives (N, C) (or (C,) with ``batch``), 'mean' the mean over classes and samples."""
    fn = "multiclass_dice_loss"
    smooth = check_nonnegative(smooth, fn, "smooth")
    p, q, y = _softmax_parts(input, target, ignore_index, fn)
    return reduce(_tversky(p, q, y, 0.5, 0.5, 0.5 * smooth, batch), reduction, fn).to(input.dtype)


def bce_dice_loss(
    input: torch.Tensor, target: torch.Tensor, bce_weight: float = 0.5, dice_weight: float = 1.0, smooth: float = 1.0
) -> torch.Tensor:
    """bce_weight * binary_cross_entropy_with_logits (mean) + dice_weight * dice_loss (mean), from logits."""
    dice = dice_loss(input, target, smooth=smooth)
    return bce_weight * F.binary_cross_entropy_with_logits(input, target) + dice_weight * dice


def ce_dice_loss(
    input: torch.Tensor, target: torch.Tensor, ce_weight: float = 0.5, dice_weight: float = 0.5, smooth: float = 1.0
) -> torch.Tensor:
    """ce_weight * cross_entropy (mean) + dice_weight * multiclass_dice_loss (mean) on (N, C, *) logits."""
    dice = multiclass_dice_loss(input, target, smooth=smooth)
    return ce_weight * F.cross_entropy(input, target) + dice_weight * dice


def boundary_loss(
    input: torch.Tensor, distance_map: torch.Tensor, from_logits: bool = True, reduction: Reduction = "mean"
) -> torch.Tensor:
    """p * distance_map element-wise, reduced (Kervadec et al. 2019); may be negative."""
    fn = "boundary_loss"
    x = check_floating_tensor(input, fn, "input")
    d = check_floating_tensor(distance_map, fn, "distance_map")
    if x.shape != d.shape:
        raise ValueError(
            f"{fn}: input and distance_map must have the same shape, got {fmt_shape(x.shape)} and {fmt_shape(d.shape)}"
        )
    p, _ = _probabilities(x, from_logits, fn)
    return reduce(p * d, reduction, fn)


OWN: dict[str, Callable] = {
    "dice_loss": dice_loss,
    "multiclass_dice_loss": multiclass_dice_loss,
    "jaccard_loss": jaccard_loss,
    "tversky_loss": tversky_loss,
    "bce_dice_loss": bce_dice_loss,
    "ce_dice_loss": ce_dice_loss,
    "boundary_loss": boundary_loss,
}
