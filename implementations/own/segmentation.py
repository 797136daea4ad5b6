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
    _check_probabilities(x, fn)
    return x, 1 - x


def _check_probabilities(x: torch.Tensor, fn: str) -> None:
    if bool(((x < 0) | (x > 1) | x.isnan()).any()):
        raise ValueError(f"{fn}: input must hold probabilities in [0, 1] when from_logits=False")


def _ratio(tp: torch.Tensor, fp: torch.Tensor, fn: torch.Tensor, alpha: float, beta: float, smooth: float, batch: bool):
    """(alpha FP + beta FN) / (TP + alpha FP + beta FN + smooth) from per-(sample, channel) sums; with ``batch`` the
    sums are first added over the samples (per channel)."""
    if batch:
        tp, fp, fn = tp.sum(0), fp.sum(0), fn.sum(0)
    a = alpha * fp + beta * fn
    return a / (tp + a + smooth)


class _OverlapSums(torch.autograd.Function):
    """(TP, FP, FN) = (sum p y, sum p (1 - y), sum q y) over the last dim of (R, L) rows, q = 1 - p, with an analytic
    backward. From logits p = sigmoid(x), q = sigmoid(-x) (no cancellation), so dp/dx = p q = -dq/dx and
    dL/dx = p q (y (g_tp - g_fn - g_fp) + g_fp); from probabilities p = x, q = 1 - x and dL/dx = y (g_tp - g_fn -
    g_fp) + g_fp. dL/dy = p (g_tp - g_fp) + q g_fn. Saves p and q (only p q when y needs no gradient)."""

    @staticmethod
    def forward(ctx, x: torch.Tensor, y: torch.Tensor, from_logits: bool):
        if from_logits:
            p = torch.sigmoid(x)
            q = x.neg().sigmoid_()
        else:
            p, q = x, 1 - x
        tp = torch.linalg.vecdot(p, y)
        fp = torch.linalg.vecdot(p, 1 - y)
        fn = torch.linalg.vecdot(q, y)
        ctx.from_logits = from_logits
        if ctx.needs_input_grad[1]:
            ctx.save_for_backward(y, p, q)
        elif from_logits:
            ctx.save_for_backward(y, p.mul_(q))
        else:
            ctx.save_for_backward(y)
        return tp, fp, fn

    @staticmethod
    def backward(ctx, g_tp: torch.Tensor, g_fp: torch.Tensor, g_fn: torch.Tensor):
        y, *saved = ctx.saved_tensors
        g_tp, g_fp, g_fn = g_tp.unsqueeze(-1), g_fp.unsqueeze(-1), g_fn.unsqueeze(-1)
        grad_x = grad_y = None
        if ctx.needs_input_grad[0]:
            grad_x = y * (g_tp - g_fn - g_fp)  # in place from here: a broadcast addcmul is slower
            grad_x += g_fp
            if ctx.from_logits:
                grad_x *= saved[0] * saved[1] if len(saved) == 2 else saved[0]
        if ctx.needs_input_grad[1]:
            p, q = saved
            grad_y = p * (g_tp - g_fp)
            grad_y += q * g_fn
        return grad_x, grad_y, None


def _rows(t: torch.Tensor) -> torch.Tensor:
    """(N, C, *) as (N, C, L): the spatial dims flattened (L = 1 without any)."""
    return t.flatten(2) if t.dim() > 2 else t.unsqueeze(-1)


def _binary_overlap(input, target, alpha, beta, smooth, from_logits, batch, reduction, fn) -> torch.Tensor:
    x = _spatial_input(input, fn)
    check_same_shape(x, target, fn)
    smooth = check_nonnegative(smooth, fn, "smooth")
    alpha = check_nonnegative(alpha, fn, "alpha")
    beta = check_nonnegative(beta, fn, "beta")
    work = working_dtype(x.dtype)  # in float16 the squared denominator of the gradient underflows
    z = x.to(work)
    if not from_logits:
        _check_probabilities(z, fn)
    tp, fp, fn_ = _OverlapSums.apply(_rows(z), _rows(target.to(work)), from_logits)
    return reduce(_ratio(tp, fp, fn_, alpha, beta, smooth, batch), reduction, fn).to(x.dtype)


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


