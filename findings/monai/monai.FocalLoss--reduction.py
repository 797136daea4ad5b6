#!/usr/bin/env python3
"""monai.FocalLoss (monai 1.6.1): reduction, wrong

reduction='sum' is documented as 'the output will be summed' but returns the sum over (sample, class) of the
mean over the spatial axes (loss.mean(dim=spatial).sum(), kept for 'backwards compatibility' in the source),
and with no spatial axis (torch.mean over dim=[] is the mean of every element) the mean: 2 x 2 zero logits,
targets 0: 0.693 (the mean) instead of the sum 4 log 2 = 2.77

Where it shows: reduction='sum' with more than one element in some (sample, class)'s spatial mean (or, with no
spatial axis, more than one element).
lossguard's 'reduction' property on this example, float64: 'sum' = np.float64(0.6931471824645996), but should
be np.float64(2.7725887298583984) [error 1.69e+15 ulps of the computation's scale > 8 allowed in float64]

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


input = array([[0.0, 0.0], [0.0, 0.0]], requires_grad=True)
target = array([[0.0, 0.0], [0.0, 0.0]], requires_grad=True)
loss_fn = FocalLoss(alpha=None, gamma=0.0, reduction='sum')
out = loss_fn(input, target)

value = out.detach()
observed = float(value)
# what the property's identity requires of the library's other calls, as lossguard computed it at generation
exact = 2.7725887298583984
# lossguard's allowance for this element in float64
tolerance = 1.9700427758378546e-14
print(f"observed: loss = {observed!r} (float64)")
print(f"exact:    loss = {exact!r}")
sys.exit(0 if abs(observed - exact) <= tolerance else 1)
