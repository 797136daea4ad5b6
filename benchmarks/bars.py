"""The speed bars, measured on this machine (a benchmark script, not a test).

    python benchmarks/bars.py [--repeat N] [--json FILE] [--quiet]

Bars (wall time of the command, interpreter start-up included, each run as a subprocess):

- check-core: ``lossguard check --impl all --profile ci --device cpu --family regression --family
  classification`` (the verification core's losses, every built-in implementation, the full default
  dtype set) in at most 120 s;
- check: the same for the whole catalog (no ``--family``) in at most 300 s, and its default report in at most
  150 lines of stdout (it fits a screen: one line per implementation, the findings, the summary);
- audit: ``lossguard audit FILE.py:huber --loss huber_loss`` of a small correct user loss at the default
  profile (``dev``: the environment variable CI is removed for the run) in at most 30 s;
- audit-libraries: ``lossguard audit --library all --profile ci --json FILE --html DIR`` (every shipped
  library's exports, on every device the machine has, and one HTML page per library) in at most 900 s; the
  report adds, per library, the losses audited, the exports not audited, the results by status and the
  findings (root causes) by severity, read from FILE, and the pages written into DIR.

- gate: the check as a CI gate runs it, ``lossguard check --impl all --profile ci --device cpu --jobs 2``, in at most
  60 s (issue 11; docs/SCALING.md has where the time goes), and gate-serial, the same with ``--jobs 1``: the two
  workers' median at most 0.6 of the serial median (the two are measured in turns, so that other load on the
  machine weighs on both alike).

``--only NAME`` (repeatable) measures only the bars named.

Each command runs N times (default 3); the median decides the verdict and every run is reported.
Each audit run starts in a fresh temporary directory, so the ``dev`` profile's example database
(``.hypothesis/`` in the working directory) never replays a previous run's examples, and with an empty JAX
compilation cache (LOSSGUARD_JAX_CACHE in that directory), so no program compiled before is loaded: every run is
a user's first audit. Progress goes to stderr (the lossguard progress lines are forwarded, indented,
unless ``--quiet``); the figures and the verdicts go to stdout. Exit status: 0 when every bar is met
and every run exited 0, 1 otherwise.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

CORE_BAR_S = 120.0
CHECK_BAR_S = 300.0
AUDIT_BAR_S = 30.0
LIBRARIES_BAR_S = 900.0
SCREEN_LINES = 150
GATE_BAR_S = 60.0
JOBS_RATIO = 0.6  # the most --jobs 2 may take of --jobs 1's time on the 2-core machine

# A small, correct user loss: what a team would point ``lossguard audit`` at.
USER_LOSS = textwrap.dedent(
    '''\
    """A user's Huber loss (the benchmark's audit target)."""

    import torch


    def huber(input, target, reduction="mean", delta=1.0):
        """0.5 e^2 where |e| <= delta, else delta (|e| - 0.5 delta); e = input - target."""
        if not isinstance(input, torch.Tensor) or not input.is_floating_point():
            raise TypeError(f"huber: input must be a floating-point tensor, got {type(input).__name__}")
        if not isinstance(target, torch.Tensor):
            raise TypeError(f"huber: target must be a tensor, got {type(target).__name__}")
        if input.shape != target.shape:
            raise ValueError(f"huber: target shape {tuple(target.shape)} differs from {tuple(input.shape)}")
        if not delta > 0:
            raise ValueError(f"huber: delta must be positive, got {delta}")
        if reduction not in ("none", "mean", "sum"):
            raise ValueError(f"huber: reduction must be 'none', 'mean' or 'sum', got {reduction!r}")
        e = input - target.to(input.dtype)
        a = e.abs()
        loss = torch.where(a <= delta, 0.5 * e * e, delta * (a - 0.5 * delta))
        if reduction == "none":
            return loss
        return loss.sum() if reduction == "sum" else loss.mean()
    '''
)


@dataclass
class Run:
    seconds: float
    exit_status: int
    summary: str
    load_before: float  # 1-minute load average before the run: other work on the machine skews the figures
    load_after: float
    lines: int  # lines the command printed on stdout (its report)


@dataclass
class Bar:
    name: str
    command: list[str]
    shown: str
    bar_s: float
    max_lines: int | None = None  # the most lines of stdout the report may take (None: no bar on its length)
    runs: list[Run] = field(default_factory=list)
    libraries: dict[str, dict[str, int]] = field(default_factory=dict)  # the last run's per-library figures
    severities: dict[str, dict[str, int]] = field(default_factory=dict)  # the last run's findings by library
    pages: list[str] = field(default_factory=list)  # the HTML pages the last run wrote

    @property
    def median_s(self) -> float:
        return statistics.median(r.seconds for r in self.runs)

    @property
    def met(self) -> bool:
        short = self.max_lines is None or all(r.lines <= self.max_lines for r in self.runs)
        return bool(self.runs) and self.median_s <= self.bar_s and short

    def verdict(self) -> str:
        if self.bar_s == float("inf"):
            return f"{self.name}: median {self.median_s:.1f} s (no bar of its own: the denominator of a ratio)"
        failed = [r.exit_status for r in self.runs if r.exit_status != 0]
        exits = f"; {len(failed)} run(s) exited non-zero ({failed[0]})" if failed else ""
        if self.median_s <= self.bar_s:
            how = f"met with {self.bar_s - self.median_s:.1f} s to spare"
        else:
            how = f"MISSED by {self.median_s - self.bar_s:.1f} s"
        if self.max_lines is not None:
            longest = max(r.lines for r in self.runs)
            met = "met" if longest <= self.max_lines else "MISSED"
            how += f"; report of {longest} lines against a bar of {self.max_lines}: {met}"
        return f"{self.name}: median {self.median_s:.1f} s against a bar of {self.bar_s:.0f} s: {how}{exits}"


def _lossguard() -> list[str]:
    """The ``lossguard`` command of this interpreter's environment (its console script, else the module)."""
    script = Path(sys.executable).with_name("lossguard")
    if script.is_file():
        return [str(script)]
    found = shutil.which("lossguard")
    return [found] if found else [sys.executable, "-m", "lossguard"]


