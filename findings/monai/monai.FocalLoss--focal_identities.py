#!/usr/bin/env python3
"""monai.FocalLoss (monai 1.6.1): focal_identities, convention

FocalLoss casts its inputs to float32 (input = input.float() in forward) whatever their dtype: a float64 input
gets a float32 result (value and gradient accurate to float32's roundoff, 2^-24, not float64's), undocumented

Where it shows: every float64 input (computed in float32).
lossguard's 'focal_identities' property on this example, float64: focal = [[1.3132617473602295]], but should
be <= cross-entropy = [[1.3132616875182228]]

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
target = array([[0.0]], requires_grad=True)
loss_fn = FocalLoss(alpha=None, gamma=0.0, reduction='none')
out = loss_fn(input, target)

value = out.detach()
observed = float(value[0, 0])
# lossguard's float64 reference at generation time
exact = 1.3132616875182228
# lossguard's allowance for this element in float64
tolerance = 2.3328213805453096e-15
print(f"observed: loss[0, 0] = {observed!r} (float64)")
print(f"exact:    loss[0, 0] = {exact!r}")
sys.exit(0 if observed <= exact + tolerance else 1)
