"""The pytest plugin's bar, measured on this machine (a benchmark script, not a test).

    python benchmarks/gate_plugin.py [--repeat N] [--jobs N]

Bar: ``pytest --lossguard -n N`` takes at most 1.2x the wall time of ``lossguard check --config FILE --jobs N``
(default N = 2) on the same configuration: a throwaway project of several correct user losses (regression and
classification entries, float64 and float32, CPU, the ci profile). Both run as subprocesses from the project's
folder, alternately, ``--repeat`` times (default 3); the medians decide, and every run is reported. Both must give
as many JUnit testcases, or the figures compare different work (tests/test_pytest_plugin.py checks that the
verdicts are the same). Progress goes to
stderr, the figures and the verdict to stdout; exit status 0 when the bar is met, 1 otherwise.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
import xml.etree.ElementTree as ET
from pathlib import Path

BAR = 1.2

LOSSES = textwrap.dedent(
    '''\
    """A team's losses (the benchmark's configuration)."""

    import torch
    import torch.nn.functional as F


    def huber(input, target, reduction="mean", delta=1.0):
        return F.huber_loss(input, target, reduction=reduction, delta=delta)


    def smooth_l1(input, target, reduction="mean", beta=1.0):
        return F.smooth_l1_loss(input, target, reduction=reduction, beta=beta)


    def l1(input, target, reduction="mean"):
        return (input - target).abs().mean() if reduction == "mean" else F.l1_loss(input, target, reduction=reduction)


    def mse(input, target, reduction="mean"):
        return F.mse_loss(input, target, reduction=reduction)


    def bce(input, target, weight=None, pos_weight=None, reduction="mean"):
        return F.binary_cross_entropy_with_logits(input, target, weight, reduction=reduction, pos_weight=pos_weight)


    def multilabel_soft_margin(input, target, weight=None, reduction="mean"):
        return F.multilabel_soft_margin_loss(input, target, weight=weight, reduction=reduction)
    '''
)

CONFIG = textwrap.dedent(
    """\
    [tool.lossguard]
    profile = "ci"
    dtypes = ["float64", "float32"]
    devices = ["cpu"]
    fail-on = "crash"

    [[tool.lossguard.loss]]
    target = "losses.py:huber"
    loss = "huber_loss"

    [[tool.lossguard.loss]]
    target = "losses.py:smooth_l1"
    loss = "smooth_l1_loss"

    [[tool.lossguard.loss]]
    target = "losses.py:l1"
    loss = "l1_loss"

    [[tool.lossguard.loss]]
    target = "losses.py:mse"
    loss = "mse_loss"

    [[tool.lossguard.loss]]
    target = "losses.py:bce"
    loss = "binary_cross_entropy_with_logits"

    [[tool.lossguard.loss]]
    target = "losses.py:multilabel_soft_margin"
    loss = "multilabel_soft_margin_loss"
    """
)


def testcases(junit: Path) -> int:
    """The number of the configuration's testcases in a JUnit file (pytest's or lossguard's)."""
    return sum(case.get("classname") == "pyproject.toml" for case in ET.parse(junit).iter("testcase"))


def timed(words: list[str], folder: Path) -> float:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTEST_ADDOPTS", "CI")}
    started = time.perf_counter()
    done = subprocess.run(words, cwd=folder, env=env, capture_output=True, text=True, check=False)
    seconds = time.perf_counter() - started
    if done.returncode not in (0, 1):
        sys.exit(f"{' '.join(words)} exited {done.returncode}:\n{done.stdout[-2000:]}{done.stderr[-2000:]}")
    return seconds


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--jobs", type=int, default=2)
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="lossguard-gate-") as tmp:
        folder = Path(tmp)
        (folder / "losses.py").write_text(LOSSES)
        (folder / "pyproject.toml").write_text(CONFIG)
        n = str(args.jobs)
        commands = {
            "check": [sys.executable, "-m", "lossguard", "check", "--config", "pyproject.toml", "--jobs", n],
            "plugin": [sys.executable, "-m", "pytest", "--lossguard", "-n", n, "-p", "no:cacheprovider", "-q"],
        }
        junit = {"check": ["--junit", "check.xml"], "plugin": ["--junitxml=plugin.xml"]}
        times: dict[str, list[float]] = {name: [] for name in commands}
        for index in range(args.repeat):
            for name, words in commands.items():
                times[name].append(timed([*words, *junit[name]], folder))
                print(f"run {index + 1}/{args.repeat}: {name} {times[name][-1]:.1f} s", file=sys.stderr)
        items = testcases(folder / "plugin.xml")
        same = items == testcases(folder / "check.xml")
    medians = {name: statistics.median(values) for name, values in times.items()}
    ratio = medians["plugin"] / medians["check"]
    for name, words in commands.items():
        runs = ", ".join(f"{t:.1f}" for t in times[name])
        print(f"{name}: median {medians[name]:.1f} s (runs: {runs}) -- {' '.join(words[1:])}")
    print(f"{items} items; the same testcases as check's: {same}")
    met = ratio <= BAR and same
    print(f"plugin / check = {ratio:.2f} (bar {BAR}): {'met' if met else 'NOT met'}")
    return 0 if met else 1


if __name__ == "__main__":
    sys.exit(main())
