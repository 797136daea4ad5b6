"""The README's commands work as the README says: each `$ lossguard ...` line of its console blocks
runs with the exit status it documents (`# exit N`, else 0). The full `check --impl builtin` among them is
the suite's proof that every built-in and own loss passes on CPU (findings as xfail), with exactly the
counts of the summary line the README documents for it (``documented_summary``)."""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text()
SCREEN = 150  # lines: the default report of a whole run stays one screen (issue 10; --verbose has the full table)


def console_commands() -> list[tuple[str, int]]:
    commands = []
    for block in re.findall(r"```console\n(.*?)```", README, flags=re.S):
        for line in block.splitlines():
            if line.startswith("$ lossguard "):
                command, _, comment = line[2:].partition("#")
                status = re.search(r"exit (\d)", comment)
                commands.append((command.strip(), int(status.group(1)) if status else 0))
    return commands


def documented_summary() -> dict[str, int]:
    """The counts of the one summary line of the README's text blocks (``lossguard: OK N results: ...``)."""
    lines = re.findall(r"^lossguard: \w+ (\d+) results: (.*) in [\d.]+ s$", README, flags=re.M)
    assert len(lines) == 1, "the README documents one summary line of the full check"
    total, parts = lines[0]
    counts = {status: int(n) for n, status in re.findall(r"(\d+) (\w+)", parts)}
    assert sum(counts.values()) == int(total), f"the documented counts add up to {total}"
    return counts


def test_the_readme_has_its_two_quick_start_commands():
    blocks = re.findall(r"```sh\n(.*?)```", README, flags=re.S)
    assert any("lossguard check --impl all" in b and "pip install -c constraints.txt" in b for b in blocks)
    assert any(".venv/bin/pytest" in b and "pip install -c constraints.txt" in b for b in blocks)
    ci = (ROOT / ".ci" / "run").read_text()
    assert "pip install -c constraints.txt -e '.[test,audit]'" in ci and "pytest" in ci


@pytest.mark.parametrize(("command", "status"), console_commands(), ids=[c for c, _ in console_commands()])
def test_readme_command(command, status):
    words = shlex.split(command)
    done = subprocess.run(
        [sys.executable, "-m", "lossguard", *words[1:]],
        cwd=ROOT,
        capture_output=True,
        text=True,
        env={**os.environ, "CI": "true"},
        timeout=900,
    )
    assert done.returncode == status, done.stdout[-4000:] + done.stderr[-2000:]
    last = done.stdout.strip().splitlines()[-1]
    assert last.startswith("lossguard:"), "every command ends with a one-line summary"
    if "--out" in words:
        image = ROOT / words[words.index("--out") + 1]
        assert image.stat().st_size > 10_000, "the plot was written"
        image.unlink()
    if "--html" in words:
        pages = ROOT / words[words.index("--html") + 1]
        written = sorted(pages.glob("*.html"))
        shutil.rmtree(pages)
        assert written, "the HTML pages were written"
    if "--json" in words:
        report = ROOT / words[words.index("--json") + 1]
        doc = json.loads(report.read_text())
        report.unlink()
        assert doc["schema"] == "lossguard-results/1"
        if "--impl" in words and words[words.index("--impl") + 1] == "builtin" and "--loss" not in words:
            assert {r["status"] for r in doc["results"]} <= {"pass", "xfail", "skip"}
            assert len(done.stdout.splitlines()) <= SCREEN, "the default report of the whole catalog fits a screen"
            expected = documented_summary()
            counted = Counter(r["status"] for r in doc["results"])
            no_cuda = [r for r in doc["results"] if r["device"] == "cuda" and r["status"] == "skip"]
            if len(no_cuda) != len({r["implementation"] for r in doc["results"]}):  # CUDA present: the CPU cells
                counted = Counter(r["status"] for r in doc["results"] if r["device"] == "cpu")
                expected["skip"] -= len({r["implementation"] for r in doc["results"]})
            assert {k: counted.get(k, 0) for k in expected} == expected, "update the README's summary line"
            reasons = {r["message"] for r in doc["results"] if r["status"] == "skip"}
            assert all("not supported by the implementation" in m or "CUDA" in m for m in reasons), reasons
