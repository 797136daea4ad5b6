"""``lossguard repro``: an upstream-ready, standalone script per recorded finding, and FINDINGS.md.

    lossguard repro --library NAME|torch|all [--binding-name LABEL] --out DIR [--markdown FILE]

For every finding recorded against a shipped library's binding (``implementations/bindings/<library>.py``) or a
torch built-in (``implementations/torch_builtins.py``), the witness is judged as the runner judges it (its
property on the witness alone, every call recorded: ``repro_observe``), and the one failing call is written as a
script (``repro_script``) at ``DIR/<library>/<label>--<property>[...].py``. A finding whose failure cannot be
written automatically gets the reviewed hand-written script of ``harness/app/repro_hand/<library>/`` (same name),
copied verbatim; one that has neither is an error. ``--markdown FILE`` writes FINDINGS.md: per library version,
the conventions its bindings declare, then each finding with its severity (from the observed and exact numbers,
``severity.classify``), counterexample, script, and the test of ``tests/bindings/`` that confirms it without
lossguard (``repro_confirm``; a finding without one is listed as unconfirmed). The output is deterministic: a
second run writes the same bytes.
"""

from __future__ import annotations

import math
import re
import sys
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lossguard.harness.app.repro_observe import Call, Element, Observed, locate, observe
from lossguard.harness.app.repro_script import Check, NotScriptable, Target, render
from lossguard.harness.kernel import tolerance
from lossguard.harness.kernel.binding import Binding
from lossguard.harness.kernel.model import Finding, Implementation, LossSpec

HAND = Path(__file__).resolve().parent / "repro_hand"
TORCH = "torch"  # the --library name of torch's built-ins
GENERATED = "lossguard repro --library all --out findings --markdown FINDINGS.md"


@dataclass
class Script:
    """One finding's reproducer: where it goes, its text, how it was made, and what its witness showed."""

    library: str
    label: str
    finding: Finding
    name: str  # file name, under DIR/<library>/
    text: str
    how: str  # "generated" or "hand-written"
    observed: Observed
    binding: Binding | None


# --- the findings -------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Subject:
    """A finding's implementation, the entry it is judged against, and its binding (None: a torch built-in)."""

    library: str
    upstream_name: str  # "torchvision 0.29.1"
    impl: Implementation
    spec: LossSpec
    catalog: Mapping[str, LossSpec]
    binding: Binding | None


def subjects(library: str, label: str | None = None) -> list[Subject]:
    """Every implementation of ``library`` (a shipped library's name, or ``torch``) with recorded findings."""
    from lossguard.catalog import CATALOG

    found = []
    if library == TORCH:
        import torch

        from lossguard.harness.app import inventory

        for impl in inventory.torch_builtins():
            if impl.findings and label in (None, impl.name):
                version = f"torch {torch.__version__.split('+')[0]}"
                found.append(Subject(TORCH, version, impl, CATALOG[impl.loss], CATALOG, None))
        return found
    from lossguard.harness.app.bindings import compile_binding
    from lossguard.harness.app.bindings import library as shipped

    lib = shipped(library)
    version = lib.installed()
    for binding in lib.bindings:
        if binding.skip or not binding.findings or label not in (None, binding.label):
            continue
        impl, spec = compile_binding(binding)
        found.append(
            Subject(library, f"{lib.distribution} {version}", impl, spec, {**CATALOG, spec.name: spec}, binding)
        )
    return found


def library_names() -> list[str]:
    from lossguard.harness.app.bindings import libraries

    return [TORCH, *libraries()]


# --- the check ----------------------------------------------------------------------------------------------

_GRADIENT = re.compile(r"^d loss / d (\w+)(?: at index \(([\d, ]*)\))?")
_OWN_FLOAT64 = "the library's own float64 result on the same rounded inputs, as lossguard computed it at generation"
_REFERENCE = "lossguard's float64 reference at generation time"
_IDENTITY = "what the property's identity requires of the library's other calls, as lossguard computed it at generation"
_IDENTITIES = {"reduction", "batch", "box_translation_invariance", "box_scale_invariance", "shift_invariance"}


