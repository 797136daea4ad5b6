"""Float64 references of the regression losses (input and target of the same shape).

Each loss returns :class:`Terms` element-wise (``lossguard.reference._core`` reduces them) and registers
its analytic gradient. Error scales: ``e = input - target`` is computed with a relative error
of one rounding (exact subtraction of two floats, rounded once), so a loss that is a smooth
function of ``e`` has the scale of its own terms; cancelling forms are noted where they occur.
"""

from __future__ import annotations

import numpy as np

from lossguard.reference._core import Gradient, Terms, loss_reference, sum_to_shape

LOG2 = float(np.log(2.0))
LOG_2PI = float(np.log(2.0 * np.pi))


def _residual(input: np.ndarray, target: np.ndarray) -> np.ndarray:
    return np.asarray(input, dtype=np.float64) - np.asarray(target, dtype=np.float64)


def _opposite(d_input: Gradient) -> dict[str, Gradient]:
    """Gradients of a function of e = input - target: d/dtarget = -d/dinput."""
    return {"input": d_input, "target": Gradient(-d_input.value, d_input.scale)}


@loss_reference
def mse_loss(input, target, reduction="mean") -> Terms:
    """(input - target)^2 element-wise."""
    e = _residual(input, target)
    return Terms(e * e, e * e)


@mse_loss.gradient("input", "target")
def _mse_grad(input, target, reduction="mean"):
    e = _residual(input, target)
    return _opposite(Gradient(2.0 * e, np.abs(2.0 * e)))


@loss_reference
def l1_loss(input, target, reduction="mean") -> Terms:
    """|input - target| element-wise. Kink at e = 0."""
    e = np.abs(_residual(input, target))
    return Terms(e, e)


@l1_loss.gradient("input", "target")
def _l1_grad(input, target, reduction="mean"):
    e = _residual(input, target)
    return _opposite(Gradient(np.sign(e), np.ones_like(e)))


@loss_reference
def huber_loss(input, target, reduction="mean", delta=1.0) -> Terms:
    """Huber (1964): 0.5 e^2 if |e| <= delta else delta (|e| - 0.5 delta). Kinks at |e| = delta."""
    e = _residual(input, target)
    a = np.abs(e)
    inner = a <= delta
    values = np.where(inner, 0.5 * e * e, delta * (a - 0.5 * delta))
    scale = np.where(inner, 0.5 * e * e, delta * (a + 0.5 * delta))
    return Terms(values, scale)


@huber_loss.gradient("input", "target")
def _huber_grad(input, target, reduction="mean", delta=1.0):
    e = _residual(input, target)
    g = np.where(np.abs(e) <= delta, e, delta * np.sign(e))
    return _opposite(Gradient(g, np.abs(g)))


@loss_reference
def smooth_l1_loss(input, target, reduction="mean", beta=1.0) -> Terms:
    """0.5 e^2 / beta if |e| < beta else |e| - 0.5 beta; beta = 0 is l1_loss. Kinks at |e| = beta."""
    e = _residual(input, target)
    a = np.abs(e)
    if beta == 0:
        return Terms(a, a)
    inner = a < beta
    quadratic = (0.5 * a) * (np.minimum(a, beta) / beta)  # a / beta <= 1 first: no underflow of a * a
    values = np.where(inner, quadratic, a - 0.5 * beta)
    scale = np.where(inner, quadratic, a + 0.5 * beta)
    return Terms(values, scale)


@smooth_l1_loss.gradient("input", "target")
def _smooth_l1_grad(input, target, reduction="mean", beta=1.0):
    e = _residual(input, target)
    g = np.sign(e) if beta == 0 else np.where(np.abs(e) < beta, e / beta, np.sign(e))
    return _opposite(Gradient(g, np.abs(g)))


def log_cosh(e: np.ndarray) -> np.ndarray:
    """log(cosh(e)) to a few ulps for every finite e.

    |e| < 20: log1p(2 sinh(e/2)^2) (cosh e - 1 = 2 sinh^2(e/2), no cancellation near 0);
    otherwise |e| + log1p(exp(-2|e|)) - log 2 (no overflow; |e| >> log 2, no cancellation).
    """
    a = np.abs(e)
    small = a < 20.0
    s = np.sinh(np.where(small, a, 0.0) / 2.0)
    return np.where(small, np.log1p(2.0 * s * s), a + np.log1p(np.exp(-2.0 * a)) - LOG2)


