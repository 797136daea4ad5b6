"""Pieces shared by catalog entries: example builders, invalid-input cases, kinks, perfect predictions."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from functools import lru_cache
from types import MappingProxyType
from typing import Any

import numpy as np
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from lossguard.harness.kernel import strategies as S
from lossguard.harness.kernel.model import ErrorCase, Example, LossSpec

Choose = Callable[[Mapping[str, st.SearchStrategy[Any]]], dict[str, Any]]
ValueStrategy = Callable[[str, str], st.SearchStrategy[float]]

ANYWHERE: Mapping[str, Any] = MappingProxyType({})  # a tag whose property holds for every parameter

# the generic properties every entry has; entries add family identities and domain-limited ones
GENERIC = ("agreement", "gradient", "reduction", "batch", "stability", "immutability", "invalid_input", "device")


def tags(*names: str, **restricted: Mapping[str, Any]) -> dict[str, Mapping[str, Any]]:
    """Property tags: the generic ones, ``names`` (hold everywhere), ``restricted`` (hold under params)."""
    return {**dict.fromkeys((*GENERIC, *names), ANYWHERE), **restricted}


def without(tagset: dict[str, Mapping[str, Any]], *names: str) -> dict[str, Mapping[str, Any]]:
    return {k: v for k, v in tagset.items() if k not in names}


def family_entry(**defaults: Any) -> Callable[..., LossSpec]:
    """The entry factory of a family: ``LossSpec`` with the family's defaults filled in (as PyTorch OpInfo's
    ``BinaryUfuncInfo`` holds a family's defaults), so that each entry states only what differs from them.
    A keyword given to the factory overrides the family's default (``perfect=None``: this one has none)."""

    def entry(**fields: Any) -> LossSpec:
        return LossSpec(**{**defaults, **fields})

    return entry


def elementwise(
    input: ValueStrategy = S.reals,
    target: ValueStrategy = S.reals,
    params: Mapping[str, st.SearchStrategy[Any]] | None = None,
    thresholds: Callable[[dict[str, Any]], list[float]] | None = None,
    shaped: Callable[[tuple[int, ...]], Mapping[str, st.SearchStrategy[Any]]] | None = None,
) -> Callable[..., Example]:
    """Builder for losses whose input and target have one shape.

    thresholds: residuals (input - target) worth hitting exactly, from the drawn parameters
    (Huber's delta): the extreme regime sets some targets so that the residual is exactly there.
    shaped: strategies of array parameters (weights) given the input's shape.
    """
    strategies = {"reduction": S.reduction(), **(params or {})}

    def build(draw: Callable, dtype: str, regime: str, choose: Choose) -> Example:
        shape = S.batch_shape(draw)
        x = S.array(draw, shape, input(dtype, regime))
        t = S.array(draw, shape, target(dtype, regime))
        chosen = choose({**strategies, **(shaped(shape) if shaped else {})})
        if thresholds and regime == "extreme":
            at = np.array([v * s for v in thresholds(chosen) for s in (1, -1)])
            mask = S.array(draw, shape, st.sampled_from([0.0, 1.0])) > 0
            t = np.where(mask, x - at[np.arange(x.size).reshape(shape) % at.size], t)
        return Example({"input": x, "target": t}, chosen)

    return build


def reshaped_target(example: Example) -> Example:
    """input (..., ) with target (..., 1): a different shape that broadcasts — must raise."""
    t = example.args["target"]
    return example.replace({"target": t.reshape((*t.shape, 1))})


SHAPE_MISMATCH = ErrorCase("target shape differs from input shape (broadcastable)", reshaped_target)


def param_case(name: str, value: Any, why: str) -> ErrorCase:
    return ErrorCase(f"{name}={value!r}: {why}", lambda ex: ex.replace(**{name: value}), needs=(name,))


def residual_zero(example: Example, eps: float) -> np.ndarray:
    """Kink of |e| at e = 0 (l1, smooth_l1 with beta = 0, quantile)."""
    return np.asarray(example.args["input"]) == np.asarray(example.args["target"])


def no_kinks(example: Example, eps: float) -> np.ndarray:
    return np.zeros(np.shape(example.args["input"]), dtype=bool)


def perfect_regression(example: Example, strength: float) -> Example:
    """target = input: every regression loss is exactly 0 there."""
    return example.replace({"target": np.array(example.args["input"], copy=True)})


def optional_array(shape: tuple[int, ...], elements: st.SearchStrategy[float]) -> st.SearchStrategy[Any]:
    """None or an array of ``shape`` (optional weights)."""
    return st.one_of(st.none(), hnp.arrays(np.float64, shape, elements=elements))


@lru_cache(maxsize=1024)  # one strategy object per argument: Hypothesis validates it once (kernel/strategies.py)
def weights(shape: tuple[int, ...]) -> st.SearchStrategy[Any]:
    """None, or positive weights shaped like ``shape`` or like its last dimension (broadcast)."""
    elements = positive(0.1, 5.0, (1.0, 0.5))
    return st.one_of(optional_array(shape, elements), optional_array(shape[-1:], elements))


@lru_cache(maxsize=1024)
def positive(low: float = 1e-3, high: float = 10.0, specials: tuple[float, ...] = (1.0,)) -> st.SearchStrategy[float]:
    return st.one_of(st.floats(low, high), st.sampled_from(specials))


def sweep_residual(s: np.ndarray) -> Example:
    """input = s against target 0: the loss as a function of the residual."""
    return Example({"input": s, "target": np.zeros_like(s)}, {"reduction": "none"})


def sweep_logit(s: np.ndarray) -> Example:
    """A logit s for a positive label: the binary losses as a function of the logit."""
    return Example({"input": s, "target": np.ones_like(s)}, {"reduction": "none"})


def sweep_class_logit(s: np.ndarray) -> Example:
    """Logits (s, 0, 0) with class 0 the right one: the softmax losses as a function of its logit."""
    z = np.zeros((s.size, 3))
    z[:, 0] = s
    return Example({"input": z, "target": np.zeros(s.size, dtype=np.int64)}, {"reduction": "none"})
