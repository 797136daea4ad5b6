"""Tests written for survivors of mutation testing (mutation/run.py, docs/CONTRIBUTING.md).

A reference's error scale is checked against mpmath from one side only: the reference's own error must be
within its bound times the scale, which a *smaller* scale still meets whenever the reference is accurate.
The decision rule of docs/CONTRIBUTING.md bounds it from below, for every loss: the scale is the magnitude
of the terms the straightforward evaluation adds or subtracts before cancellation, so by the triangle
inequality it is never smaller than the magnitude of the result. The same holds for each gradient and its
scale. A scale below it would make the policy flag correct implementations; mutants that drop or flip a
term of a scale survived the mpmath tests and die here.
"""

from __future__ import annotations

import numpy as np
import pytest

from lossguard.catalog import CATALOG
from lossguard.harness.kernel.seeded import seeded_examples

# test ids carry the family, so mutation/config.toml can select a family's entries by keyword
ENTRIES = sorted(CATALOG.values(), key=lambda spec: (spec.family, spec.name))


def _below(values: np.ndarray, scale: np.ndarray) -> str | None:
    values, scale = np.broadcast_arrays(np.asarray(values, dtype=np.float64), np.asarray(scale, dtype=np.float64))
    finite = np.isfinite(values) & np.isfinite(scale)
    short = finite & (scale < np.abs(values) * (1 - 1e-12))
    if not np.any(short):
        return None
    i = np.flatnonzero(short)[0]
    return f"scale = {scale.ravel()[i]!r}, but should be >= |value| = {abs(values.ravel()[i])!r}"


@pytest.mark.parametrize("spec", ENTRIES, ids=[f"{spec.family}-{spec.name}" for spec in ENTRIES])
@pytest.mark.parametrize("regime", ["typical", "extreme"])
def test_error_scale_is_at_least_the_magnitude(spec, regime):
    for example in seeded_examples(spec, count=6, dtype="float64", regime=regime):
        kwargs = example.kwargs()
        if "reduction" in spec.params:
            kwargs["reduction"] = "none"
        with np.errstate(all="ignore"):
            terms = spec.reference.terms(**kwargs)
            gradients = spec.reference.grad(**kwargs)  # the sum's: a 'mean' takes |scale| and hides a sign
        problem = _below(terms.values, terms.scale)
        assert problem is None, f"{spec.name} value: {problem} on {example}"
        for name, gradient in gradients.items():
            problem = _below(gradient.value, gradient.scale)
            assert problem is None, f"{spec.name} d/d{name}: {problem} on {example}"


def test_classification_kl_div_mean_is_over_every_element_and_batchmean_over_rows():
    """torch's kl_div: 'mean' divides the sum by the number of elements, 'batchmean' by the batch size. The
    mpmath tests draw it with 'batchmean'; a 'mean' over rows (``and`` -> ``or`` in the normaliser) survived."""
    from lossguard.reference.classification import kl_div

    x = np.log([[0.2, 0.3, 0.5], [0.1, 0.6, 0.3]])
    t = np.array([[0.3, 0.3, 0.4], [0.2, 0.5, 0.3]])
    pointwise = kl_div(x, t, reduction="none")
    assert kl_div(x, t, reduction="mean") == pytest.approx(np.sum(pointwise) / 6, rel=1e-14)
    assert kl_div(x, t, reduction="batchmean") == pytest.approx(np.sum(pointwise) / 2, rel=1e-14)
    assert kl_div(x, t, reduction="sum") == pytest.approx(np.sum(pointwise), rel=1e-14)


@pytest.mark.parametrize("spec", ENTRIES, ids=[f"{spec.family}-{spec.name}" for spec in ENTRIES])
def test_reference_gradient_covers_every_differentiable_argument_given(spec):
    """The mpmath gradient tests compare the gradients the reference returns, so one it leaves out (a
    ``bias`` gradient skipped when a bias is given) was compared with nothing."""
    for example in seeded_examples(spec, count=6, dtype="float64"):
        with np.errstate(all="ignore"):
            gradients = spec.reference.grad(**example.kwargs())
        given = {
            name
            for name in spec.differentiable
            if example.args.get(name) is not None and np.issubdtype(np.asarray(example.args[name]).dtype, np.floating)
        }
        assert given <= set(gradients), f"{spec.name}: no reference gradient for {sorted(given - set(gradients))}"


def test_sequence_linear_cross_entropy_gradient_of_a_given_bias():
    """The catalog's examples draw no bias: a bias gradient skipped when a bias is given, or its scale made
    smaller than the gradient, went unnoticed."""
    from lossguard.reference.sequence import linear_cross_entropy

    x, w, bias = np.array([[0.5, -1.0], [2.0, 0.25]]), np.array([[1.0, 0.5], [-0.5, 2.0], [0.0, 1.0]]), np.ones(3)
    gradients = linear_cross_entropy.grad(x, w, np.array([0, 2]), bias=bias, reduction="sum")
    assert set(gradients) == {"hidden", "weight", "bias"}
    for name, gradient in gradients.items():
        assert _below(gradient.value, gradient.scale) is None, name
    assert set(linear_cross_entropy.grad(x, w, np.array([0, 2]), reduction="sum")) == {"hidden", "weight"}


