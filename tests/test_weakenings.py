"""The suite catches weakenings of lossguard's own checks: each weakening below is planted as a monkeypatched copy
of a property (``PROPERTIES[name]`` replaced by a weakened copy), of the tolerance policy or of a reference,
and the planted-bug cases of that property (tests/test_properties_catch_bugs.py's CASES) are run against it: at
least one planted bug must no longer be caught. A weakening that every planted bug survives would be a hole in
the proof that the checks can fail.

The weakenings: every declared sub-check of a property with several, dropped in turn (its comparisons still run,
its failures are ignored); the ones an outside audit planted (gradient compared on element 0 only, ``reduction``
without its 'sum' branch, ``invalid_input`` accepting an empty message, either half of the label-smoothing
direction, ``zero_at_perfect`` without its monotone check, ``kl_divergence`` without Pinsker, the focal gamma = 0
identity dropped, weakly proper scoring accepted by ``proper_scoring``); every tolerance x4; the cross-entropy
reference's error scale x30.
"""

from __future__ import annotations

import copy
import dataclasses
import importlib
from collections.abc import Callable

import numpy as np
import pytest
from hypothesis import strategies as st
from judging import judge
from test_properties_catch_bugs import CASES, FAMILY_TESTS

from lossguard.catalog import CATALOG
from lossguard.harness.kernel import tolerance
from lossguard.harness.kernel.model import BINARY
from lossguard.properties import identities
from lossguard.properties.base import PROPERTIES
from lossguard.properties.reference_free import FREE_TAGS


def _family_cases() -> list[tuple]:
    """The family modules' planted-bug cases, as (property, sub-check, loss, wrong, dtype, None)."""
    cases = []
    for name in FAMILY_TESTS:
        module = importlib.import_module(name)
        named = getattr(module, "SUB_CHECKS", {})
        for prop, loss, wrong, dtype, *_ in module.CASES:
            cases.append((prop, named.get(wrong, PROPERTIES[prop].checks[0]), loss, wrong, dtype, None))
    return cases


ALL_CASES = [*CASES, *_family_cases()]


def _cases(prop: str, check: str | None = None) -> list[tuple]:
    """The planted-bug cases of ``prop``, those of sub-check ``check`` first (cheapest proof of an escape)."""
    cases = [case for case in ALL_CASES if case[0] == prop]
    return sorted(cases, key=lambda case: case[1] != check)


def _escapes(cases: list[tuple]) -> list[str]:
    """The planted bugs among ``cases`` no longer caught: ``pass``, or ``skip`` where the weakened copy judged
    nothing (stops at the first: one is the proof; an ``error`` is no escape, it is a defect of the copy)."""
    for prop, _check, loss, wrong, dtype, _right in cases:
        result = judge(prop, loss, wrong, dtype)
        assert result.status != "error", f"{prop}/{wrong.__name__}: {result.status} {result.message}"
        if result.status != "fail":
            return [f"{prop}/{wrong.__name__}: {result.status}"]
    return []


# --- weakened copies of a property ----------------------------------------------------------------------------


def _intercepting(prop: str, expect_close=None, fail=None) -> Callable:
    """A copy of property ``prop`` whose Subject judges through the given replacements of ``expect_close`` and
    ``fail`` (each receives the Subject's own bound method first)."""
    original = PROPERTIES[prop].check

    def weakened(subject, data):
        if not getattr(subject, "weakened", False):  # once per Subject: it judges every example of the run
            if expect_close is not None:
                subject.expect_close = lambda *a, _own=subject.expect_close, **k: expect_close(_own, subject, *a, **k)
            if fail is not None:
                subject.fail = lambda *a, _own=subject.fail, **k: fail(_own, *a, **k)
            subject.weakened = True
        original(subject, data)

    return weakened


def without(prop: str, check: str) -> Callable:
    """``prop`` with sub-check ``check`` dropped: its comparisons run, its failures are ignored."""

    def expect_close(own, subject, *args, **kwargs):
        if kwargs.get("check") == check:
            _what, actual, expected, scale = args[:4]
            return subject.compare(actual, expected, scale, kwargs.get("slack", 1.0))
        return own(*args, **kwargs)

    def fail(own, message, example=None, check_=None, **kwargs):
        chosen = kwargs.get("check", check_)
        if chosen == check:
            return None
        return own(message, example, check=chosen)

    return _intercepting(prop, expect_close, fail)


def gradient_on_first_element_only() -> Callable:
    """``gradient`` comparing each argument's gradient on its element 0 only."""

    def expect_close(own, subject, what, actual, expected, scale, example, mask=None, **kwargs):
        shape = np.broadcast_shapes(np.shape(actual), np.shape(expected))
        first = np.zeros(shape, dtype=bool)
        first.reshape(-1)[:1] = True
        mask = first if mask is None else first & np.broadcast_to(mask, shape)
        return own(what, actual, expected, scale, example, mask=mask, **kwargs)

    return _intercepting("gradient", expect_close=expect_close)


