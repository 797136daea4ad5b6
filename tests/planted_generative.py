"""Deliberately wrong generative and multi-task losses: each family property must catch the one planted for it.

Every function has the canonical signature of the loss it pretends to be and exactly one defect,
named in its docstring (the property that catches it in parentheses).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from lossguard.implementations.own import generative as own

from planted import _u, _value_bias


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


def vae_not_exactly_zero(recon, x, mu, logvar, beta=1.0, recon_loss="bce"):
    """Adds 24 smallest normals where the loss is exactly 0 (recon = x with mse, mu = logvar = 0): not exactly 0
    there (vae_kl, zero_at_prior)."""
    loss = own.vae_loss(recon, x, mu, logvar, beta=beta, recon_loss=recon_loss)
    return torch.where(loss == 0, loss + 24 * torch.finfo(loss.dtype).tiny, loss)


def uncertainty_minimum_biased(losses, log_vars):
    """Plus 32 u times its error scale, sum(|exp(-s) L| + |s|) + (T - 1) sum |exp(-s) L + s| (the terms and the
    summation bound) (uncertainty_minimiser, minimum)."""
    weighted = torch.exp(-log_vars) * losses
    terms = weighted + log_vars
    scale = (weighted.abs() + log_vars.abs()).sum() + (terms.numel() - 1) * terms.abs().sum()
    return terms.sum() + 32 * torch.finfo(terms.dtype).eps / 2 * scale.detach()


class _GradientOffset(torch.autograd.Function):
    """Identity in s; backward adds 32 u (1 + exp(-s) L): 32 units of roundoff of the scale of 1 - exp(-s) L."""

    @staticmethod
    def forward(ctx, s, losses):
        ctx.save_for_backward(s, losses)
        return s.view_as(s)

    @staticmethod
    def backward(ctx, grad):
        s, losses = ctx.saved_tensors
        return grad + 32 * torch.finfo(s.dtype).eps / 2 * (1 + torch.exp(-s) * losses), None


def uncertainty_gradient_offset(losses, log_vars):
    """Right value; d loss / d s off by 32 u (1 + exp(-s) L) (uncertainty_minimiser, gradient)."""
    return own.uncertainty_weighted_loss(losses, _GradientOffset.apply(log_vars, losses.detach()))


def uncertainty_flat_above_minimiser(losses, log_vars):
    """Each task's term is flat, 1 + log L_i, for s_i > log L_i: right at the minimiser, but moving s_i up does
    not raise the loss (uncertainty_minimiser, larger_nearby)."""
    term = torch.exp(-log_vars) * losses + log_vars
    floor = 1 + torch.log(losses)
    return torch.where(log_vars > torch.log(losses), floor.detach() + 0 * log_vars, term).sum()


def vae_kl_term_biased(recon, x, mu, logvar, beta=1.0, recon_loss="bce"):
    """The loss plus 64 u of its scale wherever the KL term is present (mu or logvar non-zero): the isolated
    beta KL off by about 32 units of roundoff of the two calls' summed scale that the property judges, the
    prior's loss untouched (vae_kl, kl_term)."""
    call = {"recon": recon, "x": x, "mu": mu, "logvar": logvar, "beta": beta, "recon_loss": recon_loss}
    loss = own.vae_loss(**call)
    present = bool(torch.any(mu != 0) or torch.any(logvar != 0))
    return _value_bias("vae_loss", loss, 64, **call) if present else loss


def wgan_critic_offset(real_scores, fake_scores):
    """mean(fake) - mean(real) + 32 u (sum |fake| + sum |real|): an even offset of 32 units of roundoff of the
    terms, so swapping real and fake no longer negates the loss (wgan_antisymmetry, antisymmetry)."""
    offset = 32 * _u(fake_scores) * (fake_scores.abs().sum() + real_scores.abs().sum())
    return fake_scores.mean() - real_scores.mean() + offset


def wgan_critic_roles_swapped(real_scores, fake_scores):
    """mean(real) - mean(fake): odd, but the critic's sign convention reversed, so it is positive wherever the
    Wasserstein estimate is negative (wgan_antisymmetry, sign)."""
    return real_scores.mean() - fake_scores.mean()
