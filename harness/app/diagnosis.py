"""The convention that differs: when a property fails, which variant of the contract the implementation follows.

A failing implementation is often right under another convention: a catalog variant it follows unannounced
(smp's Dice counting its smoothing twice, torchvision's detached CIoU alpha), or one of the usual conventions no
variant names (a 'mean' that divides by the batch size, a per-class 'none' output, a constant factor, a float32
computation of a float64 call). ``diagnose`` tries each candidate and returns the sentence of the first one the
implementation follows, "" when none does (a defect, reported as such).

A candidate is the reference under a changed convention (the entry's variant at another value, a 'mean' over
another count, the loss times a factor) or the implementation's output read another way (an extra class axis
summed). It is reported only when all of these hold:

* the canonical contract does not match on the counterexample (the failure is a difference of value);
* the candidate matches on the counterexample;
* it matches on every one of ``AT_LEAST`` or more other examples, drawn reproducibly (``seeded.seeded_examples``,
  the entry's own builder) with the counterexample's parameters, and the canonical fails on at least one of
  them: one coincidental match is not enough.

"Matches" is the tolerance policy (``tolerance.compare`` with the entry's ulps, in the run's dtype; the float32
candidate judges a float64 call by float32's policy) on the value, and on every gradient where the property is
about gradients; a float32 computation's values must also be float32 numbers. The implementation is called once per
example (the counterexample and ``OTHERS`` more), whatever the number of candidates: a few dozen reference
evaluations and at most ``1 + OTHERS`` calls per failing result. Examples inside a recorded finding's domain are
never used (the search discarded them too).
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass

import numpy as np
from hypothesis.errors import HypothesisDeprecationWarning, UnsatisfiedAssumption

from lossguard.harness.kernel import seeded, tolerance
from lossguard.harness.kernel.failures import Failure
from lossguard.harness.kernel.frameworks.base import Outcome
from lossguard.harness.kernel.model import DTYPES, Example, PropertyResult
from lossguard.harness.kernel.severity import VALIDATION_PROPERTY
from lossguard.harness.kernel.subject import Subject
from lossguard.properties.generic import kink_mask
from lossguard.reference._core import Gradient

OTHERS = 6  # seeded examples drawn beside the counterexample
AT_LEAST = 3  # of them judged (every one matching) before a candidate is reported
GRADIENT_PROPERTY = "gradient"
DTYPE_PROPERTY = "dtype"  # the reference-free check of the output's dtype
DIAGNOSED = ("fail", "xfail")  # a new failure, and a recorded finding (its witness): both may be a convention
GRADIENT_MESSAGE = "d loss / d"  # how every failure of a gradient begins (``Subject.expect_close``'s what)
_REFERENCE_REFUSES = (ValueError, ArithmeticError, IndexError, NotImplementedError)


@dataclass(frozen=True)
class Expected:
    """A candidate's numbers on one example: the value, its error scale, and (lazily) the gradients."""

    value: np.ndarray
    scale: np.ndarray
    grads: Callable[[], Mapping[str, Gradient]]


@dataclass(frozen=True)
class Candidate:
    """One convention the implementation may follow.

    expect: (subject, example) -> the candidate's ``Expected``, None where it does not apply to the example.
    view: (the implementation's outcome, the candidate's output shape) -> that outcome as the candidate reads it
        (an extra axis reduced); None: it cannot.
    policy: the dtype whose tolerance judges it (None: the run's).
    implies: what the convention implies of the implementation's own values, beyond agreement (a float32
        computation returns float32 numbers); None: nothing.
    """

    sentence: str
    expect: Callable[[Subject, Example], Expected | None]
    view: Callable[[Outcome, tuple[int, ...]], Outcome | None] = lambda outcome, shape: outcome
    policy: str | None = None
    implies: Callable[[np.ndarray], bool] | None = None


# --- entry point ----------------------------------------------------------------------------------------------


