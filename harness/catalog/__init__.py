"""The loss catalog: one LossSpec per row of the canonical contract (docs/LOSSES.md is generated from it)."""

from __future__ import annotations

from harness.catalog.classification import CLASSIFICATION
from harness.catalog.detection import DETECTION
from harness.catalog.generative import GENERATIVE
from harness.catalog.metric import METRIC
from harness.catalog.regression import REGRESSION
from harness.catalog.segmentation import SEGMENTATION
from harness.catalog.sequence import SEQUENCE
from harness.model import LossSpec

FAMILIES = (REGRESSION, CLASSIFICATION, METRIC, SEGMENTATION, DETECTION, GENERATIVE, SEQUENCE)
CATALOG: dict[str, LossSpec] = {spec.name: spec for family in FAMILIES for spec in family}


def spec(name: str) -> LossSpec:
    """The entry named ``name``; a KeyError names the known losses."""
    try:
        return CATALOG[name]
    except KeyError:
        raise KeyError(f"unknown loss {name!r}; known: {', '.join(CATALOG)}") from None
