"""Deterministic, valid benchmark inputs for every catalog entry, from the entry's own examples builder.

``make_inputs(spec, n, dtype, device)`` is ``lossguard.harness.kernel.seeded.benchmark_example``: an example
of the entry drawn by its examples builder under a fixed seed at the canonical parameters, its rows repeated
until its first argument has about ``n`` elements (default ``ELEMENTS``), then the entry's ``benchmark``
builder where it has one (the (2048, 128) x (8192, 128) language-model head of linear_cross_entropy,
kl_div's 'batchmean'). The same tensors on every run; nothing here is keyed by a loss's name, so a new
catalog entry is benchmarked as soon as it exists.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from lossguard.harness.app.inventory import implementations  # (also registers the torch parameter objects)
from lossguard.harness.kernel.frameworks.torch_binding import to_torch
from lossguard.harness.kernel.model import Example, LossSpec
from lossguard.harness.kernel.seeded import ELEMENTS, benchmark_example


@dataclass
class Inputs:
    """The arguments of one call (canonical names, in order), its parameters, and the arguments to
    differentiate in a backward pass."""

    args: dict[str, torch.Tensor]
    params: dict[str, Any]
    grad: tuple[str, ...]

    def call(self, fn: Callable[..., torch.Tensor]) -> torch.Tensor:
        return fn(*self.args.values(), **self.params)

    def requires_grad(self, flag: bool = True) -> Inputs:
        for name in self.grad:
            self.args[name].requires_grad_(flag)
        return self

    def zero_grad(self) -> None:
        for name in self.grad:
            self.args[name].grad = None


def _at_default(spec: LossSpec, name: str, value: Any) -> bool:
    """Whether ``value`` is the canonical default of parameter ``name`` (then it is not passed)."""
    if name in spec.supplied or name not in spec.params:
        return False
    default = spec.params[name]
    if isinstance(value, np.ndarray) or isinstance(default, np.ndarray):
        return False
    return value is default or (type(value) is type(default) and value == default)


def _inputs(spec: LossSpec, example: Example, dtype: str, device: str) -> Inputs:
    args = {name: to_torch(example.args[name], dtype, device) for name in spec.args}
    params = {k: to_torch(v, dtype, device) for k, v in example.params.items() if not _at_default(spec, k, v)}
    grad = tuple(name for name in spec.differentiable if name in args and args[name].is_floating_point())
    return Inputs(args, params, grad)


def _finite_everywhere(spec: LossSpec) -> Callable[[Example], bool]:
    """Whether every built-in implementation of ``spec`` gives a finite loss and gradients on an example in
    float32 (a benchmark times the regular path, not a boundary where some return inf)."""
    fns = [impl.fn for impl in implementations("builtin") if impl.loss == spec.name]

    def usable(example: Example) -> bool:
        for fn in fns:
            inputs = _inputs(spec, example, "float32", "cpu").requires_grad(True)
            try:
                loss = inputs.call(fn)
                loss.sum().backward()
            except Exception:
                return False
            grads = [inputs.args[name].grad for name in inputs.grad]
            if not torch.isfinite(loss).all() or any(g is None or not torch.isfinite(g).all() for g in grads):
                return False
        return True

    return usable


def make_inputs(spec: LossSpec, n: int | None = None, dtype: str = "float32", device: str = "cpu") -> Inputs:
    """Valid inputs of ``spec`` in ``dtype`` on ``device``: about ``n`` elements in its first argument."""
    example = benchmark_example(spec, elements=n or ELEMENTS, usable=_finite_everywhere(spec))
    return _inputs(spec, example, dtype, device)
