"""What ``check`` and ``audit`` share: the versions header, the selection, and an audit job.

An audit job is JSON (it crosses into the isolated worker): the selection (with ``examples``, the example
database to replay, ``save_examples``, whether to write it, and ``max_examples``, the search's budget:
``runner.Selection``), and ``bindings``, a list of sources, each ``{"inline": {Binding fields}}`` (a TARGET and
the CLI's inline options), ``{"file": PATH, "name": LABEL or null}`` (a binding file, all its bindings or the one
labelled) or ``{"library": NAME, "name": LABEL or null}`` (a shipped library, all its bindings or the one
labelled). ``prepare`` compiles them into implementations, the catalog they are judged against (extended by the
entries of losses outside it), and the results known before anything runs (a library not installed, an export
without a binding, a binding that does not compile): those are reported, never passed.
"""

from __future__ import annotations

import platform
import re
from dataclasses import dataclass, field, replace
from importlib.metadata import PackageNotFoundError, version
from typing import Any

from lossguard.catalog import CATALOG
from lossguard.harness.app import bindings as B
from lossguard.harness.app.runner import Selection
from lossguard.harness.app.target import TargetError
from lossguard.harness.kernel.binding import Binding
from lossguard.harness.kernel.model import EVERY_PROPERTY, Implementation, LossSpec, PropertyResult

LIBRARIES = ("lossguard", "torch", "numpy", "scipy", "hypothesis")
INSTALL_HINT = "pip install -c constraints.txt -e '.[audit]'"


def versions() -> dict[str, str]:
    """Python and the library versions every verdict depends on (the report header and JSON)."""
    found = {"python": platform.python_version()}
    for name in LIBRARIES:
        try:
            found[name] = version(name)
        except PackageNotFoundError:
            found[name] = "not installed"
    return found


def selection_from(job: dict[str, Any]) -> Selection:
    return Selection(
        dtypes=tuple(job["dtypes"]),
        devices=tuple(job["devices"]),
        properties=tuple(job["properties"]) if job.get("properties") else None,
        profile=job["profile"],
        base_command=tuple(job["base_command"]),
        replay=job.get("replay"),
        examples=job.get("examples"),
        save_examples=bool(job.get("save_examples")),
        max_examples=job.get("max_examples"),
    )


@dataclass
class Prepared:
    """A compiled audit: what to run, against which entries, and what is known before running."""

    impls: list[Implementation] = field(default_factory=list)
    catalog: dict[str, LossSpec] = field(default_factory=lambda: dict(CATALOG))
    known: list[PropertyResult] = field(default_factory=list)
    libraries: dict[str, str] = field(default_factory=dict)  # library -> installed version
    library_of: dict[str, str] = field(default_factory=dict)  # implementation name -> its library
    library_option: dict[str, str] = field(default_factory=dict)  # library -> the name --library takes for it
    header: dict[str, str] = field(default_factory=dict)


def _note(prepared: Prepared, library: str, label: str, loss: str, status: str, message: str) -> None:
    prepared.known.append(
        PropertyResult(
            loss=loss,
            implementation=label,
            kind="third-party",
            device="cpu",
            dtype="all",
            property=EVERY_PROPERTY,
            status=status,
            message=message,
            library=library,
        )
    )


def _add(prepared: Prepared, binding: Binding, library: str = "", strict: bool = True) -> None:
    """Compile ``binding`` into ``prepared``. ``strict``: a binding that does not compile is the user's usage
    error (raised); otherwise (a shipped library) it is reported as an ``error`` result of lossguard's binding."""
    if binding.skip:
        _note(prepared, library, binding.label, binding.loss or "(outside the catalog)", "skip", binding.skip)
        return
    try:
        impl, spec = B.compile_binding(binding, prepared.catalog, kind="third-party" if library else "user")
    except TargetError as problem:
        if strict:
            raise
        message = f"lossguard's binding does not compile against this version: {problem}"
        _note(prepared, library, binding.label, binding.loss or "(outside the catalog)", "error", message)
        return
    prepared.impls.append(impl)
    prepared.catalog.setdefault(spec.name, spec)
    if library:
        prepared.library_of[impl.name] = library


