"""MONAI's losses as shipped (implementations/bindings/monai.toml and monai.py), audited on the CPU in the ci profile.

The audit runs once per module; each recorded finding is then confirmed independently, by a float64 NumPy
computation beside MONAI's own output; each reference variant MONAI follows is shown to judge: MONAI passes it,
MONAI with a planted bug of 32 u of the judged scale fails it.
"""

from __future__ import annotations

import math
from functools import partial

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


# --- the findings lossguard's overlap test does not cover, confirmed without lossguard (monai 1.6.1) -------------


def _dice(p: float, y: float, s: float, jaccard: bool) -> float:
    """MONAI's one-pixel Dice (or, jaccard, its Jaccard with the smooth counted half) loss, NumPy float64:
    1 - (2 I + s) / (P + T + s), and with jaccard the denominator 2 (P + T - I) + s, I = p y."""
    i = p * y
    denominator = 2 * (p + y - i) if jaccard else p + y
    return float(1.0 - (2 * i + s) / (denominator + s))


@pytest.mark.parametrize("kind", ["jaccard", "generalized-uniform"])
def test_jaccard_and_generalized_dice_take_a_probability_of_1_5_and_a_negative_smooth(kind):
    """monai 1.6.1, sigmoid=False, one pixel: p = 1.5 against y = 1 (smooth 1) gives NumPy's 1 - (2 p y + s) /
    (den + s), a value below 0 (Jaccard -1/3, GeneralizedDiceLoss(w_type='uniform') -1/7), and smooth_nr =
    smooth_dr = -1 at p = 0.25 gives 1.5 and 3 (the quotient's denominator 2 - 1 and 1.25 - 1): no exception."""
    jaccard = kind == "jaccard"

    generalized = partial(losses.GeneralizedDiceLoss, w_type="uniform")

    def loss(p: float, s: float) -> float:
        keywords = {"smooth_nr": s, "smooth_dr": s, "reduction": "none"}
        module = losses.DiceLoss(jaccard=True, **keywords) if jaccard else generalized(**keywords)
        return module(torch.tensor([[[p]]], dtype=torch.float64), torch.ones(1, 1, 1, dtype=torch.float64)).item()

    probability, negative = loss(1.5, 1.0), loss(0.25, -1.0)
    assert probability == pytest.approx(_dice(1.5, 1.0, 1.0, jaccard), rel=1e-12) and probability < 0.0
    assert probability == pytest.approx(-1 / 3 if jaccard else -1 / 7, rel=1e-12)
    assert negative == pytest.approx(_dice(0.25, 1.0, -1.0, jaccard), rel=1e-12)
    assert negative == pytest.approx(1.5 if jaccard else 3.0, rel=1e-12)  # a Dice loss above 1


