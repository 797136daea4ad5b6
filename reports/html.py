"""The HTML report (``--html DIR``): one self-contained page per library, rendered with Jinja2.

A page says what was tested (the command, the target, the versions, the profile, the results by status), shows a
table of the page's implementations (each with its loss) x properties, each cell one badge per dtype (and non-CPU
device) coloured by status and severity and linked to the finding that explains it, then the diagnosed conventions,
then the findings (one per root cause, ``lossguard.reports.findings``), most severe first: the severity, what it
breaks, how much it matters, the message, the minimal counterexample, the command that reproduces it, and a plot of
the implementation against the reference through the counterexample (drawn by the application, which calls the
implementation: ``Plot``), then what was not audited and why.

Everything on a page that comes from the run (names, messages, counterexamples, the target, the command) is
text: the environment autoescapes every value and no template marks one safe. The pages load nothing: the style
is inline, the plots are PNG data URIs, there is no script.
"""

from __future__ import annotations

import base64
import re
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jinja2

from lossguard.harness.kernel.model import DTYPES, EVERY_PROPERTY, STATUSES, PropertyResult
from lossguard.harness.kernel.severity import SEVERITIES
from lossguard.reports.findings import RECORDED_SEPARATOR, RootCause, counts

TEMPLATES = Path(__file__).with_name("templates")
RUN_PAGE = "lossguard"  # the page of the results that belong to no library
SHORT = {"float64": "f64", "float32": "f32", "float16": "f16", "bfloat16": "bf16"}


@dataclass(frozen=True)
class Plot:
    """A finding's figure: a PNG (``png``), or why there is none (``note``); ``caption`` says what it shows."""

    png: bytes | None = None
    note: str = ""
    caption: str = ""

    @property
    def data_uri(self) -> str:
        return "data:image/png;base64," + base64.b64encode(self.png or b"").decode("ascii")


def page_name(library: str) -> str:
    """The file name (without ``.html``) of a library's page: its name in safe characters (RUN_PAGE for none)."""
    return re.sub(r"[^A-Za-z0-9._-]+", "_", library).strip("._") or RUN_PAGE


def environment() -> jinja2.Environment:
    """The templates' environment: autoescaping on for every template, undefined names are errors."""
    return jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(TEMPLATES)),
        autoescape=jinja2.select_autoescape(default=True, default_for_string=True),
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )


def _where(r: PropertyResult) -> str:
    short = SHORT.get(r.dtype, r.dtype)
    return short if r.device == "cpu" else f"{short} {r.device}"


def _tone(r: PropertyResult) -> str:
    """The CSS class of a result's colour: its severity where it has one, else its status."""
    return f"sev-{r.severity}" if r.severity and r.status in ("fail", "error") else f"st-{r.status}"


def _grid(results: Sequence[PropertyResult], anchor: Mapping[int, str]) -> dict[str, Any]:
    """The losses x properties table: one row per implementation, one column per property, a badge per result."""
    dtype_order = {d: i for i, d in enumerate((*DTYPES, "all"))}
    properties = list(dict.fromkeys(r.property for r in results))
    rows: dict[str, dict[str, Any]] = {}
    for r in results:
        row = rows.setdefault(r.implementation, {"implementation": r.implementation, "loss": r.loss, "cells": {}})
        row["cells"].setdefault(r.property, []).append(r)
    body = []
    for row in rows.values():
        cells = []
        for prop in properties:
            mine = sorted(row["cells"].get(prop, []), key=lambda r: (r.device != "cpu", dtype_order.get(r.dtype, 9)))
            cells.append(
                [
                    {
                        "text": _where(r),
                        "tone": _tone(r),
                        "status": r.status,
                        "href": anchor.get(id(r), ""),
                        "title": f"{r.dtype} on {r.device}: {r.status}"
                        + (f" [{r.severity}]" if r.severity else "")
                        + (f": {r.message}" if r.message else ""),
                    }
                    for r in mine
                ]
            )
        body.append({"implementation": row["implementation"], "loss": row["loss"], "cells": cells})
    return {"properties": properties, "rows": body}


