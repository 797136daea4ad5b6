"""The project's own PyTorch implementations of regression losses missing from ``torch.nn.functional``.

All functions take ``input`` (a floating-point tensor of any shape) and ``target`` (a tensor of exactly the
same shape; it is converted to ``input``'s dtype, no broadcasting), compute elementwise in ``input``'s dtype
and reduce with ``reduction`` in ``'none' | 'mean' | 'sum'`` (``'none'`` keeps the shape of ``input``).
Arguments are validated before anything is computed; see :mod:`lossguard.implementations.own._checks` for the error
conventions.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch

from ._checks import (
    Reduction,
    check_floating_tensor,
    check_nonnegative,
    check_open_interval,
    check_reduction,
    check_same_shape,
    reduce,
)

__all__ = ["asymmetric_mse_loss", "log_cosh_loss", "quantile_loss", "tweedie_loss"]

_LOG2 = math.log(2.0)


def _prepare(input: torch.Tensor, target: torch.Tensor, reduction: str, fn: str) -> torch.Tensor:
    """Validate the common arguments; return ``target`` in ``input``'s dtype and device."""
    check_floating_tensor(input, fn, "input")
    check_same_shape(input, target, fn)
    check_reduction(reduction, fn)
    return target.to(dtype=input.dtype, device=input.device)


def log_cosh_loss(input: torch.Tensor, target: torch.Tensor, reduction: Reduction = "mean") -> torch.Tensor:
    r"""Log-cosh loss, :math:`\ell = \log\cosh(e)` with :math:`e = \text{input} - \text{target}`.

    Evaluated with the numerically stable identity (valid for all real :math:`e`, :math:`a = |e|`)

    .. math:: \log\cosh e = a + \operatorname{softplus}(-2a) - \log 2,

    which never overflows (``e = 1e4`` gives ``1e4 - log 2`` in every dtype in which ``1e4`` is finite).
    For :math:`a < 1` the equivalent form :math:`\log\cosh e = \operatorname{log1p}(2\sinh^2(a/2))` is used
    instead, because the identity above cancels catastrophically near 0 (where
    :math:`\log\cosh e \approx e^2/2`); both branches have derivative :math:`\tanh(e)`.  The loss is finite
    for every finite :math:`e`, behaves like :math:`e^2/2` near 0 and like :math:`|e| - \log 2` for large
    :math:`|e|`.

    Args:
        input: predictions, floating-point tensor of any shape ``(*)``.
        target: targets, same shape ``(*)`` as ``input``.
        reduction: ``'none'`` (shape ``(*)``) | ``'mean'`` | ``'sum'`` (scalar).

    Returns:
        The reduced loss in ``input``'s dtype.

    Raises:
        ValueError: shapes differ or ``reduction`` is unknown.
        TypeError: ``input`` is not a floating-point tensor.

    References:
        The stable identity follows from
        :math:`\cosh e = \tfrac{1}{2} e^{|e|} (1 + e^{-2|e|})`; see e.g. the log-cosh loss in
        TensorFlow/Keras (``tf.keras.losses.log_cosh``) which uses the same rewrite.
    """
    fn = "log_cosh_loss"
    target = _prepare(input, target, reduction, fn)
    return reduce(_LogCosh.apply(input, target), reduction, fn)