def test_wgan_antisymmetry_catches_a_clamped_generator_loss():
    """wgan_antisymmetry's one-argument branch (the generator loss: L(-f) = -L(f)) had no planted bug: a mutant
    swapping in the wrong argument there survived tests/test_generative.py, which plants the critic's only."""
    import torch
    from judging import assert_catches

    from lossguard.harness.app.inventory import own

    right = {impl.loss: impl.fn for impl in own()}["wgan_generator_loss"]

    def wgan_generator_clamped(fake_scores):
        """max(0, -mean(fake)): must go negative where the fakes score positive on average."""
        return torch.clamp(-fake_scores.mean(), min=0.0)

    assert_catches("wgan_antisymmetry", "wgan_generator_loss", wgan_generator_clamped, right, check="antisymmetry")


def test_metric_triplet_swap_gradient_matches_central_differences():
    """triplet_margin_loss with swap where d(p, n) < d(a, n): the loss uses d(p, n), so the anchor-negative
    term's gradient is 0. The mpmath gradient test does not reach that branch; a mutant making it -1 survived."""
    from lossguard.reference.metric import triplet_margin_loss

    args = {
        "anchor": np.array([[0.1, -0.2, 0.3]]),
        "positive": np.array([[0.9, 0.4, -0.1]]),
        "negative": np.array([[2.6, 1.1, 0.7]]),
    }
    params = {"margin": 2.0, "swap": True, "reduction": "sum"}
    assert np.linalg.norm(args["positive"] - args["negative"]) < np.linalg.norm(args["anchor"] - args["negative"])
    gradients = triplet_margin_loss.grad(**args, **params)
    h = 1e-6
    for name, x in args.items():
        for index in np.ndindex(x.shape):
            up, down = x.copy(), x.copy()
            up[index] += h
            down[index] -= h
            central = (
                triplet_margin_loss(**{**args, name: up}, **params)
                - triplet_margin_loss(**{**args, name: down}, **params)
            ) / (2 * h)
            assert gradients[name].value[index] == pytest.approx(float(central), abs=1e-7), (name, index)


def test_sequence_perplexity_error_scale_is_at_least_the_perplexity():
    """perplexity is no catalog entry of its own, so the error-scale test above does not reach its scale."""
    from lossguard.reference.sequence import perplexity, perplexity_error_scale

    logits = np.array([[[2.0, -1.0, 0.5], [0.1, 0.2, 0.3]], [[-3.0, 4.0, 0.0], [1.0, 1.0, -1.0]]])
    target = np.array([[0, 2], [1, -100]])
    for eps in (0.0, 0.3):
        assert (
            _below(
                perplexity(logits, target, label_smoothing=eps),
                perplexity_error_scale(logits, target, label_smoothing=eps),
            )
            is None
        )


def test_segmentation_multiclass_kinks_mark_only_samples_near_the_kink():
    """intersection='min': the kink of min(p, y) is where the target class's softmax probability reaches 1. A
    sample whose target probability is 1/2 has none (it is judged); one whose logit gap makes it round to 1 has one
    (masked); 'product' has none anywhere."""
    from lossguard.harness.kernel.model import Example
    from lossguard.reference.segmentation import multiclass_kinks

    z = np.array([[[0.0], [0.0]], [[60.0], [0.0]]])  # (N=2, C=2, 1 pixel): p_target = 1/2, then 1 - e^-60
    target = np.array([[0], [0]])
    eps = float(np.finfo(np.float64).eps)
    kinks = multiclass_kinks(Example({"input": z, "target": target}, {"intersection": "min"}), eps)
    assert kinks.tolist() == [[False, False], [True, True]]
    assert not multiclass_kinks(Example({"input": z, "target": target}, {}), eps).any()


class _AbsoluteGradientCE:
    """Summed CE, right value, whose backward returns |the right gradient|: every component positive."""

    @staticmethod
    def build():
        import torch
        import torch.nn.functional as F

        class Function(torch.autograd.Function):
            @staticmethod
            def forward(ctx, z, target, eps):
                with torch.enable_grad():
                    leaf = z.detach().requires_grad_(True)
                    value = F.cross_entropy(leaf, target, reduction="sum", label_smoothing=eps)
                    (right,) = torch.autograd.grad(value, leaf)
                ctx.save_for_backward(right.abs())
                return value.detach()

            @staticmethod
            def backward(ctx, grad):
                (absolute,) = ctx.saved_tensors
                return grad * absolute, None, None

        def ce(input, target, weight=None, ignore_index=-100, reduction="mean", label_smoothing=0.0):
            plain = reduction != "sum" or weight is not None or target.is_floating_point() or label_smoothing == 0
            if plain or bool(torch.any(target == ignore_index)):
                return F.cross_entropy(
                    input, target, weight=weight, ignore_index=ignore_index, reduction=reduction,
                    label_smoothing=label_smoothing,
                )  # fmt: skip
            return Function.apply(input, target, label_smoothing)

        ce.__name__ = "ce_smoothing_gradient_all_positive"
        return ce


def test_label_smoothing_minimiser_weighs_the_component_of_the_wrong_sign():
    """Survivor: properties/identities.py, label_smoothing's minimiser check picks the component whose sign is wrong
    (the true class at or below 0, another class at or above 0) to weigh; with 'another class below 0' it weighed a
    right one. Planted: every gradient component positive, the true class's right: the others, wrong by twice their
    size, make the failure 'wrong', not 'imprecise'."""
    from judging import judge

    result = judge("label_smoothing", "cross_entropy", _AbsoluteGradientCE.build())
    assert result.status == "fail" and result.check == "minimiser", result.message
    assert result.severity == "wrong", (result.actual, result.expected, result.scale)
    assert result.actual > 0 > result.expected
