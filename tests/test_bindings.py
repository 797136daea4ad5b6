"""Bindings as data (docs/BINDINGS.md): a user's TOML binding audits a loss whose names, constructor and output
layout differ from the contract, with no Python written; every key does what it says; a broken binding is a
usage error in one line; the named domains keep examples inside the contract."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from lossguard.catalog import CATALOG
from lossguard.harness.app import bindings as B
from lossguard.harness.app import jobs
from lossguard.harness.app.runner import Selection, run
from lossguard.harness.kernel.binding import Binding
from lossguard.harness.kernel.domains import DOMAINS
from lossguard.harness.kernel.model import Example

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ROOT / "examples"
FOCAL_BINDING = EXAMPLES / "focal_binding.toml"
FOCAL = f"{EXAMPLES / 'focal_with_conventions.py'}:FocalWithConventions"


def lossguard(*words: str, cwd: Path = ROOT) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "lossguard", *words],
        cwd=cwd,
        capture_output=True,
        text=True,
        env={**os.environ, "CI": "true"},
    )


def focal(**changes) -> Binding:
    """The fixture's binding as the TOML file states it, with ``changes``."""
    _, (binding,) = B.read_file(FOCAL_BINDING)
    return Binding(**{**binding.__dict__, **changes})


def verdicts(binding: Binding, *properties: str, dtypes=("float64",)) -> dict[str, str]:
    impl, spec = B.compile_binding(binding, kind="user")
    selection = Selection(dtypes=dtypes, devices=("cpu",), properties=properties or None, profile="ci")
    return {f"{r.property}/{r.dtype}": r.status for r in run([impl], selection, catalog={**CATALOG, spec.name: spec})}


def test_a_toml_binding_audits_a_loss_of_other_conventions_without_python(tmp_path):
    """The whole audit of the fixture through its TOML binding: every property on every dtype holds, and the
    header says how the binding adapted it."""
    done = lossguard("audit", "--binding", str(FOCAL_BINDING), "--device", "cpu", "--json", str(tmp_path / "r.json"))
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-2000:]
    assert "renames gamma -> focusing" in done.stdout
    assert "constructed with mode='multiclass'" in done.stdout
    assert "reduction 'none': the 'none' output keeps a class axis" in done.stdout
    assert "lossguard: OK" in done.stdout.splitlines()[-1]


def test_the_same_binding_inline_on_the_command_line():
    done = lossguard(
        "audit", FOCAL, "--loss", "softmax_focal_loss", "--param", "gamma=focusing", "--param", "reduction=reduction",
        "--init", "mode=multiclass", "--output", "none=sum-classes", "--domain", "batched",
        "--domain", "no-ignore-index", "--device", "cpu", "--dtype", "float64",
        "--property", "agreement", "--property", "gradient", "--property", "invalid_input",
    )  # fmt: skip
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-2000:]
    assert "lossguard: OK 3 results: 3 pass" in done.stdout


@pytest.mark.parametrize(
    ("changes", "property_", "status"),
    [
        ({"output": {}}, "agreement", "fail"),  # its 'none' keeps the class axis: another shape
        ({"params": {"gamma": "gamma", "reduction": "reduction"}}, "agreement", "error"),  # it has no 'gamma'
        ({"init": {}}, "agreement", "error"),  # no mode: its constructor raises
    ],
    ids=["without output layout", "a rename it does not take", "without mode"],
)
def test_each_part_of_the_binding_is_needed(changes, property_, status):
    """Dropping any one key the fixture needs gives a verdict that is not a pass: the keys do what they say."""
    assert verdicts(focal(**changes), property_)[f"{property_}/float64"] == status


