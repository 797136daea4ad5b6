"""The reference-free properties (``lossguard.properties.reference_free``): what lossguard judges on a loss outside
its catalog, with no float64 reference, only the implementation itself.

(a) Every one passes on correct implementations of catalog losses bound as if they were outside the catalog
(``Binding(target=..., like=...)`` through ``compile_binding``: lossguard's own dice and Jaccard losses, torch's
mse_loss, binary_cross_entropy_with_logits and cross_entropy) in every dtype it runs in; ``low_precision`` passes on
a float16 result a quarter of its derived bound away; ``gradcheck`` passes on losses with kinks (a hinge, the Lovasz
hinge's sort); the reduction properties skip a loss without ``reduction``; and no property evaluates the entry's
reference (a free entry whose reference raises still passes).
(b) Every sub-check fails on a slightly wrong implementation (each planted bug below says how wrong), with the
sub-check's id and a counterexample.
(c) ``segmentation_models_pytorch``'s LovaszLoss and MONAI's HausdorffDTLoss get a verdict (pass, fail, xfail or skip,
with its reason) from every reference-free property, never an error.
"""

from __future__ import annotations

import dataclasses
import functools
import itertools

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st
from judging import CI

from lossguard.catalog import CATALOG
from lossguard.harness.app.bindings import compile_binding, free_entry
from lossguard.harness.app.inventory import bind
from lossguard.harness.app.runner import Selection, run, run_one
from lossguard.harness.kernel.binding import Binding
from lossguard.harness.kernel.failures import PropertyFailure
from lossguard.harness.kernel.model import Example, Finding, Implementation, LossSpec
from lossguard.harness.kernel.subject import Subject
from lossguard.implementations.own.segmentation import dice_loss
from lossguard.properties.base import PROPERTIES
from lossguard.properties.reference_free import CHAIN, FREE_TAGS

EVERY = Selection(dtypes=("float64", "float32", "float16", "bfloat16"), devices=("cpu",), profile="ci")


def free(fn, like: str) -> tuple[Implementation, dict[str, LossSpec]]:
    """``fn`` bound as a loss outside the catalog whose inputs are drawn as ``like``'s, and the catalog extended with
    its free entry (what ``compile_binding`` builds for a binding without ``loss``, for a function defined here)."""
    spec = free_entry(Binding(target=f"tests:{fn.__name__}", like=like, name=f"tests.{fn.__name__}"))
    return bind(spec.name, fn, spec.name, "user", catalog={spec.name: spec}), {**CATALOG, spec.name: spec}


def judge(prop: str, fn, like: str, dtype: str = "float64"):
    impl, catalog = free(fn, like)
    return run_one(impl, prop, "cpu", dtype, CI, catalog)


# --- (a) correct implementations pass ------------------------------------------------------------------------------

CORRECT = {
    "lossguard dice_loss": Binding(
        target="lossguard.implementations.own.segmentation:dice_loss", like="dice_loss", inspect=True
    ),
    "lossguard jaccard_loss": Binding(
        target="lossguard.implementations.own.segmentation:jaccard_loss", like="jaccard_loss", inspect=True
    ),
    "torch mse_loss": Binding(target="torch.nn.functional:mse_loss", like="mse_loss", inspect=True),
    "torch binary_cross_entropy_with_logits": Binding(
        target="torch.nn.functional:binary_cross_entropy_with_logits",
        like="binary_cross_entropy_with_logits",
        inspect=True,
    ),
    # PyTorch's 'mean' divides by the non-ignored targets, not by the 'none' elements (its documented convention,
    # which reduction_consistency's plain mean does not express): the binding supports no ignored target
    "torch cross_entropy": Binding(
        target="torch.nn.functional:cross_entropy",
        like="cross_entropy",
        params={"reduction": "reduction", "label_smoothing": "label_smoothing"},
        domain=("no-ignore-index",),
    ),
}


@pytest.mark.parametrize("name", list(CORRECT))
def test_correct_implementations_pass_every_reference_free_property(name):
    impl, spec = compile_binding(dataclasses.replace(CORRECT[name], name=name))
    results = run([impl], EVERY, catalog={**CATALOG, spec.name: spec})
    assert {r.property for r in results} == set(FREE_TAGS)
    wrong = [
        f"{r.property} {r.dtype}: {r.status} {r.message} {r.counterexample}" for r in results if r.status != "pass"
    ]
    # each takes reduction: every cell, the reduction properties' included, judged and passed
    assert not wrong, "\n".join(wrong)


