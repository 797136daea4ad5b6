"""Float64 references of the generative and multi-task losses (docs/LOSSES.md, "Generative, multi-task").

None of these losses takes a ``reduction``: each returns one scalar. Their :class:`Terms` list the
summands of that scalar already divided by their means' counts (``normaliser=1``), so
``reduce_scale`` adds the summation bound of all of them (Higham eq. 4.4), which covers the
implementation's separate means as well.

Error scales (see ``lossguard.reference._core``), for an implementation evaluating the usual formulas in a
dtype with unit roundoff u:

* GAN losses: the binary cross-entropy-with-logits terms of the classification reference (the
  magnitude of torch's ``(1 - y) z - log_sigmoid(z)``).
* VAE KL term ``-0.5 (1 + logvar - mu^2 - exp(logvar))``: the magnitude of its four summands,
  ``0.5 (1 + |logvar| + mu^2 + exp(logvar))`` (it cancels to 0 at mu = logvar = 0); the
  reconstruction terms are those of the classification BCE (each log clamped at -100, as torch's
  ``binary_cross_entropy``, so a probability of exactly 0 or 1 against a mismatching x costs a
  finite 100 per element) or of the regression MSE.
* perceptual loss: the features of a :class:`TanhExtractor` carry an absolute error ``e_l`` (in
  units of u) from the sums of its 1x1 layers, propagated through each tanh's slope
  (``feature_errors``); a squared difference ``d^2`` of features then has scale
  ``d^2 + 2 |d| (e_in + e_target)``.
* uncertainty weighting ``exp(-s) L + s``: the magnitude of both summands.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import numpy as np

from lossguard.reference import classification as C
from lossguard.reference import regression as R
from lossguard.reference._core import Gradient, Terms, loss_reference


def _f(x) -> np.ndarray:
    return np.asarray(x, dtype=np.float64)


def _flat(*arrays) -> np.ndarray:
    return np.concatenate([np.ravel(a) for a in arrays])


# --- GAN (Goodfellow et al. 2014) -----------------------------------------------------------------


def _bce_logits(z, label: float) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """BCE-with-logits of every logit against ``label`` (the classification reference): values, scales, and
    the gradient of their sum with its scale."""
    z = _f(z)
    y = np.full_like(z, label)
    terms = C.binary_cross_entropy_with_logits.terms(z, y, reduction="none")
    grad = C.binary_cross_entropy_with_logits.grad(z, y, reduction="sum")["input"]
    return terms.values, terms.scale, grad.value, grad.scale


@loss_reference
def gan_discriminator_loss(real_logits, fake_logits) -> Terms:
    """Discriminator loss of the original GAN (Goodfellow et al. 2014, eq. 1, as a minimisation):
    mean BCE-with-logits(real, 1) + mean BCE-with-logits(fake, 0) = mean softplus(-real) + mean softplus(fake)."""
    v_r, s_r, _, _ = _bce_logits(real_logits, 1.0)
    v_f, s_f, _, _ = _bce_logits(fake_logits, 0.0)
    return Terms(_flat(v_r / v_r.size, v_f / v_f.size), _flat(s_r / v_r.size, s_f / v_f.size), 1.0)


@gan_discriminator_loss.gradient("real_logits", "fake_logits")
def _gan_discriminator_grad(real_logits, fake_logits):
    """d/d real_i = -sigmoid(-real_i) / N_real, d/d fake_j = sigmoid(fake_j) / N_fake."""
    _, _, g_r, s_r = _bce_logits(real_logits, 1.0)
    _, _, g_f, s_f = _bce_logits(fake_logits, 0.0)
    return {
        "real_logits": Gradient(g_r / g_r.size, s_r / g_r.size),
        "fake_logits": Gradient(g_f / g_f.size, s_f / g_f.size),
    }


@loss_reference
def gan_generator_loss(fake_logits) -> Terms:
    """Non-saturating generator loss (Goodfellow et al. 2014, section 3): mean BCE-with-logits(fake, 1)
    = mean softplus(-fake) = -mean log D(G(z))."""
    v, s, _, _ = _bce_logits(fake_logits, 1.0)
    return Terms(v, s)


@gan_generator_loss.gradient("fake_logits")
def _gan_generator_grad(fake_logits):
    """d/d fake_j = -sigmoid(-fake_j) (for the sum; the mean divides by N)."""
    _, _, g, s = _bce_logits(fake_logits, 1.0)
    return {"fake_logits": Gradient(g, s)}


# --- WGAN (Arjovsky, Chintala & Bottou 2017) -----------------------------------------------------------


@loss_reference
def wgan_critic_loss(real_scores, fake_scores) -> Terms:
    """Critic loss of the Wasserstein GAN (Arjovsky et al. 2017, Algorithm 1, negated for minimisation):
    mean(fake) - mean(real); it is negative whenever the critic scores real samples higher."""
    r, f = _f(real_scores), _f(fake_scores)
    values = _flat(f / f.size, -r / r.size)
    return Terms(values, np.abs(values), 1.0)


@wgan_critic_loss.gradient("real_scores", "fake_scores")
def _wgan_critic_grad(real_scores, fake_scores):
    r, f = _f(real_scores), _f(fake_scores)
    g_r, g_f = np.full_like(r, -1.0 / r.size), np.full_like(f, 1.0 / f.size)
    return {"real_scores": Gradient(g_r, np.abs(g_r)), "fake_scores": Gradient(g_f, np.abs(g_f))}


@loss_reference
def wgan_generator_loss(fake_scores) -> Terms:
    """Generator loss of the Wasserstein GAN (Arjovsky et al. 2017, Algorithm 1): -mean(fake)."""
    f = _f(fake_scores)
    return Terms(-f, np.abs(f))


@wgan_generator_loss.gradient("fake_scores")
def _wgan_generator_grad(fake_scores):
    g = np.full_like(_f(fake_scores), -1.0)
    return {"fake_scores": Gradient(g, np.abs(g))}


# --- VAE (Kingma & Welling 2014) ---------------------------------------------------------------------------

RECON_LOSSES = ("bce", "mse")
_SERIES_TERMS = 30  # |s| <= 1: sum_{k >= 2} s^k / k! to 1 / 30! ~ 4e-33 relative


def exp_minus_one_minus(s) -> np.ndarray:
    """exp(s) - 1 - s to a few ulps: its Taylor series for |s| <= 1 (alternating at worst with sum of
    |terms| <= 2 x the value), expm1(s) - s beyond (cancelling by at most a factor e / (e - 2) < 4)."""
    s = _f(s)
    small = np.abs(s) <= 1.0
    t = np.where(small, s, 0.0)
    term, series = t * t / 2.0, np.zeros_like(t)
    for k in range(3, _SERIES_TERMS + 3):
        series = series + term
        term = term * t / k
    with np.errstate(over="ignore"):
        return np.where(small, series, np.expm1(np.where(small, 0.0, s)) - s)


def kl_terms(mu, logvar) -> tuple[np.ndarray, np.ndarray]:
    """KL(N(mu, exp(logvar)) || N(0, 1)) per latent, 0.5 (mu^2 + exp(logvar) - 1 - logvar) >= 0 (Kingma &
    Welling 2014, appendix B), and the magnitude of the four summands of -0.5 (1 + logvar - mu^2 - exp(logvar))."""
    mu, lv = _f(mu), _f(logvar)
    with np.errstate(over="ignore"):
        values = 0.5 * (mu * mu + exp_minus_one_minus(lv))
        scale = 0.5 * (1.0 + np.abs(lv) + mu * mu + np.exp(lv))
    return values, scale


def _recon_terms(recon, x, recon_loss) -> Terms:
    if recon_loss == "bce":
        return C.binary_cross_entropy.terms(recon, x, reduction="none")
    if recon_loss == "mse":
        return R.mse_loss.terms(recon, x, reduction="none")
    raise ValueError(f"recon_loss must be one of {RECON_LOSSES}, got {recon_loss!r}")


@loss_reference
def vae_loss(recon, x, mu, logvar, beta=1.0, recon_loss="bce") -> Terms:
    """Negative ELBO of a Gaussian-latent VAE (Kingma & Welling 2014, eq. 10; beta as in Higgins et al. 2017):
    sum-reduced reconstruction (BCE on probabilities with torch's -100 clamp of each log, or squared error)
    + beta * sum_j KL(N(mu_j, exp(logvar_j)) || N(0, 1)), the KL = -0.5 sum(1 + logvar - mu^2 - exp(logvar))."""
    recon_terms = _recon_terms(recon, x, recon_loss)
    kl, kl_scale = kl_terms(mu, logvar)
    values = _flat(recon_terms.values, beta * kl)
    return Terms(values, _flat(recon_terms.scale, abs(beta) * kl_scale), 1.0)


@vae_loss.gradient("recon", "x", "mu", "logvar")
def _vae_grad(recon, x, mu, logvar, beta=1.0, recon_loss="bce"):
    """Reconstruction: the BCE (classification) or MSE (regression) reference gradients of the sum;
    d/d mu = beta mu, d/d logvar = 0.5 beta (exp(logvar) - 1)."""
    base = C.binary_cross_entropy if recon_loss == "bce" else R.mse_loss
    grads = base.grad(recon, x, reduction="sum")
    mu, lv = _f(mu), _f(logvar)
    with np.errstate(over="ignore"):
        d_lv = 0.5 * beta * np.expm1(lv)
        lv_scale = 0.5 * abs(beta) * (np.exp(lv) + 1.0)
    return {
        "recon": grads["input"],
        "x": grads["target"],
        "mu": Gradient(beta * mu, np.abs(beta * mu)),
        "logvar": Gradient(d_lv, lv_scale),
    }


# --- perceptual loss (Johnson, Alahi & Fei-Fei 2016) -----------------------------------------------------------


@dataclass(frozen=True)
class TanhExtractor:
    """A small, seeded, framework-neutral feature extractor: layers of 1x1 convolutions with tanh.

    On inputs ``(N, C_0, *spatial)`` (channels on axis 1), layer l computes, at every position,
    ``f_l = tanh(W_l f_(l-1) + b_l)`` with ``W_l`` of shape ``(C_l, C_(l-1))`` (``f_0`` the input);
    ``features`` returns ``[f_1, ..., f_L]``, so a perceptual loss's ``layers`` index 0..L-1. The
    weights and biases are multiples of 1/8 in [-1, 1] drawn from ``numpy.random.default_rng(seed)``:
    exact in every dtype, so an implementation in float16 uses the very weights of the float64
    reference. A framework binding materialises it (``lossguard.harness.kernel.frameworks.torch_binding``: a frozen
    ``nn.Module`` built by ``implementations.own.generative``); the repr is the constructor call that rebuilds it.
    """

    seed: int
    widths: tuple[int, ...]

    @property
    def depth(self) -> int:
        return len(self.widths) - 1

    @cached_property
    def parameters(self) -> tuple[tuple[np.ndarray, np.ndarray], ...]:
        """((W_1, b_1), ..., (W_L, b_L)) as float64 arrays."""
        rng = np.random.default_rng(self.seed)
        return tuple(
            (rng.integers(-8, 9, size=(c_out, c_in)) / 8.0, rng.integers(-8, 9, size=c_out) / 8.0)
            for c_in, c_out in zip(self.widths[:-1], self.widths[1:], strict=True)
        )

    @staticmethod
    def _layer(w: np.ndarray, b: np.ndarray, f: np.ndarray) -> np.ndarray:
        """W f + b at every position (channels on axis 1)."""
        return np.einsum("oc,nc...->no...", w, f) + b.reshape((1, -1) + (1,) * (f.ndim - 2))

    def features(self, x) -> list[np.ndarray]:
        """[f_1, ..., f_L] of ``x`` in float64."""
        f, out = _f(x), []
        for w, b in self.parameters:
            f = np.tanh(self._layer(w, b, f))
            out.append(f)
        return out

    def feature_errors(self, x) -> list[np.ndarray]:
        """Absolute error scales e_l of the features, in units of u: the pre-activation's (C_(l-1) + 1)-term
        sum errs by (C_(l-1) + 1) (|W| |f| + |b|) plus |W| e_(l-1) carried in; tanh multiplies that by its
        slope 1 - f_l^2 and adds its own rounding |f_l|; e_0 = 0 (the input is exact)."""
        f, e, out = _f(x), np.zeros_like(_f(x)), []
        for w, b in self.parameters:
            sums = (w.shape[1] + 1) * self._layer(np.abs(w), np.abs(b), np.abs(f)) + self._layer(np.abs(w), 0 * b, e)
            f = np.tanh(self._layer(w, b, f))
            e = (1.0 - f * f) * sums + np.abs(f)
            out.append(e)
        return out

    def backward(self, x, upstream: dict[int, np.ndarray], scales: dict[int, np.ndarray]):
        """The vector-Jacobian product: d/dx of sum_l <upstream_l, f_l(x)>, with its error scale (backward through
        tanh' = 1 - f^2 and W^T; the scale sums the same products in absolute value, C_l terms per sum, and the
        error 2 |f| e_f of the slope)."""
        feats, errs = self.features(x), self.feature_errors(x)
        g = np.zeros_like(feats[-1])
        s = np.zeros_like(feats[-1])
        for layer in reversed(range(self.depth)):
            w, _ = self.parameters[layer]
            f, e = feats[layer], errs[layer]
            g = g + upstream.get(layer, 0.0)
            s = s + scales.get(layer, 0.0)
            slope = 1.0 - f * f
            g_a = g * slope
            s_a = s * slope + np.abs(g) * (2.0 * np.abs(f) * e + slope)
            g = np.einsum("oc,no...->nc...", w, g_a)
            s = np.einsum("oc,no...->nc...", np.abs(w), s_a + w.shape[0] * np.abs(g_a))
        return g, s


def _layer_weights(layers, layer_weights) -> np.ndarray:
    return np.ones(len(layers)) if layer_weights is None else _f(layer_weights)


def _perceptual_parts(input, target, feature_extractor, layers, layer_weights):
    """Per chosen layer: differences d, their error scales, the element count, and the normalised weight."""
    f_in, f_t = feature_extractor.features(input), feature_extractor.features(target)
    e_in, e_t = feature_extractor.feature_errors(input), feature_extractor.feature_errors(target)
    w = _layer_weights(layers, layer_weights)
    total = np.sum(w)
    parts = []
    for k, layer in enumerate(layers):
        d = f_in[layer] - f_t[layer]
        parts.append((layer, d, e_in[layer] + e_t[layer], d.size, w[k] / total))
    return parts, w, total


@loss_reference
def perceptual_loss(input, target, feature_extractor, layers, layer_weights=None) -> Terms:
    """Feature-reconstruction (perceptual) loss (Johnson, Alahi & Fei-Fei 2016, eq. 2 with squared euclidean
    distance normalised by the feature size): sum_l w_l mse(phi_l(input), phi_l(target)) / sum_l w_l over the
    chosen ``layers`` of the frozen extractor phi (equal weights by default), computed on float64 features."""
    parts, _, _ = _perceptual_parts(input, target, feature_extractor, layers, layer_weights)
    values = _flat(*(omega * d * d / n for _, d, _, n, omega in parts))
    scale = _flat(*(omega * (d * d + 2.0 * np.abs(d) * e) / n for _, d, e, n, omega in parts))
    return Terms(values, scale, 1.0)


@perceptual_loss.gradient("input", "target", "layer_weights")
def _perceptual_grad(input, target, feature_extractor, layers, layer_weights=None):
    """d/d input = sum_l J_l(input)^T (2 w_l / (W n_l)) d_l (d_l = phi_l(input) - phi_l(target), W = sum w),
    d/d target the same at target with -d_l; d/d w_k = (mse_k - loss) / W."""
    parts, w, total = _perceptual_parts(input, target, feature_extractor, layers, layer_weights)
    up_in: dict[int, np.ndarray] = {}
    up_t: dict[int, np.ndarray] = {}
    sc: dict[int, np.ndarray] = {}
    for layer, d, e, n, omega in parts:
        up_in[layer] = up_in.get(layer, 0.0) + 2.0 * omega * d / n
        up_t[layer] = up_t.get(layer, 0.0) - 2.0 * omega * d / n
        sc[layer] = sc.get(layer, 0.0) + 2.0 * omega * (np.abs(d) + e) / n
    g_in, s_in = feature_extractor.backward(input, up_in, sc)
    g_t, s_t = feature_extractor.backward(target, up_t, sc)
    grads = {"input": Gradient(g_in, s_in), "target": Gradient(g_t, s_t)}
    if layer_weights is not None:
        mse = np.array([np.mean(d * d) for _, d, _, _, _ in parts])
        mse_scale = np.array([np.mean(d * d + 2.0 * np.abs(d) * e) + d.size * np.mean(d * d) for _, d, e, *_ in parts])
        loss = np.sum(w * mse) / total
        loss_scale = np.sum(np.abs(w) * mse_scale) / total + len(w) * abs(loss)
        grads["layer_weights"] = Gradient((mse - loss) / total, (mse_scale + loss_scale + np.abs(mse - loss)) / total)
    return grads


# --- uncertainty weighting (Kendall, Gal & Cipolla 2018) ----------------------------------------------------------


@loss_reference
def uncertainty_weighted_loss(losses, log_vars) -> Terms:
    """Homoscedastic-uncertainty task weighting (Kendall, Gal & Cipolla 2018, eq. 7 with s_i = log sigma_i^2
    and the factors 1/2 dropped): sum_i exp(-s_i) L_i + s_i over the T tasks; its minimum over s_i is at
    s_i = log L_i (for L_i > 0), where the term is 1 + log L_i."""
    L, s = _f(losses), _f(log_vars)
    with np.errstate(over="ignore"):
        weighted = np.exp(-s) * L
    return Terms(weighted + s, np.abs(weighted) + np.abs(s), 1.0)


@uncertainty_weighted_loss.gradient("losses", "log_vars")
def _uncertainty_grad(losses, log_vars):
    """d/d L_i = exp(-s_i), d/d s_i = 1 - exp(-s_i) L_i."""
    L, s = _f(losses), _f(log_vars)
    with np.errstate(over="ignore"):
        weight = np.exp(-s)
    return {
        "losses": Gradient(weight, weight),
        "log_vars": Gradient(1.0 - weight * L, 1.0 + np.abs(weight * L)),
    }
