"""The Markdown report (``--markdown FILE``): a run as a CI job page reads it, rendered from the JSON document;
and its short form (``--summary FILE``, appended: a CI job's step summary).

What was tested, the verdict, the root causes by severity and library, each new root cause with what it breaks,
how much it matters, its minimal counterexample and the command that reproduces it, the recorded findings in a
collapsed list, and one row per implementation. Everything it prints of the judged code (names, messages,
counterexamples) sits in code spans or fenced blocks, whose contents Markdown renderers never interpret.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from lossguard.harness.kernel.model import STATUSES
from lossguard.harness.kernel.severity import SEVERITIES


def _code(text: Any) -> str:
    """``text`` as an inline code span that no backtick inside it can close (CommonMark: a longer fence)."""
    text = str(text).replace("\n", " ")
    fence = "`" * (max((len(run) for run in text.split("`")[1::2]), default=0) + 1)
    while fence in text:
        fence += "`"
    return f"{fence} {text} {fence}"


def _cell(text: Any) -> str:
    """A table cell: a code span with its pipes escaped (a pipe ends a cell even inside a code span)."""
    return _code(text).replace("|", "\\|") if str(text) else ""


def _cause(number: int, cause: Mapping[str, Any]) -> list[str]:
    label = "stale record" if cause["status"] == "xpass" else cause["severity"]
    lines = [
        f"### {number}. [{label}] {_code(cause['implementation'])} ({_code(cause['loss'])})",
        "",
        f"- breaks: {', '.join(cause['breaks'])}",
    ]
    if cause["convention"]:
        lines.append(f"- convention: {_code(cause['convention'])}")
    if cause["matters"]:
        lines.append(f"- how much: {cause['matters']}")
    lines += ["", "```text", str(cause["reason"]).replace("```", "'''"), "```"]
    if cause["counterexample"]:
        lines.append(f"- minimal counterexample: {_code(cause['counterexample'])}")
    if cause["reproduce"]:
        lines.append(f"- reproduce: {_code(cause['reproduce'])}")
    return [*lines, ""]


def _severities(causes: Sequence[Mapping[str, Any]]) -> list[str]:
    """Root causes by library (or implementation kind) and severity, as a table."""
    rows: dict[str, Counter[str]] = {}
    for cause in causes:
        rows.setdefault(cause["library"] or cause["kind"], Counter())[cause["severity"] or "stale record"] += 1
    columns = [*SEVERITIES, "stale record"]
    lines = ["| library | " + " | ".join(columns) + " |", "|---" * (len(columns) + 1) + "|"]
    for where, row in rows.items():
        lines.append(f"| {where} | " + " | ".join(str(row[c]) for c in columns) + " |")
    return [*lines, ""]


def _implementations(results: Sequence[Mapping[str, Any]]) -> list[str]:
    rows: dict[str, list[Mapping[str, Any]]] = {}
    for r in results:
        rows.setdefault(r["implementation"], []).append(r)
    lines = ["| implementation | loss | " + " | ".join(STATUSES) + " |", "|---" * (len(STATUSES) + 2) + "|"]
    for impl, mine in rows.items():
        counts = Counter(r["status"] for r in mine)
        lines.append(f"| {_cell(impl)} | {mine[0]['loss']} | " + " | ".join(str(counts[s]) for s in STATUSES) + " |")
    return [*lines, ""]


def _verdict(summary: Mapping[str, Any]) -> tuple[str, str]:
    """A report summary's verdict (OK or FAILED, by its exit status) and its counts by status (pass and fail always,
    the others when any)."""
    verdict = "FAILED" if summary["exit_status"] else "OK"
    return verdict, ", ".join(f"{summary[s]} {s}" for s in STATUSES if summary[s] or s in ("pass", "fail"))


def render(document: Mapping[str, Any]) -> str:
    """The Markdown text of a JSON report document (``lossguard.reports.json_report.document``)."""
    summary = document["summary"]
    verdict, counts = _verdict(summary)
    lines = [
        f"## lossguard: {verdict}",
        "",
        f"{len(document['results'])} results: {counts} in {summary['seconds']:.1f} s ({_code(document['command'])})",
        "",
        *(f"- {key}: {_code(value)}" for key, value in {**document["target"], **document["versions"]}.items()),
        "",
    ]
    causes = document["findings"]
    new = [c for c in causes if c["status"] != "xfail"]
    recorded = [c for c in causes if c["status"] == "xfail"]
    if causes:
        lines += ["### Root causes by severity", "", *_severities(causes)]
    for number, cause in enumerate(new, 1):
        lines += _cause(number, cause)
    if recorded:
        lines += [f"<details><summary>{len(recorded)} recorded findings (xfail)</summary>", ""]
        lines += [
            f"- [{c['severity']}] {_code(c['implementation'])}: {', '.join(c['breaks'])}: {_code(c['reason'])}"
            for c in recorded
        ]
        lines += ["", "</details>", ""]
    lines += ["### Implementations", "", *_implementations(document["results"])]
    return "\n".join(lines)


def write(path: str | Path, document: Mapping[str, Any]) -> None:
    Path(path).write_text(render(document))


def summary(document: Mapping[str, Any], fail_on: str) -> str:
    """The short form for a CI job's page (``--summary``): the verdict and counts, the implementations with a
    failure, each new root cause with its minimal counterexample and reproduce command (``render``'s parts)."""
    totals = document["summary"]
    verdict, counts = _verdict(totals)
    lines = [
        f"## lossguard: {verdict}",
        "",
        f"{len(document['results'])} results: {counts} in {totals['seconds']:.1f} s, gate --fail-on {fail_on} "
        f"({_code(document['command'])})",
        "",
    ]
    failing = {r["implementation"] for r in document["results"] if r["status"] in ("fail", "error", "xpass")}
    if failing:
        lines += _implementations([r for r in document["results"] if r["implementation"] in failing])
    for number, cause in enumerate((c for c in document["findings"] if c["status"] != "xfail"), 1):
        lines += _cause(number, cause)
    return "\n".join(lines) + "\n"


def append_summary(path: str | Path, document: Mapping[str, Any], fail_on: str) -> None:
    """Append ``summary`` to ``path`` (``$GITHUB_STEP_SUMMARY`` collects every step's appended Markdown)."""
    with Path(path).open("a", encoding="utf-8") as out:
        out.write(summary(document, fail_on))
