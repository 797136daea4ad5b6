#!/usr/bin/env python3
"""monai.FocalLoss (monai 1.6.1): invalid_input, validation-gap

does not validate its inputs: gamma = -1 gives a value instead of raising (documented as the exponent of the
focal term)

lossguard's 'invalid_input' property on this example, float64: result = [[1.79638362]], but should be an
exception [gamma=-1.0: gamma must be non-negative]

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
    loss_fn = FocalLoss(alpha=None, gamma=-1.0, reduction='none')
    out = loss_fn(input, target)
    return out

try:
    out = compute()
except Exception as problem:  # the invalid input is rejected: fixed
    print(f"observed: {type(problem).__name__}: {problem}")
    print("exact:    an exception (gamma=-1.0: gamma must be non-negative)")
    sys.exit(0)
print(f"observed: a loss of {out.detach().double().tolist()} (no exception)")
print("exact:    an exception (gamma=-1.0: gamma must be non-negative)")
sys.exit(1)
