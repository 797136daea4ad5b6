"""lossguard's own PyTorch implementations of the sequence losses.

* :func:`sequence_cross_entropy` (and :func:`perplexity`): token-level cross-entropy of a language
  model's ``(B, T, V)`` logits, the mean over the non-ignored tokens.
* :func:`linear_cross_entropy`: ``cross_entropy(hidden @ weight.T + bias, target)`` computed without
  ever holding the ``(N, V)`` logits: a custom :class:`torch.autograd.Function` that walks blocks of
  ``token_chunk_size`` tokens. When a gradient is needed, each block spans the whole vocabulary and the
  forward computes the gradients with the value (Hsu et al. 2024, "Liger Kernel", arXiv:2410.10989), so a
  forward + backward costs the three matrix products of the materialised loss and no more; otherwise the
  blocks are ``chunk_size`` vocabulary entries wide, with an online logsumexp (Milakov & Gimelshein 2018,
  arXiv:1805.02867). A backward that cannot reuse the forward's gradients recomputes the logits block by
  block (Wijmans et al. 2024, "Cut Your Losses in Large-Vocabulary Language Models", arXiv:2411.09009).

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

DEFAULT_CHUNK = 4096  # vocabulary entries per block of the online logsumexp and of a recomputation
BLOCK_ELEMENTS = 1 << 22  # most logits per block when the tokens per block are not given (16 MiB in float32)
MIN_BLOCK_ELEMENTS = 1 << 20  # fewest logits per block then (4 MiB in float32)


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


def _auto_token_chunk(hidden: torch.Tensor, n_classes: int) -> int:
    """Tokens per block when the caller gives none: a block of half as many logits as ``hidden`` has elements (small
    beside the gradients), within ``MIN_BLOCK_ELEMENTS`` (fewer tokens per block would starve the matrix products)
    and ``BLOCK_ELEMENTS``; at least one token."""
    return max(1, min(BLOCK_ELEMENTS, max(MIN_BLOCK_ELEMENTS, hidden.numel() // 2)) // n_classes)


def _logits_block(hidden: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None) -> torch.Tensor:
    """One block of logits, hidden @ weight.T (+ bias), formed in the working dtype (at least float32): in
    bfloat16 logits of 1100 and 1106 would both round to 1104 (spacing 8), and a softmax of rounded logits
    can be off by far more than the inputs' own rounding."""
    acc = working_dtype(hidden.dtype)
    hidden, weight = hidden.to(acc), weight.to(acc)
    return hidden @ weight.T if bias is None else torch.addmm(bias.to(acc), hidden, weight.T)


