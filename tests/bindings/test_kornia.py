"""kornia.losses audited as shipped (implementations/bindings/kornia.toml and kornia.py), and each finding recorded
against it confirmed outside lossguard: a float64 or mpmath computation shows that kornia accepts an input the
contract rejects, and what it computes with it.

The audit runs once per module (CPU, ci profile): the catalogued losses in every dtype, the losses outside the
catalog (reference-free checks) in float64 and float32, which keeps the module within a few minutes on one core.
The reference variants kornia follows (softmax focal mean_over='samples and classes', sigmoid focal
soft_targets='expected', multiclass Dice smoothing='denominator' with pooling='classes' or 'present') are shown to
catch an implementation 32 units of roundoff off, and to pass the right one written here independently.
"""

from __future__ import annotations

import dataclasses
import inspect
import math

import numpy as np
import pytest
from mpmath import mp, mpf

pytest.importorskip("kornia", reason="kornia not installed (optional extra lossguard[audit])")

import kornia.losses as K
import torch

from lossguard.catalog import CATALOG
from lossguard.harness.app.bindings import compile_all, library
from lossguard.harness.app.inventory import bind
from lossguard.harness.app.jobs import unbound_exports
from lossguard.harness.app.runner import Selection, run, run_one
from lossguard.implementations.own import classification as own
from lossguard.implementations.own import segmentation as own_segmentation

CATALOGUED = Selection(dtypes=("float64", "float32", "float16", "bfloat16"), devices=("cpu",), profile="ci")
FREE = Selection(dtypes=("float64", "float32"), devices=("cpu",), profile="ci")
ONE = Selection(devices=("cpu",), profile="ci")


@pytest.fixture(scope="module")
def audit():
    """(the audited bindings, every result of kornia's audit)."""
    bindings = [b for b in library("kornia").bindings if not b.skip]
    catalogued = [b for b in bindings if b.loss is not None]
    free = [b for b in bindings if b.loss is None]
    results = []
    for chosen, selection in ((catalogued, CATALOGUED), (free, FREE)):
        impls, catalog = compile_all(chosen)
        results += run(impls, selection, catalog=catalog)
    return bindings, results


def test_every_export_has_a_binding():
    shipped = library("kornia")
    assert unbound_exports(shipped) == []
    assert all(b.loss or b.like or b.skip for b in shipped.bindings)  # catalogued, reference-free, or why not


def test_every_audited_loss_has_results_and_a_pass(audit):
    bindings, results = audit
    assert {b.loss for b in bindings if b.loss} == {"softmax_focal_loss", "sigmoid_focal_loss", "multiclass_dice_loss"}
    for binding in bindings:
        mine = [r for r in results if r.implementation == binding.label]
        assert mine, f"{binding.label} has no result"
        assert any(r.status == "pass" for r in mine), f"{binding.label} passes nothing"


def test_no_failure_error_or_xpass(audit):
    _, results = audit
    bad = [(r.implementation, r.property, r.dtype, r.status, r.message[:300]) for r in results]
    assert [b for b in bad if b[3] in ("fail", "error", "xpass")] == []


def test_recorded_findings_reproduce(audit):
    bindings, results = audit
    for binding in bindings:
        if binding.findings:
            statuses = {r.status for r in results if r.implementation == binding.label}
            assert "xfail" in statuses, binding.label


# --- the findings, confirmed independently ----------------------------------------------------------------------


def _mp_binary_focal(z: mpf, y: mpf, alpha: mpf, gamma: mpf) -> mpf:
    """kornia's documented binary focal loss at 60 digits: y alpha (1 - p)^gamma (-log p) + (1 - y)(1 - alpha)
    p^gamma (-log(1 - p)), p = sigmoid(z)."""
    p = 1 / (1 + mp.exp(-z))
    return -y * alpha * (1 - p) ** gamma * mp.log(p) - (1 - y) * (1 - alpha) * p**gamma * mp.log(1 - p)


