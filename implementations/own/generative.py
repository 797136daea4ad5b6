"""lossguard's own PyTorch implementations of the generative and multi-task losses.

Every loss validates its arguments first (messages ``"<loss>: <argument> must be ..., got ..."``, see
:mod:`lossguard.implementations.own._checks`), then computes in the input's dtype on the input's device, vectorised.
None takes a ``reduction``: each returns a scalar (docs/LOSSES.md, "Generative, multi-task").
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from ._checks import check_floating_tensor, check_nonnegative, check_same_shape, fmt_shape

__all__ = [
    "OWN",
    "gan_discriminator_loss",
    "gan_generator_loss",
    "perceptual_loss",
    "tanh_extractor_module",
    "uncertainty_weighted_loss",
    "vae_loss",
    "wgan_critic_loss",
    "wgan_generator_loss",
]

_LOG_CLAMP = -100.0  # torch's binary_cross_entropy clamps each log at -100


def _samples(x: object, fn: str, arg: str) -> torch.Tensor:
    """A floating tensor with at least one element (a mean over no samples is undefined)."""
    check_floating_tensor(x, fn, arg)
    if x.numel() == 0:
        raise ValueError(f"{fn}: {arg} must hold at least one sample, got shape {fmt_shape(x.shape)}")
    return x


def gan_discriminator_loss(real_logits: torch.Tensor, fake_logits: torch.Tensor) -> torch.Tensor:
    """GAN discriminator loss (Goodfellow et al. 2014): mean BCE-with-logits(real, 1) + mean BCE-with-logits(fake, 0).

    Computed as ``mean(-logsigmoid(real)) + mean(-logsigmoid(-fake))`` (softplus(-real) and softplus(fake)),
    relatively accurate and finite for every finite logit (+-1e4 included). The two batches may differ in size.
    """
    fn = "gan_discriminator_loss"
    _samples(real_logits, fn, "real_logits")
    _samples(fake_logits, fn, "fake_logits")
    return -F.logsigmoid(real_logits).mean() - F.logsigmoid(-fake_logits.to(real_logits.dtype)).mean()


def gan_generator_loss(fake_logits: torch.Tensor) -> torch.Tensor:
    """Non-saturating GAN generator loss (Goodfellow et al. 2014, section 3): mean BCE-with-logits(fake, 1)
    = mean(-logsigmoid(fake)); its gradient does not vanish while the discriminator rejects the fakes."""
    return -F.logsigmoid(_samples(fake_logits, "gan_generator_loss", "fake_logits")).mean()


def wgan_critic_loss(real_scores: torch.Tensor, fake_scores: torch.Tensor) -> torch.Tensor:
    """WGAN critic loss (Arjovsky et al. 2017): mean(fake) - mean(real); negative when real samples score higher."""
    fn = "wgan_critic_loss"
    _samples(real_scores, fn, "real_scores")
    _samples(fake_scores, fn, "fake_scores")
    return fake_scores.mean() - real_scores.mean()


def wgan_generator_loss(fake_scores: torch.Tensor) -> torch.Tensor:
    """WGAN generator loss (Arjovsky et al. 2017): -mean(fake)."""
    return -_samples(fake_scores, "wgan_generator_loss", "fake_scores").mean()


def _clamped(log: Callable[[torch.Tensor], torch.Tensor], p: torch.Tensor, safe: float) -> torch.Tensor:
    """max(log(p), -100) with the derivative of that clamped function: log'(p) where log(p) > -100, else 0
    (no 0 * inf = NaN where the log is -inf: it is taken of the ``safe`` value there)."""
    inside = log(p) > _LOG_CLAMP
    return torch.where(inside, log(torch.where(inside, p, torch.full_like(p, safe))), torch.full_like(p, _LOG_CLAMP))


def _binary_cross_entropy_sum(recon: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """sum -[x log p + (1 - x) log(1 - p)], each log clamped at -100 (torch's convention), with the gradient of the
    clamped function (torch's own backward divides by max(p (1 - p), 1e-12) instead). log(1 - p) is log1p(-p):
    1 - p rounds to 1 for p below the dtype's roundoff (1e-30 in float64, 2e-3 in bfloat16) and log(1) = 0."""
    log_p = _clamped(torch.log, recon, 1.0)
    log_1m_p = _clamped(lambda q: torch.log1p(-q), recon, 0.0)
    return -(x * log_p + (1.0 - x) * log_1m_p).sum()


def vae_loss(
    recon: torch.Tensor,
    x: torch.Tensor,
    mu: torch.Tensor,
    logvar: torch.Tensor,
    beta: float = 1.0,
    recon_loss: str = "bce",
) -> torch.Tensor:
    r"""Negative ELBO of a Gaussian-latent VAE (Kingma & Welling 2014; beta-VAE, Higgins et al. 2017).

    .. math::
        \mathcal{L} = \sum \mathrm{rec}(\hat x, x) + \beta \cdot \tfrac12 \sum_j \big(\mu_j^2 + e^{s_j} - 1 - s_j\big),
        \qquad s = \log\sigma^2,

    the KL term written as ``mu^2 + (expm1(s) - s)``: exactly 0 at mu = s = 0 and a sum of non-negative terms.
    ``recon_loss='bce'``: binary cross-entropy on probabilities ``recon`` in [0, 1] against ``x`` in [0, 1], each log
    clamped at -100 (so recon of exactly 0 or 1 is finite); ``'mse'``: squared error. Both sum-reduced.

    Raises:
        ValueError: recon and x (or mu and logvar) differ in shape, the batch sizes differ, recon_loss is unknown,
            beta is negative, or (bce) recon or x leave [0, 1].
    """
    fn = "vae_loss"
    check_floating_tensor(recon, fn, "recon")
    check_same_shape(recon, x, fn)
    check_floating_tensor(mu, fn, "mu")
    check_floating_tensor(logvar, fn, "logvar")
    if mu.shape != logvar.shape:
        raise ValueError(
            f"{fn}: mu and logvar must have the same shape, got {fmt_shape(mu.shape)} and {fmt_shape(logvar.shape)}"
        )
    if recon.dim() and mu.dim() and recon.shape[0] != mu.shape[0]:
        raise ValueError(f"{fn}: recon and mu must have the same batch size, got {recon.shape[0]} and {mu.shape[0]}")
    if recon_loss not in ("bce", "mse"):
        raise ValueError(f"{fn}: recon_loss must be 'bce' or 'mse', got {recon_loss!r}")
    b = check_nonnegative(beta, fn, "beta")
    if recon_loss == "bce":
        for name, t in (("recon", recon), ("x", x)):
            if bool(((t < 0) | (t > 1) | t.isnan()).any()):
                raise ValueError(f"{fn}: {name} must lie in [0, 1] with recon_loss='bce'")
        reconstruction = _binary_cross_entropy_sum(recon, x)
    else:
        reconstruction = (recon - x).square().sum()
    kl = 0.5 * (mu.square() + (torch.expm1(logvar) - logvar)).sum()
    return reconstruction + b * kl


class _TanhExtractor(nn.Module):
    """Frozen 1x1-convolution layers with tanh (the torch form of ``lossguard.reference.generative.TanhExtractor``):
    ``forward`` returns the list of every layer's features."""

    def __init__(self, parameters, dtype: torch.dtype, device) -> None:
        super().__init__()
        self.depth = len(parameters)
        for k, (w, b) in enumerate(parameters):
            self.register_buffer(f"weight{k}", torch.as_tensor(w, dtype=dtype, device=device))
            self.register_buffer(f"bias{k}", torch.as_tensor(b, dtype=dtype, device=device))

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        out = []
        for k in range(self.depth):
            w, b = getattr(self, f"weight{k}"), getattr(self, f"bias{k}")
            x = torch.tanh(torch.einsum("oc,nc...->no...", w, x) + b.reshape((1, -1) + (1,) * (x.dim() - 2)))
            out.append(x)
        return out


def tanh_extractor_module(parameters, dtype: torch.dtype, device) -> nn.Module:
    """The frozen torch module of a TanhExtractor's ((W, b), ...) float64 arrays, in ``dtype`` on ``device``."""
    return _TanhExtractor(parameters, dtype, device).requires_grad_(False).eval()


def perceptual_loss(
    input: torch.Tensor,
    target: torch.Tensor,
    feature_extractor: Callable[[torch.Tensor], Sequence[torch.Tensor]],
    layers: Sequence[int],
    layer_weights: torch.Tensor | None = None,
) -> torch.Tensor:
    """Perceptual (feature-reconstruction) loss (Johnson, Alahi & Fei-Fei 2016):
    ``sum_l w_l mse(phi_l(input), phi_l(target)) / sum_l w_l`` over the chosen ``layers`` of the features the
    frozen ``feature_extractor`` returns (a list, one tensor per layer); equal weights by default. Gradients flow
    to input and target (and layer_weights) through the extractor.

    Raises:
        ValueError: input and target differ in shape, layers is empty or names a layer the extractor lacks,
            layer_weights is not one non-negative weight per layer with a positive sum.
    """
    fn = "perceptual_loss"
    check_floating_tensor(input, fn, "input")
    check_same_shape(input, target, fn)
    layers = tuple(layers)
    if not layers or not all(isinstance(k, int) for k in layers):
        raise ValueError(f"{fn}: layers must be a non-empty sequence of layer indices, got {layers!r}")
    if layer_weights is not None:
        check_floating_tensor(layer_weights, fn, "layer_weights")
        if layer_weights.shape != (len(layers),):
            raise ValueError(
                f"{fn}: layer_weights must have shape ({len(layers)},), got {fmt_shape(layer_weights.shape)}"
            )
        if bool((layer_weights < 0).any()) or not float(layer_weights.sum()) > 0:
            raise ValueError(f"{fn}: layer_weights must be >= 0 with a positive sum")
    features_in, features_target = feature_extractor(input), feature_extractor(target)
    depth = len(features_in)
    if any(not -depth <= k < depth for k in layers):
        raise ValueError(f"{fn}: layers must index the extractor's {depth} layers, got {layers!r}")
    mses = torch.stack([F.mse_loss(features_in[k], features_target[k]) for k in layers])
    if layer_weights is None:
        return mses.mean()
    w = layer_weights.to(mses.dtype)
    return (w * mses).sum() / w.sum()


def uncertainty_weighted_loss(losses: torch.Tensor, log_vars: torch.Tensor) -> torch.Tensor:
    """Homoscedastic-uncertainty weighting of T task losses (Kendall, Gal & Cipolla 2018):
    ``sum_i exp(-s_i) L_i + s_i`` with ``s = log_vars`` (learned log variances), losses and log_vars ``(T,)``.

    Raises:
        ValueError: losses is not one-dimensional and non-empty, or log_vars differs from it in shape.
    """
    fn = "uncertainty_weighted_loss"
    check_floating_tensor(losses, fn, "losses")
    check_floating_tensor(log_vars, fn, "log_vars")
    if losses.dim() != 1 or losses.numel() == 0:
        raise ValueError(f"{fn}: losses must have shape (T,) with T >= 1, got {fmt_shape(losses.shape)}")
    if log_vars.shape != losses.shape:
        raise ValueError(
            f"{fn}: log_vars must have the shape of losses {fmt_shape(losses.shape)}, got {fmt_shape(log_vars.shape)}"
        )
    return (torch.exp(-log_vars) * losses + log_vars).sum()


OWN: dict[str, Callable] = {
    "gan_discriminator_loss": gan_discriminator_loss,
    "gan_generator_loss": gan_generator_loss,
    "wgan_critic_loss": wgan_critic_loss,
    "wgan_generator_loss": wgan_generator_loss,
    "vae_loss": vae_loss,
    "perceptual_loss": perceptual_loss,
    "uncertainty_weighted_loss": uncertainty_weighted_loss,
}
