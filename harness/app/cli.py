"""The ``lossguard`` command (DESIGN.md's CLI contract; scripts depend on it).

    lossguard list [--json]
    lossguard check [--impl torch|own|third-party|all] [--loss NAME]... [--device cpu|cuda|all]
                    [--dtype float64|float32|float16|bfloat16]... [--profile ci|dev|thorough]
                    [--property NAME]... [--json FILE] [--junit FILE] [--summary FILE] [--fail-on LEVEL]
    lossguard check --config FILE [--loss-name NAME]... [same options] [--save-examples]
    lossguard check          (no --impl/--loss/--family: the nearest [tool.lossguard] upward, else the built-ins)
    lossguard explore [--config FILE] [--loss-name NAME]... [--max-examples N] [same options]   (saves examples)
    lossguard audit TARGET --loss NAME [same options] [--no-isolate] [--time-limit S] [--memory-limit GB]
    lossguard plot --loss NAME [--target TARGET] [--dtype DTYPE] --out FILE
    lossguard repro --library NAME|all --out DIR [--markdown FILE]
    lossguard bench [--loss NAME]... [--family NAME]... [--impl KIND] [--size SIZE]... --out DIR

Exit status: 0 every property holds (recorded findings included), 1 at least one result is
fail, error or xpass, 2 a usage or configuration error, with one line saying what to fix.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any, NoReturn

from lossguard.harness.app.isolation import CALL_LIMIT
from lossguard.harness.kernel.model import DTYPES, PropertyResult
from lossguard.harness.kernel.severity import DEFAULT_FAIL_ON, SEVERITIES, fails_gate

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
        help="devices to run on (default all, or a configuration's; cuda is skipped, with the reason, where absent)",
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
    parser.add_argument("--markdown", metavar="FILE", help="also write the report as Markdown (a CI job page)")
    parser.add_argument("--html", metavar="DIR", help="also write one self-contained HTML page per library into DIR")
    parser.add_argument("--junit", metavar="FILE", help="also write JUnit XML (one testcase per result, for CI)")
    parser.add_argument(
        "--summary", metavar="FILE", help="also append a short Markdown summary to FILE (e.g. $GITHUB_STEP_SUMMARY)"
    )
    parser.add_argument(
        "--fail-on",
        choices=SEVERITIES,
        metavar="LEVEL",
        help=f"fail the exit status on findings at or above LEVEL, one of {', '.join(SEVERITIES)} (most severe "
        f"first; default a configuration's fail-on, else {DEFAULT_FAIL_ON}: everything but imprecise and convention)",
    )
    parser.add_argument(
        "--verbose", action="store_true", help="also print the full table (implementation x property x dtype)"
    )
    parser.add_argument(
        "--replay", metavar="BLOB", help="replay a reported failing example first (from a reproduce command)"
    )
    parser.add_argument("--jobs", type=int, metavar="N", help="worker processes (default: one per core)")


def parser() -> argparse.ArgumentParser:
    top = _Parser(
        prog="lossguard", description="Property-based verification of loss functions against float64 references."
    )
    commands = top.add_subparsers(dest="command", required=True, parser_class=_Parser)
    listing = commands.add_parser("list", help="list the catalog of losses")
    listing.add_argument("--json", action="store_true", help="machine-readable output")
    check = commands.add_parser(
        "check", help="check the built-in implementations, or the losses of a configuration (--config)"
    )
    check.add_argument(
        "--impl",
        choices=("torch", "own", "third-party", "builtin", "all"),
        help="torch built-ins, lossguard's own, installed libraries' losses through shipped bindings, "
        "builtin (torch and own) or all (default, unless a configuration is found: see --config)",
    )
    check.add_argument("--loss", action="append", metavar="NAME", help="check only this loss (repeatable)")
    check.add_argument(
        "--family", action="append", metavar="NAME", help="check only this family's losses (repeatable; see list)"
    )
    check.add_argument("--binding-name", metavar="LABEL", help="check only the implementation of this name")
    _common(check)
    from lossguard.harness.app import gate, shards

    shards.add_options(check)

    gate.add_options(check)
    gate.add_explore(commands, _common)
    audit = commands.add_parser(
        "audit",
        help="audit a loss as shipped: TARGET (package.module:attr or file.py:attr), a binding file, or a library",
    )
    audit.add_argument("target", metavar="TARGET", nargs="?", help="the loss to audit (omit with --binding/--library)")
    audit.add_argument(
        "--loss",
        metavar="NAME",
        help="the catalog entry it implements (omit for a loss outside the catalog: reference-free checks)",
    )
    audit.add_argument("--binding", metavar="FILE", help="a binding file (TOML, or Python defining BINDINGS)")
    audit.add_argument("--binding-name", metavar="LABEL", help="audit only this binding of the file or library")
    audit.add_argument(
        "--library",
        action="append",
        metavar="NAME",
        help="audit every loss a library exports through lossguard's shipped bindings (repeatable; 'all')",
    )
    inline = audit.add_argument_group("inline binding (with TARGET; see docs/BINDINGS.md)")
    inline.add_argument("--param", action="append", metavar="CANONICAL=LIBRARY", help="a renamed parameter")
    inline.add_argument("--init", action="append", metavar="NAME=VALUE", help="a constructor argument (TOML value)")
    inline.add_argument("--domain", action="append", metavar="NAME", help="a part of the contract it supports")
    inline.add_argument("--variant", action="append", metavar="NAME=VALUE", help="a reference variant it follows")
    inline.add_argument(
        "--fixed", action="append", metavar="NAME=VALUE", help="a parameter it computes with unasked (its default)"
    )
    inline.add_argument("--none", action="append", metavar="NAME=VALUE", help="how it spells a parameter's None")
    inline.add_argument(
        "--output", action="append", metavar="REDUCTION=LAYOUT", help="its output layout (sum-classes, squeeze-spatial)"
    )
    inline.add_argument("--args", metavar="NAME,NAME", help="the canonical arrays in its positional order")
    inline.add_argument("--like", metavar="ENTRY", help="outside the catalog: draw inputs like this entry's")
    inline.add_argument("--framework", choices=("torch", "jax"), default="torch")
    audit.add_argument(
        "--no-isolate",
        dest="isolate",
        action="store_false",
        default=None,  # the first action of a dest sets its default: None = decided by the target's kind
        help="run in this process (default for package.module targets and libraries; files run isolated)",
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
        default=CALL_LIMIT,
        metavar="S",
        help="isolated runs: seconds one call of the implementation may take; a longer call is an error of the "
        "implementation, whose other cells are then not run (default 10; a property or a plot gets 12 times this)",
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
    from lossguard.harness.app import bench, repro

    repro.add_parser(commands)
    bench.add_parser(commands)
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
    import lossguard.harness.app.runner  # noqa: F401  (the runner registers every property)
    from lossguard.properties.base import PROPERTIES

    unknown = [p for p in args.property or () if p not in PROPERTIES]
    if unknown:
        raise UsageError(f"unknown property {unknown[0]!r}; known: {', '.join(PROPERTIES)}")
    return {
        "dtypes": list(args.dtype or DTYPES),
        "devices": ["cpu", "cuda"] if args.device in (None, "all") else [args.device],
        "properties": list(args.property or ()),
        "profile": profile,
        "base_command": list(base),
        "replay": args.replay,
    }


def _finish(
    results: list[PropertyResult],
    header: dict[str, str],
    args,
    command: str,
    profile: str,
    started: float,
    empty: str = "check the filters",
    plots: dict[str, Any] | None = None,
    classname: str = "lossguard",
) -> int:
    """Report, write the JSON, Markdown, HTML, JUnit and summary reports asked for, print the summary line; the exit
    status. ``empty``: why nothing ran, if nothing did (a run with no result exits 1: a gate that checked nothing has
    not passed). ``plots``: what the HTML pages need to draw the findings (the implementations, or the isolated
    job). ``classname``: the JUnit testcases' (a configuration's path, reports/junit.py)."""
    from lossguard.reports import json_report, markdown, terminal

    seconds = time.perf_counter() - started
    status = EXIT_FAILED if any(fails_gate(r, args.fail_on) for r in results) or not results else EXIT_OK
    out = sys.stdout
    if args.verbose:
        terminal.table(results, out)
    terminal.implementation_lines(results, out)
    if args.verbose:
        terminal.details(results, out)
    terminal.findings(results, out, args.fail_on)
    terminal.library_lines(results, out)
    versions = {k: header[k] for k in ("python", "lossguard", "torch", "numpy", "scipy", "hypothesis")}
    target = {k: v for k, v in header.items() if k not in versions}
    document = json_report.document(results, command, target, versions, profile, seconds, status)
    if args.json:
        json_report.write(args.json, document)
    if args.markdown:
        markdown.write(args.markdown, document)
    if args.html:
        from lossguard.harness.app.pages import write_pages

        for page in write_pages(Path(args.html), document, results, **(plots or {})):
            print(f"lossguard: wrote {page}", file=out)
    if args.junit:
        from lossguard.reports import junit

        junit.write(args.junit, results, classname, args.fail_on, seconds)
    if args.summary:
        markdown.append_summary(args.summary, document, args.fail_on)
    line = terminal.summary_line(results, seconds, args.fail_on)
    print(line if results else f"{line} ({empty})", file=out)
    return status


def selected_losses(args: argparse.Namespace) -> set[str]:
    """The catalog entries ``--loss`` and ``--family`` select (every entry without them); UsageError naming an
    unknown loss or family (``check`` and ``bench``)."""
    from lossguard.catalog import CATALOG

    for loss in args.loss or ():
        if loss not in CATALOG:
            raise UsageError(f"unknown loss {loss!r}; run 'lossguard list' for the catalog")
    families = sorted({spec.family for spec in CATALOG.values()})
    for family in args.family or ():
        if family not in families:
            raise UsageError(f"unknown family {family!r}; choose from {', '.join(families)}")
    return {
        name
        for name, spec in CATALOG.items()
        if (not args.loss or name in args.loss) and (not args.family or spec.family in args.family)
    }


def _check(args: argparse.Namespace, profile: str, command: str) -> int:
    from lossguard.catalog import CATALOG
    from lossguard.harness.app import shards
    from lossguard.harness.app.inventory import implementations
    from lossguard.harness.app.jobs import INSTALL_HINT, selection_from, versions
    from lossguard.harness.app.runner import costs, default_workers, run
    from lossguard.reports import terminal

    wanted = selected_losses(args)
    available = implementations(args.impl)
    impls = [i for i in available if i.loss in wanted and args.binding_name in (None, i.name)]
    selection = selection_from(_job(args, ["lossguard", "check", "--impl", args.impl], profile))
    try:
        durations = shards.measured(args.durations) if args.durations else None
        everything, impls = impls, shards.pick(impls, args.shard, lambda: costs(impls, selection, durations))
    except shards.ShardError as problem:
        raise UsageError(str(problem)) from problem
    started = time.perf_counter()
    header = {
        "target": f"built-in implementations ({args.impl})",
        "losses": ", ".join(sorted(wanted)) if len(wanted) < len(CATALOG) else f"all {len(CATALOG)} in the catalog",
        **({"shard": f"{args.shard}: {len(impls)} of {len(everything)} implementations"} if args.shard else {}),
        "profile": profile,
        **versions(),
    }
    terminal.header(header, sys.stdout)
    workers = args.jobs or default_workers()
    results = run(impls, selection, progress=terminal.Progress(), workers=workers, durations=durations)
    empty = "check the filters"
    if not available:
        empty = f"no {args.impl} implementation is available: install the libraries lossguard binds ({INSTALL_HINT})"
    return _finish(results, header, args, command, profile, started, empty, {"impls": impls, "catalog": CATALOG})


def _plot(args: argparse.Namespace) -> int:
    from lossguard.catalog import CATALOG
    from lossguard.harness.app.bindings import compile_binding
    from lossguard.harness.app.inventory import implementations
    from lossguard.harness.app.target import TargetError
    from lossguard.harness.kernel.binding import Binding
    from lossguard.reports.curves import plot

    if args.loss not in CATALOG:
        raise UsageError(f"unknown loss {args.loss!r}; run 'lossguard list' for the catalog")
    spec = CATALOG[args.loss]
    if spec.sweep is None:
        raise UsageError(f"{args.loss} has no one-dimensional sweep to plot")
    try:
        impls = (
            [compile_binding(Binding(target=args.target, loss=args.loss, inspect=True), kind="user")[0]]
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


def _pairs(option: str, values: Sequence[str] | None, literal: bool) -> dict[str, Any]:
    """``NAME=VALUE`` options as a mapping; ``literal``: VALUE is a TOML value (2, 1e-5, true, "binary"), a bare
    word is a string."""
    from lossguard.harness.app.bindings import tomllib

    found: dict[str, Any] = {}
    for text in values or ():
        name, sep, value = text.partition("=")
        if not sep or not name:
            raise UsageError(f"{option} {text!r} must be NAME=VALUE")
        if literal:
            with contextlib.suppress(tomllib.TOMLDecodeError):  # a bare word stays the string itself
                value = tomllib.loads(f"v = {value}")["v"]
        found[name.strip()] = value
    return found


# the options a reproduce command sets itself or that only choose the reports (those with a value, then flags)
_SELECTION = (
    "--property",
    "--dtype",
    "--device",
    "--profile",
    "--replay",
    "--json",
    "--jobs",
    "--binding-name",
    "--markdown",
    "--html",
    "--fail-on",
    "--junit",
    "--summary",
)
_REPORT_FLAGS = ("--verbose",)


def _without_selection(argv: Sequence[str]) -> list[str]:
    """The command's words without the options a reproduce command sets itself (it adds its own selection)."""
    words, skip = ["lossguard"], False
    for word in argv:
        if skip:
            skip = False
        elif word in _SELECTION:
            skip = True
        elif word in _REPORT_FLAGS:
            continue
        elif not word.startswith(tuple(f"{option}=" for option in _SELECTION)):
            words.append(word)
    return words