# --- (b) planted bugs, one per sub-check ---------------------------------------------------------------------------


def _dice(p, target, reduction, smooth):
    """1 - (2 sum(p y) + smooth) / (sum p + sum y + smooth) per (sample, channel), reduced."""
    dims = tuple(range(2, p.dim()))
    inter, total = (p * target, p + target) if not dims else ((p * target).sum(dims), (p + target).sum(dims))
    loss = 1 - (2 * inter + smooth) / (total + smooth)
    return loss.sum() if reduction == "sum" else loss.mean() if reduction == "mean" else loss


def dice_exp_ratio_sigmoid(input, target, reduction="mean", smooth=1.0):
    """Dice on logits with sigmoid(z) computed as exp(z) / (1 + exp(z)): inf / inf = NaN once exp(z) overflows,
    at large positive logits only (z > 709 in float64)."""
    return _dice(torch.exp(input) / (1 + torch.exp(input)), target, reduction, smooth)


def kl_target_to_three_halves(input, target, reduction="mean", log_target=False):
    """t sqrt(t) - t input: its derivative in t, 1.5 sqrt(t) - input, is finite at t = 0, but autograd's is
    0 * inf = NaN there (sqrt's derivative times t); the difference quotients converge, so nothing excuses it."""
    loss = target * torch.sqrt(target) - target * input
    return loss.sum() if reduction == "sum" else loss.mean() if reduction == "mean" else loss


def l1_through_sqrt(input, target, reduction="mean"):
    """|e| computed as sqrt(e^2): the right value, but its gradient e / sqrt(e^2) is 0 / 0 = NaN where e = 0."""
    loss = torch.sqrt((input - target) ** 2)
    return loss.sum() if reduction == "sum" else loss.mean() if reduction == "mean" else loss


class _Scaled(torch.autograd.Function):
    """The identity on the value; the incoming gradient times (1 + 1e-5)."""

    @staticmethod
    def forward(ctx, x):
        return x.view_as(x)

    @staticmethod
    def backward(ctx, grad):
        return grad * (1 + 1e-5)


def dice_input_gradient_off(input, target, reduction="mean", smooth=1.0, from_logits=True, batch=False):
    """Dice whose gradient with respect to the logits is 1 + 1e-5 times the right one."""
    return dice_loss(
        _Scaled.apply(input), target, reduction=reduction, smooth=smooth, from_logits=from_logits, batch=batch
    )


def dice_target_gradient_off(input, target, reduction="mean", smooth=1.0, from_logits=True, batch=False):
    """Dice whose gradient with respect to the target mask is 1 + 1e-5 times the right one."""
    return dice_loss(
        input, _Scaled.apply(target), reduction=reduction, smooth=smooth, from_logits=from_logits, batch=batch
    )


def dice_scales_target_in_place(input, target, reduction="mean", smooth=1.0, from_logits=True, batch=False):
    """Dice that rescales its target mask in place by 1 - 2^-20 (a soft-label 'cleanup' left in)."""
    with torch.no_grad():
        target.mul_(1 - 2**-20)
    return dice_loss(input, target, reduction=reduction, smooth=smooth, from_logits=from_logits, batch=batch)


def mse_reseeds(input, target, reduction="mean"):
    """mse_loss that reseeds torch's random-number generator."""
    torch.manual_seed(1234)
    return F.mse_loss(input, target, reduction=reduction)


def mse_sets_default_dtype(input, target, reduction="mean"):
    """mse_loss that leaves torch's default dtype at float64."""
    torch.set_default_dtype(torch.float64)
    return F.mse_loss(input, target, reduction=reduction)


def mse_in_float32(input, target, reduction="mean"):
    """mse_loss returned as float32 whatever the input dtype."""
    return F.mse_loss(input, target, reduction=reduction).float()


_CALLS = itertools.count()


def mse_counter_noise(input, target, reduction="mean"):
    """mse_loss plus a relative 2^-40 on every other call (a counter standing in for a nondeterministic kernel)."""
    loss = F.mse_loss(input, target, reduction=reduction)
    return loss * (1 + 2**-40 * (next(_CALLS) % 2))


