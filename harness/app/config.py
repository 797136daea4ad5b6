"""The gate's configuration: ``[tool.lossguard]`` in a project's ``pyproject.toml``, or the top level of
``lossguard.toml`` (the same keys), read and validated once for ``lossguard check --config`` and the pytest plugin.

The format (README, "Use lossguard as a CI gate")::

    [tool.lossguard]
    profile = "ci"                    # default profile (else: ci when CI is set, dev otherwise)
    fail-on = "validation-gap"        # severity gate, as --fail-on
    dtypes = ["float64", "float32"]   # defaults of every loss
    devices = ["cpu"]
    examples = ".lossguard/examples"  # the committed example database (relative to the config's folder)
    time-limit = 10                   # isolation limits, as audit's options (seconds per call, GiB)
    memory-limit = 8
    pytest = true                     # collect the losses as pytest items without --lossguard

    [[tool.lossguard.loss]]
    name = "huber"                    # report and item name; default: the target's attribute name
    target = "src/mylosses.py:huber"  # or "package.module:attr"; a relative file is relative to the config's folder
    loss = "huber_loss"               # catalog entry; omitted: the reference-free checks
    params = { delta = "delta" }      # binding options of docs/BINDINGS.md (params, init, variant, fixed, none,
                                      # output, args, domain, like, framework)
    dtypes = ["float64"]              # per-loss overrides
    properties = ["agreement"]        # only these (default: every property the entry tags)
    skip = [{ property = "stability", reason = "clamped upstream; tracked in #123" }]

An entry gives exactly one of ``target``, ``binding`` (a binding file, relative to the config's folder, with an
optional ``binding-name``) or ``library`` (a library lossguard ships bindings for).

Validation is pydantic's (``extra="forbid"``, keys spelled with dashes), plus what only lossguard knows: catalog
entries, property names, the entry's tags, and whether a target can be found. A target is *found*, never imported:
a file target must exist and define the attribute at its top level (read with ``ast``), a module target must be
found by ``importlib``'s path finders (parents included, without executing any of them). Importing the user's code
is the isolated worker's job, where an import that kills or hangs its process is a verdict, not a crash of the
configuration. Every problem is a ``ConfigError`` naming the file, the key path (``tool.lossguard.loss[1].targte``)
and what to write instead (the closest allowed key or value); the CLI exits 2 with it.

A skip needs a written reason: it is reported as a ``skip`` result carrying that reason (``skip_results``), never
silently dropped. An entry's name keys its results: the JUnit/pytest item ids and the example database's keys
(so saved examples replay on every machine and checkout, whatever path the target was typed with).
"""

from __future__ import annotations

import ast
import contextlib
import difflib
import importlib.machinery
import importlib.util
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Literal, get_args, get_origin

import pydantic
from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, ValidationInfo, field_validator, model_validator

from lossguard.harness.app.isolation import CALL_LIMIT
from lossguard.harness.kernel.model import DTYPES, EVERY_PROPERTY, PropertyResult
from lossguard.harness.kernel.profiles import PROFILES
from lossguard.harness.kernel.severity import DEFAULT_FAIL_ON, SEVERITIES

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    import tomli as tomllib

FILENAMES = ("pyproject.toml", "lossguard.toml")
DEVICES = ("cpu", "cuda")
DEFAULT_TIME_LIMIT = CALL_LIMIT  # seconds per call of the loss, as audit's --time-limit
DEFAULT_MEMORY_LIMIT = 8.0  # GiB, as audit's --memory-limit

Dtype = Literal["float64", "float32", "float16", "bfloat16"]
Device = Literal["cpu", "cuda"]
Severity = Literal["crash", "nan-inf", "wrong", "validation-gap", "imprecise", "convention"]
Profile = Literal["ci", "dev", "thorough"]
assert get_args(Dtype) == DTYPES and get_args(Severity) == SEVERITIES and get_args(Profile) == PROFILES


class ConfigError(Exception):
    """A configuration that cannot be used; the message names the file, the key path and what to write instead."""


def _dashed(name: str) -> str:
    return name.replace("_", "-")


class _Table(BaseModel):
    model_config = ConfigDict(extra="forbid", alias_generator=_dashed, frozen=True)


class Skip(_Table):
    """A property not run on an entry, and why (reported as a skip result carrying the reason)."""

    property: str
    reason: str

    @field_validator("reason")
    @classmethod
    def _written(cls, reason: str) -> str:
        if not reason.strip():
            raise ValueError("a skip needs a written reason (why the property does not apply, or where it is tracked)")
        return reason.strip()

    @field_validator("property")
    @classmethod
    def _known(cls, name: str) -> str:
        return _property(name)


