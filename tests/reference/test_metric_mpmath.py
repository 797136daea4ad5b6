"""The metric-learning references against mpmath at 50 digits, on Hypothesis-drawn inputs including extremes.

Units and metrics as in ``test_references_mpmath`` (``ulp`` = float64's EPS = 2^-52; "scale": the error
in EPS times the reference's own error scale, ``Terms.scale`` or ``Gradient.scale``). The exact values
below are written from the definitions in docs/LOSSES.md (nothing from ``reference/``): differences
formed exactly, norms and logsumexps at 50 digits. Exact gradients are central differences of these
functions (``mp_losses.slopes`` through ``check_derivative``; at a kink the reference must lie between
the one-sided derivatives). The step is relative to each coordinate and below the distance to the nearest
kink, which each test bounds from the reference's own parts (``_batch_hard_smooth``, ``_nearest``...); an
example the catalog's kink function flags (within float64 rounding of a kink) lets the reference take
either side of a kink that a step of 2^-40 of the coordinate straddles (``check_derivative``'s near_kink).

Error bound met by each reference
---------------------------------
=============================  ======  =====  =================================================================
reference                      metric  bound  derivation
=============================  ======  =====  =================================================================
contrastive_loss               scale   2      scaled norm: D + 4 roundings of d (|x|/top, squares, sum of D, sqrt,
                                              * top) <= (D + 4) u d, a quarter of the scale's (D + 4) d / 4 ... x 2 d
                                              for d^2; the hinge (m - d)^2 the same through 2 |h|; + 3u products;
                                              squared=False: d and m - d themselves against err_d, |m| + err_d
triplet_margin_loss            scale   2      p-norm of (x - y) + eps: 2u per component, (D + p + 2) u the norm,
                                              against err_d = (D + 4)(d + ||x - y|| + eps D^(1/p)) / 4 each;
                                              eps_mode='root': n (1 + eps / n^p)^(1/p) from the scaled norm n,
                                              (D + p + 4) u, against (D + 4)(d + ||x - y||) / 4
batch_hard_triplet_loss        scale   2      two distances as above, + margin, mean of <= N terms (reduce_scale)
info_nce_loss                  scale   2      normalising (D + 3) u, dot products D u, / T, logsumexp 2.4u (the
                                              cross-entropy bound) against |l_0| + |lse| + (M + 1) + err_l
nt_xent_loss                   scale   2      as info_nce over the 2N - 1 other views
cosine_embedding_loss          scale   2      roots, D scaled products, sum: (D + 4) u |cos| terms; 1 - cos u
margin_ranking_loss            scale   1      x1 - x2 u, + margin u
pairwise_logistic_loss         scale   2      r - c u, logaddexp 4u (relative to value + |r - c| sigmoid)
gradients (all of the above)   scale   2      the analytic formulas' D + p + 6 roundings against the gradient
                                              scales' (D + ...) / 4 factors (see each gradient's docstring)
d/dtemperature (info_nce,      scale   2      -(1/T) sum g l from float64 g = softmax - onehot (a few u
nt_xent)                                      relative each) and logits (err_l): a few u of the scale
                                              (1/T) sum (g_scale |l| + |g| err_l + (n + 2) |g l|), which
                                              keeps the terms before their cancellation (sum g = 0)
=============================  ======  =====  =================================================================
Domain: coordinates in +-1e6 mixed with 0, +-1e-8, +-1, +-1e4, +-1e6 (and 1e80 for the cosine's overflow),
rows copied from one argument to another (distances of exactly 0, cosines of exactly 1), N <= 3,
D <= 3, M <= 3, temperatures 0.01..10 (floats and 0-d arrays: the temperature gradient is checked on every
example, against mpmath's central difference in T), margins 0..3; pairwise logistic differences up to +-2e6.
"""

from __future__ import annotations

import itertools
import math

import mp_losses as mpl
import numpy as np
from hypothesis import example, given, settings
from hypothesis import strategies as st
from mpmath import mp, mpf
from test_references_mpmath import REALS, U, _mixed, check, check_derivative, check_reductions