class _LogCosh(torch.autograd.Function):
    """Element-wise log cosh(input - target) (the two branches of ``log_cosh_loss``), with the analytic backward
    d/d input = tanh(e) = -d/d target; saves e only."""

    @staticmethod
    def forward(ctx, input: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        e = input - target
        a = e.abs()
        # |e| < 1: log1p(2 sinh(a/2)^2) = log1p(m^2 / (2 (1 + m))), m = expm1(a): exact near 0 (sinh and where are
        # scalar loops on the CPU, ~10x slower); each branch's argument is clamped to its side of 1 so that both
        # stay finite where not selected, and the 0/1 weights select exactly (x * 1 + y * 0 = x).
        m = a.clamp(max=1.0).expm1_()
        near_zero = m.square().div_(m.add_(1.0).mul_(2.0)).log1p_()
        # |e| >= 1: the overflow-free identity a + softplus(-2a) - log 2 = a + log1p(exp(-2a)) - log 2
        b = a.clamp(min=1.0)
        far = (-2.0 * b).exp_().log1p_().add_(b).sub_(_LOG2)
        small = (a < 1.0).to(a.dtype)
        ctx.save_for_backward(e)
        return far.mul_(1.0 - small).addcmul_(near_zero, small)

    @staticmethod
    def backward(ctx, grad: torch.Tensor):
        (e,) = ctx.saved_tensors
        d = e.tanh().mul_(grad)
        return d if ctx.needs_input_grad[0] else None, -d if ctx.needs_input_grad[1] else None


def quantile_loss(
    input: torch.Tensor, target: torch.Tensor, tau: float = 0.5, reduction: Reduction = "mean"
) -> torch.Tensor:
    r"""Quantile (pinball / check) loss.

    With residual :math:`r = \text{target} - \text{input}`,

    .. math:: \ell_\tau(r) = \max(\tau r, (\tau - 1) r)
              = \begin{cases} \tau r & r \ge 0 \\ (\tau - 1) r & r < 0, \end{cases}

    whose expected value is minimised by the :math:`\tau`-quantile of the target distribution
    (:math:`\tau = 0.5` gives half the absolute error).  At the kink :math:`r = 0` autograd returns the
    subgradient :math:`(1 - 2\tau)/2` with respect to ``input``.

    Args:
        input: predicted quantiles, floating-point tensor of shape ``(*)``.
        target: observations, same shape ``(*)``.
        tau: quantile level, :math:`0 < \tau < 1`.
        reduction: ``'none'`` (shape ``(*)``) | ``'mean'`` | ``'sum'``.

    Raises:
        ValueError: shapes differ, ``tau`` not in ``(0, 1)``, or ``reduction`` unknown.

    References:
        R. Koenker and G. Bassett (1978), "Regression Quantiles", Econometrica 46(1), 33-50.
    """
    fn = "quantile_loss"
    target = _prepare(input, target, reduction, fn)
    tau = check_open_interval(tau, 0.0, 1.0, fn, "tau")
    r = target - input
    loss = torch.maximum(tau * r, (tau - 1.0) * r)
    return reduce(loss, reduction, fn)


def tweedie_loss(
    input: torch.Tensor, target: torch.Tensor, power: float = 1.5, reduction: Reduction = "mean"
) -> torch.Tensor:
    r"""Tweedie negative log-likelihood (up to terms independent of the prediction), log-link form.

    ``input`` is the log-mean :math:`\eta = \log\mu`; with power :math:`p`,

    .. math:: \ell = -\frac{y\, e^{(1-p)\eta}}{1-p} + \frac{e^{(2-p)\eta}}{2-p},

    which is the unit Tweedie deviance :math:`d(y, \mu)/2` minus a term depending on :math:`y` only (so it
    may be negative); it is minimised over :math:`\eta` at :math:`\mu = e^\eta = y`.  For :math:`y \ge 0`
    both terms are non-negative, so there is no cancellation.  Where ``target == 0`` the first term is
    exactly 0 even if :math:`e^{(1-p)\eta}` overflows (very negative :math:`\eta`), and for a small
    target it is computed as :math:`e^{\log y + (1-p)\eta}` there.  Where the exact loss exceeds the dtype's
    range it overflows.  Target values are not checked
    (the Tweedie model needs :math:`y \ge 0`).

    Args:
        input: log-mean predictions :math:`\eta`, floating-point tensor of shape ``(*)``.
        target: observations :math:`y \ge 0`, same shape ``(*)``.
        power: Tweedie power :math:`p`, :math:`1 < p < 2` (compound Poisson-Gamma).
        reduction: ``'none'`` (shape ``(*)``) | ``'mean'`` | ``'sum'``.

    Raises:
        ValueError: shapes differ, ``power`` not in ``(1, 2)``, or ``reduction`` unknown.

    References:
        B. Jørgensen (1987), "Exponential Dispersion Models", J. R. Stat. Soc. B 49(2), 127-162;
        M. C. K. Tweedie (1984), "An index which distinguishes between some important exponential
        families".  Same objective as LightGBM/XGBoost ``tweedie`` and
        ``sklearn.metrics.mean_tweedie_deviance`` (up to a target-only term and a factor 2).
    """
    fn = "tweedie_loss"
    target = _prepare(input, target, reduction, fn)
    p = check_open_interval(power, 1.0, 2.0, fn, "power")
    exponent1 = (1.0 - p) * input
    # target exp(exponent1) is finite far beyond where exp(exponent1) alone overflows (a small target, very
    # negative eta): there it is exp(log target + exponent1). Each branch only sees exponents it can take, so
    # neither value nor gradient meets inf * 0; where target == 0 the term is exactly 0.
    big = exponent1 > math.log(torch.finfo(input.dtype).max) - 1.0
    via_log = big & (target > 0)
    log_target = torch.log(torch.where(via_log, target, torch.ones_like(target)))
    first = torch.where(
        via_log,
        torch.exp(torch.where(via_log, log_target + exponent1, torch.zeros_like(exponent1))),
        target * torch.exp(torch.where(big, torch.zeros_like(exponent1), exponent1)),
    )
    loss = first / (p - 1.0) + torch.exp((2.0 - p) * input) / (2.0 - p)
    return reduce(loss, reduction, fn)


def asymmetric_mse_loss(
    input: torch.Tensor, target: torch.Tensor, over_penalty: float = 2.0, reduction: Reduction = "mean"
) -> torch.Tensor:
    r"""Asymmetric squared error that weights over-prediction differently from under-prediction.

    With :math:`e = \text{input} - \text{target}`,

    .. math:: \ell = \begin{cases} w\, e^2 & e > 0 \ \text{(over-prediction)} \\ e^2 & e \le 0, \end{cases}

    where :math:`w` is ``over_penalty``; :math:`w = 1` gives the ordinary squared error.  Continuous with a
    continuous derivative (both sides vanish at :math:`e = 0`).

    Args:
        input: predictions, floating-point tensor of shape ``(*)``.
        target: targets, same shape ``(*)``.
        over_penalty: weight :math:`w` of over-predictions, a finite number :math:`\ge 0`.
        reduction: ``'none'`` (shape ``(*)``) | ``'mean'`` | ``'sum'``.

    Raises:
        ValueError: shapes differ, ``over_penalty`` negative or not finite, or ``reduction`` unknown.

    References:
        An asymmetric (weighted) quadratic loss in the sense of Varian (1975) / Newey and Powell (1987)
        "Asymmetric Least Squares Estimation and Testing" (expectile loss with weights
        :math:`w/(1+w)` and :math:`1/(1+w)`, up to the factor :math:`1+w`).
    """
    fn = "asymmetric_mse_loss"
    target = _prepare(input, target, reduction, fn)
    w = check_nonnegative(over_penalty, fn, "over_penalty")
    e = input - target
    sq = e.square()
    loss = torch.where(e > 0, w * sq, sq)
    return reduce(loss, reduction, fn)


OWN: dict[str, Callable] = {
    "log_cosh_loss": log_cosh_loss,
    "quantile_loss": quantile_loss,
    "tweedie_loss": tweedie_loss,
    "asymmetric_mse_loss": asymmetric_mse_loss,
}
