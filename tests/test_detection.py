"""Detection family: every family property catches its planted bug, and every tagged property passes on
lossguard's own implementations in float64 and float32 on the CPU (no torch built-in is bound: torch has no
box losses, and torchvision is not a dependency)."""

from __future__ import annotations

import numpy as np
import planted_detection as planted
import pytest
import torch
from judging import assert_catches

from lossguard.implementations.own import detection as own_detection
from lossguard.implementations.own.detection import OWN
from lossguard.reference import detection as R

# property, loss, wrong implementation (one planted defect), dtype
CASES = [
    ("box_loss_range", "iou_loss", planted.iou_loss_biased, "float64"),
    ("box_loss_range", "generalized_box_iou_loss", planted.giou_penalty_short, "float64"),
    ("identical_boxes", "iou_loss", planted.iou_smoothed_numerator, "float64"),
    ("box_translation_invariance", "generalized_box_iou_loss", planted.giou_enclosing_from_origin, "float64"),
    ("box_scale_invariance", "iou_loss", planted.iou_plus_one_pixel, "float64"),
    ("zero_area_boxes", "complete_box_iou_loss", planted.ciou_aspect_by_division, "float64"),
    ("zero_area_boxes", "iou_loss", planted.iou_flat_rows_biased, "float64"),
    ("zero_area_boxes", "complete_box_iou_loss", planted.ciou_aspect_masked_division, "float64"),
]
# the sub-check a planted bug proves, for a property with several (tests/test_properties_catch_bugs.py's meta-test)
SUB_CHECKS = {
    planted.iou_loss_biased: "range",
    planted.giou_penalty_short: "at_least",
    planted.ciou_aspect_by_division: "value",
    planted.iou_flat_rows_biased: "value",
    planted.ciou_aspect_masked_division: "finite_gradient",
}


@pytest.mark.parametrize(("prop", "loss", "wrong", "dtype"), CASES, ids=[f"{c[0]}-{c[2].__name__}" for c in CASES])
def test_family_property_catches_its_planted_bug(prop, loss, wrong, dtype):
    assert_catches(prop, loss, wrong, OWN[loss], dtype, check=SUB_CHECKS.get(wrong))


def test_closed_forms_of_simple_pairs():
    """Hand-computed values: two unit squares overlapping by half, a disjoint pair, identical and point boxes."""
    unit = np.array([[0.0, 0.0, 1.0, 1.0]])
    half = np.array([[0.5, 0.0, 1.5, 1.0]])  # I = 1/2, U = 3/2, C = 3/2 x 1, rho = 1/2, c^2 = 9/4 + 1
    eps = 1e-300  # negligible: the forms below are the eps-free ones
    assert R.iou_loss(unit, half, eps=eps) == pytest.approx(1 - 1 / 3)
    assert R.generalized_box_iou_loss(unit, half, eps=eps) == pytest.approx(1 - 1 / 3)  # C = U
    assert R.distance_box_iou_loss(unit, half, eps=eps) == pytest.approx(1 - 1 / 3 + 0.25 / 3.25)
    assert R.complete_box_iou_loss(unit, half, eps=eps) == pytest.approx(1 - 1 / 3 + 0.25 / 3.25)  # same aspect
    far = np.array([[2.0, 0.0, 3.0, 1.0]])  # I = 0, U = 2, C = 3: GIoU = 1 + 1/3
    assert R.generalized_box_iou_loss(unit, far, eps=eps) == pytest.approx(1 + 1 / 3)
    for name in OWN:
        reference = getattr(R, name)
        assert reference(unit, unit, eps=1e-7) == pytest.approx(1e-7 / (1 + 1e-7), rel=1e-12)
        point = np.array([[2.0, 3.0, 2.0, 3.0]])
        assert reference(point, point, eps=1e-7) == 1.0  # the zero-area convention: 1 - 0 / eps
        own = OWN[name](torch.tensor(point), torch.tensor(point), eps=1e-7)
        assert own.item() == 1.0


def test_ciou_alpha_is_differentiated():
    """The contract differentiates alpha: the CIoU gradient differs from the one with alpha held constant."""
    b1 = torch.tensor([[0.0, 0.0, 2.0, 1.0]], dtype=torch.float64, requires_grad=True)
    b2 = torch.tensor([[0.5, 0.0, 1.5, 3.0]], dtype=torch.float64)
    OWN["complete_box_iou_loss"](b1, b2).backward()
    g = R.complete_box_iou_loss.grad(b1.detach().numpy(), b2.numpy())["boxes1"].value
    np.testing.assert_allclose(b1.grad.numpy(), g, rtol=1e-12)
    held = b1.detach().clone().requires_grad_(True)
    geometry = own_detection._Geometry(held, b2, 1e-7)
    v = (4 / np.pi**2) * (
        own_detection._angle(geometry.w2, geometry.h2) - own_detection._angle(geometry.w1, geometry.h1)
    ) ** 2
    alpha = (v / (1 - geometry.iou + v + 1e-7)).detach()  # torchvision's torch.no_grad()
    (own_detection._diou_loss(geometry) + alpha * v).sum().backward()
    assert np.max(np.abs(held.grad.numpy() - g)) > 1e-3
