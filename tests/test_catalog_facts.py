"""Properties read the facts they need from the catalog entry, never from a loss's name.

A new entry that states the facts of the identities it tags (its ``outcome``, ``value_range`` and
``relations``) gets those properties without a change to any property: proven here by running the runner
on renamed copies of existing entries, which are not in lossguard's CATALOG (the caller extends it).
"""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path

import pytest
import torch

import lossguard.properties.base
from lossguard.catalog import CATALOG
from lossguard.harness.app.inventory import own, torch_builtins
from lossguard.harness.app.runner import Selection, plan, run, run_one
from lossguard.harness.kernel.model import BINARY, DTYPES, FACTS, LossSpec
from lossguard.properties.base import EVERY_DTYPE, FLOAT64_AND_FLOAT32, FLOAT64_ONLY, PROPERTIES, register

# lossguard's own implementation of a loss where there is one, torch's otherwise
IMPLEMENTATIONS = {impl.loss: impl for impl in (*torch_builtins(), *own())}
CPU_FLOAT64 = Selection(dtypes=("float64",), devices=("cpu",), profile="ci")


def _renamed(loss: str, name: str, **changes) -> tuple[LossSpec, dict[str, LossSpec], object]:
    """A copy of entry ``loss`` under a new ``name`` (not in CATALOG), the catalog extended with it, and
    a built-in implementation of ``loss`` bound to the new entry."""
    spec = dataclasses.replace(CATALOG[loss], name=name, **changes)
    impl = dataclasses.replace(IMPLEMENTATIONS[loss], loss=name, name=f"tests.{name}")
    return spec, {**CATALOG, name: spec}, impl


def test_a_new_binary_entry_gets_proper_scoring_without_editing_a_property():
    """A new binary loss tagged proper_scoring: planned and run from the caller's catalog, judged as binary."""
    spec, catalog, impl = _renamed("binary_cross_entropy_with_logits", "new_logistic_loss")
    assert spec.name not in CATALOG and spec.outcome == BINARY
    selection = dataclasses.replace(CPU_FLOAT64, properties=("proper_scoring",))
    assert [name for _, name, _, _ in plan([impl], selection, catalog)] == ["proper_scoring"]
    [result] = run([impl], selection, catalog=catalog)
    assert (result.loss, result.status) == ("new_logistic_loss", "pass"), result.message

    def improper(input, target, weight=None, reduction="mean", pos_weight=None):
        """The absolute error of the probability: linear in the report, so not proper."""
        loss = torch.abs(torch.sigmoid(input) - target)
        return loss.sum() if reduction == "sum" else loss.mean() if reduction == "mean" else loss

    wrong = dataclasses.replace(impl, fn=improper, name="tests.improper")
    caught = run_one(wrong, "proper_scoring", "cpu", "float64", CPU_FLOAT64, catalog)
    assert caught.status == "fail", caught.message
    assert "should exceed the expected loss" in caught.message


# property -> an entry tagging it whose renamed copy must still pass with a built-in implementation
IDENTITIES = [
    ("huber_smooth_l1", "huber_loss"),
    ("huber_smooth_l1", "smooth_l1_loss"),
    ("cross_entropy_kl", "kl_div"),
    ("cross_entropy_kl", "cross_entropy"),
    ("focal_identities", "sigmoid_focal_loss"),
    ("focal_identities", "softmax_focal_loss"),
    ("multilabel_mean_bce", "multilabel_soft_margin_loss"),
    ("proper_scoring", "cross_entropy"),
    ("box_loss_range", "iou_loss"),
    ("box_loss_range", "complete_box_iou_loss"),
    ("tversky_identities", "tversky_loss"),
    ("composite_sum", "bce_dice_loss"),
    ("composite_sum", "ce_dice_loss"),
    ("gan_bce_composition", "gan_discriminator_loss"),
    ("linear_materialised", "linear_cross_entropy"),
]


@pytest.mark.parametrize(("prop", "loss"), IDENTITIES, ids=[f"{p}-{loss}" for p, loss in IDENTITIES])
def test_a_renamed_entry_keeps_its_family_identities(prop, loss):
    _, catalog, impl = _renamed(loss, f"renamed_{loss}")
    result = run_one(impl, prop, "cpu", "float64", CPU_FLOAT64, catalog)
    assert result.status == "pass", result.message


