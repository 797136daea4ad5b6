"""asv benchmarks: time and memory of every built-in implementation, per dtype and device.

Parameterised over every implementation of ``lossguard.harness.app.inventory.implementations("builtin")`` (torch
built-ins and lossguard's own), float32 and float64, and cpu and cuda; cuda runs only where
``torch.cuda.is_available()`` (elsewhere ``setup`` raises NotImplementedError, which asv reports as
skipped). Inputs are a realistic batch from ``benchmarks.inputs``: the entry's own seeded example, its rows
repeated to about 65536 elements (or the entry's ``benchmark`` builder), the same tensors on every run.
CUDA timings synchronise after each call.

    asv run --quick --python=same        # one pass on this interpreter
    asv run                              # every commit of the configured branch
"""

from __future__ import annotations

import torch

from lossguard.catalog import CATALOG
from lossguard.harness.app.inventory import implementations

from .inputs import make_inputs

IMPLEMENTATIONS = {impl.name: impl for impl in implementations("builtin")}
NAMES = list(IMPLEMENTATIONS)
DTYPES = ["float32", "float64"]
DEVICES = ["cpu", "cuda"]


class _Loss:
    params = (NAMES, DTYPES, DEVICES)
    param_names = ("implementation", "dtype", "device")
    timeout = 120

    def setup(self, name: str, dtype: str, device: str) -> None:
        if device == "cuda" and not torch.cuda.is_available():
            raise NotImplementedError("CUDA is not available on this machine")
        impl = IMPLEMENTATIONS[name]
        self.fn = impl.fn
        self.inputs = make_inputs(CATALOG[impl.loss], dtype=dtype, device=device)
        self.sync = torch.cuda.synchronize if device == "cuda" else _nothing
        self.forward_backward()  # warm-up (CUDA context, kernel caches) and a check that the call works

    def forward(self) -> torch.Tensor:
        with torch.no_grad():
            loss = self.inputs.call(self.fn)
        self.sync()
        return loss

    def forward_backward(self) -> None:
        self.inputs.requires_grad(True).zero_grad()
        loss = self.inputs.call(self.fn)
        loss.backward()
        self.sync()


def _nothing() -> None:
    pass


class TimeLoss(_Loss):
    """Wall time of one forward call (no autograd) and of one forward + backward."""

    def time_forward(self, name: str, dtype: str, device: str) -> None:
        self.forward()

    def time_forward_backward(self, name: str, dtype: str, device: str) -> None:
        self.forward_backward()


class MemLoss(_Loss):
    """Peak resident memory of the process over a forward + backward (asv's peakmem: host memory)."""

    def peakmem_forward_backward(self, name: str, dtype: str, device: str) -> None:
        self.forward_backward()


class CudaMemLoss(_Loss):
    """Peak CUDA memory allocated by torch during a forward + backward, in bytes (cuda only)."""

    unit = "bytes"

    def setup(self, name: str, dtype: str, device: str) -> None:
        if device != "cuda":
            raise NotImplementedError("CUDA memory is measured on cuda only")
        super().setup(name, dtype, device)

    def track_cuda_peak_bytes_forward_backward(self, name: str, dtype: str, device: str) -> int:
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
        before = torch.cuda.memory_allocated()
        self.forward_backward()
        return torch.cuda.max_memory_allocated() - before
