"""lossguard's own PyTorch implementations of the generative and multi-task losses."""

from __future__ import annotations

from collections.abc import Callable

OWN: dict[str, Callable] = {}
