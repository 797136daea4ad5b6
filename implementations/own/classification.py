"""The project's own PyTorch implementations of classification losses missing from ``torch.nn.functional``.

All losses take logits / scores as ``input`` (floating point) and compute in ``input``'s dtype; arguments
are validated before anything is computed (see :mod:`lossguard.implementations.own._checks` for the error
conventions), and ``reduction`` is one of ``'none' | 'mean' | 'sum'``.
"""

from __future__ import annotations

import numbers
from collections.abc import Callable
from typing import Literal

import torch
import torch.nn.functional as F

from ._checks import (
    Reduction,
    check_class_indices,
    check_closed_interval,
    check_floating_tensor,
    check_integer_tensor,
    check_nonnegative,
    check_reduction,
    check_same_shape,
    fmt_shape,
    reduce,
    working_dtype,
)

__all__ = ["hinge_loss", "sigmoid_focal_loss", "softmax_focal_loss"]


def _focal_modulation(one_minus_p: torch.Tensor, gamma: float) -> torch.Tensor:
    r"""Return :math:`(1 - p)^\gamma` with a finite derivative everywhere.

    For :math:`\gamma = 0` this is 1 (also at :math:`1 - p = 0`); for :math:`\gamma \ge 1` the derivative
    :math:`\gamma (1-p)^{\gamma-1}` is finite, so plain ``pow`` is used.  For :math:`0 < \gamma < 1` the
    derivative is unbounded as :math:`1 - p \to 0` (infinite at 0, and it overflows already for
    subnormal :math:`1 - p`).  There, for :math:`1 - p` below the smallest normal number of the dtype,
    the factor's *value* is kept but it is treated as a constant for autograd.  The gradient contribution
    dropped that way is of order :math:`\gamma (1-p)^{\gamma+1}` (times the logit scale), i.e. below the
    dtype's smallest normal number: in a focal loss the factor multiplies a cross-entropy term that is
    itself :math:`O(1-p)` when :math:`1 - p` is tiny.
    """
    if gamma == 0.0:
        return torch.ones_like(one_minus_p)
    if gamma >= 1.0:
        return one_minus_p.pow(gamma)
    tiny = torch.finfo(one_minus_p.dtype).tiny
    normal = one_minus_p >= tiny
    safe = torch.where(normal, one_minus_p, torch.ones_like(one_minus_p))
    return torch.where(normal, safe.pow(gamma), one_minus_p.detach().pow(gamma))


class _SigmoidFocal(torch.autograd.Function):
    """Element-wise (1 - p_t)^gamma BCE(x, y) of ``sigmoid_focal_loss`` (same terms: logsigmoid cross-entropy,
    u = 1 - p_t = (1 - y) p + y q with p = sigmoid(x), q = sigmoid(-x)) for gamma = 0 or gamma >= 1 and a target
    without gradient, with the analytic backward d/dx = gamma u^(gamma - 1) p q (1 - 2y) BCE + u^gamma ((1 - y) p -
    y q) (dBCE/dx = (1 - y) p - y q, du/dx = p q (1 - 2y)), computed in the forward: only it is saved."""

    @staticmethod
    def forward(ctx, x: torch.Tensor, y: torch.Tensor, gamma: float) -> torch.Tensor:
        ym = 1.0 - y
        bce = (y * F.logsigmoid(x)).addcmul_(ym, F.logsigmoid(-x)).neg_()
        p, q = torch.sigmoid(x), torch.sigmoid(-x)
        ymp, yq = ym * p, y * q
        del ym
        u = ymp + yq
        d_bce = ymp.sub_(yq)  # one term is 0 for a hard label: exact
        del yq
        if gamma == 0.0:
            ctx.save_for_backward(d_bce)
            return bce
        # the local derivative is saved, not its five factors (a backward always follows in training)
        d_u = p.mul_(q).mul_(1.0 - 2.0 * y)
        del q
        mod = u.pow(gamma)
        ctx.save_for_backward(u.pow_(gamma - 1.0).mul_(gamma).mul_(d_u).mul_(bce).addcmul_(mod, d_bce))
        return mod.mul_(bce)

    @staticmethod
    def backward(ctx, grad: torch.Tensor):
        (d,) = ctx.saved_tensors
        return d * grad, None, None


