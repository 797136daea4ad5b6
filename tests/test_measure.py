"""The measurement core (harness/app/measure.py): each figure checked on a case whose answer is known."""

from __future__ import annotations

import time

import numpy as np
import pytest
import torch

from lossguard.catalog import CATALOG
from lossguard.harness.app import measure
from lossguard.harness.app.inventory import bind

MB = 1_000_000


def _allocate_and_free() -> torch.Tensor:
    """10 MB, then 5 MB while the 10 MB are held, then the 10 MB freed: a peak of exactly 15 MB."""
    first = torch.empty(10 * MB, dtype=torch.uint8)
    second = torch.empty(5 * MB, dtype=torch.uint8)
    del first
    return second


def test_the_profiler_peak_is_the_bytes_the_call_held_at_once():
    assert measure.profiled_peak(_allocate_and_free) == 15 * MB


def test_the_profiler_peak_ignores_what_was_held_before_and_counts_nothing_for_a_no_op():
    held = torch.empty(50 * MB, dtype=torch.uint8)
    assert measure.profiled_peak(lambda: held.view(-1)) == 0
    assert measure.profiled_peak(lambda: torch.empty(3 * MB, dtype=torch.uint8)) == 3 * MB


def test_the_numpy_peak_is_the_bytes_of_an_array_the_call_allocates():
    peak = measure.traced_peak(lambda: np.ones(2 * MB, dtype=np.uint8))
    assert 2 * MB <= peak < 2 * MB + 4096  # the array and its header (a few Python objects besides)


def test_eager_cross_entropy_holds_its_softmax_and_gradient_and_the_loss_memory_is_not_the_process_rss():
    # F.cross_entropy on (N, C) logits: log_softmax's output (1x) and the gradient (1x) at least, each the logits'
    # size; the process itself holds hundreds of MB (torch), which must not count
    call = measure.prepare("torch.nn.functional.cross_entropy", "cross_entropy", "small", "float32")
    memory = measure.peak_memory(call)
    shape = measure.language_model("small")
    assert memory.grad_bytes == shape.tokens * shape.vocabulary * 4
    assert 2.0 <= memory.amplification < 4.0
    assert memory.how == measure.CPU_PROFILER


def test_jax_memory_is_unavailable_with_its_reason():
    name = next((n for n in measure.candidates("huber_loss") if n.startswith("optax.")), None)
    if name is None:
        pytest.skip("optax is not installed")
    memory = measure.peak_memory(measure.prepare(name, "huber_loss", "small", "float32"))
    assert memory.peak is None and memory.amplification is None and "JAX" in memory.how


def test_samples_last_at_least_the_minimum_and_the_median_is_per_call():
    timing = measure.median_time(lambda _: time.sleep(0.002), samples=3)
    assert all(sample * timing.number >= measure.MIN_SAMPLE for sample in timing.samples)
    assert 0.002 <= timing.median < measure.MIN_SAMPLE  # per call, not per sample


def test_a_backward_is_timed_without_its_forward():
    slow_forward = measure.Call(lambda: time.sleep(0.02), lambda _: None, "torch", "cpu", 0)
    assert measure.time_call(slow_forward, "backward", samples=1).median < 0.005  # a sample's wall: 1 s at most
    assert measure.time_call(slow_forward, "forward_backward", samples=1).median >= 0.02


def test_the_language_model_problems_have_the_language_model_shapes():
    shape = measure.language_model("large", "cpu")
    assert shape == (8192, 32_000, 1024)
    assert measure.language_model("large", "cuda").vocabulary == 128_256
    small = measure.language_model("small")
    example = measure.problem("linear_cross_entropy", "small")
    assert example.args["hidden"].shape == (small.tokens, small.hidden)
    assert example.args["weight"].shape == (small.vocabulary, small.hidden)
    assert measure.problem("cross_entropy", "small").args["input"].shape == (small.tokens, small.vocabulary)


def test_problems_grow_with_their_size():
    sizes = [np.size(measure.problem("huber_loss", size).args["input"]) for size in measure.SIZES]
    assert sizes == sorted(sizes) and sizes[0] < sizes[-1]


def test_worst_ulps_is_small_for_torch_and_large_for_a_loss_computed_in_half_precision():
    loss = "huber_loss"
    accurate = measure.worst_ulps("torch.nn.functional.huber_loss", loss, "float32")
    assert accurate.worst <= CATALOG[loss].ulps

    def half(input, target, reduction="mean", delta=1.0):
        low = torch.nn.functional.huber_loss(input.half(), target.half(), reduction=reduction, delta=delta)
        return low.to(input.dtype)

    planted = measure.worst_ulps(bind(loss, half, "planted.half_huber", "user"), loss, "float32")
    assert planted.worst > 100 * CATALOG[loss].ulps
    assert planted.by_output["loss per element"] == planted.worst  # a mean's scale would hide it
    assert {"loss", "d loss / d input", "d loss / d target"} <= set(planted.by_output)


def test_the_reference_is_measured_in_float64_on_the_cpu_only():
    with pytest.raises(measure.Unavailable, match="float64"):
        measure.prepare(measure.REFERENCE, "huber_loss", "small", "float32")
    call = measure.prepare(measure.REFERENCE, "huber_loss", "small", "float64")
    assert measure.peak_memory(call).how == measure.NUMPY_TRACED
    assert measure.worst_ulps(measure.REFERENCE, "huber_loss", "float64").worst == 0.0
