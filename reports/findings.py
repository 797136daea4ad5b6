"""One finding per root cause: the failing results of a run grouped by what they share, each group with its severity.

One departure of an implementation fans out into many results: the same wrong value fails agreement, gradient,
reduction and the family's identities, in every dtype. A person acts on the departure, so the reports list
``RootCause`` objects, each with the list of what it breaks. Within one implementation, two failing results
(``fail``, ``error``) share a root cause when any of these holds (the groups are the connected components):

* the same diagnosed convention (``PropertyResult.convention``): one variant explains both;
* the same minimal counterexample: Hypothesis shrinks every property towards the simplest input that shows the
  departure, so one defect tends to shrink to one input across properties and dtypes;
* the same message once its numbers are removed (``_shape``): the same departure at another input, e.g. a NaN
  gradient at z = 17 in float32 and at z = 9 in float16.

Recorded findings (``xfail``) are grouped by their recorded reason; a stale record (``xpass``) stands alone.
The group's severity is its worst member's (``lossguard.harness.kernel.severity``).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field

from lossguard.harness.kernel.model import DTYPES, PropertyResult
from lossguard.harness.kernel.severity import SEVERITIES, departure

# a finite number (NaN and inf stay words: a non-finite result is another departure than a finite one)
_NUMBER = re.compile(r"[-+]?(?:\d+\.?\d*|\.\d+)(?:e[-+]?\d+)?", re.IGNORECASE)
_DTYPE_WORDS = re.compile(r"\b(?:" + "|".join(DTYPES) + r")\b")
RECORDED_SEPARATOR = "; observed:"  # the runner's xfail message: the recorded reason, then what the witness showed
BY_DEFINITION = "[by definition;"  # how the runner's xfail message marks a failure of the loss's definition


@dataclass
class RootCause:
    """One departure of one implementation and every result it explains (``members``, report order)."""

    members: list[PropertyResult] = field(default_factory=list)

    @property
    def first(self) -> PropertyResult:
        return self.members[0]

    @property
    def implementation(self) -> str:
        return self.first.implementation

    @property
    def loss(self) -> str:
        return self.first.loss

    @property
    def library(self) -> str:
        return self.first.library

    @property
    def status(self) -> str:
        """'xpass' (a stale record), 'xfail' (recorded), else 'fail' or 'error' (the worst member's)."""
        statuses = {r.status for r in self.members}
        for status in ("xpass", "error", "fail", "xfail"):
            if status in statuses:
                return status
        return self.first.status

    @property
    def recorded(self) -> bool:
        return self.status == "xfail"

    @property
    def by_definition(self) -> bool:
        """A recorded failure of the loss's definition (an entry's ``by_definition``), no implementation's defect."""
        return self.recorded and BY_DEFINITION in self.first.message

    @property
    def severity(self) -> str:
        """The worst member's severity ("" for a stale record)."""
        found = [r.severity for r in self.members if r.severity in SEVERITIES]
        return min(found, key=SEVERITIES.index) if found else ""

    @property
    def worst(self) -> PropertyResult:
        """The member that shows the root cause at its worst: its severity, then its largest departure."""
        ranked = [r for r in self.members if r.severity == self.severity] or self.members
        return max(ranked, key=lambda r: departure(r) or 0.0)

    @property
    def reason(self) -> str:
        """What it is in words: the recorded reason, the diagnosed convention, or the worst member's message."""
        worst = self.worst
        if self.recorded:
            return worst.message.split(RECORDED_SEPARATOR)[0]
        if worst.convention:
            return worst.convention
        return worst.message

    def breaks(self) -> list[str]:
        """What it breaks: each property with the dtypes (and non-CPU devices) it fails in, in report order."""
        where: dict[str, list[str]] = {}
        for r in self.members:
            place = r.dtype if r.device == "cpu" else f"{r.dtype} on {r.device}"
            where.setdefault(r.property, [])
            if place not in where[r.property]:
                where[r.property].append(place)
        return [f"{prop} ({', '.join(places)})" for prop, places in where.items()]

    def matters(self) -> str:
        """How much the departure matters, in numbers: the values and the departure relative to the value's
        scale ('' where the failure compared no numbers)."""
        r = self.worst
        if r.actual is None:
            return ""
        weight = departure(r)
        exact = "unknown" if r.expected is None else f"{r.expected:.6g}"
        relative = "" if weight is None else f", {weight:.2g} of the value's scale"
        return f"{r.actual:.6g} where the exact value is {exact}{relative}"


def _shape(message: str) -> str:
    """A message without its numbers and dtype names: the form a departure takes, wherever it shows."""
    return _NUMBER.sub("#", _DTYPE_WORDS.sub("D", message.split(" [outside the recorded findings'")[0]))


def _failing_groups(failing: Sequence[PropertyResult]) -> list[list[PropertyResult]]:
    """Connected components of 'shares a convention, a counterexample or a message shape' (union-find)."""
    parent = list(range(len(failing)))

    def root(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    first_of: dict[tuple[str, str], int] = {}
    for index, r in enumerate(failing):
        keys = [("message", _shape(r.message))]
        if r.convention:
            keys.append(("convention", r.convention))
        if r.counterexample:
            keys.append(("counterexample", r.counterexample))
        for key in keys:
            if key in first_of:
                parent[root(index)] = root(first_of[key])
            else:
                first_of[key] = index
    groups: dict[int, list[PropertyResult]] = {}
    for index, r in enumerate(failing):
        groups.setdefault(root(index), []).append(r)
    return list(groups.values())


def group(results: Sequence[PropertyResult]) -> list[RootCause]:
    """The root causes of a run: stale records first, then by severity (most severe first), then in report order."""
    by_implementation: dict[str, list[PropertyResult]] = {}
    for r in results:
        if r.status in ("fail", "error", "xfail", "xpass"):
            by_implementation.setdefault(r.implementation, []).append(r)
    causes: list[RootCause] = []
    for members in by_implementation.values():
        recorded: dict[str, list[PropertyResult]] = {}
        for r in members:
            if r.status == "xfail":
                recorded.setdefault(r.message.split(RECORDED_SEPARATOR)[0], []).append(r)
        causes.extend(RootCause(list(g)) for g in recorded.values())
        causes.extend(RootCause([r]) for r in members if r.status == "xpass")
        causes.extend(RootCause(g) for g in _failing_groups([r for r in members if r.status in ("fail", "error")]))
    order = {id(c): i for i, c in enumerate(causes)}

    def rank(cause: RootCause) -> tuple[int, int, int]:
        stale = 0 if cause.status == "xpass" else 1
        severity = SEVERITIES.index(cause.severity) if cause.severity else len(SEVERITIES)
        return (stale, severity, order[id(cause)])

    return sorted(causes, key=rank)


def counts(causes: Sequence[RootCause]) -> dict[str, dict[str, int]]:
    """Root causes by library (or implementation kind) and severity: {'kornia': {'nan-inf': 2, ...}, ...}; the
    failures by definition are no implementation's and are not counted."""
    table: dict[str, dict[str, int]] = {}
    for cause in (c for c in causes if not c.by_definition):
        where = cause.library or cause.first.kind
        row = table.setdefault(where, dict.fromkeys((*SEVERITIES, "stale record"), 0))
        row[cause.severity or "stale record"] += 1
    return table