class _Noisy(torch.autograd.Function):
    """The identity on the value; the incoming gradient times 1 + 2^-40 on every other backward."""

    @staticmethod
    def forward(ctx, x):
        return x.view_as(x)

    @staticmethod
    def backward(ctx, grad):
        return grad * (1 + 2**-40 * (next(_CALLS) % 2))


def mse_counter_gradient_noise(input, target, reduction="mean"):
    """mse_loss whose gradient with respect to the input varies by a relative 2^-40 between calls."""
    return F.mse_loss(_Noisy.apply(input), target, reduction=reduction)


def mse_rows_coupled(input, target, reduction="mean"):
    """mse_loss whose 'none' element i carries 2^-40 of element i + 1 of the batch (a stray roll)."""
    loss = F.mse_loss(input, target, reduction=reduction)
    return loss + 2**-40 * loss.roll(-1, dims=0) if reduction == "none" else loss


def mse_sum_off(input, target, reduction="mean"):
    """mse_loss whose 'sum' is 1 + 2^-40 times the sum of its 'none' values."""
    loss = F.mse_loss(input, target, reduction=reduction)
    return loss * (1 + 2**-40) if reduction == "sum" else loss


def mse_mean_over_n_minus_one(input, target, reduction="mean"):
    """mse_loss whose 'mean' divides the sum by N - 1 (the unbiased-variance habit)."""
    if reduction == "mean":
        return F.mse_loss(input, target, reduction="sum") / (input.numel() - 1)
    return F.mse_loss(input, target, reduction=reduction)


def bce_naive_log_sigmoid(input, target, weight=None, reduction="mean", pos_weight=None):
    """BCE with logits in the input dtype through log(1 / (1 + exp(-z))) and log(1 / (1 + exp(z))): exp overflows
    float16 once |z| > 11."""
    loss = -(target * torch.log(1 / (1 + torch.exp(-input))) + (1 - target) * torch.log(1 / (1 + torch.exp(input))))
    return loss.sum() if reduction == "sum" else loss.mean() if reduction == "mean" else loss


def cross_entropy_unshifted(input, target, reduction="mean"):
    """Cross-entropy whose log-sum-exp sums exp(z) in the input dtype without subtracting max z first: the sum
    overflows float16 once a logit exceeds 11."""
    classes = 1 if input.dim() > 1 else 0
    log_p = input - torch.log(torch.exp(input).sum(dim=classes, keepdim=True))
    if target.is_floating_point():
        loss = -(target * log_p).sum(dim=classes)
        return loss.sum() if reduction == "sum" else loss.mean() if reduction == "mean" else loss
    return F.nll_loss(log_p, target, reduction=reduction)


def _bound_float16(input, target, reduction) -> torch.Tensor:
    """gamma_m(u_16) S of the property's derivation (without T and tiny_16), from float64 autograd."""
    x, y = (t.detach().double().requires_grad_() for t in (input, target))
    f = F.mse_loss(x, y, reduction=reduction)
    gx, gy = torch.autograd.grad(f, [x, y])
    scale = f.abs() + 1 + (x.abs().clamp(min=1) * gx.abs()).sum() + (y.abs().clamp(min=1) * gy.abs()).sum()
    m = CHAIN + x.numel() + y.numel() + 1
    u = 2.0**-11
    return m * u / (1 - m * u) * scale


def mse_float16_off_by(factor: float):
    def mse(input, target, reduction="mean"):
        loss = F.mse_loss(input, target, reduction=reduction)
        if input.dtype == torch.float16 and reduction != "none":
            loss = (loss.double() + factor * _bound_float16(input, target, reduction)).half()
        return loss

    mse.__name__ = f"mse_float16_off_by_{factor:g}".replace(".", "_")
    return mse


