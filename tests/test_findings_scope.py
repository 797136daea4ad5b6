"""Findings scope a cell, they do not blind it (docs/ARCHITECTURE.md, "Findings carry a witness").

A cell with a recorded finding is judged in two parts: the finding's witness must still fail inside the
finding's domain (else ``xpass``), and the property's search runs as for any other cell with the domain
discarded, so a second departure outside it is a plain ``fail``. An implementation that raises is ``error``
unless the finding names that exception (``raises``). These tests plant such second departures, and check that
every recorded finding's domain holds its witness and leaves some of the loss's inputs outside (no predicate
covers a whole cell).
"""

from __future__ import annotations

import copy
import dataclasses

import numpy as np
import torch
import torch.nn.functional as F

from lossguard.catalog import CATALOG
from lossguard.harness.app.inventory import bind, implementations
from lossguard.harness.app.runner import Selection, _findings, plan, run_one
from lossguard.harness.kernel.model import Domain, Example, Finding
from lossguard.harness.kernel.seeded import seeded_examples
from lossguard.implementations.torch_builtins import FINDINGS
from lossguard.reference._core import Gradient

CI = Selection(profile="ci", devices=("cpu",))


def _torch(loss: str):
    return next(i for i in implementations("torch") if i.loss == loss)


class _ScaledGradient(torch.autograd.Function):
    """Identity forward; the backward multiplies the incoming gradient by ``factor``."""

    @staticmethod
    def forward(ctx, x, factor):
        ctx.save_for_backward(factor)
        return x.view_as(x)

    @staticmethod
    def backward(ctx, grad):
        (factor,) = ctx.saved_tensors
        return grad * factor, None


def bce_with_scaled_gradient(input, target, weight=None, reduction="mean"):
    """torch's binary_cross_entropy with a second bug: d loss / d input also scaled by (1 + 2^-20) for p in (0, 1)."""
    factor = torch.where((input > 0) & (input < 1), 1.0 + 2.0**-20, 1.0).to(input.dtype)
    scaled = _ScaledGradient.apply(input, factor.detach())
    return F.binary_cross_entropy(scaled, target, weight=weight, reduction=reduction)


def test_a_second_bug_in_a_cell_with_a_finding_is_a_fail():
    assert run_one(_torch("binary_cross_entropy"), "gradient", "cpu", "float64", CI).status == "xfail"
    planted = bind(
        "binary_cross_entropy", bce_with_scaled_gradient, "tests.bce_scaled", "user", FINDINGS["binary_cross_entropy"]
    )
    result = run_one(planted, "gradient", "cpu", "float64", CI)
    assert result.status == "fail", result.message
    assert "d loss / d input" in result.message and "outside the recorded findings' domains" in result.message
    assert "input=" in result.counterexample


def _poisson_with_sign_error():
    """A copy of the poisson entry whose reference (a copy, the source untouched) negates the target gradient."""
    spec = CATALOG["poisson_nll_loss"]
    reference = copy.copy(spec.reference)
    original = spec.reference._gradient

    def wrong(*args, **kwargs):
        grads = dict(original(*args, **kwargs))
        grads["target"] = Gradient(-grads["target"].value, grads["target"].scale)
        return grads

    reference._gradient = wrong
    return dataclasses.replace(spec, reference=reference)


def test_a_sign_error_in_the_reference_outside_the_finding_is_a_fail():
    catalog = {**CATALOG, "poisson_nll_loss": _poisson_with_sign_error()}
    result = run_one(_torch("poisson_nll_loss"), "gradient", "cpu", "float64", CI, catalog)
    assert result.status == "fail", result.message
    assert "d loss / d target" in result.message
    assert CATALOG["poisson_nll_loss"].reference._gradient is not catalog["poisson_nll_loss"].reference._gradient


def _always_raises(input, target, margin=1.0, reduction="mean"):
    raise RuntimeError("this hinge is broken")


def test_an_implementation_that_raises_is_an_error_not_a_failure_by_definition():
    hinge = bind("hinge_loss", _always_raises, "tests.raising_hinge", "user")
    result = run_one(hinge, "proper_scoring", "cpu", "float64", CI)
    assert result.status == "error", result.message
    assert "this hinge is broken" in result.message


