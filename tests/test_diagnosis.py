"""The convention that differs (``lossguard.harness.app.diagnosis``): a failure is diagnosed as the variant or the
usual convention the implementation follows, verified on the counterexample and on seeded examples, and a
convention-like but wrong implementation (32 units of roundoff of the judged scale off, 4 times the allowance) is a
defect, never a convention.

Each audited library's shipped loss is bound without the variant its binding declares: the diagnosis must name
that variant. timm's catalogued losses (LabelSmoothingCrossEntropy, SoftTargetCrossEntropy, BinaryCrossEntropy)
follow the canonical contract: their bindings declare no variant to diagnose.
"""

from __future__ import annotations

import dataclasses
import re

import pytest
import torch
import torch.nn.functional as F

from lossguard.catalog import CATALOG
from lossguard.harness.app import bindings as B
from lossguard.harness.app import diagnosis
from lossguard.harness.app.runner import Selection, run_one
from lossguard.harness.kernel.model import Implementation, PropertyResult
from lossguard.harness.kernel.subject import Subject

from planted import _reduce, _scale, _u, _value_bias

CI = Selection(dtypes=("float64",), devices=("cpu",), profile="ci")


def judged(impl: Implementation, prop: str = "agreement", dtype: str = "float64", catalog=None) -> PropertyResult:
    """One run of ``prop`` on ``impl`` (CPU, the ci profile), diagnosis included."""
    return run_one(impl, prop, "cpu", dtype, CI, catalog)


def _variant(entry: str, name: str, value, canonical) -> str:
    return f"matches {entry} with {name}={value!r}; differs from the canonical ({name}={canonical!r})"


# --- each audited library: the shipped binding without its declared variant -------------------------------------

LIBRARIES = [
    # (library module, library, binding label, binding changes, property, the diagnosis)
    (
        "torchvision",
        "torchvision",
        "torchvision.complete_box_iou_loss",
        {"variant": {}},
        "gradient",
        _variant("complete_box_iou_loss", "alpha_gradient", "detached", "through"),
    ),
    (
        "segmentation_models_pytorch",
        "smp",
        "smp.DiceLoss.binary",
        {"variant": {"empty": "zero", "intersection": "min"}},
        "agreement",
        _variant("dice_loss", "smooth_counted", "twice", "once"),
    ),
    (
        "pytorch_metric_learning",
        "pml",
        "pml.ContrastiveLoss",
        {"variant": {}},
        "agreement",
        _variant("contrastive_loss", "squared", False, True),
    ),
    (
        "optax",
        "optax",
        "optax.triplet_margin_loss",
        {"variant": {}},
        "agreement",
        _variant("triplet_margin_loss", "eps_mode", "root", "difference"),
    ),
    (
        "kornia",
        "kornia",
        "kornia.dice_loss",
        {"variant": {"pooling": "classes"}},
        "agreement",
        _variant("multiclass_dice_loss", "smoothing", "denominator", "both"),
    ),
    (
        "kornia",
        "kornia",
        "kornia.focal_loss",
        {"variant": {}},
        "agreement",
        _variant("softmax_focal_loss", "mean_over", "samples and classes", "samples"),
    ),
    (
        "monai",
        "monai",
        "monai.DiceLoss.jaccard",
        {"variant": {}},
        "agreement",
        _variant("jaccard_loss", "smooth_counted", "half", "once"),
    ),
]


def _shipped(library: str, label: str, **changes) -> tuple[Implementation, dict]:
    binding = next(b for b in B.library(library).bindings if b.label == label)
    impl, spec = B.compile_binding(dataclasses.replace(binding, **changes))
    return impl, {**CATALOG, spec.name: spec}


@pytest.mark.parametrize(
    ("module", "library", "label", "changes", "prop", "sentence"), LIBRARIES, ids=[c[2] for c in LIBRARIES]
)
def test_a_library_loss_bound_without_its_variant_is_diagnosed_with_it(module, library, label, changes, prop, sentence):
    pytest.importorskip(module)
    impl, catalog = _shipped(library, label, **changes)
    result = judged(impl, prop, catalog=catalog)
    assert result.status == "fail", result.message
    assert result.convention == sentence, result.message
    assert result.severity == "convention"


def test_a_library_per_class_output_unmapped_is_diagnosed():
    """kornia's focal loss returns its per-class terms for 'none'; bound without the sum over classes."""
    pytest.importorskip("kornia")
    impl, catalog = _shipped("kornia", "kornia.focal_loss", output={})
    result = judged(impl, catalog=catalog)
    assert result.status == "fail"
    assert re.fullmatch(
        r"the 'none' output is per class: an extra axis 1 \(the C = \d+ classes\) whose sum is the canonical",
        result.convention,
    ), (result.convention, result.message)


