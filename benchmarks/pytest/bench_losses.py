"""pytest-benchmark: forward + backward of every implementation of a loss, side by side (one group per loss).

A quick local comparison, and a pull-request gate against a baseline saved in the same job (README, "Compare
implementations")::

    git checkout $BASE && pytest benchmarks/pytest --bench-family regression --benchmark-save=base
    git checkout $HEAD && pytest benchmarks/pytest --bench-family regression \\
        --benchmark-compare=0001 --benchmark-compare-fail=median:25%

The call is ``lossguard.harness.app.measure.prepare``'s: the problem, the binding's adaptations and the backward
are those of the asv suite and of ``lossguard bench``; pytest-benchmark does the sampling.
"""

from __future__ import annotations

import pytest

from lossguard.harness.app import measure
from lossguard.harness.kernel.model import Implementation


def test_forward_backward(benchmark, case: tuple[Implementation, str, str, str]) -> None:
    impl, size, dtype, device = case
    try:
        call = measure.prepare(impl, impl.loss, size, dtype, device)
    except measure.Unavailable as reason:
        pytest.skip(str(reason))
    benchmark.group = f"{impl.loss} ({size}, {dtype}, {device})"
    benchmark.extra_info.update(loss=impl.loss, kind=impl.kind, size=size)
    benchmark(call.forward_backward)