def test_the_facts_drive_the_identity_not_the_name():
    """Stating another relation changes what the identity compares with: a GIoU entry whose value range is
    stated as [0, 1] (the IoU loss's) fails box_loss_range on a correct GIoU implementation."""
    _, catalog, impl = _renamed("generalized_box_iou_loss", "narrow_giou", value_range=(0.0, 1.0))
    result = run_one(impl, "box_loss_range", "cpu", "float64", CPU_FLOAT64, catalog)
    assert result.status == "fail" and "should lie in [0, 1]" in result.message, result.message


def test_a_missing_fact_is_an_error_of_the_catalog():
    _, catalog, impl = _renamed("binary_cross_entropy_with_logits", "no_outcome_loss", outcome="")
    result = run_one(impl, "proper_scoring", "cpu", "float64", CPU_FLOAT64, catalog)
    assert result.status == "error"
    assert "'no_outcome_loss'" in result.message and "states no outcome" in result.message


def test_every_entry_states_the_facts_its_properties_read():
    missing = [
        f"{spec.name} tags {tag} but states no {fact}"
        for spec in CATALOG.values()
        for tag in spec.properties
        for fact in PROPERTIES[tag].needs
        if not spec.states(fact)
    ]
    assert missing == []


def test_every_related_entry_is_in_the_catalog():
    unknown = [
        (spec.name, other) for spec in CATALOG.values() for other in spec.relations.names() if other not in CATALOG
    ]
    assert unknown == []


def test_an_unknown_outcome_raises_when_the_entry_is_built():
    with pytest.raises(ValueError, match=r"'odd_loss'.*'binray'"):
        dataclasses.replace(CATALOG["mse_loss"], name="odd_loss", outcome="binray")


# --- property dtype sets -------------------------------------------------------------------------


def test_dtype_sets_are_typed_sets_of_known_dtypes():
    assert (set(DTYPES), {"float64", "float32"}, {"float64"}) == (EVERY_DTYPE, FLOAT64_AND_FLOAT32, FLOAT64_ONLY)
    for prop in PROPERTIES.values():
        assert isinstance(prop.dtypes, frozenset) and prop.dtypes <= set(DTYPES), prop.name
        assert set(prop.needs) <= set(FACTS), prop.name


@pytest.mark.parametrize(
    ("dtypes", "error", "match"),
    [
        (frozenset({"float64", "flaot32"}), ValueError, r"'typo_property'.*'flaot32'"),
        ("float", TypeError, r"'typo_property'.*'float'"),
        (frozenset(), TypeError, r"'typo_property'"),
    ],
)
def test_register_rejects_a_bad_dtype_set(dtypes, error, match):
    with pytest.raises(error, match=match):
        register("typo_property", "never registered", dtypes=dtypes)
    assert "typo_property" not in PROPERTIES


def test_register_rejects_an_unknown_fact():
    with pytest.raises(ValueError, match=r"'typo_property'.*'relations\.cross_entrpy'"):
        register("typo_property", "never registered", needs=("relations.cross_entrpy",))
    assert "typo_property" not in PROPERTIES


# --- no name-keyed decision in the properties ------------------------------------------------------

_NAME_KEYED = [
    (re.compile(r"spec\.name\s*(==|!=|\bin\b|\bnot\s+in\b)"), "compares the entry's name"),
    (re.compile(r"(==|!=|\bin\b)\s*(subject\.)?spec\.name\b"), "compares the entry's name"),
    (re.compile(r"\[\s*(subject\.)?spec\.name\s*\]|\.get\(\s*(subject\.)?spec\.name\b"), "keys data by the name"),
    (re.compile(r"\.catalog\(\s*[rbuf]*[\"']"), "looks up an entry by a literal name"),
    (re.compile(r"^\s*\w+\s*=\s*(subject\.)?spec\.name\s*$"), "keeps the name to decide on it"),
]


def test_properties_decide_nothing_from_a_loss_name():
    """No comparison with, lookup by or keying on an entry's name in properties/*.py, and no string literal
    naming a catalog entry (a related entry's name comes from the entry's ``relations``)."""
    folder = Path(lossguard.properties.base.__file__).parent
    literal = re.compile(r"[\"'](" + "|".join(map(re.escape, CATALOG)) + r")[\"']")
    patterns = [*_NAME_KEYED, (literal, "names a catalog entry")]
    found = []
    for path in sorted(folder.glob("*.py")):
        for number, line in enumerate(path.read_text().splitlines(), start=1):
            for pattern, what in patterns:
                if pattern.search(line):
                    found.append(f"{path.name}:{number}: {what}: {line.strip()}")
    assert not found, "properties must read facts from the entry, not its name:\n" + "\n".join(found)
