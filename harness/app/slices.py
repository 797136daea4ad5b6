"""Slices through a counterexample: an implementation against the float64 reference along one input element.

A finding's plot (the HTML report) varies one element of the first differentiable argument of the failing example
around its counterexample value, the rest fixed, in the finding's dtype and on its device, and records at each
point the implementation's and the reference's loss and derivative with respect to that element, and the errors in
ulps of the computation's scale (the tolerance policy's units). The element varied is the one that departs most at
the counterexample (value or gradient); the range is the counterexample value ± max(|value|, 1), the value itself
included. The loss drawn is the output element of that index where the output has the argument's shape
(reduction 'none'), else the output's sum (what the gradients are of). A point where the implementation raises is
NaN; where the reference is not finite (outside the loss's domain) nothing is judged (error NaN, a gap).

Computing a slice calls the implementation, so it runs where the audit ran: in-process for trusted and package
targets (``compute``), in the isolation worker for file targets (``isolated``: the worker gets the audit job with
``slices`` added and answers one event per slice, ``serve``); a slice that raises, kills its worker or runs past
the time limit is answered with the reason instead, and the implementation's remaining slices are not tried.
A slice crosses the process boundary as JSON (``Slice.to_json``).
"""

from __future__ import annotations

import os
import signal
import warnings
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from lossguard.harness.kernel import tolerance
from lossguard.harness.kernel.model import Example, Implementation, LossSpec
from lossguard.harness.kernel.subject import Subject

POINTS = 121


class SliceError(Exception):
    """No slice can be drawn through this example (the reason, for the report)."""


@dataclass(frozen=True)
class Request:
    """A slice to compute: through ``example`` (float64, as the property drew it), for one implementation by name."""

    implementation: str
    dtype: str
    device: str
    example: Example


