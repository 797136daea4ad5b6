"""The metric-learning family: every family property catches its planted bug, and every tagged property
passes on lossguard's own implementations and on the bound torch built-ins (CPU, float64 and float32).

A torch built-in's recorded finding (implementations/torch_builtins.py) turns its property into xfail;
a property whose domain is one dtype (immutability, invalid_input) runs in float64 only.
"""

from __future__ import annotations

import planted_metric as planted
import pytest
from judging import assert_catches

from lossguard.catalog import CATALOG
from lossguard.harness.app.inventory import own, torch_builtins

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
