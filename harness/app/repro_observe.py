"""Observing a recorded finding on its witness, for ``lossguard repro``: which calls the property made, and which of
them returned the failing element.

``observe`` judges one finding's witness as the runner's part (a) does (``_judge_with_findings``: the property on
the witness alone, its error case alone for ``invalid_input``) with the framework binding wrapped so that every
call is recorded: the example the implementation received, the dtype, the gradients asked for, and what came back
(value, gradients, output dtype, or the exception). ``locate`` finds the call and element whose number is the
failure's ``actual``: the one call a standalone script has to make.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from lossguard.harness.app import runner
from lossguard.harness.kernel.model import Example, Finding, Implementation, LossSpec, PropertyResult
from lossguard.harness.kernel.subject import Subject
from lossguard.properties.base import PROPERTIES


@dataclass
class Call:
    """One call of the implementation a property made: what it received and what it returned."""

    example: Example
    dtype: str
    grad: tuple[str, ...]
    requires_grad: bool
    watch_inputs: bool
    value: np.ndarray | None = None  # the canonical output (the binding's output layout applied)
    grads: dict[str, np.ndarray] = field(default_factory=dict)
    out_dtype: str = ""
    raised: str = ""  # "<ExceptionType>: <message>" of the failure it raised ("" if none)


class _Recording:
    """A framework binding that records every call (``Call``) and otherwise is the binding it wraps."""

    def __init__(self, inner: Any, impl: Implementation) -> None:
        self._inner, self._impl, self.calls = inner, impl, []

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)

    def call(self, impl, arg_names, example, dtype, device="cpu", grad=(), watch_inputs=False, requires_grad=True):
        record = Call(example, dtype, tuple(grad), requires_grad, watch_inputs)
        self.calls.append(record)
        try:
            outcome = self._inner.call(impl, arg_names, example, dtype, device, grad, watch_inputs, requires_grad)
        except Exception as problem:
            record.raised = str(problem)
            raise
        value = outcome.value if impl.output is None else np.asarray(impl.output(outcome.value, example.params))
        record.value, record.grads, record.out_dtype = value, dict(outcome.grads), outcome.dtype
        return outcome


@dataclass
class Observed:
    """A finding's witness, judged: the result (status ``fail`` or ``error`` while the departure reproduces) and
    every call the property made."""

    finding: Finding
    impl: Implementation
    spec: LossSpec
    dtype: str
    result: PropertyResult
    calls: list[Call]


def witness_dtype(finding: Finding) -> str:
    """The dtype a finding's script runs in: float64 where the finding holds in every dtype, else its first."""
    return "float64" if finding.dtypes is None else finding.dtypes[0]


def observe(
    impl: Implementation, spec: LossSpec, finding: Finding, catalog: Mapping[str, LossSpec], dtype: str | None = None
) -> Observed:
    """``finding``'s witness judged on the CPU in ``dtype`` (default ``witness_dtype``), every call recorded."""
    dtype = dtype or witness_dtype(finding)
    result = PropertyResult(spec.name, impl.name, impl.kind, "cpu", dtype, finding.property, "pass")
    subject = Subject(
        spec,
        impl,
        dtype,
        "cpu",
        restriction=dict(spec.properties.get(finding.property, {})),
        witness=finding.witness,
        only_case=finding.case if finding.witness else None,
        domain=spec.domains.get(finding.property),
        related=catalog.__getitem__,
    )
    recording = _Recording(subject.binding, impl)
    subject.binding = recording
    key = f"{impl.name}|{finding.property}|cpu|{dtype}|repro"
    runner._execute(result, PROPERTIES[finding.property], subject, runner.Selection(profile="ci"), key)
    if result.status in ("fail", "error"):
        from lossguard.harness.app import diagnosis
        from lossguard.harness.kernel import severity

        # the convention a recorded departure follows, as the runner diagnoses it, on calls not recorded here
        fresh = Subject(spec, impl, dtype, "cpu", restriction=dict(spec.properties.get(finding.property, {})))
        result.convention = diagnosis.diagnose(result, fresh)
        result.severity = severity.classify(result)
    return Observed(finding, impl, spec, dtype, result, recording.calls)


@dataclass(frozen=True)
class Element:
    """Where a failure's number came from: call ``index`` of ``Observed.calls``, its ``value`` or the gradient in
    ``argument``, at ``position`` (an index into that array)."""

    index: int
    argument: str | None  # None: the value
    position: tuple[int, ...]


def _same(a: float, b: float) -> bool:
    return (math.isnan(a) and math.isnan(b)) or a == b


def locate(observed: Observed) -> Element | None:
    """The last recorded call whose value or gradient holds the failure's ``actual`` (None: no number, or a
    number no call returned: an identity's combination of several calls)."""
    actual = observed.result.actual
    if actual is None:
        return None
    for index in range(len(observed.calls) - 1, -1, -1):
        call = observed.calls[index]
        arrays: list[tuple[str | None, Any]] = [(None, call.value), *call.grads.items()]
        for argument, array in arrays:
            if array is None:
                continue
            flat = np.asarray(array, dtype=np.float64)
            for position in np.ndindex(flat.shape):
                if _same(float(flat[position]), actual):
                    return Element(index, argument, tuple(int(i) for i in position))
    return None


def as_received(call: Call, impl: Implementation) -> Example:
    """The call's example with the parameters the implementation receives only (``Subject.received``)."""
    return dataclasses.replace(
        call.example, params={k: v for k, v in call.example.params.items() if k in impl.accepted}
    )
