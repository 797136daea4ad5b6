"""The JSON report: every PropertyResult, with what was tested, in a documented, versioned schema.

Schema ``lossguard-results/1`` (docs/json-schema.md describes every field)::

    {"schema": "lossguard-results/1",
     "command": "lossguard check --impl all",       # how the report was produced
     "target": {...},                                # what was resolved (audit) or the selection (check)
     "versions": {"lossguard": ..., "python": ..., "torch": ..., "numpy": ..., "scipy": ..., "hypothesis": ...},
     "profile": "ci",
     "summary": {"pass": n, "fail": n, "error": n, "skip": n, "xfail": n, "xpass": n, "seconds": t, "exit_status": 0|1},
     "libraries": {"kornia": {"losses audited": n, "not audited": n, "pass": n, ...}, ...},   # audit --library
     "findings": [RootCause, ...],                   # one per root cause (lossguard.reports.findings)
     "results": [PropertyResult, ...]}

A PropertyResult has: loss, implementation, kind, device, dtype, property, status, message,
counterexample, reproduce, worst_ulps (null when the property measures no error), examples,
comparisons (judgements made; a run without one is a skip), duration_s, parameters (the canonical
parameters the implementation accepts, i.e. exercised), check (the failed sub-check's id), replay (the
failing example's Hypothesis choice sequence, for ``--replay``), library (the audited library, or ""), actual,
expected, scale (the failing element's numbers, or null), severity, convention (the diagnosed variant, or "").

A RootCause (``cause_json``) has: implementation, loss, kind, library, status (xpass, error, fail or xfail),
severity, by_definition (a recorded failure of the loss's definition, no implementation's), reason, convention,
breaks (["agreement (float32, float16)", ...]), matters (the numbers in words), counterexample, reproduce,
actual, expected, scale, departure (relative to the value's scale), and members (the indices of its results in
``results``).
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from lossguard.harness.kernel.model import STATUSES, PropertyResult
from lossguard.harness.kernel.severity import departure
from lossguard.reports.findings import RootCause, group
from lossguard.reports.terminal import per_library

SCHEMA = "lossguard-results/1"


def document(
    results: Sequence[PropertyResult],
    command: str,
    target: Mapping[str, Any],
    versions: Mapping[str, str],
    profile: str,
    seconds: float,
    exit_status: int,
) -> dict[str, Any]:
    counts = Counter(r.status for r in results)
    return {
        "schema": SCHEMA,
        "command": command,
        "target": dict(target),
        "versions": dict(versions),
        "profile": profile,
        "summary": {**{s: counts[s] for s in STATUSES}, "seconds": round(seconds, 3), "exit_status": exit_status},
        "libraries": per_library(results),
        "findings": [cause_json(c, results) for c in group(results)],
        "results": [r.to_json() for r in results],
    }


def cause_json(cause: RootCause, results: Sequence[PropertyResult]) -> dict[str, Any]:
    """One root cause as JSON (the schema above); ``results``: the run's results, for the members' indices."""
    worst = cause.worst
    index = {id(r): i for i, r in enumerate(results)}
    return {
        "implementation": cause.implementation,
        "loss": cause.loss,
        "kind": cause.first.kind,
        "library": cause.library,
        "status": cause.status,
        "severity": cause.severity,
        "by_definition": cause.by_definition,
        "reason": cause.reason,
        "convention": worst.convention,
        "breaks": cause.breaks(),
        "matters": cause.matters(),
        "counterexample": worst.counterexample,
        "reproduce": worst.reproduce,
        "actual": worst.actual,
        "expected": worst.expected,
        "scale": worst.scale,
        "departure": departure(worst),
        "members": [index[id(r)] for r in cause.members if id(r) in index],
    }


def write(path: str | Path, doc: Mapping[str, Any]) -> None:
    Path(path).write_text(json.dumps(doc, indent=2, default=float) + "\n")
