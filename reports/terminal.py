"""The terminal report: what was tested, one line per implementation, each new finding in full, one summary line.

By default it fits a screen whatever the size of the run: one line per implementation (its results by status, the
worst severity of what it breaks, the convention diagnosed), then each root cause that is not recorded (fail,
error, stale record) in full with what it breaks, how much it matters, its minimal counterexample and the command
that reproduces it, then the recorded findings and the skips counted, the root causes by severity, one line per
audited library and the summary line. ``--verbose`` adds the full table (one row per implementation x property x
device, a column per dtype) and lists every skip reason and recorded finding. Progress goes to stderr: a rich
progress bar on a terminal, one plain line per implementation elsewhere (CI logs).
"""

from __future__ import annotations

import io
import sys
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from typing import TextIO

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, TaskID, TextColumn, TimeElapsedColumn
from rich.progress import Progress as RichProgress
from rich.table import Table
from rich.text import Text

from lossguard.harness.kernel.model import DTYPES, EVERY_PROPERTY, FAILING_STATUSES, STATUSES, PropertyResult
from lossguard.harness.kernel.severity import DEFAULT_FAIL_ON, SEVERITIES, fails_gate
from lossguard.reports.findings import BY_DEFINITION, group
from lossguard.reports.findings import counts as severity_counts

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
    """``--verbose``: every fail, error and xpass as it came, the skips by reason, the findings (xfail) by reason."""
    for r in results:
        if r.status in FAILING_STATUSES:
            print(f"{CELL[r.status]}: {r.property} of {r.implementation} ({r.loss}) on {r.device}, {r.dtype}", file=out)
            _block(r.message, r.counterexample, r.reproduce, out)
    skipped: dict[str, set[str]] = {}
    for r in results:
        if r.status == "skip":
            skipped.setdefault(r.message, set()).add(r.implementation)
    if skipped:
        print("skipped:", file=out)
        for reason, impls in skipped.items():
            print(f"  - {reason} ({_count(len(impls), 'implementation')})", file=out)
        print(file=out)
    recorded = [c for c in group(results) if c.recorded]
    if recorded:
        print("recorded findings (xfail: the property fails as recorded; the run still passes):", file=out)
        for cause in recorded:
            print(
                f"  - [{cause.severity}] {cause.implementation} [{', '.join(cause.breaks())}]: {cause.reason}", file=out
            )
        print(file=out)


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}{'' if n == 1 else 's'}"


def _block(message: str, counterexample: str, reproduce: str, out: TextIO) -> None:
    """A failure's message, minimal counterexample and reproduce command, indented, then a blank line."""
    for line in message.splitlines():
        print(f"    {line}", file=out)
    if counterexample:
        print(f"    minimal counterexample: {counterexample}", file=out)
    if reproduce:
        print(f"    reproduce: {reproduce}", file=out)
    print(file=out)


def implementation_lines(results: Sequence[PropertyResult], out: TextIO) -> None:
    """The default overview: one line per implementation (its results by status, the worst severity of its new
    failures and of its recorded findings, the convention diagnosed for it), rendered by rich: aligned columns,
    colour on a terminal, plain text elsewhere."""
    rows: dict[str, list[PropertyResult]] = {}
    for r in results:
        rows.setdefault(r.implementation, []).append(r)
    table = Table(box=None, pad_edge=False, show_edge=False, header_style="bold")
    for column in ("implementation", "loss", *STATUSES, "worst", "recorded", "convention"):
        table.add_column(column, no_wrap=column != "convention", justify="right" if column in STATUSES else "left")
    for impl, mine in rows.items():
        counts = Counter(r.status for r in mine)
        worst = _worst_severity(r for r in mine if r.status != "xfail")
        conventions = sorted({r.convention for r in mine if r.convention})
        table.add_row(
            impl,
            mine[0].loss,
            *(str(counts[s]) if counts[s] else "." for s in STATUSES),
            Text(worst, style=_STYLE.get(worst, "")),
            _worst_severity(r for r in mine if r.status == "xfail" and BY_DEFINITION not in r.message),
            "; ".join(conventions),
        )
    if out.isatty():
        console(out).print(table)
    else:  # plain lines without rich's padding of the last column
        buffer = io.StringIO()
        console(buffer).print(table)
        out.writelines(line.rstrip() + "\n" for line in buffer.getvalue().splitlines())
    print(file=out)


def _worst_severity(results: Iterable[PropertyResult]) -> str:
    found = [r.severity for r in results if r.severity in SEVERITIES]
    return min(found, key=SEVERITIES.index) if found else ""


_STYLE = {"crash": "bold red", "nan-inf": "bold red", "wrong": "red", "validation-gap": "yellow"}


def console(out: TextIO) -> Console:
    """A rich console on ``out``: colour and the terminal's width on a terminal; plain, unwrapped lines elsewhere
    (CI logs, pipes, files)."""
    live = out.isatty()
    return Console(file=out, width=None if live else 400, no_color=not live, highlight=False, soft_wrap=not live)


