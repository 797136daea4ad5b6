"""The sequence references against mpmath at 50 digits, on Hypothesis-drawn inputs including extremes.

Units and metrics as in ``test_references_mpmath`` (``ulp`` = float64's EPS = 2^-52; "scale": the
error in EPS times the reference's own error scale). Exact values: ``mp_losses.cross_entropy`` of
each token's row, meaned over the non-ignored tokens at 50 digits; the linear loss's logits are
formed exactly (``sum_h x_h w_vh + b_v`` of float64 products at 50 digits); exact gradients are the
analytic ones evaluated in mpmath: dCE/dz = (sum_c t_c) softmax(z) - t, chained through z = x W^T + b.

Error bound met by each reference
---------------------------------
==================================  ======  ======  ========  ====================================================
reference                           metric  bound   observed  derivation
==================================  ======  ======  ========  ====================================================
sequence_cross_entropy, eps = 0     scale   1.7     0.18      cross_entropy's element bound (class index, plain);
                                                              the mean's summation gamma_(n-1) sum|v| and division
                                                              u |mean| are in the mean's scale (reduce_scale)
sequence_cross_entropy, eps > 0     scale   5.7     0.25      cross_entropy's smoothed bound, V <= 5: (6.4 + V) u
perplexity                          scale   bound   0.18      exp(L): L's absolute error times exp(L) (the scale's
                                            of L+1            exp(L) scale(L) part) + exp's 1 ulp (its exp(L) part)
sequence_cross_entropy d/dlogits    scale   2.2+1   0.35      cross_entropy's gradient bound (5.7 + 1 smoothed:
                                                    0.74      observed 0.74), + 1 ulp for the mean's 1 / count
linear_cross_entropy                scale   1.7     0.19      the float64 logits' error (H + 1) u D is in the scale
                                                              with weight 1 u (reference.sequence docstring), then
                                                              the plain cross_entropy bound; 'sum' and 'mean' as
                                                              check_reductions states
linear_cross_entropy d/dhidden,     scale   2.7+1   0.15      G = softmax - onehot to cross_entropy's 2.2 ulp of its
  d/dweight, d/dbias                                          scale (the logits' error is in it), a dot product over
                                                              V (resp. N) terms <= 0.5 ulp of n sum |G w|; + 1 ulp
                                                              for 'mean'
==================================  ======  ======  ========  ====================================================
Observed: the largest error in 400 draws per test (ulps of the scale), for comparison; no bound is fitted to it.
Domain: logits in +-1e6 (with 0, +-1, +-20, +-700, +-1e4 and the extremes of ``REALS``), B, T <= 3,
V in 1..5 (1 and 2 included), some or all tokens ignored; linear: hidden and weight entries up to 1e3
(logits up to 3e6), N <= 5, H <= 3, bias None or up to 1e4.
"""

from __future__ import annotations

import mp_losses as mpl
import numpy as np
from hypothesis import example, given, settings
from hypothesis import strategies as st
from mpmath import mp
from test_references_mpmath import (
    CROSS_ENTROPY_GRAD_ULPS,
    CROSS_ENTROPY_PLAIN_GRAD_ULPS,
    CROSS_ENTROPY_PLAIN_ULPS,
    CROSS_ENTROPY_ULPS,
    REALS,
    _mixed,
    check,
    check_reductions,
)

from lossguard.reference import sequence as R

FEW = settings(max_examples=20, deadline=None)
SMOOTHINGS = st.one_of(st.just(0.0), st.sampled_from([0.1, 1.0, 1e-8]), st.floats(0.0, 1.0))
FACTORS = _mixed([0.0, 1.0, -1.0, 0.5, 100.0, -100.0, 1e3, -1e3], -1e3, 1e3)
# hidden and weight whose products make logits of +-1e4 and 1e5
EXTREME_LINEAR = (np.array([[100.0, -100.0], [1.0, 0.0]]), np.array([[100.0, 0.0], [-100.0, 1e3]]))
BIASES = _mixed([0.0, 1.0, -20.0, 1e4, -1e4], -1e4, 1e4)