def test_softmax_focal_accepts_a_negative_gamma():
    """gamma = -1 is computed, not rejected: a sure, right prediction (logits [20, 0], class 0) has loss 1, not 0
    (mpmath: -(1 - p)^-1 log p -> 1 as p -> 1)."""
    z, target = torch.tensor([[20.0, 0.0]], dtype=torch.float64), torch.tensor([0])
    value = K.focal_loss(z, target, alpha=None, gamma=-1.0, reduction="sum").item()
    with mp.workdps(60):
        p = 1 / (1 + mp.exp(-20))
        exact = -((1 - p) ** -1) * mp.log(p)
    assert abs(exact - 1) < mpf(10) ** -8
    assert math.isclose(value, float(exact), rel_tol=1e-6)


def test_binary_focal_accepts_alpha_above_one():
    """alpha = 1.5 is computed, not rejected: the negative term is weighted by 1 - alpha = -0.5, so the loss of a
    wrong prediction (z = 2, y = 0) is negative (mpmath: -0.5 p^2 (-log(1 - p)) = -0.824)."""
    value = K.binary_focal_loss_with_logits(
        torch.tensor([[2.0]], dtype=torch.float64), torch.tensor([[0.0]], dtype=torch.float64), alpha=1.5, gamma=2.0
    ).item()
    with mp.workdps(60):
        exact = _mp_binary_focal(mpf(2), mpf(0), mpf("1.5"), mpf(2))
    assert exact < 0
    assert math.isclose(value, float(exact), rel_tol=1e-12)


def test_binary_focal_accepts_a_negative_gamma():
    """gamma = -1 is computed, not rejected: a sure, right prediction (z = 20, y = 1) has loss alpha = 0.25, not 0
    (mpmath: alpha (1 - p)^-1 (-log p) -> alpha)."""
    value = K.binary_focal_loss_with_logits(
        torch.tensor([[20.0]], dtype=torch.float64), torch.tensor([[1.0]], dtype=torch.float64), alpha=0.25, gamma=-1.0
    ).item()
    with mp.workdps(60):
        exact = _mp_binary_focal(mpf(20), mpf(1), mpf("0.25"), mpf(-1))
    assert abs(exact - mpf("0.25")) < mpf(10) ** -8
    assert math.isclose(value, float(exact), rel_tol=1e-12)


def test_dice_accepts_a_negative_eps():
    """eps = -1 is computed, not rejected: two classes at one pixel, logits 0 (p = 1/2 each), class 0: the pooled
    sums are 2 TP = 1, sum p + sum y = 2, so 1 - 2 TP / (2 + eps) is 0 (exactly) instead of the error the contract
    asks for; 'macro' averages class 0's 1 - 1 / (1.5 - 1) = -1: a negative loss."""
    z, target = torch.zeros((1, 2, 1, 1), dtype=torch.float64), torch.zeros((1, 1, 1), dtype=torch.int64)
    assert K.dice_loss(z, target, eps=-1.0).item() == 0.0
    assert K.dice_loss(z, target, average="macro", eps=-1.0).item() == -1.0


# --- the variants kornia follows catch near-tolerance bugs -------------------------------------------------------


def _reduced(loss: torch.Tensor, reduction: str, normaliser: float) -> torch.Tensor:
    return loss.sum() / normaliser if reduction == "mean" else loss.sum() if reduction == "sum" else loss


def softmax_focal_classes_mean(input, target, alpha=None, gamma=2.0, ignore_index=-100, reduction="mean"):
    """Softmax focal loss whose 'mean' divides by C times every element (mean_over='samples and classes')."""
    loss = own.softmax_focal_loss(input, target, alpha=alpha, gamma=gamma, ignore_index=ignore_index, reduction="none")
    return _reduced(loss, reduction, input.shape[1] * target.numel())


def sigmoid_focal_expected(input, target, alpha=0.25, gamma=2.0, reduction="mean"):
    """y FL(z, 1) + (1 - y) FL(z, 0) (soft_targets='expected'), from the canonical loss at the two hard labels."""
    one, zero = (
        own.sigmoid_focal_loss(input, torch.full_like(target, label), alpha=alpha, gamma=gamma, reduction="none")
        for label in (1.0, 0.0)
    )
    return _reduced(target * one + (1 - target) * zero, reduction, target.numel())


