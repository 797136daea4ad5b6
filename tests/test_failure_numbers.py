"""Every family property that fails on compared numbers hands them on (``Subject.fail(..., numbers=...)``), so that
the severity of its failure (``lossguard.harness.kernel.severity``) is computed from them: a planted implementation
just beyond the tolerance (32 units of roundoff of the scale judged) is ``imprecise``, one a tenth off (or flat where
the loss must rise, or of the wrong sign) is ``wrong``, a NaN or an infinity where a finiteness check expects a finite
value is ``nan-inf``. Without its numbers each of these failures would be classed ``wrong``: the ``imprecise`` and
``nan-inf`` cases fail on a property that drops them, the ``wrong`` ones on numbers that weigh the departure against
the wrong scale or bound (a tie against the bound of a strict increase weighs nothing).
"""

from __future__ import annotations

import dataclasses
import itertools
from collections.abc import Callable

import planted_detection as det
import planted_generative as gen
import planted_segmentation as seg
import planted_sequence as seq
import pytest
import torch
import torch.nn.functional as F
from judging import judge
from test_reference_free import dice_input_gradient_off, l1_through_sqrt, mse_counter_noise
from test_reference_free import judge as judge_free

from lossguard.harness.kernel import severity
from lossguard.implementations.own import detection as own_detection
from lossguard.implementations.own import segmentation as own_segmentation
from lossguard.implementations.own.segmentation import dice_loss
from lossguard.implementations.own.sequence import sequence_cross_entropy

import planted

TENTH = 0.1  # a departure of a tenth of the scale: 100 times the 1e-3 beyond which a finite result is wrong


def _tenth(x: torch.Tensor) -> float:
    """``planted._biased``'s ulps for a relative departure of a tenth in ``x``'s dtype."""
    return TENTH / planted._u(x)


# --- generic -------------------------------------------------------------------------------------------------------


def log_cosh_tenth_below(input, target, reduction="mean"):
    """log cosh(e) minus a tenth of its error scale: negative near e = 0 by a tenth of the scale (non_negative)."""
    e = input - target
    loss = planted._reduce(e.abs() + F.softplus(-2 * e.abs()) - torch.log(torch.tensor(2.0, dtype=e.dtype)), reduction)
    call = {"input": input, "target": target, "reduction": reduction}
    return planted._value_bias("log_cosh_loss", loss, -_tenth(loss), **call)


# --- identities ----------------------------------------------------------------------------------------------------


def _bce(input, target, reduction):
    return planted._reduce(F.binary_cross_entropy_with_logits(input, target, reduction="none"), reduction)


def focal_above_ce_by_32_ulps(input, target, alpha=0.25, gamma=2.0, reduction="mean"):
    """BCE plus 32 u of the focal loss's error scale, whatever gamma and alpha: above its bound, the cross-entropy,
    by 32 units of roundoff of the scale the bound is compared with (focal_identities, bounded_by_ce)."""
    call = {"input": input, "target": target, "alpha": alpha, "gamma": gamma, "reduction": reduction}
    return planted._value_bias("sigmoid_focal_loss", _bce(input, target, reduction), **call)


def focal_above_ce_by_a_tenth(input, target, alpha=0.25, gamma=2.0, reduction="mean"):
    """BCE times 1.1: a tenth above its bound (focal_identities, bounded_by_ce)."""
    loss = _bce(input, target, reduction)
    return planted._biased(loss, _tenth(loss))


# --- detection -----------------------------------------------------------------------------------------------------


def iou_loss_a_tenth_above(boxes1, boxes2, eps=1e-7, reduction="mean"):
    """1 - IoU times 1.1: up to 1.1 for disjoint boxes, a tenth above the range's end (box_loss_range, range)."""
    loss = own_detection.iou_loss(boxes1, boxes2, eps=eps, reduction="none")
    return det._reduce(planted._biased(loss, _tenth(loss)), reduction)


# --- segmentation --------------------------------------------------------------------------------------------------


def _dice_off_by(ulps: Callable[[torch.Tensor], float]):
    def dice(input, target, smooth=1.0, from_logits=True, batch=False, reduction="mean"):
        call = {"input": input, "target": target, "smooth": smooth, "from_logits": from_logits, "batch": batch}
        loss = own_segmentation.dice_loss(**call, reduction=reduction)
        return planted._value_bias("dice_loss", loss, ulps(loss), **call, reduction=reduction)

    return dice


