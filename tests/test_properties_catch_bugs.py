"""Every property catches its planted bug, and passes on a correct implementation of the same loss.

A property that can never fail is a defect: this is the suite's proof that each one can.
"""

from __future__ import annotations

import importlib

import pytest
import torch
import torch.nn.functional as F
from judging import CI, assert_catches, judge, only_check

from lossguard.harness.app.inventory import bind, own
from lossguard.harness.app.runner import run_one
from lossguard.properties.base import PROPERTIES

import planted

OWN = {impl.loss: impl.fn for impl in own()}

BCE_LOGITS = F.binary_cross_entropy_with_logits

# property, its sub-check, loss, wrong implementation (tests/planted.py: one defect, failing that sub-check),
# dtype, correct implementation of the same loss. Numeric defects are 32 units of roundoff of the scale judged.
CASES = [
    ("agreement", "dtype", "mse_loss", planted.mse_wrong_dtype, "float32", F.mse_loss),
    ("agreement", "shape", "mse_loss", planted.mse_wrong_shape, "float64", F.mse_loss),
    ("agreement", "value", "cross_entropy", planted.ce_biased, "float64", F.cross_entropy),
    ("gradient", "first_argument", "mse_loss", planted.mse_wrong_input_gradient, "float64", F.mse_loss),
    ("gradient", "other_arguments", "mse_loss", planted.mse_wrong_target_gradient, "float64", F.mse_loss),
    ("non_negative", "non_negative", "log_cosh_loss", planted.log_cosh_below_zero, "float64", OWN["log_cosh_loss"]),
    ("zero_at_perfect", "at_perfect", "mse_loss", planted.mse_offset, "float32", F.mse_loss),
    ("zero_at_perfect", "monotone", "cross_entropy", planted.ce_rises_before_sure, "float64", F.cross_entropy),
    ("zero_at_perfect", "limit", "cross_entropy", planted.ce_clamped_probability, "float64", F.cross_entropy),
    ("reduction", "sum", "mse_loss", planted.mse_sum_biased, "float64", F.mse_loss),
    ("reduction", "mean", "mse_loss", planted.mse_mean_biased, "float64", F.mse_loss),
    ("batch", "batch", "mse_loss", planted.mse_batch_coupled, "float64", F.mse_loss),
    ("batch", "batch", "mse_loss", planted.mse_rows_sorted, "float64", F.mse_loss),
    (
        "stability",
        "value",
        "binary_cross_entropy_with_logits",
        planted.bce_logits_value_overflows,
        "float32",
        BCE_LOGITS,
    ),
    (
        "stability",
        "gradient",
        "binary_cross_entropy_with_logits",
        planted.bce_logits_gradient_overflows,
        "float32",
        BCE_LOGITS,
    ),
    ("immutability", "immutability", "mse_loss", planted.mse_mutating, "float64", F.mse_loss),
    ("invalid_input", "raises", "quantile_loss", planted.quantile_unchecked, "float64", OWN["quantile_loss"]),
    ("invalid_input", "message", "quantile_loss", planted.quantile_silent_message, "float64", OWN["quantile_loss"]),
    ("huber_limits", "quadratic", "huber_loss", planted.huber_quadratic_biased, "float64", F.huber_loss),
    ("huber_limits", "linear", "huber_loss", planted.huber_linear_biased, "float64", F.huber_loss),
    ("huber_smooth_l1", "huber_smooth_l1", "smooth_l1_loss", planted.smooth_l1_biased, "float64", F.smooth_l1_loss),
    ("quantile_median", "quantile_median", "quantile_loss", planted.quantile_doubled, "float64", OWN["quantile_loss"]),
    ("label_smoothing", "decomposition", "cross_entropy", planted.ce_smoothing_biased, "float64", F.cross_entropy),
    ("label_smoothing", "grows", "cross_entropy", planted.ce_smoothing_ignored_when_sure, "float64", F.cross_entropy),
    ("label_smoothing", "minimiser", "cross_entropy", planted.ce_smoothing_gradient_behind, "float64", F.cross_entropy),
    (
        "shift_invariance",
        "shift_invariance",
        "cross_entropy",
        planted.ce_shift_dependent,
        "float64",
        F.cross_entropy,
    ),
    ("softmax_gradient", "softmax_gradient", "cross_entropy", planted.ce_gradient_biased, "float64", F.cross_entropy),
    (
        "sigmoid_gradient",
        "sigmoid_gradient",
        "binary_cross_entropy_with_logits",
        planted.bce_logits_gradient_doubled,
        "float64",
        BCE_LOGITS,
    ),
    ("mixup", "mixup", "cross_entropy", planted.ce_hardens_soft_targets, "float64", F.cross_entropy),
    (
        "cross_entropy_kl",
        "cross_entropy_side",
        "cross_entropy",
        planted.ce_hardens_soft_targets,
        "float64",
        F.cross_entropy,
    ),
    ("cross_entropy_kl", "kl_side", "kl_div", planted.kl_without_entropy, "float64", F.kl_div),
    ("kl_divergence", "pinsker", "kl_div", planted.kl_halved, "float64", F.kl_div),
    ("kl_divergence", "self_zero", "kl_div", planted.kl_cancels_late, "float64", F.kl_div),
    (
        "focal_identities",
        "bounded_by_ce",
        "sigmoid_focal_loss",
        planted.sigmoid_focal_amplifying,
        "float64",
        OWN["sigmoid_focal_loss"],
    ),
    (
        "focal_identities",
        "gamma_zero",
        "sigmoid_focal_loss",
        planted.sigmoid_focal_gamma_zero_biased,
        "float64",
        OWN["sigmoid_focal_loss"],
    ),
    (
        "multilabel_mean_bce",
        "multilabel_mean_bce",
        "multilabel_soft_margin_loss",
        planted.multilabel_biased,
        "float64",
        F.multilabel_soft_margin_loss,
    ),
    ("proper_scoring", "proper_scoring", "mse_loss", planted.mse_as_absolute_error, "float64", F.mse_loss),
    ("proper_scoring", "proper_scoring", "mse_loss", planted.mse_constant, "float64", F.mse_loss),
]


