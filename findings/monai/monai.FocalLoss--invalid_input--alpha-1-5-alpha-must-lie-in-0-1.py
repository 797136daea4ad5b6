#!/usr/bin/env python3
"""monai.FocalLoss (monai 1.6.1): invalid_input, validation-gap

does not validate its inputs: alpha = 1.5 gives a value instead of raising (documented: 'The value should be
in [0, 1]')

lossguard's 'invalid_input' property on this example, float64: result = [[-0.65663087]], but should be an
exception [alpha=1.5: alpha must lie in [0, 1]]

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


def compute():
    loss_fn = FocalLoss(alpha=1.5, gamma=0.0, reduction='none')
    out = loss_fn(input, target)
    return out

try:
    out = compute()
except Exception as problem:  # the invalid input is rejected: fixed
    print(f"observed: {type(problem).__name__}: {problem}")
    print("exact:    an exception (alpha=1.5: alpha must lie in [0, 1])")
    sys.exit(0)
print(f"observed: a loss of {out.detach().double().tolist()} (no exception)")
print("exact:    an exception (alpha=1.5: alpha must lie in [0, 1])")
sys.exit(1)