from lossguard.catalog import spec as catalog_spec
from lossguard.harness.kernel.model import Example
from lossguard.reference import metric as R

FEW = settings(max_examples=15, deadline=None)
VALUE_ULPS = 2.0
RANKING_ULPS = 1.0
GRAD_ULPS = 2.0
COORDINATES = _mixed([0.0, 1e-8, -1e-8, 1.0, -1.0, 0.5, 1e4, -1e4, 1e6, -1e6], -1e6, 1e6)
TEMPERATURES = _mixed([0.01, 0.07, 0.5, 1.0, 10.0], 0.01, 10.0)
MARGINS = _mixed([0.0, 1.0, 0.5, 3.0], 0.0, 3.0)
COSINE_EPS = mpf(float(np.float32(1e-12)))


@st.composite
def rows(draw, count: int = 2, max_rows: int = 3, shape_extra: tuple[int, ...] = ()) -> list[np.ndarray]:
    """``count`` arrays (N, *extra, D) with some rows of later arrays copied from the first."""
    n, d = draw(st.integers(1, max_rows)), draw(st.integers(1, 3))
    arrays = []
    for i in range(count):
        shape = (n, *shape_extra, d) if i == count - 1 else (n, d)
        a = np.array(draw(st.lists(COORDINATES, min_size=math.prod(shape), max_size=math.prod(shape)))).reshape(shape)
        if i and not shape_extra and draw(st.booleans()):
            a[0] = arrays[0][0]
        arrays.append(a)
    return arrays


# --- exact definitions ----------------------------------------------------------------------------


def _norm(v, p=2) -> mpf:
    return mp.fsum(abs(x) ** p for x in v) ** (mpf(1) / p)


def _diff(x, y, eps=0.0) -> list:
    return [mpl._add(mpl._sub(a, b), eps) for a, b in zip(x, y, strict=True)]


def contrastive(x1, x2, label, margin, squared=True):
    d = _norm(_diff(x1, x2))
    power = 2 if squared else 1
    return mpl._f(label) * d**power + (1 - mpl._f(label)) * max(mpl._f(margin) - d, 0) ** power


def triplet(a, p, n, margin, pn, eps, swap, eps_mode="difference"):
    def dist(x, y):
        if eps_mode == "root":  # (sum_k |x_k - y_k|^p + eps)^(1/p)
            return (mp.fsum(abs(v) ** pn for v in _diff(x, y)) + mpl._f(eps)) ** (mpf(1) / pn)
        return _norm(_diff(x, y, eps), pn)

    d_ap, d_an = dist(a, p), dist(a, n)
    if swap:
        d_an = min(d_an, dist(p, n))
    return max(d_ap - d_an + mpl._f(margin), 0)


def batch_hard(x, labels, margin, piece=None):
    """The batch-hard loss; ``piece``: per anchor, a forced (hardest positive, hardest negative, active)
    choice instead of the loss's own max, min and hinge (one smooth piece of the loss)."""
    losses = []
    for a in range(len(x)):
        pos = {j: _norm(_diff(x[a], x[j])) for j in range(len(x)) if j != a and labels[j] == labels[a]}
        neg = {k: _norm(_diff(x[a], x[k])) for k in range(len(x)) if labels[k] != labels[a]}
        if pos and neg:
            if piece is not None and a in piece:
                j, k, active = piece[a]
                losses.append(pos[j] - neg[k] + mpl._f(margin) if active else mpf(0))
            else:
                losses.append(max(max(pos.values()) - min(neg.values()) + mpl._f(margin), 0))
    return mp.fsum(losses) / len(losses) if losses else mpf(0)


