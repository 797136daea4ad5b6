"""lossguard's own overlap losses compute TP, FP and FN in one autograd Function with an analytic backward
(``_OverlapSums``): its values and gradients equal the eager float64 formula's, for every argument that changes
the path (from_logits, batch, reduction, smooth=0, empty masks, soft targets, no spatial dims)."""

from __future__ import annotations

import pytest
import torch

from lossguard.implementations.own.segmentation import (
    _OverlapSums,
    _SoftmaxOverlapSums,
    dice_loss,
    jaccard_loss,
    multiclass_dice_loss,
    tversky_loss,
)


def _eager(x, y, alpha, beta, smooth, from_logits, batch, reduction):
    p, q = (torch.sigmoid(x), torch.sigmoid(-x)) if from_logits else (x, 1 - x)
    dims = ((0,) if batch else ()) + tuple(range(2, x.dim()))
    tp, fp, fn = ((a * b).sum(dim=dims) if dims else a * b for a, b in ((p, y), (p, 1 - y), (q, y)))
    loss = (alpha * fp + beta * fn) / (tp + alpha * fp + beta * fn + smooth)
    return {"none": loss, "mean": loss.mean(), "sum": loss.sum()}[reduction]


@pytest.mark.parametrize("from_logits", [True, False])
@pytest.mark.parametrize("target_grad", [True, False])
def test_overlap_sums_gradcheck(from_logits, target_grad):
    g = torch.Generator().manual_seed(0)
    x = torch.randn(3, 2, 5, generator=g, dtype=torch.float64)
    x = (x if from_logits else torch.sigmoid(x)).requires_grad_()
    y = torch.rand(3, 2, 5, generator=g, dtype=torch.float64).requires_grad_(target_grad)
    assert torch.autograd.gradcheck(lambda a, b: _OverlapSums.apply(a, b, from_logits), (x, y))


@pytest.mark.parametrize("shape", [(2, 3, 4, 5), (4, 3)])
@pytest.mark.parametrize("from_logits", [True, False])
@pytest.mark.parametrize("batch", [False, True])
@pytest.mark.parametrize("reduction", ["none", "mean", "sum"])
@pytest.mark.parametrize("smooth", [0.0, 1.0])
@pytest.mark.parametrize("empty", [False, True])
def test_losses_match_the_eager_formula(shape, from_logits, batch, reduction, smooth, empty):
    g = torch.Generator().manual_seed(1)
    raw = torch.randn(shape, generator=g, dtype=torch.float64)
    y = torch.zeros(shape, dtype=torch.float64) if empty else torch.rand(shape, generator=g, dtype=torch.float64)
    if empty and smooth == 0:
        smooth = 1e-3  # 0/0 otherwise, by the contract
    cases = [
        (lambda a, b, **k: dice_loss(a, b, smooth=smooth, **k), 0.5, 0.5, 0.5 * smooth),
        (lambda a, b, **k: jaccard_loss(a, b, smooth=smooth, **k), 1.0, 1.0, smooth),
        (lambda a, b, **k: tversky_loss(a, b, alpha=0.3, beta=0.7, smooth=smooth, **k), 0.3, 0.7, smooth),
    ]
    for loss, alpha, beta, s in cases:
        x = (raw if from_logits else torch.sigmoid(raw)).clone().requires_grad_()
        t = y.clone().requires_grad_()
        got = loss(x, t, from_logits=from_logits, batch=batch, reduction=reduction)
        x2, t2 = x.detach().clone().requires_grad_(), t.detach().clone().requires_grad_()
        want = _eager(x2, t2, alpha, beta, s, from_logits, batch, reduction)
        torch.testing.assert_close(got, want, rtol=1e-12, atol=0)
        torch.autograd.backward(got, torch.ones_like(got))
        torch.autograd.backward(want, torch.ones_like(want))
        torch.testing.assert_close(x.grad, x2.grad, rtol=1e-10, atol=1e-300)
        torch.testing.assert_close(t.grad, t2.grad, rtol=1e-10, atol=1e-300)


@pytest.mark.parametrize("ignore_index", [None, -100, 1])
@pytest.mark.parametrize("batch", [False, True])
@pytest.mark.parametrize("reduction", ["none", "mean", "sum"])
@pytest.mark.parametrize("shape", [(3, 4, 2, 5), (6, 3)])
def test_multiclass_dice_matches_the_eager_formula(ignore_index, batch, reduction, shape):
    g = torch.Generator().manual_seed(2)
    raw = 3 * torch.randn(shape, generator=g, dtype=torch.float64)
    raw[0, :, ...] = 0.5  # ties for the largest class
    t = torch.randint(0, shape[1], (shape[0], *shape[2:]), generator=g)
    if ignore_index == -100:
        t.view(-1)[::3] = -100
    x, x2 = raw.clone().requires_grad_(), raw.clone().requires_grad_()
    got = multiclass_dice_loss(x, t, smooth=0.5, ignore_index=ignore_index, batch=batch, reduction=reduction)
    keep = (t != ignore_index).unsqueeze(1).double() if ignore_index is not None else torch.ones_like(t).unsqueeze(1)
    y = torch.nn.functional.one_hot(t.clamp(min=0), shape[1]).movedim(-1, 1).double() * keep
    p = torch.softmax(x2, dim=1) * keep
    dims = ((0,) if batch else ()) + tuple(range(2, x2.dim()))
    tp, fp, fn = ((a * b).sum(dim=dims) if dims else a * b for a, b in ((p, y), (p, 1 - y), ((keep - p), y)))
    loss = 0.5 * (fp + fn) / (tp + 0.5 * (fp + fn) + 0.25)
    want = {"none": loss, "mean": loss.mean(), "sum": loss.sum()}[reduction]
    torch.testing.assert_close(got, want, rtol=1e-12, atol=1e-15)
    torch.autograd.backward(got, torch.ones_like(got))
    torch.autograd.backward(want, torch.ones_like(want))
    torch.testing.assert_close(x.grad, x2.grad, rtol=1e-9, atol=1e-15)


def test_multiclass_overlap_gradcheck():
    g = torch.Generator().manual_seed(3)
    x = torch.randn(3, 2, 4, generator=g, dtype=torch.float64).requires_grad_()  # (C, N, L)
    t = torch.randint(0, 3, (1, 2, 4), generator=g)
    keep = torch.tensor([[[1.0, 0.0, 1.0, 1.0], [1.0, 1.0, 1.0, 0.0]]], dtype=torch.float64)
    for k in (None, keep):
        assert torch.autograd.gradcheck(lambda a, k=k: _SoftmaxOverlapSums.apply(a, t, k), (x,))