def _environment(pythonpath: Path | None = None, jax_cache: Path | None = None) -> dict[str, str]:
    """This environment without CI (so the audit runs at the default, dev, profile); ``pythonpath`` first on
    the path when given (benchmarks/against.py measures two installed copies side by side); ``jax_cache``: the
    JAX binding's persistent compilation cache (LOSSGUARD_JAX_CACHE), an empty directory for a first audit."""
    env = {k: v for k, v in os.environ.items() if k != "CI"}
    if jax_cache is not None:
        env["LOSSGUARD_JAX_CACHE"] = str(jax_cache)
    if pythonpath is not None:
        env["PYTHONPATH"] = os.pathsep.join(p for p in (str(pythonpath), env.get("PYTHONPATH", "")) if p)
    return env


def _log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def _run(
    command: Sequence[str], cwd: Path, quiet: bool, pythonpath: Path | None = None, jax_cache: Path | None = None
) -> Run:
    """Run ``command``, forwarding its progress (stderr) live; the summary is stdout's last lossguard line."""
    load_before = _load()
    with tempfile.TemporaryFile("w+", encoding="utf-8") as out:
        started = time.perf_counter()
        process = subprocess.Popen(
            list(command),
            cwd=cwd,
            env=_environment(pythonpath, jax_cache),
            stdout=out,
            stderr=subprocess.PIPE,
            stdin=subprocess.DEVNULL,
            text=True,
            encoding="utf-8",
            errors="replace",
        )
        assert process.stderr is not None
        errors = []
        for line in process.stderr:
            errors.append(line.rstrip("\n"))
            if not quiet:
                _log(f"    {line.rstrip()}")
        status = process.wait()
        seconds = time.perf_counter() - started
        out.seek(0)
        lines = out.read().splitlines()
    summary = next((line for line in reversed(lines) if line.startswith("lossguard:")), "")
    if not summary:
        summary = next((line for line in reversed(errors) if line.strip()), "(no output)")
    return Run(round(seconds, 3), status, summary, load_before, _load(), len(lines))