def _sources(args: argparse.Namespace) -> list[dict[str, Any]]:
    """The audit job's binding sources (harness.app.jobs), from TARGET and its inline options, --binding or
    --library; exactly one of the three."""
    from lossguard.harness.app.bindings import libraries

    given = [bool(args.target), bool(args.binding), bool(args.library)]
    if sum(given) != 1:
        raise UsageError("give exactly one of TARGET, --binding FILE or --library NAME")
    if args.library:
        names = libraries() if "all" in args.library else args.library
        unknown = [n for n in names if n not in libraries()]
        if unknown:
            shipped = ", ".join(libraries())
            raise UsageError(f"unknown library {unknown[0]!r}; lossguard ships bindings for {shipped}, all")
        if args.binding_name and len(names) != 1:
            raise UsageError("--binding-name picks one binding of one library; give a single --library NAME")
        return [{"library": name, "name": args.binding_name} for name in names]
    if args.binding:
        return [{"file": args.binding, "name": args.binding_name}]
    if args.binding_name:
        raise UsageError("--binding-name picks a binding of --binding FILE or --library NAME")
    fields: dict[str, Any] = {"target": args.target, "framework": args.framework}
    if args.loss:
        fields["loss"] = args.loss
    params = _pairs("--param", args.param, literal=False)
    if params:
        fields["params"] = params
    else:
        fields["inspect"] = True  # no --param: the parameters it takes are found by name in its signature
    for option in ("init", "variant", "fixed", "none", "output"):
        pairs = _pairs(f"--{option}", getattr(args, option), literal=option != "output")
        if pairs:
            fields[option] = pairs
    if args.args:
        fields["args"] = [name.strip() for name in args.args.split(",")]
    if args.domain:
        fields["domain"] = list(args.domain)
    if args.like:
        fields["like"] = args.like
    return [{"inline": fields}]


