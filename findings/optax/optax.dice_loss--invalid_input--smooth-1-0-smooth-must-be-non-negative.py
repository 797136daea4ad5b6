#!/usr/bin/env python3
"""optax.dice_loss (optax 0.2.8): invalid_input, validation-gap

a negative smooth is accepted: the ratio (I + s) / (I + alpha (P - I) + beta (T - I) + s) then crosses 0 / 0
and changes sign (at one pixel of p = 0.5 and target 0.5 with alpha = beta = 1/2 and smooth = -0.5, the loss
is infinite)

lossguard's 'invalid_input' property on this example, float64: result = [[-5.95291501]], but should be an
exception [smooth=-1.0: smooth must be non-negative]

Recorded against optax 0.2.8 (implementations/bindings/optax.toml/.py, binding 'optax.dice_loss'); generated
by `lossguard repro`. Standalone: needs only optax, jax and NumPy and the standard library.
Exit status: 1 while the defect is present, 0 once it is fixed.
"""

from __future__ import annotations

import sys
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from optax.losses import dice_loss

jax.config.update("jax_enable_x64", True)  # float64 as the float64 dtype, not float32

DTYPE = jnp.float64


def array(values):
    """float64 values rounded to DTYPE (through float32, as torch rounds), as a training run in DTYPE holds them."""
    values = np.asarray(values, dtype=np.float64)
    if DTYPE is not jnp.float64:
        values = values.astype(np.float32).astype(DTYPE)
    return jnp.asarray(values)


def _dice_axis(ndim: int, batch: bool) -> tuple[int, ...] | None:
    """The axes optax's dice_loss sums over, classes last: the spatial ones (its default), also the batch's."""
    return tuple(range(ndim - 1)) if batch else None


def _classes_last(array: Any) -> Any:
    import jax.numpy as jnp

    return jnp.moveaxis(array, 1, -1) if array.ndim > 1 else array


# the adapter of lossguard's binding (how the loss is called), copied from implementations.bindings.optax
def dice_classes_last(fn: Any, args: dict[str, Any], keywords: dict[str, Any]) -> Any:
    """optax's dice_loss on (N, *, C) predictions and masks, per (sample, class) ('none'): the catalog's (N, C, *)
    moved classes last, batch=True as optax's ``axis`` over the batch and the spatial axes."""
    batch = keywords.pop("batch", False)
    x, y = _classes_last(args["input"]), _classes_last(args["target"])
    return fn(x, y, reduction="none", axis=_dice_axis(x.ndim, batch), **keywords)


input = array([[[0.5, -1.0]]])
target = array([[[1.0, 0.0]]])


def loss():
    out = dice_classes_last(
    dice_loss,
    {'input': input, 'target': target},
    {'alpha': 0.5, 'beta': 0.5, 'smooth': -1.0, 'batch': False},
)
    return out

try:
    out = jax.jit(loss)()
except Exception as problem:  # the invalid input is rejected: fixed
    print(f"observed: {type(problem).__name__}: {problem}")
    print("exact:    an exception (smooth=-1.0: smooth must be non-negative)")
    sys.exit(0)
print(f"observed: a loss of {np.asarray(out, dtype=np.float64).tolist()} (no exception)")
print("exact:    an exception (smooth=-1.0: smooth must be non-negative)")
sys.exit(1)
