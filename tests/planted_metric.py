"""Deliberately wrong metric-learning losses: each family property must catch the one planted for it.

Every function has the canonical signature of the loss it pretends to be and exactly one defect,
named in its docstring (the property that catches it in parentheses).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from lossguard.implementations.own import metric as own

from planted import _gradient_bias, _value_bias


def _reduce(loss: torch.Tensor, reduction: str) -> torch.Tensor:
    return loss.mean() if reduction == "mean" else loss.sum() if reduction == "sum" else loss


def contrastive_norm_difference(x1, x2, label, margin=1.0, reduction="mean"):
    """d = | ||x1|| - ||x2|| | instead of ||x1 - x2||: rotation-invariant, not translation-invariant
    (translation_invariance)."""
    d = (torch.linalg.vector_norm(x1, dim=-1) - torch.linalg.vector_norm(x2, dim=-1)).abs()
    return _reduce(label * d * d + (1 - label) * torch.clamp(margin - d, min=0.0) ** 2, reduction)


def contrastive_l1_distance(x1, x2, label, margin=1.0, reduction="mean"):
    """d = ||x1 - x2||_1 instead of the euclidean distance: translation-invariant, not rotation-invariant
    (rotation_invariance)."""
    d = (x1 - x2).abs().sum(dim=-1)
    return _reduce(label * d * d + (1 - label) * torch.clamp(margin - d, min=0.0) ** 2, reduction)


def contrastive_unsquared(x1, x2, label, margin=1.0, reduction="mean"):
    """The reference variant squared=False done right, label d + (1 - label) max(0, margin - d): the correct
    implementation its planted bugs are judged beside (no defect)."""
    d = torch.linalg.vector_norm(x1 - x2, dim=-1)
    return _reduce(label * d + (1 - label) * torch.clamp(margin - d, min=0.0), reduction)


def contrastive_unsquared_biased(x1, x2, label, margin=1.0, reduction="mean"):
    """squared=False plus 32 u of its error scale (agreement, value)."""
    call = {"x1": x1, "x2": x2, "label": label, "margin": margin, "reduction": reduction, "squared": False}
    return _value_bias("contrastive_loss", contrastive_unsquared(x1, x2, label, margin, reduction), **call)


def contrastive_unsquared_tilted(x1, x2, label, margin=1.0, reduction="mean"):
    """squared=False, its gradient in x1 off by 32 u of that gradient's error scale (gradient, first_argument)."""
    call = {"x1": x1, "x2": x2, "label": label, "margin": margin, "reduction": reduction, "squared": False}
    return _gradient_bias("contrastive_loss", contrastive_unsquared(x1, x2, label, margin, reduction), "x1", **call)


def triplet_soft_margin(anchor, positive, negative, margin=1.0, p=2.0, eps=1e-6, swap=False, reduction="mean"):
    """softplus(d(a, p) - d(a, n) + margin) instead of the hinge: never 0 when the margin is met (margin_met)."""
    d_ap = F.pairwise_distance(anchor, positive, p, eps)
    d_an = F.pairwise_distance(anchor, negative, p, eps)
    if swap:
        d_an = torch.minimum(d_an, F.pairwise_distance(positive, negative, p, eps))
    return _reduce(F.softplus(d_ap - d_an + margin), reduction)


def info_nce_without_positive(query, positive_key, negative_keys, temperature=0.07, normalize=True, reduction="mean"):
    """The denominator sums over the negatives only (logsumexp over M, not M + 1 candidates): log M at equal
    similarities (uniform_similarity)."""
    if normalize:
        query, positive_key, negative_keys = (F.normalize(x, dim=-1) for x in (query, positive_key, negative_keys))
    positive = (query * positive_key).sum(-1) / temperature
    negatives = (negative_keys * query[:, None, :]).sum(-1) / temperature
    return _reduce(torch.logsumexp(negatives, dim=1) - positive, reduction)


def info_nce_query_unnormalized(query, positive_key, negative_keys, temperature=0.07, normalize=True, reduction="mean"):
    """normalize=True normalises the keys but not the query: not invariant to rescaling it (scale_invariance)."""
    if normalize:
        positive_key, negative_keys = F.normalize(positive_key, dim=-1), F.normalize(negative_keys, dim=-1)
    return own.info_nce_loss(query, positive_key, negative_keys, temperature, normalize=False, reduction=reduction)


def cosine_embedding_l1_norms(input1, input2, target, margin=0.0, reduction="mean"):
    """cos = x1 . x2 / (||x1||_1 ||x2||_1): the L1 norms are not rotation-invariant (rotation_invariance)."""
    cos = (input1 * input2).sum(-1) / (input1.abs().sum(-1) * input2.abs().sum(-1)).clamp_min(1e-12)
    loss = torch.where(target == 1, 1 - cos, torch.clamp(cos - margin, min=0.0))
    return _reduce(loss, reduction)


def nt_xent_including_self(z_i, z_j, temperature=0.5):
    """Each anchor's denominator includes itself (exp(1 / temperature)): 2N candidates, not 2N - 1
    (excludes_self)."""
    z = F.normalize(torch.cat([z_i, z_j]), dim=-1)
    n = z_i.shape[0]
    sim = z @ z.T / temperature
    partner = (torch.arange(2 * n) + n) % (2 * n)
    return (torch.logsumexp(sim, dim=1) - sim[torch.arange(2 * n), partner]).mean()


def batch_hard_easiest_positive(embeddings, labels, margin=1.0):
    """Mines the nearest positive (min) instead of the farthest (hardest_pair)."""
    d = torch.cdist(embeddings, embeddings)
    same = labels[:, None] == labels[None, :]
    positive = same & ~torch.eye(len(labels), dtype=torch.bool)
    negative = ~same
    valid = positive.any(1) & negative.any(1)
    inf = torch.full_like(d, float("inf"))
    easiest = torch.where(positive, d, inf).amin(1)
    hardest_neg = torch.where(negative, d, inf).amin(1)
    loss = torch.where(valid, torch.clamp(easiest - hardest_neg + margin, min=0.0), torch.zeros_like(easiest))
    return loss.sum() / valid.sum().clamp(min=1)


def pairwise_logistic_log_sigmoid(chosen, rejected, reduction="mean"):
    """-log(sigmoid(chosen - rejected)): sigmoid underflows to 0 at a difference of -1e4, the loss is inf
    (softplus_identity)."""
    return _reduce(-torch.log(torch.sigmoid(chosen - rejected)), reduction)
