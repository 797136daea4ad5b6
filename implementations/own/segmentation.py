"""lossguard's own PyTorch implementations of the segmentation losses."""

from __future__ import annotations

from collections.abc import Callable

OWN: dict[str, Callable] = {}
