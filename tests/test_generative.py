"""The generative and multi-task family: every family property catches its planted bug, and every tagged property
passes on lossguard's own implementations (CPU, float64 and float32; no torch built-in is bound for this family).

A property whose domain is one dtype (immutability, invalid_input) runs in float64 only.
"""

from __future__ import annotations

import numpy as np
import planted_generative as planted
import pytest
import torch
from judging import assert_catches

from lossguard.catalog import CATALOG
from lossguard.harness.app.inventory import bind, own
from lossguard.harness.kernel.frameworks.torch_binding import TorchBinding
from lossguard.harness.kernel.model import Example
from lossguard.reference import generative as R

OWN = {impl.loss: impl for impl in own() if CATALOG[impl.loss].family == "generative"}

# property, loss, wrong implementation (one planted defect), dtype
CASES = [
    ("gan_bce_composition", "gan_generator_loss", planted.gan_generator_saturating, "float64"),
    ("gan_bce_composition", "gan_discriminator_loss", planted.gan_discriminator_one_sided_smoothing, "float32"),
    ("wgan_antisymmetry", "wgan_critic_loss", planted.wgan_critic_clamped, "float64"),
    ("wgan_antisymmetry", "wgan_critic_loss", planted.wgan_critic_offset, "float64"),
    ("wgan_antisymmetry", "wgan_critic_loss", planted.wgan_critic_roles_swapped, "float64"),
    ("vae_kl", "vae_loss", planted.vae_kl_term_biased, "float32"),
    ("vae_kl", "vae_loss", planted.vae_not_exactly_zero, "float32"),
    ("uncertainty_minimiser", "uncertainty_weighted_loss", planted.uncertainty_minimum_biased, "float64"),
    ("uncertainty_minimiser", "uncertainty_weighted_loss", planted.uncertainty_gradient_offset, "float64"),
    ("uncertainty_minimiser", "uncertainty_weighted_loss", planted.uncertainty_flat_above_minimiser, "float64"),
]
# the sub-check a planted bug proves, for a property with several (tests/test_properties_catch_bugs.py's meta-test)
SUB_CHECKS = {
    planted.wgan_critic_clamped: "antisymmetry",
    planted.wgan_critic_offset: "antisymmetry",
    planted.wgan_critic_roles_swapped: "sign",
    planted.vae_kl_term_biased: "kl_term",
    planted.vae_not_exactly_zero: "zero_at_prior",
    planted.uncertainty_minimum_biased: "minimum",
    planted.uncertainty_gradient_offset: "gradient",
    planted.uncertainty_flat_above_minimiser: "larger_nearby",
}


@pytest.mark.parametrize(("prop", "loss", "wrong", "dtype"), CASES, ids=[f"{c[0]}-{c[2].__name__}" for c in CASES])
def test_family_property_catches_its_planted_bug(prop, loss, wrong, dtype):
    assert_catches(prop, loss, wrong, OWN[loss].fn, dtype, check=SUB_CHECKS.get(wrong))


def test_wgan_losses_are_not_tagged_non_negative_and_say_why():
    for name in ("wgan_critic_loss", "wgan_generator_loss", "uncertainty_weighted_loss"):
        spec = CATALOG[name]
        assert "non_negative" not in spec.properties
        assert "not non-negative" in spec.caveats
    assert float(R.wgan_critic_loss(np.array([2.0]), np.array([1.0]))) == -1.0


def test_the_binding_materialises_the_extractor_frozen_in_the_call_dtype():
    """The torch binding's converter: the extractor reaches the implementation as a frozen torch module in the
    call's dtype, whose features are the reference's (weights are multiples of 1/8: exact in float32)."""
    extractor = R.TanhExtractor(7, (2, 3, 2))
    x = np.linspace(-1.0, 1.0, 8).reshape(2, 2, 2)
    seen = {}

    def spy(input, target, feature_extractor, layers, layer_weights=None):
        seen["module"] = feature_extractor
        return OWN["perceptual_loss"].fn(input, target, feature_extractor, layers, layer_weights)

    example = Example({"input": x, "target": -x}, {"feature_extractor": extractor, "layers": (0, 1)})
    impl = bind("perceptual_loss", spy, "tests.spy", "user")
    outcome = TorchBinding().call(impl, ("input", "target"), example, "float32", grad=("input",))
    module = seen["module"]
    assert isinstance(module, torch.nn.Module)
    assert not any(p.requires_grad for p in module.parameters())
    assert all(b.dtype == torch.float32 and not b.requires_grad for b in module.buffers())
    features = module.to(torch.float64)(torch.tensor(x))  # the same (exact) weights, in float64
    for got, exact in zip(features, extractor.features(x), strict=True):
        np.testing.assert_allclose(got.numpy(), exact, rtol=1e-15, atol=1e-15)
    np.testing.assert_allclose(outcome.value, R.perceptual_loss(x, -x, extractor, (0, 1)), rtol=1e-5)
    assert repr(extractor) == "TanhExtractor(seed=7, widths=(2, 3, 2))"


def test_vae_bce_clamps_at_exact_zero_and_one():
    """recon of exactly 0 and 1 against mismatching x: the -100 clamp gives 100 per element, finite gradients."""
    recon, x = np.array([[0.0, 1.0]]), np.array([[1.0, 0.0]])
    zeros = np.zeros((1, 1))
    assert float(R.vae_loss(recon, x, zeros, zeros)) == 200.0
    t = {k: torch.tensor(v, requires_grad=True) for k, v in {"recon": recon, "x": x}.items()}
    loss = OWN["vae_loss"].fn(t["recon"], t["x"], *[torch.zeros(1, 1, dtype=torch.float64)] * 2)
    loss.backward()
    assert loss.item() == 200.0
    assert torch.isfinite(t["recon"].grad).all() and torch.isfinite(t["x"].grad).all()