def test_an_exception_is_xfail_only_where_the_finding_names_it():
    finding = Finding(
        "non_negative",
        "pretend raising were the recorded departure",
        "tests",
        raises=r"RuntimeError: this hinge",
        witness=Example({"input": np.array([0.5]), "target": np.array([1.0])}, {}),
    )
    hinge = bind("hinge_loss", _always_raises, "tests.raising_hinge", "user", (finding,))
    result = run_one(hinge, "non_negative", "cpu", "float64", CI)
    assert result.status == "xfail", result.message
    other = dataclasses.replace(finding, raises=r"ValueError")
    result = run_one(hinge.with_findings((other,)), "non_negative", "cpu", "float64", CI)
    assert result.status == "error", result.message
    negative = bind("hinge_loss", _always_negative, "tests.negative_hinge", "user", (finding,))
    result = run_one(negative, "non_negative", "cpu", "float64", CI)  # raises= never covers a wrong value
    assert result.status == "xpass" and "outside the finding's domain" in result.message, result.message


def _always_negative(input, target, margin=1.0, reduction="mean"):
    return -torch.ones_like(input).sum()


def test_a_finding_whose_witness_passes_is_xpass():
    stale = _torch("mse_loss").with_findings(
        (
            Finding(
                "agreement",
                "pretend mse_loss were inaccurate at 0.5",
                "torch 0.0",
                witness=Example({"input": np.array([0.5]), "target": np.array([1.0])}, {}),
                domain=lambda example, dtype: bool(np.any(example.args["input"] == 0.5)),
                where="input = 0.5",
            ),
        )
    )
    result = run_one(stale, "agreement", "cpu", "float64", CI)
    assert result.status == "xpass"
    assert "no longer reproduces" in result.message and "the witness passes" in result.message


def test_a_witness_failing_outside_the_domain_is_xpass():
    bce = _torch("binary_cross_entropy")
    [gradient] = [f for f in FINDINGS["binary_cross_entropy"] if f.property == "gradient"]
    elsewhere = dataclasses.replace(gradient, domain=lambda example, dtype: False, where="nowhere")
    result = run_one(bce.with_findings((elsewhere,)), "gradient", "cpu", "float64", CI)
    assert result.status == "xpass"
    assert "outside the finding's domain" in result.message


def multi_margin_without_range_check(input, target, p=1, margin=1.0, weight=None, reduction="mean"):
    """torch's multi_margin_loss that also accepts a class index out of range (clamped into it): a second
    invalid_input departure beside the recorded negative margin."""
    return F.multi_margin_loss(
        input, target.clamp(0, input.shape[-1] - 1), p=p, margin=margin, weight=weight, reduction=reduction
    )


def test_invalid_input_skips_only_the_recorded_error_case():
    assert run_one(_torch("multi_margin_loss"), "invalid_input", "cpu", "float64", CI).status == "xfail"
    planted = bind(
        "multi_margin_loss", multi_margin_without_range_check, "tests.mm", "user", FINDINGS["multi_margin_loss"]
    )
    result = run_one(planted, "invalid_input", "cpu", "float64", CI)
    assert result.status == "fail", result.message
    assert "class index" in result.message


def test_every_finding_states_its_domain_and_its_witness_lies_in_it():
    for loss, findings in FINDINGS.items():
        cases = {c.description for c in CATALOG[loss].error_cases}
        for finding in findings:
            assert finding.domain is not None or finding.case is not None, (loss, finding.property)
            assert finding.witness is not None and finding.scope() != "no domain stated", (loss, finding.property)
            if finding.case is not None:
                assert finding.case in cases, (loss, finding.case)
            if finding.domain is not None:
                for dtype in finding.dtypes or ("float64",):
                    assert finding.domain(finding.witness, dtype), (loss, finding.property, dtype)
    for spec in CATALOG.values():
        for finding in spec.by_definition:
            assert finding.upstream == "by definition" and finding.witness is not None and finding.domain is not None
            assert finding.domain(finding.witness, "float64"), spec.name


def _finding_cells():
    impls = [*implementations("torch"), *implementations("own")]
    return [
        (impl, name, dtype)
        for impl in impls
        for _, name, device, dtype in plan([impl], CI)
        if not name.startswith("(") and _findings(impl, CATALOG[impl.loss], name, dtype, device)
    ]


def test_the_built_in_findings_still_give_their_xfail_cells():
    cells = _finding_cells()
    assert len(cells) == 47
    results = {(impl.name, name, dtype): run_one(impl, name, "cpu", dtype, CI) for impl, name, dtype in cells}
    assert {k: r.status for k, r in results.items() if r.status != "xfail"} == {}
    assert all("domain:" in r.message for r in results.values())


