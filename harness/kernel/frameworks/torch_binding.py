"""The PyTorch binding: float64 NumPy in, the implementation called on torch tensors, NumPy out.

Everything framework-specific lives here (tensor conversion, autograd, the global state torch
keeps), so properties stay framework-neutral and a JAX binding can sit beside this one.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Iterable
from typing import Any

import numpy as np
import torch

from lossguard.harness.kernel.frameworks.base import (
    GlobalStateChanged,
    ImplementationRaised,
    InputMutated,
    NotDifferentiable,
    Outcome,
    WrongOutput,
)
from lossguard.harness.kernel.model import Example, Implementation
from lossguard.harness.kernel.watch import guarded

TORCH_DTYPES = {
    "float64": torch.float64,
    "float32": torch.float32,
    "float16": torch.float16,
    "bfloat16": torch.bfloat16,
}


def round_to(array: np.ndarray, dtype: str) -> np.ndarray:
    """The float64 values of ``array`` rounded to ``dtype`` (what the implementation will see)."""
    return torch.from_numpy(np.asarray(array, dtype=np.float64)).to(TORCH_DTYPES[dtype]).double().numpy()


_CONVERTERS: dict[type, Callable[[Any, torch.dtype, str], Any]] = {}


def register_converter(kind: type, convert: Callable[[Any, torch.dtype, str], Any]) -> None:
    """Teach the binding the torch form of a framework-neutral parameter object: ``convert(value,
    torch dtype, device)``. The reference describes such an object in NumPy (the seeded feature
    extractor of ``perceptual_loss``), an implementation builds its torch module, and the application,
    which knows both, registers the pair (the kernel knows no concrete loss)."""
    _CONVERTERS[kind] = convert


def to_torch(value: Any, dtype: str, device: str) -> Any:
    """A NumPy array as a tensor in ``dtype`` on ``device``; a framework-neutral object (a seeded feature
    extractor) as its torch form in that dtype and device; anything else unchanged."""
    convert = _CONVERTERS.get(type(value))
    if convert is not None:
        return convert(value, TORCH_DTYPES[dtype], device)
    if isinstance(value, np.generic):
        value = np.asarray(value)
    if not isinstance(value, np.ndarray):
        return value
    if np.issubdtype(value.dtype, np.floating):
        return torch.tensor(value, dtype=TORCH_DTYPES[dtype], device=device)
    if value.dtype == np.bool_:
        return torch.tensor(value, device=device)
    return torch.tensor(value, dtype=torch.int64, device=device)


def _global_state(include_rng: bool) -> dict[str, Any]:
    state = {
        "default dtype": torch.get_default_dtype(),
        "grad mode": torch.is_grad_enabled(),
        "number of threads": torch.get_num_threads(),
        "deterministic algorithms": torch.are_deterministic_algorithms_enabled(),
        "anomaly detection": torch.is_anomaly_enabled(),
    }
    if include_rng:
        state["CPU random-number-generator state"] = torch.get_rng_state()
    return state


def _restore(state: dict[str, Any]) -> None:
    torch.set_default_dtype(state["default dtype"])
    torch.set_grad_enabled(state["grad mode"])
    torch.set_num_threads(state["number of threads"])
    torch.use_deterministic_algorithms(state["deterministic algorithms"])
    torch.autograd.set_detect_anomaly(state["anomaly detection"])
    if "CPU random-number-generator state" in state:
        torch.set_rng_state(state["CPU random-number-generator state"])


def _changed(before: dict[str, Any], after: dict[str, Any]) -> list[str]:
    changed = []
    for key, old in before.items():
        new = after[key]
        same = torch.equal(old, new) if isinstance(old, torch.Tensor) else old == new
        if not same:
            changed.append(key if isinstance(old, torch.Tensor) else f"{key} ({old} -> {new})")
    return changed


def _same(a: torch.Tensor, b: torch.Tensor) -> bool:
    return (
        a.shape == b.shape
        and a.dtype == b.dtype
        and bool(torch.equal(a.isnan(), b.isnan()))
        and bool(torch.equal(torch.nan_to_num(a, nan=0.0), torch.nan_to_num(b, nan=0.0)))
    )


class TorchBinding:
    """Calls a torch implementation; see ``lossguard.harness.kernel.frameworks.base`` for the contract."""

    name = "torch"

    def versions(self) -> dict[str, str]:
        return {"torch": torch.__version__}

    def devices(self) -> dict[str, str | None]:
        """Device -> None if usable here, else the reason it is not."""
        cuda = None if torch.cuda.is_available() else "CUDA is not available on this machine"
        return {"cpu": None, "cuda": cuda}

    def round(self, array: np.ndarray, dtype: str) -> np.ndarray:
        return round_to(array, dtype)

    @staticmethod
    def moveaxis(tensor: Any, source: int, destination: int) -> Any:
        """``tensor`` with axis ``source`` moved to ``destination`` (a binding's input layout), differentiably."""
        return torch.movedim(tensor, source, destination)

    @guarded
    def call(
        self,
        impl: Implementation,
        arg_names: Iterable[str],
        example: Example,
        dtype: str,
        device: str = "cpu",
        grad: Iterable[str] = (),
        watch_inputs: bool = False,
        requires_grad: bool = True,
    ) -> Outcome:
        """Call ``impl`` on ``example`` converted to ``dtype`` on ``device``.

        grad: names (arguments or array parameters) whose gradient of the summed output is
        returned. watch_inputs: compare every tensor argument before and after the call.
        requires_grad: whether float arguments are passed with requires_grad (immutability is
        checked both ways).
        """
        arg_names = tuple(arg_names)
        grad = tuple(grad)
        args = {name: to_torch(example.args[name], dtype, device) for name in arg_names if name in example.args}
        params = {name: to_torch(value, dtype, device) for name, value in example.params.items()}
        leaves: dict[str, torch.Tensor] = {}
        for name in grad:
            tensor = args.get(name, params.get(name))
            if isinstance(tensor, torch.Tensor) and tensor.is_floating_point():
                leaves[name] = tensor.requires_grad_(requires_grad)
        if requires_grad and not grad:
            for tensor in args.values():
                if isinstance(tensor, torch.Tensor) and tensor.is_floating_point():
                    tensor.requires_grad_(True)
        tensors = {k: v for k, v in {**args, **params}.items() if isinstance(v, torch.Tensor)}
        originals = {k: v.detach().clone() for k, v in tensors.items()} if watch_inputs else {}
        before = _global_state(include_rng=True)
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                if impl.call is not None:
                    out = impl.call(impl.fn, args, params)
                else:
                    out = impl.fn(*[args[name] for name in arg_names if name in args], **params)
        except Exception as exc:
            _restore(before)
            raise ImplementationRaised(exc) from exc
        after = _global_state(include_rng=True)
        changed = _changed(before, after)
        if changed:
            _restore(before)
            raise GlobalStateChanged(f"the call changed global state: {', '.join(changed)}")
        if watch_inputs:
            mutated = [k for k, v in tensors.items() if not _same(v.detach(), originals[k])]
            if mutated:
                raise InputMutated(f"the call modified its input(s) in place: {', '.join(mutated)}")
        if not isinstance(out, torch.Tensor):
            raise WrongOutput(f"returned {type(out).__name__}, not a tensor")
        out_dtype = str(out.dtype).replace("torch.", "")
        value = out.detach().to("cpu", torch.float64).numpy()
        grads = self._gradients(out, leaves)
        return Outcome(value=value, grads=grads, dtype=out_dtype)

    @staticmethod
    def _gradients(out: torch.Tensor, leaves: dict[str, torch.Tensor]) -> dict[str, np.ndarray]:
        if not leaves:
            return {}
        if not out.requires_grad:
            raise NotDifferentiable(f"the output does not depend differentiably on {', '.join(leaves)}")
        try:
            computed = torch.autograd.grad(
                out, list(leaves.values()), grad_outputs=torch.ones_like(out), allow_unused=True
            )
        except Exception as exc:
            raise ImplementationRaised(exc) from exc
        return {
            name: (np.zeros(tuple(leaf.shape)) if g is None else g.detach().to("cpu", torch.float64).numpy())
            for (name, leaf), g in zip(leaves.items(), computed, strict=True)
        }
