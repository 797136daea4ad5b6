"""The sequence family: each family property catches its planted bug, the all-ignored and extreme-logit
edge cases hold, and the chunked linear_cross_entropy never holds the (N, V) logits. (That every tagged
property passes on the own implementations is proven by the README's full check run.)

* ``test_family_property_catches_its_planted_bug``: ``assert_catches`` for each family property
  (ignored_tokens, perplexity, linear_materialised) against ``tests/planted_sequence.py``.
* ``test_all_ignored_mean_is_nan_with_zero_gradient``: a mean over no token is NaN and nothing flows back.
* ``test_chunked_equals_materialised_at_extreme_logits``: logits of +-1e4 across vocabulary chunks, every
  chunk size, equal the materialised cross_entropy in float64.
* ``test_linear_cross_entropy_never_holds_the_logits``: forward + backward for N = 4096, H = 64,
  V = 32768 in float32 on the CPU, in a fresh process: no tensor saved for backward has N V elements
  (``saved_tensors_hooks``) and the peak of the bytes torch's allocator holds grows by less than a quarter
  of the N V float32 logits (the profiler's memory events); the same measurement on the materialised
  F.cross_entropy(hidden @ weight.T) exceeds both bounds, so the measurement can fail.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import planted_sequence as planted
import pytest
import torch
from judging import assert_catches

from lossguard.implementations.own.sequence import OWN, linear_cross_entropy, perplexity, sequence_cross_entropy

CASES = [
    ("ignored_tokens", "sequence_cross_entropy", planted.seq_ce_value_swayed_by_ignored, "float64"),
    ("ignored_tokens", "sequence_cross_entropy", planted.seq_ce_ignored_gradient_leaks, "float64"),
    ("ignored_tokens", "sequence_cross_entropy", planted.seq_ce_gradient_swayed_by_ignored, "float64"),
    ("ignored_tokens", "linear_cross_entropy", planted.linear_ce_gradient_from_ignored, "float64"),
    ("perplexity", "sequence_cross_entropy", planted.seq_ce_perplexity_mean_of_exp, "float64"),
    ("linear_materialised", "linear_cross_entropy", planted.linear_ce_online_lse_not_rescaled, "float64"),
    ("linear_materialised", "linear_cross_entropy", planted.linear_ce_weight_gradient_biased, "float64"),
    ("linear_materialised", "linear_cross_entropy", planted.linear_ce_value_biased, "float64"),
]
# the sub-check a planted bug proves, for a property with several (tests/test_properties_catch_bugs.py's meta-test)
SUB_CHECKS = {
    planted.seq_ce_value_swayed_by_ignored: "value",
    planted.seq_ce_ignored_gradient_leaks: "zero_gradient",
    planted.seq_ce_gradient_swayed_by_ignored: "other_gradients",
    planted.linear_ce_gradient_from_ignored: "other_gradients",
    planted.linear_ce_online_lse_not_rescaled: "gradient",
    planted.linear_ce_value_biased: "value",
    planted.linear_ce_weight_gradient_biased: "gradient",
}


@pytest.mark.parametrize(("prop", "loss", "wrong", "dtype"), CASES, ids=[f"{c[0]}-{c[2].__name__}" for c in CASES])
def test_family_property_catches_its_planted_bug(prop, loss, wrong, dtype):
    assert_catches(prop, loss, wrong, OWN[loss], dtype, check=SUB_CHECKS.get(wrong))


def test_all_ignored_mean_is_nan_with_zero_gradient():
    """The contract follows torch: a mean over zero non-ignored tokens is 0 / 0 = NaN; nothing flows back."""
    logits = torch.randn(2, 3, 4, requires_grad=True)
    target = torch.full((2, 3), -100)
    value = sequence_cross_entropy(logits, target)
    assert torch.isnan(value) and torch.isnan(perplexity(logits, target))
    hidden, weight = torch.randn(5, 3, requires_grad=True), torch.randn(4, 3, requires_grad=True)
    loss = linear_cross_entropy(hidden, weight, torch.full((5,), -100), chunk_size=3)
    assert torch.isnan(loss)
    loss.backward()
    assert torch.all(hidden.grad == 0) and torch.all(weight.grad == 0)


@pytest.mark.parametrize(("chunk_size", "token_chunk_size"), [(1, 1), (3, 2), (7, 5), (1000, 1000)])
def test_chunked_equals_materialised_at_extreme_logits(chunk_size, token_chunk_size):
    """Logits of +-1e4 across vocabulary chunks (the maximum moves between chunks): value and gradients
    equal torch's materialised cross_entropy in float64."""
    hidden = torch.tensor([[100.0, -100.0], [1.0, 2.0], [-100.0, 100.0], [0.5, 0.0], [3.0, -1.0]], dtype=torch.float64)
    weight = torch.tensor([[-100.0, 0.0], [0.0, 1.0], [100.0, 0.0], [1.0, 1.0], [0.0, -100.0]], dtype=torch.float64)
    bias = torch.linspace(-1.0, 1.0, 5, dtype=torch.float64)
    target = torch.tensor([2, -100, 0, 4, 4])
    leaves = [t.clone().requires_grad_() for t in (hidden, weight, bias)]
    own = linear_cross_entropy(
        *leaves[:2], target, bias=leaves[2], chunk_size=chunk_size, token_chunk_size=token_chunk_size
    )
    own_grads = torch.autograd.grad(own, leaves)
    again = [t.clone().requires_grad_() for t in (hidden, weight, bias)]
    exact = torch.nn.functional.cross_entropy(again[0] @ again[1].T + again[2], target)
    exact_grads = torch.autograd.grad(exact, again)
    np.testing.assert_allclose(own.item(), exact.item(), rtol=1e-12)
    for mine, theirs in zip(own_grads, exact_grads, strict=True):
        np.testing.assert_allclose(mine.numpy(), theirs.numpy(), rtol=1e-12, atol=1e-12)


