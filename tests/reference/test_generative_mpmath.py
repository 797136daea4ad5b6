"""The generative and multi-task references against mpmath at 50 digits, on Hypothesis-drawn inputs with extremes.

Units and metrics as in ``test_references_mpmath`` (``ulp`` = float64's EPS = 2^-52; "scale": the error in EPS
times the reference's own error scale). Exact values are written here from docs/LOSSES.md (nothing from
``reference/``): softplus(z) = log1p(exp(z)), exp(s) at 50 digits, tanh features of the extractor's (exact,
dyadic) weights. Gradients: closed forms at 50 digits, and for the perceptual loss (the extractor's Jacobian)
and the VAE's logvar central differences of the exact loss (``check_derivative``).

Error bound met by each reference
---------------------------------
==========================  ======  =====  ==========================================================================
reference                   metric  bound  derivation
==========================  ======  =====  ==========================================================================
gan_discriminator_loss      scale   4      each BCE-with-logits term 3u (classification bound), / N u, sum of the
gan_generator_loss                         N_real + N_fake terms (the summation bound is part of the scale)
wgan_critic_loss            scale   2      f / N u, sum of N terms (n - 1) u sum |v| (in the scale), final u
wgan_generator_loss
vae_loss                    scale   4      BCE 3u or MSE 1.5u per element; KL: series or expm1 - s (<= 4u of its
                                           value, value <= its scale), mu^2 u, + u, * 0.5 beta 2u; sum (in scale)
perceptual_loss             scale   4      features: the einsum and tanh a few u of e_l (the scale carries
                                           (C + 1) u per sum), d^2 / n 3u, * w / W 2u, sum (in scale)
uncertainty_weighted_loss   scale   2      exp(-s) 2u * L u + s u of both terms, sum (in scale)
gradients (all)             scale   4      closed forms a few roundings of their scales; the perceptual backward
                                           through tanh' and W^T: (C + 2) u per layer against the scale's C terms
==========================  ======  =====  ==========================================================================
Domain: logits and scores in +-1e6 mixed with 0, +-1, +-20, +-1e4, +-1e6; batches of 1..4; mu in +-1e3 with
exact zeros, logvar in [-80, 80] with exact zeros; probabilities with exact 0 and 1; extractor inputs in +-1e4
(saturated tanh); losses in [0, 1e3] with exact zeros and log_vars in [-10, 10].
"""

from __future__ import annotations

import math

import mp_losses as mpl
import numpy as np
from hypothesis import example, given, settings
from hypothesis import strategies as st
from mpmath import mp, mpf
from test_references_mpmath import _mixed, check, check_derivative

from lossguard.reference import generative as R

FEW = settings(max_examples=12, deadline=None)
VALUE_ULPS = 4.0
WGAN_ULPS = 2.0
UNCERTAINTY_ULPS = 2.0
GRAD_ULPS = 4.0
LOGITS = _mixed([0.0, 1.0, -1.0, 20.0, -20.0, 1e4, -1e4, 1e6, -1e6], -1e6, 1e6)
PROBABILITIES = _mixed([0.0, 1.0, 1e-30, 1 - 1e-7, 0.5], 0.0, 1.0)
MU = _mixed([0.0, 0.0, 1.0, -1.0, 1e-8, 1e3], -1e3, 1e3)
LOGVAR = _mixed([0.0, 0.0, 1e-8, -1e-8, 0.5, -1.0, 80.0, -80.0], -80.0, 80.0)


def _arrays(draw, shape, elements) -> np.ndarray:
    return np.array(draw(st.lists(elements, min_size=math.prod(shape), max_size=math.prod(shape)))).reshape(shape)


def _softplus(z) -> mpf:
    return mp.log1p(mp.exp(mpl._f(z)))


def _mean(values) -> mpf:
    values = list(values)
    return mp.fsum(values) / len(values)


def _check_scalar(ref, args, exact, bound) -> None:
    check(ref(*args), [exact], bound, scale=[float(ref.error_scale(*args))], what=args)