def diagnose(result: PropertyResult, subject: Subject) -> str:
    """The convention ``subject``'s implementation follows where ``result`` failed, as a sentence; "" when the
    result is no ``fail`` (or recorded finding, ``xfail``) with a failing example, or no candidate is verified (a
    defect). A failure of the output's dtype is diagnosed by ``_computes_in``."""
    if result.status not in DIAGNOSED or result.example is None or result.property == VALIDATION_PROPERTY:
        return ""  # invalid input accepted is a validation gap under every convention (its example is not valid)
    if not set(subject.spec.args) <= set(result.example.args):
        return ""  # not a call of the loss (a scoring rule's distributions p and q): no convention to try
    if result.property == DTYPE_PROPERTY:
        return _computes_in(subject, result.example)
    gradients = result.property == GRADIENT_PROPERTY or result.message.startswith(GRADIENT_MESSAGE)
    counterexample = result.example
    observed = _observe(subject, counterexample, gradients)
    if observed is None or _agrees(subject, CANONICAL, counterexample, observed, gradients) is not False:
        return ""
    matching = [
        c
        for c in candidates(subject, counterexample, observed)
        if _agrees(subject, c, counterexample, observed, gradients) is True
    ]
    if not matching:
        return ""
    others = list(_other_observations(subject, counterexample, gradients))
    return next((c.sentence for c in matching if _verified(subject, c, others, gradients)), "")


def _computes_in(subject: Subject, counterexample: Example) -> str:
    """A ``dtype`` failure whose output is of a lower precision than the call's, on the counterexample and on every
    other example it takes: the computation's dtype, as a sentence ("" otherwise: a dtype of more precision, or
    one that changes with the input, is no convention)."""
    call = subject.dtype
    outputs = {
        o.dtype
        for o in (_observe(subject, e, False) for e in (counterexample, *_other_examples(subject, counterexample)))
        if o is not None
    }
    if len(outputs) != 1:
        return ""
    (output,) = outputs
    if output not in DTYPES or tolerance.roundoff(output) <= tolerance.roundoff(call):
        return ""
    return f"computes in {output}: a {call} call returns {output} (its {call} result is {output}-accurate at best)"


def _verified(subject: Subject, candidate: Candidate, others: list[tuple[Example, Outcome]], gradients: bool) -> bool:
    """Whether ``candidate`` matches every judged one of ``others`` (at least ``AT_LEAST``), and the canonical
    fails on one of them at least."""
    judged = 0
    discriminates = False
    for example, observed in others:
        verdict = _agrees(subject, candidate, example, observed, gradients)
        if verdict is False:
            return False
        if verdict is True:
            judged += 1
            discriminates = discriminates or _agrees(subject, CANONICAL, example, observed, gradients) is False
    return judged >= AT_LEAST and discriminates


# --- the implementation's outcomes ---------------------------------------------------------------------------


def _observe(subject: Subject, example: Example, gradients: bool) -> Outcome | None:
    """The implementation's value (and gradients) on ``example``; None where it does not take it or raises."""
    if not subject.supports(example):
        return None
    names = subject.differentiable(example) if gradients else ()
    try:
        # Subject.call discards an unsupported example with hypothesis.assume, which only warns outside a test:
        # every example here was checked with Subject.supports first
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", HypothesisDeprecationWarning)
            with np.errstate(all="ignore"):
                return subject.call(example, grad=names)
    except (Failure, UnsatisfiedAssumption):
        return None


def _other_examples(subject: Subject, counterexample: Example) -> Iterator[Example]:
    """Up to ``OTHERS`` typical examples of the entry, seeded, with the counterexample's parameters (those that are
    arrays shaped by the example, such as weights, at their defaults), projected into the implementation's domain
    and rounded to the dtype as every draw is."""
    defaults = {**subject.spec.params, **subject.spec.variant_defaults}
    params = {
        k: defaults.get(k) if isinstance(v, np.ndarray) and v.ndim else v for k, v in counterexample.params.items()
    }
    for example in seeded.seeded_examples(subject.spec, count=OTHERS, dtype=subject.dtype, choose=lambda s: params):
        for part in subject.impl.domain:
            if part.project is not None and not part.contains(example):
                example = part.project(example)
        yield subject.rounded(example)


