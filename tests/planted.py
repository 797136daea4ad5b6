"""Deliberately wrong loss implementations: each property must catch the one planted for it.

Every function here has the canonical signature of the loss it pretends to be and exactly one
defect (named in its docstring), so a property that does not fail on it is itself defective.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def _reduce(loss: torch.Tensor, reduction: str) -> torch.Tensor:
    return loss.mean() if reduction == "mean" else loss.sum() if reduction == "sum" else loss


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


def mse_wrong_gradient(input, target, reduction="mean"):
    """Right value, gradient 0.95 times the true one (gradient)."""
    return F.mse_loss(_ScaledGradient.apply(input, 0.95), target, reduction=reduction)


def log_cosh_shifted(input, target, reduction="mean"):
    """log cosh(e) - 1e-3: negative near e = 0 (non_negative, zero_at_perfect)."""
    e = input - target
    return _reduce(e.abs() + F.softplus(-2 * e.abs()) - torch.log(torch.tensor(2.0, dtype=e.dtype)) - 1e-3, reduction)


def mse_offset(input, target, reduction="mean"):
    """mse + 1e-3: not zero at a perfect prediction (zero_at_perfect)."""
    return _reduce((input - target) ** 2 + 1e-3, reduction)


def ce_clamped_probability(input, target, weight=None, ignore_index=-100, reduction="mean", label_smoothing=0.0):
    """-log(min(p, 0.9)): stops decreasing once the right class is sure (zero_at_perfect, limit)."""
    log_p = torch.log_softmax(input, dim=1 if input.dim() > 1 else 0).clamp(max=torch.log(torch.tensor(0.9)).item())
    return F.nll_loss(log_p, target, weight=weight, ignore_index=ignore_index, reduction=reduction)


def mse_mean_off_by_one(input, target, reduction="mean"):
    """'mean' divides the sum by n + 1 (reduction)."""
    loss = (input - target) ** 2
    return loss.sum() / (loss.numel() + 1) if reduction == "mean" else _reduce(loss, reduction)


def mse_batch_coupled(input, target, reduction="mean"):
    """Centres the input over the batch: each row's loss depends on the others (batch)."""
    centred = input - input.mean(dim=0, keepdim=True) + input[:1].detach()
    return _reduce((centred - target) ** 2, reduction)


def bce_logits_naive(input, target, weight=None, reduction="mean", pos_weight=None):
    """log(sigmoid(z)) and log(1 - sigmoid(z)): infinite at |z| ~ 1e2 in float32 (stability)."""
    p = torch.sigmoid(input)
    return _reduce(-(target * torch.log(p) + (1 - target) * torch.log(1 - p)), reduction)


def mse_mutating(input, target, reduction="mean"):
    """Zeroes its target in place after computing the loss (immutability)."""
    loss = F.mse_loss(input, target, reduction=reduction)
    target.data.zero_()
    return loss


def quantile_unchecked(input, target, tau=0.5, reduction="mean"):
    """No validation: broadcasts mismatched shapes, accepts tau outside (0, 1) (invalid_input)."""
    r = target - input
    return _reduce(torch.maximum(tau * r, (tau - 1) * r), reduction)


def mse_changes_default_dtype(input, target, reduction="mean"):
    """Sets the default dtype as a side effect (global state, seen by every property)."""
    torch.set_default_dtype(torch.float64)
    return F.mse_loss(input, target, reduction=reduction)


def huber_capped_delta(input, target, reduction="mean", delta=1.0):
    """Caps delta at 2: no longer quadratic for large delta (huber_limits)."""
    return F.huber_loss(input, target, reduction=reduction, delta=min(delta, 2.0))


def smooth_l1_as_huber(input, target, reduction="mean", beta=1.0):
    """Forgets the 1 / beta: smooth_l1 computed as huber(delta=beta) (huber_smooth_l1)."""
    if beta == 0:
        return F.l1_loss(input, target, reduction=reduction)
    return F.huber_loss(input, target, reduction=reduction, delta=beta)


def quantile_doubled(input, target, tau=0.5, reduction="mean"):
    """Twice the pinball loss: tau = 0.5 gives |r|, not 0.5 |r| (quantile_median)."""
    r = target - input
    return _reduce(2 * torch.maximum(tau * r, (tau - 1) * r), reduction)


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
    """Right value; the gradient is softmax - onehot without the 1/N of the mean (softmax_gradient)."""
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


def bce_logits_gradient_doubled(input, target, weight=None, reduction="mean", pos_weight=None):
    """Right value; gradient twice sigmoid(z) - y (sigmoid_gradient)."""
    return F.binary_cross_entropy_with_logits(
        _ScaledGradient.apply(input, 2.0), target, weight=weight, reduction=reduction, pos_weight=pos_weight
    )


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


def sigmoid_focal_amplifying(input, target, alpha=0.25, gamma=2.0, reduction="mean"):
    """(1 + p_t)^gamma instead of (1 - p_t)^gamma: exceeds cross-entropy (focal_identities)."""
    p = torch.sigmoid(input)
    p_t = p * target + (1 - p) * (1 - target)
    bce = F.binary_cross_entropy_with_logits(input, target, reduction="none")
    a = 1.0 if alpha is None else alpha * target + (1 - alpha) * (1 - target)
    return _reduce(a * (1 + p_t) ** gamma * bce, reduction)


def multilabel_sum_over_labels(input, target, weight=None, reduction="mean"):
    """Sums over the labels instead of averaging (multilabel_mean_bce)."""
    loss = F.binary_cross_entropy_with_logits(input, target, weight=weight, reduction="none").sum(-1)
    return _reduce(loss, reduction)


def mse_as_absolute_error(input, target, reduction="mean"):
    """|q - y| instead of (q - y)^2: the absolute score is not proper (proper_scoring)."""
    return _reduce((input - target).abs(), reduction)
