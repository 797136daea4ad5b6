"""The error scales pinned from both sides, against a straightforward float32 evaluation of each definition.

An implementation in float32 is allowed ``K u scale`` (``harness/kernel/tolerance.py``; K = ``LossSpec.ulps``)
and the scale is "the magnitude of the terms that the straightforward evaluation of the definition adds or
subtracts" (docs/CONTRIBUTING.md, "Choosing an entry's error scale"). Both halves of that rule are checked
here, per catalog entry, for the value and for the gradient of every differentiable argument:

* **not below**: the straightforward evaluation (``naive32``: the formula as docs/LOSSES.md writes it, in
  float32, gradients by autograd) is within ``K`` units on every drawn input, so a correct implementation passes;
* **not far above**: its worst error, over a fixed seeded set of inputs drawn by the entry's own example builder
  (typical regime, inputs rounded to float32 first), is at least ``1 / FACTOR`` units (FACTOR = 4 unless the
  table below gives another): a scale that is larger still would let a defect of ``FACTOR K`` roundings pass.

Elements excluded from the comparison, each for a stated reason: where the exact value or gradient is not finite
(d/dt of t log t at t = 0), where the float32 evaluation overflows or divides by zero on its own (autograd's
d/dx sqrt at a zero distance), gradients of outputs at a kink (``LossSpec.kinks``, any subgradient is right),
and examples holding float32 subnormals (the policy's ``tiny`` term covers them, not the scale).

Functions the definitions name are called as functions: sigmoid, softplus (log1p(exp)), log sigmoid
(pairwise_logistic_loss: "stable for any finite difference"), and BCE's log(1 - p) as log1p(-p): with the literal
forms the scales are exceeded by far (p = 1e-30, y = 0: 7.6e6 units; -log(sigmoid(20)): 6.1e5 units). Decided:
the scales stay those of the accurate forms. The literal forms lose every significant digit of a loss of 1e-30
or 2e-9 (log(1 - 1e-30) = 0 in float32), a real accuracy defect that lossguard reports; what it matters in
practice (an absolute error of 1e-30) is a question of severity, not of the contract. log softmax is evaluated in
both textbook forms, shifted by the max and literal (where exp does not overflow): every form within K, the worse of
the two reaching 1 / FACTOR. Inputs aimed at the region a scale is derived for are added where the seeded draws
miss it (``_targeted``).

Per-loss factors (FACTOR, the inverse of the least ratio the seeded inputs must reach: the smallest power of two
at least 4 that the ratio measured with ``SEEDED`` examples meets, the ratio in each line's comment; an entry not
listed is held to 4). The measurement depends on the seed alone (``seed_only_generation``, tests/conftest.py);
it once also depended on which modules a session had loaded, and the lower bound left the default run. The
reasons:

* ``sums``: the scale includes Higham's worst-case summation bound ``(m - 1) u sum |v|`` (``reduce_scale``, the
  segmentation sums, the detection running bound), which random inputs do not reach: their rounding errors
  partly cancel (they grow like sqrt(m), not m). The bound is the documented policy for every reduction;
* ``exact``: the straightforward evaluation is exact in float32 on these inputs (a gradient ``-1/n`` or
  ``beta mu``): no factor can be reached, only the upper bound is checked (FACTOR = inf);
* ``open``: not yet explained by the reasons above; kept visible here, to be targeted (cancellation regions,
  near thresholds) or derived, never silently loosened (none at present: the last three, gradients whose scales
  carry a sum's term count, are ``sums``).
"""

from __future__ import annotations

import functools
import math
from types import SimpleNamespace

import naive32
import numpy as np
import pytest
import torch

from lossguard.catalog import CATALOG
from lossguard.harness.kernel.model import Example
from lossguard.harness.kernel.seeded import seeded_examples
from lossguard.harness.kernel.tolerance import compare
from lossguard.properties.generic import kink_mask

SEEDED = 96  # examples per entry (24 reached the factors only with constants Hypothesis took from loaded modules)
KINK_EPS = 2.0**-20  # within this relative distance of a kink float32 may take either side
FACTOR = 4.0
INF = math.inf

