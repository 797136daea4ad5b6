"""Catalog entries of the segmentation losses (Dice, Jaccard, Tversky, their compositions, boundary)."""

from __future__ import annotations

from harness.model import LossSpec

SEGMENTATION: tuple[LossSpec, ...] = ()
