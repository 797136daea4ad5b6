"""The loss catalog: one LossSpec per row of the canonical contract (docs/LOSSES.md is generated from it)."""

from __future__ import annotations

from lossguard.catalog.classification import CLASSIFICATION
from lossguard.catalog.detection import DETECTION
from lossguard.catalog.generative import GENERATIVE
from lossguard.catalog.metric import METRIC
from lossguard.catalog.regression import REGRESSION
from lossguard.catalog.segmentation import SEGMENTATION
from lossguard.catalog.sequence import SEQUENCE
from lossguard.harness.kernel.model import LossSpec

FAMILIES = (REGRESSION, CLASSIFICATION, METRIC, SEGMENTATION, DETECTION, GENERATIVE, SEQUENCE)
CATALOG: dict[str, LossSpec] = {spec.name: spec for family in FAMILIES for spec in family}


def spec(name: str) -> LossSpec:
    """The entry named ``name``; a KeyError names the known losses."""
    try:
        return CATALOG[name]
    except KeyError:
        raise KeyError(f"unknown loss {name!r}; known: {', '.join(CATALOG)}") from None