def _batch_hard_pieces(x, labels, margin) -> list[dict]:
    """The pieces of the batch-hard loss that meet ``x`` within float64 rounding: for each anchor, every
    positive and negative whose distance ties the hardest one, and both states of a hinge t, within the
    catalog's kink band (16 u of the terms: catalog ``_batch_hard_kinks``); anchors with no such tie keep
    the loss's own choice. Empty when no anchor is within rounding of a kink."""
    _, _, d, valid, pos, neg, t, scale = R.batch_hard_parts(x, labels, margin)
    labels = np.asarray(labels)
    choices = {}
    for a in np.flatnonzero(valid):
        band = 16 * U * (scale[a] + d[a])
        same = (labels == labels[a]) & (np.arange(len(x)) != a)
        positives = np.flatnonzero(same & (np.abs(d[a] - d[a, pos[a]]) <= band))
        negatives = np.flatnonzero((labels != labels[a]) & (np.abs(d[a] - d[a, neg[a]]) <= band))
        states = (True, False) if abs(t[a]) <= band[pos[a]] else (bool(t[a] > 0),)
        if len(positives) > 1 or len(negatives) > 1 or len(states) > 1:
            choices[int(a)] = [(int(j), int(k), s) for j in positives for k in negatives for s in states]
    anchors = list(choices)
    return [dict(zip(anchors, combo, strict=True)) for combo in itertools.product(*choices.values())] if anchors else []


def _unit(v):
    n = max(_norm(v), mpf(1e-12))
    return [mpl._f(x) / n for x in v]


def _lse(values) -> mpf:
    top = max(values)
    return top + mp.log(mp.fsum(mp.exp(v - top) for v in values))


def info_nce(q, keys, temperature, normalize):
    """keys: the positive first, then the negatives."""
    t = mpl._f(temperature)
    q = _unit(q) if normalize else [mpl._f(v) for v in q]
    logits = []
    for k in keys:
        k = _unit(k) if normalize else [mpl._f(v) for v in k]
        logits.append(mp.fsum(a * b for a, b in zip(q, k, strict=True)) / t)
    return _lse(logits) - logits[0]


def nt_xent(z, temperature):
    z = [_unit(v) for v in z]
    n, t = len(z) // 2, mpl._f(temperature)
    losses = []
    for a in range(2 * n):
        sims = {k: mp.fsum(x * y for x, y in zip(z[a], z[k], strict=True)) / t for k in range(2 * n) if k != a}
        losses.append(_lse(list(sims.values())) - sims[(a + n) % (2 * n)])
    return mp.fsum(losses) / (2 * n)


def cosine_embedding(x1, x2, y, margin):
    dot = mp.fsum(mpl._f(a) * mpl._f(b) for a, b in zip(x1, x2, strict=True))
    cos = dot / mp.sqrt((_norm(x1) ** 2 + COSINE_EPS) * (_norm(x2) ** 2 + COSINE_EPS))
    return 1 - cos if y == 1 else max(cos - mpl._f(margin), 0) if y == -1 else mpf(0)


def margin_ranking(x1, x2, y, margin):
    return max(-mpl._f(y) * mpl._sub(x1, x2) + mpl._f(margin), 0)


def pairwise_logistic(c, r):
    return mp.log1p(mp.exp(mpl._sub(r, c)))


# --- helpers ----------------------------------------------------------------------------------------------


def _exact(fn, *args) -> mpf:
    return mpl.value(fn, *args)


def _check_gradient(
    grad, fn, arrays: list[np.ndarray], names: list[str], what, smooth_over=None, near_kink=False, pieces=()
) -> None:
    """Every component of every named array's reference gradient against mpmath's derivative of ``fn(*flat)``.

    smooth_over: a lower bound of the distance (in coordinate units) to the nearest kink of ``fn`` and of the
    length over which its smooth pieces vary (the ``_*_smooth`` helpers), None if there is none; near_kink:
    the catalog's kink function flags the example (within float64 rounding of a kink: ``check_derivative``);
    pieces: functions like ``fn``, the smooth pieces meeting the point within rounding (``_batch_hard_pieces``)."""
    sizes = [a.size for a in arrays]
    flat = [float(v) for a in arrays for v in a.ravel()]

    def flattened(f):
        def call(*values):
            out, start = [], 0
            for a, size in zip(arrays, sizes, strict=True):
                out.append(np.array(values[start : start + size], dtype=object).reshape(a.shape))
                start += size
            return f(*out)

        return call

    call = flattened(fn)
    pieces = [flattened(piece) for piece in pieces]

    start = 0
    for a, name in zip(arrays, names, strict=True):
        for i in range(a.size):
            g = grad[name]
            check_derivative(
                float(g.value.ravel()[i]),
                call,
                flat,
                start + i,
                GRAD_ULPS,
                scale=float(g.scale.ravel()[i]),
                smooth_over=smooth_over,
                near_kink=near_kink,
                pieces=pieces,
                what=what,
            )
        start += a.size


