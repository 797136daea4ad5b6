"""What a hanging loss costs an isolated audit (a benchmark script, not a test).

    python benchmarks/hang_cost.py [--timeout S] [-- AUDIT OPTIONS...]

Audits a user file whose loss sleeps forever, ``lossguard audit FILE.py:hangs --loss huber_loss`` plus the
options after ``--`` (none: the defaults a user gets), as a subprocess, and prints its wall time, exit status,
its cells by status and the distinct reasons of its errors. ``--timeout`` (default 600 s) ends a run that takes
longer: it is then reported as unfinished (the issue's "before": 26 cells of 120 s each, about 52 minutes at the
defaults). Progress goes to stderr; the figures to stdout.
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HANGING_LOSS = "import time\n\n\ndef hangs(input, target, reduction='mean', delta=1.0):\n    time.sleep(10**7)\n"


def measure(options: list[str], timeout: float) -> dict:
    """One audit of the hanging loss with ``options``: seconds, exit status, cells by status, error reasons."""
    with tempfile.TemporaryDirectory() as folder:
        source = Path(folder) / "hanging.py"
        source.write_text(HANGING_LOSS)
        out = Path(folder) / "results.json"
        command = [sys.executable, "-m", "lossguard", "audit", f"{source}:hangs", "--loss", "huber_loss"]
        command += ["--json", str(out), *options]
        env = {k: v for k, v in os.environ.items() if k != "CI"}  # the default profile of a user's terminal
        started = time.perf_counter()
        process = subprocess.Popen(command, cwd=folder, env=env, stdout=subprocess.DEVNULL, start_new_session=True)
        try:
            status = process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)  # lossguard and its workers (one session)
            process.wait()
            status = None
        seconds = time.perf_counter() - started
        results = json.loads(out.read_text())["results"] if out.exists() else []
    return {
        "command": " ".join(["lossguard", "audit", "hanging.py:hangs", "--loss", "huber_loss", *options]),
        "seconds": round(seconds, 1),
        "exit_status": status,
        "cells": dict(collections.Counter(r["status"] for r in results)),
        "reasons": sorted({r["message"] for r in results if r["status"] == "error"}),
    }


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    ours, options = (argv[: argv.index("--")], argv[argv.index("--") + 1 :]) if "--" in argv else (argv, [])
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--timeout", type=float, default=600.0, metavar="S")
    args = parser.parse_args(ours)
    print(f"auditing a loss that sleeps forever (options: {' '.join(options) or 'the defaults'})", file=sys.stderr)
    figures = measure(options, args.timeout)
    if figures["exit_status"] is None:
        figures["unfinished"] = f"killed after {args.timeout:g} s"
    print(json.dumps(figures, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
