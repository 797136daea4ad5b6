"""Independent mpmath references of the losses, written from their mathematical definitions.

Each function takes float64 inputs, converts them exactly to ``mpf`` and evaluates the loss's
definition element-wise (or row-wise for the class losses) at the *ambient* mpmath precision;
:func:`value` evaluates one at ``DPS = 50`` digits, :func:`slopes` differentiates one by finite
differences at whatever precision the step needs. Nothing here reuses ``reference/``.

Residuals such as ``x - t`` and ``margin - x_y + x_j`` are formed exactly
(``mp.fadd(..., exact=True)``), so comparisons against thresholds (Huber's delta, a hinge at 0)
are decided on the exact real inputs. Where the literal formula would itself lose digits at 50
digits on extreme float inputs, either the working precision is raised (``log cosh e`` for tiny
``e``) or an identity that holds in real arithmetic is used: ``log(1 - p) = log1p(-p)``,
``log sigma(z) = -log1p(exp(-z))``, ``1 - sigma(z) = sigma(-z)``, and
``sum_c exp(z_c - m) = 1 + sum_{c != argmax} exp(z_c - m)`` (so ``log softmax`` of the largest
logit is ``-log1p(...)``, exact to 50 digits however close to 0 it is).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from mpmath import mp, mpf

DPS = 50  # decimal digits of every reference value

# --- helpers ------------------------------------------------------------------------------


def _f(v) -> mpf:
    """A float64 (or int, or mpf) as an exact mpf."""
    return v if isinstance(v, mpf) else mp.mpf(float(v))


def _sub(a, b) -> mpf:
    """a - b exactly (no rounding, whatever the working precision)."""
    return mp.fsub(_f(a), _f(b), exact=True)


def _add(*terms) -> mpf:
    """The exact sum of the terms."""
    total = mp.zero
    for term in terms:
        total = mp.fadd(total, _f(term), exact=True)
    return total


def log_sigmoid(z) -> mpf:
    """log sigma(z) = -log(1 + exp(-z)), relative to 50 digits for every z."""
    return -mp.log1p(mp.exp(-_f(z)))


def sigmoid(z) -> mpf:
    return 1 / (1 + mp.exp(-_f(z)))


def log_softmax(z: Sequence) -> list[mpf]:
    """log softmax(z)_c = (z_c - m) - log(1 + sum_{k != argmax} exp(z_k - m)), m = max z."""
    z = [_f(v) for v in z]
    top = max(range(len(z)), key=lambda k: z[k])
    m = z[top]
    rest = mp.fsum(mp.exp(z[k] - m) for k in range(len(z)) if k != top)
    log_norm = mp.log1p(rest)
    return [_sub(v, m) - log_norm for v in z]


def value(fn: Callable[..., mpf], *args, **kwargs) -> mpf:
    """fn(*args, **kwargs) evaluated at DPS decimal digits."""
    with mp.workdps(DPS):
        return fn(*args, **kwargs)


# --- regression ---------------------------------------------------------------------------


def mse(x, t) -> mpf:
    e = _sub(x, t)
    return e * e


def l1(x, t) -> mpf:
    return abs(_sub(x, t))


def huber(x, t, delta=1.0) -> mpf:
    """Huber (1964): e^2 / 2 for |e| <= delta, delta (|e| - delta / 2) beyond."""
    e, d = _sub(x, t), _f(delta)
    if abs(e) <= d:
        return e * e / 2
    return d * (abs(e) - d / 2)


def smooth_l1(x, t, beta=1.0) -> mpf:
    """e^2 / (2 beta) for |e| < beta, |e| - beta / 2 beyond; |e| when beta = 0."""
    e, b = _sub(x, t), _f(beta)
    if b == 0:
        return abs(e)
    if abs(e) < b:
        return e * e / (2 * b)
    return abs(e) - b / 2


def log_cosh(x, t) -> mpf:
    """log(cosh(e)), literally; for small |e| (log cosh e ~ e^2 / 2) the working precision grows by
    2 log2(1/|e|) bits so that cosh(e) - 1 is still resolved to the ambient precision."""
    e = _sub(x, t)
    if e == 0:
        return mp.zero
    extra = max(0, -2 * int(mp.mag(e))) + 20
    with mp.workprec(mp.prec + extra):
        result = mp.log(mp.cosh(e))
    return +result


def quantile(x, t, tau=0.5) -> mpf:
    """Pinball loss: r = target - input, max(tau r, (tau - 1) r)."""
    r, q = _sub(t, x), _f(tau)
    return max(q * r, (q - 1) * r)


def poisson_nll(x, t, log_input=True, full=False, eps=1e-8) -> mpf:
    """log_input: exp(x) - t x (x = log rate); else x - t log(x + eps) (x = rate). ``full`` adds the
    Stirling approximation of log(t!), t log t - t + log(2 pi t) / 2, where t > 1."""
    x, t = _f(x), _f(t)
    loss = mp.exp(x) - t * x if log_input else x - t * mp.log(_add(x, eps))
    if full and t > 1:
        loss += t * mp.log(t) - t + mp.log(2 * mp.pi * t) / 2
    return loss


def gaussian_nll(x, t, var, full=False, eps=1e-6) -> mpf:
    """(log v + (x - t)^2 / v) / 2 with v = max(var, eps); ``full`` adds log(2 pi) / 2."""
    v = max(_f(var), _f(eps))
    e = _sub(x, t)
    loss = (mp.log(v) + e * e / v) / 2
    if full:
        loss += mp.log(2 * mp.pi) / 2
    return loss


def tweedie(x, t, power=1.5) -> mpf:
    """Tweedie deviance with log link, eta = x: -t exp((1-p) eta) / (1-p) + exp((2-p) eta) / (2-p)."""
    eta, t, p = _f(x), _f(t), _f(power)
    a, b = 1 - p, 2 - p
    return -t * mp.exp(a * eta) / a + mp.exp(b * eta) / b


def asymmetric_mse(x, t, over_penalty=2.0) -> mpf:
    """over_penalty e^2 where e = x - t > 0, e^2 elsewhere."""
    e = _sub(x, t)
    return (_f(over_penalty) if e > 0 else 1) * e * e


# --- binary -------------------------------------------------------------------------------


def binary_cross_entropy(p, y, weight=1.0) -> mpf:
    """-w [y log p + (1 - y) log(1 - p)], each logarithm clamped below at -100 (torch)."""
    p, y = _f(p), _f(y)
    log_p = max(mp.log(p), mpf(-100))
    log_q = max(mp.log1p(-p), mpf(-100))
    return -_f(weight) * (y * log_p + (1 - y) * log_q)


def binary_cross_entropy_with_logits(z, y, weight=1.0, pos_weight=1.0) -> mpf:
    """-w [pw y log sigma(z) + (1 - y) log(1 - sigma(z))]."""
    y = _f(y)
    return -_f(weight) * (_f(pos_weight) * y * log_sigmoid(z) + (1 - y) * log_sigmoid(-_f(z)))


def sigmoid_focal(z, y, alpha=0.25, gamma=2.0, alpha_mode="per_class", soft_targets="p_t") -> mpf:
    """Lin et al. (2017): alpha_t (1 - p_t)^gamma BCE-with-logits(z, y), p = sigma(z),
    p_t = p y + (1 - p)(1 - y), so 1 - p_t = p (1 - y) + (1 - p) y; alpha_t = alpha y + (1 - alpha)(1 - y)
    ('per_class'), alpha ('uniform') or 1 (alpha None). soft_targets='expected': the hard-label loss averaged
    over the label, y FL(z, 1) + (1 - y) FL(z, 0)."""
    if soft_targets == "expected":
        one = sigmoid_focal(z, 1.0, alpha, gamma, alpha_mode)
        zero = sigmoid_focal(z, 0.0, alpha, gamma, alpha_mode)
        return _f(y) * one + (1 - _f(y)) * zero
    z, y = _f(z), _f(y)
    one_minus_pt = sigmoid(z) * (1 - y) + sigmoid(-z) * y
    if alpha is None:
        alpha_t = mp.one
    elif alpha_mode == "uniform":
        alpha_t = _f(alpha)
    else:
        alpha_t = _f(alpha) * y + (1 - _f(alpha)) * (1 - y)
    return alpha_t * one_minus_pt ** _f(gamma) * binary_cross_entropy_with_logits(z, y)


def hinge(x, t, margin=1.0) -> mpf:
    """max(0, margin - t x)."""
    return max(mp.zero, _f(margin) - _f(t) * _f(x))


# --- class losses, one row of C scores ------------------------------------------------------


def _smoothed_target(n_classes: int, label, label_smoothing, smoothing) -> list[mpf]:
    """Class index -> (1 - eps) onehot + eps / C ('eps/C'), or 1 - eps on the class and eps / (C - 1)
    on each other ('eps/(C-1)'); a probability row -> (1 - eps) t + eps / C (resp. eps / (C - 1) off t)."""
    eps = _f(label_smoothing)
    if isinstance(label, int):
        onehot = [mp.one if c == label else mp.zero for c in range(n_classes)]
    else:
        onehot = [_f(v) for v in label]
    if smoothing == "eps/C":
        return [(1 - eps) * v + eps / n_classes for v in onehot]
    if smoothing == "eps/(C-1)":
        return [(1 - eps) * v + eps / (n_classes - 1) * (1 - v) for v in onehot]
    raise ValueError(smoothing)


def cross_entropy(z: Sequence, label, weight=None, label_smoothing=0.0, smoothing="eps/C") -> mpf:
    """-sum_c w_c t_c log softmax(z)_c for one row; label is a class index (int) or a probability row."""
    n_classes = len(z)
    w = [mp.one] * n_classes if weight is None else [_f(v) for v in weight]
    t = _smoothed_target(n_classes, label, label_smoothing, smoothing)
    return -mp.fsum(w[c] * t[c] * lp for c, lp in enumerate(log_softmax(z)))


def nll(x: Sequence, label: int, weight=None) -> mpf:
    """-w_y x_y for one row of log-probabilities."""
    return -(mp.one if weight is None else _f(weight[label])) * _f(x[label])


def kl_div(x, t, log_target=False) -> mpf:
    """Pointwise KL: t (log t - x), 0 where t = 0; log_target: exp(t) (t - x)."""
    x, t = _f(x), _f(t)
    if log_target:
        return mp.exp(t) * _sub(t, x)
    if t == 0:
        return mp.zero
    return t * (mp.log(t) - x)


def softmax_focal(z: Sequence, label: int, alpha=None, gamma=2.0) -> mpf:
    """-alpha_y (1 - p_y)^gamma log p_y, p = softmax(z), with 1 - p_y = sum_{c != y} p_c; alpha None,
    a number (every class) or a per-class sequence."""
    log_p = log_softmax(z)
    rest = mp.fsum(mp.exp(lp) for c, lp in enumerate(log_p) if c != label)
    if alpha is None:
        a = mp.one
    elif isinstance(alpha, (int, float)):
        a = _f(alpha)
    else:
        a = _f(alpha[label])
    return -a * rest ** _f(gamma) * log_p[label]


def multi_margin(x: Sequence, label: int, p=1, margin=1.0, weight=None) -> mpf:
    """torch's multi-class hinge: sum_{j != y} w_y max(0, margin - x_y + x_j)^p / C."""
    n_classes = len(x)
    w = mp.one if weight is None else _f(weight[label])
    terms = [max(mp.zero, _add(margin, -_f(x[label]), x[j])) ** p for j in range(n_classes) if j != label]
    return w * mp.fsum(terms) / n_classes


