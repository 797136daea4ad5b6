"""Deliberately wrong generative and multi-task losses: each family property must catch the one planted for it.

Every function has the canonical signature of the loss it pretends to be and exactly one defect,
named in its docstring (the property that catches it in parentheses).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from lossguard.implementations.own import generative as own


def gan_generator_saturating(fake_logits):
    """The saturating generator loss -BCE(fake, 0) = mean log(1 - D(G(z))) of Goodfellow et al.'s minimax game,
    not the non-saturating BCE(fake, 1) (gan_bce_composition)."""
    return -F.binary_cross_entropy_with_logits(fake_logits, torch.zeros_like(fake_logits))


def gan_discriminator_one_sided_smoothing(real_logits, fake_logits):
    """Real labels silently smoothed to 0.9 (Salimans et al. 2016's one-sided label smoothing), not 1
    (gan_bce_composition)."""
    real = F.binary_cross_entropy_with_logits(real_logits, torch.full_like(real_logits, 0.9))
    return real + F.binary_cross_entropy_with_logits(fake_logits, torch.zeros_like(fake_logits))


def wgan_critic_clamped(real_scores, fake_scores):
    """max(0, mean(fake) - mean(real)): a hinge where the Wasserstein estimate must go negative (wgan_antisymmetry)."""
    return torch.clamp(fake_scores.mean() - real_scores.mean(), min=0.0)


def vae_kl_without_one(recon, x, mu, logvar, beta=1.0, recon_loss="bce"):
    """KL written -0.5 sum(logvar - mu^2 - exp(logvar)), the 1 dropped: 0.5 per latent at mu = logvar = 0 (vae_kl)."""
    mse = recon_loss == "mse"
    reconstruction = (recon - x).square().sum() if mse else own._binary_cross_entropy_sum(recon, x)
    return reconstruction + beta * (-0.5) * (logvar - mu.square() - logvar.exp()).sum()


def uncertainty_half_regulariser(losses, log_vars):
    """sum exp(-s) L + s / 2 (the regression form's 1/2 on the regulariser only): minimiser at log(2 L), not log L
    (uncertainty_minimiser)."""
    return (torch.exp(-log_vars) * losses + 0.5 * log_vars).sum()
