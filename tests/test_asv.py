"""The asv suite (benchmarks/bench_<family>.py) stays runnable: ``asv check`` finds no broken benchmark, a one-sample
``asv run --quick`` of a small subset records results, ``asv publish`` builds the dashboard, and headless Chromium
renders its benchmark list offline (benchmarks/offline_dashboard.py points the page at npm's copies of its CDN
scripts). These are the commands of the README's "Track speed, memory and accuracy", run on a copy of
asv.conf.json whose machine, results and dashboard live in a temporary folder.

The Chromium test needs Debian's ``chromium`` and the scripts ``offline_dashboard.py install`` fetches from npm
(.ci/run installs both); it skips, saying which is absent, without them.
"""

from __future__ import annotations

import importlib.util
import json
import math
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
ASV = [sys.executable, "-m", "asv"]
CHROMIUM = shutil.which("chromium")
MACHINE = "lossguard-test"
OFFLINE_DASHBOARD = ROOT / "benchmarks" / "offline_dashboard.py"
SUBSET = "bench_sequence.Accuracy"  # a one-sample quick run of a small subset: 20 combinations, 6 measured here


@pytest.fixture(scope="module")
def asv(tmp_path_factory):
    """Run asv with a copy of asv.conf.json whose results and dashboard are in a temporary folder, its machine
    registered there (HOME) with ``asv machine --yes --machine lossguard-test``."""
    tmp = tmp_path_factory.mktemp("asv")
    config = json.loads((ROOT / "asv.conf.json").read_text())
    config.update(
        repo=str(ROOT),
        benchmark_dir=str(ROOT / "benchmarks"),
        results_dir=str(tmp / "results"),
        html_dir=str(tmp / "html"),
        env_dir=str(tmp / "env"),
    )
    (tmp / "asv.conf.json").write_text(json.dumps(config))
    env = {**os.environ, "HOME": str(tmp)}

    def run(*args: str, timeout: float = 600) -> subprocess.CompletedProcess:
        done = subprocess.run(
            [*ASV, *args, "--config", str(tmp / "asv.conf.json")],
            cwd=tmp,
            env=env,
            capture_output=True,
            text=True,
            timeout=timeout,
        )
        assert done.returncode == 0, f"asv {' '.join(args)} exited {done.returncode}:\n{done.stdout}\n{done.stderr}"
        return done

    run("machine", "--yes", "--machine", MACHINE)
    run.tmp = tmp
    return run


def test_asv_check_finds_no_broken_benchmark(asv):
    assert "No problems found" in asv("check", "--python=same").stdout


@pytest.fixture(scope="module")
def dashboard(asv):
    """A one-sample quick run of the subset on this commit, published."""
    commit = subprocess.run(["git", "rev-parse", "HEAD"], cwd=ROOT, capture_output=True, text=True).stdout.strip()
    asv("run", "--python=same", "--quick", "--machine", MACHINE, "--set-commit-hash", commit, "--bench", SUBSET)
    asv("publish")
    return asv.tmp


def test_a_quick_run_records_the_accuracy_of_each_implementation(dashboard):
    results = [p for p in (dashboard / "results" / MACHINE).glob("*.json") if p.name != "machine.json"]
    assert len(results) == 1
    recorded = json.loads(results[0].read_text())["results"]
    (name,) = [k for k in recorded if k.startswith(SUBSET)]
    values = recorded[name][0]  # NaN where skipped (the reference, cuda here)
    measured = [v for v in values if v is not None and not math.isnan(v)]
    assert measured, "no combination measured"
    assert all(0.0 <= v < 100.0 for v in measured)  # worst ulps of correct built-ins: a few at most


def test_the_published_dashboard_lists_the_benchmarks(dashboard):
    index = json.loads((dashboard / "html" / "index.json").read_text())
    assert f"{SUBSET}.track_worst_ulps" in index["benchmarks"]
    assert MACHINE in index["params"]["machine"]


def _offline_dashboard():
    """benchmarks/offline_dashboard.py as a module (benchmarks/ is no installed package)."""
    spec = importlib.util.spec_from_file_location("offline_dashboard", OFFLINE_DASHBOARD)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclass looks its module up
    spec.loader.exec_module(module)
    return module


@pytest.mark.skipif(CHROMIUM is None, reason="chromium not installed (apt-get install -y chromium)")
def test_chromium_renders_the_dashboards_benchmark_list(dashboard, tmp_path):
    absent = _offline_dashboard().missing()
    if absent:
        pytest.skip(f"the dashboard's JavaScript is not installed (benchmarks/offline_dashboard.py install): {absent}")
    html = shutil.copytree(dashboard / "html", tmp_path / "html")
    subprocess.run([sys.executable, OFFLINE_DASHBOARD, "rewrite", html], check=True, capture_output=True, timeout=60)
    assert "https://" not in "".join(re.findall(r"<(?:script|link)\b[^>]*>", (html / "index.html").read_text()))
    assert SUBSET not in (html / "index.html").read_text()  # the names come from index.json, through the scripts

    dom = subprocess.run(
        [
            CHROMIUM,
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--allow-file-access-from-files",  # the page reads its JSON files and scripts next to it
            "--run-all-compositor-stages-before-draw",
            "--virtual-time-budget=10000",
            "--dump-dom",
            (html / "index.html").as_uri(),
        ],
        capture_output=True,
        text=True,
        timeout=120,
    ).stdout
    assert "dependencies of airspeed velocity failed to load" not in dom
    # summarygrid.js draws one cell per benchmark of index.json, the one with results among them
    benchmarks = json.loads((html / "index.json").read_text())["benchmarks"]
    absent = [name for name in benchmarks if f'id="summarygrid-{name}"' not in dom]
    assert not absent, f"the benchmark grid did not render {absent}"