def multilabel_soft_margin(x: Sequence, y: Sequence, weight=None) -> mpf:
    """mean over the C labels of w_c BCE-with-logits(x_c, y_c)."""
    n_labels = len(x)
    w = [1.0] * n_labels if weight is None else weight
    return mp.fsum(binary_cross_entropy_with_logits(x[c], y[c], w[c]) for c in range(n_labels)) / n_labels


# --- derivatives --------------------------------------------------------------------------

STEP_BITS = 64  # h = 2^-64 * min(the coordinate's reach, the distance over which fn is smooth)
FLOOR_BITS = 52  # a coordinate's reach is at least 2^-52 times the scale of the whole input
RESOLVE_BITS = 80  # f(x + h) - f(x - h) is resolved to 2^-80 of itself (or to 2^-1100 h absolutely)
GUARD_BITS = 64  # the quotients are recomputed with 64 more bits: agreement shows the precision suffices


def step(x, scale, smooth_over=None, bits: int = STEP_BITS) -> mpf:
    """The difference step at coordinate x of an input of scale ``scale`` (``slopes``): the power of two at
    or below 2^-bits min(max(|x|, 2^-FLOOR_BITS scale), smooth_over); a unit reach where the whole input is 0."""
    reach = max(abs(_f(x)), mp.ldexp(_f(scale), -FLOOR_BITS))
    if reach == 0:
        reach = mp.one
    if smooth_over is not None:
        reach = min(reach, abs(_f(smooth_over)))
    reach = max(reach, mp.ldexp(1, -1100))
    return mp.ldexp(1, int(mp.floor(mp.log(reach, 2))) - bits)


