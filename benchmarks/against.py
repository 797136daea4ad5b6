"""A speed bar relative to another commit: this tree against a git ref, side by side (a benchmark script).

    python -m benchmarks.against REF [--bar RATIO] [--repeat N] [--json FILE] [-- LOSSGUARD ARGS...]

Measures the wall time of ``lossguard check --impl all --profile ci --device cpu`` (or the lossguard
arguments after ``--``) for the working tree and for ``REF`` (e.g. ``main``, a commit before a change),
interleaved run by run (A B A B ...) so that other load on a shared machine affects both alike, and
compares the medians: the bar is met when ``median(this tree) <= RATIO x median(REF)``. Both trees are
installed the same way (a plain ``pip install --no-deps --target`` into a temporary folder) and run from
an empty directory with the current interpreter's dependencies, so only lossguard's code differs. A ref
from before the ``lossguard`` namespace (top-level ``harness`` package) runs as ``python -m harness.cli``.

The two runs' JSON results are diffed, timings aside: the verdicts must not change (their statuses and
example counts are reported side by side). Exit status: 0 when the bar is met and the verdicts agree.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
from collections import Counter
from collections.abc import Sequence
from pathlib import Path

from benchmarks.bars import ROOT, Run, _log, _run

DEFAULT_ARGS = ["check", "--impl", "all", "--profile", "ci", "--device", "cpu"]


def _install(tree: Path, site: Path) -> list[str]:
    """Install ``tree`` into ``site``; the command that runs its lossguard."""
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "install",
            "--quiet",
            "--no-deps",
            "--no-build-isolation",
            "--target",
            site,
            tree,
        ],
        check=True,
        capture_output=True,
    )
    module = "lossguard" if (site / "lossguard" / "__main__.py").exists() else "harness.cli"
    return [sys.executable, "-m", module]


def _statuses(path: Path) -> dict[tuple, tuple]:
    document = json.loads(path.read_text())
    results = document["results"] if isinstance(document, dict) else document
    return {
        (r["loss"], r["implementation"], r["device"], r["dtype"], r["property"]): (r["status"], r["examples"])
        for r in results
    }


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    extra = argv[argv.index("--") + 1 :] if "--" in argv else []
    parser = argparse.ArgumentParser(description="Time this tree's lossguard against a git ref, side by side.")
    parser.add_argument("ref", help="git ref to compare with (a commit, a branch)")
    parser.add_argument("--bar", type=float, default=1.1, metavar="RATIO", help="allowed time ratio (default 1.1)")
    parser.add_argument("--repeat", type=int, default=3, metavar="N", help="runs of each tree (default 3)")
    parser.add_argument("--json", metavar="FILE", help="also save the figures as JSON")
    args = parser.parse_args(argv[: argv.index("--")] if "--" in argv else argv)
    lossguard_args = extra or DEFAULT_ARGS
    with tempfile.TemporaryDirectory(prefix="lossguard-against-") as where:
        work = Path(where)
        subprocess.run(
            ["git", "worktree", "add", "--detach", work / "ref", args.ref], cwd=ROOT, check=True, capture_output=True
        )
        try:
            commands = {"this tree": _install(ROOT, work / "this"), args.ref: _install(work / "ref", work / "old")}
            sites = {"this tree": work / "this", args.ref: work / "old"}
            runs: dict[str, list[Run]] = {name: [] for name in commands}
            for index in range(1, args.repeat + 1):
                for name, command in commands.items():
                    output = work / f"{name.replace(' ', '-').replace('/', '-')}.json"
                    words = [*command, *lossguard_args, "--json", str(output)]
                    _log(f"[{name} {index}/{args.repeat}] lossguard {' '.join(lossguard_args)}")
                    empty = work / "cwd"
                    empty.mkdir(exist_ok=True)
                    runs[name].append(_run(words, empty, quiet=True, pythonpath=sites[name]))
                    _log(f"    {runs[name][-1].seconds:.1f} s: {runs[name][-1].summary}")
            verdicts = {name: _statuses(work / f"{name.replace(' ', '-').replace('/', '-')}.json") for name in commands}
        finally:
            subprocess.run(["git", "worktree", "remove", "--force", work / "ref"], cwd=ROOT, capture_output=True)
    medians = {name: statistics.median(r.seconds for r in found) for name, found in runs.items()}
    ratio = medians["this tree"] / medians[args.ref]
    mine, theirs = verdicts["this tree"], verdicts[args.ref]
    changed = sorted(k for k in set(mine) | set(theirs) if mine.get(k) != theirs.get(k))
    for name in commands:
        counts = Counter(status for status, _ in verdicts[name].values())
        every = ", ".join(f"{r.seconds:.1f} s" for r in runs[name])
        print(f"{name}: runs {every}; median {medians[name]:.1f} s; {dict(sorted(counts.items()))}")
    for key in changed[:20]:
        print(f"verdict changed: {key}: {theirs.get(key)} -> {mine.get(key)}")
    met = ratio <= args.bar
    print(
        f"ratio {ratio:.3f} against a bar of {args.bar:g}: {'met' if met else 'MISSED'}; "
        f"{len(changed)} verdict(s) changed (status or example count)"
    )
    if args.json:
        Path(args.json).write_text(
            json.dumps(
                {
                    "ref": args.ref,
                    "args": lossguard_args,
                    "medians_s": medians,
                    "ratio": ratio,
                    "bar": args.bar,
                    "changed": [list(map(str, k)) for k in changed],
                },
                indent=2,
            )
            + "\n"
        )
    return 0 if met and not changed else 1


if __name__ == "__main__":
    sys.exit(main())
