"""Hypothesis strategies that construct valid loss inputs (never filter them), per family.

An *example builder* has the signature ``(draw, dtype, regime, accepted, fixed) -> Example``:
``dtype`` bounds magnitudes so that exact results stay representable (float16 overflows at
65504), ``regime`` is "typical" or "extreme" (|logits| up to 1e4 and beyond, probabilities of
exactly 0 and 1, huge residuals, values at thresholds), ``accepted`` names the parameters the
implementation accepts (the others stay at their canonical defaults) and ``fixed`` pins some
parameters (a property's domain, e.g. reduction='none').

The strategies are built once per distinct argument (``lru_cache``) and reused for every example: a strategy
object Hypothesis has seen is validated once, while one built afresh per draw is validated, and its emptiness and
labels computed, on every draw (a fifth of a check's time before they were cached). A strategy is immutable and
draws the same choices whichever object it is, so the cache changes no example.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from functools import lru_cache
from typing import Any

import numpy as np
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

REDUCTIONS = ("none", "mean", "sum")

# magnitude caps per dtype and regime: exact losses (squares, exps) of these stay representable
_REAL_CAP = {"float16": (20.0, 40.0), "bfloat16": (100.0, 1e15), "float32": (100.0, 1e15), "float64": (100.0, 1e150)}
# float16 stops at 2e3: the exact losses of a few classes must stay below its 65504 overflow
_LOGIT_CAP = {"float16": (30.0, 2e3), "bfloat16": (30.0, 1e4), "float32": (30.0, 1e6), "float64": (30.0, 1e8)}


def cap(table: Mapping[str, tuple[float, float]], dtype: str, regime: str) -> float:
    typical, extreme = table[dtype]
    return extreme if regime == "extreme" else typical


_CACHE = 1024  # distinct strategies kept per factory: the shapes and bounds of a run are a few dozen


def mixed(bound: float, specials: Iterable[float]) -> st.SearchStrategy[float]:
    """Uniform-ish floats within +-bound, mixed with special values (boundaries, tiny, huge)."""
    # keyed by the values' exact bits (float.hex): equal keys (0.0 == -0.0, 1 == 1.0) must not share a strategy
    return _mixed(float(bound).hex(), tuple(float(v).hex() for v in specials))


@lru_cache(maxsize=_CACHE)
def _mixed(bound_bits: str, special_bits: tuple[str, ...]) -> st.SearchStrategy[float]:
    bound = float.fromhex(bound_bits)
    special = [v for v in map(float.fromhex, special_bits) if abs(v) <= bound]
    return st.one_of(
        st.floats(-bound, bound, allow_nan=False, allow_infinity=False, allow_subnormal=False),
        st.sampled_from(special),
    )


def reals(dtype: str, regime: str) -> st.SearchStrategy[float]:
    """Real values (regression inputs and targets)."""
    bound = cap(_REAL_CAP, dtype, regime)
    return mixed(bound, (0.0, 1.0, -1.0, 0.5, 1e-3, -1e-3, 1e-8, bound, -bound, bound / 3))


def logits(dtype: str, regime: str) -> st.SearchStrategy[float]:
    """Logits; the extreme regime reaches |z| = 1e4 and beyond (capped for half precision)."""
    bound = cap(_LOGIT_CAP, dtype, regime)
    return mixed(bound, (0.0, 1.0, -1.0, 20.0, -20.0, 40.0, -40.0, 100.0, -100.0, 1e4, -1e4, bound, -bound))


@lru_cache(maxsize=_CACHE)
def probabilities(regime: str) -> st.SearchStrategy[float]:
    """Values in [0, 1]; the extreme regime favours exactly 0 and 1 and values next to them."""
    edges = [0.0, 1.0, 1e-30, 1 - 1e-7, 1e-7, 0.5]
    if regime == "extreme":
        return st.sampled_from(edges)
    return st.one_of(st.floats(0.0, 1.0), st.sampled_from(edges))


@lru_cache(maxsize=_CACHE)
def open_unit(regime: str) -> st.SearchStrategy[float]:
    """Values in (0, 1) with room for a logarithm: probabilities for gradients of log p."""
    edges = [1e-6, 1 - 1e-6, 0.5] if regime == "extreme" else [0.5, 0.1, 0.9]
    return st.one_of(st.floats(1e-3, 1 - 1e-3), st.sampled_from(edges))


@lru_cache(maxsize=_CACHE)
def arrays(dtype: type, shape: tuple[int, ...], elements: st.SearchStrategy[Any]) -> st.SearchStrategy[np.ndarray]:
    """Arrays of ``dtype`` and ``shape`` with ``elements`` (one strategy object per distinct argument)."""
    return hnp.arrays(dtype, shape, elements=elements)


def array(draw: Callable, shape: tuple[int, ...], elements: st.SearchStrategy[float]) -> np.ndarray:
    return draw(arrays(np.float64, tuple(shape), elements))


@lru_cache(maxsize=_CACHE)
def _shapes(min_dims: int, max_dims: int) -> st.SearchStrategy[tuple[int, ...]]:
    return hnp.array_shapes(min_dims=min_dims, max_dims=max_dims, min_side=1, max_side=4)


def batch_shape(draw: Callable, min_dims: int = 1, max_dims: int = 3) -> tuple[int, ...]:
    """A small shape whose first dimension is the batch."""
    return draw(_shapes(min_dims, max_dims))


@st.composite
def _built(draw: Callable, build: Callable[[Callable], Any]) -> Any:
    return build(lambda strategy, label=None: draw(strategy))


def built(build: Callable[[Callable], Any]) -> st.SearchStrategy[Any]:
    """``build(draw)`` as one strategy: drawn with ``st.data()``'s ``draw`` it is one interactive draw, its inner
    draws plain ones. Each interactive draw pays Hypothesis' bookkeeping (a check that it left the global random
    state alone, a span for its explanation, a note when printing a failure), which cost more than a small loss
    call when every array and parameter of an example was drawn so; the choices drawn are the same. ``draw``'s
    ``label`` (a builder's name for a draw) is dropped: only the interactive draw's notes use one."""
    return _built(build)


def draw_params(
    draw: Callable,
    strategies: Mapping[str, st.SearchStrategy[Any]],
    defaults: Mapping[str, Any],
    accepted: frozenset[str],
    fixed: Mapping[str, Any],
) -> dict[str, Any]:
    """Parameters of one call: fixed ones, drawn ones the implementation accepts, else defaults.

    Only accepted parameters are passed to the implementation; the reference sees the defaults
    of the others explicitly, so both compute the same thing.
    """
    params: dict[str, Any] = {}
    for name, default in defaults.items():
        if name in fixed:
            params[name] = fixed[name]
        elif name in accepted and name in strategies:
            params[name] = draw(strategies[name], label=name)
        else:
            params[name] = default
    return params


@lru_cache(maxsize=1)
def reduction() -> st.SearchStrategy[str]:
    return st.sampled_from(REDUCTIONS)


@lru_cache(maxsize=_CACHE)
def integers(low: int, high: int) -> st.SearchStrategy[int]:
    """``st.integers(low, high)``, one strategy object per distinct bounds."""
    return st.integers(low, high)


_EXTRA_DIMS = st.sampled_from([(), (), (2,), (2, 2)])


def sizes(draw: Callable, classes: tuple[int, int] = (2, 5)) -> tuple[int, int, tuple[int, ...]]:
    """(batch N, classes C, extra dims *) for (N, C, *) inputs."""
    n = draw(integers(1, 4), label="N")
    c = draw(integers(*classes), label="C")
    extra = draw(_EXTRA_DIMS, label="extra dims")
    return n, c, extra


@lru_cache(maxsize=_CACHE)
def _class_choices(n_classes: int, ignore_index: int | None) -> st.SearchStrategy[int]:
    choices = st.integers(0, n_classes - 1)
    if ignore_index is not None:
        choices = st.one_of(choices, st.integers(0, n_classes - 1), st.just(ignore_index))
    return choices


def class_indices(draw: Callable, shape: tuple[int, ...], n_classes: int, ignore_index: int | None) -> np.ndarray:
    """Integer class indices; some set to ``ignore_index`` when one is given."""
    return draw(arrays(np.int64, tuple(shape), _class_choices(n_classes, ignore_index)), label="target")


_SHARES = st.one_of(st.floats(0.0, 1.0), st.sampled_from([0.0, 1.0, 1e-12]))


def distributions(draw: Callable, shape: tuple[int, ...], axis: int, regime: str) -> np.ndarray:
    """Non-negative arrays that sum to 1 along ``axis`` (class probabilities); may contain zeros."""
    raw = array(draw, shape, _SHARES)
    if regime == "extreme":
        raw = np.where(raw > 0.5, 1.0, 0.0)
    raw = raw + (np.sum(raw, axis=axis, keepdims=True) == 0) * np.eye(shape[axis])[0].reshape(
        [-1 if i == axis % len(shape) else 1 for i in range(len(shape))]
    )
    return raw / np.sum(raw, axis=axis, keepdims=True)
