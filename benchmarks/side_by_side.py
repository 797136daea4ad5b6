"""Side-by-side timing of several implementations' forward + backward in one process (for the bar scripts).

``interleaved`` times each call's ``forward_backward`` (a ``measure.Call``, prepared and warmed up by
``measure.prepare``) in rounds, one sample of every implementation per round in a rotating order, and takes the
median per implementation: on a shared machine a burst of other load then falls on every implementation alike,
where ``measure.median_time``'s consecutive samples of one implementation would charge it to that one alone.
Each sample is at least ``measure.MIN_SAMPLE`` seconds (as many calls as that takes, calibrated on the
warm-up). ``table`` lays rows out as aligned plain text.
"""

from __future__ import annotations

import math
import statistics
import sys
import time
from collections.abc import Mapping, Sequence

import torch

from lossguard.harness.app import measure


def log(message: str) -> None:
    """One progress line on stderr (line-oriented: the same on a terminal and in CI)."""
    print(message, file=sys.stderr, flush=True)


def _sample(call: measure.Call, number: int) -> float:
    call.sync()
    start = time.perf_counter()
    for _ in range(number):
        call.forward_backward()
    call.sync()
    return (time.perf_counter() - start) / number


def interleaved(calls: Mapping[str, measure.Call], rounds: int, threads: int) -> dict[str, measure.Timing]:
    """The median seconds per forward + backward of each call over ``rounds`` rounds, with ``threads`` torch
    threads; each round samples every call once, the order rotated by one per round."""
    torch.set_num_threads(threads)
    names = list(calls)
    numbers = {}
    for name in names:  # calibration: calls per sample for at least MIN_SAMPLE seconds
        once = _sample(calls[name], 1)
        numbers[name] = max(1, math.ceil(measure.CALIBRATION_MARGIN * measure.MIN_SAMPLE / max(once, 1e-9)))
    samples: dict[str, list[float]] = {name: [] for name in names}
    for r in range(rounds):
        for name in names[r % len(names) :] + names[: r % len(names)]:
            samples[name].append(_sample(calls[name], numbers[name]))
        log(
            f"  round {r + 1}/{rounds} ({threads} thread{'s' * (threads > 1)}): "
            + ", ".join(f"{name} {samples[name][-1] * 1e3:.1f} ms" for name in names)
        )
    return {name: measure.Timing(statistics.median(s), tuple(s), numbers[name]) for name, s in samples.items()}


def table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """Rows as aligned plain text under ``header`` (first column left-aligned, the others right-aligned)."""
    widths = [max(len(str(row[i])) for row in [header, *rows]) for i in range(len(header))]

    def line(row: Sequence[str]) -> str:
        cells = [
            str(c).ljust(w) if i == 0 else str(c).rjust(w) for i, (c, w) in enumerate(zip(row, widths, strict=True))
        ]
        return "  ".join(cells).rstrip()

    return "\n".join([line(header), line(["-" * w for w in widths]), *(line(r) for r in rows)])


def megabytes(memory: measure.Memory) -> str:
    """A peak in MB (10^6 bytes), or why there is none."""
    return "n/a" if memory.peak is None else f"{memory.peak / 1e6:.1f}"
