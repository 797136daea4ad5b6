"""Bindings as data: read them (TOML, Python, the CLI's inline options) and compile them into Implementations.

A binding file is TOML; every table is one binding (``lossguard.harness.kernel.binding.Binding``'s fields are its
keys), optional top-level keys describe a library (``library``, ``distribution``, ``exports``). A value that is a
table with an ``object`` key (``{ object = "pkg.mod:Cls", p = 2 }``) is that object, constructed with the other
keys: a library's distance or reducer object as a constructor argument, without Python. A Python binding file
defines ``BINDINGS``, a list of ``Binding`` objects, for the rare convention that needs code.
"""

from __future__ import annotations

import dataclasses
import importlib.util
import inspect
import sys
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any

import numpy as np

from lossguard.catalog import CATALOG
from lossguard.harness.app.inventory import accepted_parameters
from lossguard.harness.app.target import TargetError, is_module_class, is_module_instance, resolve_object
from lossguard.harness.kernel.binding import INPUT_LAYOUTS, OUTPUT_LAYOUTS, Binding
from lossguard.harness.kernel.domains import DOMAINS
from lossguard.harness.kernel.frameworks import binding as framework_binding
from lossguard.harness.kernel.model import Implementation, LossSpec
from lossguard.implementations import bindings as shipped_bindings

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    import tomli as tomllib

DEFAULT_LIKE = "dice_loss"
_FIELDS = {f.name for f in dataclasses.fields(Binding)} - {"call", "findings"}
_LIBRARY_KEYS = ("library", "distribution", "exports", "export_pattern")


class BindingError(TargetError):
    """A binding that cannot be read or compiled; the message says what to fix (the CLI exits 2 with it)."""


def from_table(name: str, table: Mapping[str, Any], where: str) -> Binding:
    """The binding TOML table ``[name]`` of file ``where`` states."""
    unknown = sorted(set(table) - _FIELDS)
    if unknown:
        known = ", ".join(sorted(_FIELDS))
        raise BindingError(f"{where}: binding [{name}] has unknown key {unknown[0]!r}; known: {known}")
    if "target" not in table:
        raise BindingError(f"{where}: binding [{name}] has no 'target' (package.module:attr)")
    fields = dict(table)
    for key in ("domain",):
        fields[key] = tuple(fields.get(key, ()))
    if isinstance(fields.get("args"), list):
        fields["args"] = tuple(fields["args"])
    fields["params"] = {k: tuple(v) if isinstance(v, list) else v for k, v in fields.get("params", {}).items()}
    fields.setdefault("name", name)
    try:
        return Binding(**fields)
    except (TypeError, ValueError) as problem:
        raise BindingError(f"{where}: binding [{name}]: {problem}") from problem


