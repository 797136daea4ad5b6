"""How much a failure matters: its severity class, computed from the numbers of the failure, never from its words.

The classes, most severe first (``SEVERITIES``):

* ``crash``: the implementation raised, returned no loss, was not differentiable, or its process died or hung
  where the contract expects a result (status ``error``);
* ``nan-inf``: a NaN or an infinity where the exact value is finite (or unknown: a property that asks only for a
  finite result, ``finite``);
* ``wrong``: a finite value whose departure from the exact one exceeds ``WRONG`` (a relative 1e-3) of the
  value's scale, or a property violated without a number to weigh (an input mutated, an identity broken, an
  output of the wrong shape);
* ``validation-gap``: invalid input accepted where the contract asks for an exception (``invalid_input``);
* ``imprecise``: beyond the attainable error (the tolerance policy's ulps) but within ``WRONG`` of the scale:
  correct to three digits, less accurate than the dtype allows;
* ``convention``: the implementation follows a diagnosed variant of the contract (a reduction normaliser, a
  per-class output, a detached term, ...; ``PropertyResult.convention``), not a defect.

The value's scale of an element is the largest of its exact magnitude, the error scale of its computation
(``lossguard.reference._core``: the magnitude of the terms before cancellation) and the dtype's unit roundoff
u_D. So a departure is weighed against the size of what was computed, not against a result that cancelled to
nearly nothing: a loss of 1e-3 returned as 1.2e-3 is ``wrong``, a loss of 1.0 off in its 5th digit is
``imprecise``. The floor u_D is the resolution at which a loss of order one is represented in D: a departure
below it vanishes once the value is added to such a loss (a training objective's sum), so a float32 loss of
1.8e-35 returned as 0 (the ulps are huge, 9e15) is ``imprecise``, while its NaN gradient at an ordinary input
is ``nan-inf``.

``--fail-on LEVEL`` fails the exit status on results at or above LEVEL (``DEFAULT_FAIL_ON``: everything but
``imprecise`` and ``convention``). An ``xpass`` (a recorded finding that no longer reproduces) always fails: it
is a record to update, not a departure to weigh.
"""

from __future__ import annotations

import math

from lossguard.harness.kernel import tolerance
from lossguard.harness.kernel.model import PropertyResult

SEVERITIES = ("crash", "nan-inf", "wrong", "validation-gap", "imprecise", "convention")
DEFAULT_FAIL_ON = "validation-gap"
WRONG = 1e-3  # relative departure, of the value's scale, beyond which a finite result is wrong, not imprecise
VALIDATION_PROPERTY = "invalid_input"


def departure(result: PropertyResult) -> float | None:
    """The failing element's departure relative to the value's scale (None: no finite numbers to weigh; inf: a
    non-finite result where a finite one was due)."""
    actual, expected, scale = result.actual, result.expected, result.scale
    if actual is None:
        return None
    if not math.isfinite(actual):
        return math.inf if expected is None or math.isfinite(expected) else None
    if expected is None or not math.isfinite(expected):
        return None
    size = max(abs(expected), abs(scale) if scale is not None and math.isfinite(scale) else 0.0)
    return abs(actual - expected) / max(size, tolerance.roundoff(result.dtype))


def classify(result: PropertyResult) -> str:
    """The severity of a ``fail``, ``error`` or ``xfail`` (its recorded departure, as observed on the witness);
    "" for every other status."""
    if result.status not in ("fail", "error", "xfail"):
        return ""
    if result.convention:
        return "convention"
    if result.status == "error":
        return "crash"
    if result.property == VALIDATION_PROPERTY:
        return "validation-gap"
    weight = departure(result)
    if weight is None:
        return "wrong"
    if math.isinf(weight):
        return "nan-inf" if result.actual is not None and not math.isfinite(result.actual) else "wrong"
    return "wrong" if weight > WRONG else "imprecise"


def fails_gate(result: PropertyResult, fail_on: str = DEFAULT_FAIL_ON) -> bool:
    """Whether ``result`` fails the exit status under ``--fail-on fail_on``: a ``fail`` or ``error`` whose
    severity is at or above it (an error, lossguard's own included, is a crash: at every level), and every
    ``xpass``."""
    if result.status == "xpass":
        return True
    if result.status not in ("fail", "error"):
        return False
    severity = result.severity or classify(result)
    return SEVERITIES.index(severity) <= SEVERITIES.index(fail_on)
