"""lossguard's own focal losses. sigmoid_focal_loss runs as one autograd Function (``_SigmoidFocal``) for
gamma = 0 or >= 1 and a target without gradient: its values and gradients equal the eager float64 formula's, also
for well-classified logits, where the gradient is tiny and must stay relatively accurate. softmax_focal_loss works
with the classes outermost: the same values and gradients as log_softmax's, ignored elements included."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from lossguard.implementations.own.classification import _SigmoidFocal, sigmoid_focal_loss, softmax_focal_loss


def _eager(x, y, alpha, gamma, reduction, alpha_mode):
    bce = -(y * F.logsigmoid(x) + (1 - y) * F.logsigmoid(-x))
    loss = ((1 - y) * torch.sigmoid(x) + y * torch.sigmoid(-x)).pow(gamma) * bce
    if alpha is not None:
        loss = (alpha * y + (1 - alpha) * (1 - y) if alpha_mode == "per_class" else alpha) * loss
    return {"none": loss, "mean": loss.mean(), "sum": loss.sum()}[reduction]


@pytest.mark.parametrize("gamma", [0.0, 1.0, 2.0, 3.5])
@pytest.mark.parametrize("soft", [False, True])
@pytest.mark.parametrize("alpha, alpha_mode", [(None, "per_class"), (0.25, "per_class"), (0.25, "uniform")])
@pytest.mark.parametrize("reduction", ["none", "mean", "sum"])
def test_matches_the_eager_formula(gamma, soft, alpha, alpha_mode, reduction):
    g = torch.Generator().manual_seed(0)
    raw = 4 * torch.randn(6, 5, generator=g, dtype=torch.float64)
    raw[0] = torch.tensor([40.0, -40.0, 30.0, -30.0, 0.0], dtype=torch.float64)
    y = torch.rand(6, 5, generator=g, dtype=torch.float64) if soft else (torch.rand(6, 5, generator=g) > 0.5).double()
    y[0, :4] = torch.tensor([1.0, 0.0, 1.0, 0.0], dtype=torch.float64)
    x, x2 = raw.clone().requires_grad_(), raw.clone().requires_grad_()
    got = sigmoid_focal_loss(x, y, alpha=alpha, gamma=gamma, reduction=reduction, alpha_mode=alpha_mode)
    want = _eager(x2, y, alpha, gamma, reduction, alpha_mode)
    torch.testing.assert_close(got, want, rtol=1e-12, atol=0)
    torch.autograd.backward(got, torch.ones_like(got))
    torch.autograd.backward(want, torch.ones_like(want))
    torch.testing.assert_close(x.grad, x2.grad, rtol=1e-10, atol=0)


@pytest.mark.parametrize("gamma", [0.0, 1.0, 2.0])
def test_gradcheck(gamma):
    g = torch.Generator().manual_seed(1)
    x = (3 * torch.randn(20, generator=g, dtype=torch.float64)).requires_grad_()
    y = torch.rand(20, generator=g, dtype=torch.float64)
    assert torch.autograd.gradcheck(lambda a: _SigmoidFocal.apply(a, y, gamma), (x,))


@pytest.mark.parametrize("shape", [(7, 3), (4, 3, 2, 5)])
@pytest.mark.parametrize("reduction", ["none", "mean", "sum"])
def test_softmax_focal_in_the_classes_outermost_layout(shape, reduction):
    g = torch.Generator().manual_seed(2)
    raw = 3 * torch.randn(shape, generator=g, dtype=torch.float64)
    t = torch.randint(0, shape[1], (shape[0], *shape[2:]), generator=g)
    t.view(-1)[::4] = -100
    x, x2 = raw.clone().requires_grad_(), raw.clone().requires_grad_()
    got = softmax_focal_loss(x, t, gamma=2.0, reduction=reduction)
    valid = t != -100
    logp = torch.log_softmax(x2, dim=1).gather(1, t.clamp(min=0).unsqueeze(1)).squeeze(1)
    loss = torch.where(valid, -(1 - logp.exp()).pow(2.0) * logp, torch.zeros_like(logp))
    want = {"none": loss, "mean": loss.sum() / valid.sum(), "sum": loss.sum()}[reduction]
    torch.testing.assert_close(got, want, rtol=1e-10, atol=1e-14)
    torch.autograd.backward(got, torch.ones_like(got))
    torch.autograd.backward(want, torch.ones_like(want))
    torch.testing.assert_close(x.grad, x2.grad, rtol=1e-8, atol=1e-14)
