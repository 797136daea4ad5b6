"""Deliberately wrong segmentation losses: each family property must catch the one planted for it.

Every function has the canonical signature of the loss it pretends to be and exactly one defect,
named in its docstring (with the property that catches it).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from lossguard.implementations.own import segmentation as own

from planted import _gradient_bias, _value_bias


def _total(v: torch.Tensor, batch: bool) -> torch.Tensor:
    """Sum over the spatial dims (and the batch with ``batch``)."""
    dims = ((0,) if batch else ()) + tuple(range(2, v.dim()))
    return v.sum(dim=dims) if dims else v


def _sums(input, target, from_logits, batch):
    """(p, sum(p y), sum p, sum y)."""
    p = torch.sigmoid(input) if from_logits else input
    return p, _total(p * target, batch), _total(p, batch), _total(target, batch)


def _reduce(loss: torch.Tensor, reduction: str) -> torch.Tensor:
    return loss.mean() if reduction == "mean" else loss.sum() if reduction == "sum" else loss


def dice_smooth_half_denominator(input, target, smooth=1.0, from_logits=True, batch=False, reduction="mean"):
    """Adds smooth / 2 to the denominator instead of smooth: -1 on an empty mask (overlap_range)."""
    _, tp, sp, sy = _sums(input, target, from_logits, batch)
    return _reduce(1 - (2 * tp + smooth) / (sp + sy + smooth / 2), reduction)


def dice_squared_prediction(input, target, smooth=1.0, from_logits=True, batch=False, reduction="mean"):
    """Half of the V-Net denominator: sum p^2 + sum y, not symmetric in p and y (overlap_symmetry)."""
    p, tp, _, sy = _sums(input, target, from_logits, batch)
    return _reduce(1 - (2 * tp + smooth) / (_total(p * p, batch) + sy + smooth), reduction)


def dice_without_smooth_in_numerator(input, target, smooth=1.0, from_logits=True, batch=False, reduction="mean"):
    """1 - 2 sum(p y) / (sum p + sum y + smooth): not 0 at a perfect prediction (zero_at_perfect)."""
    _, tp, sp, sy = _sums(input, target, from_logits, batch)
    return _reduce(1 - 2 * tp / (sp + sy + smooth), reduction)


def dice_without_smooth(input, target, smooth=1.0, from_logits=True, batch=False, reduction="mean"):
    """Ignores smooth: 0 / 0 = NaN on an empty mask predicted as exactly 0 (empty_masks_finite)."""
    _, tp, sp, sy = _sums(input, target, from_logits, batch)
    return _reduce(1 - 2 * tp / (sp + sy), reduction)


def dice_batch_replaces_spatial(input, target, smooth=1.0, from_logits=True, batch=False, reduction="mean"):
    """batch=True sums over the batch *instead of* the spatial dims (batch_of_one)."""
    if not batch or input.dim() == 2:
        return own.dice_loss(input, target, smooth, from_logits, batch, reduction)
    p = torch.sigmoid(input) if from_logits else input
    tp, sp, sy = (p * target).sum(0), p.sum(0), target.sum(0)
    return _reduce(1 - (2 * tp + smooth) / (sp + sy + smooth), reduction)


def tversky_false_negatives_unmasked(
    input, target, alpha=0.5, beta=0.5, smooth=1.0, from_logits=True, batch=False, reduction="mean"
):
    """FN = sum(1 - p) over every pixel, not sum((1 - p) y) (tversky_identities)."""
    p, tp, sp, _ = _sums(input, target, from_logits, batch)
    fp, fn = sp - tp, _total(1 - p, batch)
    return _reduce(1 - (tp + smooth) / (tp + alpha * fp + beta * fn + smooth), reduction)


def bce_dice_summed_bce(input, target, bce_weight=0.5, dice_weight=1.0, smooth=1.0):
    """The cross-entropy part is the sum over pixels, not the mean (composite_sum)."""
    bce = F.binary_cross_entropy_with_logits(input, target, reduction="sum")
    return bce_weight * bce + dice_weight * own.dice_loss(input, target, smooth=smooth)


def _tversky_biased_at(weight: float):
    def wrong(input, target, alpha=0.5, beta=0.5, smooth=1.0, from_logits=True, batch=False, reduction="mean"):
        loss = own.tversky_loss(input, target, alpha, beta, smooth, from_logits, batch, reduction="none")
        if alpha == beta == weight:  # 32 u relative, times the pixels summed + 2 (the scale's summation factor)
            count = input[0, 0].numel() * (input.shape[0] if batch else 1)
            loss = loss * (1 + 32 * (count + 2) * torch.finfo(loss.dtype).eps / 2)
        return loss if reduction == "none" else loss.mean() if reduction == "mean" else loss.sum()

    return wrong


tversky_biased_as_dice = _tversky_biased_at(0.5)
tversky_biased_as_dice.__name__ = "tversky_biased_as_dice"
tversky_biased_as_dice.__doc__ = """Times (1 + 32 (n + 2) u), n the pixels summed, at alpha = beta = 1/2: about
32 units of roundoff of its scale (tversky_identities, dice)."""
tversky_biased_as_jaccard = _tversky_biased_at(1.0)
tversky_biased_as_jaccard.__name__ = "tversky_biased_as_jaccard"
tversky_biased_as_jaccard.__doc__ = """Times (1 + 32 (n + 2) u), n the pixels summed, at alpha = beta = 1: about
32 units of roundoff of its scale (tversky_identities, jaccard)."""


def dice_biased(input, target, smooth=1.0, from_logits=True, batch=False, reduction="mean"):
    """The Dice loss plus 32 u of its scale: on empty masks v = FP / (FP + smooth) off by 32 units of roundoff of
    what the property judges (empty_masks_finite, value)."""
    call = {"input": input, "target": target, "smooth": smooth, "from_logits": from_logits, "batch": batch}
    return _value_bias("dice_loss", own.dice_loss(**call, reduction=reduction), **call, reduction=reduction)


def dice_sqrt_of_false_positives(input, target, smooth=1.0, from_logits=True, batch=False, reduction="mean"):
    """The Dice loss plus 0 * sqrt(FP): the same value, but sqrt's infinite slope at FP = 0 (an empty mask
    predicted as exactly 0) times 0 makes the gradient NaN (empty_masks_finite, gradient)."""
    p, _, _, _ = _sums(input, target, from_logits, batch)
    loss = own.dice_loss(input, target, smooth, from_logits, batch, reduction="none")
    return _reduce(loss + 0.0 * torch.sqrt(_total(p * (1 - target), batch)), reduction)


def dice_gradient_biased(input, target, smooth=1.0, from_logits=True, batch=False, reduction="mean"):
    """The right value; d loss / d input plus 32 u of its scale (empty_masks_finite, gradient)."""
    call = {"input": input, "target": target, "smooth": smooth, "from_logits": from_logits, "batch": batch}
    loss = own.dice_loss(**call, reduction=reduction)
    return _gradient_bias("dice_loss", loss, "input", **call, reduction=reduction)


def bce_dice_combined_biased(input, target, bce_weight=0.5, dice_weight=1.0, smooth=1.0):
    """Each part alone right (the other weight 0), their weighted sum plus 32 u of its scale when both weights are
    non-zero (composite_sum, sum)."""
    call = {"input": input, "target": target, "bce_weight": bce_weight, "dice_weight": dice_weight, "smooth": smooth}
    loss = own.bce_dice_loss(**call)
    return _value_bias("bce_dice_loss", loss, **call) if bce_weight != 0 and dice_weight != 0 else loss
