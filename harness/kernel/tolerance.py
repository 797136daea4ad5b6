"""The tolerance policy: how far an implementation in dtype D may be from the float64 reference.

For an output element with reference value ``r`` and error scale ``s`` (the magnitude of the
terms of the computation before cancellation, reduction growth included: see
``lossguard.reference._core``), an implementation computing in dtype D with unit roundoff ``u_D`` is
allowed

    |impl - r| <= K * (u_D * s + tiny_D) + K_ref * u_64 * s

* ``K`` ("a few units"): the loss's catalog entry states it (``LossSpec.ulps``, default 8): the
  handful of roundings each element's evaluation chains (subtract, square or exp, log,
  multiply by a weight, divide by the normaliser), each contributing at most ``u_D`` relative
  to the scale. The scale already carries the condition of the cancelling steps.
* ``tiny_D``: the smallest normal number of D. Results that underflow (exp(-200) in float32,
  a gradient of 1e-40) are correct to within the subnormal spacing, not relative to ``s``.
* ``K_ref * u_64 * s`` is the reference's own error (``tests/reference`` checks the references
  against mpmath at 50 digits: they meet a few ulps of float64, K_ref = 8 covers them); it
  matters only when D is float64 itself.

The achieved error is reported in units of ``u_D * s`` ("ulps of the computation's scale"), so a
result near zero does not inflate it and implementations can be compared by accuracy.
Gradients are judged the same way with the gradient's own scale.

A scale of +inf (the error analysis' own terms overflow float64: InfoNCE's d/dtemperature carries
``|logit|^2``, beyond 1.8e308 for logits of 1e201) bounds nothing: such an element is not judged
(``Comparison.judgeable``), neither passed nor failed, and a property that judged only such elements is a
``skip`` (``Subject.expect_close``). Treating it as a scale of 0 demanded exactness and was a false alarm.
A NaN scale keeps the rule for NaN values: only the identical non-finite value agrees.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

REFERENCE_ULPS = 8.0

# unit roundoff u = 2^-p (half the machine epsilon) and smallest normal, per dtype
_ROUNDOFF = {
    "float64": (2.0**-53, float(np.finfo(np.float64).tiny)),
    "float32": (2.0**-24, float(np.finfo(np.float32).tiny)),
    "float16": (2.0**-11, float(np.finfo(np.float16).tiny)),
    "bfloat16": (2.0**-8, 2.0**-126),
}
_MAX = {
    "float64": float(np.finfo(np.float64).max),
    "float32": float(np.finfo(np.float32).max),
    "float16": float(np.finfo(np.float16).max),
    "bfloat16": 3.3895313892515355e38,
}


def roundoff(dtype: str) -> float:
    """Unit roundoff of ``dtype`` (2^-53 for float64, 2^-24 for float32, ...)."""
    return _ROUNDOFF[dtype][0]


def largest(dtype: str) -> float:
    """Largest finite value of ``dtype``."""
    return _MAX[dtype]


def smallest_normal(dtype: str) -> float:
    """Smallest positive normal value of ``dtype``."""
    return _ROUNDOFF[dtype][1]


@dataclass(frozen=True)
class Comparison:
    """Element-wise comparison of an implementation's output with the reference."""

    ulps: np.ndarray  # achieved error in units of u_D * scale (0 where both agree exactly, or not judgeable)
    allowed: np.ndarray  # the absolute bound per element (inf where not judgeable)
    error: np.ndarray  # |impl - ref|, inf where one is non-finite and the other is not
    judgeable: np.ndarray  # False where the scale is +inf: the error analysis bounds nothing there

    @property
    def worst(self) -> float:
        return float(np.max(self.ulps, initial=0.0))

    @property
    def failing(self) -> np.ndarray:
        return self.error > self.allowed

    @property
    def ok(self) -> bool:
        return not bool(np.any(self.failing))


def compare(actual: np.ndarray, expected: np.ndarray, scale: np.ndarray, dtype: str, ulps: float) -> Comparison:
    """Compare ``actual`` (in dtype D, as float64) with the float64 ``expected``.

    Non-finite values agree only with the identical non-finite value (NaN with NaN, +inf with
    +inf): a loss that returns NaN where the exact value is NaN (a mean over nothing) is right.
    """
    actual = np.asarray(actual, dtype=np.float64)
    expected = np.asarray(expected, dtype=np.float64)
    actual, expected, scale = np.broadcast_arrays(actual, expected, np.asarray(scale, dtype=np.float64))
    u, tiny = _ROUNDOFF[dtype]
    judgeable = ~np.isposinf(scale)
    finite_scale = np.where(np.isfinite(scale), scale, 0.0)
    unit = u * finite_scale + tiny
    allowed = np.where(judgeable, ulps * unit + REFERENCE_ULPS * _ROUNDOFF["float64"][0] * finite_scale, np.inf)
    both_finite = np.isfinite(actual) & np.isfinite(expected)
    same_special = (np.isnan(actual) & np.isnan(expected)) | (
        np.isinf(actual) & np.isinf(expected) & (np.sign(actual) == np.sign(expected))
    )
    with np.errstate(invalid="ignore", over="ignore"):
        error = np.where(both_finite, np.abs(actual - expected), np.where(same_special, 0.0, np.inf))
        achieved = np.where(judgeable, np.where(np.isfinite(error), error / unit, np.inf), 0.0)
    return Comparison(achieved, allowed, error, judgeable)


def representable(values: np.ndarray, dtype: str) -> np.ndarray:
    """Elements whose exact value is finite and representable in ``dtype`` (the stability domain)."""
    values = np.asarray(values, dtype=np.float64)
    return np.isfinite(values) & (np.abs(values) <= largest(dtype))