def test_no_finding_domain_covers_every_input():
    """Each finding's domain is narrower than the loss's inputs: on the entry's own seeded examples (both regimes,
    the finding's dtypes) it excludes at least one, so the search still judges that cell somewhere. A predicate
    that held everywhere would blind its cell as the witness-only judgement once did."""
    for loss, findings in FINDINGS.items():
        spec = CATALOG[loss]
        for finding in findings:
            if finding.domain is None:
                continue
            for dtype in finding.dtypes or ("float64",):
                drawn = [
                    example
                    for regime in ("typical", "extreme")
                    for example in seeded_examples(spec, count=16, dtype=dtype, regime=regime)
                ]
                outside = [example for example in drawn if not finding.domain(example, dtype)]
                assert outside, f"{loss} {finding.property} {dtype}: its domain ({finding.where}) covers every draw"


def test_a_witness_the_property_does_not_judge_is_xpass_not_a_skip():
    """A witness outside what the property judges (every gradient element at l1's kink input = target; a batch of
    one row, where the batch property needs two) never skips the cell, which would hide the finding and every other
    departure there: the record must be updated."""
    l1 = _torch("l1_loss")
    at_kink = Finding(
        "gradient",
        "pretend l1_loss's gradient were wrong at input = target",
        "torch 0.0",
        witness=Example({"input": np.array([0.5]), "target": np.array([0.5])}, {"reduction": "none"}),
        domain=lambda example, dtype: True,
        where="everywhere",
    )
    one_row = Finding(
        "batch",
        "pretend l1_loss's rows were coupled",
        "torch 0.0",
        witness=Example({"input": np.array([0.5]), "target": np.array([1.0])}, {}),
        domain=lambda example, dtype: True,
        where="everywhere",
    )
    for finding, why in ((at_kink, "lay outside what the property judges"), (one_row, "no example in the property")):
        assert run_one(l1, finding.property, "cpu", "float64", CI).status == "pass"
        result = run_one(l1.with_findings((finding,)), finding.property, "cpu", "float64", CI)
        assert result.status == "xpass", result.message
        assert "no longer reproduces, update the record (the witness is not judged: " in result.message
        assert why in result.message, result.message


def _mse_without_half(input, target, reduction="mean"):
    """torch's mse_loss, which does not compute in float16 (as an implementation without a Half kernel raises)."""
    if input.dtype == torch.float16:
        raise RuntimeError("\"mse_cpu\" not implemented for 'Half'")
    return F.mse_loss(input, target, reduction=reduction)


def test_a_witness_in_a_dtype_the_implementation_does_not_support_is_a_skip():
    finding = Finding(
        "agreement",
        "pretend mse_loss were inaccurate in float16",
        "tests",
        dtypes=("float16",),
        witness=Example({"input": np.array([0.5]), "target": np.array([1.0])}, {}),
        domain=lambda example, dtype: True,
        where="everywhere",
    )
    planted = bind("mse_loss", _mse_without_half, "tests.mse_without_half", "user", (finding,))
    result = run_one(planted, "agreement", "cpu", "float16", CI)
    assert result.status == "skip", result.message
    assert result.message.startswith("float16 not supported by the implementation: "), result.message
    assert run_one(planted, "agreement", "cpu", "float32", CI).status == "pass"


def test_a_failure_by_definition_is_judged_at_the_reduction_a_binding_fixes():
    """hinge is improper by definition (the entry's finding, no record of the implementation). An implementation that
    computes reduction='none' only (optax's hinge_loss) is scored on the sum of its output, the same loss: xfail."""
    hinge = next(i for i in implementations("own") if i.loss == "hinge_loss")
    assert run_one(hinge, "proper_scoring", "cpu", "float64", CI).status == "xfail"
    none_only = dataclasses.replace(hinge, name="tests.hinge_none", fixed={"reduction": "none"})
    assert run_one(none_only, "proper_scoring", "cpu", "float64", CI).status == "xfail"


def test_a_failure_by_definition_not_judged_on_an_implementation_leaves_the_cell_to_the_search():
    """An implementation that computes the hinge at margin 0 only (optax's perceptron_loss) takes none of
    proper_scoring's reports (they ask for the canonical margin 1, another loss): its cell is the search's, a skip that
    says why, never an xpass nor a silent one; so is one whose binding's domain takes no report."""
    hinge = next(i for i in implementations("own") if i.loss == "hinge_loss")
    perceptron = dataclasses.replace(hinge, name="tests.perceptron", fixed={"reduction": "none", "margin": 0.0})
    nothing = Domain("nothing", "takes no example", contains=lambda example: False)
    unfit = dataclasses.replace(hinge, name="tests.hinge_unfit", domain=(nothing,))
    for impl in (perceptron, unfit):
        result = run_one(impl, "proper_scoring", "cpu", "float64", CI)
        assert result.status == "skip", result.message
        assert "hinge is not strictly proper" in result.message
        assert "is not judged on this implementation" in result.message