def _other_observations(subject: Subject, counterexample: Example, gradients: bool) -> Iterator[tuple]:
    """(example, the implementation's outcome) for the other examples it takes, those inside a recorded finding's
    domain discarded (``Subject.excluded``: the search discarded them too)."""
    for example in _other_examples(subject, counterexample):
        if any(f.covers(example, subject.dtype, "") for f in subject.excluded):
            continue
        observed = _observe(subject, example, gradients)
        if observed is not None:
            yield example, observed


# --- judging ------------------------------------------------------------------------------------------------


def _agrees(subject: Subject, candidate: Candidate, example: Example, observed: Outcome, gradients: bool):
    """Whether the implementation's ``observed`` outcome matches ``candidate`` on ``example`` under the tolerance
    policy: True, False, or None where nothing could be judged (the candidate does not apply, or every element
    lies outside what the policy judges)."""
    try:
        with np.errstate(all="ignore"):
            expected = candidate.expect(subject, example)
    except _REFERENCE_REFUSES:
        return None
    if expected is None:
        return None
    seen = candidate.view(observed, np.shape(expected.value))
    if seen is None or np.shape(seen.value) != np.shape(expected.value):
        return False
    if candidate.implies is not None and not candidate.implies(seen.value):
        return False
    policy = candidate.policy or subject.dtype
    inside = tolerance.representable(expected.value, subject.dtype) | np.isnan(expected.value)
    verdicts = [_close(seen.value, expected.value, expected.scale, inside, policy, subject.spec.ulps)]
    if gradients and _gradients_judgeable(subject, expected):
        verdicts += _gradient_verdicts(subject, example, seen, expected, policy)
    judged = [v for v in verdicts if v is not None]
    return all(judged) if judged else None


def _close(actual, expected, scale, mask, dtype: str, ulps: float) -> bool | None:
    """``tolerance.compare`` where ``mask`` and the scale bounds something: True, False, None (nothing judged)."""
    actual, expected = np.asarray(actual, dtype=np.float64), np.asarray(expected, dtype=np.float64)
    comparison = tolerance.compare(actual, expected, np.broadcast_to(scale, expected.shape), dtype, ulps)
    judged = comparison.judgeable & np.broadcast_to(mask, expected.shape)
    if not np.any(judged):
        return None
    return not bool(np.any(comparison.failing & judged))


def _gradients_judgeable(subject: Subject, expected: Expected) -> bool:
    """Gradients are judged where the value is representable in the dtype (else autograd's intermediates overflow
    too), as the gradient property judges them."""
    return bool(np.all(tolerance.representable(expected.value, subject.dtype)))


def _gradient_verdicts(subject, example, seen: Outcome, expected: Expected, policy: str) -> list[bool | None]:
    """One verdict per differentiable argument of ``example``: the implementation's gradient against the
    candidate's where representable and off the entry's kinks (the gradient property's mask); False for a missing
    gradient or one of another shape."""
    grads = expected.grads()
    verdicts: list[bool | None] = []
    for name in subject.differentiable(example):
        actual, reference = seen.grads.get(name), grads.get(name)
        if reference is None:
            continue
        if actual is None or np.shape(actual) != np.shape(reference.value):
            verdicts.append(False)
            continue
        kinks = kink_mask(subject, example, np.shape(reference.value))
        inside = tolerance.representable(reference.value, subject.dtype) & ~kinks
        verdicts.append(_close(actual, reference.value, reference.scale, inside, policy, subject.spec.ulps))
    return verdicts


# --- the candidates -----------------------------------------------------------------------------------------


def _reference(subject: Subject, example: Example) -> Expected:
    """The reference's numbers on ``example`` as it is."""
    with np.errstate(all="ignore"):
        return Expected(
            subject.reference(example),
            subject.scale(example),
            lambda: subject.spec.reference.grad(**example.kwargs()),
        )


def _scaled(expected: Expected, factor: float) -> Expected:
    """``expected`` times ``factor`` (value, scale and gradients)."""

    def grads() -> dict[str, Gradient]:
        return {k: Gradient(g.value * factor, np.abs(g.scale * factor)) for k, g in expected.grads().items()}

    return Expected(expected.value * factor, np.abs(expected.scale * factor), grads)


