"""Segmentation family: every family property catches its planted bug, and every tagged property passes
on lossguard's own implementations in float64 and float32 on the CPU (no torch built-in is bound)."""

from __future__ import annotations

import numpy as np
import planted_segmentation as planted
import pytest
from judging import assert_catches

from lossguard.implementations.own.segmentation import OWN
from lossguard.reference import segmentation as R

# property, loss, wrong implementation (one planted defect), dtype
CASES = [
    ("overlap_range", "dice_loss", planted.dice_smooth_half_denominator, "float64"),
    ("overlap_symmetry", "dice_loss", planted.dice_squared_prediction, "float64"),
    ("zero_at_perfect", "dice_loss", planted.dice_without_smooth_in_numerator, "float32"),
    ("empty_masks_finite", "dice_loss", planted.dice_without_smooth, "float64"),
    ("empty_masks_finite", "dice_loss", planted.dice_biased, "float64"),
    ("empty_masks_finite", "dice_loss", planted.dice_sqrt_of_false_positives, "float64"),
    ("empty_masks_finite", "dice_loss", planted.dice_gradient_biased, "float64"),
    ("batch_of_one", "dice_loss", planted.dice_batch_replaces_spatial, "float64"),
    ("tversky_identities", "tversky_loss", planted.tversky_biased_as_dice, "float64"),
    ("tversky_identities", "tversky_loss", planted.tversky_biased_as_jaccard, "float64"),
    ("composite_sum", "bce_dice_loss", planted.bce_dice_summed_bce, "float64"),
    ("composite_sum", "bce_dice_loss", planted.bce_dice_combined_biased, "float64"),
]
# the sub-check a planted bug proves, for a property with several (tests/test_properties_catch_bugs.py's meta-test)
SUB_CHECKS = {
    planted.dice_without_smooth_in_numerator: "at_perfect",
    planted.tversky_biased_as_dice: "dice",
    planted.tversky_biased_as_jaccard: "jaccard",
    planted.dice_without_smooth: "value",
    planted.dice_biased: "value",
    planted.dice_sqrt_of_false_positives: "gradient",
    planted.dice_gradient_biased: "gradient",
    planted.bce_dice_summed_bce: "parts",
    planted.bce_dice_combined_biased: "sum",
}


@pytest.mark.parametrize(("prop", "loss", "wrong", "dtype"), CASES, ids=[f"{c[0]}-{c[2].__name__}" for c in CASES])
def test_family_property_catches_its_planted_bug(prop, loss, wrong, dtype):
    assert_catches(prop, loss, wrong, OWN[loss], dtype, check=SUB_CHECKS.get(wrong))


def test_signed_distance_map_examples():
    """Outside +distance to the object, inside -distance to the background; empty and full masks give 0."""
    mask = np.zeros((1, 3, 1, 5))
    mask[0, 0, 0, 1:3] = 1.0
    mask[0, 2] = 1.0
    d = R.signed_distance_map(mask)
    assert d[0, 0, 0].tolist() == [1.0, -1.0, -1.0, 1.0, 2.0]
    assert not d[0, 1].any() and not d[0, 2].any()
