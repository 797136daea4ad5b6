"""Shared argument validation and reduction for the project's own loss implementations.

Every public loss in :mod:`lossguard.implementations.own` validates its arguments *before* computing anything, with
error messages of the form ``"<loss name>: <argument> must be ..., got ..."``.  The helpers here keep
those checks (and the final reduction) identical across modules.

Conventions
-----------
* ``TypeError`` for an argument of the wrong kind (not a tensor, not a real number, wrong dtype class).
* ``ValueError`` for an argument of the right kind but outside its domain (shape mismatch, parameter
  outside its interval, unknown reduction).
* :class:`ClassIndexError` (a subclass of both ``ValueError`` and ``IndexError``) for a class index outside
  ``[0, C)``.
"""

from __future__ import annotations

import math
import numbers
from typing import Literal

import torch

__all__ = [
    "REDUCTIONS",
    "ClassIndexError",
    "Reduction",
    "check_class_indices",
    "check_closed_interval",
    "check_floating_tensor",
    "check_integer_tensor",
    "check_nonnegative",
    "check_open_interval",
    "check_reduction",
    "check_same_shape",
    "fmt_shape",
    "reduce",
    "working_dtype",
]

Reduction = Literal["none", "mean", "sum"]
REDUCTIONS: tuple[str, ...] = ("none", "mean", "sum")


class ClassIndexError(ValueError, IndexError):
    """A target class index lies outside ``[0, C)`` (and is not the ``ignore_index``).

    Subclasses both ``ValueError`` and ``IndexError`` so callers may catch either.
    """


def fmt_shape(shape: torch.Size | tuple[int, ...]) -> str:
    """Format a shape as a Python tuple, e.g. ``(3,)``, ``(3, 1)`` or ``()``."""
    return str(tuple(int(s) for s in shape))


def check_floating_tensor(x: object, fn: str, arg: str) -> torch.Tensor:
    """Require ``x`` to be a floating-point :class:`torch.Tensor`; return it unchanged."""
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"{fn}: {arg} must be a torch.Tensor, got {type(x).__name__}")
    if not x.is_floating_point():
        raise TypeError(f"{fn}: {arg} must be a floating-point tensor, got dtype {x.dtype}")
    return x


def check_integer_tensor(x: object, fn: str, arg: str) -> torch.Tensor:
    """Require ``x`` to be a :class:`torch.Tensor` of an integer (non-bool) dtype; return it unchanged."""
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"{fn}: {arg} must be a torch.Tensor, got {type(x).__name__}")
    if x.is_floating_point() or x.is_complex() or x.dtype == torch.bool:
        raise TypeError(f"{fn}: {arg} must be a tensor of integer class indices, got dtype {x.dtype}")
    return x


def check_same_shape(input: torch.Tensor, target: torch.Tensor, fn: str) -> None:
    """Require ``input.shape == target.shape`` exactly (no broadcasting)."""
    if not isinstance(target, torch.Tensor):
        raise TypeError(f"{fn}: target must be a torch.Tensor, got {type(target).__name__}")
    if input.shape != target.shape:
        raise ValueError(
            f"{fn}: input and target must have the same shape, "
            f"got {fmt_shape(input.shape)} and {fmt_shape(target.shape)}"
        )


def _as_real(value: object, fn: str, arg: str) -> float:
    """Convert a real scalar (Python/NumPy number or one-element tensor) to ``float``."""
    if isinstance(value, bool):
        raise TypeError(f"{fn}: {arg} must be a real number, got bool")
    if isinstance(value, torch.Tensor):
        if value.numel() != 1 or value.is_complex():
            msg = f"{fn}: {arg} must be a real scalar, got a tensor of shape {fmt_shape(value.shape)}"
            raise TypeError(msg)
        return float(value.item())
    if not isinstance(value, numbers.Real):
        raise TypeError(f"{fn}: {arg} must be a real number, got {type(value).__name__}")
    return float(value)


def check_open_interval(value: object, low: float, high: float, fn: str, arg: str) -> float:
    """Require ``low < value < high`` (NaN is rejected); return ``value`` as ``float``."""
    v = _as_real(value, fn, arg)
    if not (low < v < high):
        raise ValueError(f"{fn}: {arg} must be in the open interval ({low:g}, {high:g}), got {value!r}")
    return v


def check_closed_interval(value: object, low: float, high: float, fn: str, arg: str) -> float:
    """Require ``low <= value <= high`` (NaN is rejected); return ``value`` as ``float``."""
    v = _as_real(value, fn, arg)
    if not (low <= v <= high):
        raise ValueError(f"{fn}: {arg} must be in the closed interval [{low:g}, {high:g}], got {value!r}")
    return v


def check_nonnegative(value: object, fn: str, arg: str) -> float:
    """Require ``value`` to be a finite real number ``>= 0``; return it as ``float``."""
    v = _as_real(value, fn, arg)
    if not (math.isfinite(v) and v >= 0.0):
        raise ValueError(f"{fn}: {arg} must be a finite number >= 0, got {value!r}")
    return v


def check_reduction(reduction: object, fn: str) -> Reduction:
    """Require ``reduction`` to be one of ``'none' | 'mean' | 'sum'``."""
    if not isinstance(reduction, str) or reduction not in REDUCTIONS:
        raise ValueError(f"{fn}: reduction must be one of 'none' | 'mean' | 'sum', got {reduction!r}")
    return reduction  # type: ignore[return-value]


def check_class_indices(target: torch.Tensor, num_classes: int, ignore_index: int, fn: str) -> torch.Tensor:
    """Check that every ``target`` entry is in ``[0, num_classes)`` or equals ``ignore_index``.

    Returns the boolean mask of non-ignored entries.  Raises :class:`ClassIndexError` naming the first
    offending index.  (This inspects the data, so on an accelerator it synchronises with the host.)
    """
    valid = target != ignore_index
    bad = valid & ((target < 0) | (target >= num_classes))
    if bool(bad.any()):
        first = int(target[bad].reshape(-1)[0].item())
        n_bad = int(bad.sum().item())
        entries = "entry" if n_bad == 1 else "entries"
        raise ClassIndexError(
            f"{fn}: target contains class index {first} ({n_bad} offending {entries}) "
            f"outside [0, {num_classes}) that is not ignore_index={ignore_index}"
        )
    return valid


def reduce(loss: torch.Tensor, reduction: str, fn: str = "loss") -> torch.Tensor:
    """Reduce an elementwise loss: ``'none'`` returns it as is, ``'mean'`` averages, ``'sum'`` sums.

    ``'mean'`` of an empty tensor is NaN (as in ``torch.mean``).  Raises ``ValueError`` on an unknown
    reduction.
    """
    check_reduction(reduction, fn)
    if reduction == "none":
        return loss
    if reduction == "mean":
        return loss.mean()
    return loss.sum()


def working_dtype(dtype: torch.dtype) -> torch.dtype:
    """The dtype to compute in: the input's, at least float32. float16's range (6e-5 to 65504, subnormals below)
    makes squares, products and sums of ordinary losses underflow or overflow, so half-precision inputs are
    computed in float32 and the result rounded back (as autocast does for losses)."""
    return torch.promote_types(dtype, torch.float32)