# property, sub-check, planted bug, the catalog entry its inputs are drawn like, dtype, what is wrong
PLANTED = [
    ("finite", "value", dice_exp_ratio_sigmoid, "dice_loss", "float64"),
    ("finite", "gradient", l1_through_sqrt, "l1_loss", "float64"),
    ("finite", "gradient", kl_target_to_three_halves, "kl_div", "float64"),
    ("gradcheck", "first_argument", dice_input_gradient_off, "dice_loss", "float64"),
    ("gradcheck", "other_arguments", dice_target_gradient_off, "dice_loss", "float64"),
    ("immutability", "immutability", dice_scales_target_in_place, "dice_loss", "float64"),
    ("state", "rng", mse_reseeds, "mse_loss", "float64"),
    ("state", "settings", mse_sets_default_dtype, "mse_loss", "float64"),
    ("dtype", "output", mse_in_float32, "mse_loss", "float64"),
    ("determinism", "value", mse_counter_noise, "mse_loss", "float64"),
    ("determinism", "gradient", mse_counter_gradient_noise, "mse_loss", "float64"),
    ("batch_independence", "row", mse_rows_coupled, "mse_loss", "float64"),
    ("reduction_consistency", "sum", mse_sum_off, "mse_loss", "float64"),
    ("reduction_consistency", "mean", mse_mean_over_n_minus_one, "mse_loss", "float64"),
    ("low_precision", "value", bce_naive_log_sigmoid, "binary_cross_entropy_with_logits", "float16"),
    ("low_precision", "value", cross_entropy_unshifted, "cross_entropy", "float16"),
    ("low_precision", "value", mse_float16_off_by(4.0), "mse_loss", "float16"),
]


@pytest.mark.parametrize(
    ("prop", "check", "wrong", "like", "dtype"), PLANTED, ids=[f"{c[0]}-{c[1]}-{c[2].__name__}" for c in PLANTED]
)
def test_each_sub_check_catches_its_planted_bug(prop, check, wrong, like, dtype):
    result = judge(prop, wrong, like, dtype)
    assert result.status == "fail", f"{prop} did not catch {wrong.__name__}: {result.status} {result.message}"
    assert result.check == check, f"{wrong.__name__} failed {prop}'s check {result.check!r}, not {check!r}"
    assert result.counterexample, "a failure names its counterexample"


def test_every_sub_check_has_a_planted_bug():
    declared = {(name, check) for name in FREE_TAGS for check in PROPERTIES[name].checks}
    assert declared == {(prop, check) for prop, check, *_ in PLANTED}


def test_the_low_precision_bound_is_the_derived_one():
    """A float16 mse off by a quarter of gamma_m(u_16) S passes (the bound is at least that), off by four times it
    fails (above, PLANTED): the tolerance is the derivation's, within a factor 4 either way."""
    result = judge("low_precision", mse_float16_off_by(0.25), "mse_loss", "float16")
    assert result.status == "pass", f"{result.status} {result.message} {result.counterexample}"
    assert result.comparisons > 0


def hinge(input, target, reduction="mean"):
    """relu(1 - z (2y - 1)): a kink where z (2y - 1) = 1 (drawn logits of exactly +-1 meet it)."""
    loss = torch.relu(1 - input * (2 * target - 1))
    return loss.sum() if reduction == "sum" else loss.mean() if reduction == "mean" else loss


def lovasz_hinge(input, target):
    """The Lovasz hinge (Berman et al. 2018), as segmentation_models_pytorch computes it, in the input dtype: a sort
    of the errors (a kink wherever two errors tie or cross) and a relu (a kink at each zero error)."""
    logits, labels = input.reshape(-1), target.reshape(-1)
    errors = 1 - logits * (2 * labels - 1)
    errors_sorted, order = torch.sort(errors, descending=True)
    gt = labels[order]
    intersection = gt.sum() - gt.cumsum(0)
    union = gt.sum() + (1 - gt).cumsum(0)
    jaccard = 1 - intersection / union
    weights = torch.cat([jaccard[:1], jaccard[1:] - jaccard[:-1]])
    return torch.dot(F.relu(errors_sorted), weights)


@pytest.mark.parametrize(("loss", "like"), [(hinge, "binary_cross_entropy_with_logits"), (lovasz_hinge, "dice_loss")])
def test_gradcheck_accepts_a_subgradient_at_a_kink(loss, like):
    """Losses with kinks (a relu, a sort): a step that straddles one judges nothing, one centred on one allows either
    one-sided slope (autograd's subgradient), and the rest are judged: no failure of a correct gradient."""
    result = judge("gradcheck", loss, like)
    assert result.status == "pass", f"{result.status} {result.message} {result.counterexample}"
    assert result.comparisons > 0


