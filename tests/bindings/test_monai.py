"""MONAI's losses as shipped (implementations/bindings/monai.toml and monai.py), audited on the CPU in the ci profile.

The audit runs once per module; each recorded finding is then confirmed independently, by a float64 NumPy
computation beside MONAI's own output; each reference variant MONAI follows is shown to judge: MONAI passes it,
MONAI with a planted bug of 32 u of the judged scale fails it.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

pytest.importorskip("monai", reason="monai not installed (optional extra lossguard[audit])")

from audit_checks import audit, biased, binding, check_audit, judged
from monai import losses

from lossguard.harness.app.bindings import library

DTYPES = ("float64", "float32")  # float16 and bfloat16 as well when time allows: ~4 minutes a file
BINDINGS = library("monai").bindings


@pytest.fixture(scope="module")
def results():
    return audit("monai", DTYPES)


def test_the_audit_passes_or_reproduces_its_findings(results):
    check_audit(results, BINDINGS)


def test_every_export_is_bound_or_skipped_with_a_reason(results):
    skipped = {r.implementation: r.message for r in results if r.status == "skip" and r.property == "(binding)"}
    skipped |= {b.label: b.skip for b in BINDINGS if b.skip}
    assert all(len(reason) > 20 for reason in skipped.values()), skipped
    assert not [r for r in results if "without a binding" in r.message]


# --- the findings, confirmed without lossguard -----------------------------------------------------------------


def _sigmoid(z: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-z))


@pytest.mark.parametrize("cls", [losses.DiceLoss, losses.MaskedDiceLoss, losses.TverskyLoss])
def test_overlap_losses_take_a_probability_of_1_5_and_a_negative_smooth(cls):
    """sigmoid=False, p = 1.5 against y = 1: MONAI returns NumPy's 1 - (2 p y + s) / (p + y + s) (Dice; Tversky
    (alpha = beta = 1/2) the same), a value below 0, instead of raising; smooth -1 gives a value too."""
    p, y = 1.5, 1.0
    s = 2e-5 if cls is losses.TverskyLoss else 1e-5  # Tversky(1/2, 1/2, s) is Dice(2 s)
    arrays = (torch.tensor([[[p]]], dtype=torch.float64), torch.tensor([[[y]]], dtype=torch.float64))
    value = cls(reduction="none")(*arrays).numpy().ravel()[0]
    assert value == pytest.approx(1.0 - (2 * p * y + s) / (p + y + s), rel=1e-9)
    negative = cls(smooth_nr=-1.0, smooth_dr=-1.0, reduction="none")(torch.tensor([[[0.25]]]), torch.tensor([[[1.0]]]))
    assert torch.isfinite(negative).all()  # a value, no exception


def test_focal_sum_is_the_mean_over_the_spatial_axes_then_summed():
    """'sum' of 2 x 2 zero logits, targets 0, gamma 0 is 4 log 2 by NumPy's BCE; MONAI returns log 2 (the mean);
    with a spatial axis of 3, the sum over (N, C) of the spatial mean."""
    zeros = torch.zeros(2, 2, dtype=torch.float64)
    assert losses.FocalLoss(gamma=0.0, reduction="sum")(zeros, zeros).item() == pytest.approx(math.log(2.0))
    assert 4 * math.log(2.0) == pytest.approx(np.sum(np.log1p(np.exp(np.zeros((2, 2))))))
    spatial = torch.zeros(1, 2, 3, dtype=torch.float64)
    assert losses.FocalLoss(gamma=0.0, reduction="sum")(spatial, spatial).item() == pytest.approx(2 * math.log(2.0))
    softmax = losses.FocalLoss(gamma=0.0, use_softmax=True, to_onehot_y=True, ignore_index=-100, reduction="sum")
    assert softmax(zeros, torch.zeros(2, 1, dtype=torch.long)).item() == pytest.approx(math.log(2.0))


def test_focal_computes_a_float64_input_in_float32():
    """z = 1, y = 0, gamma = 0: NumPy's float64 BCE log(1 + e) to 1e-16; MONAI's is float32, off by ~1e-8."""
    z = torch.tensor([[1.0]], dtype=torch.float64)
    value = losses.FocalLoss(gamma=0.0, reduction="none")(z, torch.zeros_like(z))
    assert value.dtype == torch.float32
    exact = np.log1p(np.exp(1.0))
    assert abs(value.double().item() - exact) > 1e-9
    assert abs(float(np.float32(exact)) - value.double().item()) <= 2 * 2.0**-24 * exact


def test_softmax_focal_gradient_is_nan_where_p_y_rounds_to_one():
    """Logits [17, 0], class 0, gamma 0.5: the exact d loss / d z_0 (float64 NumPy: -alpha_0 [u^g - g u^(g-1) p
    log p] (1 - p), u = 1 - p) is finite; MONAI's is NaN (1 - p_y formed in float32 is 0)."""
    z = torch.tensor([[17.0, 0.0]], dtype=torch.float64, requires_grad=True)
    loss = losses.FocalLoss(gamma=0.5, alpha=0.25, use_softmax=True, to_onehot_y=True, reduction="sum")
    loss(z, torch.tensor([[0]])).backward()
    assert torch.isnan(z.grad).all()
    u = 1.0 / (1.0 + np.exp(17.0))  # 1 - p_y, accurately
    p = 1.0 - u
    d_z0 = -(1 - 0.25) * (u**0.5 - 0.5 * u**-0.5 * p * np.log(p)) * u
    assert np.isfinite(d_z0) and d_z0 != 0.0


