"""The shared machinery of every float64 reference: element-wise terms, reduction, gradients.

A reference is written once, element-wise, as a function with the loss's canonical signature
that returns :class:`Terms`: the element-wise losses (the ``reduction='none'`` output), the
*error scale* of each element, and the denominator of ``'mean'``. :func:`loss_reference`
turns it into the public function (which honours ``reduction`` and returns a NumPy array),
in the manner of PyTorch OpInfo's ``loss_reference_reduction_wrapper``.

Error scale (the tolerance policy's "scale of the computation")
----------------------------------------------------------------
For an element whose straightforward floating-point evaluation cancels (``1 - IoU``,
``log cosh e`` near 0, ``(1 - y) z + softplus(-z)``), the achievable absolute error is a few
units of the working precision *times the magnitude of the terms before cancellation*, not
times the tiny result. ``Terms.scale`` is that magnitude, derived per loss in its module. An
implementation computing in a dtype with unit roundoff ``u`` is then allowed an error of
``K * u * scale`` (``lossguard.harness.kernel.tolerance``), where ``K`` is a small, documented count of
roundings. Reductions add the classical summation bound (Higham, *Accuracy and Stability of
Numerical Algorithms*, 2nd ed., eq. 4.4): a sum of ``n`` terms computed in any order has an
error of at most ``gamma_(n-1) * sum |v_i| <= (n - 1) u sum |v_i|`` (to first order), which
:func:`reduce_scale` folds into the reduced scale.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable, Mapping
from typing import Any, NamedTuple

import numpy as np
from scipy.special import expit

REDUCTIONS = ("none", "mean", "sum")


class Terms(NamedTuple):
    """Element-wise losses of one call, before reduction.

    values: the ``reduction='none'`` output (float64).
    scale: same shape, >= |values|: magnitude of the terms before cancellation (see module doc).
    normaliser: the denominator of ``'mean'`` (default: the number of elements); ``'batchmean'``
        is handled by the losses that accept it, through this field too.
    """

    values: np.ndarray
    scale: np.ndarray
    normaliser: float | None = None


class Gradient(NamedTuple):
    """Gradient of the *sum* of the element-wise losses with respect to one argument.

    value: the gradient, shaped like the argument.
    scale: same shape: magnitude of the terms of its evaluation (error scale, as for Terms).
    """

    value: np.ndarray
    scale: np.ndarray


def _normaliser(terms: Terms) -> float:
    return float(terms.values.size if terms.normaliser is None else terms.normaliser)


def reduce_values(terms: Terms, reduction: str) -> np.ndarray:
    """Reduce element-wise losses as PyTorch does: none, sum, or sum / normaliser ('mean').

    A 'mean' over zero contributing elements (normaliser 0) is NaN, as in PyTorch.
    """
    if reduction == "none":
        return np.asarray(terms.values, dtype=np.float64)
    total = np.sum(terms.values, dtype=np.float64)
    if reduction == "sum":
        return np.asarray(total)
    if reduction in ("mean", "batchmean"):
        denominator = _normaliser(terms)
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.asarray(total / denominator if denominator else np.nan)
    raise ValueError(f"reduction must be one of {REDUCTIONS}, got {reduction!r}")


def reduce_scale(terms: Terms, reduction: str) -> np.ndarray:
    """The error scale of the reduced value, in units of the working precision's roundoff.

    none: the element scales. sum: sum of element scales + (n - 1) sum |v_i| (summation bound,
    Higham eq. 4.4). mean: that divided by the normaliser, plus |mean| for the final division.
    """
    scale = np.maximum(np.asarray(terms.scale, dtype=np.float64), np.abs(terms.values))
    if reduction == "none":
        return scale
    n = max(terms.values.size - 1, 0)
    total = np.sum(scale) + n * np.sum(np.abs(terms.values))
    if reduction == "sum":
        return np.asarray(total)
    denominator = _normaliser(terms)
    value = reduce_values(terms, reduction)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.asarray(total / denominator + np.abs(value) if denominator else np.nan)


def _reduction_of(signature: inspect.Signature, bound: inspect.BoundArguments) -> str:
    if "reduction" in signature.parameters:
        return bound.arguments["reduction"]
    return "mean"


class LossReference:
    """A float64 reference loss built from an element-wise function returning :class:`Terms`.

    Calling it gives the reduced value (what the canonical loss returns). ``error_scale`` gives
    the matching error scale; ``grad`` the gradients of the returned value with respect to every
    differentiable argument (for 'none': of the sum of the outputs), with their error scales.
    """

    def __init__(self, elementwise: Callable[..., Terms]):
        functools.update_wrapper(self, elementwise)
        self._elementwise = elementwise
        self._gradient: Callable[..., Mapping[str, Gradient]] | None = None
        self.differentiable: tuple[str, ...] = ()
        self.signature = inspect.signature(elementwise)

    def _bind(self, args: tuple, kwargs: dict) -> inspect.BoundArguments:
        bound = self.signature.bind(*args, **kwargs)
        bound.apply_defaults()
        return bound

    def terms(self, *args: Any, **kwargs: Any) -> Terms:
        """The element-wise terms (values, scale, normaliser) of one call."""
        bound = self._bind(args, kwargs)
        reduction = _reduction_of(self.signature, bound)
        if reduction not in (*REDUCTIONS, "batchmean"):
            raise ValueError(f"reduction must be one of {REDUCTIONS}, got {reduction!r}")
        return self._elementwise(*bound.args, **bound.kwargs)

    def __call__(self, *args: Any, **kwargs: Any) -> np.ndarray:
        bound = self._bind(args, kwargs)
        return reduce_values(self.terms(*args, **kwargs), _reduction_of(self.signature, bound))

    def error_scale(self, *args: Any, **kwargs: Any) -> np.ndarray:
        """Error scale of the reduced value (units of roundoff), shaped like the value."""
        bound = self._bind(args, kwargs)
        return reduce_scale(self.terms(*args, **kwargs), _reduction_of(self.signature, bound))

    def gradient(self, *arguments: str) -> Callable[[Callable[..., Mapping[str, Gradient]]], Callable]:
        """Decorator registering the analytic gradient of the *sum* of the element-wise losses.

        ``arguments`` names the differentiable arguments; the decorated function has the loss's
        signature and returns ``{name: Gradient}`` for them (some may be omitted when absent,
        e.g. an optional ``weight`` that is None).
        """

        def register(function: Callable[..., Mapping[str, Gradient]]) -> Callable:
            self._gradient = function
            self.differentiable = arguments
            return function

        return register

    def grad(self, *args: Any, **kwargs: Any) -> dict[str, Gradient]:
        """Gradients of the reduced value: the sum's gradient, divided by the normaliser for 'mean'."""
        if self._gradient is None:
            raise NotImplementedError(f"{self.__name__} has no analytic gradient")
        bound = self._bind(args, kwargs)
        reduction = _reduction_of(self.signature, bound)
        grads = dict(self._gradient(*bound.args, **bound.kwargs))
        if reduction in ("mean", "batchmean"):
            denominator = _normaliser(self.terms(*args, **kwargs))
            with np.errstate(invalid="ignore", divide="ignore"):
                factor = 1.0 / denominator if denominator else np.nan
            grads = {k: Gradient(g.value * factor, np.abs(g.scale * factor)) for k, g in grads.items()}
        return grads


