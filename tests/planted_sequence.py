"""Deliberately wrong sequence losses: each family property must catch the one planted for it.

Every function has the canonical signature of the loss it pretends to be and exactly one defect,
named in its docstring; everything else is lossguard's own (correct) implementation.
"""

from __future__ import annotations

import torch

from lossguard.implementations.own.sequence import linear_cross_entropy, sequence_cross_entropy

from planted import _gradient_bias, _value_bias


def seq_ce_smoothing_over_ignored(logits, target, ignore_index=-100, label_smoothing=0.0):
    """The label-smoothing term -eps mean_c log p_c is summed over every token, ignored ones included
    (the mean still divides by the non-ignored count): the value depends on ignored logits (ignored_tokens)."""
    valid = target != ignore_index
    log_p = torch.log_softmax(logits, dim=-1)
    index = torch.where(valid, target, torch.zeros_like(target)).unsqueeze(-1)
    nll = torch.where(valid, -log_p.gather(-1, index).squeeze(-1), torch.zeros_like(log_p[..., 0]))
    smooth = -log_p.mean(dim=-1)
    return ((1.0 - label_smoothing) * nll + label_smoothing * smooth).sum() / valid.sum()


def _mean_of_exp_perplexity(logits, target, ignore_index=-100, label_smoothing=0.0):
    """Mean over non-ignored tokens of exp(per-token CE): exponentiates before averaging."""
    valid = target != ignore_index
    log_p = torch.log_softmax(logits, dim=-1)
    index = torch.where(valid, target, torch.zeros_like(target)).unsqueeze(-1)
    per_token = -(1.0 - label_smoothing) * log_p.gather(-1, index).squeeze(-1) - label_smoothing * log_p.mean(-1)
    return torch.where(valid, per_token.exp(), torch.zeros_like(per_token)).sum() / valid.sum()


def seq_ce_perplexity_mean_of_exp(logits, target, ignore_index=-100, label_smoothing=0.0):
    """The loss is right; its ``perplexity`` is mean_i exp(l_i) instead of exp(mean_i l_i) (perplexity)."""
    return sequence_cross_entropy(logits, target, ignore_index, label_smoothing)


seq_ce_perplexity_mean_of_exp.perplexity = _mean_of_exp_perplexity  # type: ignore[attr-defined]


def linear_ce_gradient_from_ignored(hidden, weight, target, bias=None, ignore_index=-100, reduction="mean"):
    """Right value, but the backward does not mask ignored tokens: their softmax - onehot(0) rows flow
    into d hidden and d weight (a straight-through term l_i - detach(l_i) of value 0) (ignored_tokens)."""
    loss = linear_cross_entropy(hidden, weight, target, bias=bias, ignore_index=ignore_index, reduction=reduction)
    ignored = target == ignore_index
    logits = hidden @ weight.T + (0.0 if bias is None else bias)
    leak = torch.logsumexp(logits, dim=-1) - logits[:, 0]
    leak = torch.where(ignored, leak - leak.detach(), torch.zeros_like(leak)).sum()
    return loss + leak


def linear_ce_online_lse_not_rescaled(
    hidden, weight, target, bias=None, ignore_index=-100, reduction="mean", chunk_size=4096
):
    """Chunked over the vocabulary with an online logsumexp that never rescales its running sum when the
    maximum grows (s += sum exp(z - m_new) instead of s exp(m_old - m_new) + ...): right with one chunk,
    wrong whenever a later chunk holds a larger logit (linear_materialised)."""
    n_classes = weight.shape[0]
    valid = target != ignore_index
    index = torch.where(valid, target, torch.zeros_like(target))
    m = torch.full(hidden.shape[:1], -torch.inf, dtype=hidden.dtype)
    s = torch.zeros(hidden.shape[:1], dtype=hidden.dtype)
    picked = torch.zeros(hidden.shape[:1], dtype=hidden.dtype)
    for first in range(0, n_classes, chunk_size):
        z = hidden @ weight[first : first + chunk_size].T
        if bias is not None:
            z = z + bias[first : first + chunk_size]
        m = torch.maximum(m, z.max(dim=1).values)
        s = s + torch.exp(z - m[:, None]).sum(dim=1)
        inside = (index >= first) & (index < first + z.shape[1])
        local = torch.where(inside, index - first, torch.zeros_like(index))
        picked = torch.where(inside, z.gather(1, local[:, None]).squeeze(1), picked)
    losses = torch.where(valid, m + torch.log(s) - picked, torch.zeros_like(m))
    if reduction == "none":
        return losses
    return losses.sum() if reduction == "sum" else losses.sum() / valid.sum()


