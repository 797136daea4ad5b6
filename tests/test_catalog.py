"""The catalog is the whole canonical contract: every entry with a reference and an implementation, each fact
about its arguments and parameters stated once (the reference's signature; docs/LOSSES.md renders the rest
and tests/test_docs.py pins it)."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from lossguard.catalog import CATALOG
from lossguard.harness.app.inventory import implementations
from lossguard.harness.kernel.seeded import seeded_examples

ENTRIES = list(CATALOG.values())
IDS = [spec.name for spec in ENTRIES]


def test_lossguard_list_shows_every_entry():
    listed = subprocess.run(
        [sys.executable, "-m", "lossguard", "list", "--json"], capture_output=True, text=True, check=True
    )
    entries = {entry["name"]: entry["family"] for entry in json.loads(listed.stdout)}
    assert entries == {spec.name: spec.family for spec in ENTRIES}


@pytest.mark.parametrize("spec", ENTRIES, ids=IDS)
def test_every_entry_has_a_reference_and_an_implementation(spec):
    assert callable(spec.reference)
    missing = set(spec.differentiable) - set(spec.reference.differentiable)
    assert not missing, f"{spec.name}: no analytic gradient for {sorted(missing)} (differentiable names them)"
    assert any(impl.loss == spec.name for impl in implementations("builtin")), f"{spec.name} has no implementation"


@pytest.mark.parametrize("spec", ENTRIES, ids=IDS)
def test_what_an_entry_says_of_its_arguments_and_parameters_matches_its_reference(spec):
    """args, params and signature are derived from the reference's signature; every other field that names an
    argument or a parameter must name one of the reference's, or the entry (field named) is wrong."""
    arguments, keywords = set(spec.args), set(spec.params) | set(spec.variants)
    wrong = []

    def check(field: str, names) -> None:
        unknown = sorted(set(names) - arguments - keywords)
        if unknown:
            wrong.append(f"{spec.name}: LossSpec.{field} names {unknown}, not parameters of {spec.reference.__name__}")

    check("differentiable", spec.differentiable)
    for tag, restriction in spec.properties.items():
        check(f"properties[{tag!r}]", restriction)
    for case in spec.error_cases:
        check(f"error_cases ({case.description!r}) needs", case.needs)
    for example in seeded_examples(spec, count=3, dtype="float64"):
        check("examples (the arguments it builds)", [k for k, v in example.args.items() if v is not None])
        check("examples (the parameters it builds)", example.params)
        absent = sorted(arguments - set(example.args))
        if absent:
            wrong.append(f"{spec.name}: LossSpec.examples builds no {absent}, arguments of its reference")
    assert not wrong, "\n".join(wrong)
