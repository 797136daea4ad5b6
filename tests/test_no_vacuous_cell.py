"""No vacuous cell: a cell that passes has judged something, and the gradient property judges every implementation.

(a) Every built-in and own implementation, wrapped so that every gradient it gives is doubled (its value
unchanged), fails the ``gradient`` property in every dtype cell where the property runs: the example builders
reach non-zero gradients within the ``ci`` budget, and kinks mask only the elements they spoil. A cell may be
a ``skip`` only where the implementation rejects the dtype, and a ``pass`` only where ``EXCEPTIONS`` states why
(it must still have made comparisons).
(b) A run that made no comparison is a ``skip`` saying so, never a ``pass``; a pass counts its comparisons.
"""

from __future__ import annotations

import dataclasses
import re

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from judging import CI

from lossguard.catalog import CATALOG
from lossguard.harness.app.inventory import bind, implementations
from lossguard.harness.app.runner import Selection, plan, run_one
from lossguard.harness.kernel.model import Implementation

GRADIENT = Selection(devices=("cpu",), properties=("gradient",), profile="ci")
IMPLEMENTATIONS = implementations("builtin")

# a skip the test accepts: the implementation rejects the dtype (its own error, e.g. "not implemented for 'Half'")
UNSUPPORTED = re.compile(r"not supported by the implementation")
# (implementation, dtype) -> why its doubled gradient is legitimately not a failure there
EXCEPTIONS: dict[tuple[str, str], str] = {
    ("lossguard.multiclass_dice_loss", "bfloat16"): (
        "the reference's error scale of the softmax-dice gradient (reference/segmentation.py: the dice slopes' "
        "and the softmax's rounding terms, each bounded over every summation order) is a bound, so 8 bfloat16 "
        "ulps of it (8 x 2^-8 x scale) still exceed a doubling of the gradient on the inputs tried (|gradient| / "
        "allowed <= 0.49 over 3000 random inputs before the scale was tightened about 2x; tests/reference/"
        "test_scales_pinned.py pins the scale from below)"
    ),
}


class _Doubled(torch.autograd.Function):
    """The identity on the value; twice the incoming gradient on the way back."""

    @staticmethod
    def forward(ctx, x):
        return x.clone()

    @staticmethod
    def backward(ctx, grad):
        return 2 * grad


def _double(value):
    if isinstance(value, torch.Tensor) and value.requires_grad:
        return _Doubled.apply(value)
    return value


def doubled(impl: Implementation) -> Implementation:
    """``impl`` with every gradient doubled (through every differentiable tensor argument and parameter), its value
    unchanged; its findings dropped (a recorded departure must not excuse the planted one)."""
    inner = impl.call

    def call(fn, args, params):
        args = {k: _double(v) for k, v in args.items()}
        params = {k: _double(v) for k, v in params.items()}
        return inner(fn, args, params) if inner is not None else fn(*args.values(), **params)

    return dataclasses.replace(impl, name=f"doubled {impl.name}", call=call, findings=())


def _cells(impl: Implementation) -> list[str]:
    return [dtype for _, _, _, dtype in plan([impl], GRADIENT)]


@pytest.mark.parametrize("impl", IMPLEMENTATIONS, ids=[i.name for i in IMPLEMENTATIONS])
def test_doubled_gradients_fail_in_every_dtype(impl):
    cells = _cells(impl)
    assert cells, f"{impl.name}: the gradient property runs in no dtype"
    wrong = doubled(impl)
    missed = []
    for dtype in cells:
        result = run_one(wrong, "gradient", "cpu", dtype, GRADIENT)
        if result.status == "fail":
            continue
        if result.status == "skip" and UNSUPPORTED.search(result.message):
            continue
        if (impl.name, dtype) in EXCEPTIONS and result.comparisons > 0:
            continue  # judged, and undetectable there for the stated reason
        missed.append(f"{dtype}: {result.status} ({result.comparisons} comparisons) {result.message}")
    assert not missed, f"doubled gradients of {impl.name} not caught:\n" + "\n".join(missed)


def test_exceptions_are_cells_that_exist():
    names = {i.name: i for i in IMPLEMENTATIONS}
    for name, dtype in EXCEPTIONS:
        assert name in names and dtype in _cells(names[name]), (name, dtype)


def test_a_run_without_a_comparison_is_a_skip():
    """Every element of mse_loss at a kink: the gradient property judges nothing, so neither a right nor a doubled
    gradient may pass (or fail): the cell is a skip that says why."""
    all_kinks = dataclasses.replace(CATALOG["mse_loss"], kinks=lambda example, eps: np.array(True))
    catalog = {**CATALOG, "mse_loss": all_kinks}
    right = bind("mse_loss", F.mse_loss, "tests.mse_loss", "user", catalog=catalog)
    for impl in (right, doubled(right)):
        result = run_one(impl, "gradient", "cpu", "float64", CI, catalog)
        assert result.status == "skip", (result.status, result.message)
        assert result.message.startswith("no comparison made: "), result.message
        assert result.comparisons == 0 and result.examples > 0
        assert result.worst_ulps is None


def test_a_pass_counts_its_comparisons():
    right = bind("mse_loss", F.mse_loss, "tests.mse_loss", "user")
    result = run_one(right, "gradient", "cpu", "float64", CI)
    assert result.status == "pass", result.message
    assert result.comparisons > 0
    assert result.to_json()["comparisons"] == result.comparisons


def test_a_per_row_kink_masks_only_its_row():
    """triplet_margin_loss's kinks are per row, its gradients (N, D): a kink in one row masks every coordinate of
    that row (any subgradient goes there) and leaves the other rows judged."""
    from types import SimpleNamespace

    from lossguard.harness.kernel.model import Example
    from lossguard.properties.generic import kink_mask

    # row 0 at the hinge (d(a, p) - d(a, n) + margin = 1 - 2 + 1 = 0), row 1 well inside it (1 - 0.5 + 1 > 0)
    example = Example(
        {
            "anchor": np.zeros((2, 2)),
            "positive": np.array([[1.0, 0.0], [1.0, 0.0]]),
            "negative": np.array([[2.0, 0.0], [0.5, 0.0]]),
        },
        {"reduction": "none", "margin": 1.0, "p": 2.0, "eps": 0.0, "swap": False},
    )
    subject = SimpleNamespace(spec=CATALOG["triplet_margin_loss"], u=2.0**-53)
    assert kink_mask(subject, example, (2, 2)).tolist() == [[True, True], [False, False]]
    # a 0-d argument (a learnable temperature) meets any kink of the call
    assert kink_mask(subject, example, ()).tolist() is True
