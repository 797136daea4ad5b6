"""Deliberately wrong loss implementations: each property must catch the one planted for it.

Every function here has the canonical signature of the loss it pretends to be and exactly one
defect (named in its docstring, with the property and sub-check it proves), so a property that does
not fail on it is itself defective. Numeric defects are small: a relative bias of a few tens of units
of roundoff u of the dtype judged (``_biased``), so that loosening a tolerance or a scale by 4x lets them
escape (tests/test_weakenings.py); the others are the smallest departure that is still wrong.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from lossguard.catalog import spec


def _reduce(loss: torch.Tensor, reduction: str) -> torch.Tensor:
    return loss.mean() if reduction == "mean" else loss.sum() if reduction == "sum" else loss


def _u(x: torch.Tensor) -> float:
    """Unit roundoff of ``x``'s dtype (2^-53 for float64, 2^-24 for float32)."""
    return torch.finfo(x.dtype).eps / 2


def _biased(x: torch.Tensor, ulps: float = 32) -> torch.Tensor:
    """``x`` times (1 + ulps u): a relative error of ``ulps`` units of roundoff of its dtype."""
    return x * (1 + ulps * _u(x))


def _numpy(value):
    """A tensor as the float64 reference takes it (floating tensors in float64, integer ones as they are)."""
    if not isinstance(value, torch.Tensor):
        return value
    value = value.detach().cpu()
    return (value.double() if value.is_floating_point() else value).numpy()


def _scale(loss: str, like: torch.Tensor, argument: str | None = None, **call) -> torch.Tensor:
    """The error scale the properties judge ``loss`` with on this call (its float64 reference's), for the value
    or for the gradient of ``argument``: planted biases of 32 u of it are 32 units of roundoff of what is judged,
    whatever the scale's size relative to the value."""
    reference = spec(loss).reference
    arrays = {name: _numpy(value) for name, value in call.items()}
    scale = reference.error_scale(**arrays) if argument is None else reference.grad(**arrays)[argument].scale
    return torch.as_tensor(scale, dtype=like.dtype, device=like.device)


def _value_bias(loss: str, value: torch.Tensor, ulps: float = 32, **call) -> torch.Tensor:
    """``value`` plus ``ulps`` u of its scale (its gradient untouched)."""
    return value + (ulps * _u(value) * _scale(loss, value, **call)).detach()


def _gradient_bias(loss: str, value: torch.Tensor, argument: str, ulps: float = 32, **call) -> torch.Tensor:
    """``value`` unchanged (x b - x b is exactly 0), its gradient in ``argument`` plus ``ulps`` u of that
    gradient's scale."""
    x = call[argument]
    tilt = (x * (ulps * _u(x) * _scale(loss, x, argument, **call))).sum()
    return value + (tilt - tilt.detach())


def mse_wrong_dtype(input, target, reduction="mean"):
    """Returns float64 for a float32 input (agreement, dtype)."""
    return F.mse_loss(input, target, reduction=reduction).double()


def mse_wrong_shape(input, target, reduction="mean"):
    """A reduced loss of shape (1,) instead of () (agreement, shape)."""
    loss = F.mse_loss(input, target, reduction=reduction)
    return loss.reshape(1) if reduction != "none" else loss


def ce_biased(input, target, weight=None, ignore_index=-100, reduction="mean", label_smoothing=0.0):
    """Cross-entropy times (1 + 32 u) (agreement, value)."""
    return _biased(
        F.cross_entropy(
            input,
            target,
            weight=weight,
            ignore_index=ignore_index,
            reduction=reduction,
            label_smoothing=label_smoothing,
        )
    )


def huber_wrong_threshold(input, target, reduction="mean", delta=1.0):
    """Switches from quadratic to linear at 1.5 delta (agreement)."""
    return F.huber_loss(input, target, reduction=reduction, delta=delta * 1.5)


class _ScaledGradient(torch.autograd.Function):
    """Identity forward; backward multiplies the incoming gradient by a wrong factor."""

    @staticmethod
    def forward(ctx, x, factor):
        ctx.factor = factor
        return x.view_as(x)

    @staticmethod
    def backward(ctx, grad):
        return grad * ctx.factor, None


class _ScaledTail(torch.autograd.Function):
    """Identity forward; backward multiplies the gradient of every element but the first by (1 + 32 u)."""

    @staticmethod
    def forward(ctx, x):
        return x.view_as(x)

    @staticmethod
    def backward(ctx, grad):
        factor = torch.full_like(grad, 1 + 32 * _u(grad))
        factor.view(-1)[:1] = 1.0
        return grad * factor