def _element(observed: Observed) -> Element | None:
    """The failing element: the gradient element the message names, else the located value."""
    message, actual = observed.result.message, observed.result.actual
    named = _GRADIENT.match(message)
    if named and actual is not None:
        argument = named.group(1)
        position = tuple(int(i) for i in named.group(2).split(",") if i.strip()) if named.group(2) else None
        for index in range(len(observed.calls) - 1, -1, -1):
            grads = observed.calls[index].grads
            if argument not in grads:
                continue
            array = grads[argument]
            if position is not None and _matches(float(array[position]), actual):
                return Element(index, argument, position)
            for where, value in _indexed(array):
                if _matches(value, actual):
                    return Element(index, argument, where)
        return None
    located = locate(observed)
    return located if located is not None and located.argument is None else _value_element(observed)


def _indexed(array: Any) -> Iterable[tuple[tuple[int, ...], float]]:
    import numpy as np

    flat = np.asarray(array, dtype=np.float64)
    for position in np.ndindex(flat.shape):
        yield tuple(int(i) for i in position), float(flat[position])


def _matches(a: float, b: float) -> bool:
    return (math.isnan(a) and math.isnan(b)) or a == b


def _value_element(observed: Observed) -> Element | None:
    actual = observed.result.actual
    if actual is None:
        return None
    for index in range(len(observed.calls) - 1, -1, -1):
        value = observed.calls[index].value
        if value is None:
            continue
        for where, number in _indexed(value):
            if _matches(number, actual):
                return Element(index, None, where)
    return None


def check_of(observed: Observed) -> tuple[Check, Call]:
    """What the script judges and the call it makes; NotScriptable where neither follows from the failure."""
    result, finding, calls = observed.result, observed.finding, observed.calls
    message = result.message
    if not calls:
        raise NotScriptable("the property made no call")
    if result.status == "error":
        raised = [c for c in calls if c.raised]
        if not finding.raises or not raised:
            raise NotScriptable(f"an error the finding does not name: {message}")
        return Check("raises", expected=finding.raises), raised[-1]
    if "but should be an exception" in message:
        return Check("accepts", expected=finding.case or "invalid input"), calls[-1]
    dtype = re.match(r"^output dtype = (\w+), but should be (\w+)", message)
    if dtype:
        return Check("dtype", expected=dtype.group(2), exact_is="the input's dtype, as the contract asks"), calls[-1]
    shape = re.match(r"^(?:output|loss) shape = (\([\d, ]*\)), but should be (\([\d, ]*\))", message)
    if shape:
        return Check("shape", expected=shape.group(2), exact_is="the shape of the contract's output"), calls[-1]
    element = _element(observed)
    if element is None:
        raise NotScriptable(f"no recorded call returned the failing number: {message}")
    call = calls[element.index]
    exact = result.expected
    if "own central difference" in message or "along a random direction" in message:
        if result.actual is not None and math.isfinite(result.actual):
            raise NotScriptable(f"a directional finite difference: {message}")
        return Check("value", element, exact, None, "finite", exact_is="finite"), call
    if "implementation's own float64" in message:
        exact_is = _OWN_FLOAT64
    elif finding.property in _IDENTITIES:
        exact_is = _IDENTITY
    else:
        exact_is = _REFERENCE
    if "but should be finite" in message:
        return Check("value", element, exact, None, "finite", exact_is=exact_is), call
    if exact is None:
        raise NotScriptable(f"no exact number: {message}")
    compare = ">=" if "should be >=" in message else "<=" if "should be <=" in message else "=="
    if "should be exactly" in message:
        compare = "exactly"
    scale = result.scale if result.scale is not None and math.isfinite(result.scale) else abs(exact)
    allowed = None
    if math.isfinite(exact):
        actual = result.actual if result.actual is not None and math.isfinite(result.actual) else exact
        allowed = float(tolerance.compare(actual, exact, scale, observed.dtype, observed.spec.ulps).allowed)
    return Check("value", element, exact, allowed, compare, exact_is=exact_is), call


