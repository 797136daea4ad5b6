"""What a property judges: one implementation of one catalog entry, in one dtype, on one device.

The Subject draws examples the implementation can take (only the parameters it accepts vary,
the others stay at their canonical defaults), rounds every float array to the dtype so that
reference and implementation see the same numbers, calls both, compares them under the
tolerance policy, records the worst error for the report and steers Hypothesis towards it.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from hypothesis import assume, target
from hypothesis import strategies as st

from lossguard.harness.kernel import strategies as S
from lossguard.harness.kernel import tolerance
from lossguard.harness.kernel.failures import PropertyFailure
from lossguard.harness.kernel.frameworks import binding as framework_binding
from lossguard.harness.kernel.frameworks.base import Outcome
from lossguard.harness.kernel.model import Example, Finding, Implementation, LossSpec

_REGIMES = st.sampled_from(["typical", "extreme"])


def format_value(value: Any) -> str:
    """A compact, exact, copy-pasteable rendering of a parameter or an array."""
    if isinstance(value, np.ndarray):
        if value.ndim == 0:
            return repr(value.item())
        return f"np.array({np.array2string(value, separator=', ', threshold=64, floatmode='unique')})"
    return repr(value)


def describe(example: Example) -> str:
    """The example as keyword arguments, e.g. ``input=np.array([0.5]), target=..., delta=1.0``."""
    return ", ".join(f"{k}={format_value(v)}" for k, v in example.kwargs().items())


def _snapshot(values: Mapping[str, Any]) -> dict[str, Any]:
    return {k: v.copy() if isinstance(v, np.ndarray) else v for k, v in values.items()}


@dataclass
class Observations:
    """What one property run saw: the worst error (in ulps of the scale), the examples tried, and the
    comparisons made (``Subject.judged``): a run that made none judged nothing, whatever it called.
    ``unjudged``: why the last judgement that could not judge anything judged nothing (the skip's reason).
    ``unmet``: a parameter value the property asked for that the implementation never computes with (its binding
    fixes another), the reason every draw was discarded when none was judged."""

    worst_ulps: float | None = None
    examples: int = 0
    comparisons: int = 0
    unjudged: str = ""
    unmet: str = ""
    # what the target received last, as a snapshot: rendered (``last_example``) only when a report asks, since
    # ``describe`` costs more than a small loss call and every call would otherwise pay it
    last_received: Example | None = None

    @property
    def last_example(self) -> str:
        """The last example the target received, as keyword arguments (``describe``); "" before any call."""
        return "" if self.last_received is None else describe(self.last_received)

    def received(self, example: Example) -> None:
        """Note ``example`` as the last one the target received (its arrays copied: a later in-place change by
        the judged code or a property cannot alter the counterexample reported)."""
        self.last_received = Example(_snapshot(example.args), _snapshot(example.params))

    def ulps(self, value: float) -> None:
        if np.isfinite(value):
            self.worst_ulps = value if self.worst_ulps is None else max(self.worst_ulps, value)


@dataclass
class Subject:
    spec: LossSpec
    impl: Implementation
    dtype: str
    device: str
    restriction: Mapping[str, Any] = field(default_factory=dict)  # parameters the property's domain pins
    witness: Example | None = None  # a recorded finding's example: every draw returns it
    excluded: tuple[Finding, ...] = ()  # findings whose domains the search discards (never judged)
    only_case: str | None = None  # the witness run of a finding naming an error case judges that case alone
    domain: Callable[[Example], bool] | None = None  # the property's exact domain on the entry (None: everywhere)
    related: Callable[[str], LossSpec] | None = None  # the application's catalog lookup (kernel knows no catalog)
    observations: Observations = field(default_factory=Observations)

    def __post_init__(self) -> None:
        self.binding = framework_binding(self.impl.framework)
        self.u = tolerance.roundoff(self.dtype)
        self.failed_example: Example | None = None  # the example of the last failure or call (findings' domains)
        self.begin_example()

    # --- examples ---------------------------------------------------------------------

    def accepts(self, name: str) -> bool:
        return name in self.impl.accepted

    def takes(self, name: str, value: Any) -> bool:
        """Whether an example with parameter ``name`` = ``value`` reaches the implementation as asked: it accepts
        the parameter, or its binding computes with that value unasked (optax's losses have no ``reduction`` and
        return per-element values: reduction='none' fixed). A property that only needs 'none' needs this."""
        if self.accepts(name):
            return True
        return name in self.impl.fixed and self._computes({name: value})

    def draw(self, data: Any, regime: str = "typical", **fixed: Any) -> Example:
        """Draw a valid example; the property's restriction (from its catalog tag) and ``fixed`` pin
        parameters (only those the implementation accepts are pinned, the rest keep their defaults;
        the runner skips a property whose restriction needs a parameter the implementation lacks)."""
        accepted = self.impl.accepted
        # what the implementation computes with unasked (its binding's fixed values) is pinned on every draw; a
        # property asking for another value of one asks for what it never computes: discarded, never judged
        asked = {**self.restriction, **fixed}
        assume(self._computes(asked))
        pinned = {**{k: v for k, v in asked.items() if k in accepted}, **self.impl.fixed}

        # the canonical parameters, and the reference-only variants the implementation offers (checked too)
        variants = {k: v for k, v in self.spec.variant_defaults.items() if k in accepted or k in self.impl.fixed}
        defaults = {**self.spec.params, **variants}
        if self.witness is not None:
            params = {**defaults, **self.witness.params, **pinned}
            return self.rounded(Example(dict(self.witness.args), params))

        def build(draw: Callable) -> Example:
            def choose(strategies: Mapping[str, st.SearchStrategy[Any]]) -> dict[str, Any]:
                return S.draw_params(draw, strategies, defaults, accepted, pinned)

            chosen = draw(_REGIMES) if regime == "any" else regime
            return self.spec.examples(draw, self.dtype, chosen, choose)

        return self.rounded(self.supported(data.draw(S.built(build), label="example")))

    def supported(self, example: Example) -> Example:
        """``example`` projected into the parts of the contract the implementation supports (its binding's
        domain); discarded when a part cannot take it (never used to judge the implementation)."""
        for part in self.impl.domain:
            if part.project is not None and not part.contains(example):
                example = part.project(example)
        assume(self.impl.supports(example))
        return example

    def supports(self, example: Example) -> bool:
        """Whether the implementation supports ``example`` (a property's own example, an error case): inside its
        domain, and with the values it computes with unasked (its binding's ``fixed``, e.g. optax's
        reduction='none': an example of reduction='sum' asks for what it never computes)."""
        return self.impl.supports(example) and all(self.computes_with(k, v) for k, v in example.params.items())

    def _computes(self, asked: Mapping[str, Any]) -> bool:
        """Whether the implementation computes with every value ``asked``; if not, the first one it never computes
        with is noted (``Observations.unmet``: the skip's reason when no draw could be judged)."""
        for name, value in asked.items():
            if not self.computes_with(name, value):
                self.observations.unmet = (
                    f"{name}={value!r}, which this implementation never computes (its binding fixes "
                    f"{name}={self.impl.fixed[name]!r})"
                )
                return False
        return True

    def computes_with(self, name: str, value: Any) -> bool:
        """Whether parameter ``name`` = ``value`` is what the implementation computes with, as far as its fixed
        values say (compared after rounding to the dtype, as every draw is)."""
        if name not in self.impl.fixed:
            return True
        mine = self.rounded(Example({}, {"value": self.impl.fixed[name]})).params["value"]
        theirs = self.rounded(Example({}, {"value": value})).params["value"]
        if isinstance(mine, np.ndarray) or isinstance(theirs, np.ndarray):
            return bool(np.array_equal(mine, theirs, equal_nan=True))
        return bool(mine == theirs)

    def rounded(self, example: Example) -> Example:
        """Every float array and scalar parameter rounded to the dtype: what the implementation computes with."""

        def r(value: Any) -> Any:
            if isinstance(value, np.ndarray) and np.issubdtype(value.dtype, np.floating):
                return self.binding.round(value, self.dtype)
            if isinstance(value, float):  # a scalar parameter meets the tensor in its dtype (torch's promotion)
                return float(self.binding.round(np.asarray(value), self.dtype))
            return value

        return Example({k: r(v) for k, v in example.args.items()}, {k: r(v) for k, v in example.params.items()})

    def received_params(self, example: Example) -> dict[str, Any]:
        """The parameters the implementation receives: those of ``example`` it accepts."""
        return {k: v for k, v in example.params.items() if k in self.impl.accepted}

    def received(self, example: Example) -> Example:
        """``example`` as the implementation receives it (its arguments, the parameters it accepts): what is
        passed, and what a counterexample shows."""
        return Example(example.args, self.received_params(example))

    # --- calls ------------------------------------------------------------------------

    def call(
        self,
        example: Example,
        grad: Iterable[str] = (),
        watch_inputs: bool = False,
        requires_grad: bool = True,
        device: str | None = None,
        dtype: str | None = None,
    ) -> Outcome:
        """The implementation's outcome on ``example``, in ``dtype`` (default: the subject's; a reference-free
        property compares the implementation with itself in float64 on the same rounded inputs) on ``device``."""
        # an example a property built itself, outside what the implementation supports: discarded, never judged
        assume(self.supports(example))
        self.observations.examples += 1
        self.failed_example = example  # if the call raises, this is the example it raised on
        passed = self.received(example)
        self.observations.received(passed)  # what the target received, nothing it did not
        outcome = self.binding.call(
            self.impl,
            self.spec.args,
            passed,
            dtype or self.dtype,
            device or self.device,
            grad=grad,
            watch_inputs=watch_inputs,
            requires_grad=requires_grad,
        )
        if self.impl.output is None:
            return outcome
        return dataclasses.replace(outcome, value=np.asarray(self.impl.output(outcome.value, example.params)))

    def value(self, example: Example) -> np.ndarray:
        """The implementation's loss, checked for shape against the reference."""
        outcome = self.call(example)
        expected = self.reference(example)
        if outcome.value.shape != expected.shape:
            self.fail(f"output shape = {outcome.value.shape}, but should be {expected.shape}", example)
        return outcome.value

    def reference(self, example: Example, spec: LossSpec | None = None) -> np.ndarray:
        with np.errstate(all="ignore"):
            return (spec or self.spec).reference(**self._kwargs(example, spec))

    def scale(self, example: Example, spec: LossSpec | None = None) -> np.ndarray:
        with np.errstate(all="ignore"):
            return (spec or self.spec).reference.error_scale(**self._kwargs(example, spec))

    def _kwargs(self, example: Example, spec: LossSpec | None) -> dict[str, Any]:
        """``example`` as keywords of ``spec``'s reference: a related entry gets only those its reference takes
        (not this entry's variant keywords, which an implementation's binding pins on every draw)."""
        kwargs = example.kwargs()
        if spec is None or spec is self.spec:
            return kwargs
        return {k: v for k, v in kwargs.items() if k in spec.reference.signature.parameters}

    def differentiable(self, example: Example) -> tuple[str, ...]:
        """Differentiable arguments present in this example as float arrays the implementation receives."""
        names = []
        for name in self.spec.differentiable:
            value = example.args.get(name, example.params.get(name) if self.accepts(name) else None)
            if isinstance(value, np.ndarray) and np.issubdtype(value.dtype, np.floating):
                names.append(name)
        return tuple(names)

    def catalog(self, name: str) -> LossSpec:
        """Another catalog entry (identities relate a loss to another loss's reference)."""
        if self.related is None:
            raise LookupError(f"no catalog lookup given to this Subject, so entry {name!r} is unknown here")
        return self.related(name)

    def in_domain(self, example: Example) -> bool:
        """Whether ``example`` lies in the property's exact domain (the entry's ``domains`` predicate)."""
        return self.domain is None or bool(self.domain(example))

    # --- judgement --------------------------------------------------------------------

    def compare(self, actual: Any, expected: Any, scale: Any, slack: float = 1.0) -> tolerance.Comparison:
        """The element-wise comparison under the tolerance policy. A property judges with it (an inequality on
        its ``allowed``), so it counts as a comparison made when it has at least one element (``judged``)."""
        self.same_shape("result", actual, expected, self.failed_example)
        comparison = tolerance.compare(actual, expected, scale, self.dtype, self.spec.ulps * slack)
        self.judged(comparison.ulps.size)
        return comparison

    def same_shape(self, what: str, actual: Any, expected: Any, example: Example | None, check: str | None = None):
        """Fail unless ``actual`` has ``expected``'s shape (any shape against a scalar): an output or gradient of
        another shape is the implementation's failure with that message, never a broadcasting crash."""
        if np.ndim(expected) and np.shape(actual) != np.shape(expected):
            self.fail(f"{what} shape = {np.shape(actual)}, but should be {np.shape(expected)}", example, check)

    def judged(self, count: int = 1) -> None:
        """Record one comparison made, when it judged ``count`` > 0 elements or facts. ``expect_close`` and
        ``compare`` call it; a property calls it for a check that compares no numbers (an exception raised, the
        inputs left unmodified, a value finite). A run that records none is a ``skip``, never a ``pass``."""
        if count > 0:
            self.observations.comparisons += 1

    def unjudgeable(self, why: str) -> None:
        """Record why an example could not be judged (a property's yardstick unavailable on it): the reason a run
        that judged nothing gives for its ``skip``."""
        self.observations.unjudged = why

    def begin_example(self) -> None:
        """Called before each Hypothesis example."""
        self._example_worst: float | None = None
        self.failed_example = None

    def end_example(self) -> None:
        """Steer Hypothesis towards larger errors: one score per example, its worst error in ulps
        (one label keeps the search's Pareto front one-dimensional, hence cheap)."""
        if self._example_worst is not None:
            target(self._example_worst, label="worst error (ulps)")

    def observe(self, comparison: tolerance.Comparison) -> None:
        """Record the worst error seen, for the report and for steering."""
        worst = comparison.worst
        self.observations.ulps(worst)
        if np.isfinite(worst):
            self._example_worst = max(worst, self._example_worst or 0.0)

    def expect_close(
        self,
        what: str,
        actual: Any,
        expected: Any,
        scale: Any,
        example: Example,
        mask: Any = None,
        slack: float = 1.0,
        check: str | None = None,
    ) -> tolerance.Comparison:
        """Fail unless ``actual`` agrees with ``expected`` within the tolerance (where ``mask``); ``check``: the
        id of the property's sub-check this comparison is (see ``fail``)."""
        self.same_shape(what, actual, expected, example, check)
        comparison = tolerance.compare(actual, expected, scale, self.dtype, self.spec.ulps * slack)
        # outside the property's domain, and where the scale bounds nothing, nothing is judged, nor counted in the
        # worst case
        judgeable = comparison.judgeable
        mask = judgeable if mask is None else judgeable & np.broadcast_to(mask, judgeable.shape)
        judged = int(np.count_nonzero(mask))
        if judged < mask.size:
            comparison = tolerance.Comparison(
                np.where(mask, comparison.ulps, 0.0), comparison.allowed, np.where(mask, comparison.error, 0.0), mask
            )
        self.judged(judged)
        if not judged:
            self.observations.unjudged = (
                f"every element of {what} lay outside what the property judges (a kink, a value outside "
                f"{self.dtype}'s range, outside the property's domain, or an error scale beyond float64's range)"
            )
        else:
            self.observe(comparison)  # an error of 0 where nothing was judged is no observation
        failing = comparison.failing
        if np.any(failing):
            index = tuple(int(i) for i in np.argwhere(failing)[0])
            a = np.broadcast_to(np.asarray(actual, dtype=np.float64), failing.shape)[index]
            e = np.broadcast_to(np.asarray(expected, dtype=np.float64), failing.shape)[index]
            where = f" at index {index}" if index else ""
            self.fail(
                f"{what}{where} = {a!r}, but should be {e!r} [error {comparison.ulps[index]:.3g} ulps of the "
                f"computation's scale > {self.spec.ulps * slack:g} allowed in {self.dtype}]",
                example,
                check=check,
                numbers=(
                    float(a),
                    float(e),
                    float(np.broadcast_to(np.asarray(scale, dtype=np.float64), failing.shape)[index]),
                ),
            )
        return comparison

    def fail(
        self,
        message: str,
        example: Example | None = None,
        check: str | None = None,
        numbers: tuple[float, float | None, float | None] | None = None,
    ) -> None:
        """Raise a PropertyFailure; ``example`` becomes the reported counterexample, ``check`` (one of the ids the
        property declares; None for its only one) the sub-check that failed, ``numbers`` the failing element's
        (actual, exact or None, error scale or None) where the check compared numbers."""
        if example is not None:
            self.observations.received(self.received(example))
            self.failed_example = example
        raise PropertyFailure(message, check, *(numbers or ()))

    def excused(self, case: str, example: Example) -> bool:
        """Whether a recorded finding covers error case ``case`` (its description) on ``example``: the property
        skips that case (invalid_input) and judges the others."""
        if self.only_case is not None:
            return case != self.only_case  # the other cases are the search's to judge
        return any(f.case == case and f.covers(example, self.dtype, case) for f in self.excluded)

    def covered(self, status: str, message: str) -> bool:
        """Whether a failure (status, message) on the last failing example lies in a recorded finding's domain:
        the runner discards such an example instead of judging it."""
        return any(f.covers(self.failed_example, self.dtype, message, status) for f in self.excluded)

    def need(self, condition: bool) -> None:
        """Discard an example outside the property's domain (rare by construction)."""
        assume(condition)