class LossEntry(_Table):
    """One ``[[tool.lossguard.loss]]``: a loss of the team's, how to call it, and where to run it."""

    name: str = ""
    target: str | None = None
    binding: str | None = None
    binding_name: str | None = None
    library: str | None = None
    loss: str | None = None
    # binding options (docs/BINDINGS.md), for a target
    params: dict[str, str | list[str]] = Field(default_factory=dict)
    init: dict[str, Any] = Field(default_factory=dict)
    variant: dict[str, Any] = Field(default_factory=dict)
    fixed: dict[str, Any] = Field(default_factory=dict)
    none: dict[str, Any] = Field(default_factory=dict)
    output: dict[str, str] = Field(default_factory=dict)
    args: list[str] | dict[str, str] = Field(default_factory=list)
    domain: list[str] = Field(default_factory=list)
    like: str | None = None
    framework: Literal["torch", "jax"] = "torch"
    # where and what to run (None: the table's defaults)
    dtypes: list[Dtype] | None = None
    devices: list[Device] | None = None
    properties: list[str] | None = None
    skip: list[Skip] = Field(default_factory=list)

    @field_validator("loss", "like")
    @classmethod
    def _entry(cls, name: str | None) -> str | None:
        from lossguard.catalog import CATALOG

        if name is not None and name not in CATALOG:
            raise ValueError(f"unknown loss {name!r}{_did_you_mean(name, CATALOG)} (see 'lossguard list')")
        return name

    @field_validator("properties")
    @classmethod
    def _properties(cls, names: list[str] | None) -> list[str] | None:
        return None if names is None else [_property(n) for n in names]

    @field_validator("library")
    @classmethod
    def _library(cls, name: str | None) -> str | None:
        from lossguard.harness.app.bindings import libraries

        if name is not None and name not in libraries():
            raise ValueError(
                f"unknown library {name!r}{_did_you_mean(name, libraries())}; lossguard ships bindings "
                f"for {', '.join(libraries())}"
            )
        return name

    @model_validator(mode="after")
    def _source(self, info: ValidationInfo) -> LossEntry:
        given = [key for key in ("target", "binding", "library") if getattr(self, key)]
        if len(given) != 1:
            raise ValueError(
                'give exactly one of target = "pkg.module:attr" (or "file.py:attr"), binding = '
                f'"bindings.toml" or library = "NAME" (this entry gives {", ".join(given) or "none"})'
            )
        inline = [_dashed(k) for k in _INLINE if getattr(self, k)]
        if inline and not self.target:
            raise ValueError(f"{inline[0]} is a binding option of a target; a binding file or library states its own")
        if self.loss and not self.target:
            raise ValueError("loss names the entry a target implements; a binding file or library states its own")
        if self.binding_name and not (self.binding or self.library):
            raise ValueError('binding-name picks one binding of binding = "FILE" or library = "NAME"')
        root = Path((info.context or {}).get("root", "."))
        if self.target:
            _find_target(self.target, root)
        if self.binding and not (root / self.binding).is_file():
            raise ValueError(f"binding file {self.binding!r} does not exist (relative to {root})")
        tags = self.tags()
        for name in [*(self.properties or ()), *(s.property for s in self.skip)]:
            if tags is not None and name not in tags:
                raise ValueError(
                    f"{self.loss or 'a loss outside the catalog'} does not tag {name!r}; its "
                    f"properties: {', '.join(tags)}"
                )
        if self.properties and set(self.properties) <= set(self.skipped):
            raise ValueError("every property it lists is skipped: nothing would run (remove the loss, or a skip)")
        if not self.name:
            object.__setattr__(self, "name", self.default_name())
        return self

    def default_name(self) -> str:
        """The target's attribute name, the binding file's stem, or the library's name."""
        if self.target:
            return self.target.rpartition(":")[2]
        return Path(self.binding).stem if self.binding else str(self.library)

    def tags(self) -> tuple[str, ...] | None:
        """The properties this entry can run (None: decided by the binding file's or library's own entries)."""
        if not self.target:
            return None
        if self.loss:
            from lossguard.catalog import CATALOG

            return tuple(CATALOG[self.loss].properties)
        from lossguard.properties.reference_free import FREE_TAGS

        return tuple(FREE_TAGS)

    @property
    def skipped(self) -> dict[str, str]:
        """Property -> the written reason it is not run."""
        return {s.property: s.reason for s in self.skip}


_INLINE = ("params", "init", "variant", "fixed", "none", "output", "args", "domain", "like")


