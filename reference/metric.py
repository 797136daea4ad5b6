"""Float64 references of the metric-learning and ranking losses (docs/LOSSES.md, "Metric learning and ranking").

Norms are evaluated scaled by the largest component (``m * ||v / m||_p``), so they neither overflow
nor underflow where the exact norm is representable; everything else is sums of products and a
max-shifted log-sum-exp, so the references are accurate to a few ulps relative to their error scales
(``tests/reference/test_metric_mpmath.py`` states the bounds met).

Error scales (see ``lossguard.reference._core``), for an implementation evaluating the usual formulas in a
dtype with unit roundoff u; ``D`` is the embedding dimension:

* a euclidean or p-norm distance ``d = ||x - y (+ eps)||_p``: each difference rounds once (relative
  to ``|x_k - y_k| + eps``), the sum of D non-negative powers ``(D - 1) u``, the powers and the root a
  few u: absolute error below ``(D + 4) u (d + ||x - y||_p + eps)``; its scale ``err_d`` is that
  magnitude times ``(D + 4) / 4`` (the tolerance's K = 8 roundings cover the remaining factor 4 / 8).
* a cosine ``x . y / (||x|| ||y||)``: the dot product of D terms errs by ``D u sum_k |x_k y_k|``, the
  norms relative ``(D + 2) u``: ``err_cos = (D + 4) (sum_k |x_k y_k| / (||x|| ||y||) + |cos|)``.
* a hinge ``max(0, t)`` has the scale of ``t``'s terms (``|margin|`` and the distances' scales) also
  where it is 0, since an implementation's ``t`` may round across the kink.
"""

from __future__ import annotations

import numpy as np
from scipy.special import expit

from lossguard.reference._core import Gradient, Terms, log_softmax, loss_reference, sigmoid, softplus

NORMALIZE_EPS = 1e-12  # F.normalize divides by max(||x||, eps): a zero embedding stays zero
# torch's cosine_embedding_loss adds EPSILON to each squared norm: ATen (Loss.cpp) declares it a float 1e-12
COSINE_EPS = float(np.float32(1e-12))
KINK_BAND = 2.0**-8  # the largest unit roundoff of the dtypes (bfloat16): "within rounding of a kink"


def _f(x) -> np.ndarray:
    return np.asarray(x, dtype=np.float64)


def p_norm(v: np.ndarray, p: float = 2.0, axis: int = -1) -> np.ndarray:
    """||v||_p along ``axis``, scaled by max |v_k| (no overflow or underflow of the powers)."""
    a = np.abs(_f(v))
    top = np.max(a, axis=axis, keepdims=True)
    safe = np.where(top > 0, top, 1.0)
    inner = np.sum((a / safe) ** p, axis=axis, keepdims=True) ** (1.0 / p)
    return np.squeeze(np.where(top > 0, top * inner, 0.0), axis=axis)


def _p_norm_grad(v: np.ndarray, d: np.ndarray, p: float) -> np.ndarray:
    """d ||v||_p / dv = sign(v) (|v| / d)^(p - 1); 0 where d = 0 (the subgradient torch's norm returns)."""
    safe = np.where(d > 0, d, 1.0)[..., None]
    return np.where(d[..., None] > 0, np.sign(v) * (np.abs(v) / safe) ** (p - 1.0), 0.0)


def distance_scale(diff: np.ndarray, d: np.ndarray, p: float = 2.0, eps: float = 0.0) -> np.ndarray:
    """Error scale err_d of a distance d = ||diff + eps||_p computed from its D components (module doc).

    For p other than a power of two, 1 / p is not representable: the root pow(s, fl(1/p)) of the sum
    s = d^p carries the relative error (1/p) u |ln s| = u |ln d| of its rounded exponent, hence d |ln d|
    (a cube root of 1e166 is off by some 60 roundings that way, however accurately s is summed)."""
    dims = diff.shape[-1]
    scale = (dims + 4.0) / 4.0 * (d + p_norm(diff, p) + abs(eps) * dims ** (1.0 / p))
    if not np.log2(p).is_integer():
        with np.errstate(divide="ignore", invalid="ignore"):
            scale = scale + np.where(d > 0, d * np.abs(np.log(np.where(d > 0, d, 1.0))), 0.0)
    return scale