def test_fixed_and_variant_values_are_pinned_and_never_passed():
    """``fixed`` tells lossguard what the loss computes with unasked: the fixture without the gamma rename
    computes with its own default 2.0 (the canonical default too, so that passes); a binding that says it
    computes with 1.0 is judged against gamma = 1 and fails."""
    without_gamma = {"params": {"reduction": "reduction"}}
    assert verdicts(focal(**without_gamma, fixed={"gamma": 2.0}), "agreement")["agreement/float64"] == "pass"
    assert verdicts(focal(**without_gamma, fixed={"gamma": 1.0}), "agreement")["agreement/float64"] == "fail"


def test_a_none_sentinel_is_passed_for_the_canonical_none():
    import torchvision  # noqa: F401  (a dependency of the pinned environment)

    binding = Binding(
        target="torchvision.ops:sigmoid_focal_loss",
        loss="sigmoid_focal_loss",
        params={"alpha": "alpha", "gamma": "gamma", "reduction": "reduction"},
    )
    impl, _ = B.compile_binding(binding)
    example = Example({"input": np.array([0.3]), "target": np.array([1.0])}, {"alpha": None, "reduction": "sum"})
    import torch

    args = {"input": torch.tensor([0.3]), "target": torch.tensor([1.0])}
    with pytest.raises(TypeError):  # None reaches torchvision, which compares it with 0
        impl.call(impl.fn, args, dict(example.params))
    sentinel, _ = B.compile_binding(Binding(**{**binding.__dict__, "none": {"alpha": -1}}))
    assert float(sentinel.call(sentinel.fn, args, dict(example.params))) > 0


@pytest.mark.parametrize(
    ("table", "expected"),
    [
        ('["x"]\nloss = "mse_loss"\n', "has no 'target'"),
        ('["x"]\ntarget = "torch.nn.functional:mse_loss"\nloss = "mse_loss"\nbogus = 1\n', "unknown key 'bogus'"),
        ('["x"]\ntarget = "torch.nn.functional:mse_loss"\nloss = "no_such_loss"\n', "unknown loss 'no_such_loss'"),
        ('["x"]\ntarget = "torch.nn.functional:mse_loss"\nloss = "mse_loss"\ndomain = ["flat"]\n', "unknown domain"),
        ('["x"]\ntarget = "torch.nn.functional:mse_loss"\nloss = "mse_loss"\nparams = { delta = "d" }\n',
         "'delta' is not a parameter of the contract"),
        ('["x"]\ntarget = "torch.nn.functional:mse_loss"\nloss = "mse_loss"\nvariant = { smoothing = "x" }\n',
         "'smoothing' is not a variant"),
        ('["x"]\ntarget = "torch.nn.functional:mse_loss"\nloss = "mse_loss"\noutput = { none = "flip" }\n',
         "output layout 'flip'"),
        ('["x"\n', "not valid TOML"),
        ('["x"]\ntarget = "torch.nn.functional:no_such_fn"\nloss = "mse_loss"\n', "has no attribute"),
    ],
    ids=["no target", "unknown key", "unknown loss", "unknown domain", "unknown parameter", "unknown variant",
         "unknown layout", "bad toml", "missing attribute"],
)  # fmt: skip
def test_a_broken_binding_file_is_a_usage_error_in_one_line(tmp_path, table, expected):
    path = tmp_path / "binding.toml"
    path.write_text(table)
    done = lossguard("audit", "--binding", str(path), "--no-isolate", "--dtype", "float64", "--device", "cpu")
    assert done.returncode == 2, done.stdout + done.stderr
    assert done.stderr.count("\n") == 1 and expected in done.stderr, done.stderr


@pytest.mark.parametrize(
    "words",
    [
        ["audit"],
        ["audit", FOCAL, "--binding", str(FOCAL_BINDING)],
        ["audit", "--library", "no_such_library"],
        ["audit", "--binding", str(FOCAL_BINDING), "--loss", "mse_loss"],
        ["audit", FOCAL, "--loss", "softmax_focal_loss", "--init", "mode"],
        ["audit", FOCAL, "--loss", "softmax_focal_loss", "--binding-name", "x"],
        ["audit", "--library", "all", "--binding-name", "x"],
    ],
    ids=[
        "nothing to audit",
        "two sources",
        "unknown library",
        "--loss with a file",
        "bad NAME=VALUE",
        "--binding-name without a file",
        "--binding-name with several libraries",
    ],
)
def test_audit_sources_are_checked(words):
    done = lossguard(*words)
    assert done.returncode == 2 and done.stderr.startswith("lossguard: error: "), done.stderr