_MEMORY_SCRIPT = """
import json, sys
import torch
import torch.nn.functional as F
from torch.profiler import ProfilerActivity, profile
from lossguard.implementations.own.sequence import linear_cross_entropy

N, H, V = 4096, 64, 32768
torch.manual_seed(0)
hidden = torch.randn(N, H, requires_grad=True)
weight = (0.1 * torch.randn(V, H)).requires_grad_()
target = torch.randint(0, V, (N,))
saved = [0]
def pack(tensor):
    saved.append(tensor.numel())
    return tensor
with profile(activities=[ProfilerActivity.CPU], profile_memory=True) as prof:
    with torch.autograd.graph.saved_tensors_hooks(pack, lambda tensor: tensor):
        if sys.argv[1] == "own":
            linear_cross_entropy(hidden, weight, target).backward()
        else:
            F.cross_entropy(hidden @ weight.T, target).backward()
# The allocator's own record of every allocation and free, in order: the peak of the bytes torch holds,
# the same on every machine (the process's maximum RSS is not: sandboxes report it as constant).
held = peak = 0
for event in sorted(prof.profiler.kineto_results.events(), key=lambda event: event.start_ns()):
    if event.name() == "[memory]":
        held += event.nbytes()
        peak = max(peak, held)
print(json.dumps({"peak_growth": peak, "largest_saved": max(saved)}))
"""
_N, _V = 4096, 32768
_LOGITS_BYTES = _N * _V * 4


def _measure(which: str) -> dict:
    root = Path(__file__).resolve().parent.parent
    done = subprocess.run(
        [sys.executable, "-c", _MEMORY_SCRIPT, which], cwd=root, capture_output=True, text=True, timeout=300, check=True
    )
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_linear_cross_entropy_never_holds_the_logits():
    own = _measure("own")
    assert own["largest_saved"] < _N * _V, f"a tensor of {own['largest_saved']} elements is saved for backward"
    assert own["peak_growth"] < _LOGITS_BYTES / 4, f"peak memory grew by {own['peak_growth'] / 2**20:.0f} MiB"
    naive = _measure("materialised")  # the measurement sees the (N, V) logits when they are there
    assert naive["largest_saved"] >= _N * _V and naive["peak_growth"] >= _LOGITS_BYTES