def mse_wrong_input_gradient(input, target, reduction="mean"):
    """Right value; d loss / d input times (1 + 32 u) on every element but the first (gradient, first_argument)."""
    return F.mse_loss(_ScaledTail.apply(input), target, reduction=reduction)


def mse_wrong_target_gradient(input, target, reduction="mean"):
    """Right value; d loss / d target times (1 + 32 u) (gradient, other_arguments)."""
    return F.mse_loss(input, _ScaledGradient.apply(target, 1 + 32 * _u(target)), reduction=reduction)


def log_cosh_shifted(input, target, reduction="mean"):
    """log cosh(e) - 1e-3: negative near e = 0 (non_negative, zero_at_perfect)."""
    e = input - target
    return _reduce(e.abs() + F.softplus(-2 * e.abs()) - torch.log(torch.tensor(2.0, dtype=e.dtype)) - 1e-3, reduction)


def mse_offset(input, target, reduction="mean"):
    """mse + 24 times the dtype's smallest normal: not exactly zero at a perfect prediction (zero_at_perfect,
    at_perfect: the scale there is 0, the tolerance 8 smallest normals)."""
    return _reduce((input - target) ** 2 + 24 * torch.finfo(input.dtype).tiny, reduction)


def ce_clamped_probability(input, target, weight=None, ignore_index=-100, reduction="mean", label_smoothing=0.0):
    """-log(min(p, 0.9)): stops decreasing once the right class is sure (zero_at_perfect, limit)."""
    log_p = torch.log_softmax(input, dim=1 if input.dim() > 1 else 0).clamp(max=torch.log(torch.tensor(0.9)).item())
    return F.nll_loss(log_p, target, weight=weight, ignore_index=ignore_index, reduction=reduction)


def ce_rises_before_sure(input, target, weight=None, ignore_index=-100, reduction="mean", label_smoothing=0.0):
    """For class-index targets, w_y (-log(0.9) + (p - 0.9)) instead of -w_y log(p) while 0.9 <= p < 0.99 for the
    right class's probability p: the loss rises on the way to a sure prediction, and is right once sure
    (zero_at_perfect, monotone)."""
    loss = F.cross_entropy(
        input, target, weight=weight, ignore_index=ignore_index, reduction="none", label_smoothing=label_smoothing
    )
    if target.is_floating_point() or label_smoothing:
        return _reduce(loss, reduction)
    dim = 1 if input.dim() > 1 else 0
    safe = target.clamp(min=0)
    log_p = torch.log_softmax(input, dim=dim)
    chosen = log_p.gather(dim, safe.unsqueeze(dim)).squeeze(dim) if input.dim() > 1 else log_p[safe]
    p = chosen.exp()
    w = weight[safe] if weight is not None else torch.ones_like(p)
    window = (p >= 0.9) & (p < 0.99) & (target != ignore_index)
    loss = torch.where(window, w * (-math.log(0.9) + (p - 0.9) + chosen) + loss, loss)
    return _reduce(loss, reduction)


def mse_sum_biased(input, target, reduction="mean"):
    """'sum' times (1 + 32 n u), 32 units of roundoff of its scale (n sum of the n squares, Higham's summation
    bound), and 'mean' consistently its sum / n: only 'sum' departs from 'none' (reduction, sum)."""
    loss = (input - target) ** 2
    if reduction == "none":
        return loss
    total = _biased(loss.sum(), 32 * loss.numel())
    return total / loss.numel() if reduction == "mean" else total


def mse_mean_biased(input, target, reduction="mean"):
    """'mean' times (1 + 32 (n + 1) u), 32 units of roundoff of its scale ((n + 1) times the mean of n squares)
    (reduction, mean)."""
    loss = F.mse_loss(input, target, reduction=reduction)
    return _biased(loss, 32 * (input.numel() + 1)) if reduction == "mean" else loss


def mse_batch_coupled(input, target, reduction="mean"):
    """Each row's loss times (1 + 32 u) when it shares its batch with other rows (batch)."""
    loss = (input - target) ** 2
    return _reduce(_biased(loss) if input.dim() and input.shape[0] > 1 else loss, reduction)


