"""The pytest plugin (``pytest --lossguard``, lossguard.harness.app.pytest_plugin) in throwaway projects: its items
and ids, ``-k``/``-m`` selection, the gate's verdicts (pass, fail with the counterexample and the reproduce command,
a configured skip with its reason, xfail by definition, a hostile loss's error that never ends the session; below
the gate a pass with a warning, an xpass a failure), the same JUnit testcases as ``lossguard check --config FILE
--junit``, the same verdicts under ``pytest -n 2``, each loss run once per session, and the README's commands ("In
your pytest run")"""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

# loaded before pytester's in-process runs, which unload what a run imported (numpy cannot be loaded twice)
import lossguard.harness.app.config
import lossguard.harness.app.jobs
import lossguard.harness.app.runner
import lossguard.reports.junit  # noqa: F401

pytest_plugins = ("pytester",)

ROOT = Path(__file__).resolve().parents[1]

LOSSES = """
import os
import time
from pathlib import Path

import torch
import torch.nn.functional as F

with open(Path(__file__).with_name("imports.log"), "a") as log:  # one line per process that imports the losses
    log.write(f"{os.getpid()}\\n")


def huber(input, target, reduction="mean", delta=1.0):
    return F.huber_loss(input, target, reduction=reduction, delta=delta)


def mse(input, target, reduction="mean"):
    out = (input - target) ** 2
    if reduction == "mean":
        return out.sum() / (out.numel() + 1)  # the planted bug: one element too many
    return out.sum() if reduction == "sum" else out


def focal(input, target, alpha=0.25, gamma=2.0, reduction="mean"):
    p = torch.sigmoid(input)
    ce = F.binary_cross_entropy_with_logits(input, target, reduction="none")
    p_t = p * target + (1 - p) * (1 - target)
    loss = ce * (1 - p_t) ** gamma
    if alpha is not None and alpha >= 0:
        loss = (alpha * target + (1 - alpha) * (1 - target)) * loss
    if reduction == "mean":
        return loss.mean()
    return loss.sum() if reduction == "sum" else loss


def exits(input, target, reduction="mean"):
    os._exit(3)


def hangs(input, target, reduction="mean"):
    time.sleep(3600)
"""

CONFIG = """
[tool.lossguard]
profile = "ci"
dtypes = ["float64", "float32"]
devices = ["cpu"]
time-limit = 4
{extra}
[[tool.lossguard.loss]]
target = "losses.py:huber"
loss = "huber_loss"
properties = ["agreement"]

[[tool.lossguard.loss]]
target = "losses.py:mse"
loss = "mse_loss"
properties = ["agreement", "reduction"]
skip = [{{ property = "reduction", reason = "tracked in #12" }}]

[[tool.lossguard.loss]]
target = "losses.py:focal"
loss = "sigmoid_focal_loss"
properties = ["proper_scoring"]
dtypes = ["float64"]

[[tool.lossguard.loss]]
target = "losses.py:exits"
loss = "mse_loss"
properties = ["agreement"]
dtypes = ["float64"]

[[tool.lossguard.loss]]
target = "losses.py:hangs"
loss = "mse_loss"
properties = ["agreement"]
dtypes = ["float64"]

[[tool.lossguard.loss]]
target = "evil.py:loss"
loss = "mse_loss"
properties = ["agreement"]
dtypes = ["float64"]
"""

EVIL = "import os\n\nos._exit(7)  # importing it kills its process\n\n\ndef loss(input, target):\n    pass\n"
TEAM_TESTS = "def test_the_teams_own():\n    assert 1 + 1 == 2\n"

# the expected verdict of every item of CONFIG
VERDICTS = {
    "huber[agreement-float64-cpu]": "passed",
    "huber[agreement-float32-cpu]": "passed",
    "mse[agreement-float64-cpu]": "failed",
    "mse[agreement-float32-cpu]": "failed",
    "mse[reduction-float64-cpu]": "skipped",
    "mse[reduction-float32-cpu]": "skipped",
    "focal[proper_scoring-float64-cpu]": "xfailed",
    "exits[agreement-float64-cpu]": "error",
    "hangs[agreement-float64-cpu]": "error",
    "loss[agreement-float64-cpu]": "error",
}