def _nearest(*distances) -> float | None:
    """The smallest positive finite distance (a zero one is a kink at the point itself: the difference
    quotients straddle it and ``check_derivative`` judges the subdifferential), None if there is none."""
    values = [float(v) for d in distances for v in np.ravel(d)]
    positive = [v for v in values if 0 < v < math.inf]
    return min(positive) if positive else None


def _at_kink(name: str, args: dict, params: dict) -> bool:
    """The catalog's kink function of the loss: within float64 rounding of a kink (any element)."""
    return bool(np.any(catalog_spec(name).kinks(Example(args, params), U)))


def _batch_hard_smooth(x, labels, margin) -> float | None:
    """Kinks of the batch-hard loss (reference's batch_hard_parts): the hinge t = 0 of each anchor (t moves
    at most 2 per unit of a coordinate: |t| / 2), a chosen distance 0 (a norm's kink: d), and a tie of a
    chosen distance with another candidate of its kind (max or min: half the gap)."""
    x, _, d, valid, pos, neg, t, _ = R.batch_hard_parts(x, labels, margin)
    labels = np.asarray(labels)
    distances = []
    for a in np.flatnonzero(valid):
        distances += [abs(t[a]) / 2, d[a, pos[a]], d[a, neg[a]]]
        for j in range(len(x)):
            if j != a:
                chosen = pos[a] if labels[j] == labels[a] else neg[a]
                distances.append(abs(d[a, j] - d[a, chosen]) / 2)
    return _nearest(distances)


def _norms_smooth(temperature, arrays, normalize: bool) -> float | None:
    """Lengths of InfoNCE / NT-Xent in coordinate units: logits l / T vary by 1 over T ||x|| of a normalised
    row x (its unit vector also curves over ||x||), over T / max |coordinate| of raw ones; F.normalize's
    max(||x||, 1e-12) kinks at ||x|| = 1e-12."""
    t = float(temperature)
    rows = np.concatenate([np.reshape(a, (-1, np.shape(a)[-1])) for a in arrays])
    norms = R.p_norm(rows)
    if normalize:
        return _nearest(min(t, 1.0) * norms, np.abs(norms - R.NORMALIZE_EPS))
    top = float(np.max(np.abs(rows)))
    return t / top if top > 0 else None


def _check_temperature_gradient(grad, fn, temperature, what) -> None:
    """The reference's d/dT against mpmath's derivative of ``fn(T)`` (smooth in T > 0: steps of T 2^-STEP_BITS)."""
    g = grad["temperature"]
    assert np.shape(g.value) == () and np.shape(g.scale) == ()
    check_derivative(
        float(g.value),
        fn,
        [float(temperature)],
        0,
        GRAD_ULPS,
        scale=float(g.scale),
        smooth_over=float(temperature),
        what=what,
    )


# --- values and gradients ----------------------------------------------------------------------------------