def test_dice_ce_and_multiclass_dice_take_a_negative_smooth():
    """monai 1.6.1, smooth_nr = smooth_dr = -1, no exception. DiceCELoss(sigmoid=True), logit 0.25, target 1,
    lambda_ce 0.5: NumPy's Dice 1 - (2 p - 1) / (p + 1 - 1) plus half the BCE -log p (1.0668). Multiclass (softmax,
    one-hot label map), logits [0, 0], class 0: class 0 scores 1 - (1 - 1) / (1.5 - 1) = 1, class 1
    1 - (0 - 1) / (0.5 - 1) = -1 (a loss below 0), their mean 0; DiceCELoss's 0.5 Dice + 0.5 CE is log(2) / 2."""
    p = _sigmoid(np.float64(0.25))
    exact = (1 - (2 * p - 1) / (p + 1 - 1)) + 0.5 * -np.log(p)
    sigmoid = losses.DiceCELoss(sigmoid=True, lambda_ce=0.5, lambda_dice=1.0, smooth_nr=-1.0, smooth_dr=-1.0)
    value = sigmoid(torch.tensor([[[0.25]]], dtype=torch.float64), torch.ones(1, 1, 1, dtype=torch.float64))
    assert value.item() == pytest.approx(exact, rel=1e-12)
    assert value.item() == pytest.approx(1.06677049, rel=1e-8)
    logits, labels = torch.zeros(1, 2, 1, dtype=torch.float64), torch.zeros(1, 1, 1, dtype=torch.long)
    per_class = np.array([_dice(q, y, -1.0, False) for q, y in ((0.5, 1.0), (0.5, 0.0))])
    np.testing.assert_allclose(per_class, [1.0, -1.0], rtol=1e-12)
    dice = losses.DiceLoss(softmax=True, to_onehot_y=True, smooth_nr=-1.0, smooth_dr=-1.0, reduction="none")
    np.testing.assert_allclose(dice(logits, labels).numpy().ravel(), per_class, rtol=1e-12)
    mean = losses.DiceLoss(softmax=True, to_onehot_y=True, smooth_nr=-1.0, smooth_dr=-1.0)(logits, labels)
    assert mean.item() == pytest.approx(np.mean(per_class), abs=1e-15)
    dice_ce = losses.DiceCELoss(
        softmax=True, to_onehot_y=True, lambda_ce=0.5, lambda_dice=0.5, smooth_nr=-1.0, smooth_dr=-1.0
    )
    assert dice_ce(logits, labels).item() == pytest.approx(0.5 * np.mean(per_class) + 0.5 * np.log(2.0), rel=1e-12)


def test_focal_accepts_alpha_above_one_and_a_negative_gamma():
    """monai 1.6.1 (documented: alpha 'should be in [0, 1]', gamma the focal exponent), no exception. Sigmoid, logit
    1, target 0: alpha 1.5 (gamma 0) weighs the BCE softplus(1) by 1 - alpha = -0.5, a loss of -0.657 (below 0);
    gamma -1 divides it by p = sigmoid(1): 1.796. Softmax, logits [1, 0], class 0, gamma -1: -log p_0 / (1 - p_0) =
    1.165. NumPy float64; MONAI computes its focal loss in float32 (its own finding), so to float32's rounding."""
    z, zero = torch.tensor([[1.0]], dtype=torch.float64), torch.zeros(1, 1, dtype=torch.float64)
    bce, p = np.log1p(np.exp(1.0)), _sigmoid(np.float64(1.0))
    alpha = losses.FocalLoss(alpha=1.5, gamma=0.0, reduction="none")(z, zero).item()
    assert alpha == pytest.approx((1 - 1.5) * bce, rel=1e-6) and alpha < 0.0
    assert losses.FocalLoss(gamma=-1.0, reduction="none")(z, zero).item() == pytest.approx(bce / p, rel=1e-6)
    softmax = losses.FocalLoss(gamma=-1.0, use_softmax=True, to_onehot_y=True, reduction="none")
    value = softmax(torch.tensor([[1.0, 0.0]], dtype=torch.float64), torch.tensor([[0]])).numpy().ravel()
    p0 = np.exp(1.0) / (np.exp(1.0) + 1.0)
    np.testing.assert_allclose(value, [-np.log(p0) / (1 - p0), 0.0], rtol=1e-6)
    assert value[0] == pytest.approx(1.16479516, rel=1e-6)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_softmax_focal_mean_of_every_target_ignored_is_zero_not_nan(dtype):
    """monai 1.6.1, use_softmax, one row whose target is ignore_index, reduction='mean': the mean over no element is
    0 / 0 (NumPy's mean of an empty array, torch's cross_entropy: NaN); MONAI divides by the count clamped at
    float32's eps and returns 0."""
    loss = losses.FocalLoss(gamma=0.0, use_softmax=True, to_onehot_y=True, ignore_index=-100, reduction="mean")
    logits = torch.zeros(1, 2, dtype=dtype)
    assert loss(logits, torch.tensor([[-100]])).item() == 0.0
    with np.errstate(invalid="ignore"), pytest.warns(RuntimeWarning):
        assert np.isnan(np.mean(np.array([], dtype=np.float64)))
    assert torch.isnan(torch.nn.functional.cross_entropy(logits, torch.tensor([-100]), ignore_index=-100))