def unjudged_finite(observed: Observed) -> tuple[Check, Call]:
    """A ``finite`` witness the property judged nothing on (a skip: lossguard's record is dead, see FINDINGS.md):
    the script still checks what the finding states, the first non-finite element of the call in the finding's
    dtype against the library's own float64 result there."""
    result, calls = observed.result, observed.calls
    if observed.finding.property != "finite" or result.status != "skip" or len(calls) < 2:
        raise NotScriptable(f"the witness does not fail ({result.status}: {result.message})")
    low, high = calls[0], calls[1]
    for argument, array in [(None, low.value), *low.grads.items()]:
        for where, number in _indexed(array):
            if not math.isfinite(number):
                exact_array = high.value if argument is None else high.grads[argument]
                exact = (
                    float(exact_array[where])
                    if argument is not None or getattr(exact_array, "ndim", 0)
                    else float(exact_array)
                )
                element = Element(0, argument, where)
                return Check(
                    "value",
                    element,
                    exact,
                    None,
                    "finite",
                    exact_is=_OWN_FLOAT64 + " (lossguard's property judged nothing here: a dead record)",
                ), low
    raise NotScriptable(f"the witness does not fail ({result.status}: {result.message})")


# --- scripts ------------------------------------------------------------------------------------------------


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", text).strip("_")


def _case_slug(case: str) -> str:
    words = re.findall(r"[a-z0-9]+", case.lower())
    return "-".join(words)[:48].rstrip("-")


def names_for(subject: Subject) -> list[str]:
    """The file name of each of the subject's findings, in order: ``<label>--<property>`` made unique by the
    error case, the dtype, then a counter."""
    findings = subject.impl.findings
    base = []
    for f in findings:
        name = f"{_slug(subject.impl.name)}--{f.property}"
        if f.case:
            name += f"--{_case_slug(f.case)}"
        base.append(name)
    names = []
    for f, name in zip(findings, base, strict=True):
        if base.count(name) > 1 and f.dtypes is not None:
            name += "--" + "-".join(f.dtypes)
        names.append(name)
    final = []
    for i, name in enumerate(names):
        if names.count(name) > 1:
            name += f"--{names[:i].count(name) + 1}"
        final.append(name + ".py")
    return final


def _judged(subject: Subject, finding: Finding) -> Observed:
    observed = observe(subject.impl, subject.spec, finding, subject.catalog)
    if finding.dtypes is None and finding.property != "dtype" and observed.result.message.startswith("output dtype"):
        observed = observe(subject.impl, subject.spec, finding, subject.catalog, "float32")  # the departure itself
    return observed


def _provenance(subject: Subject) -> str:
    where = (
        "implementations/torch_builtins.py"
        if subject.binding is None
        else f"implementations/bindings/{subject.library}.toml/.py, binding {subject.impl.name!r}"
    )
    needs = "torch" if subject.impl.framework == "torch" else "jax and NumPy"
    library = "" if subject.library == TORCH else f"{subject.upstream_name.split()[0]}, "
    return (
        f"Recorded against {subject.upstream_name} ({where}); generated by `lossguard repro`. Standalone: needs "
        f"only {library}{needs} and the standard library."
    )


