"""lossguard's own PyTorch implementations of the catalog rows torch lacks, by canonical name.

Every family module exports its ``OWN`` table (canonical name -> callable); this package merges them.
"""

from collections.abc import Callable

from lossguard.implementations.own import (
    classification,
    detection,
    generative,
    metric,
    regression,
    segmentation,
    sequence,
)

FAMILIES = (regression, classification, metric, segmentation, detection, generative, sequence)

OWN: dict[str, Callable] = {name: fn for family in FAMILIES for name, fn in family.OWN.items()}
