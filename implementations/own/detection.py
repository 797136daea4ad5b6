"""lossguard's own PyTorch implementations of the box-regression losses (IoU, GIoU, DIoU, CIoU)."""

from __future__ import annotations

from collections.abc import Callable

OWN: dict[str, Callable] = {}
