#!/usr/bin/env python3
"""monai.BoxGIoULoss (monai 1.6.1): box_translation_invariance, convention

BoxGIoULoss computes in float32 (box_pair_giou casts the boxes to COMPUTE_DTYPE = torch.float32, 'to avoid
overflow' in monai.data.box_utils) and casts the result back: a float64 input gets a float64 tensor holding a
float32 result (GIoU accurate to 2^-24, not 2^-53); the loss's docstring does not say so

Where it shows: every float64 input (computed in float32).
lossguard's 'box_translation_invariance' property on this example, float64: loss of the boxes translated by
(1.0, 8.0) at index (0,) = np.float64(0.19000035524368286), but should be np.float64(0.19000005722045876)
[error 5.02e+07 ulps of the computation's scale > 8 allowed in float64]

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


boxes1 = array([[1.0, 8.0, 3.0, 9.0]], requires_grad=True)
boxes2 = array([[1.0, 8.0, 2.8, 8.9]], requires_grad=True)
loss_fn = BoxGIoULoss(reduction='none')
out = loss_fn(boxes1, boxes2)

value = out.detach()
observed = float(value[0])
# what the property's identity requires of the library's other calls, as lossguard computed it at generation
exact = 0.19000005722045876
# lossguard's allowance for this element in float64
tolerance = 9.500914902842526e-14
print(f"observed: loss[0] = {observed!r} (float64)")
print(f"exact:    loss[0] = {exact!r}")
sys.exit(0 if abs(observed - exact) <= tolerance else 1)
