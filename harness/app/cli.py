"""The ``lossguard`` command (DESIGN.md's CLI contract; scripts depend on it).

    lossguard list [--json]
    lossguard check [--impl torch|own|third-party|all] [--loss NAME]... [--device cpu|cuda|all]
                    [--dtype float64|float32|float16|bfloat16]... [--profile ci|dev|thorough]
                    [--property NAME]... [--json FILE]
    lossguard audit TARGET --loss NAME [same options] [--no-isolate] [--time-limit S] [--memory-limit GB]
    lossguard plot --loss NAME [--target TARGET] [--dtype DTYPE] --out FILE

Exit status: 0 every property holds (recorded findings included), 1 at least one result is
fail, error or xpass, 2 a usage or configuration error, with one line saying what to fix.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any, NoReturn

from lossguard.harness.kernel.model import DTYPES, FAILING_STATUSES, PropertyResult

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2


class UsageError(Exception):
    """Bad input to lossguard itself; the CLI prints ``lossguard: error: <message>`` and exits 2."""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        raise UsageError(f"{message} (see '{self.prog} --help')")


def _common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--device",
        choices=("cpu", "cuda", "all"),
        default="all",
        help="devices to run on (cuda is skipped, with the reason, where it is absent)",
    )
    parser.add_argument(
        "--dtype",
        action="append",
        choices=DTYPES,
        metavar="DTYPE",
        help=f"dtype to run (repeatable; default all of {', '.join(DTYPES)})",
    )
    parser.add_argument(
        "--profile",
        choices=("ci", "dev", "thorough"),
        help="Hypothesis profile (default: ci when the environment variable CI is set, else dev)",
    )
    parser.add_argument("--property", action="append", metavar="NAME", help="run only this property (repeatable)")
    parser.add_argument("--json", metavar="FILE", help="also write the results as JSON (schema lossguard-results/1)")


def parser() -> argparse.ArgumentParser:
    top = _Parser(
        prog="lossguard", description="Property-based verification of loss functions against float64 references."
    )
    commands = top.add_subparsers(dest="command", required=True, parser_class=_Parser)
    listing = commands.add_parser("list", help="list the catalog of losses")
    listing.add_argument("--json", action="store_true", help="machine-readable output")
    check = commands.add_parser("check", help="check the built-in implementations")
    check.add_argument("--impl", choices=("torch", "own", "third-party", "all"), default="all")
    check.add_argument("--loss", action="append", metavar="NAME", help="check only this loss (repeatable)")
    check.add_argument(
        "--family", action="append", metavar="NAME", help="check only this family's losses (repeatable; see list)"
    )
    check.add_argument("--jobs", type=int, metavar="N", help="worker processes (default: one per core)")
    _common(check)
    audit = commands.add_parser("audit", help="audit your own loss: TARGET is package.module:attr or file.py:attr")
    audit.add_argument("target", metavar="TARGET")
    audit.add_argument("--loss", required=True, metavar="NAME", help="the catalog entry it implements")
    audit.add_argument(
        "--no-isolate",
        dest="isolate",
        action="store_false",
        help="run in this process (default for package.module targets; file targets run isolated)",
    )
    audit.add_argument(
        "--isolate",
        dest="isolate",
        action="store_true",
        default=None,
        help="run in a subprocess that survives crashes and hangs (default for file targets)",
    )
    audit.add_argument(
        "--time-limit",
        type=float,
        default=120.0,
        metavar="S",
        help="isolated runs: seconds allowed per property before the run is an error (default 120)",
    )
    audit.add_argument(
        "--memory-limit",
        type=float,
        default=8.0,
        metavar="GB",
        help="isolated runs: address-space limit of the worker in GiB (default 8)",
    )
    _common(audit)
    plot = commands.add_parser("plot", help="draw loss and gradient curves of an implementation against the reference")
    plot.add_argument("--loss", required=True, metavar="NAME")
    plot.add_argument(
        "--target",
        metavar="TARGET",
        help="your loss (package.module:attr or file.py:attr); default: the built-in implementation(s) of the loss",
    )
    plot.add_argument("--dtype", choices=DTYPES, default="float32")
    plot.add_argument("--out", required=True, metavar="FILE", help="image to write (.png or .svg)")
    return top


def _list(as_json: bool) -> int:
    from lossguard.catalog import CATALOG

    if as_json:
        entries = [
            {
                "name": s.name,
                "family": s.family,
                "signature": s.signature,
                "definition": s.definition,
                "properties": list(s.properties),
                "differentiable": list(s.differentiable),
            }
            for s in CATALOG.values()
        ]
        print(json.dumps(entries, indent=2))
        return EXIT_OK
    width = max(len(name) for name in CATALOG)
    for spec in CATALOG.values():
        print(f"{spec.name:<{width}}  {spec.family:<14}  {spec.signature}")
    print(f"lossguard: {len(CATALOG)} losses in the catalog")
    return EXIT_OK


def _job(args: argparse.Namespace, base: Sequence[str], profile: str) -> dict[str, Any]:
    from lossguard.harness.app.runner import EVERY_PROPERTY  # noqa: F401  (import check: the runner loads the registry)
    from lossguard.properties.base import PROPERTIES

    unknown = [p for p in args.property or () if p not in PROPERTIES]
    if unknown:
        raise UsageError(f"unknown property {unknown[0]!r}; known: {', '.join(PROPERTIES)}")
    return {
        "dtypes": list(args.dtype or DTYPES),
        "devices": ["cpu", "cuda"] if args.device == "all" else [args.device],
        "properties": list(args.property or ()),
        "profile": profile,
        "base_command": list(base),
    }


def _finish(
    results: list[PropertyResult],
    header: dict[str, str],
    args,
    command: str,
    profile: str,
    started: float,
    empty: str = "check the filters",
) -> int:
    """Report, write the JSON, print the summary line; the exit status. ``empty``: why nothing ran, if nothing did
    (a run with no result exits 1: a gate that checked nothing has not passed)."""
    from lossguard.reports import json_report, terminal

    seconds = time.perf_counter() - started
    status = EXIT_FAILED if any(r.status in FAILING_STATUSES for r in results) else EXIT_OK
    if not results:
        status = EXIT_FAILED
    out = sys.stdout
    terminal.table(results, out)
    terminal.details(results, out)
    if args.json:
        versions = {k: header[k] for k in ("python", "lossguard", "torch", "numpy", "scipy", "hypothesis")}
        target = {k: v for k, v in header.items() if k not in versions}
        json_report.write(args.json, json_report.document(results, command, target, versions, profile, seconds, status))
    line = terminal.summary_line(results, seconds)
    print(line if results else f"{line} ({empty})", file=out)
    return status


def _check(args: argparse.Namespace, profile: str, command: str) -> int:
    from lossguard.catalog import CATALOG
    from lossguard.harness.app.inventory import implementations
    from lossguard.harness.app.jobs import selection_from, versions
    from lossguard.harness.app.runner import default_workers, run
    from lossguard.reports import terminal

    for loss in args.loss or ():
        if loss not in CATALOG:
            raise UsageError(f"unknown loss {loss!r}; run 'lossguard list' for the catalog")
    families = sorted({spec.family for spec in CATALOG.values()})
    for family in args.family or ():
        if family not in families:
            raise UsageError(f"unknown family {family!r}; choose from {', '.join(families)}")
    wanted = {
        name
        for name, spec in CATALOG.items()
        if (not args.loss or name in args.loss) and (not args.family or spec.family in args.family)
    }
    available = implementations(args.impl)
    impls = [i for i in available if i.loss in wanted]
    selection = selection_from(_job(args, ["lossguard", "check", "--impl", args.impl], profile))
    started = time.perf_counter()
    header = {
        "target": f"built-in implementations ({args.impl})",
        "losses": ", ".join(sorted(wanted)) if len(wanted) < len(CATALOG) else f"all {len(CATALOG)} in the catalog",
        "profile": profile,
        **versions(),
    }
    terminal.header(header, sys.stdout)
    results = run(impls, selection, progress=terminal.Progress(), workers=args.jobs or default_workers())
    empty = "check the filters"
    if not available:
        empty = f"lossguard binds no {args.impl} implementation yet: audit a library's loss with lossguard audit"
    return _finish(results, header, args, command, profile, started, empty)


def _plot(args: argparse.Namespace) -> int:
    from lossguard.catalog import CATALOG
    from lossguard.harness.app.inventory import implementations
    from lossguard.harness.app.target import TargetError, user_implementation
    from lossguard.reports.curves import plot

    if args.loss not in CATALOG:
        raise UsageError(f"unknown loss {args.loss!r}; run 'lossguard list' for the catalog")
    spec = CATALOG[args.loss]
    if spec.sweep is None:
        raise UsageError(f"{args.loss} has no one-dimensional sweep to plot")
    try:
        impls = (
            [user_implementation(args.target, args.loss)]
            if args.target
            else [i for i in implementations("all") if i.loss == args.loss]
        )
    except TargetError as problem:
        raise UsageError(str(problem)) from problem
    out = Path(args.out)
    for index, impl in enumerate(impls):
        path = out if len(impls) == 1 else out.with_name(f"{out.stem}-{index}{out.suffix}")
        plot(spec, impl, args.dtype, path)
        print(f"lossguard: wrote {path} ({impl.name} against the float64 reference, {args.dtype})")
    return EXIT_OK


def _audit(args: argparse.Namespace, profile: str, command: str) -> int:
    from lossguard.harness.app.isolation import IsolatedTargetError, run_isolated
    from lossguard.harness.app.jobs import prepare
    from lossguard.harness.app.runner import run
    from lossguard.harness.app.target import TargetError
    from lossguard.reports import terminal

    base = ["lossguard", "audit", args.target, "--loss", args.loss]
    job = {**_job(args, base, profile), "target": args.target, "loss": args.loss, "memory_limit_gb": args.memory_limit}
    isolate = args.isolate if args.isolate is not None else args.target.rpartition(":")[0].endswith(".py")
    started = time.perf_counter()
    progress = terminal.Progress()
    extra = {"isolation": "subprocess" if isolate else "in-process", "profile": profile}

    def show(header: dict[str, str]) -> dict[str, str]:
        header = {**{k: v for k, v in header.items() if k != "base"}, **extra}
        terminal.header(header, sys.stdout)
        sys.stdout.flush()
        return header

    try:
        if isolate:
            header, results = run_isolated(job, args.time_limit, progress, on_header=show)
            header = {**{k: v for k, v in header.items() if k != "base"}, **extra}
        else:
            impl, selection, header = prepare(job)
            header = show(header)
            results = run([impl], selection, progress)
    except (TargetError, IsolatedTargetError) as problem:
        raise UsageError(str(problem)) from problem
    return _finish(results, header, args, command, profile, started)


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    try:
        args = parser().parse_args(argv)
        if args.command == "list":
            return _list(args.json)
        if args.command == "plot":
            return _plot(args)
        from lossguard.harness.kernel.profiles import default_profile

        profile = args.profile or default_profile()
        command = "lossguard " + " ".join(argv)
        return _check(args, profile, command) if args.command == "check" else _audit(args, profile, command)
    except UsageError as problem:
        print(f"lossguard: error: {problem}", file=sys.stderr)
        return EXIT_USAGE


if __name__ == "__main__":
    sys.exit(main())
