"""``lossguard repro``: every committed reproducer still reproduces its finding standalone, the scripts and
FINDINGS.md are exactly what the generator writes (docs and code cannot drift), a script of a fixed
implementation exits 0, and every independent check FINDINGS.md names exists.

Running ~300 scripts each importing torch (and monai, jax, ...) one process each takes far longer than CI allows on
2 cores, so the scripts run in batches: one subprocess per library (two at a time), each script executed in it by
``runpy`` as ``__main__`` with its own globals, its exit status and output captured; each script stays standalone
(``python findings/<library>/<name>.py`` runs it alone).
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import textwrap
import types
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]
FINDINGS = ROOT / "findings"
LIBRARIES = sorted(p.name for p in FINDINGS.iterdir() if p.is_dir()) if FINDINGS.is_dir() else []

_BATCH = textwrap.dedent(
    """
    import contextlib, io, json, runpy, sys, warnings
    results = {}
    for path in sys.argv[1:]:
        buffer, code = io.StringIO(), 0
        with contextlib.redirect_stdout(buffer), contextlib.redirect_stderr(buffer), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            try:
                runpy.run_path(path, run_name="__main__")
            except SystemExit as done:
                code = done.code if isinstance(done.code, int) else (0 if done.code is None else 1)
            except BaseException as problem:
                code = f"raised {type(problem).__name__}: {problem}"
        results[path] = [code, buffer.getvalue()[-3000:]]
    print("RESULTS" + json.dumps(results))
    """
)


def _run_batch(library: str) -> dict[str, list]:
    scripts = sorted(str(p) for p in (FINDINGS / library).glob("*.py"))
    done = subprocess.run(
        [sys.executable, "-c", _BATCH, *scripts],
        capture_output=True,
        text=True,
        timeout=600,
        cwd=ROOT,
        env={**os.environ, "PYTHONWARNINGS": "ignore"},
    )
    marker = done.stdout.rfind("RESULTS")
    assert marker >= 0, done.stdout[-2000:] + done.stderr[-2000:]
    return json.loads(done.stdout[marker + len("RESULTS") :])


@pytest.fixture(scope="module")
def ran() -> dict[str, list]:
    results: dict[str, list] = {}
    with ThreadPoolExecutor(max_workers=2) as pool:  # CI has 2 cores
        for found in pool.map(_run_batch, LIBRARIES):
            results.update(found)
    return results


@pytest.mark.parametrize("library", LIBRARIES)
def test_every_committed_script_still_reproduces(ran, library):
    mine = {p: r for p, r in ran.items() if Path(p).parent.name == library}
    assert mine, f"no script of {library} ran"
    wrong = {Path(p).name: (code, out[-400:]) for p, (code, out) in mine.items() if code != 1}
    assert not wrong, f"scripts that no longer reproduce (exit status not 1): {wrong}"
    silent = [Path(p).name for p, (_, out) in mine.items() if "observed:" not in out or "exact:" not in out]
    assert not silent, f"scripts that print no observed and exact value: {silent}"


def test_scripts_and_findings_md_are_what_the_generator_writes(tmp_path):
    from lossguard.harness.app import repro

    args = types.SimpleNamespace(
        library="all", binding_name=None, out=str(tmp_path / "findings"), markdown=str(tmp_path / "FINDINGS.md")
    )
    repro.run(args)
    written = {p.relative_to(tmp_path / "findings") for p in (tmp_path / "findings").rglob("*.py")}
    committed = {p.relative_to(FINDINGS) for p in FINDINGS.rglob("*.py")}
    assert written == committed, f"missing: {sorted(written - committed)[:5]}, stale: {sorted(committed - written)[:5]}"
    changed = [
        str(p) for p in sorted(written) if (tmp_path / "findings" / p).read_bytes() != (FINDINGS / p).read_bytes()
    ]
    assert not changed, f"committed scripts differ from the generator's: {changed[:5]}"
    assert (tmp_path / "FINDINGS.md").read_text() == (ROOT / "FINDINGS.md").read_text()


def test_every_named_independent_check_exists():
    from lossguard.harness.app.repro_confirm import RULES

    for *_, node in RULES:
        path, _, name = node.partition("::")
        source = (ROOT / path).read_text()
        assert re.search(rf"^def {re.escape(name)}\(", source, flags=re.M), node


def test_findings_md_links_every_script_and_names_the_command():
    text = (ROOT / "FINDINGS.md").read_text()
    assert "lossguard repro --library all --out findings --markdown FINDINGS.md" in text
    for path in FINDINGS.rglob("*.py"):
        assert f"({path.relative_to(ROOT).as_posix()})" in text, path


def _fixed_subject(tmp_path, monkeypatch):
    """A planted library ``fixedlib`` with one focal loss: ``broken`` forms 1 - p_t by subtraction (its gradient is
    NaN at a saturated logit, torchvision's finding), ``fixed`` as sigmoid(-z) for y = 1."""
    package = tmp_path / "fixedlib"
    package.mkdir()
    (package / "__init__.py").write_text(
        textwrap.dedent(
            """
            import torch
            import torch.nn.functional as F

            def _focal(x, y, gamma, one_minus_p_t):
                ce = F.binary_cross_entropy_with_logits(x, y, reduction="none")
                return (one_minus_p_t ** gamma * ce).sum()

            def broken(x, y, alpha=None, gamma=2.0, reduction="sum"):
                p = torch.sigmoid(x)
                return _focal(x, y, gamma, 1 - (p * y + (1 - p) * (1 - y)))

            def fixed(x, y, alpha=None, gamma=2.0, reduction="sum"):
                return _focal(x, y, gamma, y * torch.sigmoid(-x) + (1 - y) * torch.sigmoid(x))
            """
        )
    )
    monkeypatch.syspath_prepend(str(tmp_path))


def _script_of(function: str) -> str:
    from lossguard.catalog import CATALOG
    from lossguard.harness.app import repro
    from lossguard.harness.app.bindings import compile_binding
    from lossguard.harness.kernel.binding import Binding
    from lossguard.harness.kernel.model import Example, Finding

    finding = Finding(
        "gradient",
        "1 - p_t formed by subtraction",
        "fixedlib 0",
        witness=Example({"input": np.array([40.0]), "target": np.array([1.0])}, {"alpha": None, "gamma": 0.5}),
        domain=lambda example, dtype: True,
    )
    binding = Binding(
        target=f"fixedlib:{function}",
        loss="sigmoid_focal_loss",
        name=f"fixedlib.{function}",
        params={"gamma": "gamma"},
        args={"input": "x", "target": "y"},
        findings=(finding,),
    )
    impl, spec = compile_binding(binding)
    subject = repro.Subject("fixedlib", "fixedlib 0", impl, spec, {**CATALOG}, binding)
    return subject, finding


def test_a_script_passes_once_the_defect_is_fixed(tmp_path, monkeypatch):
    """The script written against the broken loss exits 1; the same script pointed at the fixed loss (the import
    line changed, nothing else) exits 0: its check can pass."""
    from lossguard.harness.app import repro

    _fixed_subject(tmp_path, monkeypatch)
    subject, finding = _script_of("broken")
    script = repro.script_for(subject, finding, "broken.py")
    assert script.how == "generated"
    assert "from fixedlib import broken" in script.text and "lossguard" not in script.text.split('"""')[2]
    path = tmp_path / "broken.py"
    path.write_text(script.text)
    env = {**os.environ, "PYTHONPATH": str(tmp_path)}
    broken = subprocess.run([sys.executable, str(path)], capture_output=True, text=True, env=env, timeout=300)
    assert broken.returncode == 1, broken.stdout + broken.stderr
    assert "observed:" in broken.stdout and "nan" in broken.stdout and "exact:" in broken.stdout
    path.write_text(script.text.replace("from fixedlib import broken", "from fixedlib import fixed as broken"))
    fixed = subprocess.run([sys.executable, str(path)], capture_output=True, text=True, env=env, timeout=300)
    assert fixed.returncode == 0, fixed.stdout + fixed.stderr


def test_the_readme_documents_the_command_that_regenerates_findings():
    from lossguard.harness.app.repro import GENERATED

    readme = (ROOT / "README.md").read_text()
    section = readme.split("## Reproducers and FINDINGS.md", 1)[1].split("\n## ", 1)[0]
    assert GENERATED in section
    script = re.search(r"python (findings/\S+\.py)", section).group(1)
    done = subprocess.run([sys.executable, script], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert done.returncode == 1 and "observed:" in done.stdout, done.stdout + done.stderr