def loss_reference(elementwise: Callable[..., Terms]) -> LossReference:
    """Turn an element-wise reference (canonical signature, returns Terms) into a LossReference."""
    return LossReference(elementwise)


def sum_to_shape(gradient: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    """Sum a gradient computed on a broadcast shape back to the shape of the broadcast argument."""
    gradient = np.asarray(gradient)
    while gradient.ndim > len(shape):
        gradient = gradient.sum(axis=0)
    for axis, size in enumerate(shape):
        if size == 1 and gradient.shape[axis] != 1:
            gradient = gradient.sum(axis=axis, keepdims=True)
    return gradient.reshape(shape)


def sigmoid(x: np.ndarray) -> np.ndarray:
    """1 / (1 + exp(-x)) to an ulp (4u) for every x, subnormal results included: scipy's ``expit`` flushes
    to 0 below x = -709.8 (exp(x) still a subnormal down to -745); there 1 + exp(x) rounds to 1 and the
    sigmoid is exp(x) (relative difference exp(x) < 2^-1000), used from x < -40 (exp(x) < 2^-57)."""
    x = np.asarray(x, dtype=np.float64)
    with np.errstate(under="ignore"):
        return np.where(x < -40.0, np.exp(np.minimum(x, 0.0)), expit(x))


def softplus(x: np.ndarray) -> np.ndarray:
    """log(1 + exp(x)), exact to a few ulps for every finite x (no overflow)."""
    return np.logaddexp(0.0, x)


def log_softmax(z: np.ndarray, axis: int = -1) -> tuple[np.ndarray, np.ndarray]:
    """(log_softmax(z), logsumexp(z)) along ``axis``, by the max-shifted log-sum-exp."""
    m = np.max(z, axis=axis, keepdims=True)
    m = np.where(np.isfinite(m), m, 0.0)
    lse = m + np.log(np.sum(np.exp(z - m), axis=axis, keepdims=True))
    return z - lse, lse
