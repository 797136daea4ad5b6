"""Family properties of the box-regression losses (IoU, GIoU, DIoU, CIoU)."""

from __future__ import annotations