# (entry, "value" or argument) -> factor, reason; filled from the measurement at SEEDED examples
# (the comment: the ratio measured); "value" of a 'mean' is "sums" (reduce_scale's (n - 1) sum |v|)
FACTORS: dict[tuple[str, str], tuple[float, str]] = {
    ("batch_hard_triplet_loss", "value"): (8.0, "sums"),  # 0.152
    ("bce_dice_loss", "value"): (8.0, "sums"),  # 0.194
    ("boundary_loss", "value"): (8.0, "sums"),  # 0.18
    ("complete_box_iou_loss", "boxes1"): (16.0, "sums"),  # 0.117
    ("complete_box_iou_loss", "boxes2"): (8.0, "sums"),  # 0.131
    ("complete_box_iou_loss", "value"): (8.0, "sums"),  # 0.234
    ("contrastive_loss", "value"): (8.0, "sums"),  # 0.245
    ("cosine_embedding_loss", "value"): (16.0, "sums"),  # 0.0791
    ("distance_box_iou_loss", "boxes1"): (8.0, "sums"),  # 0.13
    ("distance_box_iou_loss", "boxes2"): (8.0, "sums"),  # 0.129
    ("distance_box_iou_loss", "value"): (8.0, "sums"),  # 0.188
    ("generalized_box_iou_loss", "boxes1"): (16.0, "sums"),  # 0.0714
    ("generalized_box_iou_loss", "boxes2"): (16.0, "sums"),  # 0.0725
    ("generalized_box_iou_loss", "value"): (8.0, "sums"),  # 0.134
    ("info_nce_loss", "value"): (16.0, "sums"),  # 0.0775
    ("iou_loss", "boxes1"): (8.0, "sums"),  # 0.13
    ("iou_loss", "boxes2"): (8.0, "sums"),  # 0.145
    ("iou_loss", "value"): (8.0, "sums"),  # 0.193
    ("jaccard_loss", "input"): (8.0, "sums"),  # 0.223
    ("jaccard_loss", "target"): (8.0, "sums"),  # 0.147
    ("jaccard_loss", "value"): (8.0, "sums"),  # 0.227
    ("l1_loss", "value"): (8.0, "sums"),  # 0.222
    ("linear_cross_entropy", "hidden"): (8.0, "sums: G W sums V products, scale V sum |G||W|"),  # 0.25
    ("linear_cross_entropy", "value"): (8.0, "sums"),  # 0.18
    ("margin_ranking_loss", "value"): (8.0, "sums"),  # 0.242
    ("multiclass_dice_loss", "input"): (8.0, "sums"),  # 0.197
    ("multiclass_dice_loss", "value"): (16.0, "sums"),  # 0.112
    ("nt_xent_loss", "value"): (8.0, "sums"),  # 0.191
    ("nt_xent_loss", "z_i"): (8.0, "sums: 2N-term logsumexp, D-term dots in err"),  # 0.17
    ("perceptual_loss", "value"): (8.0, "sums"),  # 0.179
    ("softmax_focal_loss", "input"): (8.0, "sums: the C-term logsumexp in err_k"),  # 0.204
    ("triplet_margin_loss", "value"): (8.0, "sums"),  # 0.144
    ("tversky_loss", "value"): (8.0, "sums"),  # 0.167
    ("vae_loss", "mu"): (INF, "exact"),  # 0
    ("wgan_critic_loss", "value"): (8.0, "sums"),  # 0.153
    ("wgan_generator_loss", "value"): (8.0, "sums"),  # 0.213
}


def _f32(v):
    if isinstance(v, np.ndarray) and np.issubdtype(v.dtype, np.floating):
        return v.astype(np.float32).astype(np.float64)
    return v


def _subnormal(v) -> bool:
    return (
        isinstance(v, np.ndarray)
        and np.issubdtype(v.dtype, np.floating)
        and bool(np.any((v != 0) & (np.abs(v) < 2.0**-126)))
    )


def _worst(actual, exact, scale, ulps) -> float:
    actual = np.asarray(actual, dtype=np.float64)
    exact = np.broadcast_to(np.asarray(exact, dtype=np.float64), actual.shape)
    scale = np.broadcast_to(np.asarray(scale, dtype=np.float64), actual.shape)
    ok = np.isfinite(actual) & np.isfinite(exact)
    return compare(actual[ok], exact[ok], scale[ok], "float32", ulps).worst if np.any(ok) else 0.0


