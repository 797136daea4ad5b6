"""lossguard's own PyTorch implementations of the metric-learning and ranking losses.

Contracts: docs/LOSSES.md, "Metric learning and ranking" (the float64 references in
:mod:`lossguard.reference.metric` implement them). Every loss validates its arguments first (see
:mod:`lossguard.implementations.own._checks` for the error conventions), computes in the input's dtype on its
device, vectorised over the batch. Distances are formed from explicit differences (no
``|a|^2 + |b|^2 - 2 a.b`` cancellation) and their square roots are guarded so that a zero distance
has the subgradient 0 instead of NaN.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F

from ._checks import (
    Reduction,
    check_floating_tensor,
    check_integer_tensor,
    check_nonnegative,
    check_reduction,
    fmt_shape,
    reduce,
    working_dtype,
)

__all__ = ["batch_hard_triplet_loss", "contrastive_loss", "info_nce_loss", "nt_xent_loss", "pairwise_logistic_loss"]


def _safe_norm(diff: torch.Tensor) -> torch.Tensor:
    """||diff|| along the last dim with gradient 0 (not NaN) where it is 0, scaled against overflow."""
    top = diff.detach().abs().amax(dim=-1, keepdim=True)
    scale = torch.where(top > 0, top, torch.ones_like(top))
    squared = ((diff / scale) ** 2).sum(dim=-1)
    positive = squared > 0
    root = torch.sqrt(torch.where(positive, squared, torch.ones_like(squared)))
    return torch.where(positive, root * scale.squeeze(-1), torch.zeros_like(squared))


def _check_rows(x: torch.Tensor, fn: str, arg: str) -> None:
    if x.dim() != 2:
        raise ValueError(f"{fn}: {arg} must have shape (N, D), got {fmt_shape(x.shape)}")


def _check_positive(value: object, fn: str, arg: str) -> float:
    v = check_nonnegative(value, fn, arg)
    if v == 0.0:
        raise ValueError(f"{fn}: {arg} must be > 0, got {value!r}")
    return v


def _check_temperature(value: object, fn: str) -> torch.Tensor | float:
    """A temperature > 0: a real number (returned as float) or a 0-d floating tensor (returned as is, so a
    learnable temperature receives its gradient; checked on a detached copy, leaving autograd untouched)."""
    if isinstance(value, torch.Tensor):
        if value.dim() != 0 or not value.is_floating_point():
            raise ValueError(
                f"{fn}: temperature must be a number or a 0-d floating tensor, got a {value.dtype} tensor of "
                f"shape {fmt_shape(value.shape)}"
            )
        t = value.detach()
        if not bool(torch.isfinite(t) & (t > 0)):
            raise ValueError(f"{fn}: temperature must be a finite number > 0, got {t.item()!r}")
        return value
    return _check_positive(value, fn, "temperature")


def _scaled(similarity: torch.Tensor, temperature: torch.Tensor | float) -> torch.Tensor:
    """similarity / temperature in the working dtype (float32 for half inputs): the temperature's gradient
    -g s / T^2 leaves float16's range long before the loss does (s = 64, T = 0.01: 6.4e5)."""
    wide = similarity.to(working_dtype(similarity.dtype))
    if isinstance(temperature, torch.Tensor):
        temperature = temperature.to(device=wide.device, dtype=wide.dtype)
    return wide / temperature


def contrastive_loss(
    x1: torch.Tensor, x2: torch.Tensor, label: torch.Tensor, margin: float = 1.0, reduction: Reduction = "mean"
) -> torch.Tensor:
    r"""Contrastive loss (Hadsell, Chopra & LeCun 2006): :math:`y d^2 + (1 - y) \max(0, m - d)^2` per row.

    ``x1``, ``x2``: (N, D) embeddings, ``d`` their euclidean distance; ``label`` (N,) in [0, 1], 1 = similar;
    ``margin`` >= 0. The similar term uses the sum of squares directly (no square root), the hinge a
    root whose derivative is 0 at d = 0.
    """
    fn = "contrastive_loss"
    check_floating_tensor(x1, fn, "x1")
    check_floating_tensor(x2, fn, "x2")
    check_floating_tensor(label, fn, "label")
    _check_rows(x1, fn, "x1")
    if x1.shape != x2.shape:
        shapes = f"{fmt_shape(x1.shape)} and {fmt_shape(x2.shape)}"
        raise ValueError(f"{fn}: x1 and x2 must have the same shape, got {shapes}")
    if label.shape != x1.shape[:1]:
        raise ValueError(f"{fn}: label must have shape {fmt_shape(x1.shape[:1])}, got {fmt_shape(label.shape)}")
    if bool(((label < 0) | (label > 1)).any()):
        raise ValueError(f"{fn}: label must lie in [0, 1] (1 = similar, 0 = dissimilar)")
    margin = check_nonnegative(margin, fn, "margin")
    check_reduction(reduction, fn)
    diff = x1 - x2
    hinge = torch.clamp(margin - _safe_norm(diff), min=0.0)
    # d^2 as the sum of squares: its gradient 2 (x1 - x2) never passes through d (whose backward, d * scale,
    # underflows in float32 for differences near 1e-33 although 2 (x1 - x2) is representable)
    loss = label * (diff * diff).sum(dim=-1) + (1 - label) * hinge * hinge
    return reduce(loss, reduction, fn)


