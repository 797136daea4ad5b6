"""segmentation_models_pytorch's losses as shipped (implementations/bindings/smp.toml and smp.py), audited on the CPU
in the ci profile.

The audit runs once per module; each recorded finding is then confirmed independently, by a float64 NumPy
computation beside smp's own output; each reference variant smp follows is shown to judge: smp passes it, smp
with a planted bug of 32 u of the judged scale fails it.
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest
import torch

pytest.importorskip(
    "segmentation_models_pytorch", reason="segmentation_models_pytorch not installed (optional extra lossguard[audit])"
)

from audit_checks import audit, biased, binding, check_audit, judged
from segmentation_models_pytorch import losses

from lossguard.harness.app.bindings import library

DTYPES = ("float64", "float32")  # float16 and bfloat16 as well when time allows: ~4 minutes a file
BINDINGS = library("smp").bindings


@pytest.fixture(scope="module")
def results():
    return audit("smp", DTYPES, free=True)  # its losses outside the catalog too: their findings are recorded


def test_the_audit_passes_or_reproduces_its_findings(results):
    check_audit(results, BINDINGS)


def test_every_export_is_bound(results):
    assert not [r for r in results if "without a binding" in r.message]


# --- the conventions, by NumPy ---------------------------------------------------------------------------------


def _tensor(values) -> torch.Tensor:
    return torch.tensor(np.asarray(values, dtype=np.float64))


def test_dice_is_tversky_half_half_with_min_intersection_pooled_over_the_batch():
    """smp's DiceLoss (multilabel): per class, sums over batch and pixels, TP = sum(min(p, y)), score (TP + s) /
    (TP + (FP + FN) / 2 + s), a class with an empty target scores 0, the mean over classes."""
    p = np.array([[[0.2, 0.9], [0.4, 0.1]], [[0.7, 0.3], [0.6, 0.5]]])  # (N=2, C=2, 2 pixels)
    y = np.array([[[0.0, 1.0], [0.0, 0.0]], [[0.5, 1.0], [0.0, 0.0]]])  # class 1 empty
    s = 0.5
    value = losses.DiceLoss("multilabel", from_logits=False, smooth=s)(_tensor(p), _tensor(y)).item()
    tp = np.sum(np.minimum(p[:, 0], y[:, 0]))
    fp, fn = np.sum(np.maximum(p[:, 0] - y[:, 0], 0)), np.sum(np.maximum(y[:, 0] - p[:, 0], 0))
    class0 = 1 - (tp + s) / (tp + (fp + fn) / 2 + s)
    assert value == pytest.approx((class0 + 0.0) / 2, rel=1e-12)


def test_soft_cross_entropy_smooths_with_eps_over_c():
    """smooth_factor eps: (1 - eps) NLL + eps / C sum_c -log p_c, torch's label_smoothing (NumPy), although the
    docstring's example ([1, 0, 0] -> [0.9, 0.05, 0.05]) shows eps / (C - 1)."""
    z = np.array([[2.0, -1.0, 0.5]])
    log_p = z - np.log(np.sum(np.exp(z)))
    eps = 0.1
    expected = -np.sum(((1 - eps) * np.eye(3)[0] + eps / 3) * log_p)
    module = losses.SoftCrossEntropyLoss(smooth_factor=eps)
    assert module(_tensor(z), torch.tensor([0])).item() == pytest.approx(expected, rel=1e-12)


# --- the findings, confirmed without lossguard -----------------------------------------------------------------


@pytest.mark.parametrize("cls", [losses.DiceLoss, losses.JaccardLoss, losses.TverskyLoss])
def test_overlap_losses_validate_no_input(cls):
    """A target with an extra axis, a probability of 1.5 and smooth -1 all give a value (binary mode)."""
    p, y = _tensor([[0.25]]), _tensor([[1.0]])
    assert torch.isfinite(cls("binary", from_logits=False)(p, y[..., None]))
    assert torch.isfinite(cls("binary", from_logits=False)(_tensor([[1.5]]), y))
    assert torch.isfinite(cls("binary", from_logits=False, smooth=-1.0)(p, y))
    multiclass = cls("multiclass", smooth=-1.0)(torch.zeros(1, 2, dtype=torch.float64), torch.zeros(1, 1).long())
    assert torch.isfinite(multiclass)


