"""``lossguard check --config FILE`` and ``lossguard explore``: every loss of a gate configuration
(``lossguard.harness.app.config``), each through the isolated worker, several at once.

Which configuration: ``--config FILE``, or, for a plain ``check`` (no ``--impl``, ``--loss``, ``--family`` or
``--binding-name``), the nearest ``lossguard.toml`` or ``pyproject.toml`` with a ``[tool.lossguard]`` table from
the working directory upward, when there is one; otherwise ``check`` checks the built-in implementations, as
before (DESIGN.md's CLI contract). ``explore`` always needs one.

Each entry's audit job (``config.GateConfig.job``) runs in its own isolated worker (``isolation.run_isolated``,
as ``audit`` of a file does: the team's code is code under judgement), ``--jobs`` of them at once; results come
back in configuration order whatever finished first, each entry's skipped properties as ``skip`` results carrying
their reasons. The command line narrows a configured run (``--loss-name``, ``--binding-name``, ``--property``,
``--dtype``, ``--device``) and replays one example (``--replay``): that is what each failure's reproduce command
uses (``lossguard check --config FILE --loss-name NAME --property P --dtype D --device cpu --profile ci --replay
BLOB``), and it needs no example database.

``explore`` (a nightly job) is the random search of the ``thorough`` profile (or ``--profile``) writing what it
finds into the configuration's example database (``examples``), which every later ``ci`` run replays read-only
first (``lossguard.harness.kernel.profiles``): a counterexample found once is never forgotten. ``check
--save-examples`` writes it from any profile.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from lossguard.harness.app import config as C
from lossguard.harness.kernel.model import PropertyResult

Progress = Callable[[int, int, PropertyResult], None]


def add_options(check: argparse.ArgumentParser) -> None:
    """``check``'s options for a configured run."""
    group = check.add_argument_group("a configured gate (README, 'Use lossguard as a CI gate')")
    group.add_argument(
        "--config",
        metavar="FILE",
        help="run the losses of this configuration (pyproject.toml with [tool.lossguard], or lossguard.toml); "
        "without it, a plain 'check' (no --impl, --loss, --family, --binding-name) runs the nearest one from the "
        "working directory upward when there is one, else the built-in implementations",
    )
    group.add_argument(
        "--loss-name", action="append", metavar="NAME", help="run only this configured loss (repeatable)"
    )
    group.add_argument(
        "--save-examples",
        action="store_true",
        help="write what the search finds into the configuration's example database (examples = DIR)",
    )


def add_explore(commands: Any, common: Callable[[argparse.ArgumentParser], None]) -> None:
    """The ``explore`` subcommand."""
    explore = commands.add_parser(
        "explore",
        help="search the configured losses at random (the thorough profile) and save every counterexample found "
        "into the configuration's example database, which ci runs replay (a nightly job)",
    )
    explore.add_argument("--config", metavar="FILE", help="the configuration (default: the nearest one upward)")
    explore.add_argument("--loss-name", action="append", metavar="NAME", help="explore only this loss (repeatable)")
    explore.add_argument(
        "--max-examples",
        type=int,
        metavar="N",
        help="examples per property and dtype (default: the profile's; thorough: 250): a nightly job's budget",
    )
    common(explore)
    explore.set_defaults(save_examples=True, binding_name=None)


def configuration(args: argparse.Namespace) -> Path | None:
    """The configuration this command runs (the module docstring), or None: a check of the built-ins."""
    builtin = [f"--{key.replace('_', '-')}" for key in _BUILTIN if getattr(args, key, None)]
    gated = args.loss_name or args.save_examples
    if builtin and (args.config or gated):
        raise C.ConfigError(
            f"{builtin[0]} selects built-in implementations; --config, --loss-name and --save-examples run a "
            "configuration's losses: give one or the other"
        )
    if args.config:
        return Path(args.config)
    if builtin or (args.binding_name and not args.loss_name):  # --binding-name alone picks a built-in
        return None
    found = C.find(Path.cwd())
    if found is None and (args.command == "explore" or gated):
        raise C.ConfigError(
            f"'lossguard {args.command}' needs a configuration here: --config FILE, or a pyproject.toml with "
            "[tool.lossguard] (or a lossguard.toml) in the working directory or above"
        )
    return found


_BUILTIN = ("impl", "loss", "family")


def header(config: C.GateConfig, names: list[str], profile: str) -> dict[str, str]:
    from lossguard.harness.app.jobs import versions

    return {
        "configuration": config.shown_path(),
        "losses": ", ".join(names),
        "profile": profile,
        "examples": config.examples or "none (set examples = DIR to keep counterexamples)",
        **versions(),
    }


def selected(config: C.GateConfig, args: argparse.Namespace) -> list[C.LossEntry]:
    """The entries ``--loss-name`` selects (all without it)."""
    names = [e.name for e in config.entries]
    for name in args.loss_name or ():
        if name not in names:
            close = C._did_you_mean(name, names)
            raise C.ConfigError(
                f"{config.shown_path()} configures no loss named {name!r}{close} (it has: {', '.join(names) or 'none'})"
            )
    entries = [e for e in config.entries if not args.loss_name or e.name in args.loss_name]
    if not entries:
        raise C.ConfigError(f"{config.shown_path()} configures no loss: add a [[tool.lossguard.loss]] table")
    return entries