class _NaiveValueExactGradient(torch.autograd.Function):
    """BCE with logits from log(sigmoid(z)) and log(1 - sigmoid(z)); backward the exact sigmoid(z) - y."""

    @staticmethod
    def forward(ctx, z, y):
        ctx.save_for_backward(z, y)
        p = torch.sigmoid(z)
        return -(y * torch.log(p) + (1 - y) * torch.log(1 - p))

    @staticmethod
    def backward(ctx, grad):
        z, y = ctx.saved_tensors
        return grad * (torch.sigmoid(z) - y), grad * -z


def bce_logits_value_overflows(input, target, weight=None, reduction="mean", pos_weight=None):
    """log(sigmoid(z)) and log(1 - sigmoid(z)) in the value only: infinite at |z| ~ 1e2 in float32, the gradient
    finite and exact (stability, value)."""
    if weight is not None or pos_weight is not None:
        return F.binary_cross_entropy_with_logits(
            input, target, weight=weight, reduction=reduction, pos_weight=pos_weight
        )
    return _reduce(_NaiveValueExactGradient.apply(input, target), reduction)


def bce_logits_naive(input, target, weight=None, reduction="mean", pos_weight=None):
    """log(sigmoid(z)) and log(1 - sigmoid(z)): infinite at |z| ~ 1e2 in float32 (stability)."""
    p = torch.sigmoid(input)
    return _reduce(-(target * torch.log(p) + (1 - target) * torch.log(1 - p)), reduction)


class _SigmoidByExp(torch.autograd.Function):
    """BCE with logits whose backward computes sigmoid(z) as exp(z) / (1 + exp(z)): NaN where exp(z) overflows."""

    @staticmethod
    def forward(ctx, z, y):
        ctx.save_for_backward(z, y)
        return F.binary_cross_entropy_with_logits(z, y, reduction="none")

    @staticmethod
    def backward(ctx, grad):
        z, y = ctx.saved_tensors
        return grad * (torch.exp(z) / (1 + torch.exp(z)) - y), grad * -z


def bce_logits_gradient_overflows(input, target, weight=None, reduction="mean", pos_weight=None):
    """Right value; d loss / d input is NaN for logits above log(max) (~88.7 in float32), where exp(z) overflows
    (stability, gradient)."""
    if pos_weight is not None:  # another gradient form; the defect is planted where pos_weight is None
        return F.binary_cross_entropy_with_logits(
            input, target, weight=weight, reduction=reduction, pos_weight=pos_weight
        )
    loss = _SigmoidByExp.apply(input, target)
    return _reduce(loss if weight is None else loss * weight, reduction)


def mse_mutating(input, target, reduction="mean"):
    """Zeroes its target in place after computing the loss (immutability)."""
    loss = F.mse_loss(input, target, reduction=reduction)
    target.data.zero_()
    return loss


def quantile_unchecked(input, target, tau=0.5, reduction="mean"):
    """No validation: broadcasts mismatched shapes, accepts tau outside (0, 1) (invalid_input)."""
    r = target - input
    return _reduce(torch.maximum(tau * r, (tau - 1) * r), reduction)


def quantile_silent_message(input, target, tau=0.5, reduction="mean"):
    """Validates its arguments, but raises with an empty message (invalid_input, message)."""
    if input.shape != target.shape or not 0 < tau < 1 or reduction not in ("none", "mean", "sum"):
        raise ValueError("")
    r = target - input
    return _reduce(torch.maximum(tau * r, (tau - 1) * r), reduction)


def mse_changes_default_dtype(input, target, reduction="mean"):
    """Sets the default dtype as a side effect (global state, seen by every property)."""
    torch.set_default_dtype(torch.float64)
    return F.mse_loss(input, target, reduction=reduction)


def huber_quadratic_biased(input, target, reduction="mean", delta=1.0):
    """The quadratic zone (|e| <= delta) times (1 + 32 u) (huber_limits, quadratic)."""
    loss = F.huber_loss(input, target, reduction="none", delta=delta)
    return _reduce(torch.where((input - target).abs() <= delta, _biased(loss), loss), reduction)


def huber_linear_biased(input, target, reduction="mean", delta=1.0):
    """The linear zone (|e| > delta) times (1 - 32 u): just below delta (|e| - delta / 2), the least the limit
    delta -> 0 allows (huber_limits, linear)."""
    loss = F.huber_loss(input, target, reduction="none", delta=delta)
    return _reduce(torch.where((input - target).abs() > delta, _biased(loss, -32), loss), reduction)