# --- planted implementations: each convention found, the same convention a little wrong not --------------------


def _bound(fn, loss: str, accepted=("reduction",)) -> Implementation:
    return Implementation(name=fn.__name__, loss=loss, kind="user", fn=fn, accepted=frozenset(accepted))


def _mean_over_batch(input, target, reduction="mean"):
    """mse whose 'mean' divides by the batch size."""
    loss = (input - target) ** 2
    if reduction == "mean":
        return loss.sum() / (input.shape[0] if input.ndim else 1)
    return _reduce(loss, reduction)


def _mean_over_batch_wrong(input, target, reduction="mean"):
    """``_mean_over_batch`` plus 32 u of the reference 'sum''s scale (more than the 'mean''s allowance)."""
    value = _mean_over_batch(input, target, reduction)
    return _value_bias(
        "mse_loss", value, input=input, target=target, reduction="sum" if reduction == "mean" else "none"
    )


def _sum_averages(input, target, reduction="mean"):
    """mse whose 'sum' is the mean."""
    return _reduce((input - target) ** 2, "mean" if reduction == "sum" else reduction)


def _sum_averages_wrong(input, target, reduction="mean"):
    return _value_bias("mse_loss", _sum_averages(input, target, reduction), input=input, target=target, reduction="sum")


def _twice(input, target, reduction="mean"):
    """mse times 2 (the 1/2 of a squared-error convention forgotten the other way)."""
    return 2 * F.mse_loss(input, target, reduction=reduction)


def _twice_wrong(input, target, reduction="mean"):
    value = _twice(input, target, reduction)
    return _value_bias("mse_loss", value, input=input, target=target, reduction=reduction)


def _in_float32(input, target, reduction="mean"):
    """mse computed in float32 whatever the input dtype, returned in it."""
    return F.mse_loss(input.float(), target.float(), reduction=reduction).to(input.dtype)


def _in_float32_wrong(input, target, reduction="mean"):
    """``_in_float32`` 32 float32 units of roundoff of the scale off, still float32 numbers."""
    value = F.mse_loss(input.float(), target.float(), reduction=reduction)
    return _value_bias("mse_loss", value, input=input, target=target, reduction=reduction).to(input.dtype)


def _imprecise(input, target, reduction="mean"):
    """mse in float64, 32 float64 units of roundoff of the scale off: within float32's policy, never float32's
    numbers (imprecise, not a float32 computation)."""
    value = F.mse_loss(input, target, reduction=reduction)
    return _value_bias("mse_loss", value, input=input, target=target, reduction=reduction)


def _class_axis(input) -> int:
    return 1 if input.ndim > 1 else 0


def _per_class(input, target, reduction="mean"):
    """cross_entropy whose 'none' keeps the class axis: -t_c log p_c per class."""
    if reduction != "none":
        return F.cross_entropy(input, target, reduction=reduction)
    axis = _class_axis(input)
    log_p = F.log_softmax(input, dim=axis)
    if target.is_floating_point():
        return -(target * log_p)
    valid = (target != -100).unsqueeze(axis)
    onehot = F.one_hot(target.clamp(min=0), input.shape[axis]).movedim(-1, axis)
    return -(onehot * valid * log_p)


def _per_class_wrong(input, target, reduction="mean"):
    value = _per_class(input, target, reduction)
    if reduction != "none":
        return value
    scale = _scale("cross_entropy", value, input=input, target=target, reduction="none")
    return value + 32 * _u(value) * scale.unsqueeze(_class_axis(input))


def _triplet_root(anchor, positive, negative, margin=1.0, reduction="mean"):
    """triplet margin loss with eps under the root: (sum_k (x_k - y_k)^2 + eps)^(1/2), optax's form."""

    def distance(x, y):
        return (((x - y) ** 2).sum(-1) + 1e-6).sqrt()

    return _reduce(torch.clamp(distance(anchor, positive) - distance(anchor, negative) + margin, min=0), reduction)


def _triplet_root_wrong(anchor, positive, negative, margin=1.0, reduction="mean"):
    value = _triplet_root(anchor, positive, negative, margin, reduction)
    call = {"anchor": anchor, "positive": positive, "negative": negative, "margin": margin, "reduction": reduction}
    return _value_bias("triplet_margin_loss", value, eps_mode="root", **call)


