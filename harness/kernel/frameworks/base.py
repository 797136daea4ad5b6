"""The framework-neutral binding contract: NumPy in, the implementation called natively, NumPy out.

A binding (``torch_binding.TorchBinding`` now; a JAX binding fits the same contract) provides:
``versions()``, ``devices()`` (device -> None or why unusable), ``round(array, dtype)`` (the
float64 values an implementation in ``dtype`` sees), ``moveaxis(array, source, destination)`` (differentiable,
for a binding's input layout), and ``call(impl, arg_names, example,
dtype, device, grad, watch_inputs, requires_grad) -> Outcome``, raising the exceptions of
``lossguard.harness.kernel.failures`` when the judged code misbehaves.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from lossguard.harness.kernel.failures import (
    GlobalStateChanged,
    ImplementationRaised,
    InputMutated,
    NotDifferentiable,
    WrongOutput,
)

__all__ = [
    "GlobalStateChanged",
    "ImplementationRaised",
    "InputMutated",
    "NotDifferentiable",
    "Outcome",
    "WrongOutput",
]


@dataclass(frozen=True)
class Outcome:
    """What one call produced: the loss as float64, gradients by name, and the output's dtype."""

    value: np.ndarray
    grads: dict[str, np.ndarray] = field(default_factory=dict)
    dtype: str = "float64"