def test_focal_loses_one_minus_pt_and_its_gradient_is_nan():
    """z = 80, y = 1, gamma = 2^-126: the exact loss (NumPy, float64, 1 - p_t = sigmoid(-z) accurately) is
    1.8e-35; smp returns 0. z = 38, y = 1, gamma = 0.5: the exact gradient is finite; smp's is NaN."""
    gamma = 2.0**-126
    bce = math.log1p(math.exp(-80.0))
    exact = (1.0 / (1.0 + math.exp(80.0))) ** gamma * bce
    assert exact == pytest.approx(1.8048513878454153e-35, rel=1e-12)
    value = losses.FocalLoss("binary", gamma=gamma, reduction="none")(_tensor([80.0]), _tensor([1.0]))
    assert value.item() == 0.0
    z = torch.tensor([38.0], dtype=torch.float64, requires_grad=True)
    losses.FocalLoss("binary", gamma=0.5, reduction="sum")(z, _tensor([1.0])).backward()
    assert torch.isnan(z.grad).all()
    q = 1.0 / (1.0 + math.exp(38.0))  # 1 - p
    exact_gradient = -(q**0.5) * (0.5 * (1 - q) * math.log1p(math.exp(-38.0)) + q)
    assert math.isfinite(exact_gradient) and exact_gradient != 0.0


def test_multilabel_focal_reductions_average_over_classes():
    """2 zero logits, targets 0, gamma 0: the element-wise losses are log 2 each (NumPy); smp's 'none' is the
    scalar log 2 and its 'sum' log 2, not 2 log 2."""
    z, y = torch.zeros(1, 2, dtype=torch.float64), torch.zeros(1, 2, dtype=torch.float64)
    elementwise = np.log1p(np.exp(np.zeros(2)))
    none = losses.FocalLoss("multilabel", gamma=0.0, reduction="none")(z, y)
    assert none.shape == () and none.item() == pytest.approx(np.mean(elementwise))
    total = losses.FocalLoss("multilabel", gamma=0.0, reduction="sum")(z, y).item()
    assert total == pytest.approx(np.sum(elementwise) / 2) and np.sum(elementwise) == pytest.approx(2 * math.log(2))


def test_lovasz_raises_on_float64_and_promotes_half_precision():
    """LovaszLoss builds its gradient in float32 (gt_sorted.float()): a float64 input raises in torch.dot, in
    every mode; binary mode returns float32 for a float16 input; multiclass raises for float16 too."""
    image = torch.tensor([[[[0.5]]]])
    mask = torch.tensor([[[[1.0]]]])
    for mode in ("binary", "multilabel"):
        with pytest.raises(RuntimeError, match="same dtype"):
            losses.LovaszLoss(mode)(image.double(), mask.double())
        assert losses.LovaszLoss(mode)(image.half(), mask.half()).dtype == torch.float32
    logits = torch.tensor([[[[0.5]], [[0.0]]]])
    for dtype in (torch.float64, torch.float16):
        with pytest.raises(RuntimeError, match="same dtype"):
            losses.LovaszLoss("multiclass")(logits.to(dtype), torch.tensor([[[0]]]))


def _mcc_loss(p: np.ndarray, t: np.ndarray, eps: float = 1e-5) -> float:
    """smp's MCC loss in float64 NumPy: 1 - (tp tn - fp fn) / sqrt((tp + fp)(tp + fn)(tn + fp)(tn + fn)), each sum
    plus eps."""
    tp, tn, fp, fn = (np.sum(v) + eps for v in (p * t, (1 - p) * (1 - t), p * (1 - t), (1 - p) * t))
    return 1.0 - (tp * tn - fp * fn) / np.sqrt((tp + fp) * (tp + fn) * (tn + fp) * (tn + fn))


