#!/usr/bin/env python3
"""optax.huber_loss (optax 0.2.8): gradient, imprecise

the linear part is formed as |e| - min(|e|, delta) (to avoid 'doubling the gradient'), so for |e| < delta the
gradient is delta + (min(|e|, delta) - delta) sign(e): delta - delta + e, which cancels catastrophically: its
error is u delta, not u |e| (0 instead of e for |e| < u delta: 0 instead of -3.7e-275 in float64; 0 instead of
1e-4 in bfloat16, a relative error of 2e-4 at e = 1e-4 in float32). float16's allowance for underflow (8 times
its smallest normal, 4.9e-4) exceeds the error's bound u delta / 2 = 2.4e-4 at delta = 1: not seen there

Where it shows: some |input - target| < delta / 4.
lossguard's 'gradient' property on this example, float64: d loss / d input at index (0,) =
np.float64(-9.999999999998899e-05), but should be np.float64(-0.0001) [error 992 ulps of the computation's
scale > 8 allowed in float64]

Recorded against optax 0.2.8 (implementations/bindings/optax.toml/.py, binding 'optax.huber_loss'); generated
by `lossguard repro`. Standalone: needs only optax, jax and NumPy and the standard library.
Exit status: 1 while the defect is present, 0 once it is fixed.
"""

from __future__ import annotations

import sys

import jax
import jax.numpy as jnp
import numpy as np
from optax.losses import huber_loss

jax.config.update("jax_enable_x64", True)  # float64 as the float64 dtype, not float32

DTYPE = jnp.float64


def array(values):
    """float64 values rounded to DTYPE (through float32, as torch rounds), as a training run in DTYPE holds them."""
    values = np.asarray(values, dtype=np.float64)
    if DTYPE is not jnp.float64:
        values = values.astype(np.float32).astype(DTYPE)
    return jnp.asarray(values)


input = array([0.0])
target = array([0.0001])


def loss(input, target):
    out = huber_loss(input, target, delta=1.0)
    return out


@jax.jit
def value_and_gradients(*leaves):
    out, backward = jax.vjp(loss, *leaves)
    return out, backward(jnp.ones(out.shape, out.dtype))

out, grads = value_and_gradients(input, target)
value = out
observed = float(grads[0][0])
# lossguard's float64 reference at generation time
exact = -0.0001
# lossguard's allowance for this element in float64
tolerance = 1.7763568394002505e-19
print(f"observed: d loss / d input[0] = {observed!r} (float64)")
print(f"exact:    d loss / d input[0] = {exact!r}")
sys.exit(0 if abs(observed - exact) <= tolerance else 1)
