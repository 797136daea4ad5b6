#!/usr/bin/env python3
"""monai.FocalLoss (monai 1.6.1): agreement, convention

FocalLoss casts its inputs to float32 (input = input.float() in forward) whatever their dtype: a float64 input
gets a float32 result (value and gradient accurate to float32's roundoff, 2^-24, not float64's), undocumented

Where it shows: every float64 input (computed in float32).
lossguard's 'agreement' property on this example, float64: output dtype = float32, but should be float64 [the
input dtype]

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
observed = str(out.dtype).replace('torch.', '')
# the input's dtype, as the contract asks
exact = 'float64'
print(f"observed: output dtype {observed}")
print(f"exact:    output dtype {exact}")
sys.exit(0 if observed == exact else 1)
