"""Generation depends on the seed alone (``lossguard.harness.kernel.profiles.seed_only_generation``): importing
a local module full of literal constants leaves the seeded examples and a ``ci`` property run unchanged, where
Hypothesis' own constant mixing (restored here by monkeypatch) changes the examples."""

from __future__ import annotations

import importlib

import numpy as np
from hypothesis.internal.conjecture import providers

from lossguard.catalog import spec
from lossguard.harness.kernel import profiles, seeded
from lossguard.harness.kernel.seeded import seeded_examples


def _import_module_of_constants(tmp_path, monkeypatch, name: str, salt: int) -> None:
    """A local module of 400 float constants a builder might draw (its own, by ``salt``), imported."""
    values = ", ".join(f"{k}.{salt}{k:03d}e-{k % 30}" for k in range(1, 400))
    (tmp_path / f"{name}.py").write_text(f"VALUES = [{values}]\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    importlib.import_module(name)


def _draws() -> list:
    examples = seeded_examples(spec("huber_loss"), count=30, dtype="float64", regime="extreme")
    return [np.concatenate([np.ravel(a) for a in e.args.values()]).tolist() for e in examples]


def test_examples_do_not_depend_on_the_modules_loaded(tmp_path, monkeypatch):
    before = _draws()
    _import_module_of_constants(tmp_path, monkeypatch, "lossguard_constants_a", 1)
    assert _draws() == before


def test_hypothesis_own_constant_mixing_would_change_them(tmp_path, monkeypatch):
    """The sensitivity of the test above: with Hypothesis' own function, the same import changes the draws."""
    monkeypatch.setattr(providers, "_get_local_constants", profiles.HYPOTHESIS_LOCAL_CONSTANTS)
    monkeypatch.setattr(seeded, "seed_only_generation", lambda: None)
    providers.CONSTANTS_CACHE.cache.clear()
    before = _draws()
    _import_module_of_constants(tmp_path, monkeypatch, "lossguard_constants_b", 2)
    after = _draws()
    providers.CONSTANTS_CACHE.cache.clear()
    assert after != before, "the loaded constants no longer reach generation"