CANONICAL = Candidate("the canonical contract", _reference)


def candidates(subject: Subject, counterexample: Example, observed: Outcome) -> list[Candidate]:
    """Every candidate for a failure on ``counterexample`` (where the implementation gave ``observed``), in the order
    they are tried: the entry's variants, the reduction's normaliser, a per-class 'none' output, a constant factor,
    a float32 computation."""
    return [
        *_variants(subject),
        *_normalisers(subject, counterexample),
        *_per_class(subject, counterexample, observed),
        *_factors(subject, counterexample),
        *_float32(subject),
    ]


def _variants(subject: Subject) -> Iterator[Candidate]:
    """Each variant of the entry the binding does not pin, at each of its other values (``LossSpec.alternatives``)."""
    spec = subject.spec
    for name in spec.variants:
        if name in subject.impl.fixed:
            continue
        for value in spec.alternatives(name):
            sentence = (
                f"matches {spec.name} with {name}={value!r}; differs from the canonical "
                f"({name}={spec.variant_defaults[name]!r})"
            )
            yield Candidate(sentence, lambda s, e, name=name, value=value: _reference(s, e.replace(**{name: value})))


# the counts a reduction may divide by: (words, count of an example), in the order tried and named
Count = Callable[[Subject, Example], float | None]


def _first(subject: Subject, example: Example) -> np.ndarray:
    return np.asarray(example.args[subject.spec.args[0]])


def _none_elements(subject: Subject, example: Example) -> float | None:
    return float(np.size(subject.reference(example.replace(reduction="none"))))


def _batch(subject: Subject, example: Example) -> float | None:
    first = _first(subject, example)
    return float(first.shape[0]) if first.ndim else None


def _input_elements(subject: Subject, example: Example) -> float | None:
    return float(_first(subject, example).size)


def _classes(subject: Subject, example: Example) -> float | None:
    """C, axis 1 of the first argument ((N, C, *) class scores and masks); None for fewer axes."""
    first = _first(subject, example)
    return float(first.shape[1]) if first.ndim >= 2 else None


def _count_words(subject: Subject, example: Example) -> list[tuple[str, Count]]:
    """The counts a reduction may divide by, each named with its number on ``example``."""
    first = subject.spec.args[0]
    named = [
        ("the {:g} elements", _none_elements),
        ("the batch size N = {:g}", _batch),
        (f"the {{:g}} elements of {first}", _input_elements),
        ("the classes C = {:g}", _classes),
        ("1, a sum", lambda s, e: 1.0),
    ]
    words = []
    for template, count in named:
        number = count(subject, example)
        if number is not None:
            words.append((template.format(number), count))
    return words


def _canonical_normaliser(subject: Subject, example: Example) -> float:
    """What the canonical ``example``'s reduction divides the sum by (1 for 'sum')."""
    if example.params["reduction"] == "sum":
        return 1.0
    normaliser = subject.spec.reference.terms(**example.kwargs()).normaliser
    return float(np.size(subject.reference(example.replace(reduction="none"))) if normaliser is None else normaliser)


def _normalisers(subject: Subject, counterexample: Example) -> Iterator[Candidate]:
    """'mean' (or 'sum') as the reference's 'sum' divided by another count: the batch size, the 'none' output's
    elements, the first argument's, the classes, 1 (a 'mean' that sums, a 'sum' that averages: the two swapped)."""
    reduction = counterexample.params.get("reduction")
    if reduction not in ("mean", "sum") or "reduction" not in subject.spec.params:
        return
    words = _count_words(subject, counterexample)
    canonical = _canonical_normaliser(subject, counterexample)
    named = "1, a sum" if reduction == "sum" else None  # a 'sum' divides by nothing, whatever else counts 1
    named = named or next((w for w, count in words if count(subject, counterexample) == canonical), f"{canonical:.6g}")
    for word, count in words:
        sentence = f"the {reduction!r} divides by {word} (the canonical: {named})"
        yield Candidate(sentence, lambda s, e, count=count: _divided_sum(s, e, count(s, e)))


