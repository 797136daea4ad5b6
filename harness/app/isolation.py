"""Audit in a subprocess: only a separate process survives ``os._exit``, a segfault, a hang or a
CUDA device assert in the judged code. The verdict of a run that kills or hangs its process is
``error``, never pass.

The parent starts ``python -m lossguard.harness.app.isolation`` with a JSON job as the first line of its stdin,
which it holds open while the worker lives (``lifeline``: the worker dies with lossguard). The worker (memory
capped with RLIMIT_AS) resolves the target, plans the runs and streams one JSON line per event on a private copy
of stdout (the judged code's own prints go to stderr). Each call of the judged code has ``time_limit`` seconds
(``watchdog``, in the worker); the parent waits at most ``property_limit(time_limit)`` seconds for a run's result.
A worker that dies costs the run it was on (an ``error`` result) and a fresh worker continues with the next run;
a hang costs its implementation's remaining runs (``error`` at once, with the same reason).

A job with ``slices`` asks the worker for the HTML report's plots instead of a run: it resolves the target the
same way and answers each slice (``lossguard.harness.app.slices.serve``; the parent is ``slices.isolated``).
"""

from __future__ import annotations

import base64
import json
import os
import pickle
import resource
import selectors
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from typing import Any

from lossguard.harness.app import lifeline
from lossguard.harness.app.watchdog import DUMP_HEADER, Watchdog, where_from_dump
from lossguard.harness.kernel import watch
from lossguard.harness.kernel.model import EVERY_PROPERTY, Example, PropertyResult
from lossguard.harness.kernel.severity import classify

CALL_LIMIT = 10.0  # default seconds one call of the judged code may take (audit --time-limit, the gate time-limit)
PROPERTY_LIMIT_FACTOR = 12  # the parent's backstop per property, in per-call time limits (10 s -> 120 s)
START_LIMIT = 120.0  # seconds a worker may take to import torch, lossguard and the target, whatever the limits


class IsolatedTargetError(Exception):
    """The worker could not resolve the target (reported to the user as a usage error)."""


def _events(process: subprocess.Popen, time_limit: float, first: float | None = None):
    """Yield the worker's parsed JSON events; yield ``{"event": "timeout"}`` when none arrives within
    ``time_limit`` (the first within ``first``, default ``time_limit``), and ``{"event": "hung", "where": ...}``
    at the end of a stream that ends with the starved watchdog's dump (``watchdog.where_from_dump``)."""
    selector = selectors.DefaultSelector()
    selector.register(process.stdout, selectors.EVENT_READ)
    buffer = b""
    dump: list[str] = []
    wait = time_limit if first is None else first
    while True:
        if not selector.select(timeout=wait):
            yield {"event": "timeout"}
            return
        chunk = os.read(process.stdout.fileno(), 65536)
        wait = time_limit
        if not chunk:
            if dump:
                yield {"event": "hung", "where": where_from_dump(dump)}
            return
        buffer += chunk
        while b"\n" in buffer:
            line, buffer = buffer.split(b"\n", 1)
            text = line.decode(errors="replace")
            if dump or text.startswith(DUMP_HEADER):
                dump.append(text)  # faulthandler's dump runs to the end of the stream
            elif text.strip():
                yield json.loads(text)


def _error(run: list[Any], message: str) -> PropertyResult:
    prop, device, dtype, base = run
    result = PropertyResult(
        **{**base, "property": prop, "device": device, "dtype": dtype, "status": "error", "message": message}
    )
    result.severity = classify(result)
    return result


def _result(fields: dict[str, Any], example: Example | None = None) -> PropertyResult:
    return PropertyResult(**{**fields, "parameters": tuple(fields["parameters"]), "example": example})


