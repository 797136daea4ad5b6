#!/usr/bin/env python3
"""kornia.DiceLoss (kornia 0.9.0): invalid_input, validation-gap

does not validate its inputs: eps = -1, which shrinks the Dice ratio's denominator sum p + sum y + eps (to 0
where sum p + sum y = 1: a division by zero; two classes, one pixel: a loss of 0 for a prediction of 1/2)
gives a value instead of raising (eps is documented as a scalar added to the denominator for numerical
stability)

lossguard's 'invalid_input' property on this example, float64: result = 0., but should be an exception
[smooth=-1.0: smooth must be non-negative]

Recorded against kornia 0.9.0 (implementations/bindings/kornia.toml/.py, binding 'kornia.DiceLoss'); generated
by `lossguard repro`. Standalone: needs only kornia, torch and the standard library.
Exit status: 1 while the defect is present, 0 once it is fixed.
"""

from __future__ import annotations

import sys

import torch
from kornia.losses import DiceLoss

DTYPE = torch.float64


def array(values, requires_grad=False):
    """float64 values rounded to DTYPE, as a training run in DTYPE holds them."""
    return torch.tensor(values, dtype=torch.float64).to(DTYPE).requires_grad_(requires_grad)


input = array([[[[0.0]], [[0.0]]]], requires_grad=True)
target = torch.tensor([[[0]]], dtype=torch.int64)


def compute():
    loss_fn = DiceLoss(eps=-1.0, ignore_index=None)
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
