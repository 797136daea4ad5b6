"""Float64 references of the sequence losses: compositions of the classification ``cross_entropy``.

* ``sequence_cross_entropy(logits (B, T, V), target (B, T))`` is ``cross_entropy`` with the
  vocabulary as the class axis, always the mean over the non-ignored tokens (no ``reduction``);
  a mean over zero tokens (all ignored) is NaN, as torch's ``cross_entropy`` (0 / 0).
  ``perplexity = exp(sequence_cross_entropy)`` (e.g. Jurafsky & Martin, *Speech and Language
  Processing*, 3rd ed., ch. 3: the exponentiated per-token cross-entropy).
* ``linear_cross_entropy(hidden (N, H), weight (V, H), target (N,), bias)`` is
  ``cross_entropy(hidden @ weight.T + bias, target)`` (the fused "cut cross-entropy" of Wijmans et
  al. 2024, arXiv:2411.09009, whose value is that of the materialised logits); the reference is not
  memory-limited, so it materialises the logits in float64 and differentiates analytically.

Error scale of the linear loss. An implementation forms each logit ``z_v = sum_h x_h w_vh + b_v``
in its dtype: a dot product of H terms plus the bias has an absolute error of at most
``(H + 1) u D_v`` with ``D_v = sum_h |x_h w_vh| + |b_v|`` (Higham, eq. 3.5, gamma_(H+1)). A
perturbation ``delta`` of the logits moves ``CE = lse(z) - z_y`` by ``sum_c p_c delta_c - delta_y``,
so the value's scale adds ``(H + 1) (D_y + sum_c p_c D_c)`` to cross_entropy's own; the softmax
``p_v`` moves by ``p_v (delta_v - sum_c p_c delta_c)``, so ``dCE/dz_v`` adds
``(H + 1) p_v (D_v + sum_c p_c D_c)``. The gradients of hidden, weight and bias are sums over V
(resp. N) of products ``G w`` (``G^T x``, ``G``): their scale is the propagated scale of G plus the
summation bound ``n sum |terms|`` (Higham eq. 4.4) with n the number of terms summed.
"""

from __future__ import annotations

import numpy as np

from lossguard.reference import classification as C
from lossguard.reference._core import Gradient, Terms, log_softmax, loss_reference


def _classes_second(logits) -> np.ndarray:
    """(B, T, V) -> (B, V, T): the layout ``cross_entropy`` takes (class axis 1)."""
    return np.moveaxis(np.asarray(logits, dtype=np.float64), -1, 1)


@loss_reference
def sequence_cross_entropy(logits, target, ignore_index=-100, label_smoothing=0.0) -> Terms:
    """Token-level cross-entropy over (B, T, V) logits and (B, T) class indices, mean over non-ignored tokens.

    Per token: torch's cross_entropy with label smoothing t = (1 - eps) onehot + eps / V (Szegedy et
    al. 2016); ignored tokens (target == ignore_index) contribute 0 and leave the denominator. The
    loss has no ``reduction``: it is always that mean (NaN when every token is ignored).
    """
    return C.cross_entropy.terms(
        _classes_second(logits), target, ignore_index=ignore_index, reduction="none", label_smoothing=label_smoothing
    )


@sequence_cross_entropy.gradient("logits")
def _sequence_cross_entropy_grad(logits, target, ignore_index=-100, label_smoothing=0.0):
    """d/dlogits = (softmax - t) per non-ignored token (0 at ignored ones); the mean's 1 / count is applied by grad."""
    g = C.cross_entropy.grad(
        _classes_second(logits), target, ignore_index=ignore_index, reduction="sum", label_smoothing=label_smoothing
    )["input"]
    return {"logits": Gradient(np.moveaxis(g.value, 1, -1), np.moveaxis(g.scale, 1, -1))}


def perplexity(logits, target, ignore_index=-100, label_smoothing=0.0) -> np.ndarray:
    """exp(sequence_cross_entropy): the exponential of the mean per-token cross-entropy (NaN when all ignored)."""
    with np.errstate(over="ignore", invalid="ignore"):
        return np.exp(sequence_cross_entropy(logits, target, ignore_index, label_smoothing))