def test_a_library_not_installed_is_reported_as_such_never_as_a_pass(tmp_path, monkeypatch):
    (tmp_path / "ghostlib.toml").write_text(
        'library = "ghostlib"\ndistribution = "ghostlib-not-installed"\nexports = "ghostlib"\n\n'
        '["ghostlib.loss"]\ntarget = "ghostlib:loss"\nloss = "mse_loss"\n'
    )
    monkeypatch.setattr(B, "SHIPPED", tmp_path)
    prepared = jobs.Prepared()
    jobs.add_library(prepared, "ghostlib")
    assert prepared.impls == []
    (note,) = prepared.known
    assert note.status == "skip" and "ghostlib-not-installed is not installed" in note.message


def test_an_export_without_a_binding_is_reported(tmp_path, monkeypatch):
    (tmp_path / "fn.toml").write_text(
        'library = "fn"\ndistribution = "torch"\nexports = "torch.nn.functional"\nexport_pattern = "^(mse|l1)_loss$"\n'
        '\n["fn.mse"]\ntarget = "torch.nn.functional:mse_loss"\nloss = "mse_loss"\n'
    )
    monkeypatch.setattr(B, "SHIPPED", tmp_path)
    prepared = jobs.Prepared()
    jobs.add_library(prepared, "fn")
    assert [i.name for i in prepared.impls] == ["fn.mse"]
    (note,) = prepared.known
    assert note.implementation == "torch.nn.functional.l1_loss" and note.status == "skip"
    assert "without a binding" in note.message
    labelled = jobs.Prepared()  # a reproduce command's --binding-name: that binding, no unbound exports
    jobs.add_library(labelled, "fn", "fn.mse")
    assert [i.name for i in labelled.impls] == ["fn.mse"] and labelled.known == []
    with pytest.raises(B.BindingError, match=r"none labelled 'fn\.l1'"):
        jobs.add_library(jobs.Prepared(), "fn", "fn.l1")


# --- the named domains: a projection lands inside the part, and inside the contract ------------------------------

SAMPLES = {
    "cross_entropy": CATALOG["cross_entropy"],
    "dice_loss": CATALOG["dice_loss"],
    "binary_cross_entropy": CATALOG["binary_cross_entropy"],
    "multiclass_dice_loss": CATALOG["multiclass_dice_loss"],
}
APPLIES = {
    "hard-targets": ("dice_loss", "binary_cross_entropy"),
    "spatial": ("dice_loss", "multiclass_dice_loss"),
    "batched": ("cross_entropy",),
    "no-ignore-index": ("cross_entropy", "multiclass_dice_loss"),
    "class-indices": ("cross_entropy",),
    "class-probabilities": ("cross_entropy",),
}


@pytest.mark.parametrize(("domain", "entry"), [(d, e) for d, es in APPLIES.items() for e in es])
@settings(max_examples=30, deadline=None, derandomize=True, database=None)
@given(data=st.data())
def test_a_projected_example_lies_in_the_part_and_the_reference_takes_it(domain, entry, data):
    spec = SAMPLES[entry]
    example = spec.examples(data.draw, "float64", "typical", lambda strategies: dict(spec.params))
    part = DOMAINS[domain]
    projected = example if part.contains(example) else part.project(example)
    assert part.contains(projected)
    with np.errstate(all="ignore"):
        value = np.asarray(spec.reference(**projected.kwargs()))
    assert value.shape is not None  # the reference accepts it: still inside the contract