def findings(results: Sequence[PropertyResult], out: TextIO, fail_on: str) -> None:
    """Each root cause not recorded (fail, error, xpass) in full; the recorded ones and the skips counted (``--verbose``
    lists them); then the root causes by severity."""
    causes = group(results)
    for number, cause in enumerate((c for c in causes if not c.recorded), 1):
        gate = "" if any(fails_gate(r, fail_on) for r in cause.members) else f", below --fail-on {fail_on}"
        label = "STALE RECORD" if cause.status == "xpass" else f"{cause.severity}{gate}"
        print(f"FINDING {number} [{label}]: {cause.implementation} ({cause.loss})", file=out)
        print(f"    breaks: {', '.join(cause.breaks())}", file=out)
        if cause.worst.convention:
            print(f"    convention: {cause.worst.convention}", file=out)
        if cause.matters():
            print(f"    how much: {cause.matters()}", file=out)
        worst = cause.worst
        _block(
            f"{worst.property} on {worst.device}, {worst.dtype}: {worst.message}",
            worst.counterexample,
            worst.reproduce,
            out,
        )
    recorded = [c for c in causes if c.recorded and not c.by_definition]
    by_definition = sum(c.by_definition for c in causes)
    if recorded or by_definition:
        kinds = Counter(c.severity for c in recorded)
        split = ", ".join(
            [
                *(f"{kinds[s]} {s}" for s in SEVERITIES if kinds[s]),
                *([f"{by_definition} by definition"] * bool(by_definition)),
            ]
        )
        print(
            f"recorded findings: {_count(len(recorded) + by_definition, 'root cause')} ({split}), xfail: the run "
            "still passes (--verbose lists them)",
            file=out,
        )
    skipped = [r for r in results if r.status == "skip"]
    if skipped:
        reasons = len({r.message for r in skipped})
        print(
            f"skipped: {_count(len(skipped), 'result')} for {_count(reasons, 'reason')} (--verbose lists them)",
            file=out,
        )
    if recorded or skipped:
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
    """One line per library (what was audited, the verdicts, its findings by severity), then one line per kind of
    implementation outside a library (torch, own, user) that has findings; a blank line after them."""
    by_severity = severity_counts(group(results))
    for library, counts in per_library(results).items():
        statuses = ", ".join(f"{counts[s]} {s}" for s in STATUSES if counts[s])
        audited = f"{counts['losses audited']} losses audited, {counts['not audited']} exports not audited"
        if counts["no property selected"]:
            audited += f", {counts['no property selected']} bound losses without a selected property"
        found = _severities(by_severity.pop(library, {}))
        print(f"library {library}: {audited}; {statuses}{f'; findings: {found}' if found else ''}", file=out)
    for kind, row in by_severity.items():
        print(f"findings of {kind} implementations: {_severities(row)}", file=out)
    if any(r.library for r in results) or by_severity:
        print(file=out)


def _severities(row: Mapping[str, int]) -> str:
    return ", ".join(f"{n} {severity}" for severity, n in row.items() if n)


def summary_line(results: Sequence[PropertyResult], seconds: float, fail_on: str = DEFAULT_FAIL_ON) -> str:
    """The one-line summary, e.g. ``lossguard: FAILED 532 results: 480 pass, 2 fail, ... in 58.1 s``. The verdict is
    the exit status's: FAILED when a result fails at or above ``--fail-on`` (``severity.fails_gate``); failures
    below it are counted in parentheses."""
    counts = Counter(r.status for r in results)
    gating = sum(fails_gate(r, fail_on) for r in results)
    verdict = "FAILED" if gating else "OK" if results else "NOTHING RAN"
    parts = ", ".join(f"{counts[s]} {s}" for s in STATUSES if counts[s] or s in ("pass", "fail"))
    below = sum(r.status in FAILING_STATUSES for r in results) - gating
    note = f" ({below} below --fail-on {fail_on})" if below else ""
    return f"lossguard: {verdict} {len(results)} results: {parts}{note} in {seconds:.1f} s"


def live_bar(stream: TextIO, total: int) -> tuple[RichProgress, TaskID]:
    """A started rich progress bar on ``stream`` (a terminal) for ``total`` steps, and its task: description, bar,
    done/total and the time elapsed; it clears itself when stopped."""
    bar = RichProgress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=Console(file=stream),
        transient=True,
    )
    bar.start()
    return bar, bar.add_task("", total=total)


class Progress:
    """Progress on stderr: a rich progress bar on a terminal; elsewhere (CI, pipes) one plain line per
    implementation once its results are in."""

    def __init__(self, stream: TextIO | None = None):
        self.stream = stream or sys.stderr
        self.live = self.stream.isatty()
        self.current: list[PropertyResult] = []
        self.bar: RichProgress | None = None

    def __call__(self, done: int, total: int, result: PropertyResult) -> None:
        if self.live:
            self._advance(done, total, result)
        else:
            if self.current and self.current[-1].implementation != result.implementation:
                self._line(done - 1, total)
            self.current.append(result)
            if done == total:
                self._line(done, total)
            self.stream.flush()

    def _advance(self, done: int, total: int, result: PropertyResult) -> None:
        if self.bar is None:
            self.bar, self.task = live_bar(self.stream, total)
        self.bar.update(self.task, completed=done, description=f"{result.implementation} {result.property}"[:60])
        if done == total:
            self.bar.stop()
            self.bar = None

    def _line(self, done: int, total: int) -> None:
        counts = Counter(r.status for r in self.current)
        statuses = ", ".join(f"{counts[s]} {s}" for s in STATUSES if counts[s])
        self.stream.write(f"[{done}/{total}] {self.current[0].implementation}: {statuses}\n")
        self.current = []