@dataclass(frozen=True)
class Slice:
    """One slice's numbers (see the module docstring); ``argument``[``index``] is the varied element."""

    argument: str
    index: tuple[int, ...]
    center: float
    value_label: str
    x: np.ndarray
    reference: np.ndarray
    implementation: np.ndarray
    reference_grad: np.ndarray
    implementation_grad: np.ndarray
    value_ulps: np.ndarray
    grad_ulps: np.ndarray
    budget: float

    ARRAYS = ("x", "reference", "implementation", "reference_grad", "implementation_grad", "value_ulps", "grad_ulps")

    def to_json(self) -> dict[str, Any]:
        """JSON-ready (NaN and infinities as JSON's non-standard literals, which ``json.loads`` reads back)."""
        fields = {name: getattr(self, name).tolist() for name in self.ARRAYS}
        return {
            **fields,
            "argument": self.argument,
            "index": list(self.index),
            "center": self.center,
            "value_label": self.value_label,
            "budget": self.budget,
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Slice:
        arrays = {name: np.asarray(data[name], dtype=np.float64) for name in cls.ARRAYS}
        return cls(
            **arrays,
            argument=str(data["argument"]),
            index=tuple(int(i) for i in data["index"]),
            center=float(data["center"]),
            value_label=str(data["value_label"]),
            budget=float(data["budget"]),
        )


def _argument(example: Example, name: str) -> np.ndarray:
    return np.asarray(example.args[name] if name in example.args else example.params[name], dtype=np.float64)


def _with(example: Example, name: str, value: np.ndarray) -> Example:
    return example.replace(args={name: value}) if name in example.args else example.replace(**{name: value})


def _departures(actual: Any, expected: Any, scale: Any, shape: tuple[int, ...]) -> np.ndarray:
    """Per element of ``shape``: |actual - expected| relative to the value's scale (inf for a non-finite result
    where a finite one is due); zeros where the arrays do not have that shape."""
    actual, expected = np.asarray(actual, dtype=np.float64), np.asarray(expected, dtype=np.float64)
    if actual.shape != shape or expected.shape != shape:
        return np.zeros(shape)
    size = np.maximum(np.abs(expected), np.nan_to_num(np.abs(np.broadcast_to(scale, shape)), posinf=0.0))
    with np.errstate(all="ignore"):
        relative = np.abs(actual - expected) / np.maximum(size, 1e-300)
    return np.where(np.isfinite(expected), np.nan_to_num(relative, nan=np.inf), 0.0)


@dataclass
class _Point:
    """One point of a slice: reference and implementation value, derivative, and their error scales."""

    reference: Any = np.nan
    value_scale: Any = np.nan
    implementation: Any = np.nan
    reference_grad: Any = np.nan
    grad_scale: Any = np.nan
    implementation_grad: Any = np.nan


def _evaluate(subject: Subject, example: Example, name: str) -> _Point:
    """Both sides at ``example``; a side that raises (the implementation, or the reference outside its domain) is
    NaN."""
    point = _Point()
    with np.errstate(all="ignore"):
        try:
            point.reference, point.value_scale = subject.reference(example), subject.scale(example)
            gradient = subject.spec.reference.grad(**example.kwargs())[name]
            point.reference_grad, point.grad_scale = gradient.value, gradient.scale
        except Exception:  # outside the reference's domain: nothing to compare there
            pass
    try:
        with warnings.catch_warnings():  # Subject.call asks Hypothesis' assume, which warns outside a search
            warnings.simplefilter("ignore")
            outcome = subject.call(example, grad=(name,))
        point.implementation, point.implementation_grad = outcome.value, outcome.grads.get(name, np.nan)
    except Exception:  # the judged code raised (or rejected the input): no value at this point
        pass
    return point


def _element(values: Any, index: tuple[int, ...], shape: tuple[int, ...], elementwise: bool) -> float:
    """The drawn quantity of one side: element ``index`` (elementwise output) or the sum."""
    array = np.asarray(values, dtype=np.float64)
    if elementwise:
        return float(array[index]) if array.shape == shape else np.nan
    return float(np.sum(array))


def slice_through(
    spec: LossSpec, impl: Implementation, example: Example, dtype: str, device: str = "cpu", points: int = POINTS
) -> Slice:
    """The slice of ``impl`` against ``spec``'s reference through ``example`` (see the module docstring)."""
    subject = Subject(spec, impl, dtype, device)
    example = subject.rounded(example)
    missing = [a for a in spec.args if a not in example.args]
    if missing:
        raise SliceError(f"the failing example is no call of the loss (it lacks {', '.join(missing)})")
    names = subject.differentiable(example)
    if not names:
        raise SliceError("the example has no differentiable float argument to vary")
    name = names[0]
    base = _argument(example, name)
    if base.size == 0:
        raise SliceError(f"{name} is empty in this example")
    center = _evaluate(subject, example, name)
    shape = base.shape
    elementwise = np.shape(center.reference) == shape
    score = _departures(center.implementation_grad, center.reference_grad, center.grad_scale, shape)
    if elementwise:
        score = np.maximum(score, _departures(center.implementation, center.reference, center.value_scale, shape))
    index = tuple(int(i) for i in np.unravel_index(int(np.argmax(score)), shape)) if shape else ()
    middle = float(base[index])
    if not np.isfinite(middle):
        raise SliceError(f"{name}{list(index)} = {middle} in the counterexample: no range around it")
    width = max(abs(middle), 1.0)
    xs = np.union1d(np.linspace(middle - width, middle + width, points), [middle])
    rows = []
    for x in xs:
        varied = base.copy()
        varied[index] = x
        point = _evaluate(subject, subject.rounded(_with(example, name, varied)), name)
        rows.append(
            [
                _element(point.reference, index, shape, elementwise),
                _element(point.implementation, index, shape, elementwise),
                _element(point.value_scale, index, shape, elementwise),
                _element(point.reference_grad, index, shape, True),
                _element(point.implementation_grad, index, shape, True),
                _element(point.grad_scale, index, shape, True),
            ]
        )
    reference, implementation, value_scale, reference_grad, implementation_grad, grad_scale = np.asarray(rows).T
    if not np.any(np.isfinite(reference)):
        raise SliceError("the reference is not finite anywhere along the slice")

    def errors(actual: np.ndarray, expected: np.ndarray, scale: np.ndarray) -> np.ndarray:
        ulps = tolerance.compare(actual, expected, np.nan_to_num(scale, nan=0.0), dtype, spec.ulps).ulps
        return np.where(np.isfinite(expected), ulps, np.nan)  # nothing is judged where the reference is not finite

    if elementwise and shape != ():
        label = f"loss at index {index}"
    else:
        label = "loss" if np.ndim(center.reference) == 0 else "loss (sum of its elements)"
    return Slice(
        argument=name,
        index=index,
        center=middle,
        value_label=label,
        x=xs,
        reference=reference,
        implementation=implementation,
        reference_grad=reference_grad,
        implementation_grad=implementation_grad,
        value_ulps=errors(implementation, reference, value_scale),
        grad_ulps=errors(implementation_grad, reference_grad, grad_scale),
        budget=float(spec.ulps),
    )


Answer = Slice | str  # a slice, or why there is none


def _answer(impls: Mapping[str, Implementation], catalog: Mapping[str, LossSpec], request: Request) -> Answer:
    impl = impls.get(request.implementation)
    if impl is None:
        return f"no plot: implementation {request.implementation!r} is not among those audited"
    try:
        return slice_through(catalog[impl.loss], impl, request.example, request.dtype, request.device)
    except Exception as problem:  # a plot that fails is omitted with its reason, never fatal
        return f"no plot: {type(problem).__name__}: {problem}"


def compute(
    impls: Sequence[Implementation], catalog: Mapping[str, LossSpec], requests: Sequence[Request]
) -> list[Answer]:
    """The slices of ``requests``, in this process (for implementations that run in it)."""
    by_name = {impl.name: impl for impl in impls}
    return [_answer(by_name, catalog, request) for request in requests]


def serve(prepared: Any, asked: Sequence[Mapping[str, Any]], emit: Callable[[dict[str, Any]], None]) -> None:
    """The isolation worker's side: for each asked slice (``{"index", "implementation", "dtype", "device",
    "example"}``, the example packed), a ``start`` event, then a ``slice`` event with ``slice`` or ``error``."""
    from lossguard.harness.app.isolation import _unpacked

    by_name = {impl.name: impl for impl in prepared.impls}
    for entry in asked:
        emit({"event": "start", "index": entry["index"]})
        request = Request(entry["implementation"], entry["dtype"], entry["device"], _unpacked(entry["example"]))
        answer = _answer(by_name, prepared.catalog, request)
        body = {"slice": answer.to_json()} if isinstance(answer, Slice) else {"error": answer}
        emit({"event": "slice", "index": entry["index"], **body})


def isolated(job: Mapping[str, Any], requests: Sequence[Request], time_limit: float) -> list[Answer]:
    """The slices of ``requests`` computed in isolation workers (the audit ``job`` resolves the implementations
    there). A worker that dies or is silent for ``time_limit`` seconds costs the slice it was on (and the same
    implementation's remaining ones); a fresh worker takes the rest."""
    from lossguard.harness.app.isolation import _events, _packed, start_worker

    answers: list[Answer | None] = [None] * len(requests)
    packed = [
        {
            "index": i,
            "implementation": r.implementation,
            "dtype": r.dtype,
            "device": r.device,
            "example": _packed(r.example),
        }
        for i, r in enumerate(requests)
    ]
    for entry in packed:
        if not entry["example"]:
            answers[entry["index"]] = "no plot: the failing example did not cross the process boundary"
    while pending := [e for e in packed if answers[e["index"]] is None]:
        process = start_worker({**job, "slices": pending, "skip": 0})
        current: int | None = None
        why = ""
        for event in _events(process, time_limit):
            kind = event["event"]
            if kind == "target_error":
                why = f"no plot: the target did not resolve in the plotting worker: {event['message']}"
            elif kind == "start":
                current = event["index"]
            elif kind == "slice":
                answers[event["index"]] = Slice.from_json(event["slice"]) if "slice" in event else event["error"]
                current = None
            elif kind == "timeout":
                os.killpg(process.pid, signal.SIGKILL)
                why = f"no plot: no slice within {time_limit:g} s (time limit per plot)"
        code = process.wait()
        if not why:
            why = f"no plot: the implementation killed its process (exit status {code}) while plotting"
        lost = [e for e in pending if answers[e["index"]] is None]
        if current is None:  # died before or between slices: nothing more will come of this job
            for entry in lost:
                answers[entry["index"]] = why
            continue
        culprit = requests[current].implementation
        for entry in lost:
            if entry["implementation"] == culprit:
                answers[entry["index"]] = (
                    why
                    if entry["index"] == current
                    else ("no plot: an earlier plot of this implementation failed in its worker")
                )
    return [a if a is not None else "no plot" for a in answers]