def slopes(
    fn: Callable[..., mpf],
    args: Sequence,
    index: int,
    smooth_over: float | None = None,
    extent: float | None = None,
    bits: int = STEP_BITS,
) -> tuple[mpf, mpf, mpf]:
    """(left, central, right) difference quotients of fn along ``args[index]`` at the float64 point ``args``.

    Mathematics. With f(t) = fn(..., x + t, ...) and a step h, Taylor's theorem with remainder gives

        central = (f(h) - f(-h)) / (2h) = f'(0) + h^2 f'''(xi) / 6,     |xi| <= h,
        right   = (f(h) - f(0)) / h     = f'(0) + h f''(xi') / 2,
        left    = (f(0) - f(-h)) / h    = f'(0) - h f''(xi'') / 2,

    provided f is three times differentiable on [x - h, x + h]. If f is analytic on the disc of radius L
    around x (L: the distance to the nearest kink or singularity), Cauchy's estimates |f^(n)| <= n! M / L^n
    (M: max |f| on the disc) bound the central difference's error by M (h / L)^2 / L and the one-sided
    ones' by M (h / L) / L: with h = 2^-64 L the central quotient is the derivative to 2^-128 of M / L (far
    below the checks' 2^-52 of their scales) and left, right agree to 2^-64 of it. Where a kink lies
    within h, f' jumps across it and left / right approximate the two one-sided derivatives: their
    disagreement detects the kink (``check_derivative``).

    Choice of h. The step must be small against L, which the function and its point decide; it is
    ``step(x, scale, smooth_over)``: 2^-STEP_BITS times min(reach, smooth_over), rounded down to a power
    of two, where

    * reach = max(|x|, 2^-FLOOR_BITS scale) is the coordinate's own size with a floor at 2^-52 of the
      scale of the whole input (``extent``: by default the largest |arg|, which callers raise to the
      size of the loss's own constants, e.g. 1 for logits). A step relative to |x| cannot cross 0 (a
      sign's, an |x|'s, a norm's kink) nor leave the scale of the configuration: an absolute step (the
      former 2^-64, 5e-20) was larger than embeddings of 1e-45 and moved every point of the batch across
      its neighbours. The floor keeps a coordinate that is 0, or negligible against the rest of the
      input (what float64 cannot resolve next to it), from needing an arbitrarily small step, and so
      bounds the precision;
    * ``smooth_over`` (the caller's) is the distance to the nearest kink along this coordinate, a lower
      bound of it from the reference's own kink quantities (|t| / Lipschitz constant for a hinge at t = 0,
      a distance for a norm's kink at 0, half a gap between two distances that a max or min ties), or the
      length over which a smooth function varies (1 for a logit, the temperature for logits / T, a
      probability for log p), whichever is smallest; None where the function has neither.

    Precision (the cancellation). f(x + h) - f(x - h) ~ 2 h f' loses mag(f) - mag(f(x+h) - f(x-h)) bits
    to cancellation, and x + h must be exact: the working precision starts at the span from the largest
    input (``extent``, or 1) down to h, plus RESOLVE_BITS + 16, and is raised to mag(f) - mag(change) +
    RESOLVE_BITS + 16 when the function turns out larger than its variation. That accounts for |f| but
    not for the intermediate quantities of fn, which may be far larger than f (cos - margin = 1e-17 formed
    from cos = -1 + 1e-17): so the three quotients are also computed again at GUARD_BITS more precision,
    and the precision raised until the two agree to 2^-RESOLVE_BITS of the largest. Rounding errors of a
    fixed evaluation shrink by 2^-GUARD_BITS with that much more precision, so agreement means the lower
    precision's quotients already erred by at most ~2^-RESOLVE_BITS, and the higher's by 2^-GUARD_BITS of
    that: the returned quotients (the higher precision's) are exact to 2^-RESOLVE_BITS relative, whatever h.
    """
    point = [_f(v) if isinstance(v, float) else v for v in args]
    x = point[index]
    if extent is None:
        extent = max([abs(v) for v in point if isinstance(v, mpf)] + [mp.zero])
    h = step(x, extent, smooth_over, bits)
    span = max(int(mp.mag(max(_f(extent), abs(x), h))), 0) - int(mp.mag(h))
    prec = span + RESOLVE_BITS + 16

    def quotients(precision: int) -> tuple[tuple[mpf, mpf, mpf], int]:
        """The three quotients at ``precision`` bits, and the precision |f| / |change| asks for."""
        with mp.workprec(precision):
            values = []
            for k in (-1, 0, 1):
                shifted = list(point)
                shifted[index] = mp.fadd(x, k * h, exact=True)
                values.append(fn(*shifted))
            lo, mid, hi = values
            big = max(abs(lo), abs(mid), abs(hi), mp.ldexp(1, -1100))
            change = max(abs(hi - mid), abs(mid - lo), h * mp.ldexp(1, -1090))
            needed = max(span, int(mp.mag(big)) - int(mp.mag(change))) + RESOLVE_BITS + 16
            return ((mid - lo) / h, (hi - lo) / (2 * h), (hi - mid) / h), needed

    for _attempt in range(8):
        low, needed = quotients(prec)
        if prec < needed:
            prec = needed
            continue
        high, _ = quotients(prec + GUARD_BITS)
        with mp.workprec(prec + GUARD_BITS):
            top = max(abs(q) for q in high)
            if all(abs(a - b) <= mp.ldexp(top, -RESOLVE_BITS) for a, b in zip(low, high, strict=True)):
                break
        prec += GUARD_BITS
    with mp.workdps(DPS):
        return tuple(+q for q in high)
