"""One installed namespace: ``lossguard`` and nothing else at the top level, never shadowed by a user's
``reports/`` or ``reference/`` package, its layering enforced by import-linter contracts."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import tomllib

ROOT = Path(__file__).resolve().parents[1]


def _python(code: str, cwd: Path, path: list[Path] | None = None) -> subprocess.CompletedProcess:
    env_path = ":".join(str(p) for p in path or [])
    return subprocess.run(
        [sys.executable, "-c", code], cwd=cwd, capture_output=True, text=True, env={"PYTHONPATH": env_path}
    )


def test_every_package_folder_is_mapped_into_the_namespace():
    """pyproject.toml lists each package explicitly (package-dir maps folders into ``lossguard``):
    a new subpackage folder left out of the list would be missing from every wheel."""
    setuptools = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    listed, mapped = set(setuptools["packages"]), setuptools["package-dir"]
    found = set()
    for package, folder in mapped.items():
        for init in (ROOT / folder).rglob("__init__.py"):
            relative = init.parent.relative_to(ROOT / folder).parts
            found.add(".".join((package, *relative)))
    assert found == listed, (
        f"fix [tool.setuptools] packages in pyproject.toml: missing {found - listed}, extra {listed - found}"
    )


def test_a_users_reports_and_reference_packages_do_not_shadow_lossguard(tmp_path):
    for name in ("reports", "reference", "harness", "properties"):
        (tmp_path / name).mkdir()
        (tmp_path / name / "__init__.py").write_text("USER = True\n")
    code = (
        "import reports, reference, lossguard.reports, lossguard.reference, lossguard.harness.app.cli;"
        "assert reports.USER and reference.USER;"
        "assert not hasattr(lossguard.reports, 'USER') and not hasattr(lossguard.reference, 'USER');"
        "print(lossguard.reference.__file__)"
    )
    done = _python(f"import sys; sys.path.insert(0, {str(tmp_path)!r}); {code}", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert Path(done.stdout.strip()).parent == ROOT / "reference"


@pytest.fixture(scope="module")
def installed(tmp_path_factory) -> Path:
    """lossguard installed as a user gets it (a plain, non-editable install) into an empty folder."""
    site = tmp_path_factory.mktemp("site")
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "install",
            "--quiet",
            "--no-deps",
            "--no-build-isolation",
            "--target",
            site,
            ROOT,
        ],
        check=True,
        capture_output=True,
    )
    return site


def test_an_install_has_one_top_level_package(installed, tmp_path):
    packages = {p.name for p in installed.iterdir() if (p / "__init__.py").exists() or p.suffix == ".py"}
    assert packages == {"lossguard"}
    assert _python("import harness", cwd=tmp_path, path=[installed]).returncode != 0
    done = _python(
        "import lossguard.harness.app.cli, lossguard.catalog; print(lossguard.__file__)", tmp_path, [installed]
    )
    assert done.returncode == 0, done.stderr
    assert Path(done.stdout.strip()).is_relative_to(installed)


def test_python_dash_m_lossguard_is_the_console_script(tmp_path):
    done = subprocess.run(
        [sys.executable, "-m", "lossguard", "list", "--json"], cwd=tmp_path, capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr
    assert '"mse_loss"' in done.stdout


def _lint_imports(site: Path, cwd: Path) -> subprocess.CompletedProcess:
    """import-linter on the installed copy at ``site`` (it walks package folders, which an editable install
    maps through an import hook): the contracts of pyproject.toml [tool.importlinter]."""
    lint = Path(sys.executable).parent / "lint-imports"
    return subprocess.run(
        [lint, ROOT / "pyproject.toml"], cwd=cwd, capture_output=True, text=True, env={"PYTHONPATH": str(site)}
    )


def test_the_layering_contracts_hold(installed, tmp_path):
    done = _lint_imports(installed, tmp_path)
    assert done.returncode == 0, done.stdout[-3000:]
    assert "0 broken" in done.stdout


# one planted import per contract: (module file in the installed copy, the import, the contract it breaks)
VIOLATIONS = [
    ("harness/kernel/model.py", "import lossguard.properties.base", "Layers: the application above"),
    ("reference/_core.py", "import torch", "The references are pure float64"),
    ("properties/generic.py", "import lossguard.reference", "Properties and reports stand on the kernel only"),
    ("harness/kernel/tolerance.py", "import lossguard.reference", "The kernel knows no concrete loss"),
    ("implementations/own/regression.py", "import lossguard.properties", "Implementations import neither"),
]


@pytest.mark.parametrize(("module", "line", "contract"), VIOLATIONS, ids=[v[2] for v in VIOLATIONS])
def test_each_layering_contract_catches_a_planted_import(installed, tmp_path, module, line, contract):
    """The contracts can fail: one import that breaks exactly one of them, planted into a copy of the install."""
    site = tmp_path / "site"
    shutil.copytree(installed, site)
    planted = site / "lossguard" / module
    planted.write_text(planted.read_text() + f"\n{line}  # planted\n")
    done = _lint_imports(site, tmp_path)
    assert done.returncode != 0, f"{line} in {module} passed the contracts"
    assert contract in done.stdout.split("Broken contracts")[-1], done.stdout[-3000:]