_AT_THE_SINGULARITY = itertools.count()


def _reached(target: torch.Tensor) -> None:
    """Count a float64 call with a gradient at a zero element of ``target``, where the loss has no finite slope."""
    if target.dtype == torch.float64 and target.requires_grad and bool((target == 0).any()):
        next(_AT_THE_SINGULARITY)


def kl_div_torch(input, target, reduction="mean", log_target=False):
    """torch's kl_div: t (log t - input), whose derivative in t, log t + 1 - input, is -inf at t = 0 (autograd's:
    NaN, xlogy's t / t)."""
    _reached(target)
    return F.kl_div(input, target, reduction=reduction, log_target=log_target)


def sqrt_abs_error(input, target, reduction="mean"):
    """sqrt|input - target|: both one-sided slopes at a zero error are unbounded (autograd's gradient: NaN)."""
    _reached((input - target).detach().requires_grad_(input.requires_grad))
    loss = torch.sqrt(torch.abs(input - target))
    return loss.sum() if reduction == "sum" else loss.mean() if reduction == "mean" else loss


@pytest.mark.parametrize(("loss", "like"), [(kl_div_torch, "kl_div"), (sqrt_abs_error, "l1_loss")])
def test_finite_excuses_a_gradient_where_the_loss_has_no_finite_slope(loss, like):
    """x log x and sqrt at 0 have no finite derivative: a correct implementation's non-finite gradient there passes
    (before the excuse, torch's own kl_div failed finite in float64), and the examples did reach the point."""
    before = next(_AT_THE_SINGULARITY)
    result = judge("finite", loss, like)
    assert result.status == "pass", f"{result.status} {result.message} {result.counterexample}"
    assert next(_AT_THE_SINGULARITY) > before + 1, "no example reached a zero target with a gradient"


def test_reduction_properties_skip_a_loss_without_reduction():
    def total(input, target):
        return F.mse_loss(input, target, reduction="sum")

    for prop in ("batch_independence", "reduction_consistency"):
        result = judge(prop, total, "mse_loss")
        assert result.status == "skip" and result.comparisons == 0, (prop, result.status, result.message)


def _raising_reference(reference):
    """``reference`` with its signature (the entry's contract is read from it), raising when anything evaluates it."""

    @functools.wraps(reference)
    def poisoned(*args, **kwargs):
        raise AssertionError("a reference-free property evaluated the entry's reference")

    poisoned.error_scale = poisoned.grad = poisoned.terms = poisoned
    return poisoned


def test_properties_never_evaluate_the_entry_reference():
    """Every reference-free property, on a free entry whose reference raises when evaluated, still judges."""

    def l1(input, target, reduction="mean"):
        return F.l1_loss(input, target, reduction=reduction)

    impl, catalog = free(l1, "l1_loss")
    poisoned = dataclasses.replace(catalog[impl.loss], reference=_raising_reference(catalog[impl.loss].reference))
    for prop in FREE_TAGS:
        for dtype in sorted(PROPERTIES[prop].dtypes & {"float64", "float16"}):
            result = run_one(impl, prop, "cpu", dtype, CI, {**catalog, impl.loss: poisoned})
            assert result.status == "pass", (prop, dtype, result.status, result.message)


# --- (c) third-party losses outside the catalog --------------------------------------------------------------------


def _audit(binding: Binding) -> list:
    impl, spec = compile_binding(binding)
    return run([impl], EVERY, catalog={**CATALOG, spec.name: spec})


def _assert_verdicts(results) -> None:
    assert {r.property for r in results} == set(FREE_TAGS)
    errors = [f"{r.property} {r.dtype}: {r.message}" for r in results if r.status in ("error", "xpass")]
    assert not errors, "\n".join(errors)
    assert all(r.message for r in results if r.status != "pass"), "every verdict but a pass says why"


SMP_FLOAT64 = "RuntimeError: dot : expected both vectors to have same dtype"