def batch_hard_triplet_loss(embeddings: torch.Tensor, labels: torch.Tensor, margin: float = 1.0) -> torch.Tensor:
    r"""Batch-hard triplet loss (Hermans, Beyer & Leibe 2017, eq. 5).

    For each anchor with at least one positive (same label, another index) and one negative:
    :math:`\max(0, \max_p d(a, p) - \min_n d(a, n) + m)` with euclidean ``d``; the mean over those anchors,
    0 when there are none. ``embeddings`` (N, D), integer ``labels`` (N,), ``margin`` >= 0. The (N, N)
    distances come from explicit differences (N^2 D memory: meant for mini-batches).
    """
    fn = "batch_hard_triplet_loss"
    check_floating_tensor(embeddings, fn, "embeddings")
    check_integer_tensor(labels, fn, "labels")
    _check_rows(embeddings, fn, "embeddings")
    if labels.shape != embeddings.shape[:1]:
        expected = fmt_shape(embeddings.shape[:1])
        raise ValueError(f"{fn}: labels must have shape {expected}, got {fmt_shape(labels.shape)}")
    margin = check_nonnegative(margin, fn, "margin")
    d = _safe_norm(embeddings[:, None, :] - embeddings[None, :, :])
    same = labels[:, None] == labels[None, :]
    eye = torch.eye(len(labels), dtype=torch.bool, device=embeddings.device)
    positive, negative = same & ~eye, ~same
    valid = positive.any(dim=1) & negative.any(dim=1)
    hardest_pos = torch.where(positive, d, torch.zeros_like(d)).amax(dim=1)  # distances are >= 0
    far = torch.full_like(d, float("inf"))
    hardest_neg = torch.where(negative, d, far).amin(dim=1)
    hardest_neg = torch.where(valid, hardest_neg, torch.zeros_like(hardest_neg))
    loss = torch.clamp(hardest_pos - hardest_neg + margin, min=0.0)
    loss = torch.where(valid, loss, torch.zeros_like(loss))
    count = valid.sum()
    return loss.sum() / torch.clamp(count, min=1).to(loss.dtype)


def _unit(x: torch.Tensor) -> torch.Tensor:
    """x / max(||x||, 1e-12) along the last axis (F.normalize's contract), computed in at least float32: in
    float16 the 1e-12 underflows to 0 (0 / 0 for a zero embedding) and squared norms overflow above 256."""
    wide = x.to(working_dtype(x.dtype))
    return F.normalize(wide, dim=-1).to(x.dtype)


