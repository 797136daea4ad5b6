#!/usr/bin/env python3
"""monai.FocalLoss (monai 1.6.1): gradient, convention

FocalLoss casts its inputs to float32 (input = input.float() in forward) whatever their dtype: a float64 input
gets a float32 result (value and gradient accurate to float32's roundoff, 2^-24, not float64's), undocumented

Where it shows: every float64 input (computed in float32).
lossguard's 'gradient' property on this example, float64: d loss / d input at index (0, 0) =
np.float64(0.7310585975646973), but should be np.float64(0.7310585786300049) [error 9.85e+07 ulps of the
computation's scale > 8 allowed in float64]

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


input = array([[1.0]], requires_grad=True)
target = array([[0.0]])
loss_fn = FocalLoss(alpha=None, gamma=0.0, reduction='none')
out = loss_fn(input, target)

out.backward(torch.ones_like(out))
value = out.detach()
observed = float(input.grad[0, 0])
# lossguard's float64 reference at generation time
exact = 0.7310585786300049
# lossguard's allowance for this element in float64
tolerance = 3.0749777455518853e-15
print(f"observed: d loss / d input[0, 0] = {observed!r} (float64)")
print(f"exact:    d loss / d input[0, 0] = {exact!r}")
sys.exit(0 if abs(observed - exact) <= tolerance else 1)