def _check_grads(ref, args, exact: dict, bound=GRAD_ULPS, **kwargs) -> None:
    grads = ref.grad(*args, **kwargs)
    for name, values in exact.items():
        check(np.ravel(grads[name].value), values, bound, scale=np.ravel(grads[name].scale) + 1e-300, what=(name, args))


# --- GAN, WGAN ----------------------------------------------------------------------------------------------------


@FEW
@given(st.data())
def test_gan(data):
    real = _arrays(data.draw, (data.draw(st.integers(1, 4)),), LOGITS)
    fake = _arrays(data.draw, (data.draw(st.integers(1, 4)),), LOGITS)
    with mp.workdps(mpl.DPS):
        d = _mean(_softplus(-r) for r in real) + _mean(_softplus(f) for f in fake)
        g = _mean(_softplus(-f) for f in fake)
        sig = [mpl.sigmoid(-r) for r in real]
        _check_grads(
            R.gan_discriminator_loss,
            (real, fake),
            {
                "real_logits": [-s / len(real) for s in sig],
                "fake_logits": [mpl.sigmoid(f) / len(fake) for f in fake],
            },
        )
        _check_grads(R.gan_generator_loss, (fake,), {"fake_logits": [-mpl.sigmoid(-f) / len(fake) for f in fake]})
    _check_scalar(R.gan_discriminator_loss, (real, fake), d, VALUE_ULPS)
    _check_scalar(R.gan_generator_loss, (fake,), g, VALUE_ULPS)


@FEW
@given(st.data())
def test_wgan(data):
    real = _arrays(data.draw, (data.draw(st.integers(1, 4)), 1), LOGITS)
    fake = _arrays(data.draw, (data.draw(st.integers(1, 4)), 1), LOGITS)
    with mp.workdps(mpl.DPS):
        critic = _mean(mpl._f(v) for v in fake.ravel()) - _mean(mpl._f(v) for v in real.ravel())
        generator = -_mean(mpl._f(v) for v in fake.ravel())
    _check_scalar(R.wgan_critic_loss, (real, fake), critic, WGAN_ULPS)
    _check_scalar(R.wgan_generator_loss, (fake,), generator, WGAN_ULPS)
    _check_grads(R.wgan_critic_loss, (real, fake), {"real_scores": [-1 / mpf(real.size)] * real.size}, 0.5)


# --- VAE ---------------------------------------------------------------------------------------------------------


def _clamped_log(p) -> mpf:
    return max(mp.log(p), mpf(-100)) if p > 0 else mpf(-100)


def _clamped_log1m(p) -> mpf:
    """max(log(1 - p), -100) as log1p(-p): 1 - p of p = 2.2e-308 rounds to 1 at 50 digits (log 0 = 0 where
    the exact log is -2.2e-308)."""
    return max(mp.log1p(-p), mpf(-100)) if p < 1 else mpf(-100)


def _vae(recon, x, mu, logvar, beta, kind) -> mpf:
    if kind == "bce":
        rec = [
            -(mpl._f(y) * _clamped_log(mpl._f(p)) + (1 - mpl._f(y)) * _clamped_log1m(mpl._f(p)))
            for p, y in zip(recon, x, strict=True)
        ]
    else:
        rec = [mpl._sub(p, y) ** 2 for p, y in zip(recon, x, strict=True)]
    kl = [mpl._f(m) ** 2 + _exp_minus_one_minus(mpl._f(s)) for m, s in zip(mu, logvar, strict=True)]
    return mp.fsum(rec) + mpl._f(beta) * mp.fsum(kl) / 2


def _exp_minus_one_minus(s) -> mpf:
    """exp(s) - 1 - s, literally, with 2 log2(1/|s|) more bits for |s| < 1 (the value is ~ s^2 / 2: at the
    ambient precision alone exp(1e-200) rounds to 1 and the difference to -s, an error that the reference's
    value scale of 1 there happens to cover)."""
    extra = max(0, -2 * int(mp.mag(s))) if s else 0
    with mp.workprec(mp.prec + extra):
        value = mp.exp(s) - 1 - s
    return +value


