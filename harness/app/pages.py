"""The HTML report's pages (``--html DIR``): one page per library, each finding with its plot.

``write_pages`` splits a run's results by library (results of no library go to one page, ``lossguard.html``),
groups each page's results into root causes, computes a slice through the counterexample of each (at most
``MAX_PLOTS`` per page, new findings before recorded ones, none for a failure by definition or a validation gap,
whose example is no call the loss is defined on) and renders the page (``lossguard.reports.html``).

The slices call the implementation (``lossguard.harness.app.slices``): in this process where the audit ran in it
(``impls``, ``catalog``), in isolation workers where it ran in them (``job``, ``time_limit``: the user's code never
runs in lossguard's own process). A plot that cannot be computed is omitted with a note saying why.
"""

from __future__ import annotations

import importlib.util
import io
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from lossguard.harness.app import slices
from lossguard.harness.kernel.model import Implementation, LossSpec, PropertyResult
from lossguard.reports import curves, html
from lossguard.reports.findings import RootCause, group

MAX_PLOTS = 40  # per page: a slice costs a few hundred calls of the implementation
UNPLOTTED_SEVERITIES = ("validation-gap",)  # an invalid input: nothing to draw against a reference


def by_page(results: Sequence[PropertyResult]) -> dict[str, list[PropertyResult]]:
    """The results of each page, by page title: the library's name, or ``html.RUN_PAGE`` for no library."""
    pages: dict[str, list[PropertyResult]] = {}
    for r in results:
        pages.setdefault(r.library or html.RUN_PAGE, []).append(r)
    return pages


def _shown(cause: RootCause) -> PropertyResult | None:
    """The member whose example a plot goes through: the worst one if it carries its example, else the first that
    does; None when the cause gets no plot (by definition, a validation gap, no example carried)."""
    if cause.by_definition or cause.severity in UNPLOTTED_SEVERITIES:
        return None
    members = [cause.worst, *cause.members]
    return next((r for r in members if r.example is not None), None)


def _chosen(causes: Sequence[RootCause]) -> list[int]:
    """The positions of the causes to plot: new findings before recorded ones, at most MAX_PLOTS."""
    candidates = [i for i, c in enumerate(causes) if _shown(c) is not None]
    return sorted(candidates, key=lambda i: (causes[i].recorded, i))[:MAX_PLOTS]


def _answers(
    requests: Sequence[slices.Request],
    impls: Sequence[Implementation] | None,
    catalog: Mapping[str, LossSpec] | None,
    job: Mapping[str, Any] | None,
    time_limit: float,
) -> list[slices.Answer]:
    if not requests:
        return []
    if importlib.util.find_spec("matplotlib") is None:
        return ["no plot: matplotlib is not installed (pip install 'lossguard[plots]')"] * len(requests)
    if job is not None:
        return slices.isolated(job, requests, time_limit)
    if impls is not None:
        if catalog is None:
            from lossguard.catalog import CATALOG as catalog
        return slices.compute(impls, catalog, requests)
    return ["no plot: the report was not given the implementations to call"] * len(requests)


def figure(found: slices.Slice, result: PropertyResult) -> html.Plot:
    """A slice drawn as the finding's plot (PNG), with its caption."""
    name = f"{found.argument}{list(found.index) if found.index else ''}"
    drawn = curves.Curves(
        x=found.x,
        reference=found.reference,
        implementation=found.implementation,
        reference_grad=found.reference_grad,
        implementation_grad=found.implementation_grad,
        value_ulps=found.value_ulps,
        grad_ulps=found.grad_ulps,
        budget=found.budget,
        title=f"{result.loss}: {result.implementation} against the float64 reference",
        x_label=f"{name} (the rest of the counterexample fixed)",
        implementation_label=f"implementation ({result.dtype}, {result.device})",
        value_label=found.value_label,
        grad_label=f"d loss / d {name}",
        marker=found.center,
    )
    buffer = io.BytesIO()
    curves.figure(drawn, buffer, format="png", size=(7.0, 7.0), dpi=80)
    caption = (
        f"{result.implementation} against the float64 reference in {result.dtype} on {result.device}: {name} varied "
        f"around its counterexample value {found.center:.6g} (dotted line), the rest of the counterexample of "
        f"{result.property} fixed; the bottom panel is the error in ulps of the computation's scale."
    )
    return html.Plot(png=buffer.getvalue(), caption=caption)


def write_pages(
    directory: Path,
    document: dict[str, Any],
    results: list[PropertyResult],
    impls: Sequence[Implementation] | None = None,
    catalog: Mapping[str, LossSpec] | None = None,
    job: Mapping[str, Any] | None = None,
    time_limit: float = 120.0,
) -> list[Path]:
    """Write one self-contained page per library into ``directory`` (created); the paths written, in page order.

    ``document``: the run's JSON document; ``impls`` and ``catalog``: the implementations of an in-process run and
    the entries they are judged against; ``job``: an isolated run's audit job (its plots are computed in isolation
    workers, each given ``time_limit`` seconds). Neither given: the pages have no plots, with a note."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    pages = {title: (mine, group(mine)) for title, mine in by_page(results).items()}
    wanted: list[tuple[str, int, PropertyResult]] = []
    for title, (_, causes) in pages.items():
        wanted += [(title, i, _shown(causes[i])) for i in _chosen(causes)]
    requests = [slices.Request(r.implementation, r.dtype, r.device, r.example) for _, _, r in wanted]
    plots: dict[str, dict[int, html.Plot]] = {title: {} for title in pages}
    answers = _answers(requests, impls, catalog, job, time_limit)
    for (title, position, shown), answer in zip(wanted, answers, strict=True):
        if isinstance(answer, str):
            plots[title][position] = html.Plot(note=answer)
            continue
        try:
            plots[title][position] = figure(answer, shown)
        except Exception as problem:  # a figure that does not draw is omitted with its reason
            plots[title][position] = html.Plot(note=f"no plot: drawing failed: {type(problem).__name__}: {problem}")
    written = []
    for title, (mine, causes) in pages.items():
        for position, cause in enumerate(causes):
            if position not in plots[title] and _shown(cause) is not None:
                plots[title][position] = html.Plot(note=f"no plot: only {MAX_PLOTS} findings of a page are plotted")
        stem = html.page_name(title)
        path = directory / f"{stem}.html"
        if path in written:  # two titles with the same safe name
            path = directory / f"{stem}-{len(written)}.html"
        path.write_text(html.render_page(title, document, mine, causes, plots[title]), encoding="utf-8")
        written.append(path)
    return written