def project(folder: Path, extra: str = "") -> Path:
    """A team's throwaway project: its losses (correct, buggy, improper by definition, hostile), its tests, and the
    gate's configuration in pyproject.toml."""
    (folder / "losses.py").write_text(LOSSES)
    (folder / "evil.py").write_text(EVIL)
    (folder / "pyproject.toml").write_text(CONFIG.format(extra=extra))
    (folder / "tests").mkdir(exist_ok=True)
    (folder / "tests" / "test_team.py").write_text(TEAM_TESTS)
    return folder


def run(folder: Path, *words: str) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTEST_ADDOPTS", "CI")}
    return subprocess.run([*words], cwd=folder, env=env, capture_output=True, text=True, timeout=600, check=False)


def verdicts(junit: Path, classname: str = "pyproject.toml") -> dict[str, str]:
    """Testcase name -> outcome (passed, failed, error, skipped, xfailed) of the testcases of ``classname`` in a
    JUnit file, pytest's ``--junitxml`` or lossguard's ``--junit`` (``lossguard.reports.junit``)."""
    found = {}
    for case in ET.parse(junit).iter("testcase"):
        if case.get("classname") != classname:
            continue
        tags = {child.tag: child for child in case}
        if "failure" in tags:
            outcome = "failed"
        elif "error" in tags:
            outcome = "error"
        elif "skipped" in tags:
            outcome = "xfailed" if tags["skipped"].get("type") == "pytest.xfail" else "skipped"
        else:
            outcome = "passed"
        found[case.get("name", "")] = outcome
    return found


def readme_commands() -> list[str]:
    """The ``$ pytest`` commands of the README's "In your pytest run" subsection."""
    text = (ROOT / "README.md").read_text()
    section = re.search(r"^### In your pytest run\n(.*?)(?=^#)", text + "\n#", flags=re.S | re.M)
    assert section, "the README has the subsection 'In your pytest run'"
    blocks = re.findall(r"```console\n(.*?)```", section.group(1), flags=re.S)
    return [line[2:].partition("#")[0].strip() for b in blocks for line in b.splitlines() if line.startswith("$ ")]


