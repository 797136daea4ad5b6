"""Family properties of the segmentation losses (Dice, Jaccard, Tversky, their compositions, boundary)."""

from __future__ import annotations