def test_tversky_float16_gradient_is_nan_where_the_denominator_squared_underflows():
    """alpha = beta = 0: the loss is 0 for every prediction (NumPy: (0 FP + 0 FN) / (TP + s)), so its exact
    gradient is 0; in float16 with smooth 1e-5 MONAI's is NaN; in float32 it is 0."""
    for dtype, nan in ((torch.float16, True), (torch.float32, False)):
        x = torch.zeros(1, 1, 1, dtype=dtype, requires_grad=True)
        loss = losses.TverskyLoss(alpha=0.0, beta=0.0, smooth_nr=1e-5, smooth_dr=1e-5, reduction="sum")
        loss(x, torch.zeros(1, 1, 1, dtype=dtype)).backward()
        assert bool(torch.isnan(x.grad).all()) is nan
    assert 1e-5**2 < 2.0**-25  # the square rounds to 0 in float16 (smallest subnormal 2^-24)


def test_contrastive_float16_is_nan_for_a_view_of_norm_zero():
    """A zero view beside [1, 0.5]: MONAI's ContrastiveLoss is NaN in float16 and finite in float32; the cosine
    similarity of a zero vector with eps clamping (NumPy float64: 0 / max(0, eps)) is 0, so the exact loss is
    finite; torch's default eps rounds to 0 in float16."""
    views = ([[0.0, 0.0], [1.0, 0.5]], [[0.5, 1.0], [-0.5, 1.0]])
    loss = losses.ContrastiveLoss(temperature=0.5)
    assert torch.isnan(loss(*(torch.tensor(v, dtype=torch.float16) for v in views)))
    assert torch.isfinite(loss(*(torch.tensor(v, dtype=torch.float32) for v in views)))
    zero, other = np.zeros(2), np.array([1.0, 0.5])
    assert zero @ other / max(np.linalg.norm(zero) * np.linalg.norm(other), 1e-8) == 0.0
    assert float(np.float16(1e-8)) == 0.0


def test_barlow_twins_returns_float32_for_half_precision_views():
    """Two float16 views of two samples: MONAI's BarlowTwinsLoss returns float32 (torch.eye's default dtype);
    float64 views give float64."""
    views = ([[1.0, 0.5], [0.25, -1.0]], [[0.5, 1.0], [-0.75, 0.5]])
    loss = losses.BarlowTwinsLoss()
    assert loss(*(torch.tensor(v, dtype=torch.float16) for v in views)).dtype == torch.float32
    assert loss(*(torch.tensor(v, dtype=torch.float64) for v in views)).dtype == torch.float64


@pytest.mark.parametrize("cls", [losses.GeneralizedDiceLoss, losses.GeneralizedDiceFocalLoss])
def test_generalized_dice_backward_raises_for_a_target_requiring_grad(cls):
    """One pixel, prediction logit 0.5, target 1: backward works for a constant target and raises for a target
    that requires grad (the in-place w[infs] = 0.0); a float16 input gives a float32 loss."""
    x = torch.full((1, 1, 1), 0.5, requires_grad=True)
    cls(sigmoid=True)(x, torch.ones(1, 1, 1)).backward()
    with pytest.raises(RuntimeError, match="modified by an inplace operation"):
        cls(sigmoid=True)(x, torch.ones(1, 1, 1, requires_grad=True)).backward()
    assert cls(sigmoid=True)(x.detach().half(), torch.ones(1, 1, 1).half()).dtype == torch.float32


def test_dice_focal_returns_float32_for_half_precision():
    x, t = torch.full((1, 1, 1), 0.5).half(), torch.ones(1, 1, 1).half()
    assert losses.DiceFocalLoss(sigmoid=True)(x, t).dtype == torch.float32


def test_dice_focal_float16_gradient_is_nan_for_an_empty_mask():
    """One pixel, logit -11, target 0: the exact d loss / d x (NumPy float64: the Dice part 1 - s / (p + s) gives
    s p (1 - p) / (p + s)^2, the focal part p^2 log(1 + e^x) about 1e-14) is 0.2342; MONAI's float64 agrees, its
    float16 is NaN (d dice / d tp = -2 / (p + s) overflows float16); plain DiceLoss shares it."""
    s, x0 = 1e-5, -11.0
    p = _sigmoid(np.float64(x0))
    exact = s * p * (1 - p) / (p + s) ** 2 + 2 * p * p * (1 - p) * np.log1p(np.exp(x0)) + p**3
    assert exact == pytest.approx(0.23424882225, rel=1e-9)
    assert 2 / (float(np.float16(p)) + s) > 65504  # beyond float16's largest number
    for cls in (losses.DiceFocalLoss, losses.DiceLoss):
        for dtype in (torch.float64, torch.float16):
            x = torch.full((1, 1, 1), x0, dtype=dtype, requires_grad=True)
            cls(sigmoid=True)(x, torch.zeros(1, 1, 1, dtype=dtype)).backward()
            if dtype == torch.float16:
                assert torch.isnan(x.grad).all()
            elif cls is losses.DiceFocalLoss:
                assert x.grad.item() == pytest.approx(exact, rel=1e-6)  # the focal part is float32


