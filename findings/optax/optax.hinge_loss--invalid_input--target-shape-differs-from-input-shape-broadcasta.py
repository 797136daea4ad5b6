#!/usr/bin/env python3
"""optax.hinge_loss (optax 0.2.8): invalid_input, validation-gap

a target of another shape is broadcast without a word ((N,) outputs against (N, 1) targets give an N x N
loss); unlike its regression and sigmoid losses, hinge_loss does not document broadcasting

lossguard's 'invalid_input' property on this example, float64: result = [[0.5 2.5]  [1.5 0. ]], but should be
an exception [target shape differs from input shape (broadcastable)]

Recorded against optax 0.2.8 (implementations/bindings/optax.toml/.py, binding 'optax.hinge_loss'); generated
by `lossguard repro`. Standalone: needs only optax, jax and NumPy and the standard library.
Exit status: 1 while the defect is present, 0 once it is fixed.
"""

from __future__ import annotations

import sys

import jax
import jax.numpy as jnp
import numpy as np
from optax.losses import hinge_loss

jax.config.update("jax_enable_x64", True)  # float64 as the float64 dtype, not float32

DTYPE = jnp.float64


def array(values):
    """float64 values rounded to DTYPE (through float32, as torch rounds), as a training run in DTYPE holds them."""
    values = np.asarray(values, dtype=np.float64)
    if DTYPE is not jnp.float64:
        values = values.astype(np.float32).astype(DTYPE)
    return jnp.asarray(values)


input = array([0.5, -1.5])
target = array([[1.0], [-1.0]])


def loss():
    out = hinge_loss(input, target)
    return out

try:
    out = jax.jit(loss)()
except Exception as problem:  # the invalid input is rejected: fixed
    print(f"observed: {type(problem).__name__}: {problem}")
    print("exact:    an exception (target shape differs from input shape (broadcastable))")
    sys.exit(0)
print(f"observed: a loss of {np.asarray(out, dtype=np.float64).tolist()} (no exception)")
print("exact:    an exception (target shape differs from input shape (broadcastable))")
sys.exit(1)
