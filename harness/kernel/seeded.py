"""Deterministic examples of a catalog entry outside a property run: benchmark inputs, catalog checks.

The entry's own examples builder (``LossSpec.examples``) is the one source of valid inputs; here it runs
under Hypothesis with a fixed seed (derandomized, no database, generation only, no constants of loaded
modules: ``profiles.seed_only_generation``), so the same seed gives the same example on every run and
machine for a given Hypothesis version. ``benchmark_example`` scales that example to a realistic size (its
rows repeated) and applies the entry's optional ``benchmark`` builder, for losses whose realistic call
differs (the language-model head of linear_cross_entropy).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import numpy as np
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from lossguard.harness.kernel.model import Example, LossSpec
from lossguard.harness.kernel.profiles import seed_only_generation

SEED = 20240601
ELEMENTS = 1 << 16  # benchmark size: elements of the first argument (a (256, 256) batch of logits, say)

Choose = Callable[[Mapping[str, st.SearchStrategy[Any]]], dict[str, Any]]


def canonical(spec: LossSpec) -> Choose:
    """A ``choose`` that draws nothing: every parameter at its canonical default."""
    return lambda strategies: dict(spec.params)


def seeded_examples(
    spec: LossSpec,
    count: int = 8,
    seed: int = SEED,
    dtype: str = "float32",
    regime: str = "typical",
    choose: Choose | None = None,
) -> list[Example]:
    """Up to ``count`` examples of ``spec`` from its examples builder, the same ones for the same arguments."""
    found: list[Example] = []
    seed_only_generation()

    def build(data: Any) -> None:
        found.append(spec.examples(data.draw, dtype, regime, choose or canonical(spec)))

    build._hypothesis_internal_add_digest = f"{spec.name}|{seed}|{dtype}|{regime}".encode()  # the seed
    run = settings(
        derandomize=True,
        database=None,
        max_examples=count,
        phases=[Phase.generate],
        deadline=None,
        suppress_health_check=list(HealthCheck),
        print_blob=False,
    )(build)
    given(st.data())(run)()
    return found


def _size(example: Example) -> int:
    return sum(np.size(a) for a in example.args.values() if a is not None)


def seeded_example(
    spec: LossSpec,
    seed: int = SEED,
    dtype: str = "float32",
    choose: Choose | None = None,
    usable: Callable[[Example], bool] | None = None,
    seeds: int = 8,
) -> Example:
    """One typical example of ``spec``: of the first few its builder gives for ``seed`` (then ``seed + 1``, ...
    while none is ``usable``), the largest usable one."""
    for attempt in range(seeds):
        examples = seeded_examples(spec, seed=seed + attempt, dtype=dtype, choose=choose)
        for example in sorted(examples, key=_size, reverse=True):  # stable: the first of equal sizes first
            if usable is None or usable(example):
                return example
    last = seed + seeds - 1
    raise ValueError(f"the examples builder of {spec.name!r} gave no usable example for seeds {seed}..{last}")


def scaled(example: Example, elements: int) -> Example:
    """The example with its rows repeated so that its first argument has about ``elements`` elements.

    The rows of every array argument sharing the first argument's leading size are repeated together
    (row i is row i mod N), so paired arguments stay paired; the other arguments are kept as they are.
    """
    arrays = {k: np.asarray(v) for k, v in example.args.items() if v is not None}
    first = next(iter(arrays.values()))
    if first.ndim == 0 or first.shape[0] == 0:
        return example
    n = first.shape[0]
    rows = max(n, elements // max(first.size // n, 1))
    index = np.arange(rows) % n
    return example.replace({k: np.take(a, index, axis=0) for k, a in arrays.items() if a.ndim >= 1 and a.shape[0] == n})


def first_rows(rows: int) -> Callable[[Example, np.random.Generator], Example]:
    """A ``benchmark`` builder keeping the first ``rows`` rows: for a loss quadratic in its batch (pairwise
    distances or similarities), whose realistic batch is far smaller than an element-wise loss's."""

    def build(example: Example, rng: np.random.Generator) -> Example:
        arrays = {k: np.asarray(v) for k, v in example.args.items() if v is not None}
        n = np.shape(next(iter(arrays.values())))[0]
        return example.replace({k: a[:rows] for k, a in arrays.items() if a.ndim >= 1 and a.shape[0] == n})

    return build


def benchmark_example(
    spec: LossSpec, elements: int = ELEMENTS, seed: int = SEED, usable: Callable[[Example], bool] | None = None
) -> Example:
    """A realistic call of ``spec``: a seeded example at canonical parameters (``usable`` where given: the
    benchmarks ask for one on which every implementation is finite, to time the regular path), scaled to
    ``elements``, then the entry's ``benchmark`` builder (given a generator seeded with ``seed``) if any."""

    def built(example: Example) -> Example:
        return example if spec.benchmark is None else spec.benchmark(example, np.random.default_rng(seed))

    check = None if usable is None else lambda example: usable(built(example))  # judged as it will be called
    return built(scaled(seeded_example(spec, seed=seed, usable=check), elements))
