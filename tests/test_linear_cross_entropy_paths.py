"""Every backward path of the own linear_cross_entropy equals the materialised cross_entropy's (float64, small).

* ``test_every_backward_path_equals_the_materialised_one``: the forward's fused gradients scaled ('mean',
  'sum'), the blockwise recomputation ('none' under per-token weights; a second backward with
  ``retain_graph``), with and without bias and ignored tokens, against ``F.cross_entropy(hidden @ weight.T + b)``.
* ``test_second_derivatives``: ``create_graph=True`` gives gradients that are themselves differentiable
  (``gradgradcheck``), where scaled or recomputed gradients would not be.
* ``test_only_the_gradients_asked_for``: with weight frozen, hidden's gradient is still right.
"""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from lossguard.implementations.own.sequence import linear_cross_entropy


def _inputs(bias: bool):
    generator = torch.Generator().manual_seed(0)
    hidden = torch.randn(7, 3, dtype=torch.float64, generator=generator)
    weight = torch.randn(5, 3, dtype=torch.float64, generator=generator)
    b = torch.randn(5, dtype=torch.float64, generator=generator) if bias else None
    target = torch.tensor([0, 4, -100, 2, 1, -100, 3])
    return [t for t in (hidden, weight, b) if t is not None], target


def _materialised(leaves, target, reduction):
    bias = leaves[2] if len(leaves) == 3 else 0.0
    return F.cross_entropy(leaves[0] @ leaves[1].T + bias, target, reduction=reduction)


def _own(leaves, target, reduction, **blocks):
    bias = leaves[2] if len(leaves) == 3 else None
    return linear_cross_entropy(leaves[0], leaves[1], target, bias=bias, reduction=reduction, **blocks)


@pytest.mark.parametrize("bias", [False, True])
@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@pytest.mark.parametrize("token_chunk_size", [None, 2])
def test_every_backward_path_equals_the_materialised_one(bias, reduction, token_chunk_size):
    inputs, target = _inputs(bias)
    mine = [t.clone().requires_grad_() for t in inputs]
    exact = [t.clone().requires_grad_() for t in inputs]
    own = _own(mine, target, reduction, chunk_size=2, token_chunk_size=token_chunk_size)
    reference = _materialised(exact, target, reduction)
    weights = torch.linspace(0.5, 2.0, own.numel(), dtype=torch.float64).reshape(own.shape)
    torch.testing.assert_close(own, reference, rtol=1e-12, atol=1e-12)
    for upstream in (weights, 3.0 * weights):  # the second backward recomputes (retain_graph)
        first = torch.autograd.grad(own, mine, upstream, retain_graph=True)
        expected = torch.autograd.grad(reference, exact, upstream, retain_graph=True)
        for got, want in zip(first, expected, strict=True):
            torch.testing.assert_close(got, want, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("reduction", ["mean", "none"])
def test_second_derivatives(reduction):
    inputs, target = _inputs(bias=True)
    leaves = tuple(t.clone().requires_grad_() for t in inputs)
    assert torch.autograd.gradgradcheck(
        lambda *xs: _own(list(xs), target, reduction, token_chunk_size=3), leaves, raise_exception=False
    )


def test_only_the_gradients_asked_for():
    (hidden, weight), target = _inputs(bias=False)
    hidden.requires_grad_()
    _own([hidden, weight], target, "mean").backward()
    exact = hidden.detach().clone().requires_grad_()
    _materialised([exact, weight], target, "mean").backward()
    torch.testing.assert_close(hidden.grad, exact.grad, rtol=1e-12, atol=1e-12)