class GateConfig(_Table):
    """The whole ``[tool.lossguard]`` table; ``path``: the file it was read from, ``root``: that file's folder."""

    profile: Profile | None = None
    fail_on: Severity = DEFAULT_FAIL_ON
    dtypes: list[Dtype] = Field(default_factory=lambda: list(DTYPES))
    devices: list[Device] = Field(default_factory=lambda: list(DEVICES))
    examples: str | None = None
    time_limit: float = Field(DEFAULT_TIME_LIMIT, gt=0)
    memory_limit: float = Field(DEFAULT_MEMORY_LIMIT, gt=0)
    pytest: bool = False
    loss: list[LossEntry] = Field(default_factory=list)
    _path: Path = PrivateAttr(Path("pyproject.toml"))

    @field_validator("examples")
    @classmethod
    def _database(cls, location: str | None) -> str | None:
        if location and location.startswith(("redis://", "rediss://")) and importlib.util.find_spec("redis") is None:
            raise ValueError(f'{location!r} is a Redis database, which needs: pip install "hypothesis[redis]"')
        return location

    @model_validator(mode="after")
    def _unique(self) -> GateConfig:
        seen: set[str] = set()
        for index, entry in enumerate(self.loss):
            if entry.name in seen:
                raise ValueError(f"loss[{index}]: two losses are named {entry.name!r}; give each a distinct name")
            seen.add(entry.name)
        return self

    @property
    def entries(self) -> list[LossEntry]:
        return list(self.loss)

    @property
    def path(self) -> Path:
        return self._path

    @property
    def root(self) -> Path:
        return self._path.resolve().parent

    def shown_path(self) -> str:
        """The file's path as commands print it: relative to the working directory when under it (a reproduce
        command copied from a CI log works in any checkout), else absolute."""
        path = self._path.resolve()
        return str(path.relative_to(Path.cwd())) if path.is_relative_to(Path.cwd()) else str(path)

    def classname(self, rootdir: Path | None = None) -> str:
        """The JUnit classname of this configuration's items: its path relative to ``rootdir`` (pytest's rootdir;
        default the config's own folder, where pytest finds its rootdir from a pyproject.toml), as pytest gives a
        node under that file."""
        path, base = self._path.resolve(), (rootdir or self.root).resolve()
        return path.relative_to(base).as_posix() if path.is_relative_to(base) else path.as_posix()

    def example_database(self) -> str | None:
        """The example database: an absolute directory, or a ``redis://`` URL as written; None when not set."""
        if self.examples is None or "://" in self.examples:
            return self.examples
        return str((self.root / self.examples).resolve())

    def job(self, entry: LossEntry, profile: str) -> dict[str, Any]:
        """``entry``'s audit job (``lossguard.harness.app.jobs``): its binding source, dtypes, devices, the
        properties to run (its list, or all, minus the skipped), profile, the reproduce command's base, the example
        database and the isolation's memory limit. A relative file is made absolute: the job does not depend on the
        working directory."""
        from lossguard.properties.base import PROPERTIES

        wanted = entry.properties or list(PROPERTIES)
        return {
            "bindings": [self._source(entry)],
            "dtypes": list(entry.dtypes or self.dtypes),
            "devices": list(entry.devices or self.devices),
            "properties": [p for p in wanted if p not in entry.skipped],
            "profile": profile,
            "base_command": ["lossguard", "check", "--config", self.shown_path(), "--loss-name", entry.name],
            "replay": None,
            "examples": self.example_database(),
            "save_examples": False,
            "memory_limit_gb": self.memory_limit,
        }

    def _source(self, entry: LossEntry) -> dict[str, Any]:
        if entry.library:
            return {"library": entry.library, "name": entry.binding_name}
        if entry.binding:
            return {"file": str((self.root / entry.binding).resolve()), "name": entry.binding_name}
        fields: dict[str, Any] = {"target": _absolute(str(entry.target), self.root), "name": entry.name}
        fields["framework"] = entry.framework
        if entry.loss:
            fields["loss"] = entry.loss
        for key in _INLINE:
            value = getattr(entry, key)
            if value:
                fields[key] = value
        if not entry.params:
            fields["inspect"] = True  # as audit TARGET: the parameters it takes are found by name
        return {"inline": fields}

    def skip_results(self, entry: LossEntry, implementations: Mapping[str, str] | None = None) -> list[PropertyResult]:
        """A ``skip`` result, carrying its reason, for each skipped property in each of the entry's dtypes and
        devices the property runs in, among the entry's ``properties`` when it lists them. ``implementations``: name
        -> catalog entry of what the entry ran (a binding file's or library's bindings, known once they ran; a
        property their entry does not tag gets none); default the entry itself (a target: its name and loss)."""
        from lossguard.catalog import CATALOG
        from lossguard.properties.base import PROPERTIES

        found = []
        ran = implementations or {entry.name: entry.loss or "(outside the catalog)"}
        for name, reason in entry.skipped.items():
            if entry.properties and name not in entry.properties:
                continue  # not selected either: nothing to report
            prop = PROPERTIES[name]
            for implementation, loss in ran.items():
                if loss in CATALOG and name not in CATALOG[loss].properties:
                    continue
                for device in entry.devices or self.devices:
                    if prop.cuda_only and device != "cuda":
                        continue
                    found += [
                        PropertyResult(
                            loss=loss,
                            implementation=implementation,
                            kind="user" if entry.target else "third-party",
                            device=device,
                            dtype=dtype,
                            property=name,
                            status="skip",
                            message=f"skipped by {self.path.name}: {reason}",
                        )
                        for dtype in entry.dtypes or self.dtypes
                        if dtype in prop.dtypes
                    ]
        return found