def test_mcc_float16_product_under_the_root_leaves_float16s_range():
    """p = 0 against target 0: the exact loss (NumPy float64) is 0.50001 and smp's float64 agrees; in float16 the
    product (2e-5)^2 ... underflows to 0 and the loss is -inf. 100 ones against 25 ones: the product 187500
    overflows, the loss is 1 (exact 1.00026) and the gradient NaN where the exact one (central differences of the
    NumPy loss) is finite."""
    zero = np.zeros((1, 1))
    assert _mcc_loss(zero, zero) == pytest.approx(0.500009999800004, rel=1e-12)
    assert losses.MCCLoss()(torch.zeros(1, 1, dtype=torch.float64), torch.zeros(1, 1, dtype=torch.float64)).item() == (
        pytest.approx(_mcc_loss(zero, zero), rel=1e-12)
    )
    assert losses.MCCLoss()(torch.zeros(1, 1, dtype=torch.float16), torch.zeros(1, 1, dtype=torch.float16)).item() == (
        -math.inf
    )
    p, t = np.ones(100), np.r_[np.zeros(75), np.ones(25)]
    exact = _mcc_loss(p, t)
    assert exact == pytest.approx(1.000258, abs=1e-6)
    h, step = np.zeros(100), 1e-6
    h[0] = step
    slope = (_mcc_loss(p + h, t) - _mcc_loss(p - h, t)) / (2 * step)
    assert np.isfinite(slope) and slope != 0.0
    x = torch.tensor(p.reshape(2, 2, 5, 5), dtype=torch.float16, requires_grad=True)
    loss = losses.MCCLoss()(x, torch.tensor(t.reshape(2, 2, 5, 5), dtype=torch.float16))
    loss.backward()
    assert loss.item() == 1.0 and torch.isnan(x.grad).all()


def test_soft_cross_entropy_mean_counts_ignored_targets():
    """Two rows of zero logits over 2 classes, the second ignored: torch's mean (NumPy: the one row's log 2 over
    one row) is log 2; smp's is log 2 / 2. Every row ignored: smp 0, torch NaN."""
    z = torch.zeros(2, 2, dtype=torch.float64)
    smp = losses.SoftCrossEntropyLoss(smooth_factor=0.0, ignore_index=-100)
    assert smp(z, torch.tensor([0, -100])).item() == pytest.approx(math.log(2) / 2)
    assert torch.nn.functional.cross_entropy(z, torch.tensor([0, -100])).item() == pytest.approx(math.log(2))
    assert smp(z, torch.tensor([-100, -100])).item() == 0.0


def _multiclass_dice(p: np.ndarray, labels: np.ndarray, smooth: float, eps: float = 1e-7) -> float:
    """smp's multiclass DiceLoss (pooled over the batch), NumPy float64: per class TP = sum min(p, y), FP, FN the
    positive parts of p - y and y - p, score (TP + s) / max(TP + (FP + FN) / 2 + s, eps), a class with an empty
    target 0, the mean of 1 - score over the classes."""
    y = np.eye(p.shape[1])[labels]
    tp, fp, fn = (np.sum(v, axis=0) for v in (np.minimum(p, y), np.maximum(p - y, 0), np.maximum(y - p, 0)))
    score = (tp + smooth) / np.maximum(tp + (fp + fn) / 2 + smooth, eps)
    return float(np.mean((1 - score) * (np.sum(y, axis=0) > 0)))