def _target_column(block: torch.Tensor, index: torch.Tensor, first: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Where each row's target falls in a block of columns starting at ``first``: (inside, local column)."""
    inside = (index >= first) & (index < first + block.shape[1])
    return inside, torch.where(inside, index - first, torch.zeros_like(index))


def _online_lse(hidden, weight, bias, index, chunk, token_chunk):
    """Per-token (logsumexp, target logit) over vocabulary blocks, the logsumexp accumulated online
    (running maximum m and sum s, s rescaled by exp(m_old - m_new) when the maximum grows): one block of
    ``token_chunk`` x ``chunk`` logits at a time. Used when no gradient is needed."""
    n_tokens, n_classes = hidden.shape[0], weight.shape[0]
    acc = working_dtype(hidden.dtype)
    lse = torch.empty(n_tokens, dtype=acc, device=hidden.device)
    picked = torch.zeros_like(lse)
    for start in _blocks(n_tokens, token_chunk):
        rows = slice(start, start + token_chunk)
        x, y = hidden[rows], index[rows]
        m = torch.full((x.shape[0],), -torch.inf, dtype=acc, device=x.device)
        s = torch.zeros_like(m)
        for first in _blocks(n_classes, chunk):
            cols = slice(first, first + chunk)
            z = _logits_block(x, weight[cols], None if bias is None else bias[cols])
            inside, local = _target_column(z, y, first)
            picked[rows] = torch.where(inside, z.gather(1, local[:, None]).squeeze(1), picked[rows])
            m_new = torch.maximum(m, z.max(dim=1).values)
            # exp(-inf) = 0 before the first block; in place on the block: one block of memory at a time
            s = s * torch.exp(m - m_new) + z.sub_(m_new[:, None]).exp_().sum(dim=1)
            m = m_new
        lse[rows] = m + torch.log(s)
    return lse, picked


def _fused(hidden, weight, bias, index, valid, token_chunk, needs):
    """Per-token (logsumexp, target logit) and the gradients of the per-token losses with a coefficient 1 at
    every non-ignored token (G = softmax(z) - onehot(y), 0 at ignored tokens; d hidden = G W,
    d weight = G^T hidden, d bias = sum_n G), one block of ``token_chunk`` tokens by the whole vocabulary
    at a time, so the forward's three matrix products are the only ones (the fused linear cross-entropy of
    Hsu et al. 2024, "Liger Kernel", arXiv:2410.10989). ``needs``: which of hidden, weight, bias want one."""
    n_tokens = hidden.shape[0]
    acc = working_dtype(hidden.dtype)
    w = weight.to(acc)  # once, not per block (a copy only for half-precision inputs)
    b = None if bias is None else bias.to(acc)
    lse = torch.empty(n_tokens, dtype=acc, device=hidden.device)
    picked = torch.empty_like(lse)
    d_hidden = torch.empty(hidden.shape, dtype=acc, device=hidden.device) if needs[0] else None
    d_weight = torch.zeros(weight.shape, dtype=acc, device=hidden.device) if needs[1] else None
    d_bias = torch.zeros(weight.shape[0], dtype=acc, device=hidden.device) if needs[2] else None
    block = torch.empty(min(token_chunk, n_tokens), weight.shape[0], dtype=acc, device=hidden.device)  # reused
    for start in _blocks(n_tokens, token_chunk):
        rows = slice(start, start + token_chunk)
        x, y, ok = hidden[rows].to(acc), index[rows, None], valid[rows, None]
        z = block[: x.shape[0]]
        if b is None:
            torch.mm(x, w.T, out=z)
        else:
            torch.addmm(b, x, w.T, out=z)
        m = z.amax(dim=1, keepdim=True)
        picked[rows] = z.gather(1, y).squeeze(1)
        s = z.sub_(m).exp_().sum(dim=1, keepdim=True)  # in place: z now holds exp(z - m)
        lse[rows] = (m + s.log()).squeeze(1)
        z.mul_(ok / s).scatter_add_(1, y, -ok.to(acc))  # softmax - onehot at non-ignored rows, 0 at ignored ones
        if d_hidden is not None:
            torch.mm(z, w, out=d_hidden[rows])
        if d_weight is not None:
            d_weight.addmm_(z.T, x)
        if d_bias is not None:
            d_bias += z.sum(dim=0)
    return lse, picked, (d_hidden, d_weight, d_bias)


def _recomputed_gradients(hidden, weight, bias, index, lse, coefficient, chunk, token_chunk):
    """The gradients for per-token coefficients c (0 at ignored tokens), the logits recomputed block by block
    (as in Wijmans et al. 2024, "Cut Your Losses in Large-Vocabulary Language Models", arXiv:2411.09009):
    with p = exp(z - lse) and G = c (p - onehot), d hidden += G W_c, d W_c += G^T hidden, d b_c += sum_n G."""
    n_tokens, n_classes = hidden.shape[0], weight.shape[0]
    acc = lse.dtype
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
            inside, local = _target_column(g, y, first)
            g.scatter_add_(1, local[:, None], -inside[:, None].to(acc))  # - onehot where the target is here
            g.mul_(c[:, None])
            d_hidden[rows] += g @ weight[cols].to(acc)
            d_weight[cols] += g.T @ x.to(acc)
            if d_bias is not None:
                d_bias[cols] += g.sum(dim=0)
    return d_hidden, d_weight, d_bias


def _differentiable_gradients(hidden, weight, bias, index, valid, coefficient, token_chunk):
    """The same gradients as :func:`_recomputed_gradients`, built from differentiable operations (blocks of
    ``token_chunk`` tokens by the whole vocabulary, the softmax recomputed by autograd-tracked operations),
    so a backward with ``create_graph=True`` gives correct second derivatives."""
    acc = coefficient.dtype
    w = weight.to(acc)
    grads_hidden, d_weight, d_bias = [], 0, 0
    for start in _blocks(hidden.shape[0], token_chunk):
        rows = slice(start, start + token_chunk)
        x = hidden[rows].to(acc)
        z = _logits_block(x, w, bias)
        onehot = torch.nn.functional.one_hot(index[rows], weight.shape[0]).to(acc)
        g = (torch.softmax(z, dim=1) - onehot) * coefficient[rows, None]
        grads_hidden.append(g @ w)
        d_weight = d_weight + g.T @ x
        d_bias = d_bias + g.sum(dim=0)
    return torch.cat(grads_hidden), d_weight, None if bias is None else d_bias


class _LinearCrossEntropy(torch.autograd.Function):
    """Per-token cross-entropy of hidden @ weight.T + bias, blockwise; forward returns the (N,) losses.

    When a gradient is needed the forward computes it too (:func:`_fused`, coefficient 1 per non-ignored
    token), and the first backward whose incoming gradient is one value c over the non-ignored tokens (a
    'mean' or a 'sum', the only case of a scalar loss) returns c times it, scaled in place. Any other
    backward (per-token weights of a 'none', a second backward with ``retain_graph``) recomputes the blocks
    from the inputs and the saved per-token logsumexp (:func:`_recomputed_gradients`), and a backward with
    ``create_graph=True`` builds differentiable gradients (:func:`_differentiable_gradients`).
    """

    @staticmethod
    def forward(ctx, hidden, weight, bias, target, valid, chunk, token_chunk):  # type: ignore[override]
        index = torch.where(valid, target, torch.zeros_like(target)).long()
        needs = tuple(ctx.needs_input_grad[:3])
        if any(needs):
            lse, picked, ctx.grads = _fused(hidden, weight, bias, index, valid, token_chunk, needs)
        else:
            lse, picked = _online_lse(hidden, weight, bias, index, chunk, token_chunk)
            ctx.grads = None
        losses = torch.where(valid, lse - picked, torch.zeros_like(lse))
        ctx.save_for_backward(hidden, weight, bias, index, valid, lse)
        ctx.blocks = (chunk, token_chunk)
        return losses.to(hidden.dtype)

    @staticmethod
    def backward(ctx, grad_losses):  # type: ignore[override]
        hidden, weight, bias, index, valid, lse = ctx.saved_tensors
        chunk, token_chunk = ctx.blocks
        grads, ctx.grads = ctx.grads, None  # consumed: a second backward recomputes
        coefficient = torch.where(valid, grad_losses.to(lse.dtype), torch.zeros_like(lse))
        scale = _one_value(coefficient[valid])
        if torch.is_grad_enabled():
            grads = _differentiable_gradients(hidden, weight, bias, index, valid, coefficient, token_chunk)
        elif grads is not None and scale is not None:
            grads = tuple(None if g is None else g.mul_(scale) for g in grads)
        else:
            grads = _recomputed_gradients(hidden, weight, bias, index, lse, coefficient, chunk, token_chunk)
        d_hidden, d_weight, d_bias = grads
        return (
            None if d_hidden is None else d_hidden.to(hidden.dtype),
            None if d_weight is None else d_weight.to(weight.dtype),
            None if d_bias is None else d_bias.to(bias.dtype),
            None,
            None,
            None,
            None,
        )


def _one_value(values: torch.Tensor) -> torch.Tensor | None:
    """The value every element of ``values`` shares (0 for none), or None when they differ."""
    if values.numel() == 0:
        return torch.zeros((), dtype=values.dtype, device=values.device)
    first = values[0]
    return first if bool((values == first).all()) else None


def linear_cross_entropy(
    hidden: torch.Tensor,
    weight: torch.Tensor,
    target: torch.Tensor,
    bias: torch.Tensor | None = None,
    ignore_index: int = -100,
    reduction: Reduction = "mean",
    chunk_size: int = DEFAULT_CHUNK,
    token_chunk_size: int | None = None,
) -> torch.Tensor:
    r"""``cross_entropy(hidden @ weight.T + bias, target)`` without materialising the ``(N, V)`` logits.

    .. math:: \ell_n = \operatorname{logsumexp}_v (x_n \cdot w_v + b_v) - (x_n \cdot w_{y_n} + b_{y_n})

    for non-ignored tokens (0 for ``target == ignore_index``); ``'mean'`` divides the sum by the number
    of non-ignored tokens (NaN when there are none), ``'sum'`` sums, ``'none'`` returns ``(N,)``.
    Everything is computed in at least float32 (half-precision inputs are upcast block by block, the
    results rounded back). Peak extra memory is the gradients plus one block of logits, never ``N * V``:

    * gradient needed: blocks of ``token_chunk_size`` tokens by the whole vocabulary; the forward computes
      the value and the gradients (three matrix products), and the backward of a ``'mean'`` or ``'sum'``
      (any incoming gradient that is one value over the non-ignored tokens) scales them;
    * otherwise (no gradient needed, or a backward with per-token weights or a second one): blocks of
      ``token_chunk_size`` tokens by ``chunk_size`` vocabulary entries, the logsumexp accumulated online and
      the logits recomputed in the backward (see :class:`_LinearCrossEntropy`).

    Differentiable in hidden, weight and bias, twice with ``create_graph=True`` (then autograd holds a
    block's softmax per block of tokens).

    Args:
        hidden: ``(N, H)`` floating point.
        weight: ``(V, H)``, the same dtype and device as ``hidden``.
        target: ``(N,)`` integer class indices in ``[0, V)`` or ``ignore_index``.
        bias: ``None`` or ``(V,)``.
        chunk_size: vocabulary entries per block (a positive int; larger than V means one block).
        token_chunk_size: tokens per block (a positive int; larger than N means one block); ``None``: blocks
            of half as many logits as ``hidden`` has elements, within ``MIN_BLOCK_ELEMENTS`` and ``BLOCK_ELEMENTS``.

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
    token_chunk = (
        _auto_token_chunk(hidden, int(weight.shape[0]))
        if token_chunk_size is None
        else _check_chunk(token_chunk_size, fn, "token_chunk_size")
    )
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
