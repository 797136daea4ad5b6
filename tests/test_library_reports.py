"""What a person reads about each audited library: for one loss of each, the diagnosed convention or the severity
and the root-cause grouping of a confirmed defect (each recorded in implementations/bindings/<library>.py and
confirmed without lossguard in tests/bindings/test_<library>.py).

The results are the shipped bindings' own (``lossguard audit --library NAME`` on the CPU, ci profile); a recorded
finding is ``xfail`` with its severity computed from its witness's numbers, and the failures it explains across
properties are one root cause.
"""

from __future__ import annotations

import pytest

from lossguard.harness.app import bindings, jobs
from lossguard.harness.app.runner import Selection, run_one
from lossguard.reports.findings import group

CI = Selection(devices=("cpu",), profile="ci")
FLOAT32_COMPUTATION = "computes in float32"

# library, binding label, properties, dtype, severity, the one root cause's words, the diagnosed convention's
CASES = [
    # 1 - p_t formed by subtraction: a NaN gradient for gamma < 1 where p rounds to the target
    ("torchvision", "torchvision.sigmoid_focal_loss", ("gradient", "stability"), "float64", "nan-inf", "1 - p_t", ""),
    # the p-norm without |x - y|: NaN for odd p, wrong values and gradients everywhere the difference is negative
    (
        "optax",
        "optax.triplet_margin_loss",
        ("agreement", "gradient", "stability", "zero_at_perfect", "margin_met"),
        "float64",
        "nan-inf",
        "without the absolute",
        "",
    ),
    # float16 log(p + tiny) with p formed in float16: the value and the gradient are wrong
    ("pml", "pml.SelfSupervisedLoss(NTXentLoss)", ("agreement", "gradient"), "float16", "wrong", "-log(p + tiny)", ""),
    # alpha outside [0, 1] and a negative gamma are accepted
    ("kornia", "kornia.binary_focal_loss_with_logits", ("invalid_input",), "float64", "validation-gap", "alpha", ""),
    # multilabel mode averages per-class focal losses: the gradient and its stability see the same departure
    ("smp", "smp.FocalLoss.multilabel", ("gradient", "stability"), "float64", "wrong", "multilabel mode", ""),
    # FocalLoss casts to float32: diagnosed, a convention
    (
        "monai",
        "monai.FocalLoss",
        ("focal_identities", "zero_at_perfect"),
        "float64",
        "convention",
        "casts its inputs to float32",
        FLOAT32_COMPUTATION,
    ),
    # PolyCrossEntropy computes in float32 whatever the input: its output's dtype, diagnosed
    ("timm", "timm.PolyCrossEntropy", ("dtype",), "float64", "convention", "computes in float32", FLOAT32_COMPUTATION),
]


@pytest.mark.parametrize(
    ("library", "label", "properties", "dtype", "severity", "words", "convention"),
    CASES,
    ids=[case[0] for case in CASES],
)
def test_each_library_s_defect_is_one_root_cause_with_its_severity(
    library, label, properties, dtype, severity, words, convention
):
    if bindings.library(library).installed() is None:
        pytest.skip(f"{library} (optional, .[audit]) is not installed")
    prepared = jobs.Prepared()
    jobs.add_library(prepared, library)
    impl = next(i for i in prepared.impls if i.name == label)
    results = [run_one(impl, prop, "cpu", dtype, CI, prepared.catalog) for prop in properties]
    assert {r.status for r in results} == {"xfail"}, "\n".join(
        f"{r.property} {r.status}: {r.message} on {r.counterexample}" for r in results
    )
    causes = group(results)
    assert len(causes) == 1, [c.reason[:80] for c in causes]
    (cause,) = causes
    assert cause.severity == severity
    assert words in cause.reason
    assert [b.split(" (")[0] for b in cause.breaks()] == list(properties)
    assert convention in cause.worst.convention and bool(convention) == bool(cause.worst.convention)