def multiclass_dice_pooled(input, target, smooth=1.0, ignore_index=None, batch=False, reduction="mean", present=False):
    """1 - 2 TP / (sum p + sum y + smooth) of softmax(input) against the one-hot target, ignored pixels left out:
    one Dice per sample over every class (pooling='classes'), or with ``present`` per class and averaged over the
    classes present in the sample's target, 1 for a sample without any (pooling='present')."""
    valid = torch.ones_like(target, dtype=torch.bool) if ignore_index is None else target != ignore_index
    keep = valid.unsqueeze(1).to(input.dtype)
    p = torch.softmax(input, dim=1) * keep
    y = torch.nn.functional.one_hot(torch.where(valid, target, 0), input.shape[1]).movedim(-1, 1).to(input.dtype)
    y = y * keep
    spatial = ((0,) if batch else ()) + tuple(range(2, input.dim()))
    dims = spatial if present else (1, *spatial)

    def total(v, axes):  # torch sums every axis for dim=(): no axis, no sum
        return v.sum(axes, keepdim=True) if axes else v

    loss = 1 - 2 * total(p * y, dims) / (total(p + y, dims) + smooth)
    if present:
        classes = (total(y, spatial) > 0).to(input.dtype)
        count = classes.sum(1, keepdim=True)
        loss = torch.where(count > 0, (loss * classes).sum(1, keepdim=True) / count.clamp(min=1), 1.0)
    loss = loss.reshape(loss.shape[:1])
    loss = loss[0] if batch else loss
    return loss.sum() if reduction == "sum" else loss.mean() if reduction == "mean" else loss


def multiclass_dice_present(input, target, smooth=1.0, ignore_index=None, batch=False, reduction="mean"):
    """``multiclass_dice_pooled`` per class, averaged over the present classes (pooling='present')."""
    return multiclass_dice_pooled(input, target, smooth, ignore_index, batch, reduction, present=True)


def _value_biased(fn, loss: str, variant: dict):
    """``fn`` plus 32 u of the variant reference's error scale of the call (its gradient untouched)."""

    def biased(input, target, **params):
        value = fn(input, target, **params)
        arrays = {"input": input.detach().double().numpy(), "target": target.detach().numpy()}
        arrays["target"] = arrays["target"].astype(np.float64) if target.is_floating_point() else arrays["target"]
        kept = {k: (v.detach().double().numpy() if isinstance(v, torch.Tensor) else v) for k, v in params.items()}
        scale = CATALOG[loss].reference.error_scale(**arrays, **kept, **variant)
        return value + torch.as_tensor(32 * torch.finfo(value.dtype).eps / 2 * scale, dtype=value.dtype)

    biased.__signature__ = inspect.signature(fn)
    biased.__name__ = f"{fn.__name__}_biased"
    return biased


def _judged(loss: str, fn, variant: dict, prop: str = "agreement", dtype: str = "float32") -> str:
    impl = dataclasses.replace(bind(loss, fn, f"tests.{fn.__name__}", "user"), fixed=variant)
    return run_one(impl, prop, "cpu", dtype, ONE).status


@pytest.mark.parametrize(
    ("loss", "right", "canonical", "variant"),
    [
        (
            "softmax_focal_loss",
            softmax_focal_classes_mean,
            own.softmax_focal_loss,
            {"mean_over": "samples and classes"},
        ),
        ("sigmoid_focal_loss", sigmoid_focal_expected, own.sigmoid_focal_loss, {"soft_targets": "expected"}),
        (
            "multiclass_dice_loss",
            multiclass_dice_pooled,
            own_segmentation.multiclass_dice_loss,
            {"smoothing": "denominator", "pooling": "classes"},
        ),
        (
            "multiclass_dice_loss",
            multiclass_dice_present,
            own_segmentation.multiclass_dice_loss,
            {"smoothing": "denominator", "pooling": "present"},
        ),
    ],
)
def test_variant_catches_a_near_tolerance_bug(loss, right, canonical, variant):
    assert _judged(loss, right, variant) == "pass"
    assert _judged(loss, right, variant, "gradient") == "pass"
    assert _judged(loss, _value_biased(right, loss, variant), variant) == "fail"
    assert _judged(loss, canonical, variant) == "fail"  # the canonical convention is another one
