"""The report of ``lossguard bench``: one Markdown page and one self-contained HTML page of a benchmark run.

Per loss, one row per implementation (and device and dtype): the forward + backward median at the largest problem
size measured, the speed relative to torch eager (the torch built-in of the same loss on the same device and dtype,
at the largest size both measured: 2.0x is twice as fast), the loss's own peak memory and its amplification factor
(that peak divided by the bytes of the inputs), the worst error in ulps against the float64 reference, and, where the
application gives the bytes a pass must move (cross-entropy: one read of the logits and one write of their gradient),
the achieved bandwidth as a fraction of the device's. The HTML page adds, per loss, a plot of time against problem
size per implementation (a PNG data URI: the page loads nothing), and both pages end with the table of lossguard's
own implementations against the fastest third-party implementation of the same loss (issue 12's bar: within 1.2x
its time, never more memory).

Everything here is rendering: the application measures (``lossguard.harness.app.bench``) and hands over ``Bench``.
Names in the Markdown sit in code spans; the HTML environment autoescapes every value (``reports.html``).
"""

from __future__ import annotations

import io
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TextIO

from rich.progress import Progress as RichProgress

from lossguard.reports import html
from lossguard.reports.curves import plain
from lossguard.reports.markdown import _cell
from lossguard.reports.terminal import live_bar

OWN_TIME_BAR = 1.2  # the own implementation's time / the fastest third-party's, at most (issue 12)
OWN_MEMORY_BAR = 1.0  # its own peak / the third-party's, at most


@dataclass(frozen=True)
class Point:
    """One problem size of one implementation: its name, its elements (the logits for cross-entropy, else the first
    argument), the forward + backward median in seconds, and the bytes a bandwidth-bound pass moves at that size
    (None: not a bandwidth-bound loss)."""

    size: str
    elements: int
    seconds: float
    moved_bytes: float | None = None


@dataclass(frozen=True)
class Row:
    """One implementation of one loss on one device in one dtype. ``points``: smallest size first (a size the time
    budget cut is absent); ``peak_bytes`` and ``input_bytes``: the loss's own peak memory and the bytes of its
    inputs at the largest size; ``worst_ulps``: its worst error against the float64 reference; ``error``: why it
    was not measured (then the figures are absent)."""

    loss: str
    implementation: str
    kind: str
    device: str
    dtype: str
    points: tuple[Point, ...] = ()
    peak_bytes: float | None = None
    input_bytes: float | None = None
    worst_ulps: float | None = None
    error: str = ""

    @property
    def largest(self) -> Point | None:
        return self.points[-1] if self.points else None

    @property
    def amplification(self) -> float | None:
        if self.peak_bytes is None or not self.input_bytes:
            return None
        return self.peak_bytes / self.input_bytes

    def seconds_at(self, size: str) -> float | None:
        return next((p.seconds for p in self.points if p.size == size), None)


@dataclass(frozen=True)
class Bench:
    """A benchmark run: its rows, each device's memory bandwidth in bytes/s with how it was obtained, and the
    facts of the run (command, versions, threads, budget) in display order."""

    rows: Sequence[Row]
    bandwidth: dict[str, tuple[float, str]] = field(default_factory=dict)
    facts: Sequence[tuple[str, str]] = ()

    def losses(self) -> dict[str, list[Row]]:
        found: dict[str, list[Row]] = {}
        for row in self.rows:
            found.setdefault(row.loss, []).append(row)
        return found


def _common(row: Row, other: Row) -> tuple[float, float] | None:
    """The seconds of ``row`` and ``other`` at the largest size both measured."""
    for point in reversed(row.points):
        theirs = other.seconds_at(point.size)
        if theirs is not None:
            return point.seconds, theirs
    return None


def speedup(row: Row, rows: Sequence[Row]) -> float | None:
    """How many times faster than torch eager ``row`` is (the torch row of its loss, device and dtype)."""
    same = (row.loss, row.device, row.dtype)
    torch = next((r for r in rows if r.kind == "torch" and (r.loss, r.device, r.dtype) == same), None)
    pair = None if torch is None else _common(row, torch)
    return None if pair is None else pair[1] / pair[0]


def bandwidth_fraction(row: Row, bandwidth: dict[str, tuple[float, str]]) -> float | None:
    """The achieved bandwidth at the largest size as a fraction of the device's (None: not bandwidth-bound)."""
    point = row.largest
    if point is None or point.moved_bytes is None or row.device not in bandwidth:
        return None
    return point.moved_bytes / point.seconds / bandwidth[row.device][0]


@dataclass(frozen=True)
class OwnVersus:
    """lossguard's own implementation of a loss against the fastest third-party one (same device and dtype) at
    ``size``, and its peak memory against the smallest third-party peak measured at its own largest size (None:
    none was measured there, as for JAX implementations)."""

    own: Row
    fastest: Row
    size: str
    time_ratio: float
    memory_ratio: float | None

    @property
    def met(self) -> bool:
        memory_ok = self.memory_ratio is None or self.memory_ratio <= OWN_MEMORY_BAR
        return self.time_ratio <= OWN_TIME_BAR and memory_ok


