"""The isolation worker's per-call time limit: a hung call of the judged code ends the worker, at once.

A Python exception cannot interrupt a call stuck in C code (a sleep, a lock, a kernel), so the watchdog does not
raise: a daemon thread watches the call in progress (``call``, installed around every call of the judged code by
``lossguard.harness.kernel.watch``) and, when one has run ``limit`` seconds, reports where it is (``report``, a
line of the isolation protocol) and ends the process with ``os._exit``. The parent then gives that implementation's
remaining cells the same ``error`` (``lossguard.harness.app.isolation``).

A thread needs the interpreter lock to run, and C code that never releases it (a busy loop in an extension) would
starve the watchdog. For that case the thread keeps ``faulthandler``'s timer (a C thread that needs no lock) set
``STARVED_FACTOR`` limits ahead: if the watchdog cannot run that long, the timer writes the stack to the protocol
stream (``Timeout (...)!`` and a traceback, parsed by ``where_from_dump``) and exits the process.
"""

from __future__ import annotations

import faulthandler
import os
import re
import sys
import threading
import time
from collections.abc import Callable

EXIT_HUNG = 124  # the exit status of a worker ended by the watchdog (timeout(1)'s)
STARVED_FACTOR = 2  # faulthandler's timer: this many limits without the watchdog running


class Watchdog:
    """Ends the process when a ``call`` block has run ``limit`` seconds; ``report(where)`` is called first, with
    the file, line and function the call was in (``FILE:LINE in FUNCTION``)."""

    def __init__(self, limit: float, report: Callable[[str], None], dump_to: int) -> None:
        self.limit = limit
        self._report = report
        self._dump_to = dump_to  # the file descriptor faulthandler's timer writes to
        self._started: float | None = None  # when the call in progress began (monotonic), None between calls
        self._depth = 0  # calls in progress (nested ones included)
        self._thread = threading.main_thread()  # the thread whose calls are watched
        threading.Thread(target=self._watch, name="lossguard-watchdog", daemon=True).start()

    def call(self) -> Watchdog:
        """The context of one call of the judged code (a nested call counts as part of the outer one)."""
        return self

    def __enter__(self) -> None:
        self._depth += 1
        if self._depth == 1:
            self._started = time.monotonic()

    def __exit__(self, *exc_info: object) -> None:
        self._depth -= 1
        if not self._depth:
            self._started = None

    def _watch(self) -> None:
        while True:
            faulthandler.dump_traceback_later(STARVED_FACTOR * self.limit, exit=True, file=self._dump_to)
            started = self._started
            elapsed = 0.0 if started is None else time.monotonic() - started
            if started is not None and elapsed >= self.limit and self._started == started:
                self._report(self._where())
                os._exit(EXIT_HUNG)
            time.sleep(max(0.01, min(self.limit - elapsed, self.limit / 2)))

    def _where(self) -> str:
        frame = sys._current_frames().get(self._thread.ident)  # the innermost Python frame of the stuck call
        if frame is None:
            return ""
        code = frame.f_code
        return f"{code.co_filename}:{frame.f_lineno} in {code.co_name}"


DUMP_HEADER = "Timeout ("  # the first line faulthandler's timer writes
_FRAME = re.compile(r'^\s+File "(?P<file>.*)", line (?P<line>\d+) in (?P<function>.*)$')


def where_from_dump(lines: list[str]) -> str:
    """``FILE:LINE in FUNCTION`` of the stuck call in faulthandler's dump ``lines``: the innermost frame of the main
    thread (the one thread whose outermost frame is not ``threading``'s bootstrap), or '' when none is found."""
    blocks: list[list[str]] = []
    for line in lines:
        if line.startswith("Thread "):
            blocks.append([])
        elif blocks and (found := _FRAME.match(line)):
            blocks[-1].append(f"{found['file']}:{found['line']} in {found['function']}")
    main = [frames for frames in blocks if frames and not frames[-1].endswith(" in _bootstrap")]
    return main[0][0] if main else ""
