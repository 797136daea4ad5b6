#!/usr/bin/env python3
"""monai.DiceFocalLoss (monai 1.6.1): gradcheck, imprecise

its focal term casts input and target to float32 (focal_loss.py: input = input.float()) and is added to the
float64 Dice term: a float64 input gets a float64 loss only float32-accurate, and a float32-accurate gradient;
undocumented. The loss's own central differences at gradcheck's small steps are that rounding, not its slope
(lossguard's 'gradcheck' property, float64: autograd 0.0375 along its direction against 1.2e-6 from the loss's
own differences at h = 2^-25).

Hand-written (the failing number is a directional finite difference, which `lossguard repro` does not generate):
one pixel, logit 0, target 0, DiceFocalLoss(sigmoid=True) at its defaults (gamma 2, smooth 1e-5, weights 1),
direction +1. The exact derivative is analytic, float64 with the standard library: the Dice part 1 - s / (p + s)
gives s p (1 - p) / (p + s)^2, the focal part softplus(x) p^2 gives p^3 + 2 p^2 (1 - p) softplus(x).

The central difference D(h) = (f(h) - f(-h)) / 2h of a float64-accurate f errs by at most h^2 M3 / 6 (M3 = 1
bounds |f'''| near 0; it is 0.29 at 0) plus 2 e / 2h, e = 16 u |f| (u = 2^-53) each evaluation's rounding; the
step minimising their sum, (3 e / M3)^(1/3) = 1.8e-5, rounded down to a power of 2, is h = 2^-16. Autograd of a
float64-accurate loss errs by a few u of its terms. MONAI's float32 focal term misses both bounds by 10^5 or more.

Recorded against monai 1.6.1 (implementations/bindings/monai.toml/.py, binding 'monai.DiceFocalLoss'); written
by hand for `lossguard repro` (harness/app/repro_hand/). Standalone: needs only monai, torch and the standard
library.
Exit status: 1 while the defect is present, 0 once it is fixed.
"""

from __future__ import annotations

import math
import sys

import torch
from monai.losses import DiceFocalLoss

U = 2.0**-53  # float64's unit roundoff
X, SMOOTH = 0.0, 1e-5
loss_fn = DiceFocalLoss(sigmoid=True)
target = torch.zeros(1, 1, 1, dtype=torch.float64)


def loss(x: float) -> float:
    return float(loss_fn(torch.full((1, 1, 1), x, dtype=torch.float64), target))


# autograd's derivative along the direction +1
x = torch.full((1, 1, 1), X, dtype=torch.float64, requires_grad=True)
value = loss_fn(x, target)
value.backward()
autograd = float(x.grad.sum())

# the exact derivative, float64 analytic
p = 1.0 / (1.0 + math.exp(-X))
softplus = math.log1p(math.exp(X))
exact = SMOOTH * p * (1 - p) / (p + SMOOTH) ** 2 + p**3 + 2 * p * p * (1 - p) * softplus

# the loss's own central difference at the step its rounding analysis chooses
f = abs(value.item())
rounding = 16 * U * f  # each evaluation of a float64-accurate loss
m3 = 1.0  # a bound on |f'''| near x = 0
h = 2.0 ** math.floor(math.log2((3 * rounding / m3) ** (1 / 3)))
central = (loss(X + h) - loss(X - h)) / (2 * h)
allowed_central = h * h * m3 / 6 + rounding / h
allowed_autograd = 16 * U * (abs(exact) + f)

step = f"2^{math.log2(h):.0f}"
print(f"observed: d loss / d input along +1: autograd {autograd!r}, central difference at h = {step} {central!r}")
print(f"exact:    d loss / d input along +1 = {exact!r} (float64 analytic)")
print(f"allowed:  autograd within {allowed_autograd:.2g}, the central difference within {allowed_central:.2g}")
print(f"errors:   autograd {abs(autograd - exact):.3g}, central difference {abs(central - exact):.3g}")
fixed = abs(autograd - exact) <= allowed_autograd and abs(central - exact) <= allowed_central
sys.exit(0 if fixed else 1)
