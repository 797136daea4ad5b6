"""The asv benchmarks can run every built-in implementation: valid inputs exist for each catalog entry."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest
import torch

from lossguard.catalog import CATALOG
from lossguard.harness.app.inventory import implementations

# benchmarks/ is asv's benchmark directory, not an installed package: load its inputs module from the checkout
_INPUTS = Path(__file__).resolve().parents[1] / "benchmarks" / "inputs.py"
_spec = importlib.util.spec_from_file_location("lossguard_benchmark_inputs", _INPUTS)
inputs_module = sys.modules[_spec.name] = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(inputs_module)
make_inputs = inputs_module.make_inputs

IMPLEMENTATIONS = implementations("builtin")


@pytest.mark.parametrize("impl", IMPLEMENTATIONS, ids=[impl.name for impl in IMPLEMENTATIONS])
def test_benchmark_inputs_give_a_finite_loss_and_gradient(impl):
    inputs = make_inputs(CATALOG[impl.loss], dtype="float32")
    loss = inputs.requires_grad(True).call(impl.fn)
    assert loss.dim() == 0 or loss.numel() > 0
    assert torch.isfinite(loss).all(), f"{impl.name}: the benchmark inputs give a non-finite loss"
    loss.sum().backward()
    for name in inputs.grad:
        grad = inputs.args[name].grad
        assert grad is not None and torch.isfinite(grad).all(), f"{impl.name}: no finite gradient for {name}"
