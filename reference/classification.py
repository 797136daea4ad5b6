"""Float64 references of the classification losses.

Logit losses are evaluated in forms without cancellation (each branch a sum of non-negative
terms), so the references are accurate to a few ulps everywhere; the error *scales* describe
the usual float evaluation an implementation performs (see ``lossguard.reference._core``):

* log-softmax ``z_c - lse(z)`` has an absolute error of about ``u (|z_c| + |lse| + C)``: the
  max-shift is exact, the sum of C exponentials is relative ``gamma_C``, the log absolute.
* ``(1 - y) z - log_sigmoid(z)`` (torch's BCE-with-logits) cancels for z << 0: its scale is
  the magnitude of both terms.
"""

from __future__ import annotations

import numpy as np
from scipy.special import log_expit, xlogy

from lossguard.reference._core import (
    Gradient,
    Terms,
    log_softmax,
    loss_reference,
    sigmoid,
    softplus,
    sum_to_shape,
)

ROUNDOFF = 2.0**-53  # float64's unit roundoff

# --- binary -------------------------------------------------------------------------------


def _clamped_logs(p: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """torch's binary_cross_entropy clamps log p and log(1 - p) at -100."""
    with np.errstate(divide="ignore"):
        return np.maximum(np.log(p), -100.0), np.maximum(np.log1p(-p), -100.0)


def _weights(weight, shape) -> np.ndarray:
    return np.ones(shape) if weight is None else np.broadcast_to(np.asarray(weight, np.float64), shape)


@loss_reference
def binary_cross_entropy(input, target, weight=None, reduction="mean") -> Terms:
    """-w [y log p + (1 - y) log(1 - p)] on probabilities p = input, each log clamped at -100 (torch)."""
    p = np.asarray(input, dtype=np.float64)
    y = np.asarray(target, dtype=np.float64)
    w = _weights(weight, p.shape)
    log_p, log_q = _clamped_logs(p)
    values = -w * (y * log_p + (1.0 - y) * log_q)
    scale = np.abs(w) * (np.abs(y * log_p) + np.abs((1.0 - y) * log_q))
    return Terms(values, scale)


@binary_cross_entropy.gradient("input", "target")
def _bce_grad(input, target, weight=None, reduction="mean"):
    """d/dp = w (p - y) / (p (1 - p)) where no clamp is active, 0 where it is (p < e^-100)."""
    p = np.asarray(input, dtype=np.float64)
    y = np.asarray(target, dtype=np.float64)
    w = _weights(weight, p.shape)
    log_p, log_q = _clamped_logs(p)
    with np.errstate(divide="ignore", invalid="ignore"):
        d_p = np.where(log_p > -100.0, -y / p, 0.0) + np.where(log_q > -100.0, (1.0 - y) / (1.0 - p), 0.0)
    d_p = w * d_p
    d_y = w * (log_q - log_p)
    return {
        "input": Gradient(d_p, np.abs(d_p) + np.abs(w * (1.0 - y) / np.maximum(1.0 - p, 1e-300))),
        "target": Gradient(d_y, np.abs(w) * (np.abs(log_p) + np.abs(log_q))),
    }


def bce_with_logits_terms(z, y, pos_weight=None):
    """Unweighted BCE-with-logits (1 - y) z + lw softplus(-z), lw = 1 + (pw - 1) y, without cancellation.

    Returns (value, scale, lw): for z >= 0 the two terms are non-negative; for z < 0 it uses
    softplus(-z) = -z + softplus(z): value = -pw y z + lw softplus(z), again two non-negative terms.
    The scale is that of torch's form (1 - y) z - lw log_sigmoid(z).
    """
    z = np.asarray(z, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    pw = 1.0 if pos_weight is None else np.asarray(pos_weight, dtype=np.float64)
    lw = (1.0 - y) + pw * y  # = 1 + (pw - 1) y, without its cancellation for pw << 1 and y near 1
    value = np.where(z >= 0, (1.0 - y) * z + lw * softplus(-z), -pw * y * z + lw * softplus(z))
    scale = np.abs((1.0 - y) * z) + np.abs(lw * log_expit(z))
    return value, scale, lw


@loss_reference
def binary_cross_entropy_with_logits(input, target, weight=None, reduction="mean", pos_weight=None) -> Terms:
    """w [(1 - y) z + (1 + (pw - 1) y) softplus(-z)] = -w [pw y log s(z) + (1 - y) log(1 - s(z))]."""
    value, scale, _ = bce_with_logits_terms(input, target, pos_weight)
    value, scale = np.broadcast_arrays(value, scale)
    w = _weights(weight, value.shape)
    return Terms(w * value, np.abs(w) * scale)


@binary_cross_entropy_with_logits.gradient("input", "target", "weight", "pos_weight")
def _bce_logits_grad(input, target, weight=None, reduction="mean", pos_weight=None):
    """d/dz = w [(1 - y) - lw s(-z)] (= w (s(z) - y) only when pw = 1); d/dy = w [-z + (pw - 1) softplus(-z)]."""
    z = np.asarray(input, dtype=np.float64)
    y = np.asarray(target, dtype=np.float64)
    value, _, lw = bce_with_logits_terms(z, y, pos_weight)
    w = _weights(weight, value.shape)
    pw = 1.0 if pos_weight is None else np.asarray(pos_weight, dtype=np.float64)
    s_neg = sigmoid(-z)
    d_z = w * ((1.0 - y) - lw * s_neg)
    d_y = w * (-z + (pw - 1.0) * softplus(-z))
    # scales: the terms of the canonical forms sigmoid(z) - y (magnitude up to 1 + |y|) and of
    # softplus(-z) pw - softplus(z) for d/dy (terms of magnitude softplus(+-z))
    grads = {
        "input": Gradient(d_z, np.abs(w) * (np.abs(1.0 - y) + np.abs(lw) * s_neg + sigmoid(z) + np.abs(y))),
        "target": Gradient(d_y, np.abs(w) * (np.abs(z) + (np.abs(pw - 1.0) + np.abs(pw)) * softplus(-z) + softplus(z))),
    }
    if weight is not None:
        grads["weight"] = Gradient(sum_to_shape(value, np.shape(weight)), sum_to_shape(value, np.shape(weight)))
    if pos_weight is not None:
        d_pw = np.broadcast_to(w * y * softplus(-z), value.shape)
        grads["pos_weight"] = Gradient(
            sum_to_shape(d_pw, np.shape(pos_weight)), sum_to_shape(d_pw, np.shape(pos_weight))
        )
    return grads


# --- softmax ------------------------------------------------------------------------------


def classes_last(input: np.ndarray) -> np.ndarray:
    """(N, C, *) -> (N, *, C); an unbatched (C,) -> (1, C)."""
    z = np.asarray(input, dtype=np.float64)
    return z[None] if z.ndim == 1 else np.moveaxis(z, 1, -1)


def classes_back(gradient: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    """Inverse of classes_last for a gradient shaped like the moved input."""
    return gradient[0] if len(shape) == 1 else np.moveaxis(gradient, -1, 1)


def _index_target(target, ignore_index, n_classes):
    t = np.asarray(target)
    t = t[None] if t.ndim == 0 else t
    valid = t != ignore_index
    if np.any((t[valid] < 0) | (t[valid] >= n_classes)):
        raise IndexError(f"class index out of range [0, {n_classes})")
    index = np.where(valid, t, 0)
    return index, valid


def _smoothed(onehot: np.ndarray, label_smoothing: float, smoothing: str) -> np.ndarray:
    n_classes = onehot.shape[-1]
    if smoothing == "eps/C":
        return (1.0 - label_smoothing) * onehot + label_smoothing / n_classes
    if smoothing == "eps/(C-1)":
        return (1.0 - label_smoothing) * onehot + label_smoothing / (n_classes - 1) * (1.0 - onehot)
    raise ValueError(f"smoothing must be 'eps/C' or 'eps/(C-1)', got {smoothing!r}")


def _ce_coefficients(input, target, weight, ignore_index, label_smoothing, smoothing):
    """Per element, the coefficients a_c = w_c t_c of -sum_c a_c log p_c, and the 'mean' normaliser.

    Class indices: t is the (smoothed) one-hot, ignored elements get a = 0, the normaliser is the
    sum of w_y over the rest (PyTorch's weighted mean). Probabilities: t is the (smoothed) target,
    the normaliser is the number of elements N * d1 * ... * dk, weights or not.
    """
    z = classes_last(input)
    n_classes = z.shape[-1]
    w = np.ones(n_classes) if weight is None else np.asarray(weight, dtype=np.float64)
    target = np.asarray(target)
    if np.issubdtype(target.dtype, np.floating):
        t = classes_last(target)
        t = _smoothed(t, label_smoothing, smoothing) if label_smoothing else t
        return z, w * t, float(np.prod(z.shape[:-1]))
    index, valid = _index_target(target, ignore_index, n_classes)
    onehot = np.eye(n_classes)[index]
    t = _smoothed(onehot, label_smoothing, smoothing) if label_smoothing else onehot
    a = np.where(valid[..., None], w * t, 0.0)
    return z, a, float(np.sum(np.where(valid, w[index], 0.0)))


@loss_reference
def cross_entropy(
    input, target, weight=None, ignore_index=-100, reduction="mean", label_smoothing=0.0, smoothing="eps/C"
) -> Terms:
    """Softmax cross-entropy as torch.nn.functional.cross_entropy: -sum_c w_c t_c log softmax(z)_c.

    Input (N, C, *) or (C,); target class indices (N, *) or class probabilities shaped like input.
    Label smoothing eps: t = (1 - eps) y + eps / C (canonical, torch; Szegedy et al. 2016); the
    variant smoothing='eps/(C-1)' puts 1 - eps on the true class and eps / (C - 1) on each other.
    """
    z, a, normaliser = _ce_coefficients(input, target, weight, ignore_index, label_smoothing, smoothing)
    log_p, lse = log_softmax(z)
    n_classes = z.shape[-1]
    values = -np.sum(a * log_p, axis=-1)
    scale = np.sum(np.abs(a) * (np.abs(z) + np.abs(lse) + n_classes), axis=-1)
    if np.ndim(input) == 1:
        values, scale = values[0], scale[0]
    return Terms(values, scale, normaliser)


@cross_entropy.gradient("input", "target")
def _cross_entropy_grad(
    input, target, weight=None, ignore_index=-100, reduction="mean", label_smoothing=0.0, smoothing="eps/C"
):
    """d/dz_k = (sum_c a_c) softmax_k - a_k: softmax - onehot for a plain class-index target."""
    z, a, _ = _ce_coefficients(input, target, weight, ignore_index, label_smoothing, smoothing)
    log_p, lse = log_softmax(z)
    n_classes = z.shape[-1]
    total = np.sum(a, axis=-1, keepdims=True)
    p = np.exp(log_p)
    d_z = total * p - a
    z_scale = np.abs(total) * p * (1.0 + np.abs(z) + np.abs(lse) + n_classes) + np.abs(a)
    shape = np.shape(input)
    grads = {"input": Gradient(classes_back(d_z, shape), classes_back(z_scale, shape))}
    if np.issubdtype(np.asarray(target).dtype, np.floating):
        w = np.ones(n_classes) if weight is None else np.asarray(weight, dtype=np.float64)
        keep = 1.0 - label_smoothing
        d_t = -keep * w * log_p
        t_scale = keep * np.abs(w) * (np.abs(z) + np.abs(lse) + n_classes)
        grads["target"] = Gradient(classes_back(d_t, shape), classes_back(np.broadcast_to(t_scale, d_t.shape), shape))
    return grads


def _nll_parts(input, target, weight, ignore_index):
    x = classes_last(input)
    n_classes = x.shape[-1]
    index, valid = _index_target(target, ignore_index, n_classes)
    w = np.ones(n_classes) if weight is None else np.asarray(weight, dtype=np.float64)
    w_y = np.where(valid, w[index], 0.0)
    return x, index, w_y


@loss_reference
def nll_loss(input, target, weight=None, ignore_index=-100, reduction="mean") -> Terms:
    """-w_y input[y] on log-probabilities (N, C, *); mean divides by sum of w_y over non-ignored."""
    x, index, w_y = _nll_parts(input, target, weight, ignore_index)
    picked = np.take_along_axis(x, index[..., None], axis=-1)[..., 0]
    values = -w_y * picked
    if np.ndim(input) == 1:
        values = values[0]
    return Terms(values, np.abs(values), float(np.sum(w_y)))


@nll_loss.gradient("input")
def _nll_grad(input, target, weight=None, ignore_index=-100, reduction="mean"):
    x, index, w_y = _nll_parts(input, target, weight, ignore_index)
    d_x = -w_y[..., None] * np.eye(x.shape[-1])[index]
    d_x = classes_back(d_x, np.shape(input))
    return {"input": Gradient(d_x, np.abs(d_x))}


@loss_reference
def kl_div(input, target, reduction="mean", log_target=False) -> Terms:
    """Pointwise KL as torch.nn.functional.kl_div: t (log t - input), 0 where t = 0 (xlogy).

    log_target: exp(t) (t - input). 'batchmean' divides the sum by input.shape[0], 'mean' by the
    number of elements. Pointwise values may be negative; the sum over a distribution is >= 0.
    """
    x = np.asarray(input, dtype=np.float64)
    t = np.asarray(target, dtype=np.float64)
    if log_target:
        et = np.exp(t)
        values, scale = et * (t - x), et * (np.abs(t) + np.abs(x))
    else:
        values = xlogy(t, t) - t * x
        scale = np.abs(xlogy(t, t)) + np.abs(t * x)
    normaliser = x.shape[0] if reduction == "batchmean" and x.ndim else None
    return Terms(values, scale, normaliser)


@kl_div.gradient("input", "target")
def _kl_div_grad(input, target, reduction="mean", log_target=False):
    """d/dinput = -t; d/dt = log t + 1 - input (finite only for t > 0); log_target: exp(t)(t - input + 1)."""
    x = np.asarray(input, dtype=np.float64)
    t = np.asarray(target, dtype=np.float64)
    if log_target:
        et = np.exp(t)
        d_x, d_t = -et, et * (t - x + 1.0)
        t_scale = et * (np.abs(t) + np.abs(x) + 1.0)
    else:
        d_x = -t
        with np.errstate(divide="ignore"):
            d_t = np.log(t) + 1.0 - x
        t_scale = np.abs(np.log(np.where(t > 0, t, 1.0))) + 1.0 + np.abs(x)
    return {"input": Gradient(d_x, np.abs(d_x)), "target": Gradient(d_t, t_scale)}


# --- focal, margin ------------------------------------------------------------------------


def _alpha_t(alpha, y, alpha_mode):
    if alpha is None:
        return np.ones_like(y)
    if alpha_mode == "uniform":
        return np.full_like(y, alpha)
    if alpha_mode == "per_class":
        return alpha * y + (1.0 - alpha) * (1.0 - y)
    raise ValueError(f"alpha_mode must be 'per_class' or 'uniform', got {alpha_mode!r}")


def _sigmoid_focal_parts(input, target, alpha, gamma, alpha_mode):
    z = np.asarray(input, dtype=np.float64)
    y = np.asarray(target, dtype=np.float64)
    bce, bce_scale, _ = bce_with_logits_terms(z, y)
    p = sigmoid(z)
    q = (1.0 - y) * p + y * sigmoid(-z)  # 1 - p_t, as a sum of non-negative terms
    return z, y, p, q, bce, bce_scale, _alpha_t(alpha, y, alpha_mode)


def _ratio(numerator: np.ndarray, q: np.ndarray) -> np.ndarray:
    """numerator / q where q > 0, else 0 (the term it scales vanishes there)."""
    safe = np.where(q > 0, q, 1.0)
    return np.where(q > 0, numerator / safe, 0.0)


SOFT_TARGETS = ("p_t", "expected")


def _hard_focal_terms(input, alpha, gamma, alpha_mode):
    """The focal losses of the two hard labels, for the variant soft_targets='expected', and their derivatives:
    FL(z, 1) = a1 r1^gamma softplus(-z) with r1 = 1 - p = sigmoid(-z), FL(z, 0) = a0 r0^gamma softplus(z) with
    r0 = p = sigmoid(z) (a1, a0 the alpha_t of y = 1, 0). Products of non-negative factors: no cancellation.
    d/dz FL(z, 1) = -a1 r1^gamma (gamma r0 softplus(-z) + r1), d/dz FL(z, 0) = a0 r0^gamma (gamma r1 softplus(z)
    + r0): the first part through the derivative of r^gamma (sigmoid's r0 r1), the second through softplus'.

    Returns, for y = 1 then y = 0: (value, value scale, derivative, derivative scale). Scales, beside a few u of
    each factor's rounding: r^gamma formed as exp(gamma log r) (kornia's form) is off by gamma u |log r|; r1 formed
    as 1 - p by subtraction carries u / r1 relative (gamma u / r1 in r1^gamma, as in the canonical form's scale);
    sigmoid's derivative r0 r1 formed from the rounded p carries u / r1 relative as well."""
    z = np.asarray(input, dtype=np.float64)
    ones = np.ones_like(z)
    a1, a0 = _alpha_t(alpha, ones, alpha_mode), _alpha_t(alpha, 0.0 * ones, alpha_mode)
    r1, r0 = sigmoid(-z), sigmoid(z)
    s1, s0 = softplus(-z), softplus(z)
    out = []
    for a, r, s, chain, plain, subtracted in (
        (a1, r1, s1, -gamma * r0 * s1, -r1, True),
        (a0, r0, s0, gamma * r1 * s0, r0, False),
    ):
        magnitude = np.abs(a) * r**gamma
        with np.errstate(divide="ignore"):
            log_r = np.where(r > 0, np.abs(np.log(np.where(r > 0, r, 1.0))), 0.0)
        relative = 4.0 + gamma * log_r
        value = a * r**gamma * s
        derivative = a * r**gamma * (chain + plain)
        # ratios to r1 formed whole: r1 is a subnormal for z in 709.8..745, where 1 / r1 overflows
        value_scale = np.abs(value) * relative
        d_scale = magnitude * (np.abs(chain) + np.abs(plain)) * relative + (gamma + 1.0) * _ratio(
            magnitude * np.abs(chain), r1
        )
        if subtracted:  # r1 = 1 - p formed by subtraction: u / r1 relative in r1^gamma
            value_scale = value_scale + gamma * _ratio(magnitude * s, r1)
            d_scale = d_scale + gamma * _ratio(magnitude * np.abs(plain), r1)
        out.append((value, value_scale, derivative, d_scale))
    return out


def _expected_focal(input, target, alpha, gamma, alpha_mode) -> tuple[np.ndarray, ...]:
    """(value, scale, derivative, derivative scale) of y FL(z, 1) + (1 - y) FL(z, 0) (soft_targets='expected')."""
    y = np.asarray(target, dtype=np.float64)
    (v1, s1, d1, g1), (v0, s0, d0, g0) = _hard_focal_terms(input, alpha, gamma, alpha_mode)
    w1, w0 = np.abs(y), np.abs(1.0 - y)
    return y * v1 + (1.0 - y) * v0, w1 * s1 + w0 * s0, y * d1 + (1.0 - y) * d0, w1 * g1 + w0 * g0


def _check_soft_targets(soft_targets: str) -> None:
    if soft_targets not in SOFT_TARGETS:
        raise ValueError(f"soft_targets must be one of {SOFT_TARGETS}, got {soft_targets!r}")


@loss_reference
def sigmoid_focal_loss(
    input, target, alpha=0.25, gamma=2.0, reduction="mean", alpha_mode="per_class", soft_targets="p_t"
) -> Terms:
    """Binary focal loss (Lin et al. 2017), torchvision's form: alpha_t (1 - p_t)^gamma BCE-with-logits.

    p = sigmoid(input), p_t = p y + (1 - p)(1 - y), alpha_t = alpha y + (1 - alpha)(1 - y);
    alpha=None: no alpha factor; variant alpha_mode='uniform': alpha multiplies every term.
    Variant soft_targets='expected' (kornia's binary_focal_loss_with_logits): the expectation over the label of
    the hard-label loss, y FL(z, 1) + (1 - y) FL(z, 0); the same for targets 0 and 1, another value for soft ones.
    Scale: 1 - p_t carries an absolute error of one roundoff (it is 1 - p in the usual form), a
    relative error u / q in q = 1 - p_t, hence gamma q^(gamma - 1) BCE beside q^gamma scale(BCE).
    """
    _check_soft_targets(soft_targets)
    if soft_targets == "expected":
        values, scale, _, _ = _expected_focal(input, target, alpha, gamma, alpha_mode)
        return Terms(values, scale)
    _, _, _, q, bce, bce_scale, a = _sigmoid_focal_parts(input, target, alpha, gamma, alpha_mode)
    modulating = q**gamma
    values = a * modulating * bce
    scale = np.abs(a) * (modulating * bce_scale + gamma * modulating * _ratio(np.abs(bce), q))
    return Terms(values, scale)


@sigmoid_focal_loss.gradient("input")
def _sigmoid_focal_grad(
    input, target, alpha=0.25, gamma=2.0, reduction="mean", alpha_mode="per_class", soft_targets="p_t"
):
    """d/dz = alpha_t [gamma q^gamma (1 - 2y) (p (1 - p) / q) BCE + q^gamma (p - y)]; soft_targets='expected':
    y d FL(z, 1) + (1 - y) d FL(z, 0) (see _hard_focal_terms).

    Scale: beside each term's magnitude (and the u / q relative error of q = 1 - p_t), sigmoid's
    derivative p (1 - p) carries an absolute error of one roundoff wherever an implementation forms
    1 - p from p (torch's sigmoid backward does): gamma q^(gamma - 1) BCE, which dominates when p -> 1
    while q is not small (y = 0, z >> 0; by symmetry y = 1, z << 0).
    """
    _check_soft_targets(soft_targets)
    if soft_targets == "expected":
        _, _, d_z, scale = _expected_focal(input, target, alpha, gamma, alpha_mode)
        return {"input": Gradient(d_z, scale)}
    _, y, p, q, bce, bce_scale, a = _sigmoid_focal_parts(input, target, alpha, gamma, alpha_mode)
    modulating = q**gamma
    p_neg = sigmoid(-np.asarray(input, dtype=np.float64))  # 1 - p, not formed by subtraction
    r = _ratio(p * p_neg, q)
    first = gamma * modulating * (1.0 - 2.0 * y) * r * bce
    # p - y = (1 - y) p - y (1 - p): exact for hard labels; for soft ones the cancellation is in the scale
    below, above = (1.0 - y) * p, y * p_neg
    second = modulating * (below - above)
    d_z = a * (first + second)
    # ratios to q of quantities no larger than q (|bce|, below, above: <= ~q where q is small), each formed
    # before it multiplies: q is a subnormal for 709.8 < |z| < 745, where 1 / q overflows and q^(gamma + 1) underflows
    bce_over_q = _ratio(np.abs(bce), q)
    terms = np.abs(first) + modulating * (np.abs(below) + np.abs(above))
    terms_over_q = gamma * modulating * np.abs(1.0 - 2.0 * y) * r * bce_over_q + modulating * _ratio(
        np.abs(below) + np.abs(above), q
    )
    scale = np.abs(a) * (
        terms + (gamma + 1.0) * terms_over_q + gamma * modulating * r * bce_scale + gamma * modulating * bce_over_q
    )
    return {"input": Gradient(d_z, scale)}


SOFTMAX_ALPHA_MODES = ("uniform", "background")


def _softmax_focal_parts(input, target, alpha, gamma, ignore_index, alpha_mode="uniform"):
    """log p_y and u = 1 - p_y to a few ulps relative, also for p_y -> 1.

    With d = logsumexp_{j != y} z_j - z_y: log p_y = log_sigmoid(-d) and 1 - p_y = sigmoid(d)
    (log_softmax's z_y - lse is only absolutely accurate when p_y is near 1). A float alpha weighs every class
    (alpha_mode='uniform'), or 1 - alpha the class 0 and alpha the others ('background').
    """
    if alpha_mode not in SOFTMAX_ALPHA_MODES:
        raise ValueError(f"alpha_mode must be one of {SOFTMAX_ALPHA_MODES}, got {alpha_mode!r}")
    z = classes_last(input)
    n_classes = z.shape[-1]
    index, valid = _index_target(target, ignore_index, n_classes)
    log_p, lse = log_softmax(z)
    onehot = np.eye(n_classes)[index]
    z_y = np.sum(z * onehot, axis=-1)
    _, lse_others = log_softmax(np.where(onehot > 0, -np.inf, z))
    d = lse_others[..., 0] - z_y
    lp = log_expit(-d)
    u = sigmoid(d)
    if alpha is None:
        a = np.ones(index.shape)
    elif np.ndim(alpha) == 0 and alpha_mode == "background":
        a = np.where(index == 0, 1.0 - float(alpha), float(alpha))
    elif np.ndim(alpha) == 0:
        a = np.full(index.shape, float(alpha))
    else:
        a = np.asarray(alpha, dtype=np.float64)[index]
    a = np.where(valid, a, 0.0)
    err = np.abs(z_y) + np.abs(lse[..., 0]) + n_classes  # abs error of a log_softmax evaluation, in roundoffs
    return z, index, valid, log_p, lp, u, a, err


MEAN_OVER = ("samples", "samples and classes")


@loss_reference
def softmax_focal_loss(
    input,
    target,
    alpha=None,
    gamma=2.0,
    ignore_index=-100,
    reduction="mean",
    mean_over="samples",
    alpha_mode="uniform",
) -> Terms:
    """Multi-class focal loss (Lin et al. 2017): -alpha_y (1 - p_y)^gamma log p_y over log_softmax.

    alpha: None, a float (every class) or a (C,) array; 'mean' over non-ignored elements (count).
    Variant mean_over='samples and classes' (kornia's focal_loss): 'mean' is the mean of the (N, C, *) map of
    per-class terms (the loss at the target class, 0 elsewhere), the sum over C times every element, ignored
    ones included; 'none' and 'sum' are unchanged. Variant alpha_mode='background' (MONAI's FocalLoss with
    use_softmax=True): a float alpha weighs the class 0 by 1 - alpha and every other class by alpha.
    """
    if mean_over not in MEAN_OVER:
        raise ValueError(f"mean_over must be one of {MEAN_OVER}, got {mean_over!r}")
    z, _index, valid, _, lp, u, a, err = _softmax_focal_parts(input, target, alpha, gamma, ignore_index, alpha_mode)
    modulating = u**gamma
    values = -a * modulating * lp
    p_y = np.exp(lp)
    scale = np.abs(a) * (modulating * err + gamma * _ratio(modulating * np.abs(lp), u) * (1.0 + p_y * err))
    if np.ndim(input) == 1:
        values, scale = values[0], scale[0]
    normaliser = float(np.sum(valid)) if mean_over == "samples" else float(valid.size * z.shape[-1])
    return Terms(values, scale, normaliser)


@softmax_focal_loss.gradient("input")
def _softmax_focal_grad(
    input,
    target,
    alpha=None,
    gamma=2.0,
    ignore_index=-100,
    reduction="mean",
    mean_over="samples",
    alpha_mode="uniform",
):
    """d/dz_k = D (delta_ky - softmax_k) with D = -alpha_y [u^gamma - gamma u^(gamma-1) p_y log p_y], u = 1 - p_y."""
    z, index, _valid, log_p, lp, u, a, err = _softmax_focal_parts(input, target, alpha, gamma, ignore_index, alpha_mode)
    modulating = u**gamma
    p_y = np.exp(lp)
    tail = gamma * _ratio(modulating * lp, u) * p_y
    d = -a * (modulating - tail)
    d_base = np.abs(a) * (modulating + np.abs(tail)) * (1.0 + (gamma + 1.0) * _ratio(np.ones_like(u), u))
    softmax = np.exp(log_p)
    onehot = np.eye(z.shape[-1])[index]
    d_z = d[..., None] * (onehot - softmax)
    # D carries err roundoffs (relative); softmax_k = exp(z_k - lse) carries |z_k| + |lse| + C more
    err_k = np.abs(z) + np.abs(log_p - z) + z.shape[-1]
    scale = d_base[..., None] * (1.0 + err[..., None]) * (onehot + softmax) + d_base[..., None] * softmax * err_k
    shape = np.shape(input)
    return {"input": Gradient(classes_back(d_z, shape), classes_back(scale, shape))}


@loss_reference
def hinge_loss(input, target, margin=1.0, reduction="mean") -> Terms:
    """max(0, margin - target input) for targets in {-1, +1}. Kink at target input = margin."""
    x = np.asarray(input, dtype=np.float64)
    t = np.asarray(target, dtype=np.float64)
    return Terms(np.maximum(0.0, margin - t * x), np.abs(margin) + np.abs(t * x))


@hinge_loss.gradient("input")
def _hinge_grad(input, target, margin=1.0, reduction="mean"):
    x = np.asarray(input, dtype=np.float64)
    t = np.asarray(target, dtype=np.float64)
    d_x = np.where(margin - t * x > 0, -t, 0.0)
    return {"input": Gradient(d_x, np.abs(t))}


def _multi_margin_parts(input, target, p, margin, weight):
    x = classes_last(input)
    n_classes = x.shape[-1]
    index, _ = _index_target(target, -(10**18), n_classes)
    x_y = np.take_along_axis(x, index[..., None], axis=-1)
    h = margin - x_y + x
    others = 1.0 - np.eye(n_classes)[index]
    active = (h > 0) & (others > 0)
    w_y = (np.ones(n_classes) if weight is None else np.asarray(weight, dtype=np.float64))[index]
    return x, index, x_y, h, active, w_y, n_classes


@loss_reference
def multi_margin_loss(input, target, p=1, margin=1.0, weight=None, reduction="mean") -> Terms:
    """torch's multi-class hinge: sum_{j != y} w_y max(0, margin - x_y + x_j)^p / C. Kinks where a term is 0."""
    x, index, x_y, h, active, w_y, n_classes = _multi_margin_parts(input, target, p, margin, weight)
    hinge = np.where(active, h, 0.0)
    values = w_y * np.sum(hinge**p, axis=-1) / n_classes
    # a term within rounding of its kink may be positive exactly although h rounds to <= 0: it stays in the scale
    err = abs(margin) + np.abs(x_y) + np.abs(x)
    near = (h > -2.0 * ROUNDOFF * err) & (np.eye(n_classes)[index] == 0)
    terms = np.where(near, p * np.maximum(np.abs(h), ROUNDOFF * err) ** (p - 1) * err, 0.0)
    scale = np.abs(w_y) * np.sum(terms, axis=-1) / n_classes
    if np.ndim(input) == 1:
        values, scale = values[0], scale[0]
    return Terms(values, scale)


@multi_margin_loss.gradient("input")
def _multi_margin_grad(input, target, p=1, margin=1.0, weight=None, reduction="mean"):
    x, index, x_y, h, active, w_y, n_classes = _multi_margin_parts(input, target, p, margin, weight)
    per_j = np.where(active, w_y[..., None] * p * np.where(active, h, 0.0) ** (p - 1) / n_classes, 0.0)
    d_x = per_j - np.eye(n_classes)[index] * np.sum(per_j, axis=-1, keepdims=True)
    scale = np.abs(per_j) * (1.0 + np.abs(x) + np.abs(x_y)) + np.eye(n_classes)[index] * np.sum(
        np.abs(per_j) * (1.0 + np.abs(x) + np.abs(x_y)), axis=-1, keepdims=True
    )
    shape = np.shape(input)
    return {"input": Gradient(classes_back(d_x, shape), classes_back(scale, shape))}


@loss_reference
def multilabel_soft_margin_loss(input, target, weight=None, reduction="mean") -> Terms:
    """mean over the C labels of w_c BCE-with-logits(x_c, y_c); 'none' has shape (N,)."""
    value, scale, _ = bce_with_logits_terms(input, target)
    w = _weights(weight, value.shape)
    return Terms(np.mean(w * value, axis=-1), np.mean(np.abs(w) * scale, axis=-1))


@multilabel_soft_margin_loss.gradient("input", "target")
def _multilabel_grad(input, target, weight=None, reduction="mean"):
    z = np.asarray(input, dtype=np.float64)
    y = np.asarray(target, dtype=np.float64)
    w = _weights(weight, z.shape)
    n_labels = z.shape[-1]
    s = sigmoid(z)
    d_z = w * (s - y) / n_labels
    d_y = -w * z / n_labels
    return {
        "input": Gradient(d_z, np.abs(w) * (s + np.abs(y) + 1.0) / n_labels),
        "target": Gradient(d_y, np.abs(d_y) + np.abs(w) * softplus(-z) / n_labels),
    }