def _audit(args: argparse.Namespace, profile: str, command: str) -> int:
    from lossguard.harness.app.isolation import IsolatedTargetError, property_limit, run_isolated
    from lossguard.harness.app.jobs import prepare
    from lossguard.harness.app.runner import default_workers, run
    from lossguard.harness.app.target import TargetError
    from lossguard.reports import terminal

    sources = _sources(args)
    if args.loss and not args.target:
        raise UsageError("--loss names the entry TARGET implements; a binding file or library states its own")
    job = {
        **_job(args, _without_selection(args.argv), profile),
        "bindings": sources,
        "memory_limit_gb": args.memory_limit,
    }
    target_file = bool(args.target) and args.target.rpartition(":")[0].endswith(".py")
    isolate = args.isolate if args.isolate is not None else target_file or bool(args.binding)
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
            plots: dict[str, Any] = {"job": job, "time_limit": property_limit(args.time_limit)}
        else:
            prepared, selection = prepare(job)
            header = show(prepared.header)
            results = run(
                prepared.impls,
                selection,
                progress,
                workers=args.jobs or default_workers(),
                catalog=prepared.catalog,
            )
            for result in results:
                result.library = prepared.library_of.get(result.implementation, "")
            results = [*prepared.known, *results]
            plots = {"impls": prepared.impls, "catalog": prepared.catalog}
    except (TargetError, IsolatedTargetError) as problem:
        raise UsageError(str(problem)) from problem
    return _finish(results, header, args, command, profile, started, plots=plots)


