"""torchvision.ops' losses audited as shipped (implementations/bindings/torchvision.toml), and each finding recorded
against them (implementations/bindings/torchvision.py) confirmed outside lossguard: a float64 NumPy or mpmath
computation shows the library's value or gradient is wrong, or that it accepts an input the contract rejects.

The audit runs once per module (CPU, ci profile, every dtype); CIoU's reference variant alpha_gradient='detached'
is shown to catch an implementation 32 units of roundoff off its gradient, and to pass the right one.
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest
from mpmath import mp, mpf

pytest.importorskip("torchvision", reason="torchvision not installed (optional extra lossguard[audit])")

import torch
import torchvision.ops as ops

from lossguard.catalog import CATALOG
from lossguard.harness.app.bindings import compile_all, library
from lossguard.harness.app.inventory import bind
from lossguard.harness.app.runner import Selection, run, run_one
from lossguard.implementations.own import detection as own

DTYPES = ("float64", "float32", "float16", "bfloat16")
CI = Selection(dtypes=DTYPES, devices=("cpu",), profile="ci")


@pytest.fixture(scope="module")
def audit():
    """(the bindings, every result of torchvision's audit)."""
    bindings = [b for b in library("torchvision").bindings if not b.skip]
    impls, catalog = compile_all(bindings)
    return bindings, run(impls, CI, catalog=catalog)


def test_every_bound_catalog_loss_has_results_and_a_pass(audit):
    bindings, results = audit
    for binding in bindings:
        assert binding.loss in CATALOG, binding.label
        mine = [r for r in results if r.implementation == binding.label]
        assert mine, f"{binding.label} has no result"
        assert any(r.status == "pass" for r in mine), f"{binding.label} passes nothing"


def test_no_failure_error_or_xpass(audit):
    _, results = audit
    bad = [(r.implementation, r.property, r.dtype, r.status, r.message[:300]) for r in results]
    assert [b for b in bad if b[3] in ("fail", "error", "xpass")] == []


def test_recorded_findings_reproduce(audit):
    """Each binding with findings has xfail cells: its confirmed departures are still there."""
    bindings, results = audit
    for binding in bindings:
        if binding.findings:
            statuses = {r.status for r in results if r.implementation == binding.label}
            assert "xfail" in statuses, binding.label


# --- the findings, confirmed independently ----------------------------------------------------------------------


def _mp_focal(z: mpf, y: mpf, gamma: mpf) -> mpf:
    """(1 - p_t)^gamma BCE-with-logits at 60 digits (alpha None): 1 - p_t = p (1 - y) + (1 - p) y."""
    p = 1 / (1 + mp.exp(-z))
    bce = -(y * mp.log(p) + (1 - y) * mp.log(1 - p))
    return (p * (1 - y) + (1 - p) * y) ** gamma * bce


def test_focal_nan_gradient_for_gamma_below_one():
    """z = 40, y = 1, gamma = 0.5: the exact derivative is -1.3e-26 (mpmath, and the closed form
    -(1 - p)^gamma (gamma p softplus(-z) + 1 - p)); torchvision's float64 gradient is NaN."""
    z = torch.tensor([40.0], dtype=torch.float64, requires_grad=True)
    ops.sigmoid_focal_loss(z, torch.tensor([1.0], dtype=torch.float64), alpha=-1, gamma=0.5, reduction="sum").backward()
    assert torch.isnan(z.grad).all()
    with mp.workdps(60):
        exact = mp.diff(lambda v: _mp_focal(v, mpf(1), mpf("0.5")), mpf(40))
        q = 1 / (1 + mp.exp(40))
        closed = -(q ** mpf("0.5")) * (mpf("0.5") * (1 - q) * mp.log(1 + mp.exp(-40)) + q)
    assert mp.isfinite(exact) and abs(exact - closed) < mpf(10) ** -40
    assert math.isclose(float(exact), -1.313e-26, rel_tol=1e-3)


def test_focal_zero_where_one_minus_p_t_rounds_away():
    """z = 80, y = 1, gamma = 2^-126, float32: the exact loss 1.8e-35 is a normal float32 number, torchvision
    returns 0 (1 - p_t formed by subtraction is 0): a relative error of 1."""
    gamma = 2.0**-126
    value = ops.sigmoid_focal_loss(torch.tensor([80.0]), torch.tensor([1.0]), alpha=-1, gamma=gamma, reduction="sum")
    assert value.item() == 0.0
    with mp.workdps(60):
        exact = _mp_focal(mpf(80), mpf(1), mpf(gamma))
    assert float(exact) > torch.finfo(torch.float32).tiny
    assert math.isclose(float(exact), 1.8048513878454153e-35, rel_tol=1e-6)


def test_focal_accepts_a_negative_gamma():
    """gamma = -1 is computed, not rejected; with it a sure, right prediction (z = 20, y = 1) has loss 1, not 0
    (mpmath: (1 - p_t)^-1 BCE -> 1 as z -> inf; at gamma = 2 the loss there is 4e-27)."""
    z, y = torch.tensor([20.0], dtype=torch.float64), torch.tensor([1.0], dtype=torch.float64)
    value = ops.sigmoid_focal_loss(z, y, alpha=-1, gamma=-1.0, reduction="sum").item()
    with mp.workdps(60):
        exact = _mp_focal(mpf(20), mpf(1), mpf(-1))
        assert _mp_focal(mpf(20), mpf(1), mpf(2)) < mpf(10) ** -26
    assert abs(exact - 1) < mpf(10) ** -8
    assert math.isclose(value, float(exact), rel_tol=1e-6)  # 1 - p_t = 2e-9 formed by subtraction: 4e-8 off


_UNIT = [[0.0, 0.0, 1.0, 1.0]]


@pytest.mark.parametrize("loss", [ops.generalized_box_iou_loss, ops.distance_box_iou_loss, ops.complete_box_iou_loss])
def test_box_losses_accept_a_negative_eps(loss):
    """eps = -1 is computed, not rejected (identical unit boxes: U + eps = 0)."""
    boxes = torch.tensor(_UNIT, dtype=torch.float64)
    loss(boxes, boxes.clone(), eps=-1.0, reduction="none")


@pytest.mark.parametrize("loss", [ops.generalized_box_iou_loss, ops.distance_box_iou_loss])
@pytest.mark.parametrize("inverted", [[[0.0, 0.0, -1.0, 1.0]], [[0.0, 0.0, 1.0, -1.0]]])
def test_box_losses_accept_inverted_boxes(loss, inverted):
    """A box with x2 < x1 (or y2 < y1) is computed, not rejected: its area (x2 - x1)(y2 - y1) is negative."""
    box = np.array(inverted)
    assert (box[0, 2] - box[0, 0]) * (box[0, 3] - box[0, 1]) < 0
    value = loss(torch.tensor(inverted, dtype=torch.float64), torch.tensor(_UNIT, dtype=torch.float64))
    assert torch.isfinite(value).all()


def _ciou_numpy(b1: np.ndarray, b2: np.ndarray, eps_iou: float, eps_alpha: float) -> float:
    """CIoU of one pair in float64 (Zheng et al. 2020); ``eps_iou`` in IoU and rho^2 / c^2, ``eps_alpha`` the one
    added to alpha's denominator 1 - IoU + v + eps."""
    (x1, y1, x2, y2), (X1, Y1, X2, Y2) = b1, b2
    inter = max(0.0, min(x2, X2) - max(x1, X1)) * max(0.0, min(y2, Y2) - max(y1, Y1))
    union = (x2 - x1) * (y2 - y1) + (X2 - X1) * (Y2 - Y1) - inter
    rho2 = ((x1 + x2) / 2 - (X1 + X2) / 2) ** 2 + ((y1 + y2) / 2 - (Y1 + Y2) / 2) ** 2
    c2 = (max(x2, X2) - min(x1, X1)) ** 2 + (max(y2, Y2) - min(y1, Y1)) ** 2
    v = 4 / np.pi**2 * (np.arctan2(X2 - X1, Y2 - Y1) - np.arctan2(x2 - x1, y2 - y1)) ** 2
    iou = inter / (union + eps_iou)
    return 1 - iou + rho2 / (c2 + eps_iou) + v / (1 - iou + v + eps_alpha) * v


def test_ciou_ignores_eps_in_iou_and_diagonal():
    """eps = 0.5 on a small overlapping pair: torchvision's CIoU equals the float64 CIoU with 1e-7 in IoU and
    rho^2 / c^2 and 0.5 only in alpha's denominator, and differs from the CIoU with eps = 0.5 throughout by 0.07."""
    b1, b2 = np.array([0.0, 0.0, 0.25, 0.25]), np.array([0.0625, 0.0625, 0.3125, 0.375])
    value = ops.complete_box_iou_loss(torch.tensor(b1[None]), torch.tensor(b2[None]), eps=0.5, reduction="none").item()
    assert math.isclose(value, _ciou_numpy(b1, b2, 1e-7, 0.5), rel_tol=1e-12)
    assert abs(value - _ciou_numpy(b1, b2, 0.5, 0.5)) > 0.05


# --- CIoU's variant alpha_gradient='detached' catches a near-tolerance gradient error --------------------------


def ciou_detached(boxes1, boxes2, eps=1e-7, reduction="mean"):
    """CIoU with alpha held constant in the gradient (the variant), from lossguard's own pieces."""
    g = own._Geometry(boxes1, boxes2, eps)
    d = own._angle(g.w2, g.h2) - own._angle(g.w1, g.h1)
    v = (4 / math.pi**2) * (d * d)
    alpha = (v / (1 - g.iou + v + g.eps)).detach()
    loss = own._diou_loss(g) + alpha * v
    return loss.mean() if reduction == "mean" else loss.sum() if reduction == "sum" else loss


def ciou_detached_gradient_biased(boxes1, boxes2, eps=1e-7, reduction="mean"):
    """ciou_detached whose gradient in boxes1 is off by 32 u of the variant's gradient scale (the value exact)."""
    value = ciou_detached(boxes1, boxes2, eps, reduction)
    arrays = {"boxes1": boxes1.detach().double().numpy(), "boxes2": boxes2.detach().double().numpy()}
    grads = CATALOG["complete_box_iou_loss"].reference.grad(
        **arrays, eps=eps, reduction=reduction, alpha_gradient="detached"
    )
    scale = torch.as_tensor(grads["boxes1"].scale, dtype=boxes1.dtype)
    tilt = (boxes1 * (32 * torch.finfo(boxes1.dtype).eps / 2 * scale)).sum()
    return value + (tilt - tilt.detach())


def _judged(fn, variant: str) -> str:
    impl = dataclasses.replace(
        bind("complete_box_iou_loss", fn, f"tests.{fn.__name__}", "user"), fixed={"alpha_gradient": variant}
    )
    result = run_one(impl, "gradient", "cpu", "float32", Selection(devices=("cpu",), profile="ci"))
    return result.status


def test_detached_alpha_variant_catches_a_near_tolerance_bug():
    assert _judged(ciou_detached, "detached") == "pass"
    assert _judged(ciou_detached_gradient_biased, "detached") == "fail"
    assert _judged(ciou_detached, "through") == "fail"  # the canonical gradient is another one
