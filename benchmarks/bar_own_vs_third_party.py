"""Issue 12's bar for lossguard's own implementations against third-party ones (a benchmark script, not a test).

    python -m benchmarks.bar_own_vs_third_party [--size medium] [--rounds N] [--loss NAME ...] [--json FILE]

For every catalog entry that lossguard implements itself (``implementations/own``) and that at least one
installed library's shipped binding implements too (``inventory.implementations('third-party')``: kornia, monai,
smp, pytorch-metric-learning, timm, torchvision, optax), on the CPU in float32 at the entry's ``medium`` problem
(``measure.problem``, the same seeded example for every implementation; a binding gets it with the values it
fixes pinned, as ``measure.prepare`` does):

- time: the median forward + backward of every implementation, measured side by side (``side_by_side``:
  rounds in a rotating order); optax runs as a ``jax.jit`` program of the value and the gradient;
- memory: the loss's own peak over a forward + backward (``measure.peak_memory``; unavailable for JAX).

The bar, per entry: own median <= ``TIME_BAR`` x the fastest third-party median, and own peak <= that
implementation's peak (not judged where its peak is unavailable). Each row names what the fastest binding
fixes or adapts (its contract's pinned values), so a bar missed against a binding that computes less is
visible as such. Progress goes to stderr, the table to stdout; exit status 0 when every bar is met, 1 otherwise.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import defaultdict
from collections.abc import Sequence
from pathlib import Path

from benchmarks.side_by_side import interleaved, log, megabytes, table
from lossguard.harness.app import measure
from lossguard.harness.app.inventory import implementations
from lossguard.harness.kernel.model import Implementation

TIME_BAR = 1.2  # own median over the fastest third-party median, at most


def pairs(losses: Sequence[str] = ()) -> dict[str, tuple[Implementation, list[Implementation]]]:
    """Per loss (all, or ``losses``): lossguard's own implementation and the third-party ones of the same entry."""
    theirs: dict[str, list[Implementation]] = defaultdict(list)
    for impl in implementations("third-party"):
        theirs[impl.loss].append(impl)
    return {
        own.loss: (own, theirs[own.loss])
        for own in implementations("own")
        if theirs[own.loss] and (not losses or own.loss in losses)
    }


def _prepared(impl: Implementation, loss: str, size: str) -> measure.Call | None:
    try:
        return measure.prepare(impl, loss, size, "float32")
    except measure.Unavailable as why:
        log(f"    {impl.name}: not measured ({why})")
        return None


def _fixed(impl: Implementation) -> str:
    """What the binding pins (its contract's fixed values), in words: '' when nothing."""
    return ", ".join(f"{k}={v!r}" for k, v in impl.fixed.items())


def measure_loss(loss: str, own: Implementation, theirs: list[Implementation], size: str, rounds: int) -> dict:
    """The figures of one entry: every implementation's median time and peak, the fastest third party, the bars."""
    calls = {impl.name: call for impl in [own, *theirs] if (call := _prepared(impl, loss, size)) is not None}
    if own.name not in calls or len(calls) == 1:
        return {"loss": loss, "skipped": "own or every third-party implementation unavailable"}
    memory = {name: measure.peak_memory(call) for name, call in calls.items()}
    timing = interleaved(calls, rounds, threads=1)
    fastest = min((n for n in calls if n != own.name), key=lambda n: timing[n].median)
    ratio = timing[own.name].median / timing[fastest].median
    own_peak, their_peak = memory[own.name].peak, memory[fastest].peak
    memory_met = None if their_peak is None or own_peak is None else own_peak <= their_peak
    return {
        "loss": loss,
        "own_s": timing[own.name].median,
        "fastest": fastest,
        "fastest_s": timing[fastest].median,
        "ratio": ratio,
        "own_peak": own_peak,
        "their_peak": their_peak,
        "time_met": ratio <= TIME_BAR,
        "memory_met": memory_met,
        "fixed": _fixed(next(i for i in theirs if i.name == fastest)),
        "all": {n: {"s": timing[n].median, "peak": memory[n].peak} for n in calls},
        "own_mb": megabytes(memory[own.name]),
        "their_mb": megabytes(memory[fastest]),
    }


def _row(r: dict) -> list[str]:
    if "skipped" in r:
        return [r["loss"], "-", "-", "-", "-", "-", "-", r["skipped"]]
    verdict = "met" if r["time_met"] and r["memory_met"] is not False else "MISSED"
    return [
        r["loss"],
        f"{r['own_s'] * 1e3:.2f}",
        r["fastest"],
        f"{r['fastest_s'] * 1e3:.2f}",
        f"{r['ratio']:.2f}",
        r["own_mb"],
        r["their_mb"],
        verdict + (f" (it fixes {r['fixed']})" if r["fixed"] else ""),
    ]


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size", default="medium", choices=list(measure.SIZES), help="problem size (default medium)")
    parser.add_argument("--rounds", type=int, default=5, help="timed rounds (default 5)")
    parser.add_argument("--loss", action="append", default=[], help="only this entry (repeatable)")
    parser.add_argument("--json", type=Path, help="also write the figures to this file")
    args = parser.parse_args(argv)
    measure.single_thread()
    selected = pairs(args.loss)
    results = []
    for k, (loss, (own, theirs)) in enumerate(selected.items(), 1):
        log(f"[{k}/{len(selected)}] {loss}: {own.name} against {', '.join(i.name for i in theirs)}")
        results.append(measure_loss(loss, own, theirs, args.size, args.rounds))
    header = ["loss", "own ms", "fastest third party", "its ms", "ratio", "own MB", "its MB", "bar"]
    print(f"own vs the fastest third-party implementation: forward + backward, {args.size}, float32, cpu, 1 thread")
    print(f"(median of {args.rounds} rounds; memory: the loss's own peak, {measure.CPU_PROFILER})")
    print(table(header, [_row(r) for r in results]))
    judged = [r for r in results if "skipped" not in r]
    missed = [r["loss"] for r in judged if not r["time_met"] or r["memory_met"] is False]
    print(
        f"own vs third party: {len(judged) - len(missed)}/{len(judged)} met (time <= {TIME_BAR}x the fastest, "
        f"memory <= its)" + (f"; missed: {', '.join(missed)}" if missed else "")
    )
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))
    return 0 if not missed else 1


if __name__ == "__main__":
    sys.exit(main())
