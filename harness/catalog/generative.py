"""Catalog entries of the generative and multi-task losses (GAN, WGAN, VAE, perceptual, uncertainty weighting)."""

from __future__ import annotations

from harness.model import LossSpec

GENERATIVE: tuple[LossSpec, ...] = ()
