"""The catalog is the whole canonical contract: every row of it, each with a reference and an implementation."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from lossguard.catalog import CATALOG
from lossguard.harness.app.inventory import implementations

# every row of the canonical contract, by family (the contract this project was created from)
CONTRACT = {
    "regression": "mse_loss l1_loss huber_loss smooth_l1_loss log_cosh_loss quantile_loss poisson_nll_loss "
    "gaussian_nll_loss tweedie_loss asymmetric_mse_loss",
    "classification": "binary_cross_entropy binary_cross_entropy_with_logits cross_entropy nll_loss kl_div "
    "sigmoid_focal_loss softmax_focal_loss hinge_loss multi_margin_loss multilabel_soft_margin_loss",
    "metric": "contrastive_loss triplet_margin_loss batch_hard_triplet_loss info_nce_loss nt_xent_loss "
    "cosine_embedding_loss margin_ranking_loss pairwise_logistic_loss",
    "segmentation": "dice_loss multiclass_dice_loss jaccard_loss tversky_loss bce_dice_loss ce_dice_loss boundary_loss",
    "detection": "iou_loss generalized_box_iou_loss distance_box_iou_loss complete_box_iou_loss",
    "generative": "gan_discriminator_loss gan_generator_loss wgan_critic_loss wgan_generator_loss vae_loss "
    "perceptual_loss uncertainty_weighted_loss",
    "sequence": "sequence_cross_entropy linear_cross_entropy",
}
ROWS = [(family, name) for family, names in CONTRACT.items() for name in names.split()]


def test_lossguard_list_shows_every_row_of_the_contract():
    listed = subprocess.run(
        [sys.executable, "-m", "lossguard", "list", "--json"], capture_output=True, text=True, check=True
    )
    entries = {entry["name"]: entry["family"] for entry in json.loads(listed.stdout)}
    assert entries == dict((name, family) for family, name in ROWS)


@pytest.mark.parametrize(("family", "name"), ROWS, ids=[name for _, name in ROWS])
def test_every_row_has_a_reference_and_an_implementation(family, name):
    spec = CATALOG[name]
    assert spec.family == family
    assert callable(spec.reference)
    assert set(spec.differentiable) <= set(spec.reference.differentiable), "each differentiable argument has a gradient"
    assert any(impl.loss == name for impl in implementations("all")), f"{name} has no implementation under test"