def start_worker(job: dict[str, Any]) -> subprocess.Popen:
    """A worker process (``_worker``) in its own session, given ``job`` on its stdin; its events come on stdout.

    The worker dies with this process (``lifeline``): it is told this process's pid, its stdin stays open until it
    is reaped (``lifeline.reaped`` or ``lifeline.kill``), and its group is killed on SIGTERM or SIGINT. A job with
    ``call_limit_s`` gets the per-call watchdog (``watchdog.Watchdog``)."""
    process = subprocess.Popen(
        [sys.executable, "-m", "lossguard.harness.app.isolation"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=None,
        start_new_session=True,
        env={**os.environ, lifeline.PARENT: str(os.getpid())},
    )
    lifeline.watch(process)
    try:
        process.stdin.write(json.dumps(job).encode() + b"\n")
        process.stdin.flush()
    except BrokenPipeError:  # it died before reading its job: its events end at once and say so
        pass
    return process


def property_limit(time_limit: float) -> float:
    """The parent's backstop for a property's result: ``PROPERTY_LIMIT_FACTOR`` per-call limits."""
    return PROPERTY_LIMIT_FACTOR * time_limit


def run_isolated(
    job: dict[str, Any],
    time_limit: float,
    progress: Callable[[int, int, PropertyResult], None] | None = None,
    on_header: Callable[[dict[str, Any]], Any] | None = None,
    *,
    backstop: float | None = None,
) -> tuple[dict[str, Any], list[PropertyResult]]:
    """Run an audit job in worker processes; returns (the worker's header, the results, in plan order).

    ``time_limit``: the seconds one call of the implementation (forward and backward) may take; the worker's
    watchdog ends it when one runs longer. ``backstop``: the seconds this process waits for a property's result
    (default ``property_limit(time_limit)``), for a hang no call guards; a worker's start (its imports, the
    target's included) may take ``START_LIMIT`` seconds, or the backstop if longer. A hang costs its limit once: the
    implementation's remaining cells are ``error`` with the same reason at once, and a fresh worker goes on with
    the others (a retry would cost another limit to learn what is almost always the same thing, and would make
    the verdict depend on timing). A worker that dies (``os._exit``, a segfault) costs the property it was on;
    a fresh worker goes on with the next. ``on_header`` is called once with the resolved header, as soon as the
    first worker has it. Safe to call from several threads at once.
    """
    backstop = property_limit(time_limit) if backstop is None else backstop
    done: dict[int, PropertyResult] = {}  # plan index -> result
    known: list[PropertyResult] = []  # the results known before running (a library not installed, ...)
    header: dict[str, Any] = {}
    plan: list[list[Any]] = []
    dropped: list[str] = []  # implementations that hung: the workers skip them

    def record(index: int, result: PropertyResult) -> None:
        done[index] = result
        if progress:
            progress(len(done), len(plan), result)

    def results() -> list[PropertyResult]:
        return [*known, *(done[i] for i in sorted(done))]

    skip = 0
    while True:
        process = start_worker({**job, "skip": skip, "dropped": dropped, "call_limit_s": time_limit})
        started: int | None = None
        finished = timed_out = False
        hung: str | None = None  # where the watchdog found the call
        with lifeline.reaped(process):
            for event in _events(process, backstop, first=max(backstop, START_LIMIT)):
                kind = event["event"]
                if kind == "target_error":
                    raise IsolatedTargetError(event["message"])
                if kind == "plan":
                    if not plan and on_header:
                        on_header(event["header"])
                    if not header:
                        known = [_result(r) for r in event["known"]]
                    header, plan = event["header"], event["runs"]
                elif kind == "start":
                    started = event["index"]
                elif kind == "result":
                    if event["index"] not in done:  # a device's skip is answered again by each fresh worker
                        record(event["index"], _result(event["result"], _unpacked(event.get("example", ""))))
                    started = None
                elif kind == "done":
                    finished = True
                elif kind == "hung":
                    hung = event["where"]
                elif kind == "timeout":
                    timed_out = True
                    lifeline.kill(process)
            process.wait()
        if finished:
            return header, results()
        if not plan:
            why = (
                f"gave no answer within {max(backstop, START_LIMIT):g} s"
                if timed_out
                else f"killed its process (exit status {process.returncode})"
            )
            raise IsolatedTargetError(f"importing the target {why}")
        pending = [i for i in range(len(plan)) if i not in done]
        if started is None:  # died between runs: resume with the next
            if not pending:
                return header, results()
            started = pending[0]
        prop, device, dtype, base = plan[started]
        if hung is not None or timed_out:
            where = f", at {hung}" if hung else ""
            why = (
                f"the implementation hangs: a call in {prop} ({dtype}, {device}) ran past the time limit of "
                f"{time_limit:g} s per call{where}"
                if hung is not None
                else f"the implementation hangs or is too slow: {prop} ({dtype}, {device}) gave no result within "
                f"{backstop:g} s (the time limit per property)"
            )
            culprit = base["implementation"]
            for index in pending:
                if plan[index][3]["implementation"] == culprit:
                    record(index, _error(plan[index], f"{why}; its other cells are not run"))
            dropped.append(culprit)
        else:
            why = f"the implementation killed its process (exit status {process.returncode}) during this property"
            record(started, _error(plan[started], why))
        skip = started + 1
        if len(done) == len(plan):
            return header, results()


def _packed(example: Example | None) -> str:
    """A failing example for the parent (diagnosis and plots read it): pickled, base64; '' when there is none or it
    holds something that does not pickle (a supplied callable)."""
    try:
        return base64.b64encode(pickle.dumps(example)).decode() if example is not None else ""
    except Exception:  # what the judged code put in a parameter is its own; the example is then not carried
        return ""


def _unpacked(text: str) -> Example | None:
    return pickle.loads(base64.b64decode(text)) if text else None


def _worker() -> None:
    """The worker's side of the protocol (``python -m lossguard.harness.app.isolation``)."""
    if lifeline.PARENT in os.environ:
        lifeline.die_with_parent(int(os.environ[lifeline.PARENT]))
    protocol = os.fdopen(os.dup(1), "w")
    os.dup2(2, 1)  # the judged code's prints go to stderr, never into the protocol
    lock = threading.Lock()  # the watchdog's thread reports on the protocol too

    def emit(event: dict[str, Any]) -> None:
        with lock:
            protocol.write(json.dumps(event, default=float) + "\n")
            protocol.flush()

    job = json.loads(sys.stdin.buffer.readline())
    lifeline.exit_on_eof(os.dup(0))  # the parent holds stdin open while it waits for this worker
    os.dup2(os.open(os.devnull, os.O_RDONLY), 0)  # the judged code reads no protocol
    limit = int(job["memory_limit_gb"] * (1 << 30))
    resource.setrlimit(resource.RLIMIT_AS, (limit, limit))

    from lossguard.harness.app.jobs import prepare

    try:
        prepared, selection = prepare(job)
    except Exception as exc:  # the target itself is the problem: a usage error for the user
        emit({"event": "target_error", "message": str(exc)})
        return
    if job.get("call_limit_s"):  # after the import: a slow import is not a hung call (the parent's backstop)
        dog = Watchdog(job["call_limit_s"], lambda where: emit({"event": "hung", "where": where}), protocol.fileno())
        watch.install(dog.call)
    if "slices" in job:  # the HTML report's plots: slices through counterexamples (lossguard.harness.app.slices)
        from lossguard.harness.app.slices import serve

        serve(prepared, job["slices"], emit)
        emit({"event": "done"})
        return
    from lossguard.harness.app.runner import plan, run_one

    runs = plan(prepared.impls, selection, prepared.catalog)
    bases = {
        impl.name: {
            "loss": impl.loss,
            "implementation": impl.name,
            "kind": impl.kind,
            "status": "error",
            "parameters": sorted(impl.accepted),
            "library": prepared.library_of.get(impl.name, ""),
        }
        for impl in prepared.impls
    }
    emit(
        {
            "event": "plan",
            "header": prepared.header,
            "known": [r.to_json() for r in prepared.known],
            "runs": [[n, d, t, bases[i.name]] for i, n, d, t in runs],
        }
    )
    dropped = set(job.get("dropped", ()))
    todo = [(index, run) for index, run in enumerate(runs) if index >= job["skip"]]
    todo.sort(key=lambda item: item[1][1] != EVERY_PROPERTY)  # a device's skip calls nothing: answered first
    for index, (impl, name, device, dtype) in todo:
        if impl.name in dropped:
            continue
        emit({"event": "start", "index": index})
        started = time.perf_counter()
        result = run_one(impl, name, device, dtype, selection, prepared.catalog)
        result.duration_s = time.perf_counter() - started
        result.library = bases[impl.name]["library"]
        emit({"event": "result", "index": index, "result": result.to_json(), "example": _packed(result.example)})
    emit({"event": "done"})


if __name__ == "__main__":
    _worker()
