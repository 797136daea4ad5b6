#!/usr/bin/env python3
"""Mutation testing of lossguard's own checks: properties, references, tolerance policy.

A mutant is one small change (cosmic-ray's operators) to one target module of ``mutation/config.toml``;
it is *killed* when the tests that cover that module fail on it, and *survives* when they pass. A
survivor is either a gap in the tests (write the test that kills it) or a mutant no test should
kill (an equivalent mutant, argued in ``mutation/reviewed.toml``).

The mutants are applied in place to a git worktree of the commit under test (``--rev``, default
HEAD), never to the checkout itself, and the worktree's code is made importable as ``lossguard`` by
a shim directory put first on ``PYTHONPATH``: ``shim/lossguard/`` holds the namespace's
``__init__.py`` and ``__main__.py`` and one symlink per ``[tool.setuptools.package-dir]`` entry of
pyproject.toml, so the tests (the worktree's own) import the mutated files. One mutant runs at a
time.

    python mutation/run.py                      # every mutant (long: see --list)
    python mutation/run.py --sample 30          # a fixed, seeded sample (config's seed)
    python mutation/run.py --list               # mutants per target
    python mutation/run.py --module 'reference/*' --json out.json

Progress goes to stderr, one summary line to stdout at the end::

    mutation: K killed, S survived (R reviewed), T timeouts of N

Before the first mutant of a target, its tests run unmutated: they must pass (else every mutant would look
killed), and their time sets the per-mutant timeout. ``--no-baseline`` skips that where the tests are known
to pass (CI, after the suite).

Exit status: 0, or 1 when a mutant survives that is not on the reviewed list, or 2 when the unmutated
tests of a target fail (its mutants would prove nothing) or a test command errs without running tests.
"""

from __future__ import annotations

import argparse
import contextlib
import difflib
import fnmatch
import hashlib
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import tomllib

ROOT = Path(__file__).resolve().parent.parent
CONFIG = ROOT / "mutation" / "config.toml"
REVIEWED = ROOT / "mutation" / "reviewed.toml"


@dataclass
class Target:
    module: str  # path in the repository, e.g. reference/regression.py
    tests: list[str]
    keyword: str | None = None


@dataclass
class Mutant:
    module: str
    operator: str
    occurrence: int  # cosmic-ray's occurrence: the n-th place this operator applies in the module
    line: int
    key: str = ""  # what the seeded sample hashes: module, operator, the line's text, the n-th place on it
    original: str = ""  # the changed source line(s), before and after
    mutated: str = ""
    outcome: str = ""  # killed, survived, timeout, error
    seconds: float = 0.0
    reviewed: str | None = None  # the reason, for a survivor on the reviewed list
    detail: str = field(default="", repr=False)

    @property
    def id(self) -> str:
        return f"{self.module}:{self.operator}:{self.occurrence}"


def load_config(path: Path) -> tuple[dict, list[Target]]:
    data = tomllib.loads(path.read_text())
    targets = [Target(t["module"], list(t["tests"]), t.get("keyword")) for t in data["target"]]
    return data["mutation"], targets


def load_reviewed(path: Path) -> tuple[dict[tuple[str, str, str], str], list[dict]]:
    """({(module, operator, mutated text): reason}, [pattern entries]).

    A ``[[survivor]]`` names one mutant; its key ignores line numbers, which drift, and whitespace. A
    ``[[pattern]]`` reviews a whole class of mutants argued once: ``module`` and ``operator`` are globs,
    ``mutated`` a regular expression searched in the mutated text (whitespace removed)."""
    if not path.exists():
        return {}, []
    data = tomllib.loads(path.read_text())
    exact = {(e["module"], e["operator"], _norm(e["mutated"])): e["reason"] for e in data.get("survivor", [])}
    return exact, data.get("pattern", [])


def review(mutant: Mutant, exact: dict[tuple[str, str, str], str], patterns: list[dict]) -> str | None:
    key = (mutant.module, mutant.operator, _norm(mutant.mutated))
    if key in exact:
        return exact[key]
    for p in patterns:
        if (
            fnmatch.fnmatch(mutant.module, p["module"])
            and fnmatch.fnmatch(mutant.operator, p["operator"])
            and re.search(p["mutated"], _norm(mutant.mutated))
        ):
            return p["reason"]
    return None


