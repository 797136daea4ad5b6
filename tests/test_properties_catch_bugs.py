"""Every property catches its planted bug, and passes on a correct implementation of the same loss.

A property that can never fail is a defect: this is the suite's proof that each one can.
"""

from __future__ import annotations

import importlib

import pytest
import torch
import torch.nn.functional as F
from judging import CI, assert_catches, judge

from lossguard.harness.app.inventory import bind, own
from lossguard.harness.app.runner import run_one

import planted

OWN = {impl.loss: impl.fn for impl in own()}

# property, loss, wrong implementation, dtype, correct implementation of the same loss
CASES = [
    ("agreement", "huber_loss", planted.huber_wrong_threshold, "float32", F.huber_loss),
    ("gradient", "mse_loss", planted.mse_wrong_gradient, "float64", F.mse_loss),
    ("non_negative", "log_cosh_loss", planted.log_cosh_shifted, "float64", OWN["log_cosh_loss"]),
    ("zero_at_perfect", "mse_loss", planted.mse_offset, "float32", F.mse_loss),
    ("zero_at_perfect", "cross_entropy", planted.ce_clamped_probability, "float64", F.cross_entropy),
    ("reduction", "mse_loss", planted.mse_mean_off_by_one, "float64", F.mse_loss),
    ("batch", "mse_loss", planted.mse_batch_coupled, "float64", F.mse_loss),
    (
        "stability",
        "binary_cross_entropy_with_logits",
        planted.bce_logits_naive,
        "float32",
        F.binary_cross_entropy_with_logits,
    ),
    ("immutability", "mse_loss", planted.mse_mutating, "float64", F.mse_loss),
    ("invalid_input", "quantile_loss", planted.quantile_unchecked, "float64", OWN["quantile_loss"]),
    ("huber_limits", "huber_loss", planted.huber_capped_delta, "float64", F.huber_loss),
    ("huber_smooth_l1", "smooth_l1_loss", planted.smooth_l1_as_huber, "float64", F.smooth_l1_loss),
    ("quantile_median", "quantile_loss", planted.quantile_doubled, "float64", OWN["quantile_loss"]),
    ("label_smoothing", "cross_entropy", planted.ce_smoothing_eps_over_c_minus_1, "float64", F.cross_entropy),
    ("shift_invariance", "cross_entropy", planted.ce_not_shift_invariant, "float64", F.cross_entropy),
    ("softmax_gradient", "cross_entropy", planted.ce_gradient_not_averaged, "float64", F.cross_entropy),
    (
        "sigmoid_gradient",
        "binary_cross_entropy_with_logits",
        planted.bce_logits_gradient_doubled,
        "float64",
        F.binary_cross_entropy_with_logits,
    ),
    ("mixup", "cross_entropy", planted.ce_hardens_soft_targets, "float64", F.cross_entropy),
    ("cross_entropy_kl", "cross_entropy", planted.ce_hardens_soft_targets, "float64", F.cross_entropy),
    ("cross_entropy_kl", "kl_div", planted.kl_without_entropy, "float64", F.kl_div),
    ("kl_divergence", "kl_div", planted.kl_without_entropy, "float64", F.kl_div),
    ("focal_identities", "sigmoid_focal_loss", planted.sigmoid_focal_amplifying, "float64", OWN["sigmoid_focal_loss"]),
    (
        "multilabel_mean_bce",
        "multilabel_soft_margin_loss",
        planted.multilabel_sum_over_labels,
        "float64",
        F.multilabel_soft_margin_loss,
    ),
    ("proper_scoring", "mse_loss", planted.mse_as_absolute_error, "float64", F.mse_loss),
]


@pytest.mark.parametrize(
    ("prop", "loss", "wrong", "dtype", "right"), CASES, ids=[f"{c[0]}-{c[2].__name__}" for c in CASES]
)
def test_property_catches_its_planted_bug(prop, loss, wrong, dtype, right):
    assert_catches(prop, loss, wrong, right, dtype)


FAMILY_TESTS = ("test_metric", "test_segmentation", "test_detection", "test_generative", "test_sequence")


def test_every_property_has_a_planted_bug():
    """Every registered property is proven here (generic properties, core identities) or by the CASES of its
    family's test module; device needs CUDA (test_device_property_catches_a_device_dependent_loss)."""
    from lossguard.properties.base import PROPERTIES

    proven = {case[0] for case in CASES} | {"device"}
    for name in FAMILY_TESTS:
        proven |= {case[0] for case in importlib.import_module(name).CASES}
    assert set(PROPERTIES) - proven == set(), "properties without a planted bug"


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