def _squared_hinge(h: np.ndarray, err: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """max(0, h)^2 and its scale: 2 |h| err + h^2, with |h| raised to KINK_BAND err within that band of the
    kink (an implementation's h may round to a small positive value where the exact h is <= 0)."""
    near = np.abs(h) <= KINK_BAND * err
    hinge = np.maximum(h, 0.0)
    h_eff = np.where(near, np.maximum(hinge, KINK_BAND * err), hinge)
    return hinge * hinge, h_eff * h_eff + 2.0 * h_eff * err


# --- contrastive ----------------------------------------------------------------------------


def _contrastive_parts(x1, x2, label, margin):
    e = _f(x1) - _f(x2)
    d = p_norm(e)
    y = _f(label)
    err_d = distance_scale(e, d)
    return e, d, y, margin - d, err_d


@loss_reference
def contrastive_loss(x1, x2, label, margin=1.0, reduction="mean", squared=True) -> Terms:
    """Contrastive loss (Hadsell, Chopra & LeCun 2006, eq. 4 without the 1/2): label d^2 + (1 - label)
    max(0, margin - d)^2, d the euclidean distance of each row of x1 and x2 (N, D); label 1 = similar.

    Variant ``squared=False``: neither term squared, label d + (1 - label) max(0, margin - d), the form of
    pytorch-metric-learning's ContrastiveLoss (its documentation: "the hinges are not squared, unlike the
    paper's") with an LpDistance of power 1 and pos_margin 0.

    Scale: d^2 carries the relative error of D squares summed, ``2 err_d d``; the hinge term that of
    ``margin - d`` (|margin| + err_d) through the square (``_squared_hinge``). Not squared: d's own err_d (>= d),
    and the hinge's |margin| + err_d also where it is 0 (an implementation's margin - d may round across it).
    """
    _, d, y, h, err_d = _contrastive_parts(x1, x2, label, margin)
    if not squared:
        values = y * d + (1.0 - y) * np.maximum(h, 0.0)
        return Terms(values, np.abs(y) * (d + err_d) + np.abs(1.0 - y) * (abs(margin) + err_d))
    hinge2, hinge_scale = _squared_hinge(h, abs(margin) + err_d)
    values = y * d * d + (1.0 - y) * hinge2
    scale = np.abs(y) * (d * d + 2.0 * d * err_d) + np.abs(1.0 - y) * hinge_scale
    return Terms(values, scale)


@contrastive_loss.gradient("x1", "x2", "label")
def _contrastive_grad(x1, x2, label, margin=1.0, reduction="mean", squared=True):
    """d/dx1 = 2 e [label - (1 - label) max(0, margin - d) / d] (e = x1 - x2) = -d/dx2;
    d/dlabel = d^2 - max(0, margin - d)^2. Kinks: d = 0 with a positive hinge, d = margin.
    Not squared (``_contrastive_unsquared_grad``): kinks also at d = 0 with label != 0."""
    if not squared:
        return _contrastive_unsquared_grad(x1, x2, label, margin)
    e, d, y, h, err_d = _contrastive_parts(x1, x2, label, margin)
    hinge = np.maximum(h, 0.0)
    safe = np.where(d > 0, d, 1.0)
    ratio = np.where(d > 0, hinge / safe, 0.0)
    coefficient = 2.0 * (y - (1.0 - y) * ratio)
    d_x1 = coefficient[:, None] * e
    x_scale = 2.0 * (np.abs(y) + np.abs(1.0 - y) * (ratio + (abs(margin) + err_d) / safe))[:, None] * np.abs(e)
    hinge2, hinge_scale = _squared_hinge(h, abs(margin) + err_d)
    return {
        "x1": Gradient(d_x1, x_scale),
        "x2": Gradient(-d_x1, x_scale),
        "label": Gradient(d * d - hinge2, d * d + 2.0 * d * err_d + hinge_scale),
    }


def _contrastive_unsquared_grad(x1, x2, label, margin):
    """label d + (1 - label) max(0, margin - d): d/dx1 = [label - (1 - label) [margin > d]] e / d = -d/dx2 (0 at
    d = 0, the subgradient torch's norm returns); d/dlabel = d - max(0, margin - d).

    Scale: each component of the unit vector e / d carries the D + 4 roundings of d and one of e_k, (D + 4) / 4 of
    |e_k| / d against the tolerance's 8; the hinge's coefficient counts where the hinge is within KINK_BAND of its
    scale (an implementation's margin - d may round to either side there)."""
    e, d, y, h, err_d = _contrastive_parts(x1, x2, label, margin)
    safe = np.where(d > 0, d, 1.0)
    unit = np.where(d[:, None] > 0, e / safe[:, None], 0.0)
    hinge_scale = abs(margin) + err_d
    active = h > 0
    near = active | (np.abs(h) <= KINK_BAND * hinge_scale)
    d_x1 = (y - (1.0 - y) * active)[:, None] * unit
    x_scale = (np.shape(e)[-1] + 4.0) / 4.0 * (np.abs(y) + np.abs(1.0 - y) * near)[:, None] * np.abs(unit)
    return {
        "x1": Gradient(d_x1, x_scale),
        "x2": Gradient(-d_x1, x_scale),
        "label": Gradient(d - np.maximum(h, 0.0), d + err_d + hinge_scale),
    }


# --- triplet ----------------------------------------------------------------------------------


EPS_MODES = ("difference", "root")


def _root_distance(diff: np.ndarray, p: float, eps: float) -> np.ndarray:
    """(sum_k |diff_k|^p + eps)^(1/p), from the scaled norm n = ||diff||_p: n (1 + eps / n^p)^(1/p) where
    n^p >= eps, else eps^(1/p) (1 + n^p / eps)^(1/p) (a ratio <= 1 under the root: no overflow, and n^p may
    underflow harmlessly); 0 where n = eps = 0."""
    n = p_norm(diff, p)
    with np.errstate(over="ignore", under="ignore", divide="ignore", invalid="ignore"):
        power = n**p
        big = power >= eps
        safe = np.where(power > 0, power, 1.0)
        above = n * (1.0 + eps / safe) ** (1.0 / p)
        below = eps ** (1.0 / p) * (1.0 + power / eps) ** (1.0 / p) if eps > 0 else np.zeros_like(n)
    return np.where(n == 0, eps ** (1.0 / p), np.where(big, above, below))


def _pairwise(x, y, p, eps, eps_mode="difference"):
    """torch.pairwise_distance(x, y, p, eps) = ||x - y + eps||_p (eps_mode 'difference'), or (sum_k |x_k -
    y_k|^p + eps)^(1/p) (eps_mode 'root'), with the vector whose norm's gradient it takes and its scale.

    The root's scale: the D powers and their sum carry (D + p) u relative to s = sum |diff_k|^p, eps one more,
    the root divides them by p; err_d = (D + 4) (d + ||diff||_p) / 4 (``distance_scale`` without eps) is over
    that, d >= ||diff||_p."""
    diff = _f(x) - _f(y)
    if eps_mode == "root":
        d = _root_distance(diff, p, eps)
        return diff, d, distance_scale(diff, d, p)
    if eps_mode != "difference":
        raise ValueError(f"eps_mode must be one of {EPS_MODES}, got {eps_mode!r}")
    v = diff + eps
    d = p_norm(v, p)
    return v, d, distance_scale(diff, d, p, eps)


def triplet_parts(anchor, positive, negative, margin, p, eps, swap, eps_mode="difference"):
    v_ap, d_ap, s_ap = _pairwise(anchor, positive, p, eps, eps_mode)
    v_an, d_an, s_an = _pairwise(anchor, negative, p, eps, eps_mode)
    v_pn, d_pn, s_pn = _pairwise(positive, negative, p, eps, eps_mode)
    use_pn = swap & (d_pn < d_an)
    d_neg = np.where(use_pn, d_pn, d_an)
    s_neg = np.where(swap, np.maximum(s_an, s_pn), s_an)
    t = d_ap - d_neg + margin
    return (v_ap, d_ap, v_an, d_an, v_pn, d_pn, use_pn), t, s_ap + s_neg + abs(margin)


@loss_reference
def triplet_margin_loss(
    anchor, positive, negative, margin=1.0, p=2.0, eps=1e-6, swap=False, reduction="mean", eps_mode="difference"
) -> Terms:
    """torch.nn.functional.triplet_margin_loss (Balntas et al. 2016): max(d(a, p) - d(a, n) + margin, 0),
    d(x, y) = ||x - y + eps||_p (torch.pairwise_distance: eps is added to the difference); swap: d(a, n)
    is replaced by min(d(a, n), d(p, n)). Inputs (N, D) or (D,); margin > 0 (torch raises otherwise).
    Variant eps_mode='root': d(x, y) = (sum_k |x_k - y_k|^p + eps)^(1/p), eps added under the root (optax's
    triplet_margin_loss): the same distance for eps = 0, d(x, x) = eps^(1/p) otherwise.
    """
    _, t, scale = triplet_parts(anchor, positive, negative, margin, p, eps, swap, eps_mode)
    return Terms(np.maximum(t, 0.0), scale + np.abs(t))


@triplet_margin_loss.gradient("anchor", "positive", "negative")
def _triplet_grad(
    anchor, positive, negative, margin=1.0, p=2.0, eps=1e-6, swap=False, reduction="mean", eps_mode="difference"
):
    """Where t > 0: d/da = g(v_ap) - g(v_an) [or - 0 with swap], g = d||v||_p / dv; kinks: t = 0, d = 0, swap ties.
    eps_mode='root': g = sign(v) (|v| / d)^(p - 1) with v = x - y and d the distance with eps under the root (the
    same formula: d (sum |v_k|^p + eps)^(1/p) / dv_k = sign(v_k) |v_k|^(p - 1) / d^(p - 1))."""
    parts = triplet_parts(anchor, positive, negative, margin, p, eps, swap, eps_mode)
    (v_ap, d_ap, v_an, d_an, v_pn, d_pn, use_pn), t, _ = parts
    active = (t > 0)[..., None]
    g_ap = _p_norm_grad(v_ap, d_ap, p)
    g_an = np.where(use_pn[..., None], 0.0, _p_norm_grad(v_an, d_an, p))
    g_pn = np.where(use_pn[..., None], _p_norm_grad(v_pn, d_pn, p), 0.0)
    d_a = np.where(active, g_ap - g_an, 0.0)
    d_p = np.where(active, -g_ap - g_pn, 0.0)
    d_n = np.where(active, g_an + g_pn, 0.0)
    dims = np.shape(anchor)[-1]
    # each component of g is (|v_k| / d)^(p - 1) <= 1, computed with (D + p + 4) roundings of itself
    unit = (dims + p + 4.0) / 4.0 * np.where(active, np.abs(g_ap) + np.abs(g_an) + np.abs(g_pn) + 1e-300, 0.0)
    return {"anchor": Gradient(d_a, unit), "positive": Gradient(d_p, unit), "negative": Gradient(d_n, unit)}


# --- batch-hard triplet -------------------------------------------------------------------------


def batch_hard_parts(embeddings, labels, margin):
    x = _f(embeddings)
    labels = np.asarray(labels)
    diff = x[:, None, :] - x[None, :, :]
    d = p_norm(diff)
    err_d = distance_scale(diff, d)
    same = labels[:, None] == labels[None, :]
    positive = same & ~np.eye(len(labels), dtype=bool)
    negative = ~same
    valid = positive.any(axis=1) & negative.any(axis=1)
    hardest_pos = np.argmax(np.where(positive, d, -np.inf), axis=1)
    hardest_neg = np.argmin(np.where(negative, d, np.inf), axis=1)
    rows = np.arange(len(labels))
    t = d[rows, hardest_pos] - d[rows, hardest_neg] + margin
    scale = err_d[rows, hardest_pos] + err_d[rows, hardest_neg] + abs(margin)
    return x, diff, d, valid, hardest_pos, hardest_neg, t, scale


@loss_reference
def batch_hard_triplet_loss(embeddings, labels, margin=1.0) -> Terms:
    """Batch-hard triplet loss (Hermans, Beyer & Leibe 2017, eq. 5): for each anchor with at least one
    positive (same label, another index) and one negative, max(0, max_pos d - min_neg d + margin) with
    euclidean d; the mean over those anchors; 0 when there are none. Embeddings (N, D), labels (N,).
    """
    *_, valid, _, _, t, scale = batch_hard_parts(embeddings, labels, margin)
    if not np.any(valid):
        return Terms(np.zeros(1), np.zeros(1), 1.0)
    return Terms(np.maximum(t[valid], 0.0), scale[valid] + np.abs(t[valid]))


@batch_hard_triplet_loss.gradient("embeddings")
def _batch_hard_grad(embeddings, labels, margin=1.0):
    """Each valid anchor a with t_a > 0, hardest positive j, hardest negative k adds u_aj - u_ak to x_a,
    -u_aj to x_j and u_ak to x_k, u_ab = (x_a - x_b) / d_ab (0 at d = 0); for the sum (grad divides by the count).
    Kinks: ties among the hardest pairs, d = 0 at a chosen pair, t = 0."""
    x, diff, d, valid, pos, neg, t, _ = batch_hard_parts(embeddings, labels, margin)
    g = np.zeros_like(x)
    unit = np.zeros_like(x)
    rows = np.arange(len(x))
    safe = np.where(d > 0, d, 1.0)[..., None]
    u = np.where(d[..., None] > 0, diff / safe, 0.0)
    active = valid & (t > 0)
    for index, sign in ((pos, 1.0), (neg, -1.0)):
        contribution = np.where(active[:, None], sign * u[rows, index], 0.0)
        np.add.at(g, rows, contribution)
        np.add.at(g, index, -contribution)
        np.add.at(unit, rows, np.abs(contribution))
        np.add.at(unit, index, np.abs(contribution))
    dims = x.shape[-1]
    if not np.any(valid):
        return {"embeddings": Gradient(g, unit)}
    return {"embeddings": Gradient(g, (dims + 6.0) / 4.0 * unit)}


# --- InfoNCE, NT-Xent -----------------------------------------------------------------------------


def normalize(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(x / max(||x||, 1e-12), ||x||) along the last axis: F.normalize's convention (a zero vector stays 0)."""
    x = _f(x)
    n = p_norm(x)
    return x / np.maximum(n, NORMALIZE_EPS)[..., None], n


def _normalize_back(grad_hat: np.ndarray, x_hat: np.ndarray, n: np.ndarray, scale_hat: np.ndarray):
    """Back through x_hat = x / max(||x||, eps): (G - (G . x_hat) x_hat) / ||x|| where ||x|| > eps, G / eps
    below; the scale keeps both terms before their cancellation."""
    big = (n > NORMALIZE_EPS)[..., None]
    denominator = np.maximum(n, NORMALIZE_EPS)[..., None]
    along = np.sum(grad_hat * x_hat, axis=-1, keepdims=True)
    along_scale = np.sum(scale_hat * np.abs(x_hat), axis=-1, keepdims=True)
    value = np.where(big, grad_hat - along * x_hat, grad_hat) / denominator
    scale = np.where(big, scale_hat + along_scale * np.abs(x_hat), scale_hat) / denominator
    return value, scale


def temperature_value(temperature) -> float:
    """The temperature as a float: a Python number or a 0-d float array (a learnable temperature)."""
    t = np.asarray(temperature, dtype=np.float64)
    if t.ndim != 0:
        raise ValueError(f"temperature must be a number or a 0-d array, got shape {t.shape}")
    return float(t)


def _temperature_grad(g, g_scale, logits, err_logits, temperature):
    """d/dT of the summed cross-entropies whose logits are l = s / T with dL/dl = g: dl/dT = -l / T, so
    dL/dT = -(1/T) sum g l over every logit (self-similarities, -inf and g = 0, left out).

    Error analysis (autograd's route: the logits' gradient g, times l / T, divided by T again, summed over all
    n logits of the batch): each g errs relatively by its ``g_scale / |g|``, each l absolutely by its
    ``err_logits``, the two divisions by T round twice, and the sum of n terms adds (n - 1) u sum |g l| / T
    (Higham eq. 4.4). The terms cancel (sum g = 0 per anchor: at equal logits the derivative is exactly 0),
    so the scale is the magnitude before cancellation:
    ``(1/T) sum (g_scale |l| + |g| err_l + (n + 2) |g l|)``."""
    finite = np.isfinite(logits)
    lg = np.where(finite, logits, 0.0)
    g = np.where(finite, g, 0.0)
    n = np.count_nonzero(finite)
    value = -np.sum(g * lg) / temperature
    with np.errstate(over="ignore"):  # |l|^2 beyond float64 (logits of 1e155): a scale of inf, judged nowhere
        scale = np.sum(np.where(finite, g_scale, 0.0) * np.abs(lg) + np.abs(g) * np.where(finite, err_logits, 0.0))
        scale = (scale + (n + 2.0) * np.sum(np.abs(g * lg))) / temperature
    return Gradient(np.asarray(value), np.asarray(scale))


def _info_nce_parts(query, positive_key, negative_keys, temperature, normalize_):
    temperature = temperature_value(temperature)
    q, k_pos, k_neg = _f(query), _f(positive_key), _f(negative_keys)
    keys = np.concatenate([k_pos[:, None, :], k_neg], axis=1)  # (B, M + 1, D), the positive at index 0
    if normalize_:
        q_hat, q_n = normalize(q)
        k_hat, k_n = normalize(keys)
    else:
        q_hat, q_n, k_hat, k_n = q, None, keys, None
    products = q_hat[:, None, :] * k_hat
    logits = np.sum(products, axis=-1) / temperature
    dims = q.shape[-1]
    # abs error of each logit: the dot product's D u sum|q_k k_k|, normalising's 2 (D + 2) u |cos|
    err_logits = (dims + 4.0) * (np.sum(np.abs(products), axis=-1) / temperature + np.abs(logits))
    log_p, lse = log_softmax(logits)
    return q_hat, q_n, k_hat, k_n, logits, err_logits, log_p, lse


@loss_reference
def info_nce_loss(query, positive_key, negative_keys, temperature=0.07, normalize=True, reduction="mean") -> Terms:
    """InfoNCE (van den Oord, Li & Vinyals 2018, eq. 4; the form of the info-nce-pytorch package):
    query (B, D), positive_key (B, D), negative_keys (B, M, D); logits = cosine similarity (dot
    product when normalize=False) / temperature, the positive at index 0; the loss is their
    cross-entropy with class 0: logsumexp(logits) - logits_0. Normalising is F.normalize's (norms
    clamped at 1e-12: a zero embedding has similarity 0 with everything). ``temperature``: a positive
    number or a 0-d array (a learnable temperature, differentiable).

    Scale: cross-entropy's |logit_0| + |lse| + (M + 1) plus each logit's own error (module doc).
    """
    *_, logits, err_logits, _, lse = _info_nce_parts(query, positive_key, negative_keys, temperature, normalize)
    values = lse[..., 0] - logits[..., 0]
    n_candidates = logits.shape[-1]
    scale = np.abs(logits[..., 0]) + np.abs(lse[..., 0]) + n_candidates + err_logits[..., 0]
    return Terms(values, scale + np.max(err_logits, axis=-1))


@info_nce_loss.gradient("query", "positive_key", "negative_keys", "temperature")
def _info_nce_grad(query, positive_key, negative_keys, temperature=0.07, normalize=True, reduction="mean"):
    """dL/dlogit_c = softmax_c - [c = 0]; d/dq_hat = sum_c g_c k_hat_c / T, d/dk_hat_c = g_c q_hat / T; then
    back through the normalisation (``_normalize_back``) when normalize=True. d/dT = -(1/T) sum_c g_c logit_c
    per anchor (``_temperature_grad``: scale and its error analysis)."""
    temperature = temperature_value(temperature)
    q_hat, q_n, k_hat, k_n, logits, err_logits, log_p, lse = _info_nce_parts(
        query, positive_key, negative_keys, temperature, normalize
    )
    p = np.exp(log_p)
    onehot = np.zeros_like(p)
    onehot[:, 0] = 1.0
    g = p - onehot
    # each softmax_c errs by (1 + |logit_c| + |lse| + M + 1 + err_c) u relative; subtracting the exact one-hot adds
    # one rounding of |p_0 - 1| <= p_0 + 1 (the one-hot is not multiplied by err: it was, (p + onehot) err, a scale
    # up to 1 / p_0 times the rounding, 0.027 of it on drawn inputs, tests/reference/test_scales_pinned.py)
    err = 1.0 + np.abs(logits) + np.abs(lse) + logits.shape[-1] + err_logits + q_hat.shape[-1]
    g_scale = p * err + onehot
    d_t = _temperature_grad(g, g_scale, logits, err_logits, temperature)
    d_q = np.sum(g[..., None] * k_hat, axis=1) / temperature
    s_q = np.sum(g_scale[..., None] * np.abs(k_hat), axis=1) / temperature
    d_k = g[..., None] * q_hat[:, None, :] / temperature
    s_k = g_scale[..., None] * np.abs(q_hat[:, None, :]) / temperature
    if normalize:
        d_q, s_q = _normalize_back(d_q, q_hat, q_n, s_q)
        d_k, s_k = _normalize_back(d_k, k_hat, k_n, s_k)
    return {
        "query": Gradient(d_q, s_q),
        "positive_key": Gradient(d_k[:, 0], s_k[:, 0]),
        "negative_keys": Gradient(d_k[:, 1:], s_k[:, 1:]),
        "temperature": d_t,
    }


def _nt_xent_parts(z_i, z_j, temperature):
    temperature = temperature_value(temperature)
    z = np.concatenate([_f(z_i), _f(z_j)], axis=0)
    n = len(z) // 2
    z_hat, z_n = normalize(z)
    products = z_hat[:, None, :] * z_hat[None, :, :]
    sim = np.sum(products, axis=-1) / temperature
    dims = z.shape[-1]
    err_sim = (dims + 4.0) * (np.sum(np.abs(products), axis=-1) / temperature + np.abs(sim))
    self_mask = np.eye(2 * n, dtype=bool)
    logits = np.where(self_mask, -np.inf, sim)  # a view is never its own negative
    log_p, lse = log_softmax(logits)
    partner = (np.arange(2 * n) + n) % (2 * n)
    return z_hat, z_n, sim, err_sim, self_mask, log_p, lse, partner


@loss_reference
def nt_xent_loss(z_i, z_j, temperature=0.5) -> Terms:
    """NT-Xent (Chen et al. 2020, SimCLR, eq. 1): the 2N views z = [z_i; z_j] (each (N, D)), sim = cosine
    / temperature; view a's positive is its pair a +- N, its denominator runs over the 2N - 1 other views
    (never itself): l_a = logsumexp_{k != a} sim_ak - sim_a,pair(a); the mean over all 2N anchors.
    ``temperature``: a positive number or a 0-d array (a learnable temperature, differentiable).
    """
    _, _, sim, err_sim, self_mask, log_p, lse, partner = _nt_xent_parts(z_i, z_j, temperature)
    rows = np.arange(len(partner))
    values = -log_p[rows, partner]
    err = np.where(self_mask, 0.0, err_sim)
    scale = np.abs(sim[rows, partner]) + np.abs(lse[:, 0]) + len(partner) + err[rows, partner] + np.max(err, axis=1)
    return Terms(values, scale)


@nt_xent_loss.gradient("z_i", "z_j", "temperature")
def _nt_xent_grad(z_i, z_j, temperature=0.5):
    """dl_a/dsim_ak = softmax_{k != a}(sim_a)_k - [k = pair(a)]; sim_ak = z_hat_a . z_hat_k / T is symmetric,
    so d/dz_hat = (G + G^T) z_hat / T with G those coefficients; then back through the normalisation.
    d/dT = -(1/T) sum_{a, k != a} G_ak sim_ak (``_temperature_grad``: scale and its error analysis)."""
    temperature = temperature_value(temperature)
    z_hat, z_n, sim, err_sim, self_mask, log_p, lse, partner = _nt_xent_parts(z_i, z_j, temperature)
    p = np.where(self_mask, 0.0, np.exp(log_p))
    onehot = np.eye(len(partner))[partner]
    g = p - onehot
    err = 1.0 + np.abs(np.where(self_mask, 0.0, sim)) + np.abs(lse) + len(partner) + err_sim + z_hat.shape[-1]
    g_scale = p * err + onehot  # the exact one-hot adds one rounding, not err (as in info_nce_loss)
    d_t = _temperature_grad(g, g_scale, np.where(self_mask, -np.inf, sim), err_sim, temperature)
    sym, sym_scale = g + g.T, g_scale + g_scale.T
    d_hat = sym @ z_hat / temperature
    s_hat = sym_scale @ np.abs(z_hat) / temperature
    d_z, s_z = _normalize_back(d_hat, z_hat, z_n, s_hat)
    n = len(partner) // 2
    return {"z_i": Gradient(d_z[:n], s_z[:n]), "z_j": Gradient(d_z[n:], s_z[n:]), "temperature": d_t}


# --- cosine embedding, margin ranking, pairwise logistic --------------------------------------------


def _root(n: np.ndarray) -> np.ndarray:
    """sqrt(n^2 + 1e-12); n itself above 1e100, where the eps is below n's rounding and n^2 may overflow."""
    small = np.minimum(n, 1e100)
    return np.where(n > 1e100, n, np.sqrt(small * small + COSINE_EPS))


def cosine_parts(input1, input2):
    """torch's cos = x1 . x2 / sqrt((||x1||^2 + 1e-12)(||x2||^2 + 1e-12)), with each root taken apart (no overflow)."""
    x1, x2 = _f(input1), _f(input2)
    n1, n2 = p_norm(x1), p_norm(x2)
    r1, r2 = _root(n1), _root(n2)
    # the dot product scaled by the norms' reciprocals first: no overflow where the cosine is finite
    products = (x1 / r1[..., None]) * (x2 / r2[..., None])
    cos = np.sum(products, axis=-1)
    dims = x1.shape[-1]
    err_cos = (dims + 4.0) * (np.sum(np.abs(products), axis=-1) + np.abs(cos))
    return x1, x2, r1, r2, cos, err_cos


@loss_reference
def cosine_embedding_loss(input1, input2, target, margin=0.0, reduction="mean") -> Terms:
    """torch.nn.functional.cosine_embedding_loss: 1 - cos(x1, x2) where target = 1, max(0, cos(x1, x2) -
    margin) where target = -1 (0 for any other target, as torch's ``where(target == +-1)``); cos is torch's
    x1 . x2 / sqrt((||x1||^2 + eps)(||x2||^2 + eps)), eps = float32(1e-12) (a zero embedding has cos 0). Rows (N, D)
    with target (N,), or (D,) with a scalar target.
    """
    *_, cos, err_cos = cosine_parts(input1, input2)
    y = _f(target)
    values = np.where(y == 1, 1.0 - cos, np.where(y == -1, np.maximum(cos - margin, 0.0), 0.0))
    scale = np.where(y == 1, 1.0 + err_cos, np.where(y == -1, abs(margin) + err_cos, 0.0))
    return Terms(values, scale)


@cosine_embedding_loss.gradient("input1", "input2")
def _cosine_embedding_grad(input1, input2, target, margin=0.0, reduction="mean"):
    """dcos/dx1 = x2 / (r1 r2) - cos x1 / r1^2 (r = sqrt(||x||^2 + 1e-12)); the loss's is -dcos where
    target = 1, +dcos where target = -1 and cos > margin, else 0. Kink: cos = margin with target -1.

    Scale: the two terms before their cancellation, (D + 4) / 2 roundings of each. A target -1 row whose
    cos - margin is within KINK_BAND of the value's scale (|margin| + err_cos) keeps the active branch's
    scale although its gradient is 0: the hinge's side there is decided by the rounding of cos, and the
    exact gradient may be the active one, a difference of terms that cancel below their own rounding
    (x1 = 1e4, x2 = -1e4, margin -1: cos - margin = 1e-20 > 0 exactly, cos rounds to -1, and the exact
    gradient is -1e-24 from terms of 1e-4)."""
    x1, x2, r1, r2, cos, err_cos = cosine_parts(input1, input2)
    y = _f(target)
    sign = np.where(y == 1, -1.0, np.where((y == -1) & (cos > margin), 1.0, 0.0))[..., None]
    near = ((y == -1) & (np.abs(cos - margin) <= KINK_BAND * (abs(margin) + err_cos)))[..., None]
    a = x2 / r2[..., None] / r1[..., None]
    b = x1 / r1[..., None] / r1[..., None]
    c = cos[..., None]
    d_1 = sign * (a - c * b)
    a2 = x1 / r1[..., None] / r2[..., None]
    b2 = x2 / r2[..., None] / r2[..., None]
    d_2 = sign * (a2 - c * b2)
    factor = (x1.shape[-1] + 4.0) / 2.0 * np.maximum(np.abs(sign), near)
    s_1 = factor * (np.abs(a) + (np.abs(c) + err_cos[..., None] * 2.0**-6) * np.abs(b))
    s_2 = factor * (np.abs(a2) + (np.abs(c) + err_cos[..., None] * 2.0**-6) * np.abs(b2))
    return {"input1": Gradient(d_1, s_1), "input2": Gradient(d_2, s_2)}


@loss_reference
def margin_ranking_loss(input1, input2, target, margin=0.0, reduction="mean") -> Terms:
    """torch.nn.functional.margin_ranking_loss: max(0, -target (input1 - input2) + margin), target in {1, -1}."""
    x1, x2, y = _f(input1), _f(input2), _f(target)
    t = -y * (x1 - x2) + margin
    return Terms(np.maximum(t, 0.0), np.abs(y * (x1 - x2)) + abs(margin) + np.abs(t))


@margin_ranking_loss.gradient("input1", "input2", "target")
def _margin_ranking_grad(input1, input2, target, margin=0.0, reduction="mean"):
    """Where the hinge is active: d/dinput1 = -target, d/dinput2 = target, d/dtarget = -(input1 - input2)."""
    x1, x2, y = _f(input1), _f(input2), _f(target)
    active = -y * (x1 - x2) + margin > 0
    d_y = np.where(active, -(x1 - x2), 0.0)
    return {
        "input1": Gradient(np.where(active, -y, 0.0), np.abs(y)),
        "input2": Gradient(np.where(active, y, 0.0), np.abs(y)),
        "target": Gradient(d_y, np.abs(d_y)),
    }


@loss_reference
def pairwise_logistic_loss(chosen, rejected, reduction="mean") -> Terms:
    """Bradley-Terry / BPR pairwise loss (Rendle et al. 2009; the reward-model loss of Ouyang et al. 2022):
    -log sigmoid(chosen - rejected) = softplus(rejected - chosen), finite for every finite difference.

    Scale: the difference rounds once (u |r - c|), which softplus passes on times sigmoid(r - c).
    """
    diff = _f(rejected) - _f(chosen)
    values = softplus(diff)
    return Terms(values, values + np.abs(diff) * expit(diff))


@pairwise_logistic_loss.gradient("chosen", "rejected")
def _pairwise_logistic_grad(chosen, rejected, reduction="mean"):
    """d/drejected = sigmoid(rejected - chosen) = -d/dchosen; scale: sigmoid's own error plus the difference's.
    The sigmoid is ``_core.sigmoid``: scipy's expit gave 0 for differences below -709.8, where the exact
    derivative (4.2e-322 at -740) is a subnormal that float64 holds to half its spacing."""
    diff = _f(rejected) - _f(chosen)
    s = sigmoid(diff)
    scale = s * (1.0 + np.abs(diff) * expit(-diff))
    return {"chosen": Gradient(-s, scale), "rejected": Gradient(s, scale)}