@FEW
@given(rows(), MARGINS, st.data(), st.booleans())
@example([np.array([[0.0, 0.0], [1e6, 1e-8]]), np.array([[0.0, 0.0], [-1e6, 1e-8]])], 1.0, None, True)
# the variant squared=False: a zero distance with labels 1, 0 and 0.3 (the norm's kink at the point itself: the
# reference's subgradient 0 lies between the one-sided derivatives), and a pair 1e6 apart
@example([np.array([[0.0, 0.0], [1e6, 1e-8]]), np.array([[0.0, 0.0], [-1e6, 1e-8]])], 1.0, None, False)
def test_contrastive(arrays, margin, data, squared):
    x1, x2 = arrays
    label = (
        np.array([1.0, 0.0, 0.3][: len(x1)])
        if data is None
        else np.array(data.draw(st.lists(st.sampled_from([0.0, 1.0, 0.25]), min_size=len(x1), max_size=len(x1))))
    )
    kwargs = {"margin": margin, "squared": squared}
    terms = R.contrastive_loss.terms(x1, x2, label, reduction="none", **kwargs)
    exact = [_exact(contrastive, list(x1[i]), list(x2[i]), label[i], margin, squared) for i in range(len(x1))]
    check(terms.values, exact, VALUE_ULPS, scale=terms.scale, what=(x1, x2, label, kwargs))
    check_reductions(R.contrastive_loss, (x1, x2, label), kwargs, exact, VALUE_ULPS, scale=terms.scale)
    grad = R.contrastive_loss.grad(x1, x2, label, reduction="sum", **kwargs)
    _, d, _, h, _ = R._contrastive_parts(x1, x2, label, margin)
    _check_gradient(
        grad,
        lambda a, b, y: mp.fsum(contrastive(a[i], b[i], y[i], margin, squared) for i in range(len(a))),
        [x1, x2, label],
        ["x1", "x2", "label"],
        (x1, x2, label, kwargs),
        smooth_over=_nearest(d, np.abs(h)),  # d's kink at 0 (curvature 1 / d), the hinge at d = margin
        near_kink=_at_kink("contrastive_loss", {"x1": x1, "x2": x2, "label": label}, kwargs),
    )


@FEW
@given(
    rows(3),
    MARGINS.filter(lambda m: m > 0),
    st.sampled_from([1.0, 2.0, 3.0]),
    st.sampled_from([1e-6, 0.0]),
    st.booleans(),
    st.sampled_from(["difference", "root"]),
)
# p = 1 with a zero difference (every |v_k| at its kink) next to a component of 2.2e-308: the former absolute
# step 2^-64 crossed the 2.2e-308 component's kink too (oracle at fault; the reference's subgradient was right)
@example(
    [np.zeros((2, 2)), np.zeros((2, 2)), np.array([[0.0, 0.0], [0.0, 2.2250738585072014e-308]])],
    1.0,
    1.0,
    0.0,
    False,
    "difference",
)
# eps_mode='root': identical rows (d = eps^(1/p) exactly, the gradient 0), distances of 1e-8 (n^p below eps: the
# eps^(1/p) branch) and of 1e6 (eps far below n^p's rounding)
@example(
    [np.zeros((2, 2)), np.array([[0.0, 1e-8], [1e6, 0.0]]), np.array([[0.0, 0.0], [-1e6, 1.0]])],
    0.5,
    3.0,
    1e-6,
    False,
    "root",
)
def test_triplet_margin(arrays, margin, p, eps, swap, eps_mode):
    a, pos, neg = arrays
    kwargs = {"margin": margin, "p": p, "eps": eps, "swap": swap, "eps_mode": eps_mode}
    terms = R.triplet_margin_loss.terms(a, pos, neg, reduction="none", **kwargs)
    exact = [
        _exact(triplet, list(a[i]), list(pos[i]), list(neg[i]), margin, p, eps, swap, eps_mode) for i in range(len(a))
    ]
    check(terms.values, exact, VALUE_ULPS, scale=terms.scale, what=(arrays, kwargs))
    grad = R.triplet_margin_loss.grad(a, pos, neg, reduction="sum", **kwargs)
    (v_ap, d_ap, v_an, d_an, v_pn, d_pn, _), t, _ = R.triplet_parts(a, pos, neg, margin, p, eps, swap, eps_mode)
    # the hinge t = 0 (|t| / 2: t moves at most 2 per unit of an anchor coordinate), a distance 0, the swap's
    # tie d(p, n) = d(a, n), and with p = 1 every component of a difference at 0 (|v_k| is a kink)
    kinks = [np.abs(t) / 2, d_ap, d_an] + ([d_pn, np.abs(d_pn - d_an) / 2] if swap else [])
    _check_gradient(
        grad,
        lambda x, y, z: mp.fsum(triplet(x[i], y[i], z[i], margin, p, eps, swap, eps_mode) for i in range(len(x))),
        [a, pos, neg],
        ["anchor", "positive", "negative"],
        (arrays, kwargs),
        smooth_over=_nearest(*kinks, *([np.abs(v) for v in (v_ap, v_an, v_pn)] if p == 1 else [])),
        near_kink=_at_kink("triplet_margin_loss", {"anchor": a, "positive": pos, "negative": neg}, kwargs),
    )


