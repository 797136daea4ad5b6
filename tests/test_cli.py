"""The CLI contract: exit 0 / 1 / 2, findings as xfail, audit of user code (isolated), clear usage errors."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from lossguard.harness.app.cli import main
from lossguard.harness.app.inventory import bind
from lossguard.harness.app.runner import Selection, run_one
from lossguard.harness.kernel.model import EVERY_PROPERTY, Finding, PropertyResult

ROOT = Path(__file__).resolve().parents[1]
FIXTURES = ROOT / "tests" / "fixtures" / "user_losses.py"
EXAMPLES = ROOT / "examples" / "my_losses.py"
FAST = ["--profile", "ci", "--device", "cpu", "--dtype", "float64", "--dtype", "float32"]


def lossguard(*args: str, timeout: float = 600) -> subprocess.CompletedProcess:
    """Run the installed console script as a user would, in the repository root."""
    env = {**os.environ, "CI": "true"}
    return subprocess.run(
        [sys.executable, "-m", "lossguard", *args], cwd=ROOT, capture_output=True, text=True, timeout=timeout, env=env
    )


def test_list_shows_the_catalog(capsys):
    from lossguard.catalog import CATALOG

    assert main(["list"]) == 0
    out = capsys.readouterr().out
    assert all(name in out for name in CATALOG)
    assert main(["list", "--json"]) == 0
    assert {entry["name"] for entry in json.loads(capsys.readouterr().out)} == set(CATALOG)


def test_a_recorded_finding_is_xfail_and_does_not_fail_check():
    import torch.nn.functional as F

    from lossguard.harness.app.inventory import torch_builtins
    from lossguard.implementations.torch_builtins import FINDINGS, UPSTREAM

    mse = next(i for i in torch_builtins() if i.loss == "mse_loss")
    result = run_one(mse, "invalid_input", "cpu", "float64", Selection(profile="ci"))
    assert result.status == "xfail"
    assert UPSTREAM in result.message and FINDINGS["mse_loss"][0].reason in result.message
    assert F.mse_loss is mse.fn


def test_a_finding_that_stops_reproducing_is_xpass_and_fails(capsys):
    import torch.nn.functional as F

    stale = bind("mse_loss", F.mse_loss, "tests.stale", "user").with_findings(
        (Finding("agreement", "pretend mse_loss were inaccurate", "torch 0.0"),)
    )
    result = run_one(stale, "agreement", "cpu", "float64", Selection(profile="ci"))
    assert result.status == "xpass"
    assert "no longer reproduces" in result.message


def test_audit_of_a_planted_bug_exits_1_and_names_the_property():
    done = lossguard("audit", f"{EXAMPLES}:focal", "--loss", "sigmoid_focal_loss", *FAST)
    assert done.returncode == 1, done.stdout[-3000:]
    assert "] FINDING" not in done.stdout and "FINDING 1 [nan-inf]: " in done.stdout  # the worst first
    assert "breaks: stability (" in done.stdout
    assert "how much: nan where the exact value is" in done.stdout
    assert "minimal counterexample: input=" in done.stdout
    assert "reproduce: lossguard audit" in done.stdout
    assert done.stdout.strip().splitlines()[-1].startswith("lossguard: FAILED")
    assert "FAIL" not in done.stdout.split("worst")[0], "the per-property table is behind --verbose"


def test_fail_on_sets_which_severities_fail_the_exit_status():
    """The clamped focal loss returns 0 for a loss of 1.8e-35 at a sure prediction (float32): 1.5e3 ulps, but
    below u_32 of a loss of order one, so ``imprecise``: below the default --fail-on, above --fail-on imprecise."""
    at_perfect = [f"{EXAMPLES}:focal", "--loss", "sigmoid_focal_loss", "--property", "zero_at_perfect"]
    fast = [*FAST[:4], "--dtype", "float32"]
    done = lossguard("audit", *at_perfect, *fast)
    assert done.returncode == 0, done.stdout[-3000:]
    assert "[imprecise, below --fail-on validation-gap]" in done.stdout
    assert done.stdout.strip().splitlines()[-1].startswith("lossguard: OK"), done.stdout[-500:]
    assert "(1 below --fail-on validation-gap)" in done.stdout
    strict = lossguard("audit", *at_perfect, *fast, "--fail-on", "imprecise", "--verbose")
    assert strict.returncode == 1, strict.stdout[-3000:]
    assert "FAIL: zero_at_perfect of" in strict.stdout, "--verbose prints each result as it came"
    assert strict.stdout.strip().splitlines()[-1].startswith("lossguard: FAILED")


def test_audit_of_a_correct_loss_exits_0_and_names_what_it_tested():
    done = lossguard("audit", f"{EXAMPLES}:huber", "--loss", "huber_loss", *FAST)
    assert done.returncode == 0, done.stdout[-3000:]
    assert f"resolved             : {EXAMPLES} (function)" in done.stdout
    assert "parameters exercised : delta, reduction" in done.stdout
    assert "torch      " in done.stdout or "torch                :" in done.stdout


@pytest.mark.parametrize(
    "target", ["tests.fixtures.user_losses:HuberModule", "tests.fixtures.user_losses:huber_instance"]
)
def test_audit_of_nn_modules_class_and_instance(target):
    done = lossguard(
        "audit", target, "--loss", "huber_loss", "--property", "agreement", "--property", "invalid_input", *FAST
    )
    assert done.returncode == 0, done.stdout[-3000:]
    if target.endswith("HuberModule"):
        assert "parameters exercised : delta, reduction" in done.stdout


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (["audit", "no/such/file.py:f", "--loss", "huber_loss"], "does not exist"),
        (["audit", "no_such_module_xyz:f", "--loss", "huber_loss"], "cannot import module"),
        (["audit", f"{FIXTURES}:nope", "--loss", "huber_loss"], "has no attribute 'nope'"),
        (["audit", f"{FIXTURES}:not_callable", "--loss", "huber_loss"], "not a function or an nn.Module"),
        (["audit", "examples.my_losses", "--loss", "huber_loss"], "must be 'package.module:attr'"),
        (["audit", f"{EXAMPLES}:huber", "--loss", "no_such_loss"], "unknown loss 'no_such_loss'"),
        (["check", "--loss", "no_such_loss"], "unknown loss 'no_such_loss'"),
        (["check", "--property", "no_such_property"], "unknown property"),
        (["check", "--dtype", "float8"], "invalid choice"),
        (["frobnicate"], "invalid choice"),
    ],
)
def test_bad_input_to_lossguard_exits_2_with_one_line(args, says):
    done = lossguard(*args, "--profile", "ci") if args[0] != "frobnicate" else lossguard(*args)
    assert done.returncode == 2, done.stdout + done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("lossguard: error:") and says in lines[0], done.stderr


def test_an_implementation_that_kills_its_process_is_an_error_not_a_crash():
    done = lossguard(
        "audit",
        f"{FIXTURES}:exits_on_big_inputs",
        "--loss",
        "huber_loss",
        *FAST,
        "--property",
        "agreement",
        "--property",
        "invalid_input",
    )
    assert done.returncode == 1
    assert "killed its process (exit status 3)" in done.stdout
    assert "invalid_input" in done.stdout and "lossguard: FAILED" in done.stdout


def test_an_implementation_that_hangs_is_an_error_after_the_time_limit_per_call():
    done = lossguard(
        "audit",
        f"{FIXTURES}:hangs_on_big_inputs",
        "--loss",
        "huber_loss",
        "--profile",
        "ci",
        "--device",
        "cpu",
        "--dtype",
        "float64",
        "--property",
        "agreement",
        "--property",
        "invalid_input",
        "--time-limit",
        "5",
        timeout=300,
    )
    assert done.returncode == 1
    assert "the implementation hangs: a call in agreement (float64, cpu) ran past the time limit of 5 s" in done.stdout


def test_a_check_that_ran_nothing_says_so_and_exits_1(capsys, monkeypatch):
    """A gate that checked nothing has not passed: no 'OK' verdict, exit 1, and why (no audited library installed)."""
    from lossguard.harness.app import inventory

    monkeypatch.setattr(inventory, "shipped_third_party", lambda: ((), {}))
    assert main(["check", "--impl", "third-party", "--profile", "ci"]) == 1
    last = capsys.readouterr().out.strip().splitlines()[-1]
    assert last.startswith("lossguard: NOTHING RAN 0 results"), last
    assert "install the libraries lossguard binds" in last


def test_the_library_line_tells_audited_unbound_and_unselected_losses_apart():
    """A library's line counts a loss that ran a property as audited, an export skipped as a whole (one CPU row
    for every property) as not audited, and a bound loss left only a device's skip by ``--property`` as neither:
    before, a CUDA skip counted as an export not audited."""
    import io

    from lossguard.reports.terminal import library_lines, per_library

    def row(impl: str, prop: str, device: str, dtype: str, status: str) -> PropertyResult:
        return PropertyResult("mse_loss", impl, "third-party", device, dtype, prop, status, library="lib")

    results = [
        row("lib.audited", "agreement", "cpu", "float64", "pass"),
        row("lib.audited", EVERY_PROPERTY, "cuda", "all", "skip"),
        row("lib.unbound", EVERY_PROPERTY, "cpu", "all", "skip"),
        row("lib.unselected", EVERY_PROPERTY, "cuda", "all", "skip"),
    ]
    counts = per_library(results)["lib"]
    assert (counts["losses audited"], counts["not audited"], counts["no property selected"]) == (1, 1, 1)
    out = io.StringIO()
    library_lines(results, out)
    assert out.getvalue().splitlines()[0] == (
        "library lib: 1 losses audited, 1 exports not audited, 1 bound losses without a selected property; "
        "1 pass, 3 skip"
    )


class _DeadPool:
    """A process pool whose every worker has died (what the kernel's out-of-memory killer leaves)."""

    def __init__(self, *args, **kwargs):
        pass

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False

    def submit(self, fn, *args):
        from concurrent.futures import Future
        from concurrent.futures.process import BrokenProcessPool

        future = Future()
        future.set_exception(BrokenProcessPool("A process in the process pool was terminated abruptly"))
        return future


def test_a_worker_that_dies_gives_errors_not_a_crash(monkeypatch):
    """A dead worker breaks the whole pool (an audit of optax once exhausted the kernel's memory mappings): every
    run it had is an error saying so, and lossguard goes on to its report instead of a traceback."""
    from lossguard.harness.app import runner
    from lossguard.harness.app.inventory import own

    monkeypatch.setattr(runner, "ProcessPoolExecutor", _DeadPool)
    impls = [i for i in own() if i.loss in ("log_cosh_loss", "quantile_loss")]
    selection = Selection(dtypes=("float64",), devices=("cpu",), properties=("agreement",), profile="ci")
    results = runner.run(impls, selection, workers=2)
    assert len(results) == len(impls) >= 2
    assert all(r.status == "error" and "worker process" in r.message for r in results)


def test_a_failure_of_an_audit_of_several_libraries_reproduces_with_its_own_library():
    """--binding-name takes one library: the reproduce command of a run of ``--library all`` (or of several
    --library options) names the run's own library, by the name --library takes, not all of them."""
    pytest.importorskip("timm", reason="timm not installed (optional extra lossguard[audit])")
    from lossguard.harness.app.jobs import prepare

    for base in (["--library", "all"], ["--library", "torchvision", "--library", "timm"]):
        job = {
            "dtypes": ["float64"],
            "devices": ["cpu"],
            "properties": None,
            "profile": "ci",
            "base_command": ["lossguard", "audit", *base, "--jobs", "1"],
            "bindings": [{"library": "torchvision", "name": None}, {"library": "timm", "name": None}],
        }
        prepared, selection = prepare(job)
        impl = next(i for i in prepared.impls if i.name.startswith("timm."))
        assert selection.reproduce(impl, "finite", "float64", "cpu") == (
            f"lossguard audit --library timm --jobs 1 --binding-name {impl.name} --property finite --dtype float64 "
            "--device cpu --profile ci"
        )
    user = Selection(base_command=("lossguard", "audit", "f.py:huber", "--loss", "huber_loss"))
    assert "--library" not in user.reproduce(impl, "finite", "float64", "cpu")
