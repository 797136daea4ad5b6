"""lossguard as a CI gate (README, "Use lossguard as a CI gate"): a throwaway project with a configuration, one
correct and one buggy loss, run through the commands of the documented CI files (examples/ci/).

The buggy loss departs only where |input - target| lies in (2, 3): the ci profile's 12 derandomized examples miss
it, the nightly explore (thousands of random examples) finds it and saves it, and from then on every ci run
replays the saved example first and fails, on a fresh clone too, with the same JSON results every time. Each
configuration error is one test: exit 2 and a message naming the file, the key and what to write instead.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
import yaml
from hypothesis.database import MultiplexedDatabase, ReadOnlyDatabase

from lossguard.harness.app import cli, gate
from lossguard.harness.app import config as C
from lossguard.harness.kernel.profiles import settings_for

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ROOT / "examples" / "ci"

LOSSES = """
import torch


def huber(input, target, delta=1.0, reduction="mean"):
    return torch.nn.functional.huber_loss(input, target, delta=delta, reduction=reduction)


def mse(input, target, reduction="mean"):
    error = input - target
    squared = error * error
    squared = torch.where((error.abs() > 2.0) & (error.abs() < 3.0), squared * 1.01, squared)  # the bug
    if reduction == "none":
        return squared
    return squared.sum() if reduction == "sum" else squared.mean()
"""

CONFIG = """
[tool.lossguard]
profile = "ci"
dtypes = ["float64"]
devices = ["cpu"]
examples = ".lossguard/examples"

[[tool.lossguard.loss]]
target = "src/team_losses.py:huber"
loss = "huber_loss"
properties = ["agreement", "stability"]
skip = [{ property = "stability", reason = "inputs are clamped upstream; tracked in #12" }]

[[tool.lossguard.loss]]
name = "buggy"
target = "src/team_losses.py:mse"
loss = "mse_loss"
properties = ["agreement"]
"""


def documented(name: str) -> list[str]:
    """The lossguard command of an examples/ci file (a workflow step's ``run``, a pre-commit hook's ``entry``)."""
    document = yaml.safe_load((EXAMPLES / name).read_text())
    if "repos" in document:
        lines = [hook["entry"] for repo in document["repos"] for hook in repo["hooks"]]
    else:
        lines = [step.get("run", "") for job in document["jobs"].values() for step in job["steps"]]
    (line,) = [line for line in lines if line.startswith("lossguard ")]
    return shlex.split(line)


def lossguard(cwd: Path, words: list[str], summary: Path | None = None) -> subprocess.CompletedProcess:
    """Run ``words`` (a lossguard command line) in ``cwd`` as the CI job would ($GITHUB_STEP_SUMMARY set)."""
    env = {**os.environ, "CI": "true", "GITHUB_STEP_SUMMARY": str(summary or cwd / "summary.md")}
    words = [env["GITHUB_STEP_SUMMARY"] if w == "$GITHUB_STEP_SUMMARY" else w for w in words]
    return subprocess.run(
        [sys.executable, "-m", "lossguard", *words[1:]], cwd=cwd, capture_output=True, text=True, env=env, timeout=600
    )


def results(path: Path) -> list[dict]:
    """A JSON report's results, timings aside."""
    return [{k: v for k, v in r.items() if k != "duration_s"} for r in json.loads(path.read_text())["results"]]


def junit_cases(path: Path) -> dict[str, ET.Element]:
    return {case.get("name"): case for case in ET.parse(path).getroot().iter("testcase")}


