"""``lossguard bench`` and the pytest-benchmark suite work as the README's "Compare implementations" says: the bench
command writes a Markdown and an HTML page with a row per implementation and the time plot embedded; the pull-request
gate (a baseline saved, then compared with ``--benchmark-compare-fail=median:25%``) fails on a planted slow
implementation, naming it; the benchmark files are outside the default test run; a call beyond ``--memory-limit`` is
listed as not measured while the run goes on."""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import tomllib
import torch

from lossguard.harness.app.cli import main

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text()
SECTION = README.split("### Compare implementations", 1)[1].split("\n## ", 1)[0]
TINY = ["--bench-loss", "huber_loss", "--bench-impl", "torch", "--bench-size", "small"]
FAST = ["--benchmark-min-rounds=5", "--benchmark-max-time=0.05", "-p", "no:cacheprovider", "-q"]

# a planted slow implementation: torch's huber_loss with a 20 ms pause (its small problem takes well under 1 ms,
# so even a loaded machine's baseline median stays far below)
PLANT = """
import functools, time
from lossguard.implementations import torch_builtins

fast = torch_builtins.BUILTINS["huber_loss"]

@functools.wraps(fast)
def slow(*args, **kwargs):
    time.sleep(0.02)
    return fast(*args, **kwargs)

torch_builtins.BUILTINS["huber_loss"] = slow
"""


def _documented(start: str) -> list[list[str]]:
    """The README section's shell command lines that start with ``start``, as words (comments removed)."""
    blocks = re.findall(r"```sh\n(.*?)```", SECTION, flags=re.S)
    lines = [line.partition("#")[0].strip() for block in blocks for line in block.splitlines()]
    return [shlex.split(line) for line in lines if line.startswith(start)]


def test_the_benchmark_files_are_not_in_the_default_test_run():
    options = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["pytest"]["ini_options"]
    assert options["testpaths"] == ["tests"]
    assert "python_files" not in options  # pytest's default test_*.py / *_test.py: bench_*.py is not collected
    assert not list((ROOT / "tests").glob("bench_*.py"))
    assert list((ROOT / "benchmarks" / "pytest").glob("bench_*.py"))


def test_the_pull_request_gate_flags_a_planted_slow_implementation(tmp_path):
    (save,) = [c for c in _documented("pytest benchmarks/pytest") if "--benchmark-save=base" in c]
    (compare,) = [c for c in _documented("pytest benchmarks/pytest") if "--benchmark-compare-fail=median:25%" in c]
    (tmp_path / "planted_slow.py").write_text(PLANT)
    storage = f"--benchmark-storage=file://{tmp_path / 'storage'}"
    env = {**os.environ, "CI": "true", "PYTHONPATH": str(tmp_path)}

    def pytest(words: list[str], *extra: str) -> subprocess.CompletedProcess:
        command = [sys.executable, "-m", *words, *TINY, *FAST, storage, *extra]
        return subprocess.run(command, cwd=ROOT, capture_output=True, text=True, env=env, timeout=600)

    baseline = pytest(save)
    assert baseline.returncode == 0, baseline.stdout[-3000:] + baseline.stderr[-2000:]
    assert list((tmp_path / "storage").rglob("0001_base.json")), "the baseline was saved as 0001"
    compared = pytest(compare, "-p", "planted_slow")
    output = compared.stdout + compared.stderr
    assert compared.returncode != 0, output[-3000:]
    assert "Performance has regressed" in output, output[-3000:]
    assert re.search(r"huber_loss-torch\.nn\.functional\.huber_loss\].*Field 'median' has failed", output), output[
        -3000:
    ]


def test_the_readme_bench_command_writes_both_pages(tmp_path):
    (words,) = [c for c in _documented("lossguard bench") if "--size" in c and "small" in c]
    done = subprocess.run(
        [sys.executable, "-m", "lossguard", *words[1:]],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        env={**os.environ, "CI": "true"},
        timeout=600,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    summary = done.stdout.strip().splitlines()[-1]
    assert summary.startswith("lossguard: bench measured "), summary
    out = tmp_path / words[words.index("--out") + 1]
    markdown, page = (out / "bench.md").read_text(), (out / "bench.html").read_text()
    loss = words[words.index("--loss") + 1]
    measured = re.findall(r"^\| ` ([\w.]+) ` \| ` (\w[\w-]*) ` \| ` cpu float32 ` \| ` small \(", markdown, flags=re.M)
    assert f"torch.nn.functional.{loss}" in {name for name, _ in measured}, markdown
    assert {kind for _, kind in measured} <= {"torch", "own", "third-party"}
    assert f"## ` {loss} `" in markdown and "memory bandwidth of cpu" in markdown
    # the HTML page: the same rows, and the time plot embedded (no file beside it, nothing loaded)
    assert page.count('<tr class="impl">') == len(measured)
    assert page.count('<img src="data:image/png;base64,') == 1
    assert sorted(p.name for p in out.iterdir()) == ["bench.html", "bench.md"]


# a loss that asks for 4 GiB it never touches: measured without a cap, not measured under a 1 GiB one
HOG = """
import torch, torch.nn.functional as F
from lossguard.harness.app import bench
from lossguard.harness.app.inventory import bind

def hog(input, target, reduction="mean", delta=1.0):
    torch.empty(1 << 32, dtype=torch.uint8)
    return F.huber_loss(input, target, reduction=reduction, delta=delta)

def row():
    return bench.measure_row("huber_loss", bind("huber_loss", hog, "hog", "user"), "cpu", "float32", ["small"], 9, 1e9)

print("uncapped:", len(row().points), "points", flush=True)
print(bench.cap_memory(1.0, ["cpu"]), flush=True)
capped = row()
print("capped:", len(capped.points), "points;", capped.error, flush=True)
"""


def test_a_call_beyond_the_memory_limit_is_not_measured_and_the_run_goes_on():
    done = subprocess.run([sys.executable, "-c", HOG], capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-3000:]
    assert "uncapped: 1 points" in done.stdout
    assert re.search(r"capped at [\d.]+ GiB: 1 GiB beyond", done.stdout), done.stdout
    assert re.search(r"capped: 0 points; small: RuntimeError: .*can't allocate memory", done.stdout), done.stdout


def test_bad_bench_options_exit_2_with_one_line(tmp_path, capsys):
    wrong = [["--loss", "no_such_loss"], ["--family", "no_such_family"], ["--size", "huge"], ["--memory-limit", "0"]]
    if not torch.cuda.is_available():
        wrong.append(["--device", "cuda"])
    for words in wrong:
        assert main(["bench", *words, "--out", str(tmp_path)]) == 2
        error = capsys.readouterr().err.strip()
        assert error.startswith("lossguard: error: ") and "\n" not in error, error
    assert not list(tmp_path.iterdir())
