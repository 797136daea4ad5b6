"""``lossguard bench``: a bounded benchmark of every implementation of every loss, as one Markdown and one HTML page.

    lossguard bench [--loss NAME]... [--family NAME]... [--impl KIND] [--device cpu|cuda|all] [--dtype DTYPE]...
                    [--size small|medium|large]... [--call-limit S] [--time-budget S] --out DIR

For each selected loss, implementation (torch built-in, lossguard's own, every installed library's shipped binding,
and the float64 reference where float64 is asked for), device and dtype, it measures through
``lossguard.harness.app.measure`` (the asv suite's core, so the figures mean the same on both): the forward +
backward median at each problem size, smallest first; the loss's own peak memory and its amplification at the
largest size measured; the worst error in ulps against the float64 reference on the fixed seeded small problem.
For cross_entropy and linear_cross_entropy it adds the bytes a bandwidth-bound pass moves (one read of the logits,
one write of their gradient), which the report divides by the time and by the device's memory bandwidth, measured
once per run with a STREAM triad (``a = b + s c`` on 2^25-element float32 arrays, ``memory_bandwidth``).

Bounded: a size whose call would take longer than ``--call-limit`` seconds (estimated from the previous size's time,
scaled by the elements) is not measured, nor are the larger ones; once ``--time-budget`` seconds have passed, what
remains is listed as not measured; a call that needs more than ``--memory-limit`` GiB beyond what the run holds
fails and is listed with its reason (``cap_memory``). Measurements run on one thread (``measure.single_thread``),
the bandwidth too.
Exit status: 0 when the pages are written and something was measured, 1 when nothing could be, 2 on bad options.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from lossguard.harness.kernel.model import DTYPES, Implementation

if TYPE_CHECKING:  # the report's modules load with the run, not with the CLI's parser
    from lossguard.reports.bench_report import Row

DEFAULT_CALL_LIMIT = 1.0  # seconds: the longest forward + backward measured by default
DEFAULT_TIME_BUDGET = 600.0  # seconds of the whole run
DEFAULT_MEMORY_LIMIT = 4.0  # GiB the measurements may add to the address space
TRIAD_ELEMENTS = 1 << 25  # float32 per array: 128 MiB, far beyond any cache
TRIAD = "measured: a STREAM triad a = b + s*c over 3 x 128 MiB float32 arrays"


def add_parser(commands: Any) -> None:
    """Register ``bench`` on the CLI's subcommands (``commands``: argparse's subparsers action)."""
    bench = commands.add_parser(
        "bench",
        help="benchmark every implementation of the losses: time, own memory, accuracy; Markdown and HTML pages",
        description="Measure each implementation's forward + backward time per problem size, the loss's own peak "
        "memory and amplification, and its worst error in ulps against the float64 reference; write DIR/bench.md "
        "and DIR/bench.html.",
    )
    bench.add_argument("--loss", action="append", metavar="NAME", help="benchmark only this loss (repeatable)")
    bench.add_argument("--family", action="append", metavar="NAME", help="only this family's losses (repeatable)")
    bench.add_argument(
        "--impl",
        choices=("torch", "own", "third-party", "builtin", "all"),
        default="all",
        help="torch built-ins, lossguard's own, installed libraries' bindings, builtin (torch and own) or all "
        "(default; with float64 the reference too)",
    )
    bench.add_argument("--device", choices=("cpu", "cuda", "all"), default="all", help="default: every device here")
    bench.add_argument(
        "--dtype", action="append", choices=DTYPES, metavar="DTYPE", help="dtype (repeatable; default float32)"
    )
    bench.add_argument(
        "--size", action="append", metavar="SIZE", help="problem size: small, medium or large (repeatable; default all)"
    )
    bench.add_argument(
        "--call-limit",
        type=float,
        default=DEFAULT_CALL_LIMIT,
        metavar="S",
        help=f"skip a size whose forward + backward would take longer than S seconds (default {DEFAULT_CALL_LIMIT})",
    )
    bench.add_argument(
        "--time-budget",
        type=float,
        default=DEFAULT_TIME_BUDGET,
        metavar="S",
        help=f"stop measuring after S seconds; the rest is listed as not measured (default {DEFAULT_TIME_BUDGET:g})",
    )
    bench.add_argument(
        "--memory-limit",
        type=float,
        default=DEFAULT_MEMORY_LIMIT,
        metavar="GB",
        help="the most memory the measurements may add, in GiB: a call that needs more is not measured (default "
        f"{DEFAULT_MEMORY_LIMIT:g}; CPU-only runs on Linux)",
    )
    bench.add_argument("--out", required=True, metavar="DIR", help="directory for bench.md and bench.html")


@dataclass(frozen=True)
class Plan:
    """What one run measures: losses in catalog order, and per loss its implementations (``measure.REFERENCE`` for
    the float64 reference); devices, dtypes and sizes (smallest first)."""

    names: dict[str, list[str | Implementation]]
    devices: tuple[str, ...]
    dtypes: tuple[str, ...]
    sizes: tuple[str, ...]


def plan(args: argparse.Namespace) -> Plan:
    """The run ``args`` ask for; ``UsageError`` for an unknown loss or family, or an absent device."""
    import torch

    from lossguard.catalog import CATALOG
    from lossguard.harness.app import measure
    from lossguard.harness.app.cli import UsageError, selected_losses
    from lossguard.harness.app.inventory import implementations

    wanted = selected_losses(args)
    for size in args.size or ():
        if size not in measure.SIZES:
            raise UsageError(f"unknown size {size!r}; choose from {', '.join(measure.SIZES)}")
    for option in ("call_limit", "time_budget", "memory_limit"):
        if not getattr(args, option) > 0:
            raise UsageError(f"--{option.replace('_', '-')} must be a positive number")
    if args.device == "cuda" and not torch.cuda.is_available():
        raise UsageError("--device cuda: CUDA is not available on this machine")
    devices = (args.device,) if args.device != "all" else ("cpu", "cuda") if torch.cuda.is_available() else ("cpu",)
    dtypes = tuple(dict.fromkeys(args.dtype or ["float32"]))
    with_reference = args.impl == "all" and "float64" in dtypes
    names: dict[str, list[str | Implementation]] = {}
    for impl in implementations(args.impl):
        names.setdefault(impl.loss, []).append(impl)
    selected = {
        loss: ([measure.REFERENCE] if with_reference else []) + names.get(loss, [])
        for loss in CATALOG
        if loss in wanted
    }
    selected = {loss: chosen for loss, chosen in selected.items() if chosen}
    if not selected:
        raise UsageError(f"no {args.impl} implementation of the selected losses is available here")
    sizes = tuple(s for s in measure.SIZES if s in (args.size or measure.SIZES))
    return Plan(selected, devices, dtypes, sizes)


def memory_bandwidth(device: str) -> float:
    """Bytes per second of a STREAM triad on ``device`` (two arrays read, one written), median of five samples."""
    import torch

    from lossguard.harness.app.measure import median_time

    a, b, c = (torch.ones(TRIAD_ELEMENTS, dtype=torch.float32, device=device) for _ in range(3))
    timing = median_time(lambda _: torch.add(b, c, alpha=3.0, out=a), device=device)
    return 3 * TRIAD_ELEMENTS * 4 / timing.median


def cap_memory(headroom_gb: float, devices: Sequence[str]) -> str:
    """Cap this process's address space (RLIMIT_AS) at what it holds now plus ``headroom_gb`` GiB, so that a call
    needing more raises (torch's allocator, NumPy: a caught error, the row not measured) instead of exhausting the
    machine (pytorch-metric-learning's NTXentLoss builds a pairs x pairs mask: 17 GB at 512 embeddings); in words,
    for the report. Not with CUDA, whose context reserves address space, nor where /proc is not readable."""
    import resource

    if "cuda" in devices:
        return "not capped (a CUDA context reserves address space)"
    try:
        with open("/proc/self/status") as status:
            held = next(int(line.split()[1]) * 1024 for line in status if line.startswith("VmSize:"))
    except (OSError, StopIteration, ValueError):
        return "not capped (this system does not say how much address space the process holds)"
    _, hard = resource.getrlimit(resource.RLIMIT_AS)
    limit = held + int(headroom_gb * (1 << 30))
    limit = limit if hard == resource.RLIM_INFINITY else min(limit, hard)
    resource.setrlimit(resource.RLIMIT_AS, (limit, hard))
    return f"the address space capped at {limit / (1 << 30):.1f} GiB: {headroom_gb:g} GiB beyond what the run held"


def elements(loss: str, size: str, device: str) -> int:
    """The problem's size on the plots' axis: the elements of the logits for cross_entropy and linear_cross_entropy
    (tokens x vocabulary, whether or not an implementation materialises them), else of the first argument."""
    from lossguard.harness.app import measure

    args = measure.problem(loss, size, device).args
    if loss == "linear_cross_entropy":
        return int(args["hidden"].shape[0] * args["weight"].shape[0])
    return int(next(a for a in args.values() if a is not None).size)


def moved_bytes(loss: str, size: str, dtype: str, device: str) -> float | None:
    """The bytes a bandwidth-bound forward + backward of cross-entropy moves at least: one read of the logits and
    one write of their gradient, in ``dtype`` (None for the other losses)."""
    import torch

    from lossguard.harness.app import measure

    if loss not in measure.LANGUAGE_MODEL_ENTRIES:
        return None
    return 2.0 * elements(loss, size, device) * torch.empty((), dtype=getattr(torch, dtype)).element_size()


def _size(size: str, devices: Sequence[str]) -> str:
    """A size in words: its elements, and the language-model head cross-entropy takes at it on each device."""
    from lossguard.harness.app import measure

    heads = {
        f"{h.tokens:,} x {h.vocabulary:,} (hidden {h.hidden:,})"
        for h in (measure.language_model(size, d) for d in devices)
    }
    return f"{size}: {measure.SIZES[size]:,} elements, cross-entropy {' / '.join(sorted(heads))}"


def _reason(problem: BaseException) -> str:
    text = str(problem).strip().splitlines()
    return f"{type(problem).__name__}: {text[0]}"[:300] if text else type(problem).__name__


def measure_row(
    loss: str,
    impl: str | Implementation,
    device: str,
    dtype: str,
    sizes: Sequence[str],
    call_limit: float,
    deadline: float,
) -> Row:
    """One row of the report (``bench_report.Row``): ``impl`` (or ``measure.REFERENCE``) on ``loss`` in ``dtype`` on
    ``device``, each size in turn while its estimated call stays within ``call_limit`` seconds and the run's
    ``deadline`` (``time.monotonic``) has not passed; then the peak memory at the largest size measured and the
    worst ulps. What could not be measured is the row's ``error``, with its reason."""
    from lossguard.harness.app import measure
    from lossguard.reports.bench_report import Point, Row

    name, kind = (impl, "reference") if isinstance(impl, str) else (impl.name, impl.kind)
    points: list[Point] = []
    cut, last = "", None
    for index, size in enumerate(sizes):
        rest = " and ".join(sizes[index:])
        if time.monotonic() > deadline:
            cut = f"{rest} not measured: the run's time budget is spent"
            break
        try:
            n = elements(loss, size, device)
            if points and points[-1].seconds * n / points[-1].elements > call_limit:
                estimate = points[-1].seconds * n / points[-1].elements
                cut = f"{rest} not measured: {size} would take about {estimate:.2g} s a call, over the call limit"
                break
            call = measure.prepare(impl, loss, size, dtype, device)
            timing = measure.time_call(call, "forward_backward")
        except Exception as problem:  # an implementation that cannot take this problem: its reason, not a crash
            cut = f"{size}: {_reason(problem)}"
            break
        points.append(Point(size, n, timing.median, moved_bytes(loss, size, dtype, device)))
        last = call
    if last is None:
        return Row(loss, name, kind, device, dtype, error=cut)
    try:
        memory = measure.peak_memory(last)
        peak, grad_bytes = memory.peak, memory.grad_bytes
    except Exception:  # the figure is absent; time and accuracy stand
        peak, grad_bytes = None, None
    try:
        ulps: float | None = measure.worst_ulps(impl, loss, dtype, device).worst
    except Exception:
        ulps = None
    return Row(loss, name, kind, device, dtype, tuple(points), peak, grad_bytes, ulps, error=cut)


def run(args: argparse.Namespace, argv: Sequence[str]) -> int:
    """Run ``lossguard bench`` (``argv``: its words after ``lossguard``, for the report); the exit status."""
    from lossguard.harness.app import measure
    from lossguard.harness.app.jobs import versions
    from lossguard.reports import bench_report

    started = time.monotonic()
    chosen = plan(args)
    measure.single_thread()
    deadline = started + args.time_budget
    bandwidth = {d: (memory_bandwidth(d), TRIAD + (", one thread" if d == "cpu" else "")) for d in chosen.devices}
    capped = cap_memory(args.memory_limit, chosen.devices)
    steps = [
        (loss, impl, device, dtype)
        for loss, impls in chosen.names.items()
        for impl in impls
        for device in chosen.devices
        for dtype in chosen.dtypes
        if not isinstance(impl, str) or (device, dtype) == ("cpu", "float64")  # the reference is float64 NumPy
    ]
    progress = bench_report.Progress(len(steps))
    rows = []
    for loss, impl, device, dtype in steps:
        rows.append(measure_row(loss, impl, device, dtype, chosen.sizes, args.call_limit, deadline))
        progress.step(f"{rows[-1].implementation} ({device} {dtype})", rows[-1].error)
    progress.close()
    facts = [
        ("command", " ".join(["lossguard", *argv])),
        ("devices", ", ".join(chosen.devices)),
        ("dtypes", ", ".join(chosen.dtypes)),
        ("sizes", "; ".join(_size(s, chosen.devices) for s in chosen.sizes)),
        ("limits", f"a call at most {args.call_limit:g} s, the run at most {args.time_budget:g} s"),
        ("threads", "1 (torch, BLAS and OpenMP)"),
        ("memory", capped),
        (
            "own peak memory",
            f"{measure.CPU_PROFILER} (cpu), {measure.CUDA_ALLOCATED} (cuda), {measure.NUMPY_TRACED} (the reference); "
            "not measured for JAX",
        ),
        *versions().items(),
    ]
    written = bench_report.write(Path(args.out), bench_report.Bench(rows, bandwidth, facts))
    measured = [r for r in rows if r.points]
    seconds = time.monotonic() - started
    print(
        f"lossguard: bench measured {len(measured)} of {len(rows)} implementation runs of {len(chosen.names)} losses "
        f"on {', '.join(chosen.devices)} in {seconds:.1f} s; wrote {' and '.join(str(p) for p in written)}"
    )
    return 0 if measured else 1