def smooth_l1_as_huber(input, target, reduction="mean", beta=1.0):
    """Forgets the 1 / beta: smooth_l1 computed as huber(delta=beta) (huber_smooth_l1)."""
    if beta == 0:
        return F.l1_loss(input, target, reduction=reduction)
    return F.huber_loss(input, target, reduction=reduction, delta=beta)


def quantile_doubled(input, target, tau=0.5, reduction="mean"):
    """The pinball loss times (1 + 32 u) at tau = 0.5 (quantile_median)."""
    r = target - input
    loss = torch.maximum(tau * r, (tau - 1) * r)
    return _reduce(_biased(loss) if tau == 0.5 else loss, reduction)


def ce_smoothing_eps_over_c_minus_1(
    input, target, weight=None, ignore_index=-100, reduction="mean", label_smoothing=0.0
):
    """The eps/(C-1) label-smoothing variant instead of the canonical eps/C (label_smoothing)."""
    dim = 1 if input.dim() > 1 else 0
    n_classes = input.shape[dim]
    log_p = torch.log_softmax(input, dim=dim)
    onehot = F.one_hot(target.clamp(min=0), n_classes).movedim(-1, dim).to(input.dtype)
    smoothed = (1 - label_smoothing) * onehot + label_smoothing / (n_classes - 1) * (1 - onehot)
    loss = -(smoothed * log_p).sum(dim) * (target != ignore_index)
    return _reduce(loss, reduction)


def ce_smoothing_biased(input, target, weight=None, ignore_index=-100, reduction="mean", label_smoothing=0.0):
    """Cross-entropy times (1 + 32 u) when label_smoothing > 0 (label_smoothing, decomposition)."""
    loss = F.cross_entropy(
        input, target, weight=weight, ignore_index=ignore_index, reduction=reduction, label_smoothing=label_smoothing
    )
    return _biased(loss) if label_smoothing > 0 else loss


def ce_smoothing_ignored_when_sure(
    input, target, weight=None, ignore_index=-100, reduction="mean", label_smoothing=0.0
):
    """Ignores label_smoothing < 0.3 where the right class's probability exceeds 0.999: the loss does not grow with
    eps there (label_smoothing, grows)."""
    dim = 1 if input.dim() > 1 else 0
    p = torch.softmax(input, dim=dim)
    sure = bool(torch.all(p.gather(dim, target.clamp(min=0).unsqueeze(dim)) > 0.999)) if input.dim() > 1 else False
    if not target.is_floating_point() and input.dim() == 1:
        sure = bool(p[target] > 0.999)
    eps = 0.0 if sure and label_smoothing < 0.3 else label_smoothing
    return F.cross_entropy(
        input, target, weight=weight, ignore_index=ignore_index, reduction=reduction, label_smoothing=eps
    )


class _SmoothedCE(torch.autograd.Function):
    """Summed label-smoothed CE whose backward smooths with eps - 0.2 instead of eps."""

    @staticmethod
    def forward(ctx, z, target, eps):
        ctx.save_for_backward(z, target)
        ctx.eps = eps
        return F.cross_entropy(z, target, reduction="sum", label_smoothing=eps)

    @staticmethod
    def backward(ctx, grad):
        z, target = ctx.saved_tensors
        dim = 1 if z.dim() > 1 else 0
        n_classes = z.shape[dim]
        eps = max(ctx.eps - 0.2, 0.0)
        onehot = F.one_hot(target, n_classes).movedim(-1, dim).to(z.dtype)
        smoothed = (1 - eps) * onehot + eps / n_classes
        return grad * (torch.softmax(z, dim) - smoothed), None, None


def ce_smoothing_gradient_behind(input, target, weight=None, ignore_index=-100, reduction="mean", label_smoothing=0.0):
    """Right value; for a summed, unweighted CE with label smoothing the gradient smooths by eps - 0.2: at the
    eps-minimiser under eps + 0.1 descent moves away from uniform (label_smoothing, minimiser)."""
    plain = reduction != "sum" or weight is not None or target.is_floating_point() or label_smoothing == 0
    if plain or bool(torch.any(target == ignore_index)):
        return F.cross_entropy(
            input,
            target,
            weight=weight,
            ignore_index=ignore_index,
            reduction=reduction,
            label_smoothing=label_smoothing,
        )
    return _SmoothedCE.apply(input, target, label_smoothing)