def _load() -> float:
    return round(os.getloadavg()[0], 2) if hasattr(os, "getloadavg") else float("nan")


def _done(bar: Bar, index: int, repeat: int) -> None:
    run = bar.runs[-1]
    load = f"load average {run.load_before:.2f} before, {run.load_after:.2f} after"
    _log(f"[{bar.name} {index}/{repeat}] {run.seconds:.1f} s, exit {run.exit_status} ({load})")


def measure(repeat: int, quiet: bool = False, only: Sequence[str] = ()) -> list[Bar]:
    lossguard = _lossguard()
    check_args = ["check", "--impl", "all", "--profile", "ci", "--device", "cpu"]
    core_args = [*check_args, "--family", "regression", "--family", "classification"]
    audit_args = ["audit", "huber.py:huber", "--loss", "huber_loss"]
    library_args = ["audit", "--library", "all", "--profile", "ci", "--json", "libraries.json", "--html", "pages"]
    checks = [
        Bar("check-core", [*lossguard, *core_args], " ".join(["lossguard", *core_args]), CORE_BAR_S),
        Bar("check", [*lossguard, *check_args], " ".join(["lossguard", *check_args]), CHECK_BAR_S, SCREEN_LINES),
    ]
    audit = Bar("audit", [*lossguard, *audit_args], " ".join(["lossguard", *audit_args]), AUDIT_BAR_S)
    libraries = Bar(
        "audit-libraries", [*lossguard, *library_args], " ".join(["lossguard", *library_args]), LIBRARIES_BAR_S
    )
    gate_args = [*check_args, "--jobs", "2"]
    serial_args = [*check_args, "--jobs", "1"]
    gates = [
        Bar("gate", [*lossguard, *gate_args], " ".join(["lossguard", *gate_args]), GATE_BAR_S),
        Bar("gate-serial", [*lossguard, *serial_args], " ".join(["lossguard", *serial_args]), float("inf")),
    ]
    checks += gates
    wanted = [b for b in (*checks, audit, libraries) if not only or b.name in only]
    # the gate's two bars in turns (gate 1, serial 1, gate 2, ...): other load on the machine weighs on both alike
    turns = [[b for b in wanted if b in gates]] if any(b in gates for b in wanted) else []
    for group in [[b] for b in wanted if b not in gates] + turns:
        for index, bar in ((i, b) for i in range(1, repeat + 1) for b in group):
            with tempfile.TemporaryDirectory(prefix="lossguard-bars-") as where:
                # checks run in the repository; audits each in a fresh directory, so the dev profile's example
                # database never replays a previous run's examples (every run is a user's first audit)
                cwd = ROOT if bar in checks else Path(where)
                (Path(where) / "huber.py").write_text(USER_LOSS, encoding="utf-8")
                _log(f"[{bar.name} {index}/{repeat}] {' '.join(bar.command)} (in {cwd})")
                jax_cache = None if bar in checks else Path(where) / "jax-cache"  # empty: every program compiles
                bar.runs.append(_run(bar.command, cwd, quiet, jax_cache=jax_cache))
                if bar is libraries and (Path(where) / "libraries.json").is_file():
                    document = json.loads((Path(where) / "libraries.json").read_text())
                    bar.libraries = document["libraries"]
                    bar.severities = _severities(document["findings"])
                    bar.pages = sorted(p.name for p in (Path(where) / "pages").glob("*.html"))
            _done(bar, index, repeat)
    return wanted