def test_the_plugin_imports_nothing_of_lossguard_until_enabled():
    code = (
        "import sys, lossguard.harness.app.pytest_plugin\n"
        "heavy = ('torch', 'numpy', 'pydantic', 'hypothesis', 'lossguard.harness.app.config', 'lossguard.catalog')\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in heavy or m in heavy))"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "[]"


def test_items_ids_and_selection(pytester: pytest.Pytester):
    project(pytester.path)
    plain = pytester.runpytest("--collect-only", "-q")  # not enabled: the team's tests alone
    plain.stdout.fnmatch_lines(["tests/test_team.py::test_the_teams_own", "1 test collected*"])
    assert "pyproject.toml::" not in plain.stdout.str()

    listed = pytester.runpytest("--lossguard", "--collect-only", "-q")
    ids = [line.removeprefix("pyproject.toml::") for line in listed.outlines if line.startswith("pyproject.toml::")]
    assert ids == list(VERDICTS)  # configuration order, the skip items after their loss's runs
    assert "tests/test_team.py::test_the_teams_own" in listed.outlines
    assert not (pytester.path / "imports.log").exists(), "collection imported no target"

    chosen = pytester.runpytest("--lossguard", "--collect-only", "-q", "-k", "huber and float32")
    assert [line for line in chosen.outlines if "::" in line] == ["pyproject.toml::huber[agreement-float32-cpu]"]
    marked = pytester.runpytest("--lossguard", "--collect-only", "-q", "-m", "not lossguard")
    assert [line for line in marked.outlines if "::" in line] == ["tests/test_team.py::test_the_teams_own"]


def test_pytest_true_in_the_configuration_enables_it(pytester: pytest.Pytester):
    project(pytester.path, extra="pytest = true")
    listed = pytester.runpytest("--collect-only", "-q")
    listed.stdout.fnmatch_lines(["pyproject.toml::huber[agreement-float64-cpu]", f"{len(VERDICTS) + 1} tests*"])


def test_a_configuration_error_is_a_usage_error(pytester: pytest.Pytester):
    project(pytester.path)
    config = pytester.path / "pyproject.toml"
    config.write_text(config.read_text().replace('loss = "huber_loss"', 'los = "huber_loss"'))
    done = pytester.runpytest("--lossguard", "--collect-only")
    assert done.ret == pytest.ExitCode.USAGE_ERROR
    done.stderr.fnmatch_lines(["*tool.lossguard.loss[[]0[]].los: unknown key 'los'; did you mean 'loss'?*"])


@pytest.fixture(scope="module")
def gate(tmp_path_factory) -> dict[str, object]:
    """The README's commands run in one throwaway project (each with a JUnit file), and the CLI's ``check``."""
    folder = project(tmp_path_factory.mktemp("team"), extra="pytest = true")
    runs = {}
    for index, command in enumerate(readme_commands()):
        words = shlex.split(command)
        assert words[0] == "pytest"
        junit = folder / f"pytest-{index}.xml"
        (folder / "imports.log").unlink(missing_ok=True)
        done = run(folder, sys.executable, "-m", *words, "-p", "no:cacheprovider", f"--junitxml={junit}")
        imports = (folder / "imports.log").read_text().split() if (folder / "imports.log").exists() else []
        runs[command] = {"done": done, "outcomes": verdicts(junit), "imports": imports, "junit": junit}
    # every loss but the one whose import kills its process: the CLI stops on it (exit 2), where the plugin errors
    # its items and goes on
    named = [w for name in ("huber", "mse", "focal", "exits", "hangs") for w in ("--loss-name", name)]
    check = ["check", "--config", "pyproject.toml", *named, "--jobs", "2", "--junit", "cli.xml"]
    cli = run(folder, sys.executable, "-m", "lossguard", *check)
    return {"folder": folder, "runs": runs, "cli": cli}


def test_the_readme_commands_give_the_gates_verdicts(gate):
    serial, spread, selected, team = gate["runs"].values()
    assert serial["outcomes"] == VERDICTS, serial["done"].stdout[-3000:]
    assert serial["done"].returncode == 1
    assert verdicts(serial["junit"], "tests.test_team") == {"test_the_teams_own": "passed"}
    output = serial["done"].stdout
    # each failure: the message, the minimal counterexample and a reproduce command that needs no database
    failure = output.split("mse[agreement-float64-cpu] _")[1].split("\n___")[0]
    assert "fail [wrong]: loss = " in failure and "minimal counterexample: input=" in failure
    assert re.search(r"reproduce: lossguard check --config \S+ --loss-name mse .*--replay \S+", failure)
    assert "Traceback" not in output and "pytest_plugin.py" not in output
    assert "tracked in #12" in output or "tracked in #12" in serial["junit"].read_text()
    assert "importing the target killed its process" in output
    # under pytest-xdist: the same verdicts, and no loss run twice (one import per isolated worker, as serially)
    assert spread["outcomes"] == VERDICTS
    assert len(spread["imports"]) == len(serial["imports"])
    assert selected["outcomes"] == {k: v for k, v in VERDICTS.items() if k.startswith("huber") and "float32" in k}
    assert selected["done"].returncode == 0 and len(selected["imports"]) == 1
    assert team["outcomes"] == {} and team["done"].returncode == 0 and team["imports"] == []


def test_the_plugins_junit_has_the_clis_testcases(gate):
    assert gate["cli"].returncode == 1, gate["cli"].stderr
    serial = next(iter(gate["runs"].values()))
    plugin = {name: outcome for name, outcome in serial["outcomes"].items() if not name.startswith("loss[")}
    assert verdicts(gate["folder"] / "cli.xml") == plugin


def test_a_failure_below_the_gate_passes_with_a_warning_and_an_xpass_fails():
    from lossguard.harness.app.pytest_plugin import BelowGate, judge
    from lossguard.harness.kernel.model import PropertyResult

    def result(status: str, severity: str = "") -> PropertyResult:
        return PropertyResult(
            "mse_loss",
            "mse",
            "user",
            "cpu",
            "float32",
            "agreement",
            status,
            "loss = 0.5, but should be 1.0",
            counterexample="input=np.array([0.])",
            reproduce="lossguard check --replay X",
            severity=severity,
        )

    with pytest.warns(BelowGate, match=r"(?s)below the gate \(fail-on validation-gap\).*reproduce: lossguard check"):
        judge(result("fail", "imprecise"), "validation-gap")
    with pytest.raises(pytest.fail.Exception, match=r"fail \[wrong\]: loss = 0.5.*\n.*input=np.array") as failed:
        judge(result("fail", "wrong"), "validation-gap")
    assert not failed.value.pytrace  # the failure's text, no traceback of the plugin
    with pytest.raises(pytest.fail.Exception, match=r"^\[XPASS\(strict\)\] xpass: "):
        judge(result("xpass"), "crash")
    with pytest.raises(pytest.xfail.Exception, match=r"loss = 0\.5"):
        judge(result("xfail", "wrong"), "crash")
