#!/usr/bin/env python3
"""monai.BoxGIoULoss (monai 1.6.1): box_loss_range, convention

BoxGIoULoss computes in float32 (box_pair_giou casts the boxes to COMPUTE_DTYPE = torch.float32, 'to avoid
overflow' in monai.data.box_utils) and casts the result back: a float64 input gets a float64 tensor holding a
float32 result (GIoU accurate to 2^-24, not 2^-53); the loss's docstring does not say so

Where it shows: every float64 input (computed in float32).
lossguard's 'box_loss_range' property on this example, float64: loss at row 0 = np.float64(0.0), but should be
>= the iou_loss np.float64(5.9604641222676946e-08)

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


boxes1 = array([[0.0, 0.0, 2.0, 1.0]], requires_grad=True)
boxes2 = array([[0.0, 0.0, 2.0, 1.0]], requires_grad=True)
loss_fn = BoxGIoULoss(reduction='none')
out = loss_fn(boxes1, boxes2)

value = out.detach()
observed = float(value[0])
# lossguard's float64 reference at generation time
exact = 5.9604641222676946e-08
# lossguard's allowance for this element in float64
tolerance = 8.704147771907458e-14
print(f"observed: loss[0] = {observed!r} (float64)")
print(f"exact:    loss[0] = {exact!r}")
sys.exit(0 if observed >= exact - tolerance else 1)
