"""lossguard's own PyTorch implementations of the sequence losses.

* :func:`sequence_cross_entropy` (and :func:`perplexity`): token-level cross-entropy of a language
  model's ``(B, T, V)`` logits, the mean over the non-ignored tokens.
* :func:`linear_cross_entropy`: ``cross_entropy(hidden @ weight.T + bias, target)`` computed without
  ever holding the ``(N, V)`` logits: a custom :class:`torch.autograd.Function` that walks blocks of
  ``token_chunk_size`` tokens by ``chunk_size`` vocabulary entries, with an online logsumexp
  (Milakov & Gimelshein 2018, arXiv:1805.02867) in the forward and the logits recomputed block by
  block in the backward (as in Wijmans et al. 2024, "Cut Your Losses in Large-Vocabulary Language
  Models", arXiv:2411.09009). Only the inputs and the per-token logsumexp are saved for backward.

Both follow torch's ``cross_entropy`` conventions: ``ignore_index`` tokens take no part in the value,
the gradient (exactly 0 there) or the mean's denominator, and a ``'mean'`` over zero non-ignored
tokens is NaN (0 / 0). Arguments are validated first (see :mod:`lossguard.implementations.own._checks`).
"""

from __future__ import annotations

import numbers
from collections.abc import Callable

import torch

from ._checks import (
    Reduction,
    check_class_indices,
    check_closed_interval,
    check_floating_tensor,
    check_integer_tensor,
    check_reduction,
    fmt_shape,
    working_dtype,
)

__all__ = ["linear_cross_entropy", "perplexity", "sequence_cross_entropy"]

DEFAULT_CHUNK = 4096  # vocabulary entries per block
DEFAULT_TOKEN_CHUNK = 512  # tokens per block: a block of logits holds 2M elements


def _check_ignore_index(ignore_index: object, fn: str) -> int:
    if isinstance(ignore_index, bool) or not isinstance(ignore_index, numbers.Integral):
        raise TypeError(f"{fn}: ignore_index must be an int, got {type(ignore_index).__name__}")
    return int(ignore_index)


def _check_chunk(value: object, fn: str, arg: str) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or int(value) < 1:
        raise ValueError(f"{fn}: {arg} must be a positive int, got {value!r}")
    return int(value)