def ce_not_shift_invariant(input, target, weight=None, ignore_index=-100, reduction="mean", label_smoothing=0.0):
    """Adds 1e-3 times the mean logit (shift_invariance)."""
    dim = 1 if input.dim() > 1 else 0
    ce = F.cross_entropy(
        input, target, weight=weight, ignore_index=ignore_index, reduction="none", label_smoothing=label_smoothing
    )
    return _reduce(ce + 1e-3 * input.mean(dim), reduction)


class _SoftmaxMinusOnehot(torch.autograd.Function):
    """Mean CE whose backward forgets the 1 / N of the mean."""

    @staticmethod
    def forward(ctx, z, target):
        ctx.save_for_backward(z, target)
        return F.cross_entropy(z, target)

    @staticmethod
    def backward(ctx, grad):
        z, target = ctx.saved_tensors
        dim = 1 if z.dim() > 1 else 0
        return grad * (torch.softmax(z, dim) - F.one_hot(target, z.shape[dim]).movedim(-1, dim)), None


def ce_gradient_not_averaged(input, target, weight=None, ignore_index=-100, reduction="mean", label_smoothing=0.0):
    """Right value; the gradient is softmax - onehot without the 1/N of the mean (softmax_gradient; large, kept
    for the structural defect: tests/test_properties_catch_bugs.py uses ce_gradient_biased)."""
    if reduction != "mean" or weight is not None or label_smoothing or target.is_floating_point():
        return F.cross_entropy(
            input,
            target,
            weight=weight,
            ignore_index=ignore_index,
            reduction=reduction,
            label_smoothing=label_smoothing,
        )
    return _SoftmaxMinusOnehot.apply(input, target)


def ce_gradient_biased(input, target, weight=None, ignore_index=-100, reduction="mean", label_smoothing=0.0):
    """Right value; d CE / d logits times (1 + 32 u) (softmax_gradient)."""
    return F.cross_entropy(
        _ScaledGradient.apply(input, 1 + 32 * _u(input)),
        target,
        weight=weight,
        ignore_index=ignore_index,
        reduction=reduction,
        label_smoothing=label_smoothing,
    )


class _SigmoidGradientOff(torch.autograd.Function):
    """Identity in z; backward adds 32 u (sigmoid(z) + |y| + 1) / n to the gradient: 32 units of roundoff of the
    scale of (sigmoid(z) - y) / n, the terms it subtracts."""

    @staticmethod
    def forward(ctx, z, y, n):
        ctx.save_for_backward(z, y)
        ctx.n = n
        return z.view_as(z)

    @staticmethod
    def backward(ctx, grad):
        z, y = ctx.saved_tensors
        return grad + 32 * _u(z) * (torch.sigmoid(z) + y.abs() + 1) / ctx.n, None, None


def bce_logits_gradient_doubled(input, target, weight=None, reduction="mean", pos_weight=None):
    """Right value; the mean's gradient off by 32 u (sigmoid(z) + |y| + 1) / n, 32 units of roundoff of its scale
    (sigmoid_gradient)."""
    if reduction == "mean" and weight is None and pos_weight is None:
        input = _SigmoidGradientOff.apply(input, target, max(input.numel(), 1))
    return F.binary_cross_entropy_with_logits(input, target, weight=weight, reduction=reduction, pos_weight=pos_weight)


def ce_hardens_soft_targets(input, target, weight=None, ignore_index=-100, reduction="mean", label_smoothing=0.0):
    """Replaces a probability target by its argmax class: not linear in targets (mixup, cross_entropy_kl)."""
    if target.is_floating_point():
        target = target.argmax(dim=1 if input.dim() > 1 else 0)
    return F.cross_entropy(
        input, target, weight=weight, ignore_index=ignore_index, reduction=reduction, label_smoothing=label_smoothing
    )


def kl_without_entropy(input, target, reduction="mean", log_target=False):
    """-t x: forgets the t log t term (cross_entropy_kl, kl_divergence)."""
    t = target.exp() if log_target else target
    return _reduce(-t * input, reduction)


def kl_halved(input, target, reduction="mean", log_target=False):
    """Half the KL divergence: still 0 at p = q, but below Pinsker's bound (kl_divergence, pinsker)."""
    return 0.5 * F.kl_div(input, target, reduction=reduction, log_target=log_target)


def kl_cancels_late(input, target, reduction="mean", log_target=False):
    """KL plus 32 u (|t log t| + |t x|): 32 units of roundoff of the cancelling terms' size, so KL(p || p) is not
    0 (kl_divergence, self_zero)."""
    t = target.exp() if log_target else target
    loss = F.kl_div(input, target, reduction="none", log_target=log_target)
    return _reduce(loss + 32 * _u(input) * ((torch.xlogy(t, t)).abs() + (t * input).abs()), reduction)


