"""Child processes die with lossguard: a CI job's timeout, Ctrl-C or SIGTERM leaves no worker behind.

Three ties, each enough alone:

- the child asks the kernel to kill it when its parent goes (``die_with_parent``: Linux's
  ``prctl(PR_SET_PDEATHSIG, SIGKILL)``, then a check that the parent did not go before that was set);
- the isolation worker ends when its stdin reaches end of file (``exit_on_eof``): the parent holds the pipe's
  write end open for the worker's life, and the kernel closes it when the parent dies, however it dies;
- the parent kills the process group of every live worker when it is asked to stop (``watch`` installs handlers
  of SIGTERM and SIGINT that do so and then behave as the handlers they replaced), and when the call that waits
  on a worker leaves early (``reaped``).

Used by the isolation worker (``lossguard.harness.app.isolation``) and, as their initializer, by the process pools
of ``check --jobs N``.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
from typing import Any

PARENT = "LOSSGUARD_PARENT_PID"  # in an isolation worker's environment: the pid of the lossguard that started it
EXIT_ORPHANED = 125  # the exit status of a child whose parent went first
PR_SET_PDEATHSIG = 1  # <linux/prctl.h>

_live: dict[int, subprocess.Popen] = {}  # pid -> worker whose process group goes with lossguard
_replaced: dict[int, Any] = {}  # signal -> the handler ours replaced


def die_with_parent(parent: int) -> None:
    """Be killed (SIGKILL) when the process ``parent`` ends; exit at once if it has ended already.

    A no-op where ``prctl`` does not exist (not Linux); the isolation worker's stdin ties it there too."""
    if not sys.platform.startswith("linux"):
        return
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0) != 0:
        return  # refused (a sandbox): the other ties remain
    if os.getppid() != parent:  # the parent went before the request was made: no signal will come
        os._exit(EXIT_ORPHANED)


def exit_on_eof(fd: int) -> None:
    """End this process (``os._exit``) when ``fd``, the read end of a pipe from the parent, reaches end of file.

    A daemon thread waits on it, so the process ends even while its main thread is stuck in the judged code
    (which releases the interpreter lock to wait, as a sleep or a blocking call does)."""

    def wait() -> None:
        while os.read(fd, 65536):
            pass
        os._exit(EXIT_ORPHANED)

    threading.Thread(target=wait, name="lossguard-lifeline", daemon=True).start()


def watch(process: subprocess.Popen) -> None:
    """Kill ``process``'s group (it leads its own session) if lossguard is asked to stop (SIGTERM, SIGINT)
    while it runs. Handlers are installed from the main thread only (Python's rule); elsewhere the other ties
    remain."""
    for pid in [pid for pid, known in list(_live.items()) if known.returncode is not None]:
        _live.pop(pid, None)
    _live[process.pid] = process
    if threading.current_thread() is not threading.main_thread():
        return
    for signum in (signal.SIGTERM, signal.SIGINT):
        current = signal.getsignal(signum)
        if current is not _on_signal and current not in (signal.SIG_IGN, None):
            _replaced[signum] = current
            signal.signal(signum, _on_signal)


@contextlib.contextmanager
def reaped(process: subprocess.Popen) -> Iterator[subprocess.Popen]:
    """``process`` watched while the block runs; on leaving it (an exception included), its group is killed if it
    still runs, it is waited for, and its stdin closed."""
    watch(process)
    try:
        yield process
    finally:
        kill(process)
        _live.pop(process.pid, None)


def kill(process: subprocess.Popen) -> None:
    """Kill ``process``'s group unless it has been waited for (its pid may then belong to another), and wait."""
    if process.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait()
    if process.stdin is not None:
        with contextlib.suppress(OSError):
            process.stdin.close()


def _on_signal(signum: int, frame: Any) -> None:
    for process in list(_live.values()):
        if process.returncode is None:  # not waited for: the pid is still the worker's (or its zombie's)
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
    previous = _replaced.get(signum, signal.SIG_DFL)
    if callable(previous):
        previous(signum, frame)  # Python's SIGINT handler raises KeyboardInterrupt; another tool's does its part
        return
    signal.signal(signum, signal.SIG_DFL)  # die of the signal, as without our handler
    os.kill(os.getpid(), signum)
