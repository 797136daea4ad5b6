"""The benchmarks can run every built-in implementation: each catalog entry's problems give a finite loss and
gradient (harness/app/measure.py builds the problems the asv suite, pytest-benchmark and ``lossguard bench`` time)."""

from __future__ import annotations

import pytest
import torch

from lossguard.harness.app import measure
from lossguard.harness.app.inventory import implementations

IMPLEMENTATIONS = implementations("builtin")


@pytest.mark.parametrize("impl", IMPLEMENTATIONS, ids=[impl.name for impl in IMPLEMENTATIONS])
def test_benchmark_problems_give_a_finite_loss_and_gradient(impl):
    call = measure.prepare(impl, impl.loss, "small", "float32")
    loss = call.forward()
    assert loss.dim() == 0 or loss.numel() > 0
    assert torch.isfinite(loss).all(), f"{impl.name}: the benchmark problem gives a non-finite loss"
    call.backward(loss)
    assert call.leaves, f"{impl.name}: nothing to differentiate"
    for leaf in call.leaves:
        assert leaf.grad is not None and torch.isfinite(leaf.grad).all(), f"{impl.name}: no finite gradient"