@FEW
@given(
    st.integers(1, 4).flatmap(lambda n: st.tuples(st.lists(st.integers(0, 1), min_size=n, max_size=n), rows(1, 1))),
    MARGINS,
)
# embeddings of 1e-48: the former absolute step (2^-64 = 5e-20, cut to 2^-112) moved a row across all the others
# (oracle at fault: the step is now relative to the coordinates, and below the kink distances)
@example(([0, 0, 0, 1], [np.array([[5.84571541162383e-49]])]), 0.0)
# margin 0 with equally spaced collinear rows: anchor 1's exact t is +2.5e-19 of terms 1e4, the reference's t
# rounds to 0 (inside the catalog's kink band: either one-sided derivative is right; the oracle compared one)
@example(([0, 0, 1], [np.array([[1e4, 2.76756766871178]])]), 0.0)
# labels [0, 1, 0, 1]: two anchors tie their two negatives within rounding, and the reference's -0.75 combines
# the sides of both ties (oracle at fault: the pieces along the coordinate are -0.25 and -1, check_derivative)
@example(([0, 1, 0, 1], [np.array([[1e4, 2.76756766871178]])]), 0.0)
# explore seed 7 (oracle at fault, each): a hinge's kink at x = 0 with curvature 2.9e47 beside it (the one-sided
# quotients of step 2^-64 erred by 3.8e-35 against a derivative of 1.5e-41: the step is now cut until they
# converge); collinear rows whose hinge t = 1.75e-48 of distances 2e-8 (within rounding) and a distance's zero
# coincide along the line (the reference's piece meets the point off the line: check_derivative's pieces);
# a derivative 0 between quotients of -c h and c h (curvature, now told from a kink by the gap shrinking)
@example(([0, 0, 1, 1], [np.array([[0.0, 5.84571541162383e-49, 1e-8]])]), 0.0)
@example(([0, 0, 1, 1], [np.array([[5.84571541162383e-49, 0.0, 1e-8]])]), 0.0)
@example(([0, 0, 0, 1], [np.array([[0.0, 1e-8]])]), 0.0)
@example(([0, 0, 1], [np.array([[1.0, 5.84571541162383e-49, 1.0]])]), 0.0)
@example(([0, 0, 1, 1], [np.array([[1.0, 5.84571541162383e-49]])]), 1.0)
# explore seed 2 (oracle at fault): collinear rows k (1e-8, 1), labels [0, 1, 0, 1], two anchors tie their
# negatives exactly; the one-sided quotients converged (a kink elsewhere on the line) and the pieces within
# rounding were consulted only where the quotients agreed
@example(([0, 1, 0, 1], [np.array([[1e-8, 1.0]])]), 0.0)
def test_batch_hard(case, margin):
    labels, _ = case
    n = len(labels)
    x = np.resize(np.ravel(case[1][0]), (n, 2)) * np.arange(1, n + 1)[:, None]
    labels = np.array(labels)
    terms = R.batch_hard_triplet_loss.terms(x, labels, margin=margin)
    exact = _exact(batch_hard, [list(r) for r in x], list(labels), margin)
    value = R.batch_hard_triplet_loss(x, labels, margin=margin)
    check([value], [exact], VALUE_ULPS, scale=[R.batch_hard_triplet_loss.error_scale(x, labels, margin=margin)])
    assert terms.values.size >= 1
    grad = R.batch_hard_triplet_loss.grad(x, labels, margin=margin)
    _check_gradient(
        grad,
        lambda e: batch_hard([list(r) for r in e], list(labels), margin),
        [x],
        ["embeddings"],
        (x, labels),
        smooth_over=_batch_hard_smooth(x, labels, margin),
        near_kink=_at_kink("batch_hard_triplet_loss", {"embeddings": x, "labels": labels}, {"margin": margin}),
        pieces=[
            lambda e, piece=piece: batch_hard([list(r) for r in e], list(labels), margin, piece)
            for piece in _batch_hard_pieces(x, labels, margin)
        ],
    )


