"""Odd behaviour of the judged code, judged for what it is. An output of another shape is the implementation's
failure with a clear message, on every property that compares outputs, never a crash of lossguard; an
implementation that raises on every call is an ``error`` with that reason, even on ``invalid_input`` (whose
invalid cases it would all "reject"); and a property whose own code raises is an ``error`` that says it is
lossguard's problem, not a dead run and not a verdict on the implementation. A counterexample shows only the
parameters the target received."""

from __future__ import annotations

import dataclasses

import pytest
import torch.nn.functional as F
from judging import judge

from lossguard.properties.base import PROPERTIES


def mse_extra_axis(input, target, reduction="mean"):
    """'none' with a leading axis of 1: (1, N) instead of (N,)."""
    loss = F.mse_loss(input, target, reduction=reduction)
    return loss[None, ...] if reduction == "none" else loss


def mse_repeated_columns(input, target, reduction="mean"):
    """'none' of shape (N, 3): every loss repeated in three columns."""
    loss = F.mse_loss(input, target, reduction=reduction)
    return loss.reshape(-1, 1).expand(-1, 3) if reduction == "none" else loss


@pytest.mark.parametrize("wrong", [mse_extra_axis, mse_repeated_columns], ids=lambda f: f.__name__)
@pytest.mark.parametrize("prop", ["agreement", "stability", "batch", "reduction", "non_negative", "zero_at_perfect"])
def test_an_output_of_another_shape_fails_with_its_shape(prop, wrong):
    result = judge(prop, "mse_loss", wrong)
    assert result.status == "fail", f"{prop}: {result.status} {result.message}"
    assert "shape = " in result.message and "but should be" in result.message, result.message


def test_a_property_that_raises_is_a_harness_error_not_a_crash(monkeypatch):
    def crashes(subject, data):
        subject.value(subject.draw(data))
        raise ValueError("operands could not be broadcast together")

    monkeypatch.setitem(PROPERTIES, "agreement", dataclasses.replace(PROPERTIES["agreement"], check=crashes))
    result = judge("agreement", "mse_loss", F.mse_loss)
    assert result.status == "error"
    assert result.message.startswith("harness problem, not a verdict on the implementation: property 'agreement'")
    assert "ValueError: operands could not be broadcast together" in result.message


def mse_always_raises(input, target, reduction="mean"):
    raise RuntimeError("this build has no CPU kernel")


def test_an_implementation_that_always_raises_is_an_error_on_invalid_input():
    result = judge("invalid_input", "mse_loss", mse_always_raises)
    assert result.status == "error", f"{result.status} {result.message}"
    assert "RuntimeError: this build has no CPU kernel" in result.message


def mse_without_reduction(input, target):
    """Takes no ``reduction``: the element-wise losses, biased by 1e-3."""
    return (input - target) ** 2 * 1.001


def test_a_counterexample_shows_only_the_parameters_the_target_received():
    result = judge("agreement", "mse_loss", mse_without_reduction)
    assert result.status == "fail" and result.counterexample
    assert "reduction" not in result.counterexample, result.counterexample