def _property(name: str) -> str:
    import lossguard.properties.all  # noqa: F401  (registers every property)
    from lossguard.properties.base import PROPERTIES

    if name not in PROPERTIES and name != EVERY_PROPERTY:
        raise ValueError(f"unknown property {name!r}{_did_you_mean(name, PROPERTIES)}")
    return name


def _did_you_mean(word: str, allowed: Sequence[str] | Mapping[str, Any]) -> str:
    close = difflib.get_close_matches(word, list(allowed), n=1)
    return f"; did you mean {close[0]!r}?" if close else ""


def _absolute(target: str, root: Path) -> str:
    """A ``file.py:attr`` target relative to ``root`` made absolute; a ``package.module:attr`` unchanged."""
    location, _, attr = target.rpartition(":")
    if _is_file(location) and not Path(location).is_absolute():
        return f"{(root / location).resolve()}:{attr}"
    return target


def _is_file(location: str) -> bool:
    return location.endswith(".py") or "/" in location


def _find_target(target: str, root: Path) -> None:
    """Raise ValueError unless ``target`` can be found without running it (the module docstring)."""
    location, sep, attr = target.rpartition(":")
    if not sep or not location or not attr:
        raise ValueError(f'target {target!r} must be "package.module:attr" or "path/to/file.py:attr"')
    if _is_file(location):
        path = Path(location) if Path(location).is_absolute() else root / location
        if not path.is_file():
            raise ValueError(f"target file {location!r} does not exist (relative to {root})")
    else:
        path = _module_file(location, root)
    _check_attribute(path, attr.split(".")[0], target)


def _module_file(module: str, root: Path) -> Path | None:
    """The source file of ``module``, found on ``sys.path`` and ``root`` without importing anything (None: found,
    but not a Python source file, e.g. an extension module or a namespace package)."""
    parts = module.split(".")
    search = [str(root), *sys.path]
    spec = None
    for depth in range(len(parts)):
        name = ".".join(parts[: depth + 1])
        spec = importlib.machinery.PathFinder.find_spec(name, search)
        if spec is None and name.rpartition(".")[0] in sys.modules:  # an imported parent's alias (os.path)
            spec = importlib.util.find_spec(name)
        if spec is None:
            raise ValueError(
                f"cannot find module {name!r} of target {module!r} (searched the config's folder and sys.path; "
                "install your package, e.g. pip install -e ., or give a file path)"
            )
        search = list(spec.submodule_search_locations or [])
    origin = spec.origin if spec is not None else None
    return Path(origin) if origin and origin.endswith(".py") else None


def _check_attribute(path: Path | None, attr: str, target: str) -> None:
    """Raise ValueError when the source file defines no top-level ``attr`` for sure (nothing is said for a module
    that may create names dynamically: a star import or a module ``__getattr__``)."""
    if path is None:
        return
    try:
        tree = ast.parse(path.read_bytes(), filename=str(path))
    except (SyntaxError, ValueError) as problem:
        raise ValueError(f"target {target!r}: {path} is not valid Python ({problem})") from problem
    names: set[str] = set()
    dynamic = False
    for node in tree.body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            names.add(node.name)
        elif isinstance(node, (ast.Assign, ast.AnnAssign, ast.AugAssign)):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            names.update(n.id for t in targets for n in ast.walk(t) if isinstance(n, ast.Name))
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            for alias in node.names:
                if alias.name == "*":
                    dynamic = True
                names.add((alias.asname or alias.name).split(".")[0])
        elif isinstance(node, (ast.If, ast.Try, ast.With, ast.For, ast.While)):
            dynamic = True  # names bound under a condition: not decided statically
    if "__getattr__" in names:
        dynamic = True
    if attr not in names and not dynamic:
        raise ValueError(f"target {target!r}: {path.name} defines no {attr!r}{_did_you_mean(attr, sorted(names))}")