def test_multiclass_dice_validates_neither_the_target_shape_nor_smooth():
    """smp 0.6.0, DiceLoss('multiclass'), logits [0, 0] (softmax 0.5 each), class 0. A (N, 1) target where (N,) is
    documented gives the (N,) target's value, NumPy's 1/14, without an exception (the target is reshaped to
    (N, -1)). smooth = -1: class 0's denominator 0.5 + 0.25 - 1 < 0 is clamped to eps = 1e-7, its score
    -0.5 / 1e-7, and the loss 2500000.5 (NumPy the same), without an exception."""
    logits, p = torch.zeros(1, 2, dtype=torch.float64), np.full((1, 2), 0.5)
    extra_axis = losses.DiceLoss("multiclass", smooth=1.0)(logits, torch.tensor([[0]])).item()
    assert extra_axis == pytest.approx(_multiclass_dice(p, np.array([0]), 1.0), rel=1e-12)
    assert extra_axis == pytest.approx(1 / 14, rel=1e-12)
    negative = losses.DiceLoss("multiclass", smooth=-1.0)(logits, torch.tensor([0])).item()
    assert negative == pytest.approx(_multiclass_dice(p, np.array([0]), -1.0), rel=1e-12)
    assert negative == pytest.approx(2500000.5, rel=1e-12)


@pytest.mark.parametrize("mode", ["binary", "multilabel"])
def test_focal_accepts_alpha_above_one_a_negative_gamma_and_a_target_of_another_shape(mode):
    """smp 0.6.0, FocalLoss, logit 0.5, target 1 (alpha documented as a prior probability, gamma as the focal power),
    no exception: alpha = 1.5 weighs NumPy's (1 - p)^2 BCE by 1.5 (0.1014), gamma = -1 divides the BCE by 1 - p
    (1.2557, above the BCE itself). Binary mode flattens both tensors, so a (1, 1) target against a (1,) input gives
    the value of a (1,) one (0.0676)."""
    p = 1.0 / (1.0 + math.exp(-0.5))
    bce = math.log1p(math.exp(-0.5))
    x, y = (_tensor([0.5]), _tensor([1.0])) if mode == "binary" else (_tensor([[0.5]]), _tensor([[1.0]]))
    alpha = losses.FocalLoss(mode, alpha=1.5, gamma=2.0)(x, y).item()
    assert alpha == pytest.approx(1.5 * (1 - p) ** 2 * bce, rel=1e-12) and alpha > (1 - p) ** 2 * bce
    gamma = losses.FocalLoss(mode, gamma=-1.0)(x, y).item()
    assert gamma == pytest.approx(bce / (1 - p), rel=1e-12) and gamma > bce
    if mode == "binary":
        other_shape = losses.FocalLoss(mode, gamma=2.0, reduction="none")(x, _tensor([[1.0]]))
        np.testing.assert_allclose(other_shape.numpy(), [(1 - p) ** 2 * bce], rtol=1e-12)


# --- the variants smp follows judge ----------------------------------------------------------------------------


def _overlap_params(module, keywords):
    params = {"smooth": module.smooth, "from_logits": module.from_logits, "reduction": "mean"}
    if hasattr(module, "alpha"):
        params |= {"alpha": module.alpha, "beta": module.beta}
    return params


def _multiclass_params(module, keywords):
    return {"smooth": module.smooth, "ignore_index": module.ignore_index, "reduction": "mean"}


@pytest.mark.parametrize(
    ("label", "canonical", "prop", "argument"),
    [
        ("smp.DiceLoss.multilabel", _overlap_params, "agreement", None),  # smooth_counted, empty, intersection
        ("smp.TverskyLoss.binary", _overlap_params, "gradient", "target"),  # intersection's target derivative
        ("smp.DiceLoss.multiclass", _multiclass_params, "agreement", None),  # smooth_counted, empty per class
    ],
)
def test_a_variant_judges_a_bug_near_the_tolerance(label, canonical, prop, argument):
    right = dataclasses.replace(binding(BINDINGS, label), findings=())
    assert judged(right, prop, "float32").status == "pass"
    wrong = judged(biased(right, canonical, argument), prop, "float32")
    assert wrong.status == "fail", wrong.message