class _GradientSwayed(torch.autograd.Function):
    """Identity on the logits; backward scales the gradient by (1 + 128 u) when ``swayed``: 32 units of roundoff of
    the doubled scale the comparison of two calls allows where the true class's (1 - p) / N is at least half its
    scale (p(1 + |z| + |lse| + C) + 1) / N."""

    @staticmethod
    def forward(ctx, logits, swayed):
        ctx.swayed = swayed
        return logits.view_as(logits)

    @staticmethod
    def backward(ctx, grad):
        return grad * (1 + 128 * torch.finfo(grad.dtype).eps / 2) if ctx.swayed else grad, None


def seq_ce_gradient_swayed_by_ignored(logits, target, ignore_index=-100, label_smoothing=0.0):
    """Right value and exactly 0 at ignored tokens, but the other tokens' gradient is (1 + 128 u) times the true one
    when ignore_index is negative but not the default -100 (ignored_tokens, other_gradients)."""
    swayed = _GradientSwayed.apply(logits, ignore_index < 0 and ignore_index != -100)
    return sequence_cross_entropy(swayed, target, ignore_index, label_smoothing)


def seq_ce_ignored_gradient_leaks(logits, target, ignore_index=-100, label_smoothing=0.0):
    """Right value and right gradients elsewhere, but d loss / d logits at ignored tokens is u times the logits
    (a term u (x_i^2 / 2 - detach(x_i^2 / 2)) of value 0): not exactly 0 (ignored_tokens, zero_gradient)."""
    loss = sequence_cross_entropy(logits, target, ignore_index, label_smoothing)
    ignored = (target == ignore_index).unsqueeze(-1)
    half_square = torch.where(ignored, logits.square() / 2, torch.zeros_like(logits))
    u = torch.finfo(logits.dtype).eps / 2
    return loss + u * (half_square - half_square.detach()).sum()


def seq_ce_value_swayed_by_ignored(logits, target, ignore_index=-100, label_smoothing=0.0):
    """The loss plus 64 u of its scale when ignore_index is negative but not the default -100: about 32 units of
    roundoff of the two calls' summed scale that the property judges with; the gradient untouched (ignored_tokens,
    value)."""
    loss = sequence_cross_entropy(logits, target, ignore_index, label_smoothing)
    if not (ignore_index < 0 and ignore_index != -100):
        return loss
    call = {"logits": logits, "target": target, "ignore_index": ignore_index, "label_smoothing": label_smoothing}
    return _value_bias("sequence_cross_entropy", loss, 64, **call)


def linear_ce_weight_gradient_biased(hidden, weight, target, bias=None, ignore_index=-100, reduction="mean"):
    """The right value; d loss / d weight plus 32 u of its scale (linear_materialised, gradient)."""
    call = {"hidden": hidden, "weight": weight, "target": target, "bias": bias, "ignore_index": ignore_index}
    loss = linear_cross_entropy(**call, reduction=reduction)
    return _gradient_bias("linear_cross_entropy", loss, "weight", **call, reduction=reduction)


def linear_ce_value_biased(hidden, weight, target, bias=None, ignore_index=-100, reduction="mean"):
    """The loss plus 32 u of its scale, every gradient right (linear_materialised, value)."""
    call = {"hidden": hidden, "weight": weight, "target": target, "bias": bias, "ignore_index": ignore_index}
    loss = linear_cross_entropy(**call, reduction=reduction)
    return _value_bias("linear_cross_entropy", loss, **call, reduction=reduction)
