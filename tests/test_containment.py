"""Containment of judged code that costs little (DESIGN.md, 'Running code under judgement'; issue 11, item 6).

A hang costs its per-call time limit once (the worker's watchdog, then the implementation's other cells are
``error`` at once), a crash costs its own cell, and lossguard's workers die with it however it is stopped.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest

from lossguard.harness.app import lifeline
from lossguard.harness.app.isolation import run_isolated, start_worker

LOSSES = '''\
import ctypes
import os
import re
import time

import torch
import torch.nn.functional as F


def sleeps(input, target, reduction="mean", delta=1.0):
    """Never returns (waits in C code, the interpreter lock released)."""
    time.sleep(10**7)


def hogs(input, target, reduction="mean", delta=1.0):
    """Never returns, holding the interpreter lock (a regular expression that backtracks 2**60 times)."""
    re.match(r"(a+)+$", "a" * 60 + "b")


def exits_in_float32(input, target, reduction="mean", delta=1.0):
    if input.dtype == torch.float32:
        os._exit(3)
    return F.huber_loss(input, target, reduction=reduction, delta=delta)


def segfaults_in_float32(input, target, reduction="mean", delta=1.0):
    if input.dtype == torch.float32:
        ctypes.string_at(0)
    return F.huber_loss(input, target, reduction=reduction, delta=delta)
'''


@pytest.fixture(scope="module")
def losses(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("containment") / "judged.py"
    path.write_text(LOSSES)
    return path


def job(losses: Path, *names: str, properties=("agreement",), dtypes=("float64",)) -> dict:
    """An audit job of the huber_loss implementations ``names`` of ``losses``, on the CPU."""
    bindings = [
        {"inline": {"target": f"{losses}:{n}", "framework": "torch", "loss": "huber_loss", "inspect": True}}
        for n in names
    ]
    return {
        "dtypes": list(dtypes),
        "devices": ["cpu"],
        "properties": list(properties),
        "profile": "ci",
        "base_command": ["lossguard", "audit"],
        "replay": None,
        "bindings": bindings,
        "memory_limit_gb": 8.0,
    }


def test_a_hang_costs_its_time_limit_once_not_once_per_cell(losses):
    """Every property and dtype of huber_loss (26 cells): before, each cell waited out the limit in a fresh
    worker (26 limits and 26 worker start-ups); now the first hung call ends it and the rest are error at once."""
    limit = 3.0
    began = time.monotonic()
    _, results = run_isolated(job(losses, "sleeps", properties=(), dtypes=("float64", "float32")), limit)
    elapsed = time.monotonic() - began
    assert len(results) >= 12
    assert {r.status for r in results} == {"error"}
    reasons = {r.message for r in results}
    assert len(reasons) == 1, reasons  # one reason: one root cause in the report
    (reason,) = reasons
    assert f"ran past the time limit of {limit:g} s per call" in reason
    assert f"{losses}:" in reason and "in sleeps" in reason  # where the call hung
    assert "its other cells are not run" in reason
    assert all(r.severity == "crash" for r in results)
    # one limit and one worker start-up (generous on a loaded 2-core machine); one limit per cell is >= 36 s
    assert elapsed < 3 * limit + 25, f"{elapsed:.1f} s for {len(results)} cells"


def test_a_call_that_holds_the_interpreter_lock_is_ended_too(losses):
    """The watchdog thread cannot run while C code holds the lock; faulthandler's timer (a C thread) ends the
    worker after STARVED_FACTOR limits and its dump says where."""
    _, (result,) = run_isolated(job(losses, "hogs"), 1.0)
    assert result.status == "error"
    assert "ran past the time limit of 1 s per call, at " in result.message
    assert "in match" in result.message  # the innermost frame of the stuck call: re.match


def test_a_hang_or_a_crash_errs_its_own_cells_only(losses):
    """os._exit and a segfault in float32 cost their float32 cell; a hang costs its implementation's cells; a
    fresh worker goes on with the rest, where float64 passes."""
    names = ("exits_in_float32", "sleeps", "segfaults_in_float32")
    _, results = run_isolated(job(losses, *names, dtypes=("float64", "float32")), 2.0)
    got = {(r.implementation.rsplit(":", 1)[1], r.dtype): (r.status, r.message) for r in results}
    assert got[("exits_in_float32", "float64")][0] == "pass"
    assert got[("segfaults_in_float32", "float64")][0] == "pass"
    assert got[("exits_in_float32", "float32")] == (
        "error",
        "the implementation killed its process (exit status 3) during this property",
    )
    assert got[("segfaults_in_float32", "float32")] == (
        "error",
        f"the implementation killed its process (exit status {-signal.SIGSEGV}) during this property",
    )
    assert got[("sleeps", "float64")][0] == got[("sleeps", "float32")][0] == "error"
    assert "ran past the time limit of 2 s per call" in got[("sleeps", "float32")][1]


def test_run_isolated_from_two_threads_at_once(losses):
    """The pytest plugin may judge two losses at once: each call keeps its own workers and verdicts."""
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(2) as threads:
        hung = threads.submit(run_isolated, job(losses, "sleeps"), 2.0)
        crashed = threads.submit(run_isolated, job(losses, "exits_in_float32", dtypes=("float64", "float32")), 2.0)
        (hang,) = hung.result()[1]
        crash = {r.dtype: r.status for r in crashed.result()[1]}
    assert hang.status == "error" and "ran past the time limit of 2 s per call" in hang.message
    assert crash == {"float64": "pass", "float32": "error"}


def _tagged(tag: str) -> list[int]:
    """Live processes whose environment holds ``tag`` (a zombie has no environment left)."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if tag.encode() in (entry / "environ").read_bytes():
                    found.append(int(entry.name))
            except OSError:  # gone, or not ours to read
                pass
    return found


