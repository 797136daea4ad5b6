"""A hook around every call of the judged code, for whoever runs it to guard.

The framework bindings decorate their ``call`` (the implementation's forward, its global-state and input checks,
and its backward) with ``guarded``. By default the guard does nothing; the isolation worker installs a watchdog
(``lossguard.harness.app.watchdog``) that ends the worker when one call runs past the per-call time limit. The
kernel only offers the hook: what guards a call is the application's business.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext
from typing import Any, TypeVar

F = TypeVar("F", bound=Callable[..., Any])

_guard: Callable[[], AbstractContextManager[Any]] = nullcontext


def install(guard: Callable[[], AbstractContextManager[Any]]) -> None:
    """Make ``guard()`` the context every guarded call runs in (``nullcontext`` to remove it)."""
    global _guard
    _guard = guard


def guarded(method: F) -> F:
    """``method`` run inside the installed guard (a call of the judged code)."""

    @functools.wraps(method)
    def call(*args: Any, **kwargs: Any) -> Any:
        with _guard():
            return method(*args, **kwargs)

    return call  # type: ignore[return-value]
