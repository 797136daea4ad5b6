#!/usr/bin/env python3
"""monai.TverskyLoss (monai 1.6.1): gradient, nan-inf

float16: the score 1 - (TP + smooth_nr) / (TP + alpha FP + beta FN + smooth_dr) is a quotient whose backward
forms numerator / denominator^2; with a denominator below 2^-12 (smooth 1e-5, an empty prediction) the square
rounds to 0 in float16, the quotient's derivative is -inf, and it meets a 0 in the chain rule (alpha = 0, or
FN's derivative -y at an empty target): d loss / d input is NaN where the exact gradient is 0

Where it shows: some (sample, channel) whose denominator TP + alpha FP + beta FN + smooth is below 2^-12.
lossguard's 'gradient' property on this example, float16: d loss / d input at index (0, 0, 0) =
np.float64(nan), but should be np.float64(0.0) [error inf ulps of the computation's scale > 8 allowed in
float16]

Recorded against monai 1.6.1 (implementations/bindings/monai.toml/.py, binding 'monai.TverskyLoss'); generated
by `lossguard repro`. Standalone: needs only monai, torch and the standard library.
Exit status: 1 while the defect is present, 0 once it is fixed.
"""

from __future__ import annotations

import sys

import torch
from monai.losses import TverskyLoss

DTYPE = torch.float16


def array(values, requires_grad=False):
    """float64 values rounded to DTYPE, as a training run in DTYPE holds them."""
    return torch.tensor(values, dtype=torch.float64).to(DTYPE).requires_grad_(requires_grad)


input = array([[[0.0]]], requires_grad=True)
target = array([[[0.0]]], requires_grad=True)
loss_fn = TverskyLoss(
    alpha=0.0,
    beta=0.0,
    smooth_nr=1.0013580322265625e-05,
    smooth_dr=1.0013580322265625e-05,
    sigmoid=False,
    batch=False,
    reduction='none',
)
out = loss_fn(input, target)

out.backward(torch.ones_like(out))
value = out.detach()
observed = float(input.grad[0, 0, 0])
# lossguard's float64 reference at generation time
exact = 0.0
# lossguard's allowance for this element in float16
tolerance = 0.00048828125
print(f"observed: d loss / d input[0, 0, 0] = {observed!r} (float16)")
print(f"exact:    d loss / d input[0, 0, 0] = {exact!r}")
sys.exit(0 if abs(observed - exact) <= tolerance else 1)