def script_for(subject: Subject, finding: Finding, name: str) -> Script:
    """The finding's script: generated from its observed witness, else the hand-written one."""
    observed = _judged(subject, finding)
    level = observed.result.severity or "nan-inf, unjudged by lossguard"
    title = f"{subject.impl.name} ({subject.upstream_name}): {finding.property}, {level}"
    hand = HAND / subject.library / name
    if hand.is_file():
        return Script(
            subject.library,
            subject.impl.name,
            finding,
            name,
            hand.read_text(),
            "hand-written",
            observed,
            subject.binding,
        )
    if observed.result.status in ("fail", "error"):
        check, call = check_of(observed)
    else:
        check, call = unjudged_finite(observed)
    fn = subject.impl.fn
    target = Target(subject.binding, fn, subject.impl.framework, subject.spec.args)
    default_reduction = subject.spec.params.get("reduction")
    text = render(observed, target, check, call, title, _provenance(subject), default_reduction)
    return Script(subject.library, subject.impl.name, finding, name, text, "generated", observed, subject.binding)


def scripts(library: str, label: str | None = None, problems: list[str] | None = None) -> list[Script]:
    """The scripts of every finding of ``library`` (of binding ``label``); an unscriptable finding without a
    hand-written script is appended to ``problems`` (raised when None)."""
    made = []
    for subject in subjects(library, label):
        for finding, name in zip(subject.impl.findings, names_for(subject), strict=True):
            try:
                made.append(script_for(subject, finding, name))
            except NotScriptable as problem:
                line = f"{library}/{name}: {problem}"
                if problems is None:
                    raise NotScriptable(line) from problem
                problems.append(line)
    return made


def write(made: Iterable[Script], out: Path) -> list[Path]:
    written = []
    for script in made:
        path = out / script.library / script.name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(script.text)
        path.chmod(0o755)
        written.append(path)
    return written


# --- the command line ---------------------------------------------------------------------------------------


def add_parser(commands: Any) -> None:
    """Register ``repro`` on the CLI's subcommands (``commands``: argparse's subparsers action)."""
    repro = commands.add_parser(
        "repro",
        help="write a standalone reproducer script per recorded finding (and FINDINGS.md)",
        description="Write one standalone script per finding recorded against a shipped library (or torch's "
        "built-ins): it imports only the library and its framework, prints the observed and the exact value, and "
        "exits 1 while the defect is present.",
    )
    repro.add_argument("--library", required=True, metavar="NAME", help=f"one of {', '.join(library_names())}, or all")
    repro.add_argument("--binding-name", metavar="LABEL", help="only the findings of the implementation of this name")
    repro.add_argument("--out", required=True, metavar="DIR", help="directory the scripts go to (DIR/<library>/...)")
    repro.add_argument("--markdown", metavar="FILE", help="also write FINDINGS.md (every library: use --library all)")


def run(args: Any) -> int:
    from lossguard.harness.app.bindings import BindingError

    names = library_names() if args.library == "all" else [args.library]
    if args.library != "all" and args.library not in library_names():
        print(
            f"lossguard: error: unknown library {args.library!r}; one of {', '.join(library_names())}, or all",
            file=sys.stderr,
        )
        return 2
    if args.markdown and (args.library != "all" or args.binding_name):
        print("lossguard: error: --markdown lists every finding: use it with --library all alone", file=sys.stderr)
        return 2
    out = Path(args.out)
    problems: list[str] = []
    made: list[Script] = []
    try:
        for name in names:
            made += scripts(name, args.binding_name, problems)
    except BindingError as problem:
        print(f"lossguard: error: {problem}", file=sys.stderr)
        return 2
    write(made, out)
    if args.markdown:
        from lossguard.harness.app.repro_markdown import findings_markdown

        Path(args.markdown).write_text(findings_markdown(made, out, Path(args.markdown), problems))
    for line in problems:
        print(f"no script: {line}", file=sys.stderr)
    generated = sum(s.how == "generated" for s in made)
    print(
        f"lossguard: {len(made)} scripts in {out} ({generated} generated, {len(made) - generated} hand-written)"
        + (f", {len(problems)} findings without a script" if problems else "")
    )
    return 1 if problems else 0