@FEW
@given(rows(3, shape_extra=(2,)), TEMPERATURES, st.booleans(), st.booleans())
@example([np.ones((2, 2)), np.ones((2, 2)), np.ones((2, 2, 2))], 0.01, True, True)  # equal logits: d/dT = 0
def test_info_nce(arrays, temperature, normalize, as_array):
    q, k, neg = arrays
    if len(q) > 1:
        k[1] = q[1]  # a positive equal to its query
    kwargs = {"temperature": np.asarray(temperature) if as_array else temperature, "normalize": normalize}
    terms = R.info_nce_loss.terms(q, k, neg, reduction="none", **kwargs)
    exact = [
        _exact(info_nce, list(q[i]), [list(k[i])] + [list(v) for v in neg[i]], temperature, normalize)
        for i in range(len(q))
    ]
    check(terms.values, exact, VALUE_ULPS, scale=terms.scale, what=(arrays, kwargs))
    grad = R.info_nce_loss.grad(q, k, neg, reduction="sum", **kwargs)
    _check_temperature_gradient(
        grad,
        lambda t: mp.fsum(info_nce(q[i], [k[i], *neg[i]], t, normalize) for i in range(len(q))),
        temperature,
        (arrays, kwargs),
    )
    if not np.all(np.abs(np.concatenate([q.ravel(), k.ravel(), neg.ravel()])) <= 1e4):
        return  # mpmath differences of the normalised form at 1e6 with 1e-8 neighbours: kept to the values
    _check_gradient(
        grad,
        lambda a, b, c: mp.fsum(info_nce(a[i], [b[i], *c[i]], temperature, normalize) for i in range(len(a))),
        [q, k, neg],
        ["query", "positive_key", "negative_keys"],
        (arrays, kwargs),
        smooth_over=_norms_smooth(temperature, [q, k, neg], normalize),
        near_kink=_at_kink("info_nce_loss", {"query": q, "positive_key": k, "negative_keys": neg}, kwargs),
    )


@FEW
@given(rows(2), TEMPERATURES, st.booleans())
@example([np.ones((2, 2)), np.ones((2, 2))], 0.01, True)
def test_nt_xent(arrays, temperature, as_array):
    z_i, z_j = arrays
    temperature = np.asarray(temperature) if as_array else temperature
    value = R.nt_xent_loss(z_i, z_j, temperature=temperature)
    exact = _exact(nt_xent, [list(r) for r in np.concatenate([z_i, z_j])], temperature)
    check([value], [exact], VALUE_ULPS, scale=[R.nt_xent_loss.error_scale(z_i, z_j, temperature=temperature)])
    grad = R.nt_xent_loss.grad(z_i, z_j, temperature=temperature)
    _check_temperature_gradient(grad, lambda t: nt_xent([*z_i, *z_j], t), temperature, (arrays, temperature))
    if np.all(np.abs(np.concatenate([z_i.ravel(), z_j.ravel()])) <= 1e4):
        _check_gradient(
            grad,
            lambda a, b: nt_xent([*a, *b], temperature),
            [z_i, z_j],
            ["z_i", "z_j"],
            (arrays, temperature),
            smooth_over=_norms_smooth(temperature, [z_i, z_j], True),
            near_kink=_at_kink("nt_xent_loss", {"z_i": z_i, "z_j": z_j}, {"temperature": temperature}),
        )