@st.composite
def vae_cases(draw) -> tuple:
    """(recon, x, mu, logvar, beta, kind): probabilities (bce) or reals (mse), (N, D) and (N, Z)."""
    kind, beta = draw(st.sampled_from(["bce", "mse"])), draw(_mixed([1.0, 0.0, 0.5], 0.0, 4.0))
    n, d, z = draw(st.integers(1, 2)), draw(st.integers(1, 3)), draw(st.integers(1, 3))
    values = PROBABILITIES if kind == "bce" else _mixed([0.0, 1.0, -1.0, 1e3], -1e3, 1e3)
    recon, x = _arrays(draw, (n, d), values), _arrays(draw, (n, d), values)
    mu, logvar = _arrays(draw, (n, z), MU), _arrays(draw, (n, z), LOGVAR)
    return recon, x, mu, logvar, beta, kind


@FEW
@given(vae_cases())
# recon 2.2e-308 against x = 0: -log(1 - p) = 2.2e-308, the oracle's log(1 - p) at 50 digits gave 0 (oracle at
# fault: log1p(-p); the reference was right)
@example((np.array([[2.2250738585072014e-308]]), np.zeros((1, 1)), np.zeros((1, 1)), np.zeros((1, 1)), 0.0, "bce"))
def test_vae(case):
    recon, x, mu, logvar, beta, kind = case
    args = (recon, x, mu, logvar, beta, kind)
    flat = (recon.ravel(), x.ravel(), mu.ravel(), logvar.ravel(), beta, kind)
    exact = mpl.value(_vae, *flat)
    _check_scalar(R.vae_loss, args, exact, VALUE_ULPS)
    with mp.workdps(mpl.DPS):
        _check_grads(R.vae_loss, args, {"mu": [mpl._f(beta) * mpl._f(m) for m in mu.ravel()]})
    grads = R.vae_loss.grad(*args)
    for i in range(logvar.size):

        def along(v, i=i):
            lv = [mpl._f(s) for s in logvar.ravel()]
            lv[i] = v
            return _vae(recon.ravel(), x.ravel(), mu.ravel(), lv, beta, kind)

        check_derivative(
            float(grads["logvar"].value.flat[i]),
            along,
            [float(logvar.flat[i])],
            0,
            GRAD_ULPS,
            scale=float(grads["logvar"].scale.flat[i]),
            extent=100.0,
        )


def test_vae_kl_is_exactly_zero_at_the_prior_and_clamps_bce():
    zeros = np.zeros((2, 3))
    assert float(R.vae_loss(np.ones((1, 1)), np.ones((1, 1)), zeros[:1], zeros[:1])) == 0.0
    assert float(R.vae_loss(np.array([[0.0, 1.0]]), np.array([[1.0, 0.0]]), zeros, zeros, 1.0, "bce")) == 200.0
    s = np.array([1e-8, 1e-5, -0.75, 0.999, -1.0, 1.5, 80.0])
    exact = [mpl.value(lambda v: mp.exp(mpl._f(v)) - 1 - mpl._f(v), v) for v in s]
    check(R.exp_minus_one_minus(s), exact, 2.0)


# --- perceptual ----------------------------------------------------------------------------------------------------


def _features(extractor: R.TanhExtractor, point) -> list[list[mpf]]:
    f, out = [mpl._f(v) for v in point], []
    for w, b in extractor.parameters:
        f = [mp.tanh(mp.fsum(mpl._f(w[o, c]) * f[c] for c in range(len(f))) + mpl._f(b[o])) for o in range(len(b))]
        out.append(f)
    return out


def _perceptual(extractor, x, t, layers, weights) -> mpf:
    """x, t: lists of positions, each a list of C_0 mpf channel values."""
    fx = [_features(extractor, p) for p in x]
    ft = [_features(extractor, p) for p in t]
    mses = []
    for layer in layers:
        squares = [
            (a - b) ** 2 for px, pt in zip(fx, ft, strict=True) for a, b in zip(px[layer], pt[layer], strict=True)
        ]
        mses.append(mp.fsum(squares) / len(squares))
    w = [mpf(1)] * len(layers) if weights is None else [mpl._f(v) for v in weights]
    return mp.fsum(a * b for a, b in zip(w, mses, strict=True)) / mp.fsum(w)