def _norm(text: str) -> str:
    """Without whitespace: cosmic-ray's rewrite spaces some tokens oddly (``-(10** 17)``, ``( 2.0 - x)``)."""
    return "".join(text.split())


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


# --- the worktree and the shim ---------------------------------------------------------------------


def _git(*args: str, cwd: Path = ROOT) -> str:
    return subprocess.run(["git", *args], cwd=cwd, check=True, capture_output=True, text=True).stdout.strip()


def build(workdir: Path, rev: str) -> tuple[Path, Path, str]:
    """A worktree of ``rev`` at workdir/wt (created or refreshed) and the shim at workdir/shim."""
    commit = _git("rev-parse", "--verify", f"{rev}^{{commit}}")
    wt, shim = workdir / "wt", workdir / "shim"
    workdir.mkdir(parents=True, exist_ok=True)
    reuse = (wt / ".git").exists()
    if reuse:  # a worktree of this very repository (a copy of another clone is laid anew)
        try:
            reuse = (
                Path(_git("rev-parse", "--show-toplevel", cwd=wt)).resolve() == wt.resolve()
                and Path(_git("rev-parse", "--path-format=absolute", "--git-common-dir", cwd=wt)).resolve()
                == Path(_git("rev-parse", "--path-format=absolute", "--git-common-dir")).resolve()
            )
        except subprocess.CalledProcessError:
            reuse = False
    if reuse:
        _git("checkout", "--quiet", "--detach", "--force", commit, cwd=wt)
        _git("clean", "-fdxq", cwd=wt)
    else:
        shutil.rmtree(wt, ignore_errors=True)
        _git("worktree", "prune")
        _git("worktree", "add", "--quiet", "--detach", "--force", str(wt), commit)
    pyproject = tomllib.loads((wt / "pyproject.toml").read_text())
    package_dir = pyproject["tool"]["setuptools"]["package-dir"]
    shutil.rmtree(shim, ignore_errors=True)
    namespace = shim / "lossguard"
    namespace.mkdir(parents=True)
    for name in ("__init__.py", "__main__.py"):
        shutil.copy(wt / package_dir["lossguard"] / name, namespace / name)
    for package, folder in package_dir.items():
        if package != "lossguard":
            sub = package.removeprefix("lossguard.")
            assert "." not in sub, f"shim maps only first-level subpackages, not {package}"
            (namespace / sub).symlink_to(wt / folder, target_is_directory=True)
    return wt, shim, commit


# --- mutants -------------------------------------------------------------------------------------


def operators(names: list[str]) -> dict:
    import cosmic_ray.plugins

    return {name: cosmic_ray.plugins.get_operator(name)() for name in names}


def enumerate_mutants(wt: Path, targets: list[Target], ops: dict) -> list[Mutant]:
    from cosmic_ray.ast import ast_nodes, get_ast_from_path

    mutants = []
    for target in targets:
        lines = (wt / target.module).read_text().splitlines()
        nodes = list(ast_nodes(get_ast_from_path(wt / target.module)))
        for name, op in ops.items():
            positions = (start for node in nodes for start, _end in op.mutation_positions(node))
            on_line: dict[int, int] = {}
            for occurrence, start in enumerate(positions):
                line = start[0]
                on_line[line] = on_line.get(line, -1) + 1
                key = f"{target.module}|{name}|{_norm(lines[line - 1])}|{on_line[line]}"
                mutants.append(Mutant(target.module, name, occurrence, line, key))
    return sorted(mutants, key=lambda m: m.id)


def seeded_sample(mutants: list[Mutant], n: int, seed: int) -> list[Mutant]:
    """The ``n`` mutants whose keys hash lowest under ``seed``: the same ones on every run of a commit, and
    mostly the same across commits, since a mutant's key (module, operator, its line's text, its place on
    the line) does not move when other lines change, where an index into the list of all mutants would."""

    def rank(mutant: Mutant) -> str:
        return hashlib.sha256(f"{seed}|{mutant.key}".encode()).hexdigest()

    return sorted(sorted(mutants, key=rank)[:n], key=lambda m: m.id)


