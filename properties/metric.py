"""Family properties of the metric-learning and ranking losses."""

from __future__ import annotations