def _positions(a: np.ndarray) -> list[list[float]]:
    return np.moveaxis(a, 1, -1).reshape(-1, a.shape[1]).tolist()


@settings(max_examples=8, deadline=None)
@given(st.data())
def test_perceptual(data):
    widths = tuple(data.draw(st.lists(st.integers(1, 3), min_size=2, max_size=3)))
    extractor = R.TanhExtractor(data.draw(st.integers(0, 2**16)), widths)
    layers = tuple(data.draw(st.lists(st.integers(0, extractor.depth - 1), min_size=1, max_size=2, unique=True)))
    weights = data.draw(
        st.one_of(st.none(), st.lists(_mixed([1.0, 0.5], 0.1, 5.0), min_size=len(layers), max_size=len(layers)))
    )
    weights = None if weights is None else np.array(weights)
    shape = (data.draw(st.integers(1, 2)), widths[0], *data.draw(st.sampled_from([(), (2,)])))
    values = _mixed([0.0, 1.0, -1.0, 0.5, 1e4, -1e4], -3.0, 3.0)
    x, t = _arrays(data.draw, shape, values), _arrays(data.draw, shape, values)
    if data.draw(st.booleans()):
        t[0] = x[0]
    args = (x, t, extractor, layers, weights)
    exact = mpl.value(_perceptual, extractor, _positions(x), _positions(t), layers, weights)
    _check_scalar(R.perceptual_loss, args, exact, VALUE_ULPS)
    grads = R.perceptual_loss.grad(*args)
    for name, array in (("input", x), ("target", t)):
        for i in range(array.size):

            def along(v, name=name, i=i):
                moved = {"input": x.astype(object), "target": t.astype(object)}
                moved[name].flat[i] = v
                return _perceptual(extractor, _positions(moved["input"]), _positions(moved["target"]), layers, weights)

            check_derivative(
                float(grads[name].value.flat[i]),
                along,
                [float(array.flat[i])],
                0,
                GRAD_ULPS,
                scale=float(grads[name].scale.flat[i]) + 1e-300,
                extent=1e4,
            )
    if weights is not None:
        with mp.workdps(mpl.DPS):
            fx = [_features(extractor, p) for p in _positions(x)]
            ft = [_features(extractor, p) for p in _positions(t)]
            mses = []
            for layer in layers:
                sq = [
                    (a - b) ** 2
                    for px, pt in zip(fx, ft, strict=True)
                    for a, b in zip(px[layer], pt[layer], strict=True)
                ]
                mses.append(mp.fsum(sq) / len(sq))
            total = mp.fsum(mpl._f(v) for v in weights)
            exact_w = [(m - exact) / total for m in mses]
        check(grads["layer_weights"].value, exact_w, GRAD_ULPS, scale=grads["layer_weights"].scale + 1e-300)


# --- uncertainty weighting -----------------------------------------------------------------------------------------


@FEW
@given(st.data())
def test_uncertainty(data):
    t = data.draw(st.integers(1, 5))
    losses = _arrays(data.draw, (t,), _mixed([0.0, 1.0, 1e-3, 1e3], 0.0, 1e3))
    log_vars = _arrays(data.draw, (t,), _mixed([0.0, 10.0, -10.0, 1.0], -10.0, 10.0))
    with mp.workdps(mpl.DPS):
        weights = [mp.exp(-mpl._f(s)) for s in log_vars]
        exact = mp.fsum(w * mpl._f(v) + mpl._f(s) for w, v, s in zip(weights, losses, log_vars, strict=True))
        _check_grads(
            R.uncertainty_weighted_loss,
            (losses, log_vars),
            {"losses": weights, "log_vars": [1 - w * mpl._f(v) for w, v in zip(weights, losses, strict=True)]},
        )
    _check_scalar(R.uncertainty_weighted_loss, (losses, log_vars), exact, UNCERTAINTY_ULPS)