def _children(tag: str, marker: bytes) -> list[int]:
    return [pid for pid in _tagged(tag) if marker in Path(f"/proc/{pid}/cmdline").read_bytes()]


def _wait_for(condition, seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.1)
    return condition()


AUDIT = ["audit", "{losses}:sleeps", "--loss", "huber_loss", "--dtype", "float64", "--property", "agreement"]
POOL = """\
import multiprocessing
import os
import time
from concurrent.futures import ProcessPoolExecutor

from lossguard.harness.app.lifeline import die_with_parent

if __name__ == "__main__":  # as runner._run_parallel builds check --jobs N's pool
    spawn = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(2, mp_context=spawn, initializer=die_with_parent, initargs=(os.getpid(),)) as pool:
        list(pool.map(time.sleep, [600, 600]))
"""


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc (Linux)")
@pytest.mark.parametrize(
    ("args", "marker", "signum"),
    [
        (AUDIT, b"harness.app.isolation", signal.SIGTERM),
        (AUDIT, b"harness.app.isolation", signal.SIGINT),
        (["{pool}"], b"multiprocessing.spawn", signal.SIGTERM),
    ],
    ids=["audit-SIGTERM", "audit-SIGINT", "process-pool-SIGTERM"],
)
def test_a_stopped_lossguard_leaves_no_worker_behind(losses, tmp_path, args, marker, signum):
    """A CI job's timeout (SIGTERM) or Ctrl-C (SIGINT) while a hung loss is being judged, or while a pool like
    ``check --jobs 2``'s works: no process lossguard started outlives it. (The pool's case is PR_SET_PDEATHSIG's
    alone, as a SIGKILL's would be; test_a_worker_whose_stdin_closes_ends tests the stdin tie.)"""
    tag = f"LOSSGUARD_TEST_TAG={uuid.uuid4().hex}"
    env = {**os.environ, tag.split("=")[0]: tag.split("=")[1]}
    (tmp_path / "pool.py").write_text(POOL)
    command = [sys.executable, "pool.py"] if args == ["{pool}"] else [sys.executable, "-m", "lossguard"]
    if args != ["{pool}"]:
        command += [a.format(losses=losses) for a in args] + ["--profile", "ci", "--device", "cpu"]
    lossguard = subprocess.Popen(
        command,
        cwd=tmp_path,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),  # pytest-xdist's workers ignore it
    )
    try:
        assert _wait_for(lambda: _children(tag, marker), 90), "no worker started"
        time.sleep(1.0)
        lossguard.send_signal(signum)
        lossguard.wait(timeout=30)
        assert _wait_for(lambda: not _tagged(tag), 10), f"left alive after {signum.name}: {_tagged(tag)}"
    finally:
        lossguard.kill()
        for pid in _tagged(tag):
            os.kill(pid, signal.SIGKILL)


def test_a_worker_whose_stdin_closes_ends(losses):
    """The stdin tie alone (its parent, this process, lives on): the worker ends with EXIT_ORPHANED."""
    process = start_worker({**job(losses, "sleeps"), "skip": 0, "call_limit_s": 600})
    try:
        time.sleep(1.0)
        process.stdin.close()
        assert process.wait(timeout=60) == lifeline.EXIT_ORPHANED
    finally:
        lifeline.kill(process)


def test_check_jobs_pool_workers_are_tied_to_lossguard(monkeypatch):
    """``check --jobs 2`` (runner.run with two workers) gives its pool lifeline.die_with_parent, as the pool test
    above does."""
    from lossguard.harness.app import runner

    built = {}

    class Recorder:
        def __init__(self, *args, **kwargs):
            built.update(kwargs)
            raise RuntimeError("recorded")

    from lossguard.harness.app.inventory import torch_builtins

    monkeypatch.setattr(runner, "ProcessPoolExecutor", Recorder)
    impls = torch_builtins()[:2]
    with pytest.raises(RuntimeError, match="recorded"):
        runner.run(impls, runner.Selection(devices=("cpu",), profile="ci"), workers=2)
    assert built["initializer"] is lifeline.die_with_parent and built["initargs"] == (os.getpid(),)
