#!/usr/bin/env python3
"""monai.BoxGIoULoss (monai 1.6.1): reduction, convention

BoxGIoULoss computes in float32 (box_pair_giou casts the boxes to COMPUTE_DTYPE = torch.float32, 'to avoid
overflow' in monai.data.box_utils) and casts the result back: a float64 input gets a float64 tensor holding a
float32 result (GIoU accurate to 2^-24, not 2^-53); the loss's docstring does not say so

Where it shows: every float64 input (computed in float32).
lossguard's 'reduction' property on this example, float64: 'sum' = np.float64(2.229308605194092), but should
be np.float64(2.229308545589447) [error 6.11e+06 ulps of the computation's scale > 8 allowed in float64]

Recorded against monai 1.6.1 (implementations/bindings/monai.toml/.py, binding 'monai.BoxGIoULoss'); generated
by `lossguard repro`. Standalone: needs only monai, torch and the standard library.
Exit status: 1 while the defect is present, 0 once it is fixed.
"""

from __future__ import annotations

import sys

import torch
from monai.losses import BoxGIoULoss

DTYPE = torch.float64


def array(values, requires_grad=False):
    """float64 values rounded to DTYPE, as a training run in DTYPE holds them."""
    return torch.tensor(values, dtype=torch.float64).to(DTYPE).requires_grad_(requires_grad)


boxes1 = array(
    [
        [0.06, 0.25, 1.59, 1.73],
        [1.34, 1.29, 2.87, 2.37],
        [1.23, 0.77, 1.93, 2.35],
        [1.99, 1.96, 3.28, 2.93],
    ], requires_grad=True,
)
boxes2 = array(
    [
        [0.05, 0.24, 1.58, 1.72],
        [1.73, 1.68, 3.26, 2.76],
        [1.66, 1.2, 2.36, 2.78],
        [1.85, 1.82, 3.14, 2.79],
    ], requires_grad=True,
)
loss_fn = BoxGIoULoss(reduction='sum')
out = loss_fn(boxes1, boxes2)

value = out.detach()
observed = float(value)
# what the property's identity requires of the library's other calls, as lossguard computed it at generation
exact = 2.229308545589447
# lossguard's allowance for this element in float64
tolerance = 1.5615979107833137e-13
print(f"observed: loss = {observed!r} (float64)")
print(f"exact:    loss = {exact!r}")
sys.exit(0 if abs(observed - exact) <= tolerance else 1)
