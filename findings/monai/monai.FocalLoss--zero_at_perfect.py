#!/usr/bin/env python3
"""monai.FocalLoss (monai 1.6.1): zero_at_perfect, convention

FocalLoss casts its inputs to float32 (input = input.float() in forward) whatever their dtype: a float64 input
gets a float32 result (value and gradient accurate to float32's roundoff, 2^-24, not float64's), undocumented

Where it shows: every float64 input (computed in float32).
lossguard's 'zero_at_perfect' property on this example, float64: loss at a sure, right prediction at index (0,
0) = np.float64(1.8048513285848406e-35), but should be np.float64(1.8048513878454153e-35) [error 2.96e+08 ulps
of the computation's scale > 8 allowed in float64]

Recorded against monai 1.6.1 (implementations/bindings/monai.toml/.py, binding 'monai.FocalLoss'); generated
by `lossguard repro`. Standalone: needs only monai, torch and the standard library.
Exit status: 1 while the defect is present, 0 once it is fixed.
"""

from __future__ import annotations

import sys

import torch
from monai.losses import FocalLoss

DTYPE = torch.float64


def array(values, requires_grad=False):
    """float64 values rounded to DTYPE, as a training run in DTYPE holds them."""
    return torch.tensor(values, dtype=torch.float64).to(DTYPE).requires_grad_(requires_grad)


input = array([[80.0]], requires_grad=True)
target = array([[1.0]], requires_grad=True)
loss_fn = FocalLoss(alpha=None, gamma=0.0, reduction='none')
out = loss_fn(input, target)

value = out.detach()
observed = float(value[0, 0])
# lossguard's float64 reference at generation time
exact = 1.8048513878454153e-35
# lossguard's allowance for this element in float64
tolerance = 3.2060601069002375e-50
print(f"observed: loss[0, 0] = {observed!r} (float64)")
print(f"exact:    loss[0, 0] = {exact!r}")
sys.exit(0 if abs(observed - exact) <= tolerance else 1)
