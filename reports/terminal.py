"""The terminal report: a header naming what was tested, a table, the failures in full, one summary line.

The table has one row per (implementation, property, device) and one status column per dtype,
so a whole catalog fits on a screen; every fail, error and xpass is then printed in full with
its minimal counterexample and the command that reproduces it; recorded findings (xfail) are
listed by reason. Progress goes to stderr: a rewriting line on a terminal, nothing in CI
(where the table and the summary, plain lines, are the log).
"""

from __future__ import annotations

import sys
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from typing import TextIO

from lossguard.harness.kernel.model import DTYPES, EVERY_PROPERTY, FAILING_STATUSES, STATUSES, PropertyResult

CELL = {"pass": "ok", "fail": "FAIL", "error": "ERROR", "skip": "skip", "xfail": "xfail", "xpass": "XPASS"}


def header(lines: Mapping[str, str], out: TextIO) -> None:
    """What is being tested, resolved (target, file, library versions): a typo never tests the wrong thing."""
    width = max(len(k) for k in lines)
    for key, value in lines.items():
        print(f"{key:<{width}} : {value}", file=out)
    print(file=out)


def _rows(results: Sequence[PropertyResult]) -> list[tuple[tuple[str, str, str, str], dict[str, PropertyResult]]]:
    rows: dict[tuple[str, str, str, str], dict[str, PropertyResult]] = {}
    for r in results:
        rows.setdefault((r.loss, r.implementation, r.property, r.device), {})[r.dtype] = r
    return list(rows.items())


def _worst(cells: Iterable[PropertyResult]) -> str:
    values = [c.worst_ulps for c in cells if c.worst_ulps is not None]
    return f"{max(values):.3g}" if values else ""


def table(results: Sequence[PropertyResult], out: TextIO) -> None:
    dtypes = [d for d in (*DTYPES, "all") if any(r.dtype == d for r in results)]
    head = ["loss", "implementation", "property", "device", *dtypes, "worst ulps"]
    body = []
    for (loss, impl, prop, device), cells in _rows(results):
        body.append(
            [
                loss,
                impl,
                prop,
                device,
                *(CELL[cells[d].status] if d in cells else "" for d in dtypes),
                _worst(cells.values()),
            ]
        )
    widths = [max(len(str(row[i])) for row in [head, *body]) for i in range(len(head))]
    for row in [head, ["-" * w for w in widths], *body]:
        print("  ".join(f"{cell!s:<{w}}" for cell, w in zip(row, widths, strict=True)).rstrip(), file=out)
    print(file=out)


def details(results: Sequence[PropertyResult], out: TextIO) -> None:
    """Every fail, error and xpass in full; the findings (xfail) once per reason."""
    for r in results:
        if r.status not in FAILING_STATUSES:
            continue
        print(f"{CELL[r.status]}: {r.property} of {r.implementation} ({r.loss}) on {r.device}, {r.dtype}", file=out)
        for line in r.message.splitlines():
            print(f"    {line}", file=out)
        if r.counterexample:
            print(f"    minimal counterexample: {r.counterexample}", file=out)
        if r.reproduce:
            print(f"    reproduce: {r.reproduce}", file=out)
        print(file=out)
    skipped: dict[str, set[str]] = {}
    for r in results:
        if r.status == "skip":
            skipped.setdefault(r.message, set()).add(r.implementation)
    if skipped:
        print("skipped:", file=out)
        for reason, impls in skipped.items():
            print(f"  - {reason} ({len(impls)} implementation{'s' if len(impls) > 1 else ''})", file=out)
        print(file=out)
    findings: dict[tuple[str, str], list[str]] = {}
    for r in results:
        if r.status == "xfail":
            findings.setdefault((r.implementation, r.message.split("; observed:")[0]), []).append(
                f"{r.property}/{r.dtype}"
            )
    if findings:
        print("recorded findings (xfail: the property fails as recorded; the run still passes):", file=out)
        for (impl, reason), where in findings.items():
            print(f"  - {impl} [{', '.join(sorted(set(where)))}]: {reason}", file=out)
        print(file=out)


def per_library(results: Sequence[PropertyResult]) -> dict[str, dict[str, int]]:
    """Per library (``audit --library``): the losses audited (bound implementations that ran a property), the
    exports not audited (skipped as a whole, with the reason: one CPU row for every property, all dtypes), the
    bound losses none of whose selected properties applies (``--property`` left them only a device's skip), and
    the results by status."""
    found: dict[str, dict[str, int]] = {}
    for library in dict.fromkeys(r.library for r in results if r.library):
        mine = [r for r in results if r.library == library]
        ran = {r.implementation for r in mine if r.property != EVERY_PROPERTY}
        whole = {r.implementation for r in mine if r.property == EVERY_PROPERTY and r.device == "cpu"} - ran
        unselected = {r.implementation for r in mine} - ran - whole
        counts = Counter(r.status for r in mine)
        found[library] = {
            "losses audited": len(ran),
            "not audited": len(whole),
            "no property selected": len(unselected),
            **{s: counts[s] for s in STATUSES},
        }
    return found


def library_lines(results: Sequence[PropertyResult], out: TextIO) -> None:
    """One line per library: what was audited, and the verdicts (the failures a person reads first)."""
    for library, counts in per_library(results).items():
        statuses = ", ".join(f"{counts[s]} {s}" for s in STATUSES if counts[s])
        audited = f"{counts['losses audited']} losses audited, {counts['not audited']} exports not audited"
        if counts["no property selected"]:
            audited += f", {counts['no property selected']} bound losses without a selected property"
        print(f"library {library}: {audited}; {statuses}", file=out)
    if any(r.library for r in results):
        print(file=out)


def summary_line(results: Sequence[PropertyResult], seconds: float) -> str:
    """The one-line summary, e.g. ``lossguard: FAILED 532 results: 480 pass, 2 fail, ... in 58.1 s``."""
    counts = Counter(r.status for r in results)
    verdict = "FAILED" if any(counts[s] for s in FAILING_STATUSES) else "OK" if results else "NOTHING RAN"
    parts = ", ".join(f"{counts[s]} {s}" for s in STATUSES if counts[s] or s in ("pass", "fail"))
    return f"lossguard: {verdict} {len(results)} results: {parts} in {seconds:.1f} s"


class Progress:
    """Progress on stderr: a rewriting line on a terminal; elsewhere (CI, pipes) one plain line per
    implementation once its results are in."""

    def __init__(self, stream: TextIO | None = None):
        self.stream = stream or sys.stderr
        self.live = self.stream.isatty()
        self.current: list[PropertyResult] = []

    def __call__(self, done: int, total: int, result: PropertyResult) -> None:
        if self.live:
            text = f"[{done}/{total}] {result.implementation} {result.property} {result.dtype}: {result.status}"
            self.stream.write("\r\x1b[2K" + text[:160] + ("\r\x1b[2K" if done == total else ""))
        else:
            if self.current and self.current[-1].implementation != result.implementation:
                self._line(done - 1, total)
            self.current.append(result)
            if done == total:
                self._line(done, total)
        self.stream.flush()

    def _line(self, done: int, total: int) -> None:
        counts = Counter(r.status for r in self.current)
        statuses = ", ".join(f"{counts[s]} {s}" for s in STATUSES if counts[s])
        self.stream.write(f"[{done}/{total}] {self.current[0].implementation}: {statuses}\n")
        self.current = []