def _finding(number: int, cause: RootCause, plot: Plot | None) -> dict[str, Any]:
    worst = cause.worst
    message = worst.message
    if cause.recorded and RECORDED_SEPARATOR in message:  # the recorded reason is shown; what the witness showed
        message = message.split(RECORDED_SEPARATOR, 1)[1].strip()
    label = "stale record" if cause.status == "xpass" else cause.severity or cause.status
    return {
        "number": number,
        "anchor": f"finding-{number}",
        "label": label,
        "tone": "st-xpass" if cause.status == "xpass" else f"sev-{cause.severity}" if cause.severity else "",
        "status": cause.status,
        "recorded": cause.recorded,
        "by_definition": cause.by_definition,
        "implementation": cause.implementation,
        "loss": cause.loss,
        "convention": worst.convention,
        "reason": cause.reason,
        "message": message,
        "where": f"{worst.property} on {worst.device}, {worst.dtype}",
        "breaks": cause.breaks(),
        "matters": cause.matters(),
        "counterexample": worst.counterexample,
        "reproduce": worst.reproduce,
        "plot": plot,
    }


def _conventions(causes: Sequence[RootCause]) -> list[dict[str, Any]]:
    """Each diagnosed convention once per implementation, with what it explains."""
    seen: dict[tuple[str, str], dict[str, Any]] = {}
    for number, cause in enumerate(causes, 1):
        for r in cause.members:
            if r.convention:
                entry = seen.setdefault(
                    (r.implementation, r.convention),
                    {"implementation": r.implementation, "loss": r.loss, "convention": r.convention, "findings": []},
                )
                if number not in entry["findings"]:
                    entry["findings"].append(number)
    return list(seen.values())


def render_page(
    title: str,
    document: Mapping[str, Any],
    results: Sequence[PropertyResult],
    causes: Sequence[RootCause],
    plots: Mapping[int, Plot],
) -> str:
    """The page of ``results`` (one library's, or those of no library): ``document`` is the run's JSON document
    (``lossguard.reports.json_report.document``: command, target, versions, profile, summary, libraries),
    ``causes`` the root causes of ``results`` in report order (``findings.group``), ``plots`` their figures by
    position in ``causes``. The page lists the new findings first, then the recorded ones (numbered in that order)."""
    ran = [r for r in results if r.property != EVERY_PROPERTY]
    # new findings (fail, error, stale records) first, then the recorded ones, each in report order
    order = sorted(range(len(causes)), key=lambda i: (causes[i].recorded, i))
    numbered = [(n, causes[i], plots.get(i)) for n, i in enumerate(order, 1)]
    anchor = {id(r): f"#finding-{n}" for n, cause, _ in numbered for r in cause.members}
    status_counts = Counter(r.status for r in results)
    facts = [("command", document.get("command", "")), ("profile", document.get("profile", ""))]
    given = {**document.get("target", {}), **document.get("versions", {})}
    facts += [(str(k), str(v)) for k, v in given.items() if k not in ("command", "profile")]
    library = document.get("libraries", {}).get(title)
    by_severity = counts(causes)
    return (
        environment()
        .get_template("page.html.j2")
        .render(
            title=title,
            facts=facts,
            library=library,
            statuses=[(s, status_counts[s]) for s in STATUSES if status_counts[s]],
            total=len(results),
            run=document.get("summary", {}),
            severities=[*SEVERITIES, "stale record"],
            by_severity=by_severity,
            grid=_grid(ran, anchor),
            conventions=_conventions([c for _, c, _ in numbered]),
            findings=[_finding(n, c, plot) for n, c, plot in numbered],
            not_audited=[r for r in results if r.property == EVERY_PROPERTY],
        )
    )
