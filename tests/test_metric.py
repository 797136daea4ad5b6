"""The metric-learning family: every family property catches its planted bug, and every tagged property
passes on lossguard's own implementations and on the bound torch built-ins (CPU, float64 and float32).

A torch built-in's recorded finding (implementations/torch_builtins.py) turns its property into xfail;
a property whose domain is one dtype (immutability, invalid_input) runs in float64 only.
"""

from __future__ import annotations

import dataclasses

import planted_metric as planted
import pytest
from judging import CI, assert_catches

from lossguard.catalog import CATALOG
from lossguard.harness.app.inventory import bind, own, torch_builtins
from lossguard.harness.app.runner import run_one

OWN = {impl.loss: impl for impl in own() if CATALOG[impl.loss].family == "metric"}
TORCH = {impl.loss: impl for impl in torch_builtins() if CATALOG[impl.loss].family == "metric"}

# property, loss, wrong implementation, dtype, correct implementation of the same loss
CASES = [
    ("translation_invariance", "contrastive_loss", planted.contrastive_norm_difference, "float64", OWN),
    ("rotation_invariance", "contrastive_loss", planted.contrastive_l1_distance, "float64", OWN),
    ("rotation_invariance", "cosine_embedding_loss", planted.cosine_embedding_l1_norms, "float32", TORCH),
    ("margin_met", "triplet_margin_loss", planted.triplet_soft_margin, "float64", TORCH),
    ("uniform_similarity", "info_nce_loss", planted.info_nce_without_positive, "float64", OWN),
    ("scale_invariance", "info_nce_loss", planted.info_nce_query_unnormalized, "float64", OWN),
    ("excludes_self", "nt_xent_loss", planted.nt_xent_including_self, "float64", OWN),
    ("hardest_pair", "batch_hard_triplet_loss", planted.batch_hard_easiest_positive, "float64", OWN),
    ("softplus_identity", "pairwise_logistic_loss", planted.pairwise_logistic_log_sigmoid, "float32", OWN),
]


@pytest.mark.parametrize(
    ("prop", "loss", "wrong", "dtype", "right"), CASES, ids=[f"{c[0]}-{c[2].__name__}" for c in CASES]
)
def test_family_property_catches_its_planted_bug(prop, loss, wrong, dtype, right):
    assert_catches(prop, loss, wrong, right[loss].fn, dtype)


def _unsquared(fn):
    """``fn`` as an implementation of contrastive_loss that follows the reference variant squared=False."""
    return dataclasses.replace(bind("contrastive_loss", fn, f"tests.{fn.__name__}", "user"), fixed={"squared": False})


@pytest.mark.parametrize(
    ("prop", "check", "wrong", "dtype"),
    [
        ("agreement", "value", planted.contrastive_unsquared_biased, "float64"),
        ("agreement", "value", planted.contrastive_unsquared_biased, "float32"),
        ("gradient", "first_argument", planted.contrastive_unsquared_tilted, "float64"),
    ],
)
def test_unsquared_contrastive_variant_judges_a_near_miss(prop, check, wrong, dtype):
    """The variant squared=False (pytorch-metric-learning's ContrastiveLoss): its value and its analytic gradient are
    judged at the tolerance, a planted 32 u of the scale off fails, the variant done right passes, and the canonical
    squared loss is no implementation of it."""
    caught = run_one(_unsquared(wrong), prop, "cpu", dtype, CI)
    assert caught.status == "fail" and caught.check == check, (caught.status, caught.check, caught.message)
    right = run_one(_unsquared(planted.contrastive_unsquared), prop, "cpu", dtype, CI)
    assert right.status == "pass", right.message
    squared = run_one(_unsquared(OWN["contrastive_loss"].fn), prop, "cpu", dtype, CI)
    assert squared.status == "fail", squared.message