def changed_lines(original: str, mutated: str) -> tuple[str, str]:
    before, after = [], []
    matcher = difflib.SequenceMatcher(a=original.splitlines(), b=mutated.splitlines(), autojunk=False)
    for tag, i1, i2, j1, j2 in matcher.get_opcodes():
        if tag != "equal":
            before += original.splitlines()[i1:i2]
            after += mutated.splitlines()[j1:j2]
    return " / ".join(s.strip() for s in before), " / ".join(s.strip() for s in after)


# --- running -------------------------------------------------------------------------------------


def command(target: Target, wt: Path, pytest_args: list[str]) -> list[str]:
    present = [t for t in target.tests if (wt / t).exists()]
    cmd = [sys.executable, "-m", "pytest", *present, *pytest_args]
    if target.keyword:
        cmd += ["-k", " ".join(target.keyword.split())]
    return cmd


def run_tests(cmd: list[str], wt: Path, shim: Path, timeout: float) -> tuple[str, float, str]:
    """(killed | survived | timeout | error, seconds, output tail) of one run of the test command."""
    env = dict(os.environ, PYTHONDONTWRITEBYTECODE="1")
    env["PYTHONPATH"] = os.pathsep.join([str(shim), *filter(None, [os.environ.get("PYTHONPATH")])])
    start = time.monotonic()
    proc = subprocess.Popen(
        cmd, cwd=wt, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True
    )
    try:
        out, _ = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        out, _ = proc.communicate()
        return "timeout", time.monotonic() - start, out[-2000:]
    except BaseException:  # interrupted: take the test run down too (it runs in its own session)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        raise
    seconds = time.monotonic() - start
    # pytest: 0 all passed, 1 tests failed, 2 interrupted (an import error of the mutant, -x), 5 no tests
    outcome = {0: "survived", 5: "error", 4: "error"}.get(proc.returncode, "killed")
    return outcome, seconds, out[-2000:]


def _interrupt(signum, frame):
    raise KeyboardInterrupt