_BOX_EPS = 2.0**-23  # float32's machine epsilon: box_pair_giou's denominator guard


def _giou_loss(b1, b2, dtype=np.float64) -> np.ndarray:
    """1 - GIoU of StandardMode boxes (x1, y1, x2, y2) row by row, NumPy in ``dtype`` (float64: the exact loss to
    its rounding), with MONAI's eps: 1 - I / (U + eps) + (C - U) / (C + eps)."""
    b1, b2, eps = np.asarray(b1, dtype=dtype), np.asarray(b2, dtype=dtype), dtype(_BOX_EPS)
    area = lambda b: (b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1])  # noqa: E731
    wh = np.clip(np.minimum(b1[:, 2:], b2[:, 2:]) - np.maximum(b1[:, :2], b2[:, :2]), 0.0, None)
    inter = wh[:, 0] * wh[:, 1]
    union = area(b1) + area(b2) - inter
    hull = np.maximum(b1[:, 2:], b2[:, 2:]) - np.minimum(b1[:, :2], b2[:, :2])
    enclosure = hull[:, 0] * hull[:, 1]
    return 1 - (inter / (union + eps) - (enclosure - union) / (enclosure + eps))


def _giou_gradient(b1, b2) -> np.ndarray:
    """d (1 - GIoU) / d boxes1 of one row, by mpmath's differentiation at 40 digits (the row smooth there)."""
    from mpmath import diff, mp, mpf

    mp.dps = 40
    a, b = [mpf(v) for v in b1], [mpf(v) for v in b2]

    def loss(*c):
        inter = max(min(c[2], b[2]) - max(c[0], b[0]), 0) * max(min(c[3], b[3]) - max(c[1], b[1]), 0)
        union = (c[2] - c[0]) * (c[3] - c[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
        enclosure = (max(c[2], b[2]) - min(c[0], b[0])) * (max(c[3], b[3]) - min(c[1], b[1]))
        return 1 - inter / (union + _BOX_EPS) + (enclosure - union) / (enclosure + _BOX_EPS)

    return np.array([float(diff(loss, a, tuple(int(k == i) for k in range(4)))) for i in range(4)])


def test_box_giou_computes_float64_boxes_in_float32():
    """monai 1.6.1: BoxGIoULoss casts float64 boxes to float32 (COMPUTE_DTYPE) and returns a float64 tensor holding
    a float32 result. Against NumPy's float64 1 - GIoU (with MONAI's eps): the findings' boxes err by float32's
    rounding, 1e6 to 1e8 times float64's (NumPy's same formula in float32 gives MONAI's value); identical boxes
    give 0 where the exact loss (and 1 - IoU) is eps / (2 + eps) = 6e-8; a 'sum' of four rows and the gradient at
    overlapping boxes are float32-accurate too."""
    loss = losses.BoxGIoULoss(reduction="none")
    witnesses = [  # agreement, translated, a zero-area box
        ([[0.0, 0.0, 2.0, 1.0]], [[0.0, 0.0, 1.8, 0.9]]),
        ([[1.0, 8.0, 3.0, 9.0]], [[1.0, 8.0, 2.8, 8.9]]),
        ([[0.0, 0.0, 0.0, 1.0]], [[0.0, 0.0, 1.8, 0.9]]),
    ]
    for b1, b2 in witnesses:
        value = loss(torch.tensor(b1, dtype=torch.float64), torch.tensor(b2, dtype=torch.float64))
        assert value.dtype == torch.float64
        assert abs(value.item() - _giou_loss(b1, b2)[0]) > 1e-9  # float64's rounding: 1e-16
        assert value.item() == pytest.approx(_giou_loss(b1, b2, np.float32)[0], abs=2 * 2.0**-23)
    same = [[0.0, 0.0, 2.0, 1.0]]
    assert loss(torch.tensor(same, dtype=torch.float64), torch.tensor(same, dtype=torch.float64)).item() == 0.0
    assert _giou_loss(same, same)[0] == pytest.approx(_BOX_EPS / (2 + _BOX_EPS), rel=1e-12)
    rows1 = [[0.06, 0.25, 1.59, 1.73], [1.34, 1.29, 2.87, 2.37], [1.23, 0.77, 1.93, 2.35], [1.99, 1.96, 3.28, 2.93]]
    rows2 = [[0.05, 0.24, 1.58, 1.72], [1.73, 1.68, 3.26, 2.76], [1.66, 1.2, 2.36, 2.78], [1.85, 1.82, 3.14, 2.79]]
    total = losses.BoxGIoULoss(reduction="sum")(torch.tensor(rows1), torch.tensor(rows2, dtype=torch.float64))
    exact = np.sum(_giou_loss(rows1, rows2))
    assert 1e-9 < abs(total.item() - exact) / exact < 8 * 2.0**-24
    b1, b2 = [0.0, 0.0, 2.0, 1.0], [0.5, 0.25, 2.5, 1.5]
    boxes = torch.tensor([b1], dtype=torch.float64, requires_grad=True)
    loss(boxes, torch.tensor([b2], dtype=torch.float64)).sum().backward()
    gradient, exact_gradient = boxes.grad.numpy().ravel(), _giou_gradient(b1, b2)
    departure = np.max(np.abs(gradient - exact_gradient)) / np.max(np.abs(exact_gradient))
    assert 1e-10 < departure < 16 * 2.0**-24


def _nt_xent(z_i, z_j, temperature) -> float:
    """NT-Xent (SimCLR) as MONAI defines it, float64 NumPy, stably: the mean over the 2B views of
    -s_pos / T + logsumexp_{j != i} s_ij / T, s the cosine similarities."""
    z = np.concatenate([np.asarray(z_i, dtype=np.float64), np.asarray(z_j, dtype=np.float64)])
    u = z / np.linalg.norm(z, axis=1, keepdims=True)
    s, n = u @ u.T / temperature, len(z)
    rows = [np.logaddexp.reduce(np.delete(s[i], i)) - s[i, (i + n // 2) % n] for i in range(n)]
    return float(np.mean(rows))


_VIEWS = ([[1.0, 0.5], [0.25, -1.0]], [[0.5, 1.0], [-0.75, 0.5]])


def test_contrastive_divides_a_float64_input_by_the_temperature_rounded_to_float32():
    """monai 1.6.1, temperature 0.07, float64 views: MONAI's loss and gradient match NumPy's NT-Xent (and mpmath's
    derivative) at T = float32(0.07) = 0.07000000029802322, and miss those at T = 0.07 by ~4e-9 relative, 1e7 times
    float64's rounding: torch.as_tensor(temperature) is float32."""
    from mpmath import diff, mp, mpf

    t32 = float(np.float32(0.07))
    assert t32 != 0.07
    views = [torch.tensor(v, dtype=torch.float64, requires_grad=True) for v in _VIEWS]
    value = losses.ContrastiveLoss(temperature=0.07)(*views)
    value.backward()
    assert value.item() == pytest.approx(_nt_xent(*_VIEWS, t32), rel=1e-14)
    assert 1e-10 < abs(value.item() - _nt_xent(*_VIEWS, 0.07)) / value.item() < 2.0**-23
    mp.dps = 40

    def nt_xent(t, x):  # mpmath, z_i[0, 0] = x
        z = [[mpf(v) for v in row] for row in (*_VIEWS[0], *_VIEWS[1])]
        z[0][0] = x
        u = [[v / mp.sqrt(sum(w * w for w in row)) for v in row] for row in z]
        s = [[sum(a * b for a, b in zip(r, q, strict=True)) / t for q in u] for r in u]
        n = len(z)
        rows = [mp.log(sum(mp.exp(s[i][j]) for j in range(n) if j != i)) - s[i][(i + n // 2) % n] for i in range(n)]
        return sum(rows) / n

    grad = views[0].grad[0, 0].item()
    exact = float(diff(lambda x: nt_xent(mpf(0.07), x), mpf(1.0)))
    as_float32 = float(diff(lambda x: nt_xent(mpf(t32), x), mpf(1.0)))
    assert grad == pytest.approx(as_float32, rel=1e-13)
    assert 1e-10 < abs(grad - exact) / abs(exact) < 2.0**-23


def test_contrastive_is_nan_where_exp_of_sim_over_temperature_overflows():
    """monai 1.6.1, one pair of orthogonal views, temperature 0.001: exp(1 / T) of a view with itself is inf, and the
    masked diagonal 0 * inf is NaN: MONAI's loss and gradient are NaN. With one pair the positive is each row's only
    other view, so NT-Xent is identically 0 (NumPy float64 by log-sum-exp: 0, and 0 at the views moved by 1e-3)."""
    views = [torch.tensor(v, dtype=torch.float64, requires_grad=True) for v in ([[1.0, 0.0]], [[0.0, 1.0]])]
    value = losses.ContrastiveLoss(temperature=0.001)(*views)
    value.backward()
    assert torch.isnan(value) and torch.isnan(views[0].grad).all() and torch.isnan(views[1].grad).all()
    assert _nt_xent([[1.0, 0.0]], [[0.0, 1.0]], 0.001) == 0.0
    assert _nt_xent([[1.0, 1e-3]], [[-1e-3, 1.0]], 0.001) == 0.0
    with np.errstate(over="ignore"):
        assert np.isinf(np.exp(np.float64(1.0) / 0.001))


def test_contrastive_accepts_a_zero_temperature():
    """monai 1.6.1, temperature 0 (documented as a scale 'between 0 and 1'): no exception, a NaN loss (sim / 0 is
    +-inf or 0 / 0; NumPy's float64 quotient the same)."""
    value = losses.ContrastiveLoss(temperature=0.0)(torch.tensor([[1.0, 0.0]]), torch.tensor([[0.0, 1.0]]))
    assert torch.isnan(value)
    with np.errstate(divide="ignore", invalid="ignore"):
        assert np.isnan(np.float64(0.0) / 0.0) and np.isinf(np.float64(1.0) / 0.0)


@pytest.mark.parametrize("cls", [losses.GeneralizedDiceLoss, losses.GeneralizedDiceFocalLoss])
@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_generalized_dice_returns_float32_for_half_precision(cls, dtype):
    """monai 1.6.1, one pixel, logit 0.5, target 1, sigmoid: a float16 or bfloat16 input gives a float32 loss (the
    weights come from ground_o.float()); its value is NumPy's float64 1 - (2 p + s) / (p + 1 + s), s = 1e-5 (w = 1),
    plus for GeneralizedDiceFocalLoss the focal term softplus(-0.5) sigmoid(-0.5)^2, to the input's rounding."""
    s, p = 1e-5, _sigmoid(np.float64(0.5))
    exact = 1 - (2 * p + s) / (p + 1 + s)
    if cls is losses.GeneralizedDiceFocalLoss:
        exact += np.log1p(np.exp(-0.5)) * (1 - p) ** 2
    value = cls(sigmoid=True)(torch.full((1, 1, 1), 0.5, dtype=dtype), torch.ones(1, 1, 1, dtype=dtype))
    assert value.dtype == torch.float32
    assert value.item() == pytest.approx(exact, rel=4 * torch.finfo(dtype).eps)
    double = torch.full((1, 1, 1), 0.5, dtype=torch.float64)
    assert cls(sigmoid=True)(double, torch.ones_like(double)).dtype == torch.float64


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