# --- finding and reading a configuration ------------------------------------------------------------------------


def _table(path: Path) -> tuple[dict[str, Any] | None, str]:
    """The lossguard table of ``path`` and its key prefix (None: the file has no such table)."""
    try:
        document = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as problem:
        raise ConfigError(f"{path}: not valid TOML: {problem}") from problem
    if path.name == "lossguard.toml":
        return document, ""
    tool = document.get("tool", {})
    table = tool.get("lossguard") if isinstance(tool, dict) else None
    return (table if isinstance(table, dict) else None), "tool.lossguard."


def find(start: Path) -> Path | None:
    """The nearest configuration from ``start`` upward: a ``lossguard.toml``, or a ``pyproject.toml`` with a
    ``[tool.lossguard]`` table (lossguard.toml first in the same folder); None when there is none."""
    start = start.resolve()
    for folder in (start, *start.parents):
        candidate = folder / "lossguard.toml"
        if candidate.is_file():
            return candidate
        candidate = folder / "pyproject.toml"
        if candidate.is_file():
            with contextlib.suppress(ConfigError):  # a pyproject.toml that is not TOML has no lossguard table
                if _table(candidate)[0] is not None:
                    return candidate
    return None


def load(path: Path) -> GateConfig:
    """The validated configuration in ``path``; raises ConfigError (file, key path, what to write instead)."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"configuration file {str(path)!r} does not exist")
    table, prefix = _table(path)
    if table is None:
        raise ConfigError(
            f"{path}: has no [tool.lossguard] table (or use lossguard.toml, whose top level is the table)"
        )
    try:
        config = GateConfig.model_validate(table, context={"root": path.resolve().parent})
    except pydantic.ValidationError as problem:
        errors = sorted(problem.errors(), key=lambda e: e["type"] != "extra_forbidden")  # a misspelt key first
        first = _explain(errors[0], prefix)
        more = f" (and {len(errors) - 1} more problem{'s' * (len(errors) > 2)})" if len(errors) > 1 else ""
        raise ConfigError(f"{path}: {first}{more}") from None
    config._path = path
    return config


def _where(loc: Sequence[Any], prefix: str) -> str:
    text = prefix.rstrip(".")
    for part in loc:
        text += f"[{part}]" if isinstance(part, int) else f"{'.' if text else ''}{part}"
    return text or "(the table)"


def _explain(error: Mapping[str, Any], prefix: str) -> str:
    """One pydantic error as 'key path: problem; what to write instead'."""
    loc = tuple(error["loc"])
    kind, message = error["type"], str(error["msg"]).removeprefix("Value error, ")
    if kind == "extra_forbidden":
        allowed = _allowed(loc[:-1])
        return (
            f"{_where(loc, prefix)}: unknown key {loc[-1]!r}{_did_you_mean(str(loc[-1]), allowed)} "
            f"(allowed: {', '.join(allowed)})"
        )
    if kind == "missing":
        return f'{_where(loc, prefix)}: missing; write {loc[-1]} = "..." (it is required)'
    if kind in ("model_type", "model_attributes_type") and len(loc) >= 2 and loc[-2] == "skip":
        return (
            f'{_where(loc, prefix)}: a skip is {{ property = "NAME", reason = "why" }}, a property with a '
            "written reason"
        )
    if kind == "literal_error":
        expected = error.get("ctx", {}).get("expected", "")
        return f"{_where(loc, prefix)}: {error['input']!r} is not allowed; write one of {expected}"
    return f"{_where(loc, prefix)}: {message}"


def _allowed(loc: Sequence[Any]) -> list[str]:
    """The keys allowed in the table at ``loc`` (walking the models' fields by their dashed names)."""
    model: type[BaseModel] = GateConfig
    for part in loc:
        if isinstance(part, int):
            continue
        field = next((f for n, f in model.model_fields.items() if _dashed(n) == part), None)
        inner = _model_in(field.annotation) if field is not None else None
        if inner is None:
            break
        model = inner
    return [_dashed(n) for n in model.model_fields]


def _model_in(annotation: Any) -> type[BaseModel] | None:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    for arg in get_args(annotation) if get_origin(annotation) is not None else ():
        found = _model_in(arg)
        if found is not None:
            return found
    return None