@pytest.mark.parametrize(
    ("prop", "check", "loss", "wrong", "dtype", "right"),
    CASES,
    ids=[f"{c[0]}-{c[1]}-{c[3].__name__}" for c in CASES],
)
def test_property_catches_its_planted_bug(prop, check, loss, wrong, dtype, right):
    assert_catches(prop, loss, wrong, right, dtype, check=check)


FAMILY_TESTS = ("test_metric", "test_segmentation", "test_detection", "test_generative", "test_sequence")


def test_every_sub_check_has_a_planted_bug():
    """Every declared (property, sub-check) is proven by a planted bug that fails that very sub-check (asserted on
    the result's ``check`` by ``assert_catches``): here (generic properties, core identities) or by the CASES of
    its family's test module (``SUB_CHECKS`` names the sub-check where the property has several); device needs CUDA
    (test_device_property_catches_a_device_dependent_loss)."""
    declared = {(name, check) for name, prop in PROPERTIES.items() for check in prop.checks}
    proven = {(case[0], case[1]) for case in CASES} | {("device", check) for check in PROPERTIES["device"].checks}
    for name in FAMILY_TESTS:
        module = importlib.import_module(name)
        named = getattr(module, "SUB_CHECKS", {})
        proven |= {(case[0], named.get(case[2]) or only_check(case[0])) for case in module.CASES}
    # the reference-free properties' planted bugs live beside them (tests/test_reference_free.py)
    proven |= {(case[0], case[1]) for case in importlib.import_module("test_reference_free").PLANTED}
    assert proven <= declared, f"planted bugs name sub-checks no property declares: {sorted(proven - declared)}"
    assert declared - proven == set(), "sub-checks without a planted bug"


@pytest.mark.skipif(not torch.cuda.is_available(), reason="CUDA is not available on this machine")
def test_device_property_catches_a_device_dependent_loss():
    def differs_on_cuda(input, target, reduction="mean"):
        loss = F.mse_loss(input, target, reduction=reduction)
        return loss * 1.01 if input.is_cuda else loss

    assert (
        run_one(bind("mse_loss", differs_on_cuda, "tests.cuda", "user"), "device", "cuda", "float32", CI).status
        == "fail"
    )
    assert run_one(bind("mse_loss", F.mse_loss, "tests.ok", "user"), "device", "cuda", "float32", CI).status == "pass"


def test_global_state_change_is_a_failure_of_the_implementation():
    before = torch.get_default_dtype()
    result = judge("agreement", "mse_loss", planted.mse_changes_default_dtype, "float32")
    assert result.status == "fail"
    assert "global state" in result.message and "default dtype" in result.message
    assert torch.get_default_dtype() == before, "lossguard restores the state the implementation changed"


def test_an_exception_where_none_is_expected_is_an_error_result_not_a_crash():
    def raises(input, target, reduction="mean"):
        raise RuntimeError("boom")

    result = judge("agreement", "mse_loss", raises, "float64")
    assert result.status == "error"
    assert "RuntimeError: boom" in result.message