def proper_scoring_accepting_ties(subject, data) -> None:
    """A copy of ``proper_scoring`` that accepts a tie (weakly proper): it fails only where reporting q does better
    than reporting p, not where it does as well."""
    binary = subject.spec.outcome == BINARY
    n_classes = 2 if binary else data.draw(st.integers(2, 4), label="C")
    p = identities._simplex(data, n_classes, "p")
    q = identities._report(data, p)
    subject.need(np.sum(np.abs(p - q)) >= 0.2)

    def expected_loss(report):
        total, scale = 0.0, 0.0
        for outcome in range(n_classes):
            example = subject.rounded(subject.spec.scoring(report, outcome))
            example = example.replace(**{k: v for k, v in subject.spec.params.items() if k not in example.params})
            total += p[outcome] * float(np.sum(subject.value(example)))
            scale += p[outcome] * float(np.sum(subject.scale(example)))
        return total, scale

    truthful, s1 = expected_loss(p)
    other, s2 = expected_loss(q)
    allowed = float(subject.compare(other, truthful, s1 + s2).allowed)
    if other < truthful - allowed:  # the weakening: >= instead of >
        subject.fail(f"expected loss reporting q is {other!r}, but should be >= {truthful!r}")


# --- weakened policy and references ---------------------------------------------------------------------------


def _tolerance_times_4(monkeypatch) -> None:
    compare = tolerance.compare
    monkeypatch.setattr(tolerance, "compare", lambda a, e, s, dtype, ulps: compare(a, e, s, dtype, 4 * ulps))


def _cross_entropy_scale_times_30(monkeypatch) -> None:
    spec = CATALOG["cross_entropy"]
    reference = copy.copy(spec.reference)
    scale = spec.reference.error_scale
    reference.error_scale = lambda *a, **k: 30 * np.asarray(scale(*a, **k))
    monkeypatch.setitem(CATALOG, "cross_entropy", dataclasses.replace(spec, reference=reference))


# name -> (how it is planted, the planted-bug cases run against it)
def _property(name: str, weakened: Callable) -> Callable:
    return lambda monkeypatch: monkeypatch.setitem(
        PROPERTIES, name, dataclasses.replace(PROPERTIES[name], check=weakened)
    )


AUDIT = {
    "gradient compared on element 0 only": (
        _property("gradient", gradient_on_first_element_only()),
        _cases("gradient", "first_argument"),
    ),
    "reduction without its 'sum' branch": (
        _property("reduction", without("reduction", "sum")),
        _cases("reduction", "sum"),
    ),
    "invalid_input accepting an empty message": (
        _property("invalid_input", without("invalid_input", "message")),
        _cases("invalid_input", "message"),
    ),
    "label smoothing: the loss need not grow with eps": (
        _property("label_smoothing", without("label_smoothing", "grows")),
        _cases("label_smoothing", "grows"),
    ),
    "label smoothing: the minimiser need not move towards uniform": (
        _property("label_smoothing", without("label_smoothing", "minimiser")),
        _cases("label_smoothing", "minimiser"),
    ),
    "proper_scoring accepting a weakly proper score": (
        _property("proper_scoring", proper_scoring_accepting_ties),
        _cases("proper_scoring"),
    ),
    "zero_at_perfect without its monotone check": (
        _property("zero_at_perfect", without("zero_at_perfect", "monotone")),
        _cases("zero_at_perfect", "monotone"),
    ),
    "kl_divergence without Pinsker": (
        _property("kl_divergence", without("kl_divergence", "pinsker")),
        _cases("kl_divergence", "pinsker"),
    ),
    "focal_identities without the gamma = 0 identity": (
        _property("focal_identities", without("focal_identities", "gamma_zero")),
        _cases("focal_identities", "gamma_zero"),
    ),
    "every tolerance x4": (_tolerance_times_4, _cases("reduction", "sum")),
    "the cross-entropy reference's error scale x30": (
        _cross_entropy_scale_times_30,
        [case for case in CASES if case[2] == "cross_entropy" and case[0] == "agreement"],
    ),
}

# every declared sub-check of a property with several, dropped in turn
SUB_CHECKS = {
    f"{prop} without its {check!r} check": (_property(prop, without(prop, check)), _cases(prop, check))
    for prop, spec in PROPERTIES.items()
    if len(spec.checks) > 1 and prop not in FREE_TAGS  # the reference-free ones: tests/test_reference_free.py
    for check in spec.checks
}

WEAKENINGS = {**AUDIT, **SUB_CHECKS}


def test_the_weakenings_list_names_the_audit_and_every_sub_check():
    assert len(AUDIT) == 11
    several = {
        (p, c) for p, spec in PROPERTIES.items() if len(spec.checks) > 1 and p not in FREE_TAGS for c in spec.checks
    }
    assert len(SUB_CHECKS) == len(several)
    assert all(cases for _plant, cases in WEAKENINGS.values()), "a weakening with no planted-bug case to run"


@pytest.mark.parametrize("name", list(WEAKENINGS))
def test_the_suite_catches_the_weakening(name, monkeypatch):
    plant, cases = WEAKENINGS[name]
    plant(monkeypatch)
    assert _escapes(cases), f"every planted bug is still caught with {name}: the suite misses this weakening"