def _softmax_overlap(input: object, target: object, ignore_index: int | None, fn: str):
    """(TP, FP, FN) per (sample, class) of softmax(input) against the one-hot (N, *) class indices, ignored pixels
    taking no part, computed in the working dtype (at least float32) by ``_SoftmaxOverlapSums``."""
    x = _spatial_input(input, fn)
    t = check_integer_tensor(target, fn, "target")
    if t.shape != (x.shape[0], *x.shape[2:]):
        raise ValueError(
            f"{fn}: target must be (N, *) class indices for input (N, C, *), "
            f"got {fmt_shape(t.shape)} and {fmt_shape(x.shape)}"
        )
    n_classes = x.shape[1]
    # classes outermost, (C, N, L): the reductions over the classes then run on long contiguous rows (along dim 1
    # of a small spatial size torch's CPU kernels loop over a few elements at a time)
    x = _rows(x.to(working_dtype(x.dtype))).movedim(1, 0).contiguous()
    t = t.reshape(1, t.shape[0], -1)
    if ignore_index is None:
        if t.numel() and bool(((t < 0) | (t >= n_classes)).any()):
            first = int(t[(t < 0) | (t >= n_classes)].reshape(-1)[0].item())
            raise ClassIndexError(f"{fn}: target contains class index {first} outside [0, {n_classes})")
        sums = _SoftmaxOverlapSums.apply(x, t, None)
    else:
        valid = check_class_indices(t, n_classes, int(ignore_index), fn)
        sums = _SoftmaxOverlapSums.apply(x, torch.where(valid, t, torch.zeros_like(t)), valid.to(x.dtype))
    return tuple(v.t() for v in sums)


class _SoftmaxOverlapSums(torch.autograd.Function):
    """(TP, FP, FN) per (class, sample) of p = softmax over dim 0 of (C, N, L) logits against the one-hot of (1, N, L)
    class indices, p and 1 - p zeroed where ``keep`` (1, N, L) is 0 (ignored pixels), with an analytic backward.

    p = e / total, e = exp(z - max), total = 1 + s with s the sum of e over the classes other than one largest
    (summed with it left out, exactly). 1 - p = ((1 - e) + s) / total adds two nonnegative terms: no cancellation,
    also for the largest class (1 - e = 0). O(C). As 1 - p moves against p, dL/dp = y (g_tp - g_fn - g_fp) +
    g_fp =: G, and the softmax's Jacobian gives dL/dz = p (G - sum_c p G) (zero at ignored pixels)."""

    @staticmethod
    def forward(ctx, x: torch.Tensor, t: torch.Tensor, keep: torch.Tensor | None):
        top = x.amax(dim=0, keepdim=True)  # no argmax: on the CPU it is many times slower than amax
        e = (x - top).exp_()
        largest = (x == top).to(x.dtype)  # e = 1 exactly there: e - largest leaves the rest's e, exactly
        s = (e - largest).sum(dim=0, keepdim=True) + (largest.sum(dim=0, keepdim=True) - 1)
        r = (s + 1).reciprocal_()
        q = (1 - e).add_(s).mul_(r)  # total - e = (1 - e) + s: two nonnegative terms
        p = e.mul_(r)
        if keep is not None:
            p *= keep
            q *= keep
        y = torch.zeros_like(x).scatter_(0, t, 1 if keep is None else keep)
        tp, fp, fn = torch.linalg.vecdot(p, y), torch.linalg.vecdot(p, 1 - y), torch.linalg.vecdot(q, y)
        ctx.save_for_backward(p, y)
        return tp, fp, fn

    @staticmethod
    def backward(ctx, g_tp: torch.Tensor, g_fp: torch.Tensor, g_fn: torch.Tensor):
        p, y = ctx.saved_tensors
        g_tp, g_fp, g_fn = g_tp.unsqueeze(-1), g_fp.unsqueeze(-1), g_fn.unsqueeze(-1)
        pg = y * (g_tp - g_fn - g_fp)
        pg += g_fp
        pg *= p
        return pg.sub_(p * pg.sum(dim=0, keepdim=True)), None, None


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
    tp, fp, fn_ = _softmax_overlap(input, target, ignore_index, fn)
    return reduce(_ratio(tp, fp, fn_, 0.5, 0.5, 0.5 * smooth, batch), reduction, fn).to(input.dtype)


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
