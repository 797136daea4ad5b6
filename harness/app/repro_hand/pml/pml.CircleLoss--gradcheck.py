#!/usr/bin/env python3
"""pml.CircleLoss (pytorch-metric-learning 2.9.0): gradcheck, wrong

by design: the re-weighting factors alpha_p = relu(1 + m - s_p) and alpha_n = relu(s_n + m) are formed from
anchor_positive.detach() and anchor_negative.detach() (circle_loss.py:51,56), constants in backpropagation as Sun
et al. 2020 (Circle Loss, CVPR) prescribe, so autograd returns the paper's re-weighted gradient, not the
derivative of the value it returns (the gradient with the weights held constant). Upstream may well keep it: the
script shows the departure, which the docstring does not state.

Hand-written (the failing number is a directional finite difference, which `lossguard repro` does not generate):
three 2-D embeddings of labels (0, 0, 1) at pml's defaults (m = 0.4, gamma = 80), float64, a fixed direction v
scaled by max(|x|, 1) per element as gradcheck's. The derivative of the returned value along v is the
Richardson-extrapolated central differences of pml's own loss: D(t) = (f(x + t v) - f(x - t v)) / 2t at h, h/2,
h/4, R1 = (4 D(h/2) - D(h)) / 3, R2 = (4 D(h/4) - D(h/2)) / 3, |R2 - f'| <= |R1 - R2| (truncation, the loss smooth
here: every relu active, far from its kink). Rounding: each logit of the log-sum-exps is at most
gamma (2 + m)(2 - m) = 307 in magnitude, so a float64 evaluation errs by e <= 64 u 307 (u = 2^-53) and R2 by
6 e / h; h = 2^-10 keeps that near 1e-8, with a truncation far below it.

Recorded against pytorch-metric-learning 2.9.0 (implementations/bindings/pml.toml/.py, binding 'pml.CircleLoss');
written by hand for `lossguard repro` (harness/app/repro_hand/). Standalone: needs only pytorch-metric-learning,
torch and the standard library.
Exit status: 1 while the defect is present, 0 once it is fixed.
"""

from __future__ import annotations

import sys

import torch
from pytorch_metric_learning.losses import CircleLoss

U = 2.0**-53  # float64's unit roundoff
M, GAMMA = 0.4, 80.0  # CircleLoss's defaults
loss_fn = CircleLoss(m=M, gamma=GAMMA)
x = torch.tensor([[1.0, 1.0], [21.0, 1.0], [11.0, 1.0]], dtype=torch.float64)
labels = torch.tensor([0, 0, 1])
v = torch.tensor([[1.0, 0.5], [-0.25, 1.0], [0.75, -1.0]], dtype=torch.float64) * x.abs().clamp(min=1.0)


def loss(t: float) -> float:
    return float(loss_fn(x + t * v, labels))


embeddings = x.clone().requires_grad_(True)
loss_fn(embeddings, labels).backward()
autograd = float((v * embeddings.grad).sum())

h = 2.0**-10
d = [(loss(step) - loss(-step)) / (2 * step) for step in (h, h / 2, h / 4)]
r1, r2 = (4 * d[1] - d[0]) / 3, (4 * d[2] - d[1]) / 3
e = 64 * U * GAMMA * (2 + M) * (2 - M)
allowed = abs(r1 - r2) + 6 * e / h

print(f"observed: d loss / d embeddings along v = {autograd!r} (autograd, float64)")
print(f"exact:    d loss / d embeddings along v = {r2!r} (the derivative of pml's own float64 loss: central "
      f"differences at h = 2^-10, h/2, h/4, Richardson-extrapolated; error bound {allowed:.2g})")
sys.exit(0 if abs(autograd - r2) <= allowed else 1)
