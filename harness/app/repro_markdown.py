"""FINDINGS.md: every recorded finding of the shipped libraries and torch's built-ins, with its severity, its
counterexample, its standalone script and the test that confirms it without lossguard (``lossguard repro
--markdown``). Deterministic: no times, no machine-dependent paths."""

from __future__ import annotations

import os
from collections import Counter, defaultdict
from collections.abc import Iterable
from pathlib import Path

from lossguard.harness.app.repro_confirm import confirmation
from lossguard.harness.kernel import severity as S
from lossguard.harness.kernel.binding import INPUT_LAYOUTS, OUTPUT_LAYOUTS

_HEAD = """# Findings

<!-- generated: do not edit. Regenerate with the command below; tests/test_repro.py fails when this file or a
script differs from what it writes. -->

Every departure lossguard records against a shipped library's loss (`implementations/bindings/`) or a torch
built-in (`implementations/torch_builtins.py`), with a standalone script that reproduces it without lossguard.
Regenerate this file and every script with one command:

```sh
{command}
```

Each script imports only the library, its framework (torch, or jax and NumPy) and the standard library, builds the
finding's minimal counterexample, prints the observed and the exact value and exits 1 while the defect is present
(0 once it is fixed): attach it to an upstream issue as it is. The severity is computed from the numbers the
witness gave when this file was generated (`lossguard.harness.kernel.severity`): crash, nan-inf, wrong (beyond a
relative 1e-3 of the value's scale), validation-gap, imprecise (within 1e-3, beyond the attainable ulps),
convention (a departure lossguard diagnosed as a variant of the contract, e.g. a float32 computation). The
*independent check* is the test that confirms the finding with a float64 NumPy or mpmath computation beside the
library's own output, without lossguard. **Report upstream only confirmed findings**; an unconfirmed one needs
such a test first.

The conventions each library's bindings declare (a reference variant it follows, a default it computes with, an
output or input layout, a dtype it returns by design) are differences of convention, not defects: they are listed
first under each library.
"""


def _link(path: Path, markdown: Path) -> str:
    return Path(os.path.relpath(path, markdown.parent)).as_posix()


def _conventions(library: str) -> list[str]:
    if library == "torch":
        return []
    from lossguard.harness.app.bindings import library as shipped

    lines = []
    for binding in shipped(library).bindings:
        said = [f"computes with `{k} = {v!r}` unasked (its own default)" for k, v in binding.fixed.items()]
        said += [f"follows the reference variant `{k} = {v!r}`" for k, v in binding.variant.items()]
        if binding.input_layout:
            said.append(INPUT_LAYOUTS[binding.input_layout])
        said += [f"reduction `{k}`: {OUTPUT_LAYOUTS[v]}" for k, v in binding.output.items()]
        said += [f"returns {v} for {k} inputs by design" for k, v in binding.dtypes.items()]
        if said and not binding.skip:
            lines.append(f"- `{binding.label}` ({binding.loss or 'outside the catalog'}): " + "; ".join(said))
    return lines


def _one_line(text: str) -> str:
    return " ".join(text.split()).replace("|", "\\|")


def _entry(script, out: Path, markdown: Path) -> list[str]:
    finding, result = script.finding, script.observed.result
    level = result.severity or "nan-inf"
    note = ""
    if result.status not in ("fail", "error"):
        note = (
            f" (lossguard's witness run judged nothing, {result.status}: the record is dead; the script still shows it)"
        )
    dtypes = ", ".join(finding.dtypes) if finding.dtypes else "every dtype"
    test = confirmation(script.library, script.label, finding)
    weight = S.departure(result) if result.status in ("fail", "error") else None
    lines = [
        f"- **`{script.label}`: {finding.property}** ({dtypes}; script run in {script.observed.dtype}): "
        f"**{level}**{note}",
        f"  - {_one_line(finding.reason)}",
    ]
    if result.convention:
        lines.append(f"  - diagnosed convention: {_one_line(result.convention)}")
    if finding.where or finding.case:
        lines.append(f"  - where: {_one_line(finding.scope())}")
    if result.counterexample:
        lines.append(f"  - counterexample: `{_one_line(result.counterexample)}`")
    if result.message:
        observed = _one_line(result.message)
        if weight is not None:
            observed += f" (departure {weight:.3g} of the value's scale)"
        lines.append(f"  - observed: {observed}")
    path = out / script.library / script.name
    lines.append(f"  - script ({script.how}): [{_link(path, markdown)}]({_link(path, markdown)})")
    lines.append(f"  - independent check: `{test}`" if test else "  - independent check: **unconfirmed** (no test)")
    return lines


def findings_markdown(scripts: Iterable, out: Path, markdown: Path, missing: Iterable[str] = ()) -> str:
    from lossguard.harness.app.repro import GENERATED

    by_library = defaultdict(list)
    for script in scripts:
        by_library[script.library].append(script)
    lines = [_HEAD.format(command=GENERATED), "## Summary", ""]
    lines += [
        "| library | findings | confirmed | " + " | ".join(S.SEVERITIES) + " | scripts generated / hand-written |"
    ]
    lines += ["|---|---|---|" + "---|" * len(S.SEVERITIES) + "---|"]
    for library, made in by_library.items():
        counts = Counter(s.observed.result.severity or "nan-inf" for s in made)
        confirmed = sum(confirmation(library, s.label, s.finding) is not None for s in made)
        generated = sum(s.how == "generated" for s in made)
        cells = " | ".join(str(counts.get(level, 0)) for level in S.SEVERITIES)
        version = made[0].observed.impl.findings[0].upstream if made else library
        lines.append(f"| {version} | {len(made)} | {confirmed} | {cells} | {generated} / {len(made) - generated} |")
    for library, made in by_library.items():
        version = made[0].finding.upstream
        lines += ["", f"## {version}", ""]
        conventions = _conventions(library)
        if conventions:
            lines += ["### Conventions (declared by the bindings, not defects)", "", *conventions, ""]
        lines += ["### Findings", ""]
        for script in made:
            lines += _entry(script, out, markdown)
    missing = list(missing)
    if missing:
        lines += ["", "## Findings without a script", "", *[f"- {_one_line(m)}" for m in missing]]
    return "\n".join(lines).rstrip() + "\n"