def _divided_sum(subject: Subject, example: Example, count: float | None) -> Expected | None:
    """The reference's 'sum' on ``example`` divided by ``count`` (its scale as ``reduce_scale``'s 'mean' forms it)."""
    if not count:
        return None
    total = _reference(subject, example.replace(reduction="sum"))
    divided = _scaled(total, 1.0 / count)
    return Expected(divided.value, divided.scale + np.abs(divided.value), divided.grads)


def _per_class(subject: Subject, counterexample: Example, observed: Outcome) -> Iterator[Candidate]:
    """A 'none' output with an extra axis (the classes) whose sum, or mean, over that axis is the canonical 'none'."""
    if counterexample.params.get("reduction", "none") != "none":
        return
    expected = np.shape(subject.reference(counterexample))
    shape = np.shape(observed.value)
    if len(shape) != len(expected) + 1:
        return
    classes = _classes(subject, counterexample)
    for axis in range(len(shape)):
        if shape[:axis] + shape[axis + 1 :] != expected:
            continue
        size = shape[axis]
        what = f"the C = {size} classes" if size == classes else f"size {size}"
        for how in ("sum", "mean"):
            sentence = f"the 'none' output is per class: an extra axis {axis} ({what}) whose {how} is the canonical"
            yield Candidate(sentence, _reference, view=lambda o, s, axis=axis, how=how: _reduced(o, s, axis, how))


def _extra_axis(shape: tuple[int, ...], expected: tuple[int, ...], axis: int) -> int | None:
    """The axis of ``shape`` that ``expected`` lacks: ``axis`` where deleting it gives ``expected``, else the first
    where they differ (an unbatched example's class axis is 0 where a batched one's is 1); None: no such axis."""
    if len(shape) != len(expected) + 1:
        return None
    if axis < len(shape) and shape[:axis] + shape[axis + 1 :] == expected:
        return axis
    first = next((k for k, n in enumerate(expected) if shape[k] != n), len(expected))
    return first if shape[:first] + shape[first + 1 :] == expected else None


def _reduced(outcome: Outcome, expected: tuple[int, ...], axis: int, how: str) -> Outcome | None:
    """The outcome with its extra axis (``_extra_axis``) summed or averaged; a mean's gradients (those of the
    summed output) divided by the axis' size, as the canonical sum's would be."""
    axis = _extra_axis(np.shape(outcome.value), expected, axis)
    if axis is None:
        return None
    size = np.shape(outcome.value)[axis]
    if how == "sum":
        return Outcome(np.sum(outcome.value, axis=axis), outcome.grads, outcome.dtype)
    grads = {k: g / size for k, g in outcome.grads.items()}
    return Outcome(np.mean(outcome.value, axis=axis), grads, outcome.dtype)


def _factors(subject: Subject, counterexample: Example) -> Iterator[Candidate]:
    """The loss a constant factor times the canonical: 1/2, 2, the classes C (where the first argument has them)."""
    for word, factor in (("1/2", 0.5), ("2", 2.0)):
        yield Candidate(f"the loss is the canonical times {word}", lambda s, e, k=factor: _scaled(_reference(s, e), k))

    def by_classes(subject: Subject, example: Example) -> Expected | None:
        classes = _classes(subject, example)
        return None if classes is None else _scaled(_reference(subject, example), classes)

    classes = _classes(subject, counterexample)
    if classes is not None:
        yield Candidate(f"the loss is the canonical times the classes C = {classes:g}", by_classes)


def _float32(subject: Subject) -> Iterator[Candidate]:
    """A float64 call computed in float32: the canonical value under float32's tolerance policy."""
    if subject.dtype == "float64":
        sentence = "computes in float32; its float64 result is float32-accurate"
        yield Candidate(sentence, _reference, policy="float32", implies=_float32_numbers)


def _float32_numbers(values: np.ndarray) -> bool:
    """Whether every finite value is a float32 number: what a float32 computation cast to float64 returns (a float64
    computation a few ulps off, imprecise but not float32, returns other numbers)."""
    values = np.asarray(values, dtype=np.float64)
    finite = values[np.isfinite(values)]
    with np.errstate(all="ignore"):
        return bool(np.all(finite.astype(np.float32).astype(np.float64) == finite))
