"""The pytest-benchmark suite's options, parametrisation and collection (``benchmarks/pytest/bench_*.py``).

Not part of the default test run: ``pytest`` collects ``tests/`` only (``testpaths``), and the files here are named
``bench_*.py``, which this conftest alone collects, when ``benchmarks/pytest`` is given on the command line::

    pytest benchmarks/pytest --bench-loss huber_loss                  # one loss, every implementation
    pytest benchmarks/pytest --bench-family regression --bench-size large

Options: ``--bench-loss NAME`` and ``--bench-family NAME`` (repeatable; default every loss), ``--bench-impl KIND``
(torch, own, third-party, builtin or all, the default), ``--bench-size`` (small, medium: the default, large),
``--bench-device`` (cpu: the default, or cuda), ``--bench-dtype`` (default float32). Torch and the BLAS/OpenMP
libraries run on one thread (``measure.single_thread``).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from lossguard.harness.app.inventory import KINDS
from lossguard.harness.app.measure import SIZES, single_thread
from lossguard.harness.kernel.model import DTYPES


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("lossguard benchmarks", "the implementations benchmarked (benchmarks/pytest)")
    group.addoption("--bench-loss", action="append", metavar="NAME", help="only this loss (repeatable)")
    group.addoption("--bench-family", action="append", metavar="NAME", help="only this family (repeatable)")
    group.addoption("--bench-impl", default="all", choices=KINDS, help="implementation kind (default all)")
    group.addoption("--bench-size", default="medium", choices=tuple(SIZES), help="problem size (default medium)")
    group.addoption("--bench-device", default="cpu", choices=("cpu", "cuda"), help="default cpu")
    group.addoption("--bench-dtype", default="float32", choices=DTYPES, help="default float32")


def pytest_configure(config: pytest.Config) -> None:
    single_thread()


def pytest_collect_file(file_path: Path, parent: pytest.Collector) -> pytest.Module | None:
    if file_path.suffix == ".py" and file_path.name.startswith("bench_"):
        return pytest.Module.from_parent(parent, path=file_path)
    return None


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """Parametrise ``case`` (implementation, size, dtype, device) over the selected implementations."""
    if "case" not in metafunc.fixturenames:
        return
    from lossguard.catalog import CATALOG
    from lossguard.harness.app.inventory import implementations

    option = metafunc.config.getoption
    losses, families = option("--bench-loss"), option("--bench-family")
    unknown = [n for n in losses or () if n not in CATALOG]
    if unknown:
        raise pytest.UsageError(f"--bench-loss: unknown loss {unknown[0]!r}; run 'lossguard list' for the catalog")
    known = sorted({spec.family for spec in CATALOG.values()})
    unknown = [f for f in families or () if f not in known]
    if unknown:
        raise pytest.UsageError(f"--bench-family: unknown family {unknown[0]!r}; choose from {', '.join(known)}")
    where = (option("--bench-size"), option("--bench-dtype"), option("--bench-device"))
    cases = [
        (impl, *where)
        for impl in implementations(option("--bench-impl"))
        if (not losses or impl.loss in losses) and (not families or CATALOG[impl.loss].family in families)
    ]
    metafunc.parametrize("case", cases, ids=[f"{impl.loss}-{impl.name}" for impl, *_ in cases])
