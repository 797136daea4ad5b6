"""lossguard's own PyTorch implementations of the metric-learning and ranking losses."""

from __future__ import annotations

from collections.abc import Callable

OWN: dict[str, Callable] = {}