def sigmoid_focal_amplifying(input, target, alpha=0.25, gamma=2.0, reduction="mean"):
    """(1 + p_t)^gamma instead of (1 - p_t)^gamma: exceeds cross-entropy (focal_identities)."""
    p = torch.sigmoid(input)
    p_t = p * target + (1 - p) * (1 - target)
    bce = F.binary_cross_entropy_with_logits(input, target, reduction="none")
    a = 1.0 if alpha is None else alpha * target + (1 - alpha) * (1 - target)
    return _reduce(a * (1 + p_t) ** gamma * bce, reduction)


def sigmoid_focal_gamma_zero_biased(input, target, alpha=0.25, gamma=2.0, reduction="mean"):
    """Times (1 - 32 u) at gamma = 0: below BCE by 32 units of roundoff where it should equal it (focal_identities,
    gamma_zero)."""
    p = torch.sigmoid(input)
    p_t = p * target + (1 - p) * (1 - target)
    bce = F.binary_cross_entropy_with_logits(input, target, reduction="none")
    a = 1.0 if alpha is None else alpha * target + (1 - alpha) * (1 - target)
    loss = a * (1 - p_t) ** gamma * bce
    return _reduce(_biased(loss, -32) if gamma == 0 else loss, reduction)


def multilabel_sum_over_labels(input, target, weight=None, reduction="mean"):
    """Sums over the labels instead of averaging (multilabel_mean_bce)."""
    loss = F.binary_cross_entropy_with_logits(input, target, weight=weight, reduction="none").sum(-1)
    return _reduce(loss, reduction)


def mse_as_absolute_error(input, target, reduction="mean"):
    """|q - y| instead of (q - y)^2: the absolute score is not proper (proper_scoring)."""
    return _reduce((input - target).abs(), reduction)


def mse_constant(input, target, reduction="mean"):
    """0 for every report: proper, but not strictly (proper_scoring: the expected losses tie)."""
    return _reduce((input - target) ** 2 * 0, reduction)


def log_cosh_below_zero(input, target, reduction="mean"):
    """log cosh(e) - 32 u (|e| + log 2): 32 units of roundoff of its scale below the exact value, negative near
    e = 0 (non_negative)."""
    e = input - target
    loss = e.abs() + F.softplus(-2 * e.abs()) - math.log(2.0)
    return _reduce(loss - 32 * _u(e) * (e.abs() + math.log(2.0)), reduction)


def ce_shift_dependent(input, target, weight=None, ignore_index=-100, reduction="mean", label_smoothing=0.0):
    """Cross-entropy plus 32 u (|z_y| + |logsumexp(z)|), 32 units of roundoff of its terms, which move with a shift
    of the logits (shift_invariance)."""
    dim = 1 if input.dim() > 1 else 0
    loss = F.cross_entropy(
        input, target, weight=weight, ignore_index=ignore_index, reduction="none", label_smoothing=label_smoothing
    )
    if target.is_floating_point():
        return _reduce(loss, reduction)
    safe = target.clamp(min=0)
    z_y = input.gather(dim, safe.unsqueeze(dim)).squeeze(dim) if input.dim() > 1 else input[safe]
    return _reduce(loss + 32 * _u(input) * (z_y.abs() + torch.logsumexp(input, dim).abs()), reduction)


def smooth_l1_biased(input, target, reduction="mean", beta=1.0):
    """smooth_l1 times (1 + 32 u) (huber_smooth_l1)."""
    return _biased(F.smooth_l1_loss(input, target, reduction=reduction, beta=beta))


def multilabel_biased(input, target, weight=None, reduction="mean"):
    """multilabel_soft_margin times (1 + 32 u) (multilabel_mean_bce)."""
    return _biased(F.multilabel_soft_margin_loss(input, target, weight=weight, reduction=reduction))


def mse_rows_sorted(input, target, reduction="mean"):
    """reduction='none' returns the per-row losses sorted (a top-k style gather that loses the batch order; right
    for a single row, and for 'mean' and 'sum') (batch)."""
    loss = F.mse_loss(input, target, reduction=reduction)
    return loss.flatten().sort().values.reshape(loss.shape) if reduction == "none" and loss.dim() else loss
