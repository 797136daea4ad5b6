"""lossguard's own log_cosh_loss runs as one autograd Function (``_LogCosh``): values equal log(cosh(e)) in
float64 on both branches, also near 0, at the branch point and past exp's overflow; the gradient is tanh(e)."""

from __future__ import annotations

import math

import torch

from lossguard.implementations.own.regression import _LogCosh, log_cosh_loss


def test_values_on_both_branches_and_large():
    e = torch.tensor([0.0, 1e-8, -3e-4, 0.5, -0.999, 1.0, 1.001, -7.5, 40.0, 1e4], dtype=torch.float64)
    got = log_cosh_loss(e, torch.zeros_like(e), reduction="none")
    want = [  # log1p(2 sinh(e/2)^2): log(cosh(e)) itself cancels near 0
        math.log1p(2 * math.sinh(v / 2) ** 2) if abs(v) < 700 else abs(v) - math.log(2) for v in e.tolist()
    ]
    torch.testing.assert_close(got, torch.tensor(want, dtype=torch.float64), rtol=1e-13, atol=0)
    inf = log_cosh_loss(torch.tensor([math.inf, -math.inf]), torch.zeros(2), reduction="none")
    assert torch.equal(inf, torch.tensor([math.inf, math.inf]))


def test_gradcheck():
    g = torch.Generator().manual_seed(0)
    x = (3 * torch.randn(40, generator=g, dtype=torch.float64)).requires_grad_()
    y = torch.randn(40, generator=g, dtype=torch.float64).requires_grad_()
    assert torch.autograd.gradcheck(_LogCosh.apply, (x, y))
