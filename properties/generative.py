"""Family properties of the generative and multi-task losses (GAN, WGAN, VAE, perceptual, uncertainty weighting)."""

from __future__ import annotations