dice_32_ulps_below = _dice_off_by(lambda loss: -32.0)
dice_32_ulps_below.__name__ = "dice_32_ulps_below"
dice_32_ulps_below.__doc__ = "The Dice loss minus 32 u of its scale: below 0 where it is 0 (overlap_range)."
dice_a_tenth_below = _dice_off_by(lambda loss: -_tenth(loss))
dice_a_tenth_below.__name__ = "dice_a_tenth_below"
dice_a_tenth_below.__doc__ = "The Dice loss minus a tenth of its scale: below 0 where it is 0 (overlap_range)."


# --- sequence ------------------------------------------------------------------------------------------------------


def seq_ce_ignored_gradient_leaks_a_tenth(logits, target, ignore_index=-100, label_smoothing=0.0):
    """``seq.seq_ce_ignored_gradient_leaks`` with a tenth in place of u: d loss / d logits at ignored
    tokens is a tenth of the logits, the size of the gradient a counted token gets (ignored_tokens, zero_gradient)."""
    loss = sequence_cross_entropy(logits, target, ignore_index, label_smoothing)
    ignored = (target == ignore_index).unsqueeze(-1)
    half_square = torch.where(ignored, logits.square() / 2, torch.zeros_like(logits))
    return loss + TENTH * (half_square - half_square.detach()).sum()


# --- reference-free ------------------------------------------------------------------------------------------------


def dice_input_gradient_a_tenth_off(input, target, reduction="mean", smooth=1.0, from_logits=True, batch=False):
    """Dice whose gradient with respect to the logits is 1.1 times the right one (gradcheck, first_argument)."""
    scaled = planted._ScaledGradient.apply(input, 1 + TENTH)
    return dice_loss(scaled, target, reduction=reduction, smooth=smooth, from_logits=from_logits, batch=batch)


_CALLS = itertools.count()


def mse_a_tenth_off_every_other_call(input, target, reduction="mean"):
    """mse_loss times 1.1 on every other call (determinism, value)."""
    loss = F.mse_loss(input, target, reduction=reduction)
    return loss * (1 + TENTH * (next(_CALLS) % 2))


# property, loss, planted implementation, dtype, the sub-check it fails, the severity its numbers give
CATALOG_CASES = [
    # generic
    ("non_negative", "log_cosh_loss", planted.log_cosh_below_zero, "float64", "non_negative", "imprecise"),
    ("non_negative", "log_cosh_loss", log_cosh_tenth_below, "float64", "non_negative", "wrong"),
    ("zero_at_perfect", "cross_entropy", planted.ce_rises_before_sure, "float64", "monotone", "wrong"),
    ("stability", "binary_cross_entropy_with_logits", planted.bce_logits_naive, "float32", "value", "nan-inf"),
    # identities
    ("huber_limits", "huber_loss", planted.huber_linear_biased, "float64", "linear", "imprecise"),
    ("focal_identities", "sigmoid_focal_loss", focal_above_ce_by_32_ulps, "float64", "bounded_by_ce", "imprecise"),
    ("focal_identities", "sigmoid_focal_loss", focal_above_ce_by_a_tenth, "float64", "bounded_by_ce", "wrong"),
    ("kl_divergence", "kl_div", planted.kl_halved, "float64", "pinsker", "wrong"),
    ("label_smoothing", "cross_entropy", planted.ce_smoothing_ignored_when_sure, "float64", "grows", "wrong"),
    ("label_smoothing", "cross_entropy", planted.ce_smoothing_gradient_behind, "float64", "minimiser", "wrong"),
    ("proper_scoring", "mse_loss", planted.mse_constant, "float64", "proper_scoring", "wrong"),
    # detection
    ("box_loss_range", "iou_loss", det.iou_loss_biased, "float64", "range", "imprecise"),
    ("box_loss_range", "iou_loss", iou_loss_a_tenth_above, "float64", "range", "wrong"),
    ("box_loss_range", "generalized_box_iou_loss", det.giou_penalty_short, "float64", "at_least", "imprecise"),
    ("zero_area_boxes", "complete_box_iou_loss", det.ciou_aspect_by_division, "float64", "value", "nan-inf"),
    (
        "zero_area_boxes",
        "complete_box_iou_loss",
        det.ciou_aspect_masked_division,
        "float64",
        "finite_gradient",
        "nan-inf",
    ),
    # generative
    ("wgan_antisymmetry", "wgan_critic_loss", gen.wgan_critic_roles_swapped, "float64", "sign", "wrong"),
    ("vae_kl", "vae_loss", gen.vae_not_exactly_zero, "float32", "zero_at_prior", "imprecise"),
    (
        "uncertainty_minimiser",
        "uncertainty_weighted_loss",
        gen.uncertainty_flat_above_minimiser,
        "float64",
        "larger_nearby",
        "wrong",
    ),
    # segmentation
    ("overlap_range", "dice_loss", dice_32_ulps_below, "float64", "overlap_range", "imprecise"),
    ("overlap_range", "dice_loss", dice_a_tenth_below, "float64", "overlap_range", "wrong"),
    ("overlap_range", "dice_loss", seg.dice_smooth_half_denominator, "float64", "overlap_range", "wrong"),
    ("empty_masks_finite", "dice_loss", seg.dice_without_smooth, "float64", "value", "nan-inf"),
    ("empty_masks_finite", "dice_loss", seg.dice_sqrt_of_false_positives, "float64", "gradient", "nan-inf"),
    # sequence
    (
        "ignored_tokens",
        "sequence_cross_entropy",
        seq.seq_ce_ignored_gradient_leaks,
        "float64",
        "zero_gradient",
        "imprecise",
    ),
    (
        "ignored_tokens",
        "sequence_cross_entropy",
        seq_ce_ignored_gradient_leaks_a_tenth,
        "float64",
        "zero_gradient",
        "wrong",
    ),
]

