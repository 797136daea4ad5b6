"""docs/LOSSES.md is the catalog rendered by lossguard.harness.app.docs: it must not drift from the code."""

from __future__ import annotations

from pathlib import Path

import pytest

from lossguard.catalog import CATALOG
from lossguard.harness.app import docs
from lossguard.properties.base import PROPERTIES

LOSSES_MD = Path(__file__).resolve().parents[1] / "docs" / "LOSSES.md"
REGENERATE = "regenerate with python -m lossguard.harness.app.docs > docs/LOSSES.md"


@pytest.fixture(scope="module")
def rendered() -> str:
    return docs.render()


def test_losses_md_is_up_to_date(rendered: str) -> None:
    assert LOSSES_MD.is_file(), f"docs/LOSSES.md is missing; {REGENERATE}"
    assert LOSSES_MD.read_text(encoding="utf-8") == rendered, f"docs/LOSSES.md is stale; {REGENERATE}"


@pytest.mark.parametrize("name", list(CATALOG))
def test_every_catalog_entry_is_documented(rendered: str, name: str) -> None:
    spec = CATALOG[name]
    assert f"| `{name}` |" in rendered, f"{name} has no row; {REGENERATE}"
    row = next(line for line in rendered.splitlines() if line.startswith(f"| `{name}` |"))
    for tag in docs.property_tags(spec):
        assert f"`{tag}`" in row, f"property {tag} of {name} is missing from its row"


@pytest.mark.parametrize("name", list(PROPERTIES))
def test_every_property_is_documented(rendered: str, name: str) -> None:
    assert f"| `{name}` |" in rendered, f"property {name} has no row; {REGENERATE}"


def test_catalog_tags_are_registered_properties() -> None:
    unknown = {(s.name, t) for s in CATALOG.values() for t in s.properties if t not in PROPERTIES}
    assert not unknown, f"catalog tags without a registered property: {sorted(unknown)}"
