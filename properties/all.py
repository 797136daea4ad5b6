"""Importing this module registers every property: the generic ones and each family's."""

from lossguard.properties import (
    detection,
    generative,
    generic,
    identities,
    metric,
    reference_free,
    segmentation,
    sequence,
)

FAMILIES = (generic, identities, metric, segmentation, detection, generative, sequence, reference_free)