def info_nce_loss(
    query: torch.Tensor,
    positive_key: torch.Tensor,
    negative_keys: torch.Tensor,
    temperature: float | torch.Tensor = 0.07,
    normalize: bool = True,
    reduction: Reduction = "mean",
) -> torch.Tensor:
    r"""InfoNCE (van den Oord, Li & Vinyals 2018): cross-entropy of the logits ``sim / temperature`` with the
    positive at index 0.

    ``query`` (B, D), ``positive_key`` (B, D), ``negative_keys`` (B, M, D); ``sim`` is the cosine similarity
    (F.normalize, so a zero embedding has similarity 0), or the dot product when ``normalize=False``;
    ``temperature`` > 0, a number or a 0-d floating tensor (a learnable temperature: its gradient flows).
    The logits and their log-sum-exp are computed in the working dtype (float32 for half inputs), the loss
    rounded back to the input's dtype. Output (B,) for ``reduction='none'``.
    """
    fn = "info_nce_loss"
    for name, x in (("query", query), ("positive_key", positive_key), ("negative_keys", negative_keys)):
        check_floating_tensor(x, fn, name)
    _check_rows(query, fn, "query")
    if positive_key.shape != query.shape:
        raise ValueError(
            f"{fn}: positive_key must have the shape of query {fmt_shape(query.shape)}, "
            f"got {fmt_shape(positive_key.shape)}"
        )
    if negative_keys.dim() != 3 or negative_keys.shape[0] != query.shape[0] or negative_keys.shape[2] != query.shape[1]:
        raise ValueError(
            f"{fn}: negative_keys must have shape (B, M, D) = ({query.shape[0]}, M, {query.shape[1]}), "
            f"got {fmt_shape(negative_keys.shape)}"
        )
    temperature = _check_temperature(temperature, fn)
    check_reduction(reduction, fn)
    keys = torch.cat([positive_key[:, None, :], negative_keys], dim=1)
    if normalize:
        query, keys = _unit(query), _unit(keys)
    logits = _scaled((keys * query[:, None, :]).sum(dim=-1), temperature)
    loss = torch.logsumexp(logits, dim=1) - logits[:, 0]
    return reduce(loss.to(query.dtype), reduction, fn)


def nt_xent_loss(z_i: torch.Tensor, z_j: torch.Tensor, temperature: float | torch.Tensor = 0.5) -> torch.Tensor:
    r"""NT-Xent (Chen et al. 2020, SimCLR): over the 2N views ``[z_i; z_j]``, cosine similarity / temperature;
    each view's positive is its pair, its denominator the 2N - 1 other views (never itself); the mean of
    the 2N anchors' cross-entropies. ``z_i``, ``z_j``: (N, D); ``temperature`` > 0, a number or a 0-d
    floating tensor (a learnable temperature: its gradient flows). The logits are computed in the working
    dtype (float32 for half inputs), the anchors' losses rounded back to the input's dtype.
    """
    fn = "nt_xent_loss"
    check_floating_tensor(z_i, fn, "z_i")
    check_floating_tensor(z_j, fn, "z_j")
    _check_rows(z_i, fn, "z_i")
    if z_j.shape != z_i.shape:
        shapes = f"{fmt_shape(z_i.shape)} and {fmt_shape(z_j.shape)}"
        raise ValueError(f"{fn}: z_i and z_j must have the same shape, got {shapes}")
    temperature = _check_temperature(temperature, fn)
    z = _unit(torch.cat([z_i, z_j], dim=0))
    n = z_i.shape[0]
    sim = _scaled(z @ z.T, temperature)
    eye = torch.eye(2 * n, dtype=torch.bool, device=z.device)
    logits = sim.masked_fill(eye, float("-inf"))  # a view is never its own negative
    partner = (torch.arange(2 * n, device=z.device) + n) % (2 * n)
    loss = torch.logsumexp(logits, dim=1) - sim[torch.arange(2 * n, device=z.device), partner]
    return loss.to(z.dtype).mean()


def pairwise_logistic_loss(chosen: torch.Tensor, rejected: torch.Tensor, reduction: Reduction = "mean") -> torch.Tensor:
    r"""Bradley-Terry / BPR loss (Rendle et al. 2009): :math:`-\log \sigma(c - r) = \operatorname{softplus}(r - c)`,
    finite for every finite difference (softplus, not the log of a sigmoid that underflows)."""
    fn = "pairwise_logistic_loss"
    check_floating_tensor(chosen, fn, "chosen")
    check_floating_tensor(rejected, fn, "rejected")
    if chosen.shape != rejected.shape:
        raise ValueError(
            f"{fn}: chosen and rejected must have the same shape, got {fmt_shape(chosen.shape)} and "
            f"{fmt_shape(rejected.shape)}"
        )
    check_reduction(reduction, fn)
    diff = rejected - chosen
    # softplus as logaddexp(x, 0): exact everywhere, unlike F.softplus, which returns x for x > 20 (2e-9 off)
    return reduce(torch.logaddexp(diff, torch.zeros_like(diff)), reduction, fn)


OWN: dict[str, Callable] = {
    "contrastive_loss": contrastive_loss,
    "batch_hard_triplet_loss": batch_hard_triplet_loss,
    "info_nce_loss": info_nce_loss,
    "nt_xent_loss": nt_xent_loss,
    "pairwise_logistic_loss": pairwise_logistic_loss,
}