def sigmoid_focal_loss(
    input: torch.Tensor,
    target: torch.Tensor,
    alpha: float | None = 0.25,
    gamma: float = 2.0,
    reduction: Reduction = "mean",
    alpha_mode: Literal["per_class", "uniform"] = "per_class",
) -> torch.Tensor:
    r"""Binary (sigmoid) focal loss from logits.

    With :math:`p = \sigma(x)` for logit :math:`x` and target :math:`y \in [0, 1]` (hard labels
    :math:`\{0, 1\}` or soft labels),

    .. math::
        p_t = p\,y + (1-p)(1-y), \qquad \alpha_t = \alpha\,y + (1-\alpha)(1-y), \\
        \ell = \alpha_t\,(1 - p_t)^\gamma\,\operatorname{BCE}(x, y), \qquad
        \operatorname{BCE}(x, y) = -y\log\sigma(x) - (1-y)\log\sigma(-x),

    which for hard labels is :math:`-\alpha_t (1-p_t)^\gamma \log p_t` (Lin et al. 2017, eq. 5; the
    same form as ``torchvision.ops.sigmoid_focal_loss``).  Computed stably from the logits: the
    cross-entropy as :math:`-y \log\sigma(x) - (1-y)\log\sigma(-x)` with ``F.logsigmoid`` (the value of
    ``F.binary_cross_entropy_with_logits``, but relatively accurate also for well-classified examples,
    where the latter returns 0) and :math:`1 - p_t = (1-y)\,\sigma(x) + y\,\sigma(-x)` (sums of
    non-negative terms, no cancellation).
    Loss and gradient are finite for all finite logits, also for :math:`0 < \gamma < 1` where
    :math:`(1-p_t)^\gamma` has an unbounded derivative at :math:`1 - p_t = 0` (see
    :func:`_focal_modulation`).

    Args:
        input: logits, floating-point tensor of any shape ``(*)``.
        target: labels in :math:`[0, 1]`, same shape ``(*)`` (converted to ``input``'s dtype; values are
            not checked).
        alpha: class-balance weight :math:`0 \le \alpha \le 1` for the positive class, or ``None`` for
            no weighting (:math:`\alpha_t = 1`).
        gamma: focusing parameter :math:`\gamma \ge 0` (finite); :math:`\gamma = 0` gives (weighted) BCE.
        reduction: ``'none'`` (shape ``(*)``) | ``'mean'`` | ``'sum'``.
        alpha_mode: ``'per_class'`` (default, :math:`\alpha_t` as above) or ``'uniform'`` (variant: the
            scalar :math:`\alpha` multiplies every term instead of :math:`\alpha_t`).

    Raises:
        ValueError: shapes differ, ``alpha`` not in ``[0, 1]``, ``gamma < 0``, unknown ``alpha_mode`` or
            ``reduction``.

    References:
        T.-Y. Lin, P. Goyal, R. Girshick, K. He, P. Dollár (2017), "Focal Loss for Dense Object
        Detection", ICCV 2017, arXiv:1708.02002.
    """
    fn = "sigmoid_focal_loss"
    check_floating_tensor(input, fn, "input")
    check_same_shape(input, target, fn)
    check_reduction(reduction, fn)
    a = None if alpha is None else check_closed_interval(alpha, 0.0, 1.0, fn, "alpha")
    g = check_nonnegative(gamma, fn, "gamma")
    if alpha_mode not in ("per_class", "uniform"):
        raise ValueError(f"{fn}: alpha_mode must be 'per_class' or 'uniform', got {alpha_mode!r}")

    y = target.to(dtype=input.dtype, device=input.device)
    # BCE(x, y) = -y log sigma(x) - (1-y) log sigma(-x).  Equal to
    # F.binary_cross_entropy_with_logits(input, y, reduction="none"), but that one evaluates
    # max(x, 0) - x y + log(1 + exp(-|x|)) and so is only *absolutely* accurate: it returns exactly 0
    # for a well-classified example (e.g. x = 40, y = 1, true value 4e-18).  With logsigmoid each term
    # is relatively accurate, and for y in [0, 1] they are both >= 0, so their sum is as well.
    if (g == 0.0 or g >= 1.0) and not y.requires_grad:  # (1 - p_t)^gamma differentiable everywhere: fused
        loss = _SigmoidFocal.apply(input, y, g)
    else:
        bce = -(y * F.logsigmoid(input) + (1.0 - y) * F.logsigmoid(-input))
        one_minus_pt = (1.0 - y) * torch.sigmoid(input) + y * torch.sigmoid(-input)
        loss = _focal_modulation(one_minus_pt, g) * bce
    if a is not None:
        alpha_weight = a * y + (1.0 - a) * (1.0 - y) if alpha_mode == "per_class" else a
        loss = alpha_weight * loss
    return reduce(loss, reduction, fn)