# reference-free property, planted implementation, the entry its inputs are drawn like, dtype, sub-check, severity
FREE_CASES = [
    ("gradcheck", dice_input_gradient_off, "dice_loss", "float64", "first_argument", "imprecise"),
    ("gradcheck", dice_input_gradient_a_tenth_off, "dice_loss", "float64", "first_argument", "wrong"),
    ("finite", l1_through_sqrt, "l1_loss", "float64", "gradient", "nan-inf"),
    ("determinism", mse_counter_noise, "mse_loss", "float64", "value", "imprecise"),
    ("determinism", mse_a_tenth_off_every_other_call, "mse_loss", "float64", "value", "wrong"),
]


def _assert_severity(result, check: str, expected: str, name: str) -> None:
    """``result`` fails ``check`` with numbers whose severity is ``expected``. The class is computed from the numbers
    alone (a convention the diagnosis may name is another matter, ``PropertyResult.convention``, not judged here)."""
    assert result.status == "fail", f"{name}: {result.status} {result.message}"
    assert result.check == check, f"{name} failed {result.check!r}, not {check!r}: {result.message}"
    assert result.actual is not None, f"{name}: the failure of {check!r} carries no numbers: {result.message}"
    from_numbers = dataclasses.replace(result, convention="")
    assert severity.classify(from_numbers) == expected, (
        f"{name}: severity {severity.classify(from_numbers)!r}, not {expected!r} (numbers {result.actual!r}, "
        f"{result.expected!r}, {result.scale!r}; departure {severity.departure(from_numbers)!r}): {result.message}"
    )


@pytest.mark.parametrize(
    ("prop", "loss", "wrong", "dtype", "check", "expected"),
    CATALOG_CASES,
    ids=[f"{c[0]}-{c[2].__name__}-{c[5]}" for c in CATALOG_CASES],
)
def test_a_family_failure_is_classed_from_its_numbers(prop, loss, wrong, dtype, check, expected):
    _assert_severity(judge(prop, loss, wrong, dtype), check, expected, wrong.__name__)


@pytest.mark.parametrize(
    ("prop", "wrong", "like", "dtype", "check", "expected"),
    FREE_CASES,
    ids=[f"{c[0]}-{c[1].__name__}-{c[5]}" for c in FREE_CASES],
)
def test_a_reference_free_failure_is_classed_from_its_numbers(prop, wrong, like, dtype, check, expected):
    _assert_severity(judge_free(prop, wrong, like, dtype), check, expected, wrong.__name__)
