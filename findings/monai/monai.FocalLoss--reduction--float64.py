#!/usr/bin/env python3
"""monai.FocalLoss (monai 1.6.1): reduction, imprecise

FocalLoss casts its inputs to float32 (input = input.float() in forward) whatever their dtype: a float64 input
gets a float32 result (value and gradient accurate to float32's roundoff, 2^-24, not float64's), undocumented

Where it shows: every float64 input (computed in float32).
lossguard's 'reduction' property on this example, float64: 'sum' = np.float64(2.4813289642333984), but should
be np.float64(2.4813291202299297) [error 8.67e+07 ulps of the computation's scale > 8 allowed in float64]

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


input = array([[[0.3], [1.7]], [[-0.4], [2.2]]], requires_grad=True)
target = array([[[0.0], [1.0]], [[1.0], [0.0]]], requires_grad=True)
loss_fn = FocalLoss(alpha=None, gamma=2.0, reduction='sum')
out = loss_fn(input, target)

value = out.detach()
observed = float(value)
# what the property's identity requires of the library's other calls, as lossguard computed it at generation
exact = 2.4813291202299297
# lossguard's allowance for this element in float64
tolerance = 2.8780940323575344e-14
print(f"observed: loss = {observed!r} (float64)")
print(f"exact:    loss = {exact!r}")
sys.exit(0 if abs(observed - exact) <= tolerance else 1)
