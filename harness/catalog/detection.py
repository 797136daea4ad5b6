"""Catalog entries of the box-regression losses (IoU, GIoU, DIoU, CIoU)."""

from __future__ import annotations

from harness.model import LossSpec

DETECTION: tuple[LossSpec, ...] = ()