@st.composite
def token_batches(draw) -> tuple[np.ndarray, np.ndarray]:
    """(B, T, V) logits and (B, T) targets, some or all -100."""
    b, t, v = draw(st.integers(1, 3)), draw(st.integers(1, 3)), draw(st.sampled_from([1, 2, 3, 5]))
    z = np.array(draw(st.lists(REALS, min_size=b * t * v, max_size=b * t * v))).reshape(b, t, v)
    labels = st.one_of(st.integers(0, v - 1), st.just(-100))
    target = np.array(draw(st.lists(labels, min_size=b * t, max_size=b * t)), dtype=np.int64).reshape(b, t)
    return z, target


def _token_rows(z: np.ndarray, target: np.ndarray):
    rows = z.reshape(-1, z.shape[-1])
    return [(list(map(float, row)), int(y)) for row, y in zip(rows, target.reshape(-1), strict=True) if y != -100]


def _exact_mean_ce(z: np.ndarray, target: np.ndarray, eps: float):
    rows = _token_rows(z, target)
    with mp.workdps(mpl.DPS):
        if not rows:
            return None
        return mp.fsum(mpl.cross_entropy(row, y, label_smoothing=eps) for row, y in rows) / len(rows)


@FEW
@given(token_batches(), SMOOTHINGS)
@example((np.array([[[1e4, -1e4, 0.0], [0.0, 0.0, 1e6]]]), np.array([[1, 2]])), 0.0)
@example((np.array([[[3.0], [1e4]]]), np.array([[0, -100]])), 0.5)
@example((np.zeros((1, 2, 2)), np.array([[-100, -100]])), 0.0)
def test_sequence_cross_entropy_and_perplexity(batch, eps):
    z, target = batch
    value = R.sequence_cross_entropy(z, target, label_smoothing=eps)
    exact = _exact_mean_ce(z, target, eps)
    if exact is None:  # every token ignored: 0 / 0, as torch
        assert np.isnan(value) and np.isnan(R.perplexity(z, target, label_smoothing=eps))
        return
    bound = CROSS_ENTROPY_ULPS if eps else CROSS_ENTROPY_PLAIN_ULPS
    scale = R.sequence_cross_entropy.error_scale(z, target, label_smoothing=eps)
    check([value], [exact], bound, scale=scale, what=(z, target, eps))
    with mp.workdps(mpl.DPS):
        exact_perplexity = mp.exp(exact)
    scale = R.perplexity_error_scale(z, target, label_smoothing=eps)
    check([R.perplexity(z, target, label_smoothing=eps)], [exact_perplexity], bound + 1, scale=scale, what=batch)


def _exact_ce_gradient(row, y: int, eps: float) -> list:
    """(1 - eps + eps) softmax - t, t = (1 - eps) onehot + eps / V, in mpmath."""
    v = len(row)
    p = [mp.exp(lp) for lp in mpl.log_softmax(row)]
    return [p[c] - ((1 - mp.mpf(eps)) * (c == y) + mp.mpf(eps) / v) for c in range(v)]


@FEW
@given(token_batches(), SMOOTHINGS)
@example((np.array([[[1e4, -1e4, 0.0], [700.0, -700.0, 1e6]]]), np.array([[1, 0]])), 0.1)
def test_sequence_cross_entropy_gradient(batch, eps):
    z, target = batch
    valid = target != -100
    grad = R.sequence_cross_entropy.grad(z, target, label_smoothing=eps)["logits"]
    if not valid.any():
        return  # 0 / 0: the mean's gradient is NaN, as its value
    assert np.all(grad.value[~valid] == 0)
    count = int(valid.sum())
    with mp.workdps(mpl.DPS):
        exact = [g / count for row, y in _token_rows(z, target) for g in _exact_ce_gradient(row, y, eps)]
    bound = (CROSS_ENTROPY_GRAD_ULPS if eps else CROSS_ENTROPY_PLAIN_GRAD_ULPS) + 1
    check(grad.value[valid], exact, bound, scale=grad.scale[valid].ravel(), what=(z, target, eps))