def softmax_focal_loss(
    input: torch.Tensor,
    target: torch.Tensor,
    alpha: float | torch.Tensor | None = None,
    gamma: float = 2.0,
    ignore_index: int = -100,
    reduction: Reduction = "mean",
) -> torch.Tensor:
    r"""Multi-class (softmax) focal loss from logits, with class indices as targets.

    For each element with target class :math:`c \ne` ``ignore_index``, with
    :math:`\log p_c = \operatorname{log\_softmax}(x)_c` over the class dimension,

    .. math:: \ell = -\alpha_c\,(1 - p_c)^\gamma \log p_c.

    It is evaluated through the log-odds against the target class,
    :math:`d = \operatorname{logsumexp}_{j \ne c} x_j - x_c`, as
    :math:`-\log p_c = \operatorname{softplus}(d) = -\log\sigma(-d)` and :math:`1 - p_c = \sigma(d)`.
    This equals ``-log_softmax(x)[c]`` and ``-expm1(log_softmax(x)[c])`` but stays *relatively* accurate
    when :math:`p_c \to 1`, where ``log_softmax`` (hence ``F.cross_entropy``) returns :math:`\log p_c`
    with only absolute accuracy (e.g. exactly 0 in float32 for logits ``[30, 0, 0]``, class 0, true
    value :math:`1.9 \cdot 10^{-13}`).  :math:`\gamma = 0` with ``alpha=None`` is the cross-entropy of
    ``F.cross_entropy`` (to rounding).  Finite with finite gradient for all finite logits, including
    :math:`0 < \gamma < 1` (see :func:`_focal_modulation`).

    Shapes:
        ``input``: ``(N, C)`` or ``(N, C, d1, ..., dk)`` logits;
        ``target``: ``(N,)`` or ``(N, d1, ..., dk)`` integer class indices in ``[0, C)`` or
        ``ignore_index``; output for ``'none'``: the shape of ``target``, with 0 at ignored positions.

    Args:
        input: logits, floating point, class dimension 1.
        target: integer class indices.
        alpha: ``None`` (:math:`\alpha_c = 1`), a number in ``[0, 1]`` (the same factor for every class)
            or a tensor (or array-like) of shape ``(C,)`` of per-class weights
            (:math:`\alpha_c` = ``alpha[c]``; its values are not range-checked).
        gamma: focusing parameter :math:`\gamma \ge 0` (finite).
        ignore_index: target value whose elements contribute 0 and are excluded from the mean.
        reduction: ``'none'`` | ``'mean'`` (sum over non-ignored elements divided by their number; NaN
            if there are none, as in ``F.cross_entropy``) | ``'sum'``.

    Raises:
        ValueError: wrong shapes, ``gamma < 0``, a float ``alpha`` outside ``[0, 1]``, an ``alpha``
            tensor not of shape ``(C,)``, or unknown ``reduction``.
        ClassIndexError: (a ``ValueError`` and ``IndexError``) a target index outside ``[0, C)`` that is
            not ``ignore_index``.
        TypeError: ``input`` not floating point, ``target`` not integer.

    References:
        T.-Y. Lin, P. Goyal, R. Girshick, K. He, P. Dollár (2017), "Focal Loss for Dense Object
        Detection", ICCV 2017, arXiv:1708.02002.  The paper states the binary form (eq. 5) and notes that
        the extension to the multi-class (softmax) case is straightforward; this is that extension.
    """
    fn = "softmax_focal_loss"
    check_floating_tensor(input, fn, "input")
    check_integer_tensor(target, fn, "target")
    if input.dim() < 2:
        msg = f"{fn}: input must have shape (N, C) or (N, C, d1, ..., dk), got {fmt_shape(input.shape)}"
        raise ValueError(msg)
    num_classes = int(input.shape[1])
    if num_classes < 1:
        raise ValueError(f"{fn}: input must have at least one class (C >= 1), got {fmt_shape(input.shape)}")
    expected = (int(input.shape[0]), *(int(s) for s in input.shape[2:]))
    if tuple(target.shape) != expected:
        raise ValueError(
            f"{fn}: target must have shape {fmt_shape(expected)} (input's shape without dimension 1) "
            f"for input of shape {fmt_shape(input.shape)}, got {fmt_shape(target.shape)}"
        )
    check_reduction(reduction, fn)
    g = check_nonnegative(gamma, fn, "gamma")
    if isinstance(ignore_index, bool) or not isinstance(ignore_index, numbers.Integral):
        raise TypeError(f"{fn}: ignore_index must be an int, got {type(ignore_index).__name__}")
    ignore_index = int(ignore_index)

    alpha_t: torch.Tensor | float | None
    if alpha is not None and not isinstance(alpha, (torch.Tensor, numbers.Real)):
        try:  # a sequence or NumPy array of per-class weights
            alpha = torch.as_tensor(alpha, dtype=input.dtype, device=input.device)
        except (TypeError, ValueError, RuntimeError) as exc:
            msg = f"{fn}: alpha must be None, a number or a (C,) tensor, got {type(alpha).__name__}"
            raise TypeError(msg) from exc
    if alpha is None:
        alpha_t = None
    elif isinstance(alpha, torch.Tensor) and alpha.dim() > 0:
        if tuple(alpha.shape) != (num_classes,):
            raise ValueError(
                f"{fn}: alpha tensor must have shape (C,) = ({num_classes},), got {fmt_shape(alpha.shape)}"
            )
        alpha_t = alpha.to(dtype=input.dtype, device=input.device)
    else:
        alpha_t = check_closed_interval(alpha, 0.0, 1.0, fn, "alpha")

    target = target.to(device=input.device)
    valid = check_class_indices(target, num_classes, ignore_index, fn)
    safe_target = torch.where(valid, target, torch.zeros_like(target)).long()

    # d = logsumexp_{j != c} x_j - x_c; then -log p_c = softplus(d) and 1 - p_c = sigmoid(d).  The target
    # class is excluded from the logsumexp by overwriting it (out of place) with the dtype's lowest finite
    # value, not -inf, so that C == 1 (empty set of other classes) still has finite gradients: d is then
    # -inf or hugely negative and the loss term is 0, as it should be.
    # classes outermost, (C, N d1 ... dk): each op below runs on long contiguous rows (along dim 1 of a small
    # spatial size, torch's CPU kernels loop over a few elements at a time, ~10x slower)
    logits = input.movedim(1, 0).reshape(num_classes, -1)
    index = safe_target.reshape(1, -1)
    x_c = logits.gather(0, index).squeeze(0)
    others = logits.scatter(0, index, torch.finfo(input.dtype).min)
    d = (torch.logsumexp(others, dim=0) - x_c).reshape(safe_target.shape)
    nll = -F.logsigmoid(-d)
    loss = _focal_modulation(torch.sigmoid(d), g) * nll
    if isinstance(alpha_t, torch.Tensor):
        loss = alpha_t[safe_target] * loss
    elif alpha_t is not None:
        loss = alpha_t * loss
    loss = torch.where(valid, loss, torch.zeros_like(loss))

    if reduction == "none":
        return loss
    if reduction == "sum":
        return loss.sum()
    # Mean over the non-ignored elements.  Accumulate in at least float32 so that neither the sum nor the
    # count overflows in float16 (max 65504); the result is returned in input's dtype.
    acc = working_dtype(input.dtype)
    return (loss.sum(dtype=acc) / valid.sum().to(acc)).to(input.dtype)


