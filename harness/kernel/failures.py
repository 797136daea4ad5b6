"""Why a property did not hold: the exceptions a check raises, each mapped to a result status.

``fail``: the implementation computed something the property forbids (a wrong value, a
mutated input, a changed global state). ``error``: the implementation did not produce a
judgeable result where it must (it raised, returned a non-tensor, was not differentiable,
timed out or killed its process). Both are the judged code's doing, never lossguard's.
"""

from __future__ import annotations


class Failure(Exception):
    """Base class: the judged implementation broke a property. ``check``: the id of the property's sub-check
    that failed (None: the property's only check, or a failure of the call itself)."""

    status = "fail"
    check: str | None = None


class PropertyFailure(Failure):
    """A property's assertion did not hold; the message says what was expected and what came out, ``check``
    which of the property's sub-checks it was.

    ``actual``, ``expected``, ``scale``: the numbers of the first failing element where the property compared
    numbers (``Subject.expect_close``: the implementation's value, the exact value, the error scale of its
    computation; ``expected`` None where no exact value is known): the severity of the failure is computed from
    them (``lossguard.harness.kernel.severity``), never parsed from the message."""

    def __init__(
        self,
        message: str,
        check: str | None = None,
        actual: float | None = None,
        expected: float | None = None,
        scale: float | None = None,
    ):
        super().__init__(message)
        self.check = check
        self.actual, self.expected, self.scale = actual, expected, scale


class InputMutated(Failure):
    """The call modified one of its inputs in place."""


class GlobalStateChanged(Failure):
    """The call changed process-wide state (default dtype, grad mode, threads, RNG, ...)."""


def _first_line(exc: BaseException) -> str:
    """The first line of an exception's message ('' for an empty one)."""
    text = str(exc).strip()
    return text.splitlines()[0] if text else ""


class ImplementationRaised(Failure):
    """The implementation raised where the contract expects a result."""

    status = "error"

    def __init__(self, exc: BaseException):
        self.original = exc
        super().__init__(f"raised {type(exc).__name__}: {_first_line(exc)}")


class WrongOutput(Failure):
    """The implementation returned something that is not a tensor of the loss."""

    status = "error"


class PropertyCrashed(Failure):
    """lossguard's own property code raised on this implementation's results (a defect of lossguard, never a
    verdict on the implementation): reported as an ``error`` that says so, never as a crash of the run."""

    status = "error"

    def __init__(self, property_name: str, exc: BaseException):
        self.original = exc
        super().__init__(
            f"harness problem, not a verdict on the implementation: property {property_name!r} raised "
            f"{type(exc).__name__}: {_first_line(exc)} (please report it to lossguard)"
        )


class NotDifferentiable(Failure):
    """The output does not depend differentiably on an argument the contract makes differentiable."""

    status = "error"