def _run_all(mutants, by_module, wt, shim, settings, args, ops, reviewed, patterns, matched, baselines) -> int:
    """Run every mutant in turn, filling in its outcome; the exit status so far."""
    from cosmic_ray.mutating import use_mutation

    status = 0
    for i, mutant in enumerate(mutants, 1):
        target = by_module[mutant.module]
        cmd = command(target, wt, settings["pytest_args"])
        if args.no_baseline:
            baselines.setdefault(mutant.module, 0.0)
        if mutant.module not in baselines:
            outcome, seconds, out = run_tests(cmd, wt, shim, timeout=3600)
            if outcome != "survived":
                log(f"mutation: the unmutated tests of {mutant.module} do not pass ({outcome}):\n{out}")
                return 2
            baselines[mutant.module] = seconds
            log(f"mutation: {mutant.module}: unmutated tests pass in {seconds:.1f}s")
        timeout = settings["timeout_factor"] * baselines[mutant.module] + settings["timeout_slack"]
        if args.no_baseline:
            timeout = settings["timeout_without_baseline"]
        with use_mutation(wt / mutant.module, ops[mutant.operator], mutant.occurrence) as (original, mutated):
            if mutated is None:
                mutant.outcome, mutant.detail = "error", "cosmic-ray applied no mutation"
            else:
                mutant.original, mutant.mutated = changed_lines(original, mutated)
                mutant.outcome, mutant.seconds, mutant.detail = run_tests(cmd, wt, shim, timeout)
        if mutant.outcome == "survived":
            key = (mutant.module, mutant.operator, _norm(mutant.mutated))
            mutant.reviewed = review(mutant, reviewed, patterns)
            matched.add(key)
            if mutant.reviewed is None:
                status = 1
        if mutant.outcome == "error":
            status = max(status, 2)
        note = f"  {mutant.original!r} -> {mutant.mutated!r}" if mutant.outcome != "killed" else ""
        label = mutant.outcome + (" (reviewed)" if mutant.reviewed else "")
        log(f"[{i}/{len(mutants)}] {mutant.id} line {mutant.line}: {label} {mutant.seconds:.1f}s{note}")
    return status


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--config", type=Path, default=CONFIG)
    parser.add_argument("--reviewed", type=Path, default=REVIEWED)
    parser.add_argument("--rev", default="HEAD", help="commit to mutate (default HEAD of the checkout)")
    parser.add_argument(
        "--workdir",
        type=Path,
        default=Path(tempfile.gettempdir()) / f"lossguard-mutation-{hashlib.sha1(bytes(ROOT)).hexdigest()[:8]}",
        help="where the worktree and the shim go (default: $TMPDIR/lossguard-mutation-<hash of this checkout's path>)",
    )
    parser.add_argument("--sample", type=int, nargs="?", const=-1, help="run a seeded sample of N mutants")
    parser.add_argument("--seed", type=int, help="seed of the sample (default: the config's)")
    parser.add_argument("--module", action="append", help="only targets matching this glob (repeatable)")
    parser.add_argument("--only", action="append", help="only this mutant id (repeatable)")
    parser.add_argument("--list", action="store_true", help="count the mutants per target and exit")
    parser.add_argument("--json", type=Path, help="write every mutant's result here")
    parser.add_argument(
        "--no-baseline",
        action="store_true",
        help="skip the unmutated run of each target's tests (only where they are known to pass, as in CI after "
        "pytest); every mutant then gets the config's timeout_without_baseline",
    )
    args = parser.parse_args(argv)

    settings, targets = load_config(args.config)
    if args.module:
        targets = [t for t in targets if any(fnmatch.fnmatch(t.module, g) for g in args.module)]
    by_module = {t.module: t for t in targets}
    wt, shim, commit = build(args.workdir, args.rev)
    ops = operators(settings["operators"])
    mutants = enumerate_mutants(wt, targets, ops)
    if args.list:
        for target in targets:
            print(f"{sum(m.module == target.module for m in mutants):6d}  {target.module}")
        print(f"{len(mutants):6d}  total at {commit[:12]}")
        return 0
    if args.only:
        wanted = set(args.only)
        mutants = [m for m in mutants if m.id in wanted]
    elif args.sample is not None:
        n = settings["sample"] if args.sample < 0 else args.sample
        seed = settings["seed"] if args.seed is None else args.seed
        mutants = seeded_sample(mutants, n, seed)
        log(f"mutation: seeded sample of {len(mutants)} (seed {seed}) at {commit[:12]}")
    else:
        log(f"mutation: all {len(mutants)} mutants at {commit[:12]}")

    reviewed, patterns = load_reviewed(args.reviewed)
    matched: set[tuple[str, str, str]] = set()
    baselines: dict[str, float] = {}
    signal.signal(signal.SIGTERM, _interrupt)
    try:
        status = _run_all(mutants, by_module, wt, shim, settings, args, ops, reviewed, patterns, matched, baselines)
    except KeyboardInterrupt:  # the mutated file is restored by use_mutation; report what ran
        log("mutation: interrupted")
        status = 130
    planned, mutants = len(mutants), [m for m in mutants if m.outcome]
    if len(mutants) < planned:
        log(f"mutation: {len(mutants)} of {planned} mutants ran")
    if not mutants and status:
        return status

    count = {k: sum(m.outcome == k for m in mutants) for k in ("killed", "survived", "timeout", "error")}
    n_reviewed = sum(m.reviewed is not None for m in mutants)
    if args.sample is None and not args.only and not args.module and len(mutants) == planned:
        for stale in sorted(set(reviewed) - matched):
            log(f"mutation: reviewed entry matches no surviving mutant (stale?): {stale}")
    if args.json:
        report = {
            "commit": commit,
            "mode": "only" if args.only else "sample" if args.sample is not None else "full",
            "counts": count | {"reviewed": n_reviewed, "total": len(mutants)},
            "baseline_seconds": baselines,
            "mutants": [asdict(m) | {"id": m.id} for m in mutants],
        }
        args.json.write_text(json.dumps(report, indent=1) + "\n")
    errors = f", {count['error']} errors" if count["error"] else ""
    print(
        f"mutation: {count['killed']} killed, {count['survived']} survived ({n_reviewed} reviewed), "
        f"{count['timeout']} timeouts of {len(mutants)}{errors}"
    )
    return status


if __name__ == "__main__":
    sys.exit(main())
