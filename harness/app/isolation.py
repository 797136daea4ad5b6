"""Audit in a subprocess: only a separate process survives ``os._exit``, a segfault, a hang or a
CUDA device assert in the judged code. The verdict of a run that kills or hangs its process is
``error``, never pass.

The parent starts ``python -m lossguard.harness.app.isolation`` with a JSON job on stdin. The worker (memory
capped with RLIMIT_AS) resolves the target, plans the runs and streams one JSON line per event
on a private copy of stdout (the judged code's own prints go to stderr). The parent waits at
most ``time_limit`` seconds per run; when the worker dies or overruns, that run becomes an
``error`` result and a fresh worker continues with the next run.

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
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from typing import Any

from lossguard.harness.kernel.model import Example, PropertyResult


class IsolatedTargetError(Exception):
    """The worker could not resolve the target (reported to the user as a usage error)."""


def _events(process: subprocess.Popen, time_limit: float):
    """Yield parsed JSON events; yield ("timeout", None) when none arrives within ``time_limit``."""
    selector = selectors.DefaultSelector()
    selector.register(process.stdout, selectors.EVENT_READ)
    buffer = b""
    while True:
        if not selector.select(timeout=time_limit):
            yield {"event": "timeout"}
            return
        chunk = os.read(process.stdout.fileno(), 65536)
        if not chunk:
            return
        buffer += chunk
        while b"\n" in buffer:
            line, buffer = buffer.split(b"\n", 1)
            if line.strip():
                yield json.loads(line)


def _error(run: list[Any], message: str) -> PropertyResult:
    prop, device, dtype, base = run
    return PropertyResult(
        **{**base, "property": prop, "device": device, "dtype": dtype, "status": "error", "message": message}
    )


def _result(fields: dict[str, Any], example: Example | None = None) -> PropertyResult:
    return PropertyResult(**{**fields, "parameters": tuple(fields["parameters"]), "example": example})


def start_worker(job: dict[str, Any]) -> subprocess.Popen:
    """A worker process (``_worker``) in its own session, given ``job`` on its stdin; its events come on stdout."""
    process = subprocess.Popen(
        [sys.executable, "-m", "lossguard.harness.app.isolation"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=None,
        start_new_session=True,
    )
    process.stdin.write(json.dumps(job).encode())
    process.stdin.close()
    return process


def run_isolated(
    job: dict[str, Any],
    time_limit: float,
    progress: Callable[[int, int, PropertyResult], None] | None = None,
    on_header: Callable[[dict[str, Any]], Any] | None = None,
) -> tuple[dict[str, Any], list[PropertyResult]]:
    """Run an audit job in worker processes; returns (the worker's header, the results).

    ``on_header`` is called once with the resolved header, as soon as the first worker has it.
    """
    results: list[PropertyResult] = []
    known: list[PropertyResult] = []  # the results known before running (a library not installed, ...)
    header: dict[str, Any] = {}
    plan: list[list[str]] = []
    skip = 0
    while True:
        process = start_worker({**job, "skip": skip})
        started: int | None = None
        finished = False
        for event in _events(process, time_limit):
            kind = event["event"]
            if kind == "target_error":
                process.wait()
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
                results.append(_result(event["result"], _unpacked(event.get("example", ""))))
                started = None
                if progress:
                    progress(len(results), len(plan), results[-1])
            elif kind == "done":
                finished = True
            elif kind == "timeout":
                os.killpg(process.pid, signal.SIGKILL)
        code = process.wait()
        if finished:
            return header, [*known, *results]
        if not plan:
            raise IsolatedTargetError(f"importing the target killed its process (exit status {code})")
        if started is None:  # died between runs: resume after the last result
            started = len(results)
            if started >= len(plan):
                return header, [*known, *results]
        why = (
            f"no result within {time_limit:g} s: the implementation hangs or is too slow (time limit per property)"
            if code == -signal.SIGKILL
            else f"the implementation killed its process (exit status {code}) during this property"
        )
        results.append(_error(plan[started], why))
        if progress:
            progress(len(results), len(plan), results[-1])
        skip = started + 1
        if skip >= len(plan):
            return header, [*known, *results]


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
    protocol = os.fdopen(os.dup(1), "w")
    os.dup2(2, 1)  # the judged code's prints go to stderr, never into the protocol

    def emit(event: dict[str, Any]) -> None:
        protocol.write(json.dumps(event, default=float) + "\n")
        protocol.flush()

    job = json.loads(sys.stdin.read())
    limit = int(job["memory_limit_gb"] * (1 << 30))
    resource.setrlimit(resource.RLIMIT_AS, (limit, limit))

    from lossguard.harness.app.jobs import prepare

    try:
        prepared, selection = prepare(job)
    except Exception as exc:  # the target itself is the problem: a usage error for the user
        emit({"event": "target_error", "message": str(exc)})
        return
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
    for index, (impl, name, device, dtype) in enumerate(runs):
        if index < job["skip"]:
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
