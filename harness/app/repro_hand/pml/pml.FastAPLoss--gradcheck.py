#!/usr/bin/env python3
"""pml.FastAPLoss (pytorch-metric-learning 2.9.0): gradcheck, wrong

at a zero embedding row F.normalize (base_distance.py:75) computes x / max(||x||, 1e-12), whose slope is 1e12:
the backward pass multiplies the histogram pulses' slopes (+-1 / delta = +-2.5) by it, terms that cancel in real
arithmetic, and returns their float64 rounding (-2e-5 along a direction where every label is equal and the loss
is identically 0); x / ||x|| itself has no derivative at 0

Hand-written (the failing number is a directional finite difference, which `lossguard repro` does not generate):
four 1-D embeddings (0, 1, 1, 1), every label 0, float64, along v = (1, 1, 1, 1). With one label there is no
negative, every precision is 1 and the loss is identically 0 wherever the embeddings are (FastAP = 1), so its
derivative along every direction is exactly 0; the script also prints pml's own central difference at h = 2^-7,
0 to rounding. A float64 backward of a constant loss errs by a few u (2^-53) of its terms, which the histogram's
slopes (1 / delta = 2.5) bound: the allowance is 64 u 2.5 sum |v_i|.

Recorded against pytorch-metric-learning 2.9.0 (implementations/bindings/pml.toml/.py, binding 'pml.FastAPLoss');
written by hand for `lossguard repro` (harness/app/repro_hand/). Standalone: needs only pytorch-metric-learning,
torch and the standard library.
Exit status: 1 while the defect is present, 0 once it is fixed.
"""

from __future__ import annotations

import sys

import torch
from pytorch_metric_learning.losses import FastAPLoss

U = 2.0**-53  # float64's unit roundoff
loss_fn = FastAPLoss()
x = torch.tensor([[0.0], [1.0], [1.0], [1.0]], dtype=torch.float64)
labels = torch.tensor([0, 0, 0, 0])
v = torch.ones_like(x)


def loss(t: float) -> float:
    return float(loss_fn(x + t * v, labels))


embeddings = x.clone().requires_grad_(True)
loss_fn(embeddings, labels).backward()
autograd = float((v * embeddings.grad).sum())

h = 2.0**-7
central = (loss(h) - loss(-h)) / (2 * h)
exact = 0.0  # the loss is identically 0: one label, no negative
allowed = 64 * U * 2.5 * float(v.abs().sum())

print(f"observed: d loss / d embeddings along v = {autograd!r} (autograd, float64)")
print(f"exact:    d loss / d embeddings along v = {exact!r} (the loss is identically 0; pml's own central difference "
      f"at h = 2^-7: {central!r}; allowed {allowed:.2g})")
sys.exit(0 if abs(autograd - exact) <= allowed else 1)