@pytest.fixture(scope="module")
def project(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("team")
    (root / "src").mkdir()
    (root / "src" / "team_losses.py").write_text(LOSSES)
    (root / "pyproject.toml").write_text(CONFIG)
    return root


@pytest.fixture(scope="module")
def gate_before(project) -> subprocess.CompletedProcess:
    """The documented GitHub Actions gate before any exploration."""
    return lossguard(project, documented("lossguard.yml"))


@pytest.fixture(scope="module")
def explored(project, gate_before) -> subprocess.CompletedProcess:
    """The documented nightly explore, after the first gate run (of the buggy loss: the budget a correct loss would
    spend in full is the nightly job's, not the test suite's)."""
    explore = [*documented("lossguard-explore.yml"), "--loss-name", "buggy"]  # the correct one would use it all
    return lossguard(project, explore, project / "explore-summary.md")


@pytest.fixture(scope="module")
def clone(project, explored, tmp_path_factory) -> Path:
    """A fresh clone: the project's committed files, the example database included, no local Hypothesis data."""
    copy = tmp_path_factory.mktemp("clone") / "team"
    shutil.copytree(project, copy, ignore=shutil.ignore_patterns(".hypothesis", "*.xml", "*.md", "__pycache__"))
    return copy


@pytest.fixture(scope="module")
def gate_after(clone) -> subprocess.CompletedProcess:
    return lossguard(clone, [*documented("lossguard.yml"), "--json", "first.json"])


def test_the_gate_passes_a_correct_loss_and_reports_skips_with_their_reason(project, gate_before):
    assert gate_before.returncode == 0, gate_before.stdout[-3000:] + gate_before.stderr[-2000:]
    cases = junit_cases(project / "lossguard.xml")
    assert set(cases) == {
        "huber[agreement-float64-cpu]",
        "huber[stability-float64-cpu]",
        "buggy[agreement-float64-cpu]",
    }
    assert {case.get("classname") for case in cases.values()} == {"pyproject.toml"}
    (skipped,) = cases["huber[stability-float64-cpu]"]
    assert skipped.tag == "skipped" and "inputs are clamped upstream; tracked in #12" in skipped.get("message")
    assert not list(cases["buggy[agreement-float64-cpu]"]), "the ci profile's own examples miss the narrow bug"
    assert (project / "summary.md").read_text().startswith("## lossguard: OK")


def test_explore_finds_the_bug_and_saves_it(project, explored):
    assert explored.returncode == 1, explored.stdout[-3000:] + explored.stderr[-2000:]
    assert "FINDING 1 [wrong]: buggy (mse_loss)" in explored.stdout
    assert any((project / ".lossguard" / "examples").rglob("*")), "explore wrote the example database"
    assert "## lossguard: FAILED" in (project / "explore-summary.md").read_text()


def test_a_saved_counterexample_fails_every_later_ci_run_on_a_fresh_clone(clone, gate_after):
    assert gate_after.returncode == 1, gate_after.stdout[-3000:] + gate_after.stderr[-2000:]
    cases = junit_cases(clone / "lossguard.xml")
    (failure,) = cases["buggy[agreement-float64-cpu]"]
    assert failure.tag == "failure"
    assert "minimal counterexample: input=" in failure.text and "reproduce: lossguard check --config" in failure.text
    assert not list(cases["huber[agreement-float64-cpu]"])
    summary = (clone / "summary.md").read_text()
    assert summary.startswith("## lossguard: FAILED") and "` buggy `" in summary
    assert "minimal counterexample" in summary and "reproduce: ` lossguard check --config pyproject.toml" in summary


def test_the_same_commit_gives_the_same_results(clone, gate_after):
    """The pre-commit hook's command (serially, --jobs 1) on the same clone: the same JSON results as the gate's."""
    again = lossguard(clone, [*documented("pre-commit-config.yaml"), "--jobs", "1", "--json", "second.json"])
    assert again.returncode == gate_after.returncode == 1
    assert results(clone / "second.json") == results(clone / "first.json")


def test_the_reproduce_command_needs_no_example_database(clone, gate_after, tmp_path):
    (failed,) = [r for r in results(clone / "first.json") if r["status"] == "fail"]
    bare = tmp_path / "team"
    shutil.copytree(clone, bare, ignore=shutil.ignore_patterns(".lossguard", ".hypothesis"))
    command = shlex.split(failed["reproduce"])
    assert command[:4] == ["lossguard", "check", "--config", "pyproject.toml"] and "--replay" in command
    done = lossguard(bare, command)
    assert done.returncode == 1, done.stdout[-3000:] + done.stderr[-2000:]
    assert failed["counterexample"] in done.stdout


def test_the_readme_shows_the_documented_files():
    readme = (ROOT / "README.md").read_text()
    for path in sorted(EXAMPLES.iterdir()):
        assert path.read_text().strip() in readme, f"README, 'Use lossguard as a CI gate', shows {path.name} as is"


# --- configuration errors: exit 2, the file, the key path and what to write instead --------------------------------


def configured(tmp_path: Path, entry: str, table: str = "") -> list[str]:
    (tmp_path / "src").mkdir(exist_ok=True)
    (tmp_path / "src" / "team_losses.py").write_text(LOSSES)
    (tmp_path / "pyproject.toml").write_text(f"[tool.lossguard]\n{table}\n[[tool.lossguard.loss]]\n{entry}\n")
    return ["check", "--config", str(tmp_path / "pyproject.toml")]


@pytest.mark.parametrize(
    ("entry", "table", "message"),
    [
        (
            'targte = "src/team_losses.py:huber"',
            "",
            r"tool\.lossguard\.loss\[0\]\.targte: unknown key 'targte'; did you mean 'target'\?",
        ),
        (
            'target = "src/team_losses.py:huber"\nloss = "hubber_loss"',
            "",
            r"tool\.lossguard\.loss\[0\]\.loss: unknown loss 'hubber_loss'; did you mean 'huber_loss'\?",
        ),
        (
            'target = "src/team_loses.py:huber"',
            "",
            r"tool\.lossguard\.loss\[0\]: target file 'src/team_loses\.py' does not exist",
        ),
        (
            'target = "src/team_losses.py:hubr"',
            "",
            r"tool\.lossguard\.loss\[0\]: target 'src/team_losses\.py:hubr': team_losses\.py defines no 'hubr'; "
            r"did you mean 'huber'\?",
        ),
        ('target = "team_pkg.losses:huber"', "", r"tool\.lossguard\.loss\[0\]: cannot find module 'team_pkg'"),
        (
            'target = "src/team_losses.py:huber"\nskip = [{ property = "finite" }]',
            "",
            r"tool\.lossguard\.loss\[0\]\.skip\[0\]\.reason: missing; write reason = ",
        ),
        (
            'target = "src/team_losses.py:huber"\nskip = [{ property = "finite", reason = " " }]',
            "",
            r"tool\.lossguard\.loss\[0\]\.skip\[0\]\.reason: a skip needs a written reason",
        ),
        (
            'target = "src/team_losses.py:huber"\nloss = "huber_loss"\nproperties = ["agreement"]\n'
            'skip = [{ property = "agreement", reason = "flaky" }]',
            "",
            r"tool\.lossguard\.loss\[0\]: every property it lists is skipped: nothing would run",
        ),
        (
            'target = "src/team_losses.py:huber"',
            'dtypes = ["float8"]',
            r"tool\.lossguard\.dtypes\[0\]: 'float8' is not allowed; write one of 'float64', 'float32'",
        ),
        (
            'target = "src/team_losses.py:huber"',
            'fail-on = "sometimes"',
            r"tool\.lossguard\.fail-on: 'sometimes' is not allowed; write one of 'crash'",
        ),
    ],
    ids=[
        "unknown key",
        "unknown loss",
        "missing file",
        "missing attribute",
        "unimportable module",
        "no reason",
        "blank reason",
        "all skipped",
        "bad dtype",
        "bad fail-on",
    ],
)
def test_a_configuration_error_exits_2_naming_file_key_and_fix(tmp_path, capsys, entry, table, message):
    assert cli.main(configured(tmp_path, entry, table)) == cli.EXIT_USAGE
    err = capsys.readouterr().err.strip()
    assert err.startswith(f"lossguard: error: {tmp_path / 'pyproject.toml'}: ") and len(err.splitlines()) == 1
    assert re.search(message, err), err


def test_a_configuration_is_found_upward_and_plain_check_runs_it(tmp_path, monkeypatch):
    configured(tmp_path, 'target = "src/team_losses.py:huber"\nloss = "huber_loss"')
    (tmp_path / "src" / "deeper").mkdir()
    assert C.find(tmp_path / "src" / "deeper") == (tmp_path / "pyproject.toml").resolve()
    monkeypatch.chdir(tmp_path / "src" / "deeper")
    assert gate.configuration(cli.parser().parse_args(["check"])) == (tmp_path / "pyproject.toml").resolve()
    assert gate.configuration(cli.parser().parse_args(["check", "--impl", "all"])) is None


def test_a_config_entry_job_is_keyed_by_its_name_not_the_path_as_typed(tmp_path):
    (tmp_path / "src").mkdir()
    (tmp_path / "src" / "team_losses.py").write_text(LOSSES)
    path = tmp_path / "lossguard.toml"
    path.write_text('examples = "db"\n[[loss]]\nname = "h"\ntarget = "./src/../src/team_losses.py:huber"\n')
    loaded = C.load(path)
    (entry,) = loaded.entries
    job = loaded.job(entry, "ci")
    assert job["bindings"][0]["inline"]["name"] == "h", "the implementation's name (and database key) is the entry's"
    assert job["examples"] == str((tmp_path / "db").resolve())


def test_ci_replays_the_committed_database_read_only_and_stays_derandomized(tmp_path):
    """Hypothesis refuses derandomize=True with a database in one constructor call, and its engine replays one set
    on a child of derandomized settings (profiles' docstring): if an upgrade closes that gap, this fails first."""
    replaying = settings_for("ci", examples=str(tmp_path))
    assert replaying.derandomize and isinstance(replaying.database, ReadOnlyDatabase)
    assert settings_for("ci").database is None
    exploring = settings_for("thorough", examples=str(tmp_path), save=True, max_examples=40)
    assert isinstance(exploring.database, MultiplexedDatabase)  # random outside this suite (conftest derandomizes)
    assert exploring.max_examples == 40


def test_shards_of_a_configuration_split_its_losses(project, tmp_path):
    """``check --config --shard I/N``: each configured loss in exactly one shard, the shards together the whole run;
    balanced by a previous report's seconds when given (``--durations``), else one loss each."""
    base = ["lossguard", "check", "--config", "pyproject.toml", "--property", "agreement", "--profile", "ci"]
    ran = []
    for index in (1, 2):
        report = tmp_path / f"shard{index}.json"
        done = lossguard(project, [*base, "--shard", f"{index}/2", "--json", str(report)])
        assert done.returncode in (0, 1), done.stderr
        ran.append({r["implementation"] for r in results(report) if r["status"] != "skip"})
    assert ran[0] and ran[1] and not ran[0] & ran[1]
    assert ran[0] | ran[1] == {"huber", "buggy"}
    too_many = lossguard(project, [*base, "--shard", "3/3"])
    assert too_many.returncode == 2 and "only 2 losses to split" in too_many.stderr