@st.composite
def linear_cases(draw):
    n, h, v = draw(st.integers(1, 5)), draw(st.integers(1, 3)), draw(st.sampled_from([1, 2, 3, 5]))
    x = np.array(draw(st.lists(FACTORS, min_size=n * h, max_size=n * h))).reshape(n, h)
    w = np.array(draw(st.lists(FACTORS, min_size=v * h, max_size=v * h))).reshape(v, h)
    bias = draw(st.one_of(st.none(), st.lists(BIASES, min_size=v, max_size=v).map(np.array)))
    labels = st.one_of(st.integers(0, v - 1), st.just(-100))
    return x, w, np.array(draw(st.lists(labels, min_size=n, max_size=n)), dtype=np.int64), bias


def _exact_logits(x, w, bias) -> list[list]:
    """z = x W^T + b at the working precision (products of floats are exact at 50 digits)."""
    b = np.zeros(w.shape[0]) if bias is None else bias

    def logit(row, c):
        products = [mp.mpf(float(xi)) * mp.mpf(float(wi)) for xi, wi in zip(row, w[c], strict=True)]
        return mp.fsum([mp.mpf(float(b[c])), *products])

    return [[logit(row, c) for c in range(w.shape[0])] for row in x]


@FEW
@given(linear_cases())
@example((EXTREME_LINEAR[0], EXTREME_LINEAR[1], np.array([1, 0]), None))
def test_linear_cross_entropy(case):
    x, w, target, bias = case
    terms = R.linear_cross_entropy.terms(x, w, target, bias=bias, reduction="none")
    with mp.workdps(mpl.DPS):
        logits = _exact_logits(x, w, bias)
        exact = [
            mpl.cross_entropy(row, int(y)) if y != -100 else mp.zero for row, y in zip(logits, target, strict=True)
        ]
    check(terms.values, exact, CROSS_ENTROPY_PLAIN_ULPS, scale=terms.scale, what=case)
    normaliser = mp.mpf(int(np.sum(target != -100)))
    check_reductions(
        R.linear_cross_entropy,
        (x, w, target),
        {"bias": bias},
        exact,
        CROSS_ENTROPY_PLAIN_ULPS,
        scale=terms.scale,
        normaliser=normaliser,
    )


@FEW
@given(linear_cases(), st.sampled_from(["sum", "mean"]))
@example(
    (np.array([[100.0, -100.0], [1.0, 0.0]]), np.array([[100.0, 0.0], [-100.0, 1e3]]), np.array([1, 0]), None), "sum"
)
def test_linear_cross_entropy_gradient(case, reduction):
    x, w, target, bias = case
    grads = R.linear_cross_entropy.grad(x, w, target, bias=bias, reduction=reduction)
    count = int(np.sum(target != -100))
    if reduction == "mean" and count == 0:
        return  # 0 / 0: NaN, as torch
    factor = 1 if reduction == "sum" else count
    v, h = w.shape
    with mp.workdps(mpl.DPS):
        logits = _exact_logits(x, w, bias)
        g = [
            _exact_ce_gradient(row, int(y), 0.0) if y != -100 else [mp.zero] * v
            for row, y in zip(logits, target, strict=True)
        ]
        g = [[value / factor for value in row] for row in g]
        exact = {
            "hidden": [
                mp.fsum(g[n][c] * mp.mpf(float(w[c, k])) for c in range(v)) for n in range(len(x)) for k in range(h)
            ],
            "weight": [
                mp.fsum(g[n][c] * mp.mpf(float(x[n, k])) for n in range(len(x))) for c in range(v) for k in range(h)
            ],
            "bias": [mp.fsum(g[n][c] for n in range(len(x))) for c in range(v)],
        }
    bound = CROSS_ENTROPY_PLAIN_GRAD_ULPS + 0.5 + (1 if reduction == "mean" else 0)
    for name, gradient in grads.items():
        check(gradient.value, exact[name], bound, scale=gradient.scale.ravel(), what=(name, case, reduction))