def add_library(prepared: Prepared, name: str, label: str | None = None) -> None:
    """Library ``name``'s shipped bindings into ``prepared``: compiled where installed, reported where not.
    ``label``: only the binding labelled so (a reproduce command's), without the exports no binding names."""
    shipped = B.library(name)
    prepared.library_option[shipped.name] = name
    installed = shipped.installed()
    if installed is None:
        message = f"{shipped.distribution} is not installed, nothing of it was audited ({INSTALL_HINT})"
        _note(prepared, shipped.name, shipped.name, "(library)", "skip", message)
        return
    prepared.libraries[shipped.name] = installed
    chosen = [b for b in shipped.bindings if label in (None, b.label)]
    if not chosen:
        labels = ", ".join(b.label for b in shipped.bindings)
        raise B.BindingError(f"{shipped.name}'s bindings have none labelled {label!r} (they have: {labels})")
    for binding in chosen:
        _add(prepared, binding, shipped.name, strict=False)
    for export in unbound_exports(shipped) if label is None else ():
        message = "exported loss without a binding: lossguard does not know its inputs (add one to its binding file)"
        _note(prepared, shipped.name, f"{shipped.exports}.{export}", "(outside the catalog)", "skip", message)


def unbound_exports(shipped: B.Library) -> list[str]:
    """The losses ``shipped.exports`` exports (names matching its pattern) that no binding names."""
    import importlib

    module = importlib.import_module(shipped.exports)
    exported = getattr(module, "__all__", None) or [n for n in dir(module) if not n.startswith("_")]
    bound = {b.target.rpartition(":")[2].split(".")[0] for b in shipped.bindings}
    pattern = re.compile(shipped.export_pattern)
    return sorted(n for n in exported if pattern.search(n) and callable(getattr(module, n, None)) and n not in bound)


def prepare(job: dict[str, Any]) -> tuple[Prepared, Selection]:
    """Compile an audit job's bindings (see the module docstring)."""
    prepared = Prepared()
    for source in job["bindings"]:
        if "library" in source:
            add_library(prepared, source["library"], source.get("name"))
        elif "file" in source:
            _, found = B.read_file(source["file"])
            chosen = [b for b in found if source.get("name") in (None, b.label)]
            if not chosen:
                labels = ", ".join(b.label for b in found)
                raise B.BindingError(f"{source['file']} has no binding labelled {source['name']!r} (it has: {labels})")
            for binding in chosen:
                _add(prepared, binding)
        else:
            _add(prepared, B.binding_from_fields(source["inline"]))
    prepared.header = _header(prepared, job)
    libraries = {impl: prepared.library_option[library] for impl, library in prepared.library_of.items()}
    return prepared, replace(selection_from(job), libraries=libraries)


def _header(prepared: Prepared, job: dict[str, Any]) -> dict[str, str]:
    header: dict[str, str] = {}
    if len(prepared.impls) == 1 and not prepared.libraries:
        impl = prepared.impls[0]
        accepted = ", ".join(sorted(impl.accepted)) or "none (all parameters at their canonical defaults)"
        header = {
            "target": impl.name,
            "resolved": impl.source,
            "loss": impl.loss if impl.loss in CATALOG else f"{impl.loss} (outside the catalog: reference-free checks)",
            "parameters exercised": accepted,
        }
        if impl.adaptations:
            header["binding"] = "; ".join(impl.adaptations)
    else:
        named = (s.get("library") or s.get("file") or s["inline"]["target"] for s in job["bindings"])
        header["target"] = ", ".join(named)
        header["implementations"] = str(len(prepared.impls))
    for name, installed in prepared.libraries.items():
        header[name] = installed
    return {**header, **versions()}