def test_every_domain_is_documented():
    documented = (ROOT / "docs" / "BINDINGS.md").read_text()
    for domain in DOMAINS.values():
        assert f"| `{domain.name}` | {domain.description} |" in documented, domain.name


def test_several_samples_takes_batches_of_two_or_more():
    part = DOMAINS["several-samples"]
    assert part.contains(Example({"input": np.zeros((2, 3))}, {}))
    assert not part.contains(Example({"input": np.zeros((1, 3))}, {}))
    assert not part.contains(Example({"input": np.zeros(3)}, {}))


def test_non_constant_rows_takes_rows_of_two_distinct_entries_or_more():
    part = DOMAINS["non-constant-rows"]
    labels = np.array([0, 1])
    assert part.contains(Example({"embeddings": np.array([[0.0, 1.0], [2.0, 1.0]]), "labels": labels}, {}))
    assert not part.contains(Example({"embeddings": np.array([[0.0, 1.0], [1.0, 1.0]]), "labels": labels}, {}))
    assert not part.contains(Example({"embeddings": np.array([[0.0], [1.0]]), "labels": labels}, {}))  # D = 1


def test_proper_boxes_projects_a_zero_side_and_leaves_proper_boxes_alone():
    part = DOMAINS["proper-boxes"]
    good = Example({"boxes1": np.array([[0.0, 0.0, 1.0, 1.0]]), "boxes2": np.array([[0.0, 0.0, 2.0, 1.0]])}, {})
    empty = Example({"boxes1": np.array([[0.0, 0.0, 0.0, 1.0]]), "boxes2": np.array([[0.0, 0.0, 2.0, 1.0]])}, {})
    assert part.contains(good) and not part.contains(empty) and part.contains(part.project(empty))


PER_ELEMENT = """
def squared(input, target):
    return (input - target) ** 2


def coupled(input, target):  # each row also sees the batch's mean, by a relative 1e-9
    squares = (input - target) ** 2
    return squares + 1e-9 * squares.mean()
"""


@pytest.mark.parametrize(("name", "status"), [("squared", "pass"), ("coupled", "fail")])
def test_a_fixed_reduction_none_lets_the_per_element_properties_run(tmp_path, name, status):
    """A loss with no ``reduction`` that returns per-element values (optax's) binds reduction='none' as fixed:
    the properties that only need 'none' run on it (batch independence here) and catch a row coupled to the
    batch; 'reduction', which needs 'sum' and 'mean', is not in its domain."""
    (tmp_path / "per_element.py").write_text(PER_ELEMENT)
    binding = Binding(target=f"{tmp_path / 'per_element.py'}:{name}", loss="mse_loss", fixed={"reduction": "none"})
    found = verdicts(binding, "batch", "reduction")
    assert found == {"batch/float64": status, "reduction/float64": "skip"}


def test_a_property_asking_for_a_value_the_binding_fixes_otherwise_says_which(tmp_path):
    """A loss that only computes the mean (fixed reduction='mean') cannot give the 'none' values batch
    independence compares: the skip names the parameter asked for and the value the binding fixes."""
    (tmp_path / "mean_only.py").write_text("def mean_only(input, target):\n    return ((input - target) ** 2).mean()\n")
    binding = Binding(target=f"{tmp_path / 'mean_only.py'}:mean_only", loss="mse_loss", fixed={"reduction": "mean"})
    impl, spec = B.compile_binding(binding, kind="user")
    selection = Selection(dtypes=("float64",), devices=("cpu",), properties=("batch", "agreement"), profile="ci")
    results = {r.property: r for r in run([impl], selection, catalog={**CATALOG, spec.name: spec})}
    assert results["agreement"].status == "pass"
    assert results["batch"].status == "skip"
    assert "needs reduction='none', which this implementation never computes" in results["batch"].message
    assert "its binding fixes reduction='mean'" in results["batch"].message
