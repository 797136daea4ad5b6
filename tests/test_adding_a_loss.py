"""Adding a loss is one reference function and one catalog entry (docs/CONTRIBUTING.md), proven here.

The pseudo-Huber loss (Charbonnier et al. 1994; Hartley and Zisserman, *Multiple View Geometry*, 2nd ed.,
A6.8) is defined in this file alone: its float64 reference, its catalog entry (the regression family's
factory), and an own torch implementation. No other file of the project knows it, yet every generic
property runs on it, passes on the correct implementation and fails on a slightly wrong one.

It also pins CONTRIBUTING's decision rule for an error scale: the magnitude of the terms *before
cancellation* in the straightforward evaluation of the definition. ``delta^2 (sqrt(1 + (e/delta)^2) - 1)``
cancels for small ``e``; its scale is ``delta^2 sqrt(1 + (e/delta)^2)`` (the terms subtracted), not the
result: with the result as the scale, the straightforward evaluation is (wrongly) flagged.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch
from judging import CI

from lossguard.catalog import CATALOG
from lossguard.catalog.common import SHAPE_MISMATCH, elementwise, param_case, positive, tags
from lossguard.catalog.regression import regression_entry
from lossguard.harness.app.inventory import bind
from lossguard.harness.app.runner import run
from lossguard.properties.base import PROPERTIES
from lossguard.reference._core import Gradient, Terms, loss_reference

NAME = "pseudo_huber_loss"


def _terms(input, target, delta, scale_of_terms: bool) -> Terms:
    e = np.asarray(input, dtype=np.float64) - np.asarray(target, dtype=np.float64)
    t = e / delta
    s = np.hypot(1.0, t)  # sqrt(1 + t^2) without overflow of t^2
    values = delta * delta * (t * t / (s + 1.0))  # (s - 1) = t^2 / (s + 1): no cancellation in the reference
    return Terms(values, delta * delta * s if scale_of_terms else values)


@loss_reference
def pseudo_huber_loss(input, target, reduction="mean", delta=1.0) -> Terms:
    """delta^2 (sqrt(1 + (e/delta)^2) - 1), e = input - target; scale: the terms before cancellation."""
    return _terms(input, target, delta, scale_of_terms=True)


@pseudo_huber_loss.gradient("input", "target")
def _pseudo_huber_grad(input, target, reduction="mean", delta=1.0):
    e = np.asarray(input, dtype=np.float64) - np.asarray(target, dtype=np.float64)
    g = e / np.hypot(1.0, e / delta)
    return {"input": Gradient(g, np.abs(g)), "target": Gradient(-g, np.abs(g))}


ENTRY = regression_entry(
    name=NAME,
    definition="delta^2 (sqrt(1 + (e/delta)^2) - 1), e = input - target; delta > 0",
    reference=pseudo_huber_loss,
    examples=elementwise(params={"delta": positive(1e-2, 10.0, (1.0, 0.1))}),
    properties=tags("non_negative", "zero_at_perfect"),
    error_cases=(SHAPE_MISMATCH, param_case("delta", -1.0, "delta must be positive")),
)


def own_pseudo_huber_loss(input, target, reduction="mean", delta=1.0):
    """The definition evaluated as written, sqrt(1 + t^2) as hypot(1, t) (t^2 overflows float16 at t = 256),
    with the contract's validation."""
    if input.shape != target.shape:
        raise ValueError(f"pseudo_huber_loss: target shape {tuple(target.shape)} differs from {tuple(input.shape)}")
    if not delta > 0:
        raise ValueError(f"pseudo_huber_loss: delta must be positive, got {delta}")
    if reduction not in ("none", "mean", "sum"):
        raise ValueError(f"pseudo_huber_loss: reduction must be 'none', 'mean' or 'sum', got {reduction!r}")
    t = (input - target) / delta
    loss = delta**2 * (torch.hypot(torch.ones_like(t), t) - 1)
    return loss if reduction == "none" else loss.sum() if reduction == "sum" else loss.mean()


def biased_pseudo_huber_loss(input, target, reduction="mean", delta=1.0):
    """Planted: the value 64 ulps of float64 too large (1 + 2^-47), far below what a person would notice."""
    return own_pseudo_huber_loss(input, target, reduction, delta) * (1 + 2.0**-47)


def _check(fn, entry=ENTRY, dtypes=("float64", "float32", "float16", "bfloat16")):
    impl = bind(entry.name, fn, f"tests.{fn.__name__}", "own", catalog={entry.name: entry})
    selection = dataclasses.replace(CI, dtypes=dtypes)
    return run([impl], selection, catalog={**CATALOG, entry.name: entry})


def test_the_new_loss_is_known_only_to_this_file():
    assert NAME not in CATALOG


def test_every_generic_property_runs_on_a_loss_defined_in_one_file():
    results = _check(own_pseudo_huber_loss)
    ran = {r.property for r in results if r.status == "pass"}
    on_cpu = {name for name in ENTRY.properties if not PROPERTIES[name].cuda_only}
    assert ran == on_cpu, f"not run or not passed: {on_cpu - ran}"
    bad = [(r.property, r.dtype, r.status, r.message) for r in results if r.status not in ("pass", "skip")]
    assert not bad
    skipped = [(r.property, r.message) for r in results if r.status == "skip"]
    assert all(message for _, message in skipped), "every skip says why"


def test_a_slightly_wrong_implementation_of_the_new_loss_fails_agreement():
    results = _check(biased_pseudo_huber_loss, dtypes=("float64",))
    agreement = next(r for r in results if r.property == "agreement")
    assert agreement.status == "fail", agreement.message
    assert agreement.counterexample, "a failure names its minimal counterexample"


@pytest.mark.parametrize("scale_of_terms", [True, False], ids=["terms before cancellation", "the result"])
def test_the_error_scale_is_that_of_the_terms_before_cancellation(scale_of_terms):
    """CONTRIBUTING's rule: with the result as the scale, a correct straightforward evaluation fails."""

    def reference(input, target, reduction="mean", delta=1.0) -> Terms:
        return _terms(input, target, delta, scale_of_terms)

    reference.__name__ = NAME
    candidate = loss_reference(reference)
    candidate.gradient("input", "target")(_pseudo_huber_grad)
    entry = dataclasses.replace(ENTRY, reference=candidate)
    agreement = next(r for r in _check(own_pseudo_huber_loss, entry, ("float64",)) if r.property == "agreement")
    assert agreement.status == ("pass" if scale_of_terms else "fail"), agreement.message