def jobs_ratio(bars: Sequence[Bar]) -> tuple[float, bool] | None:
    """The gate's ``--jobs 2`` median over its ``--jobs 1`` median, and whether it is within ``JOBS_RATIO``; None
    unless both were measured."""
    named = {bar.name: bar for bar in bars if bar.runs}
    if "gate" not in named or "gate-serial" not in named:
        return None
    ratio = named["gate"].median_s / named["gate-serial"].median_s
    return ratio, ratio <= JOBS_RATIO


def _severities(findings: Sequence[dict]) -> dict[str, dict[str, int]]:
    """Findings (root causes of the JSON report) by library and severity; failures by definition apart."""
    table: dict[str, dict[str, int]] = {}
    for cause in findings:
        row = table.setdefault(cause["library"] or cause["kind"], {})
        key = "by definition" if cause["by_definition"] else cause["severity"] or "stale record"
        row[key] = row.get(key, 0) + 1
    return table


def _versions() -> dict[str, str]:
    found = {"python": platform.python_version()}
    for name in ("lossguard", "torch", "numpy", "scipy", "hypothesis"):
        try:
            found[name] = version(name)
        except PackageNotFoundError:
            found[name] = "not installed"
    return found


def _machine() -> dict[str, object]:
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return {"platform": platform.platform(), "processor": platform.machine(), "cores": cores}


def report(bars: Sequence[Bar]) -> str:
    lines = []
    for bar in bars:
        runs = ", ".join(
            f"{r.seconds:.1f} s" + ("" if r.exit_status == 0 else f" (exit {r.exit_status})") for r in bar.runs
        )
        lines.append(f"{bar.name}: {bar.shown}")
        lines.append(f"  runs: {runs}; median {bar.median_s:.1f} s; last summary: {bar.runs[-1].summary}")
        for library, counts in bar.libraries.items():
            figures = ", ".join(f"{v} {k}" for k, v in counts.items() if v)
            found = ", ".join(f"{v} {k}" for k, v in bar.severities.get(library, {}).items())
            lines.append(f"  {library}: {figures}; findings: {found or 'none'}")
        if bar.pages:
            lines.append(f"  HTML pages: {', '.join(bar.pages)}")
    lines.append("")
    lines.extend(bar.verdict() for bar in bars)
    ratio = jobs_ratio(bars)
    if ratio is not None:
        met = "met" if ratio[1] else "MISSED"
        lines.append(
            f"gate --jobs 2 / --jobs 1: {ratio[0]:.2f} of the serial median against a bar of {JOBS_RATIO}: {met}"
        )
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Measure lossguard's speed bars on this machine.")
    parser.add_argument("--repeat", type=int, default=3, metavar="N", help="runs of each command (default 3)")
    parser.add_argument("--json", metavar="FILE", help="also save the figures as JSON")
    parser.add_argument("--quiet", action="store_true", help="do not forward lossguard's own progress lines")
    parser.add_argument(
        "--only",
        action="append",
        choices=("check-core", "check", "gate", "gate-serial", "audit", "audit-libraries"),
        help="measure only this bar (repeatable)",
    )
    args = parser.parse_args(argv)
    if args.repeat < 1:
        parser.error("--repeat must be at least 1")
    machine = _machine()
    _log(f"bars: {args.repeat} run(s) of each command on {machine['platform']}, {machine['cores']} cores")
    bars = measure(args.repeat, args.quiet, args.only or ())
    print(report(bars))
    if args.json:
        document = {
            "schema": "lossguard-bars/1",
            "machine": machine,
            "versions": _versions(),
            "repeat": args.repeat,
            "bars": [
                {
                    **asdict(bar),
                    "bar_s": None if bar.bar_s == float("inf") else bar.bar_s,
                    "median_s": bar.median_s,
                    "met": bar.met,
                    "verdict": bar.verdict(),
                }
                for bar in bars
            ],
        }
        Path(args.json).write_text(json.dumps(document, indent=2) + "\n", encoding="utf-8")
        _log(f"bars: figures written to {args.json}")
    ratio = jobs_ratio(bars)
    ok = all(bar.met and all(r.exit_status == 0 for r in bar.runs) for bar in bars) and (ratio is None or ratio[1])
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
