"""One finding per root cause, each with its severity (lossguard.reports.findings, lossguard.harness.kernel.severity).

The planted root cause: a Huber loss that divides by |input - target| on its way (``d**2 / |d|`` for the
quadratic part), so it is NaN wherever an input equals its target. One defect, many symptoms: the value, the
gradient, the loss at a perfect prediction, stability and the Huber limits all see it, in every dtype, and
the report must name it once with everything it breaks.
"""

from __future__ import annotations

import math

import pytest
import torch
from judging import CI

from lossguard.harness.app.inventory import bind
from lossguard.harness.app.runner import run_one
from lossguard.harness.kernel.model import DTYPES, PropertyResult
from lossguard.harness.kernel.severity import DEFAULT_FAIL_ON, SEVERITIES, classify, departure, fails_gate
from lossguard.reports.findings import group

FIVE = ("agreement", "gradient", "zero_at_perfect", "stability", "huber_limits")


def _huber_through_abs(input, target, delta=1.0, reduction="mean"):
    """Huber written as |d| * |d| / 2 for |d| <= delta, but through d**2 / |d|: 0 / 0 = NaN at d = 0."""
    d = input - target
    a = d.abs()
    quadratic = 0.5 * (d * d / a) * a
    loss = torch.where(a <= delta, quadratic, delta * (a - 0.5 * delta))
    return {"none": loss, "sum": loss.sum(), "mean": loss.mean()}[reduction]


@pytest.fixture(scope="module")
def planted_results() -> list[PropertyResult]:
    impl = bind("huber_loss", _huber_through_abs, "tests.huber_through_abs", "user")
    return [run_one(impl, prop, "cpu", dtype, CI) for prop in FIVE for dtype in DTYPES]


def test_one_root_cause_breaking_five_properties_in_four_dtypes_is_one_finding(planted_results):
    failing = [r for r in planted_results if r.status == "fail"]
    assert {r.property for r in failing} == set(FIVE), [(r.property, r.dtype, r.status) for r in planted_results]
    assert {r.dtype for r in failing} == set(DTYPES)
    causes = group(planted_results)
    assert len(causes) == 1, [c.breaks() for c in causes]
    (cause,) = causes
    assert cause.severity == "nan-inf"
    assert len(cause.members) == len(failing)
    listed = ", ".join(cause.breaks())
    for prop in FIVE:
        assert prop in listed
    assert all(dtype in listed for dtype in DTYPES)


def _result(**fields) -> PropertyResult:
    """A result as the runner makes one: its severity classified unless given."""
    base = {"loss": "huber_loss", "implementation": "mine", "kind": "user", "device": "cpu", "dtype": "float32"}
    result = PropertyResult(**{**base, "property": "agreement", "status": "fail", **fields})
    result.severity = result.severity or classify(result)
    return result


def test_two_departures_of_one_implementation_are_two_findings():
    nan = "loss at index (0,) = np.float64(nan), but should be np.float64(0.5)"
    off = "loss at index (0,) = np.float64(1.0), but should be np.float64(0.5)"
    results = [
        _result(message=nan, counterexample="input=[0.]", dtype="float32", actual=math.nan, expected=0.5),
        _result(message=nan.replace("0.5", "0.25"), counterexample="input=[1.]", dtype="float16"),
        _result(message=off, counterexample="input=[3.]", property="gradient", actual=1.0, expected=0.5),
    ]
    causes = group(results)
    assert [len(c.members) for c in causes] == [2, 1]  # the NaN at two inputs (one shape), the factor of 2 apart
    assert [c.severity for c in causes] == ["nan-inf", "wrong"]


def test_results_of_two_implementations_never_share_a_root_cause():
    same = {"message": "loss = nan", "counterexample": "input=[0.]"}
    causes = group([_result(**same), _result(**same, implementation="theirs")])
    assert len(causes) == 2


def test_recorded_findings_group_by_reason_and_by_definition_is_marked():
    reason = "NaN at the kink [recorded against lib 1.0; domain: d = 0]; observed: loss = nan"
    by_def = "hinge is not proper [by definition; domain: p = 1/2]; observed: ..."
    results = [
        _result(status="xfail", message=reason, dtype="float32", actual=math.nan, expected=0.0),
        _result(status="xfail", message=reason.replace("loss = nan", "grad = nan"), dtype="float16"),
        _result(status="xfail", message=by_def, property="proper_scoring"),
    ]
    causes = group(results)
    assert len(causes) == 2
    lib = next(c for c in causes if not c.by_definition)
    assert lib.reason == "NaN at the kink [recorded against lib 1.0; domain: d = 0]" and len(lib.members) == 2
    assert next(c for c in causes if c.by_definition).recorded


# --- severity: computed from the numbers, at the boundaries of each class ------------------------------------


@pytest.mark.parametrize(
    ("actual", "expected", "scale", "severity"),
    [
        (math.nan, 0.5, 0.5, "nan-inf"),
        (math.inf, 0.5, 0.5, "nan-inf"),
        (math.nan, None, None, "nan-inf"),  # a finiteness check: the exact value is not known, but finite
        (1.0011, 1.0, 1.0, "wrong"),  # just beyond 1e-3 of the value
        (1.0009, 1.0, 1.0, "imprecise"),  # just within
        (1.0 + 1.1e-3 * 4.0, 1.0, 4.0, "wrong"),  # weighed against the scale when the terms are larger
        (1.0 + 0.9e-3 * 4.0, 1.0, 4.0, "imprecise"),
        (0.0, 1.8e-35, 1.8e-35, "imprecise"),  # below float32's u: vanishes in any loss of order one
        (0.0, 1.0e-6, 1.0e-6, "wrong"),  # above it: 100% off is wrong
        (2.0, math.nan, None, "wrong"),  # a finite value where the exact one is not: no weight, a violation
    ],
)
def test_severity_from_numbers(actual, expected, scale, severity):
    assert classify(_result(actual=actual, expected=expected, scale=scale)) == severity


def test_severity_of_statuses_and_checks_without_numbers():
    assert classify(_result(status="error", message="raised ValueError: x")) == "crash"
    assert classify(_result(property="invalid_input", message="result = 0.1, but should be an exception")) == (
        "validation-gap"
    )
    assert classify(_result(message="input modified in place")) == "wrong"
    assert classify(_result(actual=2.0, expected=1.0, convention="the 'mean' sums")) == "convention"
    assert classify(_result(status="pass")) == "" and classify(_result(status="skip")) == ""


def test_departure_is_relative_to_the_value_s_scale():
    assert departure(_result(actual=1.5, expected=1.0, scale=1.0)) == pytest.approx(0.5)
    assert departure(_result(actual=1.5, expected=1.0, scale=10.0)) == pytest.approx(0.05)
    assert departure(_result(message="no numbers")) is None


@pytest.mark.parametrize("level", SEVERITIES)
def test_fail_on_fails_exactly_the_classes_at_or_above_the_level(level):
    for severity in SEVERITIES:
        result = _result(severity=severity)
        assert fails_gate(result, level) == (SEVERITIES.index(severity) <= SEVERITIES.index(level))


def test_stale_records_always_fail_and_recorded_findings_never():
    assert fails_gate(_result(status="xpass"), "crash")
    assert not fails_gate(_result(status="xfail", severity="crash"), DEFAULT_FAIL_ON)
    assert DEFAULT_FAIL_ON == "validation-gap"  # the default: everything but imprecise and convention