def test_smp_lovasz_loss_gets_a_verdict_from_every_property():
    losses = pytest.importorskip(
        "segmentation_models_pytorch.losses",
        reason="segmentation_models_pytorch not installed (optional extra lossguard[audit])",
    )
    # confirmed outside lossguard: float64 logits meet labels cast to float32 in lovasz_grad, and torch.dot refuses
    with pytest.raises(RuntimeError, match="expected both vectors to have same dtype"):
        ones = torch.ones(1, 1, 2, 2, dtype=torch.float64)
        losses.LovaszLoss(mode="binary")(ones, ones)
    # the properties that run in float64 alone meet that departure; every other runs in the dtypes it supports
    float64_only = ("gradcheck", "immutability")
    raises = tuple(
        Finding(
            name,
            "float64 inputs raise: lovasz_grad casts the labels to float32 and torch.dot refuses mixed dtypes",
            "segmentation-models-pytorch 0.6.0",
            dtypes=("float64",),
            raises=SMP_FLOAT64,
        )
        for name in float64_only
    )
    binding = Binding(
        target="segmentation_models_pytorch.losses:LovaszLoss",
        like="dice_loss",
        init={"mode": "binary"},
        name="smp.LovaszLoss",
        findings=raises,
    )
    impl, spec = compile_binding(binding)
    catalog = {**CATALOG, spec.name: spec}
    results = run([impl], dataclasses.replace(EVERY, dtypes=("float32", "float16", "bfloat16")), catalog=catalog)
    results += run([impl], dataclasses.replace(EVERY, dtypes=("float64",), properties=float64_only), catalog=catalog)
    _assert_verdicts(results)
    assert {r.status for r in results if r.dtype == "float64"} == {"xfail"}
    # its own float64 evaluation raises, so the checks that judge against it have no yardstick: skipped, saying so
    yardstick = [r for r in results if r.property in ("finite", "low_precision")]
    assert all(r.status == "skip" and "raised in float64" in r.message for r in yardstick), yardstick


def test_monai_hausdorff_dt_loss_gets_a_verdict_from_every_property():
    pytest.importorskip("monai.losses", reason="monai not installed (optional extra lossguard[audit])")
    binding = Binding(
        target="monai.losses:HausdorffDTLoss",
        like="dice_loss",
        init={"sigmoid": True},
        params={"reduction": "reduction"},
        output={"none": "squeeze-spatial"},
        domain=("image",),
        name="monai.HausdorffDTLoss",
    )
    _assert_verdicts(_audit(binding))


def cosine_distance_without_eps(input1, input2):
    """1 - <x, y> / (|x| |y|) per row, no epsilon (optax's cosine_distance with epsilon=0)."""
    return 1 - (input1 * input2).sum(-1) / (input1.norm(dim=-1) * input2.norm(dim=-1))


def _judged_at(prop: str, name: str, point: Example, like: str, args: tuple[str, ...], dtype: str) -> Subject:
    """Property ``prop`` on the function ``name`` of this file (bound like ``like``, taking ``args``) in ``dtype``,
    every draw at ``point``; raises PropertyFailure on a failure."""
    binding = Binding(target=f"{__file__}:{name}", like=like, args=args)
    impl, spec = compile_binding(binding, kind="user")
    subject = Subject(spec, impl, dtype, "cpu", witness=point)

    @settings(max_examples=5, derandomize=True, database=None, deadline=None)
    @given(st.data())
    def judge_at_the_point(data):
        PROPERTIES[prop].check(subject, data)

    judge_at_the_point()
    return subject


def _gradcheck_at(name: str, point: Example) -> Subject:
    """gradcheck on the function ``name`` (two arguments, like cosine_embedding_loss's) at ``point``."""
    return _judged_at("gradcheck", name, point, "cosine_embedding_loss", ("input1", "input2"), "float64")


def exp_error_through_a_ratio(input, target):
    """sum exp(2 z) / exp(z) = sum exp(z), z = 12 + 2^-10 (input - target): at input = target the value is e^12 =
    162755, past float16's 65504, and its gradient e^12 / 1024 = 159 is not; float16 computes inf / inf = NaN for
    both."""
    z = 12 + 2.0**-10 * (input - target)
    return (torch.exp(2 * z) / torch.exp(z)).sum()


def exp_error_nan_gradient(input, target):
    """sum exp(d) whose float16 gradient is NaN wherever d > 4 (a finite value there, 55 and up; float64 right)."""
    d = input - target
    return torch.exp(_NanWhereLarge.apply(d) if d.dtype == torch.float16 else d).sum()