def test_dice_focal_float64_is_float32_accurate():
    """One pixel, logit 0.3, target 0: the exact loss (NumPy float64: Dice 1 - s / (p + s), focal p^2 log(1 + e^x))
    against MONAI's float64 result, which errs by float32's rounding of the focal term (about 1e-8), a million times
    float64's."""
    s, x0 = 1e-5, 0.3
    p = _sigmoid(np.float64(x0))
    exact = 1 - s / (p + s) + p * p * np.log1p(np.exp(x0))
    value = losses.DiceFocalLoss(sigmoid=True)(
        torch.full((1, 1, 1), x0, dtype=torch.float64), torch.zeros(1, 1, 1, dtype=torch.float64)
    )
    assert value.dtype == torch.float64
    assert 1e-12 < abs(value.item() - exact) / exact < 2.0**-24


@pytest.mark.parametrize(("dtype", "logit"), [(torch.float32, 17.0), (torch.float16, 9.0), (torch.bfloat16, 7.0)])
def test_mcc_of_a_one_class_target_drops_to_zero_where_the_sigmoid_rounds_onto_it(dtype, logit):
    """One pixel, target 1: tp tn - fp fn is 0 for every p (NumPy float64, tn = fp = 0), so MCC is 0 / sqrt(... + 1e-5)
    and the loss 1 (smooth_nr = 0); MONAI gives 1 in float64 and 0 in the lower dtype, where torch's sigmoid is
    exactly 1 (fp = fn = 0: the 'perfect' override)."""
    p, t = _sigmoid(np.float64(logit)), 1.0
    tp, tn, fp, fn = p * t, (1 - p) * (1 - t), p * (1 - t), (1 - p) * t
    assert tp * tn - fp * fn == 0.0 and fn > 0.0
    exact = 1.0 - (tp * tn - fp * fn) / np.sqrt((tp + fp) * (tp + fn) * (tn + fp) * (tn + fn) + 1e-5)
    assert exact == 1.0
    assert (
        losses.MCCLoss(sigmoid=True)(torch.tensor([[[logit]]], dtype=torch.float64), torch.ones(1, 1, 1)).item() == 1.0
    )
    low = torch.tensor([[[logit]]], dtype=dtype)
    assert torch.sigmoid(low).item() == 1.0
    assert losses.MCCLoss(sigmoid=True)(low, torch.ones(1, 1, 1, dtype=dtype)).item() == 0.0


# --- the variants MONAI follows judge -------------------------------------------------------------------------


def test_jaccard_smooth_counted_half_is_what_monai_computes():
    """DiceLoss(jaccard=True): 1 - (2 TP + s) / (2 (TP + FP + FN) + s) = Jaccard(s / 2), by NumPy."""
    p, y, s = np.array([0.2, 0.9, 0.5]), np.array([0.0, 1.0, 1.0]), 0.7
    tp, fp, fn = np.sum(p * y), np.sum(p * (1 - y)), np.sum((1 - p) * y)
    module = losses.DiceLoss(jaccard=True, smooth_nr=s, smooth_dr=s, reduction="none")
    value = module(torch.tensor(p).reshape(1, 1, 3), torch.tensor(y).reshape(1, 1, 3)).item()
    assert value == pytest.approx(1 - (tp + s / 2) / (tp + fp + fn + s / 2), rel=1e-12)


def _dice_params(module, keywords):
    return {"smooth": module.smooth_nr, "from_logits": module.sigmoid, "batch": module.batch, **_reduction(module)}


def _focal_params(module, keywords):
    alpha = module.alpha.numpy() if isinstance(module.alpha, torch.Tensor) else module.alpha
    return {"alpha": alpha, "gamma": module.gamma, "ignore_index": module.ignore_index, **_reduction(module)}


def _reduction(module) -> dict:
    return {"reduction": module.reduction}


@pytest.mark.parametrize(
    ("label", "canonical"), [("monai.DiceLoss.jaccard", _dice_params), ("monai.FocalLoss.softmax", _focal_params)]
)
def test_a_variant_judges_a_bug_near_the_tolerance(label, canonical):
    """The variant's value and scale judge: MONAI passes agreement in float32 (or reproduces its recorded
    findings there), MONAI plus 32 u of the judged scale fails it outside every finding's domain."""
    right = binding(BINDINGS, label)
    assert judged(right, "agreement", "float32").status in ("pass", "xfail")
    wrong = judged(biased(right, canonical), "agreement", "float32")
    assert wrong.status == "fail", wrong.message
