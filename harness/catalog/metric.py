"""Catalog entries of the metric-learning and ranking losses."""

from __future__ import annotations

from harness.model import LossSpec

METRIC: tuple[LossSpec, ...] = ()