def job(config: C.GateConfig, entry: C.LossEntry, profile: str, args: argparse.Namespace) -> dict[str, Any]:
    """``entry``'s job, narrowed by the command line."""
    found = config.job(entry, profile)
    if args.dtype:
        found["dtypes"] = list(args.dtype)
    if args.device and args.device != "all":
        found["devices"] = [args.device]
    if args.property:  # the configuration's skips hold: a skipped property is reported, never run
        found["properties"] = [p for p in args.property if p not in entry.skipped]
    if args.binding_name and "inline" not in found["bindings"][0]:
        found["bindings"][0]["name"] = args.binding_name
    found["replay"] = args.replay
    if getattr(args, "max_examples", None):
        found["max_examples"] = args.max_examples
    if args.save_examples:
        if not found["examples"]:
            raise C.ConfigError(
                f'{config.shown_path()}: saving examples needs a database: set examples = ".lossguard/examples" '
                "(a directory beside the configuration, committed) in the configuration's table"
            )
        found["save_examples"] = True
    return found


def skips(
    config: C.GateConfig, entry: C.LossEntry, args: argparse.Namespace, ran: list[PropertyResult]
) -> list[PropertyResult]:
    """The entry's skipped properties as results, for what it ran (``ran``: a binding file's or library's
    implementations are known once they ran), as far as the command line selects them."""
    from lossguard.catalog import CATALOG

    implementations = None if entry.target else {r.implementation: r.loss for r in ran if r.loss in CATALOG}
    return [
        r
        for r in config.skip_results(entry, implementations or None)
        if (not args.property or r.property in args.property)
        and (not args.dtype or r.dtype in args.dtype)
        and (not args.device or args.device in ("all", r.device))
    ]


class _Ordered:
    """Forwards concurrent entries' progress to one ``progress`` in configuration order: the first unfinished
    entry's results at once, the others' when it is their turn (so the plain lines of CI logs stay one per loss)."""

    def __init__(self, count: int, progress: Progress | None):
        self.progress, self.lock = progress, threading.Lock()
        self.buffers: list[list[PropertyResult]] = [[] for _ in range(count)]
        self.totals, self.finished = [0] * count, [False] * count
        self.head, self.done = 0, 0

    def reporter(self, index: int) -> Progress:
        def report(done: int, total: int, result: PropertyResult) -> None:
            with self.lock:
                self.totals[index] = total
                self.buffers[index].append(result)
                self._flush()

        return report

    def finish(self, index: int) -> None:
        with self.lock:
            self.finished[index] = True
            self._flush()

    def _flush(self) -> None:
        while self.head < len(self.buffers):
            for result in self.buffers[self.head]:
                self.done += 1
                if self.progress:
                    self.progress(self.done, sum(self.totals), result)
            self.buffers[self.head] = []
            if not self.finished[self.head]:
                return
            self.head += 1


@contextlib.contextmanager
def _importable_from(root: Path) -> Iterator[None]:
    """Workers find a configuration's ``package.module`` targets from the configuration's folder too (as the
    configuration's validation did), whatever the working directory."""
    before = os.environ.get("PYTHONPATH")
    os.environ["PYTHONPATH"] = os.pathsep.join(p for p in (str(root), before) if p)
    try:
        yield
    finally:
        if before is None:
            os.environ.pop("PYTHONPATH", None)
        else:
            os.environ["PYTHONPATH"] = before


def run(
    config: C.GateConfig,
    entries: list[C.LossEntry],
    jobs: list[dict[str, Any]],
    args: argparse.Namespace,
    workers: int,
    progress: Progress | None = None,
) -> list[PropertyResult]:
    """Every entry's job in an isolated worker, ``workers`` at once; the results in configuration order (each
    entry's known results, its runs in plan order, then its skips, ``skips``). An entry whose target cannot be
    imported raises ``ConfigError`` naming it (the first such entry in configuration order)."""
    from lossguard.harness.app.isolation import IsolatedTargetError, run_isolated

    ordered = _Ordered(len(entries), progress)

    def one(index: int) -> list[PropertyResult]:
        try:
            if not jobs[index]["properties"]:  # every selected property skipped (an empty list would mean all)
                return []
            return run_isolated(jobs[index], config.time_limit, ordered.reporter(index))[1]
        finally:
            ordered.finish(index)

    with _importable_from(config.root), ThreadPoolExecutor(max(1, min(workers, len(entries)))) as pool:
        futures = [pool.submit(one, index) for index in range(len(entries))]
        results: list[PropertyResult] = []
        for index, future in enumerate(futures):
            try:
                ran = future.result()
                results += [*ran, *skips(config, entries[index], args, ran)]
            except IsolatedTargetError as problem:
                raise C.ConfigError(f"{config.shown_path()}: loss {entries[index].name!r}: {problem}") from problem
    return results