def read_file(path: str | Path) -> tuple[dict[str, Any], list[Binding]]:
    """A binding file's library keys and its bindings (TOML tables, or a Python file's ``BINDINGS``)."""
    path = Path(path)
    if not path.is_file():
        raise BindingError(f"binding file {str(path)!r} does not exist")
    if path.suffix == ".py":
        module = _python_module(path)
        bindings = getattr(module, "BINDINGS", None)
        if not isinstance(bindings, list) or not all(isinstance(b, Binding) for b in bindings):
            raise BindingError(f"{path}: a Python binding file defines BINDINGS, a list of Binding objects")
        return {k: getattr(module, k.upper()) for k in _LIBRARY_KEYS if hasattr(module, k.upper())}, bindings
    try:
        document = tomllib.loads(path.read_text(encoding="utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as problem:
        raise BindingError(f"{path}: not valid TOML: {problem}") from problem
    library = {k: document.pop(k) for k in _LIBRARY_KEYS if k in document}
    stray = [k for k, v in document.items() if not isinstance(v, dict)]
    if stray:
        raise BindingError(f"{path}: top-level key {stray[0]!r} is neither a binding table nor one of {_LIBRARY_KEYS}")
    return library, [from_table(name, _beside(table, path), str(path)) for name, table in document.items()]


def _beside(table: dict[str, Any], path: Path) -> dict[str, Any]:
    """A relative ``file.py:attr`` target is found beside the binding file (then from the working directory)."""
    location, sep, attr = str(table.get("target", "")).rpartition(":")
    if sep and location.endswith(".py") and not Path(location).is_absolute():
        beside = path.resolve().parent / location
        if beside.is_file():
            return {**table, "target": f"{beside}:{attr}"}
    return table


def _python_module(path: Path) -> Any:
    spec = importlib.util.spec_from_file_location(f"lossguard_binding_{abs(hash(str(path.resolve())))}", path)
    if spec is None or spec.loader is None:
        raise BindingError(f"{path}: cannot be imported as Python")
    module = importlib.util.module_from_spec(spec)
    try:
        spec.loader.exec_module(module)
    except Exception as problem:
        raise BindingError(f"{path}: importing it raised {type(problem).__name__}: {problem}") from problem
    return module


def construct(value: Any) -> Any:
    """A TOML value as the object it denotes: ``{ object = "pkg.mod:Cls", ... }`` constructed, recursively."""
    if isinstance(value, dict) and "object" in value:
        factory, _ = resolve_object(value["object"])
        return factory(**{k: construct(v) for k, v in value.items() if k != "object"})
    if isinstance(value, dict):
        return {k: construct(v) for k, v in value.items()}
    return value


# --- compiling a binding ----------------------------------------------------------------------------------------


def binding_from_fields(fields: Mapping[str, Any]) -> Binding:
    """A Binding from plain fields (the CLI's TARGET and inline options, as a JSON job carries them)."""
    try:
        return from_table(fields.get("name") or fields["target"], fields, "the command line")
    except BindingError as problem:
        raise BindingError(str(problem).replace("binding [", "binding for [")) from problem


def free_entry(binding: Binding) -> LossSpec:
    """The entry a loss outside the catalog is judged under: the inputs of its ``like`` entry, the reference-free
    properties only (``lossguard.properties.reference_free``), no identity and no reference to agree with."""
    from lossguard.properties.reference_free import FREE_TAGS

    like = binding.like or DEFAULT_LIKE
    if like not in CATALOG:
        raise BindingError(f"binding {binding.label!r}: like = {like!r} is not a catalog entry; see 'lossguard list'")
    base = CATALOG[like]
    return dataclasses.replace(
        base,
        name=binding.label,
        definition=f"outside the catalog; inputs drawn as {like}'s",
        properties={tag: {} for tag in FREE_TAGS},
        by_definition=(),
        domains={},
        relations=type(base.relations)(),
    )


def compile_binding(
    binding: Binding, catalog: Mapping[str, LossSpec] | None = None, kind: str = "third-party"
) -> tuple[Implementation, LossSpec]:
    """The Implementation ``binding`` describes (of ``kind``: a shipped library's 'third-party', a user's 'user'),
    and the entry it is judged against (a free entry for a loss outside the catalog). Raises BindingError (or
    TargetError) with what to fix."""
    catalog = CATALOG if catalog is None else catalog
    if binding.loss is not None and binding.loss not in catalog:
        raise BindingError(f"binding {binding.label!r}: unknown loss {binding.loss!r}; run 'lossguard list'")
    if binding.loss is None and binding.label in CATALOG:
        raise BindingError(f"binding {binding.label!r} outside the catalog has a catalog entry's name: rename it")
    spec = catalog[binding.loss] if binding.loss is not None else free_entry(binding)
    _check_names(binding, spec)
    obj, source = resolve_object(binding.target)
    names = _library_names(binding, obj, spec)
    accepted = frozenset(names)
    constructor = _constructor_names(obj, names) if is_module_class(obj) else frozenset()
    form = "function"
    if is_module_class(obj) or is_module_instance(obj):
        form = "nn.Module class" if is_module_class(obj) else "nn.Module instance"
    impl = Implementation(
        name=binding.label,
        loss=spec.name,
        kind=kind,
        fn=obj,
        accepted=accepted,
        framework=binding.framework,
        findings=tuple(binding.findings),
        source=f"{source} ({form})",
        call=_caller(binding, obj, spec, names, constructor),
        fixed={**binding.fixed, **binding.variant},
        domain=tuple(DOMAINS[name] for name in binding.domain),
        output=_output_map(binding.output, spec) if binding.output else None,
        output_dtypes=dict(binding.dtypes),
        adaptations=tuple(describe(binding, names)),
    )
    return impl, spec


def _check_names(binding: Binding, spec: LossSpec) -> None:
    where = f"binding {binding.label!r} ({spec.name})"
    canonical, variants = set(spec.params), set(spec.variants)
    for key in (*binding.params, *binding.none, *binding.fixed):
        if key not in canonical and key not in variants:
            raise BindingError(f"{where}: {key!r} is not a parameter of the contract ({', '.join(spec.params)})")
    for key in binding.variant:
        if key not in variants:
            known = ", ".join(spec.variants) or "none"
            raise BindingError(f"{where}: {key!r} is not a variant of the reference (variants: {known})")
    for key in binding.domain:
        if key not in DOMAINS:
            raise BindingError(f"{where}: unknown domain {key!r}; known: {', '.join(DOMAINS)}")
    arrays = set(binding.args)
    if arrays - set(spec.args):
        raise BindingError(f"{where}: args names {sorted(arrays - set(spec.args))[0]!r}, not one of {spec.args}")
    if binding.framework not in ("torch", "jax"):
        raise BindingError(f"{where}: framework {binding.framework!r} is not torch or jax")


def _library_names(binding: Binding, obj: Any, spec: LossSpec) -> dict[str, tuple[str, ...]]:
    """Canonical parameter -> the library keywords it is passed as: the binding's, or found by name."""
    if binding.params or not binding.inspect:
        return {k: (v,) if isinstance(v, str) else tuple(v) for k, v in binding.params.items()}
    found: set[str] = set()
    if is_module_class(obj):
        found |= accepted_parameters(obj.__init__, spec.name, {spec.name: spec})
        found |= accepted_parameters(obj.forward, spec.name, {spec.name: spec})
    else:
        found |= accepted_parameters(obj.forward if is_module_instance(obj) else obj, spec.name, {spec.name: spec})
    return {k: (k,) for k in sorted(found)}


def _constructor_names(cls: type, names: Mapping[str, tuple[str, ...]]) -> frozenset[str]:
    """Library keywords passed at construction: those ``__init__`` names, or takes by ``**kwargs`` and ``forward``
    does not name."""
    init, forward = _signature(cls.__init__), _signature(cls.forward)
    init_kwargs = any(p.kind is inspect.Parameter.VAR_KEYWORD for p in init.values())
    library = {name for values in names.values() for name in values}
    return frozenset(n for n in library if n in init or (init_kwargs and n not in forward))


def _signature(fn: Callable) -> Mapping[str, inspect.Parameter]:
    try:
        return inspect.signature(fn).parameters
    except (TypeError, ValueError):
        return {}


def _caller(
    binding: Binding,
    obj: Any,
    spec: LossSpec,
    names: Mapping[str, tuple[str, ...]],
    constructor: frozenset[str],
) -> Callable[..., Any]:
    """The call closure: canonical arrays and parameters in, the library's call out."""
    order = tuple(binding.args) if binding.args and not isinstance(binding.args, Mapping) else spec.args
    keywords = dict(binding.args) if isinstance(binding.args, Mapping) else {}
    init = {k: construct(v) for k, v in binding.init.items()}
    module_class = is_module_class(obj)
    moveaxis = framework_binding(binding.framework).moveaxis

    def call(fn: Any, args: dict[str, Any], params: dict[str, Any]) -> Any:
        library: dict[str, Any] = {}
        for canonical, value in params.items():
            if value is None and canonical in binding.none:
                value = binding.none[canonical]
            for name in names.get(canonical, (canonical,)):
                library[name] = value
        if binding.input_layout == "classes-last" and np.ndim(args.get("input")) > 1:
            args = {**args, "input": moveaxis(args["input"], 1, -1)}
        callee = fn
        if module_class:
            callee = fn(**init, **{k: v for k, v in library.items() if k in constructor})
            library = {k: v for k, v in library.items() if k not in constructor}
        if binding.call is not None:
            return binding.call(callee, args, library)
        positional = [args[n] for n in order if n in args and n not in keywords]
        named = {keywords[n]: args[n] for n in keywords if n in args}
        return callee(*positional, **named, **library)

    return call


def _output_map(output: Mapping[str, str], spec: LossSpec) -> Callable[[np.ndarray, Mapping[str, Any]], np.ndarray]:
    default = spec.params.get("reduction")

    def canonical(value: np.ndarray, params: Mapping[str, Any]) -> np.ndarray:
        layout = output.get(params.get("reduction", default), output.get("*"))
        if layout == "sum-classes" and value.ndim >= 2:
            return value.sum(axis=1)
        lead = 1 if params.get("batch") else 2  # batch=True drops N: (C, 1, 1) -> (C,)
        if layout == "squeeze-spatial" and value.ndim > lead and all(n == 1 for n in value.shape[lead:]):
            return value.reshape(value.shape[:lead])
        return value

    return canonical


def describe(binding: Binding, names: Mapping[str, tuple[str, ...]]) -> list[str]:
    """What the binding adapts, one phrase each (the report header lists them)."""
    said = []
    renamed = {k: v for k, v in names.items() if v != (k,)}
    if renamed:
        said.append("renames " + ", ".join(f"{k} -> {'+'.join(v)}" for k, v in renamed.items()))
    said += [f"passes {k}=None as {v!r}" for k, v in binding.none.items()]
    if binding.init:
        said.append("constructed with " + ", ".join(f"{k}={v!r}" for k, v in binding.init.items()))
    said += [f"computes with {k}={v!r} unasked (its own default)" for k, v in binding.fixed.items()]
    said += [f"follows the variant {k}={v!r}" for k, v in binding.variant.items()]
    if binding.args:
        said.append(f"takes its arrays as {binding.args!r}")
    if binding.input_layout:
        said.append(INPUT_LAYOUTS[binding.input_layout])
    said += [f"reduction {k!r}: {OUTPUT_LAYOUTS[v]}" for k, v in binding.output.items()]
    said += [f"returns {v} for {k} inputs by design (judged after casting)" for k, v in binding.dtypes.items()]
    said += [f"supports only {DOMAINS[d].description}" for d in binding.domain]
    return said


def compile_all(bindings: Iterable[Binding]) -> tuple[list[Implementation], dict[str, LossSpec]]:
    """Every binding compiled; the catalog extended by the free entries of those outside it."""
    impls, catalog = [], dict(CATALOG)
    for binding in bindings:
        impl, spec = compile_binding(binding)
        impls.append(impl)
        catalog.setdefault(spec.name, spec)
    return impls, catalog


# --- the libraries lossguard ships bindings for -----------------------------------------------------------------

SHIPPED = Path(shipped_bindings.__file__).resolve().parent


@dataclasses.dataclass(frozen=True)
class Library:
    """A library's shipped bindings (``implementations/bindings/<name>.toml``, and ``<name>.py`` for the bindings
    that need code, ``BINDINGS``, and the findings recorded against it, ``FINDINGS``: binding label -> findings).

    distribution: the pip distribution that must be installed; exports: the module whose losses ``--library``
    enumerates (names matching ``export_pattern``), so an export without a binding is reported, never skipped
    silently."""

    name: str
    distribution: str
    exports: str
    export_pattern: str
    bindings: tuple[Binding, ...]

    def installed(self) -> str | None:
        """The installed version, or None."""
        from importlib.metadata import PackageNotFoundError, version

        try:
            return version(self.distribution)
        except PackageNotFoundError:
            return None


def libraries() -> list[str]:
    """The names of the libraries lossguard ships bindings for."""
    return sorted(p.stem for p in SHIPPED.glob("*.toml"))


def library(name: str) -> Library:
    """The shipped bindings of library ``name``, findings attached."""
    path = SHIPPED / f"{name}.toml"
    if not path.is_file():
        raise BindingError(f"unknown library {name!r}; lossguard ships bindings for: {', '.join(libraries())}, or all")
    keys, bindings = read_file(path)
    code = SHIPPED / f"{name}.py"
    findings: Mapping[str, Any] = {}
    if code.is_file():
        module = importlib.import_module(f"{shipped_bindings.__name__}.{name}")
        bindings += list(getattr(module, "BINDINGS", []))
        findings = getattr(module, "FINDINGS", {})
    unknown = sorted(set(findings) - {b.label for b in bindings})
    if unknown:
        raise BindingError(f"{code}: FINDINGS names {unknown[0]!r}, which no binding of {name} is labelled")
    attached = tuple(dataclasses.replace(b, findings=(*b.findings, *findings.get(b.label, ()))) for b in bindings)
    return Library(
        name=keys.get("library", name),
        distribution=keys.get("distribution", name),
        exports=keys.get("exports", name),
        export_pattern=keys.get("export_pattern", r"(?i)loss"),
        bindings=attached,
    )
