"""The JSON report: every PropertyResult, with what was tested, in a documented, versioned schema.

Schema ``lossguard-results/1`` (docs/json-schema.md describes every field)::

    {"schema": "lossguard-results/1",
     "command": "lossguard check --impl all",       # how the report was produced
     "target": {...},                                # what was resolved (audit) or the selection (check)
     "versions": {"lossguard": ..., "python": ..., "torch": ..., "numpy": ..., "scipy": ..., "hypothesis": ...},
     "profile": "ci",
     "summary": {"pass": n, "fail": n, "error": n, "skip": n, "xfail": n, "xpass": n, "seconds": t, "exit_status": 0|1},
     "libraries": {"kornia": {"losses audited": n, "not audited": n, "pass": n, ...}, ...},   # audit --library
     "results": [PropertyResult, ...]}

A PropertyResult has: loss, implementation, kind, device, dtype, property, status, message,
counterexample, reproduce, worst_ulps (null when the property measures no error), examples,
comparisons (judgements made; a run without one is a skip), duration_s, parameters (the canonical
parameters the implementation accepts, i.e. exercised), check (the failed sub-check's id), replay (the
failing example's Hypothesis choice sequence, for ``--replay``), library (the audited library, or "").
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from lossguard.harness.kernel.model import STATUSES, PropertyResult
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
        "results": [r.to_json() for r in results],
    }


def write(path: str | Path, doc: Mapping[str, Any]) -> None:
    Path(path).write_text(json.dumps(doc, indent=2, default=float) + "\n")
