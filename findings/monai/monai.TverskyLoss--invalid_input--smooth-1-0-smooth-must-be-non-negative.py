#!/usr/bin/env python3
"""monai.TverskyLoss (monai 1.6.1): invalid_input, validation-gap

does not validate its inputs: smooth_nr = smooth_dr = -1 (the quotient's denominator can reach 0) gives a
value instead of raising (documented as 'a small constant ... to avoid nan')

lossguard's 'invalid_input' property on this example, float64: result = [[-1.]], but should be an exception
[smooth=-1.0: smooth must be non-negative]

Recorded against monai 1.6.1 (implementations/bindings/monai.toml/.py, binding 'monai.TverskyLoss'); generated
by `lossguard repro`. Standalone: needs only monai, torch and the standard library.
Exit status: 1 while the defect is present, 0 once it is fixed.
"""

from __future__ import annotations

import sys

import torch
from monai.losses import TverskyLoss

DTYPE = torch.float64


def array(values, requires_grad=False):
    """float64 values rounded to DTYPE, as a training run in DTYPE holds them."""
    return torch.tensor(values, dtype=torch.float64).to(DTYPE).requires_grad_(requires_grad)


input = array([[[0.25]]], requires_grad=True)
target = array([[[1.0]]], requires_grad=True)


def compute():
    loss_fn = TverskyLoss(
    alpha=0.5,
    beta=0.5,
    smooth_nr=-1.0,
    smooth_dr=-1.0,
    sigmoid=False,
    batch=False,
    reduction='none',
)
    out = loss_fn(input, target)
    return out

try:
    out = compute()
except Exception as problem:  # the invalid input is rejected: fixed
    print(f"observed: {type(problem).__name__}: {problem}")
    print("exact:    an exception (smooth=-1.0: smooth must be non-negative)")
    sys.exit(0)
print(f"observed: a loss of {out.detach().double().tolist()} (no exception)")
print("exact:    an exception (smooth=-1.0: smooth must be non-negative)")
sys.exit(1)