def hinge_loss(
    input: torch.Tensor, target: torch.Tensor, margin: float = 1.0, reduction: Reduction = "mean"
) -> torch.Tensor:
    r"""Binary hinge loss on real-valued scores.

    .. math:: \ell = \max(0,\ m - y\,x)

    for score :math:`x` and label :math:`y \in \{-1, +1\}`; zero once the example is classified correctly
    with functional margin at least :math:`m`.  At the kink autograd returns the subgradient 0.

    Args:
        input: scores, floating-point tensor of shape ``(*)``.
        target: labels in :math:`\{-1, +1\}`, same shape ``(*)`` (converted to ``input``'s dtype; values
            are not checked).
        margin: :math:`m`, a finite number :math:`\ge 0`.
        reduction: ``'none'`` (shape ``(*)``) | ``'mean'`` | ``'sum'``.

    Raises:
        ValueError: shapes differ, ``margin`` negative or not finite, or ``reduction`` unknown.

    References:
        C. Cortes and V. Vapnik (1995), "Support-Vector Networks", Machine Learning 20, 273-297.
    """
    fn = "hinge_loss"
    check_floating_tensor(input, fn, "input")
    check_same_shape(input, target, fn)
    check_reduction(reduction, fn)
    m = check_nonnegative(margin, fn, "margin")
    y = target.to(dtype=input.dtype, device=input.device)
    loss = torch.relu(m - y * input)  # relu's backward is one vectorised kernel, clamp_min's a slower select
    return reduce(loss, reduction, fn)


OWN: dict[str, Callable] = {
    "sigmoid_focal_loss": sigmoid_focal_loss,
    "softmax_focal_loss": softmax_focal_loss,
    "hinge_loss": hinge_loss,
}