def own_versus_third_party(rows: Sequence[Row]) -> list[OwnVersus]:
    """Each own row with a third-party row of its loss, device and dtype, against the fastest of those at the largest
    size the own row and at least one of them measured (a size the time budget cut is not compared), and against
    the smallest of their peaks."""
    found = []
    for own in (r for r in rows if r.kind == "own" and r.points):
        same = [
            r
            for r in rows
            if r.kind == "third-party" and (r.loss, r.device, r.dtype) == (own.loss, own.device, own.dtype)
        ]
        for point in reversed(own.points):
            timed = [(r.seconds_at(point.size), r) for r in same if r.seconds_at(point.size) is not None]
            if timed:
                seconds, fastest = min(timed, key=lambda t: t[0])
                peaks = [r.peak_bytes for r in same if r.peak_bytes and r.largest.size == own.largest.size]
                memory = own.peak_bytes / min(peaks) if own.peak_bytes is not None and peaks else None
                found.append(OwnVersus(own, fastest, point.size, point.seconds / seconds, memory))
                break
    return found


def seconds_text(seconds: float | None) -> str:
    if seconds is None:
        return "—"
    for unit, scale in (("s", 1.0), ("ms", 1e-3), ("µs", 1e-6)):
        if seconds >= scale:
            return f"{seconds / scale:.3g} {unit}"
    return f"{seconds / 1e-9:.3g} ns"


def bytes_text(n: float | None) -> str:
    if n is None:
        return "—"
    for unit, scale in (("GiB", 2**30), ("MiB", 2**20), ("KiB", 2**10)):
        if abs(n) >= scale:
            return f"{n / scale:.3g} {unit}"
    return f"{n:.0f} B"


def _ratio(value: float | None, suffix: str = "x") -> str:
    return "—" if value is None else f"{value:.3g}{suffix}"


def _percent(value: float | None) -> str:
    return "—" if value is None else f"{100 * value:.3g}%"


def _ulps(value: float | None) -> str:
    return "—" if value is None else f"{value:.3g}"


def table_rows(rows: Sequence[Row], bandwidth: dict[str, tuple[float, str]]) -> list[dict[str, str]]:
    """The displayed cells of one loss's rows: per device and dtype (in the order they come), the largest size
    first, the fastest first, rows not measured last; ``error``: what was not measured, and why."""
    where = list(dict.fromkeys((r.device, r.dtype) for r in rows))
    order = sorted(
        rows,
        key=lambda r: (
            where.index((r.device, r.dtype)),
            r.largest is None,
            -(r.largest.elements if r.largest else 0),
            _time(r),
        ),
    )
    return [
        {
            "implementation": r.implementation,
            "kind": r.kind,
            "where": f"{r.device} {r.dtype}",
            "size": f"{r.largest.size} ({r.largest.elements:,})" if r.largest else "—",
            "time": seconds_text(r.largest.seconds) if r.largest else "—",
            "speedup": _ratio(speedup(r, rows)),
            "peak": bytes_text(r.peak_bytes),
            "amplification": _ratio(r.amplification),
            "ulps": _ulps(r.worst_ulps),
            "bandwidth": _percent(bandwidth_fraction(r, bandwidth)),
            "error": r.error,
        }
        for r in order
    ]


def _time(row: Row) -> float:
    return row.largest.seconds if row.largest else float("inf")


COLUMNS = (
    ("implementation", "implementation"),
    ("kind", "kind"),
    ("where", "device, dtype"),
    ("size", "size (elements)"),
    ("time", "fwd+bwd median"),
    ("speedup", "vs torch eager"),
    ("peak", "own peak memory"),
    ("amplification", "amplification"),
    ("ulps", "worst ulps"),
    ("bandwidth", "of memory bandwidth"),
)


def versus_rows(bench: Bench) -> list[dict[str, str]]:
    return [
        {
            "loss": v.own.loss,
            "where": f"{v.own.device} {v.own.dtype}",
            "size": v.size,
            "own": seconds_text(v.own.seconds_at(v.size)),
            "fastest": v.fastest.implementation,
            "theirs": seconds_text(v.fastest.seconds_at(v.size)),
            "time_ratio": _ratio(v.time_ratio),
            "memory_ratio": _ratio(v.memory_ratio),
            "met": "met" if v.met else "MISSED",
        }
        for v in own_versus_third_party(bench.rows)
    ]


VERSUS = (
    ("loss", "loss"),
    ("where", "device, dtype"),
    ("size", "size"),
    ("own", "own fwd+bwd"),
    ("fastest", "fastest third-party"),
    ("theirs", "its fwd+bwd"),
    ("time_ratio", "time ratio"),
    ("memory_ratio", "memory ratio (to the least third-party)"),
    ("met", f"bar (<= {OWN_TIME_BAR}x time, <= {OWN_MEMORY_BAR}x memory)"),
)