PLANTED = [
    # (right, wrong, loss, accepted, property, the diagnosis of the right one: a regular expression)
    (
        _mean_over_batch,
        _mean_over_batch_wrong,
        "mse_loss",
        ("reduction",),
        "reduction",
        r"the 'mean' divides by the batch size N = \d+ \(the canonical: the \d+ elements\)",
    ),
    (
        _sum_averages,
        _sum_averages_wrong,
        "mse_loss",
        ("reduction",),
        "reduction",
        r"the 'sum' divides by the \d+ elements \(the canonical: 1, a sum\)",
    ),
    (_twice, _twice_wrong, "mse_loss", ("reduction",), "agreement", r"the loss is the canonical times 2"),
    (
        _in_float32,
        _in_float32_wrong,
        "mse_loss",
        ("reduction",),
        "agreement",
        r"computes in float32; its float64 result is float32-accurate",
    ),
    (
        _per_class,
        _per_class_wrong,
        "cross_entropy",
        ("reduction",),
        "agreement",
        r"the 'none' output is per class: an extra axis \d \(the C = \d+ classes\) whose sum is the canonical",
    ),
    (
        _triplet_root,
        _triplet_root_wrong,
        "triplet_margin_loss",
        ("margin", "reduction"),
        "agreement",
        re.escape(_variant("triplet_margin_loss", "eps_mode", "root", "difference")),
    ),
]


@pytest.mark.parametrize(
    ("right", "wrong", "loss", "accepted", "prop", "sentence"), PLANTED, ids=[p[0].__name__ for p in PLANTED]
)
def test_a_planted_convention_is_diagnosed(right, wrong, loss, accepted, prop, sentence):
    result = judged(_bound(right, loss, accepted), prop)
    assert result.status == "fail", result.message
    assert re.fullmatch(sentence, result.convention), (result.convention, result.message, result.counterexample)
    assert result.severity == "convention"


@pytest.mark.parametrize(
    ("right", "wrong", "loss", "accepted", "prop", "sentence"), PLANTED, ids=[p[1].__name__ for p in PLANTED]
)
def test_the_same_convention_32_ulps_off_is_a_defect(right, wrong, loss, accepted, prop, sentence):
    result = judged(_bound(wrong, loss, accepted), prop)
    assert result.status == "fail", result.message
    assert result.convention == "", (result.convention, result.message)
    assert result.severity != "convention"


# --- the rules of the diagnosis ------------------------------------------------------------------------------------


def test_a_float64_computation_a_few_ulps_off_is_not_said_to_compute_in_float32():
    result = judged(_bound(_imprecise, "mse_loss"))
    assert result.status == "fail", result.message
    assert (result.convention, result.severity) == ("", "imprecise")


def test_every_catalog_variant_has_values_to_try():
    """Each variant of the catalog is reachable: its other values are stated (or it is a bool), and the reference
    takes each of them."""
    from lossguard.harness.kernel.seeded import seeded_example

    for spec in CATALOG.values():
        for name in spec.variants:
            assert spec.alternatives(name), f"{spec.name}: variant {name!r} states no other value"
            example = seeded_example(spec, dtype="float64")
            for value in spec.alternatives(name):
                spec.reference(**example.replace(**{name: value}).kwargs())


def test_one_coincidental_match_is_not_enough(monkeypatch):
    """The counterexample alone proves nothing: without other examples to confirm it, nothing is reported."""
    impl = _bound(_twice, "mse_loss")
    assert judged(impl).convention == "the loss is the canonical times 2"
    monkeypatch.setattr(diagnosis, "_other_observations", lambda *arguments: iter(()))
    assert judged(impl).convention == ""


def test_only_a_failure_or_a_recorded_finding_with_its_example_is_diagnosed():
    impl = _bound(_twice, "mse_loss")
    subject = Subject(CATALOG["mse_loss"], impl, "float64", "cpu")
    failed = judged(impl)
    for status in ("error", "xpass", "pass"):
        assert diagnosis.diagnose(dataclasses.replace(failed, status=status), subject) == ""
    assert diagnosis.diagnose(dataclasses.replace(failed, example=None), subject) == ""
    assert diagnosis.diagnose(dataclasses.replace(failed, property="invalid_input"), subject) == ""
    assert diagnosis.diagnose(failed, subject) == "the loss is the canonical times 2"
    recorded = dataclasses.replace(failed, status="xfail")  # a recorded finding, diagnosed on its witness
    assert diagnosis.diagnose(recorded, subject) == "the loss is the canonical times 2"


def test_a_correct_implementation_passes_undiagnosed():
    result = judged(
        _bound(lambda input, target, reduction="mean": F.mse_loss(input, target, reduction=reduction), "mse_loss")
    )
    assert (result.status, result.convention, result.severity) == ("pass", "", "")