@FEW
@given(rows(2), _mixed([0.0, 0.5, -0.5, 1.0, -1.0], -1.0, 1.0), st.data())
@example([np.array([[1e80, 1e80]]), np.array([[1e80, 1e80]])], 0.0, None)
@example([np.array([[1.0]]), np.array([[1e-5]])], 0.0, None)
# cos - margin = +1e-20 exactly, cos rounds to -1: the reference's 0 (inactive hinge) had scale 0, the exact
# gradient -1e-24 is a cancellation of terms 1e-4 (reference's scale at fault); the second: +1.1e-17, -1e-30
@example([np.array([[1e4]]), np.array([[-1e4]])], -1.0, [-1.0])
@example([np.array([[1e6]]), np.array([[-210.0]])], -1.0, [-1.0])
def test_cosine_embedding(arrays, margin, data):
    x1, x2 = arrays
    if data is None or isinstance(data, list):  # explicit examples: targets 1, or as given
        y = np.ones(len(x1)) if data is None else np.array(data)
    else:
        y = np.array(data.draw(st.lists(st.sampled_from([1.0, -1.0]), min_size=len(x1), max_size=len(x1))))
    terms = R.cosine_embedding_loss.terms(x1, x2, y, margin=margin, reduction="none")
    exact = [_exact(cosine_embedding, list(x1[i]), list(x2[i]), y[i], margin) for i in range(len(x1))]
    check(terms.values, exact, VALUE_ULPS, scale=terms.scale, what=(arrays, y, margin))
    grad = R.cosine_embedding_loss.grad(x1, x2, y, margin=margin, reduction="sum")
    *_, r1, r2, cos, _ = R.cosine_parts(x1, x2)
    # cos curves over the rows' (eps-shifted) norms r and moves at most 2 / r per unit of a coordinate:
    # the hinge cos = margin (target -1) is |cos - margin| r / 2 away
    root = np.minimum(r1, r2)
    _check_gradient(
        grad,
        lambda a, b: mp.fsum(cosine_embedding(a[i], b[i], y[i], margin) for i in range(len(a))),
        [x1, x2],
        ["input1", "input2"],
        (arrays, y, margin),
        smooth_over=_nearest(root, np.where(y == -1, np.abs(cos - margin) * root / 2, np.inf)),
        near_kink=_at_kink("cosine_embedding_loss", {"input1": x1, "input2": x2, "target": y}, {"margin": margin}),
    )


@FEW
@given(
    st.integers(1, 5).flatmap(
        lambda n: st.tuples(
            *[st.lists(REALS, min_size=n, max_size=n)] * 2,
            st.lists(st.sampled_from([1.0, -1.0]), min_size=n, max_size=n),
        )
    ),
    MARGINS,
)
def test_margin_ranking(case, margin):
    x1, x2, y = (np.array(c) for c in case)
    terms = R.margin_ranking_loss.terms(x1, x2, y, margin=margin, reduction="none")
    exact = [_exact(margin_ranking, x1[i], x2[i], y[i], margin) for i in range(len(x1))]
    check(terms.values, exact, RANKING_ULPS, scale=terms.scale, what=case)
    check_reductions(R.margin_ranking_loss, (x1, x2, y), {"margin": margin}, exact, RANKING_ULPS, scale=terms.scale)


@FEW
@given(st.integers(1, 5).flatmap(lambda n: st.tuples(*[st.lists(REALS, min_size=n, max_size=n)] * 2)))
@example(([0.0, 0.0, 1e4, -1e6], [1e4, -1e4, 0.0, 1e6]))
@example(([-1e6, -1e6, 700.0], [-1e6, -1e6, -40.0]))  # d/dc = -sigmoid(-740) = -4.2e-322: scipy's expit gave 0
def test_pairwise_logistic(case):
    c, r = (np.array(v) for v in case)
    terms = R.pairwise_logistic_loss.terms(c, r, reduction="none")
    exact = [_exact(pairwise_logistic, c[i], r[i]) for i in range(len(c))]
    check(terms.values, exact, VALUE_ULPS, scale=terms.scale, what=case)
    check_reductions(R.pairwise_logistic_loss, (c, r), {}, exact, VALUE_ULPS, scale=terms.scale)
    grad = R.pairwise_logistic_loss.grad(c, r, reduction="none")
    for i in range(len(c)):
        for k, name in enumerate(("chosen", "rejected")):
            g = grad[name]
            check_derivative(
                float(g.value[i]), pairwise_logistic, [float(c[i]), float(r[i])], k, GRAD_ULPS, scale=float(g.scale[i])
            )