def ratios(spec, example) -> dict[str, float]:
    """Worst |naive32 - exact| / (u32 scale) of the value and of each differentiable argument's gradient, over both
    textbook forms of log softmax (shifted by the max, and literal where it does not overflow): the scale must cover
    either (the upper bound) and the worse of the two must reach it (the lower bound)."""
    worst: dict[str, float] = {}
    for shifted in (True, False):
        naive32.SHIFTED = shifted
        try:
            for part, ratio in _ratios(spec, example).items():
                worst[part] = max(worst.get(part, 0.0), ratio)
        except naive32.Overflow:
            pass
        finally:
            naive32.SHIFTED = True
    return worst


def _ratios(spec, example) -> dict[str, float]:
    example = type(example)(
        {k: _f32(v) for k, v in example.args.items()}, {k: _f32(v) for k, v in example.params.items()}
    )
    kw = example.kwargs()
    if any(_subnormal(v) for v in kw.values()):
        return {}
    with np.errstate(all="ignore"):
        exact, scale = spec.reference(**kw), spec.reference.error_scale(**kw)
        grads = spec.reference.grad(**kw)
    tensors = {k: naive32.as_torch(v) for k, v in kw.items()}
    out = getattr(naive32, spec.name)(**tensors)
    result = {"value": _worst(out.detach().double().numpy(), exact, scale, spec.ulps)}
    names = [
        n
        for n in spec.differentiable
        if n in grads and isinstance(kw.get(n), np.ndarray) and np.issubdtype(kw[n].dtype, np.floating)
    ]
    if not names or not np.all(np.isfinite(exact)):
        return result
    computed = torch.autograd.grad(out.sum(), [tensors[n] for n in names], allow_unused=True)
    subject = SimpleNamespace(spec=spec, u=KINK_EPS)
    for name, g in zip(names, computed, strict=True):
        g = np.zeros(np.shape(kw[name])) if g is None else g.double().numpy()
        keep = ~kink_mask(subject, example, np.shape(g))
        value = np.broadcast_to(grads[name].value, g.shape)
        result[name] = _worst(g[keep], value[keep], np.broadcast_to(grads[name].scale, g.shape)[keep], spec.ulps)
    return result


def _targeted(name: str) -> list[Example]:
    """Inputs aimed at the region a scale is derived for, where the seeded draws miss it."""
    if name == "softmax_focal_loss":  # p_y -> 1: (1 - p_y)^gamma formed from a rounded p_y, gamma 3
        return [
            Example(
                {
                    "input": np.array([[gap, 0.0, -0.3], [0.7 * gap, 0.2, 0.0], [0.0, gap, 0.1]]),
                    "target": np.array([0, 0, 1]),
                },
                {"alpha": None, "gamma": gamma, "ignore_index": -100, "reduction": "sum"},
            )
            for gap in (8.0, 10.0, 12.0, 15.0)
            for gamma in (2.0, 3.0)
        ]
    return []


def measure(spec, count: int = SEEDED) -> dict[str, float]:
    worst: dict[str, float] = {}
    for example in [*seeded_examples(spec, count=count), *_targeted(spec.name)]:
        with np.errstate(all="ignore"):
            for part, ratio in ratios(spec, example).items():
                worst[part] = max(worst.get(part, 0.0), ratio)
    return worst


@functools.cache
def _measured(name: str) -> dict[str, float]:  # both bounds judge one measurement
    worst = measure(CATALOG[name])
    assert worst, f"{name}: no usable example"
    return worst


@pytest.mark.parametrize("name", sorted(CATALOG))
def test_scale_is_at_least_what_a_straightforward_evaluation_needs(name):
    spec = CATALOG[name]
    for part, ratio in _measured(name).items():
        assert ratio <= spec.ulps, (
            f"{name} {part}: a straightforward float32 evaluation errs by {ratio:.3g} units of u32 * scale, "
            f"but should be within K = {spec.ulps} [the scale is below what the definition's evaluation needs]"
        )


@pytest.mark.parametrize("name", sorted(CATALOG))
def test_scale_pinned_from_below(name):
    for part, ratio in _measured(name).items():
        factor, reason = FACTORS.get((name, part), (FACTOR, "default"))
        assert ratio >= 1.0 / factor, (
            f"{name} {part}: the worst error of a straightforward float32 evaluation is {ratio:.3g} units of "
            f"u32 * scale, but should be at least 1/{factor:g} [{reason}: the scale is more generous than the "
            "evaluation needs]"
        )
