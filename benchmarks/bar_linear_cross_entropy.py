"""The linear_cross_entropy bars of issue 12, measured on this machine's CPU (a benchmark script, not a test).

    python -m benchmarks.bar_linear_cross_entropy [--size large] [--rounds N] [--threads 1 2] [--json FILE]

At the language-model head (``measure.language_model``: ``large`` is 8,192 tokens x 32,000 vocabulary, hidden
1,024), in float32, three implementations of ``cross_entropy(hidden @ weight.T, target)`` ('mean'):

- ``materialised``: ``F.cross_entropy(hidden @ weight.T, target)``, the (N, V) logits held;
- ``torch``: torch's ``F.linear_cross_entropy`` on its chunked path (lossguard's torch built-in binding);
- ``own``: lossguard's ``linear_cross_entropy``.

Bars (own against the others, measured side by side in one process):

- memory: the loss's own peak over a forward + backward (``measure.peak_memory``: the torch profiler's
  allocator events, the gradients included, the inputs not) at most ``MEMORY_BAR`` x the materialised one's and
  no more than torch's;
- time: the median forward + backward (``side_by_side.interleaved``: rounds in a rotating order, so other
  load on a shared machine falls on all three alike) no slower than either, at every thread count given.

Progress goes to stderr, the table and the verdicts to stdout. Exit status 0 when every bar is met, 1 otherwise.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path

import torch
import torch.nn.functional as F

from benchmarks.side_by_side import interleaved, log, megabytes, table
from lossguard.harness.app import measure
from lossguard.harness.app.inventory import bind

LOSS = "linear_cross_entropy"
MEMORY_BAR = 0.1  # the own peak over the materialised one's, at most
IMPLEMENTATIONS = {"own": "lossguard.linear_cross_entropy", "torch": "torch.nn.functional.linear_cross_entropy"}


def materialised(
    hidden: torch.Tensor,
    weight: torch.Tensor,
    target: torch.Tensor,
    bias: torch.Tensor | None = None,
    ignore_index: int = -100,
    reduction: str = "mean",
) -> torch.Tensor:
    """The textbook call: ``F.cross_entropy`` of the materialised ``(N, V)`` logits ``hidden @ weight.T + bias``."""
    logits = hidden @ weight.T if bias is None else torch.addmm(bias, hidden, weight.T)
    return F.cross_entropy(logits, target, ignore_index=ignore_index, reduction=reduction)


def _verdict(met: bool, what: str) -> tuple[bool, str]:
    return met, f"{'PASS' if met else 'FAIL'}  {what}"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size", default="large", choices=list(measure.SIZES), help="the language-model head")
    parser.add_argument("--rounds", type=int, default=3, help="timed rounds per thread count (default 3)")
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 2], help="torch thread counts (default 1 2)")
    parser.add_argument("--json", type=Path, help="also write the figures to this file")
    args = parser.parse_args(argv)
    measure.single_thread()
    shape = measure.language_model(args.size)
    log(f"{LOSS} at {shape.tokens} tokens x {shape.vocabulary} vocabulary, hidden {shape.hidden}, float32, cpu")
    impls = {
        "own": IMPLEMENTATIONS["own"],
        "torch": IMPLEMENTATIONS["torch"],
        "materialised": bind(LOSS, materialised, "F.cross_entropy(hidden @ weight.T, target)", "user"),
    }
    calls, memory = {}, {}
    for label, impl in impls.items():
        log(f"  {label}: warm-up and peak memory")
        calls[label] = measure.prepare(impl, LOSS, args.size, "float32")
        memory[label] = measure.peak_memory(calls[label])
    timings = {threads: interleaved(calls, args.rounds, threads) for threads in args.threads}

    header = ["implementation", "own peak MB", "amplification", *(f"fwd+bwd ms, {t} thr" for t in args.threads)]
    rows = [
        [
            label if label != "materialised" else "materialised F.cross_entropy",
            megabytes(memory[label]),
            f"{memory[label].amplification:.2f}x",
            *(f"{timings[t][label].median * 1e3:.0f}" for t in args.threads),
        ]
        for label in impls
    ]
    print(f"{LOSS}, {shape.tokens} x {shape.vocabulary}, hidden {shape.hidden}, float32, cpu")
    print(f"(memory: {measure.CPU_PROFILER}, beyond the inputs, gradients included; time: median of {args.rounds})")
    print(table(header, rows))
    own, torch_peak, full = memory["own"].peak, memory["torch"].peak, memory["materialised"].peak
    verdicts = [
        _verdict(
            own <= MEMORY_BAR * full,
            f"own memory {own / 1e6:.0f} MB <= {MEMORY_BAR} x materialised's {full / 1e6:.0f} MB",
        ),
        _verdict(own <= torch_peak, f"own memory {own / 1e6:.0f} MB <= torch's {torch_peak / 1e6:.0f} MB"),
    ]
    for t in args.threads:
        mine = timings[t]["own"].median
        for other in ("torch", "materialised"):
            theirs = timings[t][other].median
            verdicts.append(
                _verdict(
                    mine <= theirs,
                    f"own time {mine:.2f} s <= {other}'s {theirs:.2f} s ({t} thread(s); ratio {mine / theirs:.2f})",
                )
            )
    for _, line in verdicts:
        print(line)
    met = all(ok for ok, _ in verdicts)
    print(f"{LOSS} bars: {'all met' if met else 'NOT all met'} ({sum(ok for ok, _ in verdicts)}/{len(verdicts)})")
    if args.json:
        figures = {
            label: {
                "peak_bytes": memory[label].peak,
                "amplification": memory[label].amplification,
                "seconds": {str(t): list(timings[t][label].samples) for t in args.threads},
            }
            for label in impls
        }
        args.json.write_text(json.dumps({"shape": shape._asdict(), "figures": figures, "met": met}, indent=2))
    return 0 if met else 1


if __name__ == "__main__":
    sys.exit(main())