def _markdown_table(columns: Sequence[tuple[str, str]], rows: Sequence[dict[str, str]]) -> list[str]:
    lines = ["| " + " | ".join(title for _, title in columns) + " |", "|" + "---|" * len(columns)]
    for row in rows:
        lines.append("| " + " | ".join(_cell(row[key]) if row[key] != "—" else "—" for key, _ in columns) + " |")
    return lines


def _bandwidth_lines(bench: Bench) -> list[str]:
    return [f"- memory bandwidth of {d}: {bytes_text(b)}/s ({how})" for d, (b, how) in bench.bandwidth.items()]


def markdown(bench: Bench) -> str:
    """The run as Markdown: the facts, one table per loss, then own implementations against third-party ones."""
    lines = ["# lossguard bench", ""]
    lines += [f"- {key}: {_cell(value)}" for key, value in bench.facts]
    lines += [*_bandwidth_lines(bench), ""]
    for loss, rows in bench.losses().items():
        lines += [f"## {_cell(loss)}", ""]
        cells = table_rows(rows, bench.bandwidth)
        lines += _markdown_table(COLUMNS, cells)
        lines += [f"- {_cell(c['implementation'])} ({c['where']}): {c['error']}" for c in cells if c["error"]]
        lines.append("")
    versus = versus_rows(bench)
    lines += ["## Own implementations against the fastest third-party", ""]
    lines += (
        _markdown_table(VERSUS, versus) if versus else ["No own implementation has a third-party counterpart here."]
    )
    lines.append("")
    return "\n".join(lines)


def plot(loss: str, rows: Sequence[Row], dpi: int = 80) -> html.Plot:
    """Time against problem size per implementation (log-log), as a PNG; a note where nothing was measured."""
    drawn = [r for r in rows if r.points]
    if not drawn:
        return html.Plot(note="no plot: no implementation was measured")
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axis = plt.subplots(figsize=(6.4, 4.0))
    for row in drawn:
        axis.loglog(
            [p.elements for p in row.points],
            [p.seconds for p in row.points],
            marker="o",
            label=plain(f"{row.implementation} ({row.device} {row.dtype})"),
        )
    axis.set_xlabel("problem size (elements: the logits for cross-entropy, else the first argument)")
    axis.set_ylabel("forward + backward median (s)")
    axis.set_title(plain(loss), fontsize=10)
    axis.legend(fontsize=7, loc="best")
    axis.grid(True, which="both", alpha=0.3)
    figure.tight_layout()
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=dpi)
    plt.close(figure)
    sizes = ", ".join(dict.fromkeys(f"{p.size} {p.elements:,}" for r in drawn for p in r.points))
    return html.Plot(png=buffer.getvalue(), caption=f"{loss}: forward + backward median per problem size ({sizes}).")


def render_html(bench: Bench) -> str:
    """The run as one self-contained HTML page (inline style, PNG data URIs, no script)."""
    losses = [
        {"name": loss, "rows": table_rows(rows, bench.bandwidth), "plot": plot(loss, rows)}
        for loss, rows in bench.losses().items()
    ]
    return (
        html.environment()
        .get_template("bench.html.j2")
        .render(
            facts=list(bench.facts),
            bandwidth=[(d, f"{bytes_text(b)}/s", how) for d, (b, how) in bench.bandwidth.items()],
            columns=COLUMNS,
            losses=losses,
            versus_columns=VERSUS,
            versus=versus_rows(bench),
        )
    )


def write(directory: str | Path, bench: Bench) -> list[Path]:
    """Write ``bench.md`` and ``bench.html`` into ``directory`` (created); the two paths."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    md, page = directory / "bench.md", directory / "bench.html"
    md.write_text(markdown(bench), encoding="utf-8")
    page.write_text(render_html(bench), encoding="utf-8")
    return [md, page]


class Progress:
    """Progress of a benchmark run on stderr: a rich bar on a terminal; elsewhere (CI, pipes) one plain line per
    implementation measured, with why it was not (fully) measured."""

    def __init__(self, total: int, stream: TextIO | None = None):
        self.stream = stream or sys.stderr
        self.total, self.done = total, 0
        self.bar: RichProgress | None = None
        if self.stream.isatty():
            self.bar, self.task = live_bar(self.stream, total)

    def step(self, what: str, note: str = "") -> None:
        """One more implementation measured: ``what``, and ``note`` (what was not measured) if any."""
        self.done += 1
        if self.bar is not None:
            self.bar.update(self.task, completed=self.done, description=what[:60])
        else:
            self.stream.write(f"[{self.done}/{self.total}] {what}" + (f": {note}" if note else "") + "\n")
            self.stream.flush()

    def close(self) -> None:
        if self.bar is not None:
            self.bar.stop()
            self.bar = None