def perplexity_error_scale(logits, target, ignore_index=-100, label_smoothing=0.0) -> np.ndarray:
    """Scale of exp(L): an absolute error e in L becomes a relative one in exp(L), exp rounds once.

    |exp(L + e) - exp(L)| ~ exp(L) |e| with |e| <= K u scale(L), plus u exp(L) for exp itself:
    scale = exp(L) (scale(L) + 1).
    """
    scale = sequence_cross_entropy.error_scale(logits, target, ignore_index, label_smoothing)
    return perplexity(logits, target, ignore_index, label_smoothing) * (scale + 1.0)


# --- linear cross-entropy -------------------------------------------------------------------


def _linear_parts(hidden, weight, bias):
    """Float64 logits z = x W^T + b, their magnitudes D = |x| |W|^T + |b| and the dot-product length H + 1."""
    x = np.asarray(hidden, dtype=np.float64)
    w = np.asarray(weight, dtype=np.float64)
    b = np.zeros(w.shape[0]) if bias is None else np.asarray(bias, dtype=np.float64)
    return x @ w.T + b, np.abs(x) @ np.abs(w).T + np.abs(b), x.shape[-1] + 1


def _onehot(target, ignore_index, n_classes) -> tuple[np.ndarray, np.ndarray]:
    """(non-ignored mask (N,), one-hot targets (N, V) with zero rows at ignored tokens)."""
    t = np.asarray(target)
    valid = t != ignore_index
    return valid, np.eye(n_classes)[np.where(valid, t, 0)] * valid[..., None]


@loss_reference
def linear_cross_entropy(hidden, weight, target, bias=None, ignore_index=-100, reduction="mean") -> Terms:
    """cross_entropy(hidden @ weight.T + bias, target, ignore_index, reduction) on float64 logits.

    hidden (N, H), weight (V, H), bias None or (V,), target (N,) class indices; 'mean' over the
    non-ignored tokens (NaN when there are none). Scale: cross_entropy's plus the logits' rounding
    (module docstring).
    """
    z, magnitude, terms = _linear_parts(hidden, weight, bias)
    ce = C.cross_entropy.terms(z, target, ignore_index=ignore_index, reduction="none")
    valid, onehot = _onehot(target, ignore_index, z.shape[-1])
    p = np.exp(log_softmax(z)[0]) if z.size else np.zeros_like(z)
    spread = terms * (np.sum(onehot * magnitude, axis=-1) + np.sum(p * magnitude, axis=-1))
    return Terms(ce.values, ce.scale + np.where(valid, spread, 0.0), ce.normaliser)


@linear_cross_entropy.gradient("hidden", "weight", "bias")
def _linear_cross_entropy_grad(hidden, weight, target, bias=None, ignore_index=-100, reduction="mean"):
    """G = dCE/dz = softmax(z) - onehot (0 rows at ignored tokens).

    d/dhidden = G W, d/dweight = G^T x, d/dbias = sum_n G (scales: module docstring).
    """
    x = np.asarray(hidden, dtype=np.float64)
    w = np.asarray(weight, dtype=np.float64)
    z, magnitude, terms = _linear_parts(hidden, weight, bias)
    g = C.cross_entropy.grad(z, target, ignore_index=ignore_index, reduction="sum")["input"]
    valid, _ = _onehot(target, ignore_index, z.shape[-1])
    p = np.exp(log_softmax(z)[0]) if z.size else np.zeros_like(z)
    z_shift = terms * p * (magnitude + np.sum(p * magnitude, axis=-1, keepdims=True))
    g_scale = g.scale + np.where(valid[..., None], z_shift, 0.0)
    n_tokens, n_classes = z.shape
    grads = {
        "hidden": Gradient(g.value @ w, g_scale @ np.abs(w) + n_classes * (np.abs(g.value) @ np.abs(w))),
        "weight": Gradient(g.value.T @ x, g_scale.T @ np.abs(x) + n_tokens * (np.abs(g.value).T @ np.abs(x))),
    }
    if bias is not None:
        grads["bias"] = Gradient(g.value.sum(axis=0), g_scale.sum(axis=0) + n_tokens * np.abs(g.value).sum(axis=0))
    return grads
