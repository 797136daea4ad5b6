"""Deterministic, valid benchmark inputs for every catalog entry (no Hypothesis: same tensors every run).

``make_inputs(spec, n, dtype, device)`` builds the arguments of one realistic call, by hand per argument
layout: element-wise losses get ``n`` elements (default 4096), class losses ``(n, classes)`` logits
(default 256 x 100) with their class-index or label targets. Values lie in each loss's domain
(probabilities in (0, 1), counts >= 0, variances > 0, labels in {0, 1} or {-1, +1}), drawn from a
fixed seed on the CPU and then moved to ``device``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch

from harness.model import LossSpec

SEED = 20240601
ELEMENTS = 4096  # element-wise losses: one batch of 4096 predictions
ROWS, CLASSES = 256, 100  # class losses: (256, 100) logits

DTYPES = {"float32": torch.float32, "float64": torch.float64}


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


def _labels(g: torch.Generator, shape: tuple[int, ...]) -> torch.Tensor:
    return torch.randint(0, 2, shape, generator=g).double()


def _elementwise(name: str, g: torch.Generator, n: int) -> dict[str, torch.Tensor]:
    x = torch.randn(n, generator=g, dtype=torch.float64)
    if name in ("poisson_nll_loss", "tweedie_loss"):  # log-mean input, non-negative count targets
        eta = 0.5 * x
        return {"input": eta, "target": torch.poisson(eta.exp(), generator=g)}
    if name == "gaussian_nll_loss":
        var = 0.1 + torch.rand(n, generator=g, dtype=torch.float64)
        return {"input": x, "target": torch.randn(n, generator=g, dtype=torch.float64), "var": var}
    if name == "binary_cross_entropy":  # probabilities strictly inside (0, 1)
        return {"input": torch.sigmoid(x).clamp(1e-4, 1 - 1e-4), "target": _labels(g, (n,))}
    if name in ("binary_cross_entropy_with_logits", "sigmoid_focal_loss"):
        return {"input": x, "target": _labels(g, (n,))}
    if name == "hinge_loss":
        return {"input": x, "target": 2.0 * _labels(g, (n,)) - 1.0}
    return {"input": x, "target": torch.randn(n, generator=g, dtype=torch.float64)}  # regression


def _classes(name: str, g: torch.Generator, rows: int, classes: int) -> dict[str, torch.Tensor]:
    z = torch.randn(rows, classes, generator=g, dtype=torch.float64)
    index = torch.randint(0, classes, (rows,), generator=g)
    if name == "nll_loss":
        return {"input": torch.log_softmax(z, dim=1), "target": index}
    if name == "kl_div":
        q = torch.randn(rows, classes, generator=g, dtype=torch.float64)
        return {"input": torch.log_softmax(z, dim=1), "target": torch.softmax(q, dim=1)}
    if name == "multilabel_soft_margin_loss":
        return {"input": z, "target": _labels(g, (rows, classes))}
    return {"input": z, "target": index}  # cross_entropy, softmax_focal_loss, multi_margin_loss


CLASS_LOSSES = frozenset(
    {"cross_entropy", "nll_loss", "kl_div", "softmax_focal_loss", "multi_margin_loss", "multilabel_soft_margin_loss"}
)

# parameters that differ from the canonical defaults: kl_div's 'mean' is not a KL (torch warns on every call)
PARAMS: dict[str, dict[str, Any]] = {"kl_div": {"reduction": "batchmean"}}


def make_inputs(spec: LossSpec, n: int | None = None, dtype: str = "float32", device: str = "cpu") -> Inputs:
    """Valid inputs of ``spec``: ``n`` elements (element-wise losses) or ``n`` rows of CLASSES logits."""
    g = torch.Generator().manual_seed(SEED)
    if spec.name in CLASS_LOSSES:
        arrays = _classes(spec.name, g, n or ROWS, CLASSES)
    else:
        arrays = _elementwise(spec.name, g, n or ELEMENTS)
    missing = set(spec.args) - set(arrays)
    if missing:
        raise ValueError(f"no benchmark inputs for {spec.name}'s {sorted(missing)}: add them to benchmarks/inputs.py")
    args = {
        name: arrays[name].to(device=device, dtype=DTYPES[dtype] if arrays[name].is_floating_point() else None)
        for name in spec.args
    }
    grad = tuple(name for name in spec.differentiable if name in args and args[name].is_floating_point())
    return Inputs(args, dict(PARAMS.get(spec.name, {})), grad)
