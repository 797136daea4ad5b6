"""The asv suite's machinery: one ``bench_<family>.py`` per loss family subclasses these (``benchmarks/README``
in the README's "Track speed, memory and accuracy"). Every figure comes from ``lossguard.harness.app.measure``.

Parameters: ``implementation`` (``"<loss>/<name>"`` for every name ``measure.candidates`` lists: the float64
reference, the torch built-in, lossguard's own, every installed library's shipped binding), ``device`` (cuda
is skipped with its reason where absent), ``dtype``, ``size`` (``measure.SIZES``: cross_entropy and
linear_cross_entropy at language-model heads). A combination a measurement cannot be made for (the reference
in float32, JAX memory, a binding that does not take the problem) raises ``NotImplementedError`` in ``setup``,
which asv reports as skipped (``asv run --show-stderr`` shows the reason).

asv runs ``setup`` before every timed call (asv_runner >= 0.3): the prepared call is built once per process
(``_call``, cached) and each ``setup`` only flushes the CUDA L2 cache, and for the backward runs the forward it
differentiates, outside the clock. ``number`` (calls per sample) is calibrated in ``setup`` so that a sample
lasts at least ``measure.MIN_SAMPLE`` (10 ms); calls over half a second get fewer repeats and a longer
timeout. Torch and the BLAS/OpenMP pools run one thread (``measure.single_thread``, and asv.conf.json's
environment for the benchmark processes).

The matrix, with torch 2.14.1 and the audit extras installed: 158 implementations (48 references, 110
implementations) x 2 devices x 2 dtypes x 3 sizes = 1,896 combinations for each of the five time and memory
benchmarks and 632 for accuracy, 10,112 in all, of which about 4,200 are measured on a CPU-only machine (the rest
skip at once: cuda, the reference outside float64, JAX memory and backward). Each measured combination is one
forked process that builds its problem, warms up and calibrates: a ``--quick`` pass over everything is hours on a
loaded 2-core machine, so select with ``--bench`` (a family, ``bench_sequence``; a measurement, ``Accuracy``).
"""

from __future__ import annotations

import functools
from typing import Any

from lossguard.catalog import CATALOG
from lossguard.harness.app import measure

measure.single_thread()

DEVICES = ("cpu", "cuda")
DTYPES = ("float32", "float64")
SIZES = tuple(measure.SIZES)
SLOW = 0.5  # seconds per call: past it a benchmark takes at most 3 samples


def implementations(family: str) -> list[str]:
    """``"<loss>/<name>"`` for every loss of ``family`` and everything measured for it."""
    return [
        f"{loss}/{name}" for loss, spec in CATALOG.items() if spec.family == family for name in measure.candidates(loss)
    ]


@functools.cache
def _call(key: str, device: str, dtype: str, size: str) -> measure.Call:
    loss, name = key.split("/", 1)
    return measure.prepare(name, loss, size, dtype, device)


@functools.cache
def _timing(key: str, device: str, dtype: str, size: str, what: str) -> measure.Timing:
    return measure.time_call(_call(key, device, dtype, size), what, samples=1)


class _Benchmark:
    param_names = ("implementation", "device", "dtype", "size")
    timeout = 900.0  # the language-model head on one CPU thread, JAX's compilation included

    def setup(self, key: str, device: str, dtype: str, size: str) -> None:
        self.call = _call(key, device, dtype, size)  # measure.Unavailable is a NotImplementedError: skipped
        measure.flush_l2(device)


class _Time(_Benchmark):
    """asv's timing of one measurement (``what``), ``number`` calibrated to samples of at least 10 ms."""

    what = "forward_backward"

    def setup(self, key: str, device: str, dtype: str, size: str) -> None:
        super().setup(key, device, dtype, size)
        if self.what == "backward" and self.call.backward is None:
            raise NotImplementedError(f"{key}: a {self.call.framework} call has no separate backward")
        timing = _timing(key, device, dtype, size, self.what)
        self.number = timing.number
        if timing.median > SLOW:
            self.repeat = (1, 3, 60.0)
        self.loss: Any = self.call.forward() if self.what == "backward" else None
        self.call.sync()


class _TimeForward(_Time):
    what = "forward"

    def time_forward(self, *params: str) -> None:
        self.call.forward()
        self.call.sync()


class _TimeBackward(_Time):
    what = "backward"

    def time_backward(self, *params: str) -> None:
        self.call.backward(self.loss)


class _TimeForwardBackward(_Time):
    what = "forward_backward"

    def time_forward_backward(self, *params: str) -> None:
        self.call.forward_backward()


class _Memory(_Benchmark):
    """The loss's own peak memory over a forward + backward, and its amplification (``measure.peak_memory``)."""

    def setup(self, key: str, device: str, dtype: str, size: str) -> None:
        super().setup(key, device, dtype, size)
        self.memory = measure.peak_memory(self.call)
        if self.memory.peak is None:
            raise NotImplementedError(f"{key}: memory {self.memory.how}")

    def track_peak_bytes(self, *params: str) -> int:
        return self.memory.peak

    track_peak_bytes.unit = "bytes"  # type: ignore[attr-defined]

    def track_amplification(self, *params: str) -> float:
        return self.memory.amplification

    track_amplification.unit = "x the differentiated arguments' bytes"  # type: ignore[attr-defined]


class _Accuracy:
    """The worst error of value and gradients in ulps against the float64 reference (``measure.worst_ulps``), on
    the fixed seeded input: an accuracy regression shows on the dashboard as a slowdown does."""

    param_names = ("implementation", "device", "dtype")
    timeout = 300.0

    def setup(self, key: str, device: str, dtype: str) -> None:
        self.loss, self.name = key.split("/", 1)
        if self.name == measure.REFERENCE:
            raise NotImplementedError("the reference is the ground truth accuracy is measured against")
        if device == "cuda" and not measure.torch.cuda.is_available():
            raise NotImplementedError("CUDA is not available on this machine")

    def track_worst_ulps(self, key: str, device: str, dtype: str) -> float:
        return measure.worst_ulps(self.name, self.loss, dtype, device).worst

    track_worst_ulps.unit = "ulps"  # type: ignore[attr-defined]