def _token_mean(losses: torch.Tensor, valid: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
    """Sum over non-ignored tokens / their number, accumulated in at least float32 (NaN for none)."""
    acc = working_dtype(dtype)
    return (losses.sum(dtype=acc) / valid.sum().to(acc)).to(dtype)


def sequence_cross_entropy(
    logits: torch.Tensor, target: torch.Tensor, ignore_index: int = -100, label_smoothing: float = 0.0
) -> torch.Tensor:
    r"""Token-level cross-entropy of ``(B, T, V)`` logits against ``(B, T)`` class indices.

    Per non-ignored token with :math:`\log p = \operatorname{log\_softmax}(z)` over the vocabulary and
    label smoothing :math:`\varepsilon` (Szegedy et al. 2016; torch's ``eps / V`` convention),

    .. math:: \ell = -(1 - \varepsilon) \log p_y - \varepsilon \frac{1}{V} \sum_c \log p_c,

    and the loss is the mean of :math:`\ell` over the tokens whose target is not ``ignore_index``
    (NaN when every token is ignored, as ``F.cross_entropy``'s 0 / 0). There is no ``reduction``.

    Raises:
        TypeError: ``logits`` not floating point, ``target`` not integer, ``ignore_index`` not an int.
        ValueError: ``logits`` not 3-D with ``V >= 1``, ``target`` not ``(B, T)``, ``label_smoothing``
            outside ``[0, 1]``.
        ClassIndexError: a target outside ``[0, V)`` that is not ``ignore_index``.
    """
    fn = "sequence_cross_entropy"
    check_floating_tensor(logits, fn, "logits")
    check_integer_tensor(target, fn, "target")
    if logits.dim() != 3 or logits.shape[-1] < 1:
        raise ValueError(f"{fn}: logits must have shape (B, T, V) with V >= 1, got {fmt_shape(logits.shape)}")
    if tuple(target.shape) != tuple(logits.shape[:2]):
        raise ValueError(
            f"{fn}: target must have shape (B, T) = {fmt_shape(logits.shape[:2])} for logits of shape "
            f"{fmt_shape(logits.shape)}, got {fmt_shape(target.shape)}"
        )
    eps = check_closed_interval(label_smoothing, 0.0, 1.0, fn, "label_smoothing")
    ignore_index = _check_ignore_index(ignore_index, fn)
    target = target.to(device=logits.device)
    valid = check_class_indices(target, int(logits.shape[-1]), ignore_index, fn)

    log_p = torch.log_softmax(logits, dim=-1)
    index = torch.where(valid, target, torch.zeros_like(target)).long().unsqueeze(-1)
    losses = -log_p.gather(-1, index).squeeze(-1)
    if eps > 0.0:
        losses = (1.0 - eps) * losses - eps * log_p.mean(dim=-1)
    losses = torch.where(valid, losses, torch.zeros_like(losses))
    return _token_mean(losses, valid, logits.dtype)


def perplexity(
    logits: torch.Tensor, target: torch.Tensor, ignore_index: int = -100, label_smoothing: float = 0.0
) -> torch.Tensor:
    """exp(sequence_cross_entropy): the exponential of the *mean* per-token cross-entropy (not a mean of exps).

    Same arguments, validation and NaN for all-ignored targets as :func:`sequence_cross_entropy`.
    """
    return torch.exp(sequence_cross_entropy(logits, target, ignore_index, label_smoothing))


sequence_cross_entropy.perplexity = perplexity  # type: ignore[attr-defined]  # the perplexity property finds it here


def _blocks(n: int, size: int) -> range:
    return range(0, n, size)


def _logits_block(hidden: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None) -> torch.Tensor:
    """One block of logits, hidden @ weight.T (+ bias), formed in the working dtype (at least float32): in
    bfloat16 logits of 1100 and 1106 would both round to 1104 (spacing 8), and a softmax of rounded logits
    can be off by far more than the inputs' own rounding."""
    acc = working_dtype(hidden.dtype)
    hidden, weight = hidden.to(acc), weight.to(acc)
    return hidden @ weight.T if bias is None else torch.addmm(bias.to(acc), hidden, weight.T)


class _LinearCrossEntropy(torch.autograd.Function):
    """Per-token cross-entropy of hidden @ weight.T + bias, blockwise; forward returns the (N,) losses.

    Saved for backward: hidden, weight, bias, target, the non-ignored mask and the per-token
    logsumexp (N,). The backward recomputes each block of logits: with p = exp(z - lse) and
    G = c (p - onehot) (c the incoming gradient per token, 0 at ignored tokens),
    d hidden += G W_c, d W_c += G^T hidden, d bias_c += sum_n G.
    """

    @staticmethod
    def forward(ctx, hidden, weight, bias, target, valid, chunk, token_chunk):  # type: ignore[override]
        n_tokens, n_classes = hidden.shape[0], weight.shape[0]
        acc = working_dtype(hidden.dtype)
        index = torch.where(valid, target, torch.zeros_like(target)).long()
        lse = torch.empty(n_tokens, dtype=acc, device=hidden.device)
        losses = torch.empty(n_tokens, dtype=acc, device=hidden.device)
        for start in _blocks(n_tokens, token_chunk):
            rows = slice(start, start + token_chunk)
            x, y = hidden[rows], index[rows]
            m = torch.full((x.shape[0],), -torch.inf, dtype=acc, device=x.device)
            s = torch.zeros_like(m)
            picked = torch.zeros_like(m)
            for first in _blocks(n_classes, chunk):
                cols = slice(first, first + chunk)
                z = _logits_block(x, weight[cols], None if bias is None else bias[cols])
                inside = (y >= first) & (y < first + z.shape[1])
                local = torch.where(inside, y - first, torch.zeros_like(y))
                picked = torch.where(inside, z.gather(1, local[:, None]).squeeze(1), picked)
                m_new = torch.maximum(m, z.max(dim=1).values)
                # rescale the running sum to the new maximum (exp(-inf) = 0 before the first block);
                # in place on the block: one block of memory at a time
                s = s * torch.exp(m - m_new) + z.sub_(m_new[:, None]).exp_().sum(dim=1)
                m = m_new
            lse[rows] = m + torch.log(s)
            losses[rows] = lse[rows] - picked
        losses = torch.where(valid, losses, torch.zeros_like(losses))
        ctx.save_for_backward(hidden, weight, bias, index, valid, lse)
        ctx.blocks = (chunk, token_chunk)
        return losses.to(hidden.dtype)

    @staticmethod
    def backward(ctx, grad_losses):  # type: ignore[override]
        hidden, weight, bias, index, valid, lse = ctx.saved_tensors
        chunk, token_chunk = ctx.blocks
        n_tokens, n_classes = hidden.shape[0], weight.shape[0]
        acc = lse.dtype
        coefficient = torch.where(valid, grad_losses.to(acc), torch.zeros_like(lse))
        d_hidden = torch.zeros(hidden.shape, dtype=acc, device=hidden.device)
        d_weight = torch.zeros(weight.shape, dtype=acc, device=hidden.device)
        d_bias = None if bias is None else torch.zeros(bias.shape, dtype=acc, device=hidden.device)
        for start in _blocks(n_tokens, token_chunk):
            rows = slice(start, start + token_chunk)
            x, y, c = hidden[rows], index[rows], coefficient[rows]
            for first in _blocks(n_classes, chunk):
                cols = slice(first, first + chunk)
                g = _logits_block(x, weight[cols], None if bias is None else bias[cols])
                g.sub_(lse[rows, None]).exp_()  # softmax, in place on the recomputed block
                inside = (y >= first) & (y < first + g.shape[1])
                local = torch.where(inside, y - first, torch.zeros_like(y))
                g.scatter_add_(1, local[:, None], -inside[:, None].to(acc))  # - onehot where the target is here
                g.mul_(c[:, None])
                d_hidden[rows] += g @ weight[cols].to(acc)
                d_weight[cols] += g.T @ x.to(acc)
                if d_bias is not None:
                    d_bias[cols] += g.sum(dim=0)
        dtype = hidden.dtype
        return (
            d_hidden.to(dtype),
            d_weight.to(weight.dtype),
            None if d_bias is None else d_bias.to(bias.dtype),
            None,
            None,
            None,
            None,
        )


def linear_cross_entropy(
    hidden: torch.Tensor,
    weight: torch.Tensor,
    target: torch.Tensor,
    bias: torch.Tensor | None = None,
    ignore_index: int = -100,
    reduction: Reduction = "mean",
    chunk_size: int = DEFAULT_CHUNK,
    token_chunk_size: int = DEFAULT_TOKEN_CHUNK,
) -> torch.Tensor:
    r"""``cross_entropy(hidden @ weight.T + bias, target)`` without materialising the ``(N, V)`` logits.

    .. math:: \ell_n = \operatorname{logsumexp}_v (x_n \cdot w_v + b_v) - (x_n \cdot w_{y_n} + b_{y_n})

    for non-ignored tokens (0 for ``target == ignore_index``); ``'mean'`` divides the sum by the number
    of non-ignored tokens (NaN when there are none), ``'sum'`` sums, ``'none'`` returns ``(N,)``.
    The logits are formed block by block (``token_chunk_size`` tokens by ``chunk_size`` vocabulary
    entries) in the inputs' dtype; the logsumexp is accumulated online in at least float32
    (running maximum m and sum s, rescaled by exp(m_old - m_new) when the maximum grows), so peak
    extra memory is one block, never ``N * V``. Backward recomputes the blocks (see
    :class:`_LinearCrossEntropy`). Differentiable in hidden, weight and bias.

    Args:
        hidden: ``(N, H)`` floating point.
        weight: ``(V, H)``, the same dtype and device as ``hidden``.
        target: ``(N,)`` integer class indices in ``[0, V)`` or ``ignore_index``.
        bias: ``None`` or ``(V,)``.
        chunk_size: vocabulary entries per block (a positive int; larger than V means one block).
        token_chunk_size: tokens per block (a positive int; larger than N means one block).

    Raises:
        TypeError: non-floating hidden/weight/bias, mixed dtypes, non-integer target or ignore_index.
        ValueError: shapes other than the above, unknown reduction, a chunk size < 1.
        ClassIndexError: a target outside ``[0, V)`` that is not ``ignore_index``.
    """
    fn = "linear_cross_entropy"
    check_floating_tensor(hidden, fn, "hidden")
    check_floating_tensor(weight, fn, "weight")
    check_integer_tensor(target, fn, "target")
    if hidden.dim() != 2:
        raise ValueError(f"{fn}: hidden must have shape (N, H), got {fmt_shape(hidden.shape)}")
    if weight.dim() != 2 or weight.shape[1] != hidden.shape[1] or weight.shape[0] < 1:
        raise ValueError(
            f"{fn}: weight must have shape (V, H) with V >= 1 and H = {hidden.shape[1]} (hidden's last dimension), "
            f"got {fmt_shape(weight.shape)}"
        )
    if weight.dtype != hidden.dtype:
        raise TypeError(f"{fn}: weight must have hidden's dtype {hidden.dtype}, got {weight.dtype}")
    if tuple(target.shape) != (hidden.shape[0],):
        raise ValueError(f"{fn}: target must have shape (N,) = ({hidden.shape[0]},), got {fmt_shape(target.shape)}")
    if bias is not None:
        check_floating_tensor(bias, fn, "bias")
        if tuple(bias.shape) != (weight.shape[0],):
            raise ValueError(f"{fn}: bias must have shape (V,) = ({weight.shape[0]},), got {fmt_shape(bias.shape)}")
        if bias.dtype != hidden.dtype:
            raise TypeError(f"{fn}: bias must have hidden's dtype {hidden.dtype}, got {bias.dtype}")
    check_reduction(reduction, fn)
    ignore_index = _check_ignore_index(ignore_index, fn)
    chunk = _check_chunk(chunk_size, fn, "chunk_size")
    token_chunk = _check_chunk(token_chunk_size, fn, "token_chunk_size")
    target = target.to(device=hidden.device)
    valid = check_class_indices(target, int(weight.shape[0]), ignore_index, fn)

    losses = _LinearCrossEntropy.apply(hidden, weight, bias, target, valid, chunk, token_chunk)
    if reduction == "none":
        return losses
    if reduction == "sum":
        return losses.sum()
    return _token_mean(losses, valid, hidden.dtype)


OWN: dict[str, Callable] = {
    "sequence_cross_entropy": sequence_cross_entropy,
    "linear_cross_entropy": linear_cross_entropy,
}