@loss_reference
def log_cosh_loss(input, target, reduction="mean") -> Terms:
    """log(cosh(e)); scale |e| + log 2: the terms of the overflow-free form |e| + softplus(-2|e|) - log 2."""
    e = _residual(input, target)
    return Terms(log_cosh(e), np.abs(e) + LOG2)


@log_cosh_loss.gradient("input", "target")
def _log_cosh_grad(input, target, reduction="mean"):
    e = _residual(input, target)
    return _opposite(Gradient(np.tanh(e), np.ones_like(e)))


@loss_reference
def quantile_loss(input, target, tau=0.5, reduction="mean") -> Terms:
    """Pinball loss (Koenker & Bassett 1978): r = target - input, max(tau r, (tau - 1) r). Kink at r = 0."""
    r = -_residual(input, target)
    return Terms(np.maximum(tau * r, (tau - 1.0) * r), np.abs(r))


@quantile_loss.gradient("input", "target")
def _quantile_grad(input, target, tau=0.5, reduction="mean"):
    r = -_residual(input, target)
    d_input = np.where(r > 0, -tau, 1.0 - tau)
    return _opposite(Gradient(d_input, np.ones_like(r)))


def _stirling(target: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Stirling term t log t - t + 0.5 log(2 pi t) for t > 1, else 0; and its scale."""
    t = np.where(target > 1, target, 1.0)
    on = target > 1
    value = np.where(on, t * np.log(t) - t + 0.5 * np.log(2 * np.pi * t), 0.0)
    scale = np.where(on, np.abs(t * np.log(t)) + t + 0.5 * np.abs(np.log(2 * np.pi * t)), 0.0)
    return value, scale


@loss_reference
def poisson_nll_loss(input, target, log_input=True, full=False, eps=1e-8, reduction="mean") -> Terms:
    """Poisson negative log-likelihood as torch.nn.functional.poisson_nll_loss.

    log_input: exp(input) - target input; else input - target log(input + eps). ``full`` adds the
    Stirling approximation of log(target!) where target > 1. May be negative without ``full``.
    """
    x = np.asarray(input, dtype=np.float64)
    t = np.asarray(target, dtype=np.float64)
    if log_input:
        rate = np.exp(x)
        values, scale = rate - t * x, rate + np.abs(t * x)
    else:
        log_rate = np.log(x + eps)
        values = x - t * log_rate
        scale = np.abs(x) + np.abs(t * log_rate) + np.abs(t)
    if full:
        stirling, stirling_scale = _stirling(t)
        values, scale = values + stirling, scale + stirling_scale
    return Terms(values, scale)


@poisson_nll_loss.gradient("input", "target")
def _poisson_grad(input, target, log_input=True, full=False, eps=1e-8, reduction="mean"):
    x = np.asarray(input, dtype=np.float64)
    t = np.asarray(target, dtype=np.float64)
    if log_input:
        rate = np.exp(x)
        d_input = Gradient(rate - t, rate + np.abs(t))
        d_target, target_scale = -x, np.abs(x)
    else:
        d_input = Gradient(1.0 - t / (x + eps), 1.0 + np.abs(t / (x + eps)))
        d_target = -np.log(x + eps)
        target_scale = np.abs(d_target) + 1.0
    if full:
        tt = np.where(t > 1, t, 1.0)
        extra = np.where(t > 1, np.log(tt) + 0.5 / tt, 0.0)
        d_target, target_scale = d_target + extra, target_scale + np.abs(extra) + 1.0
    return {"input": d_input, "target": Gradient(d_target, target_scale)}


def broadcast_var(input: np.ndarray, var: np.ndarray) -> np.ndarray:
    """torch's broadcasting of var: same shape as input, or input's shape without its last dim."""
    var = np.asarray(var, dtype=np.float64)
    if var.shape != input.shape and var.shape == input.shape[:-1]:
        var = var[..., None]
    return var


@loss_reference
def gaussian_nll_loss(input, target, var, full=False, eps=1e-6, reduction="mean") -> Terms:
    """Gaussian negative log-likelihood as torch.nn.functional.gaussian_nll_loss.

    0.5 (log max(var, eps) + (input - target)^2 / max(var, eps)) [+ 0.5 log(2 pi) when full].
    var may have input's shape, or lack its last dimension, or have size 1 there.
    Negative wherever var < 1 makes the log term dominate.
    """
    x = np.asarray(input, dtype=np.float64)
    e = _residual(x, target)
    v = np.maximum(broadcast_var(x, var), eps)
    quad = e * e / v
    values = 0.5 * (np.log(v) + quad)
    scale = 0.5 * (np.abs(np.log(v)) + quad)
    if full:
        values, scale = values + 0.5 * LOG_2PI, scale + 0.5 * LOG_2PI
    values, scale = np.broadcast_arrays(values, scale)
    return Terms(np.array(values), np.array(scale))


@gaussian_nll_loss.gradient("input", "target", "var")
def _gaussian_grad(input, target, var, full=False, eps=1e-6, reduction="mean"):
    """torch clamps var under no_grad, so d/dvar is the formula's, evaluated at max(var, eps)."""
    x = np.asarray(input, dtype=np.float64)
    e = _residual(x, target)
    v = np.maximum(broadcast_var(x, var), eps)
    d_input = np.broadcast_to(e / v, e.shape)
    d_var = 0.5 * (1.0 / v - e * e / (v * v))
    var_scale = 0.5 * (1.0 / v + e * e / (v * v))
    var_shape, broadcast_shape = np.shape(var), v.shape

    def to_var(a: np.ndarray) -> np.ndarray:
        return sum_to_shape(np.broadcast_to(a, e.shape), broadcast_shape).reshape(var_shape)

    return {**_opposite(Gradient(d_input, np.abs(d_input))), "var": Gradient(to_var(d_var), to_var(var_scale))}


def _tweedie_parts(input, power):
    eta = np.asarray(input, dtype=np.float64)
    a, b = 1.0 - power, 2.0 - power
    return eta, a, b, np.exp(a * eta), np.exp(b * eta)


def _times_exp(t: np.ndarray, exponent: np.ndarray) -> np.ndarray:
    """t exp(exponent) for t >= 0, finite where the product is although exp(exponent) alone overflows:
    exp(log t + exponent) there (its relative error u |log t + exponent| is within the scale's u |exponent|
    plus the rounding of log t)."""
    with np.errstate(divide="ignore", over="ignore", invalid="ignore"):
        direct = t * np.exp(exponent)
        via_log = np.exp(np.log(np.where(t > 0, t, 1.0)) + exponent)
    return np.where(t == 0, 0.0, np.where(np.isfinite(direct), direct, via_log))


@loss_reference
def tweedie_loss(input, target, power=1.5, reduction="mean") -> Terms:
    """Tweedie deviance (Jørgensen 1987) for 1 < p < 2 with log link, input = eta = log mean:
    -target exp((1-p) eta) / (1-p) + exp((2-p) eta) / (2-p). May be negative.

    Scale: each exp(c eta) carries the relative error of c eta, i.e. a factor (1 + |c eta|).
    """
    eta, a, b, _, eb = _tweedie_parts(input, power)
    t = np.asarray(target, dtype=np.float64)
    first, second = -_times_exp(t, a * eta) / a, eb / b  # 0 * exp(overflow) is 0, exactly
    scale = np.abs(first) * (1 + np.abs(a * eta)) + np.abs(second) * (1 + np.abs(b * eta))
    return Terms(first + second, scale)


@tweedie_loss.gradient("input", "target")
def _tweedie_grad(input, target, power=1.5, reduction="mean"):
    eta, a, b, ea, eb = _tweedie_parts(input, power)
    t = np.asarray(target, dtype=np.float64)
    t_ea = _times_exp(t, a * eta)
    d_input = -t_ea + eb
    input_scale = t_ea * (1 + np.abs(a * eta)) + eb * (1 + np.abs(b * eta))
    d_target = np.broadcast_to(-ea / a, t.shape)
    target_scale = np.broadcast_to(np.abs(ea / a) * (1 + np.abs(a * eta)), t.shape)
    return {"input": Gradient(d_input, input_scale), "target": Gradient(d_target, target_scale)}


@loss_reference
def asymmetric_mse_loss(input, target, over_penalty=2.0, reduction="mean") -> Terms:
    """over_penalty e^2 where e = input - target > 0 (over-estimation), else e^2."""
    e = _residual(input, target)
    values = np.where(e > 0, over_penalty, 1.0) * e * e
    return Terms(values, np.abs(values))


@asymmetric_mse_loss.gradient("input", "target")
def _asymmetric_mse_grad(input, target, over_penalty=2.0, reduction="mean"):
    e = _residual(input, target)
    g = 2.0 * np.where(e > 0, over_penalty, 1.0) * e
    return _opposite(Gradient(g, np.abs(g)))