class _NanWhereLarge(torch.autograd.Function):
    """The identity on the value; the incoming gradient NaN where the input exceeds 4."""

    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return x.view_as(x)

    @staticmethod
    def backward(ctx, grad):
        (x,) = ctx.saved_tensors
        return torch.where(x > 4, torch.full_like(grad, float("nan")), grad)


def _error_point(d: float) -> Example:
    return Example({"input": np.array([d]), "target": np.array([0.0])}, {})


def test_finite_asks_nothing_of_the_gradient_where_the_value_itself_may_overflow():
    """float16: a loss of 162755, past float16's 65504, is not asked to be finite, nor is its gradient (159, but
    backward through an infinity gives inf - inf or NaN). Where the value is representable (exp(8) = 2981) a NaN
    gradient still fails."""
    _judged_at("finite", "exp_error_through_a_ratio", _error_point(0.0), "l1_loss", ("input", "target"), "float16")
    with pytest.raises(PropertyFailure):
        _judged_at("finite", "exp_error_nan_gradient", _error_point(8.0), "l1_loss", ("input", "target"), "float16")


def _cosine_point(norm: float) -> Example:
    return Example({"input1": np.array([[2 * norm, -norm]]), "input2": np.array([[0.75, 0.5]])}, {})


def test_gradcheck_raises_no_false_alarm_at_an_ill_conditioned_point():
    """At a vector of norm 2e-16 the cosine distance's gradient is about 1e15 and the rounding of its differences
    at x itself is huge: gradcheck's smoothness test takes the rounding at the moved points only (S(x) enters the
    even part alone). Before that it judged a step far wider than the input there and failed optax's
    cosine_distance, a correct gradient. Now that point passes (its steps are all swamped: nothing is judged),
    and at a well-conditioned point (norm 1) the same machinery still judges, and catches a gradient a relative
    1e-5 off."""
    _gradcheck_at("cosine_distance_without_eps", _cosine_point(1e-16))
    assert _gradcheck_at("cosine_distance_without_eps", _cosine_point(1.0)).observations.comparisons > 0
    with pytest.raises(PropertyFailure):
        _gradcheck_at("cosine_distance_off", _cosine_point(1.0))


def test_gradcheck_tightens_its_step_where_the_loss_varies_on_a_smaller_scale():
    """At an input of norm 1e-4 the cosine distance changes on a scale of 1e-4, and the first step (2^-7) leaves a
    truncation that hid a gradient a relative 1e-5 off (as at norm 1e-2). gradcheck now tries smaller steps while
    the step-dependent part of its allowance dominates: the gradient a relative 1e-5 off fails at both norms, the
    right one passes, judged."""
    for norm in (1e-2, 1e-4):
        assert _gradcheck_at("cosine_distance_without_eps", _cosine_point(norm)).observations.comparisons > 0
        with pytest.raises(PropertyFailure):
            _gradcheck_at("cosine_distance_off", _cosine_point(norm))


def cosine_distance_in_float32(input1, input2):
    """``cosine_distance_without_eps`` computed and returned in float32 whatever the input dtype."""
    return cosine_distance_without_eps(input1.float(), input2.float())


def cosine_distance_in_float32_as_float64(input1, input2):
    """``cosine_distance_in_float32`` handed back in the input's dtype: float64 that is float32-accurate."""
    return cosine_distance_in_float32(input1, input2).to(input1.dtype)


def test_gradcheck_takes_the_precision_of_the_evaluations_from_the_returned_dtype():
    """A loss that returns float32 for float64 inputs is float32-accurate, a departure the dtype property judges:
    gradcheck takes its evaluations' rounding at float32's roundoff and judges its gradient without a false alarm.
    The same float32 computation handed back as float64 promises float64: its differences at the small steps are
    float32 noise, and it fails."""
    assert _gradcheck_at("cosine_distance_in_float32", _cosine_point(1.0)).observations.comparisons > 0
    with pytest.raises(PropertyFailure):
        _gradcheck_at("cosine_distance_in_float32_as_float64", _cosine_point(1.0))


def cosine_distance_off(input1, input2):
    """``cosine_distance_without_eps`` whose gradient is a relative 1e-5 too large."""
    return cosine_distance_without_eps(_Scaled.apply(input1), input2)