def _configured(args: argparse.Namespace, command: str) -> int | None:
    """A run of a gate configuration's losses (harness.app.gate); None when no configuration applies (a check of
    the built-ins). A configuration error is a usage error."""
    from lossguard.harness.app import config, gate, shards
    from lossguard.harness.app.runner import default_workers
    from lossguard.harness.kernel.profiles import default_profile
    from lossguard.reports import terminal

    try:
        path = gate.configuration(args)
        if path is None:
            return None
        loaded = config.load(path)
        profile = args.profile or ("thorough" if args.command == "explore" else loaded.profile or default_profile())
        args.fail_on = args.fail_on or loaded.fail_on
        entries = gate.selected(loaded, args)
        if getattr(args, "shard", None):  # explore searches every loss; check --config splits them like check
            durations = shards.measured(args.durations) if args.durations else None
            names = [e.name for e in entries]
            entries = shards.pick(entries, args.shard, lambda: shards.by_implementation(names, durations), "losses")
        jobs = [gate.job(loaded, entry, profile, args) for entry in entries]
        header = gate.header(loaded, [e.name for e in entries], profile)
        terminal.header(header, sys.stdout)
        sys.stdout.flush()
        started = time.perf_counter()
        workers = args.jobs or default_workers()
        results = gate.run(loaded, entries, jobs, args, workers, terminal.Progress())
    except (config.ConfigError, shards.ShardError) as problem:
        raise UsageError(str(problem)) from problem
    return _finish(results, header, args, command, profile, started, classname=loaded.classname())


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    try:
        args = parser().parse_args(argv)
        if args.command == "list":
            return _list(args.json)
        if args.command == "plot":
            return _plot(args)
        if args.command == "repro":
            from lossguard.harness.app import repro

            return repro.run(args)
        if args.command == "bench":
            from lossguard.harness.app import bench

            return bench.run(args, argv)
        from lossguard.harness.kernel.profiles import default_profile

        command = "lossguard " + " ".join(argv)
        args.argv = argv
        if args.command in ("check", "explore"):
            configured = _configured(args, command)
            if configured is not None:
                return configured
            args.impl = args.impl or "all"
        args.fail_on = args.fail_on or DEFAULT_FAIL_ON
        profile = args.profile or default_profile()
        return _check(args, profile, command) if args.command == "check" else _audit(args, profile, command)
    except UsageError as problem:
        print(f"lossguard: error: {problem}", file=sys.stderr)
        return EXIT_USAGE


if __name__ == "__main__":
    sys.exit(main())
