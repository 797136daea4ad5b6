#!/usr/bin/env python3
"""optax.dice_loss (optax 0.2.8): gradient, nan-inf

float16: the ratio's gradient is NaN where its denominator d is below 2^-8: JAX differentiates n / d as -n
d^-2, and d^-2 overflows float16 (65504) to inf, times the zero weight of a term (alpha = 0, or an empty mask)
NaN, where the exact gradient is finite (0 at alpha = beta = 0, a loss identically 0)

Where it shows: some (sample, channel) with TP + alpha FP + beta FN + smooth below 2^-8 (within 1%).
lossguard's 'gradient' property on this example, float16: d loss / d input at index (0, 0) = np.float64(nan),
but should be np.float64(0.0) [error inf ulps of the computation's scale > 8 allowed in float16]

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

DTYPE = jnp.float16


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


input = array([[0.0]])
target = array([[0.0]])


def loss(input, target):
    out = dice_classes_last(
    dice_loss,
    {'input': input, 'target': target},
    {'alpha': 0.0, 'beta': 0.0, 'smooth': 0.00390625, 'batch': False},
)
    return out


@jax.jit
def value_and_gradients(*leaves):
    out, backward = jax.vjp(loss, *leaves)
    return out, backward(jnp.ones(out.shape, out.dtype))

out, grads = value_and_gradients(input, target)
value = out
observed = float(grads[0][0, 0])
# lossguard's float64 reference at generation time
exact = 0.0
# lossguard's allowance for this element in float16
tolerance = 0.00048828125
print(f"observed: d loss / d input[0, 0] = {observed!r} (float16)")
print(f"exact:    d loss / d input[0, 0] = {exact!r}")
sys.exit(0 if abs(observed - exact) <= tolerance else 1)
