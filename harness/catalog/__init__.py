"""The loss catalog: one LossSpec per row of the canonical contract (docs/LOSSES.md is generated from it)."""

from __future__ import annotations

from harness.catalog.classification import CLASSIFICATION
from harness.catalog.regression import REGRESSION
from harness.model import LossSpec

CATALOG: dict[str, LossSpec] = {spec.name: spec for spec in (*REGRESSION, *CLASSIFICATION)}


def spec(name: str) -> LossSpec:
    """The entry named ``name``; a KeyError names the known losses."""
    try:
        return CATALOG[name]
    except KeyError:
        raise KeyError(f"unknown loss {name!r}; known: {', '.join(CATALOG)}") from None
