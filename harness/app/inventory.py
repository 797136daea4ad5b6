"""The implementations lossguard knows, as Implementation objects: torch built-ins and its own."""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable, Iterable, Mapping

from lossguard.catalog import CATALOG
from lossguard.harness.kernel.model import Finding, Implementation, LossSpec

KINDS = ("torch", "own", "third-party", "builtin", "all")  # builtin: torch and own; all: every kind


def _register_parameter_objects() -> None:
    """The torch form of the catalog's framework-neutral parameter objects (the seeded extractor of
    ``perceptual_loss``): described by the reference, built by the own implementation, paired here."""
    from lossguard.harness.kernel.frameworks.torch_binding import register_converter
    from lossguard.implementations.own.generative import tanh_extractor_module
    from lossguard.reference.generative import TanhExtractor

    register_converter(TanhExtractor, lambda e, dtype, device: tanh_extractor_module(e.parameters, dtype, device))


_register_parameter_objects()


def accepted_parameters(fn: Callable, loss: str, catalog: Mapping[str, LossSpec] | None = None) -> frozenset[str]:
    """The parameters of ``loss`` that ``fn`` accepts (by name, or all with **kwargs): canonical ones and the
    reference's variants (an implementation offering a variant is checked on it). ``catalog``: where the
    entry is (default: lossguard's catalog; a contributor's new entry may live elsewhere until it lands)."""
    spec = (CATALOG if catalog is None else catalog)[loss]
    canonical = set(spec.params) | set(spec.variants)
    try:
        parameters = inspect.signature(fn).parameters
    except (TypeError, ValueError):
        return frozenset()
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters.values()):
        return frozenset(canonical)
    return frozenset(canonical & set(parameters))


def bind(
    loss: str,
    fn: Callable,
    name: str,
    kind: str,
    findings: Iterable[Finding] = (),
    source: str = "",
    catalog: Mapping[str, LossSpec] | None = None,
) -> Implementation:
    """An Implementation of catalog entry ``loss`` (in ``catalog``, default lossguard's) by the callable ``fn``."""
    return Implementation(
        name=name,
        loss=loss,
        kind=kind,
        fn=fn,
        accepted=accepted_parameters(fn, loss, catalog),
        findings=tuple(findings),
        source=source or getattr(fn, "__module__", ""),
    )


def _bind_all(
    table: Mapping[str, Callable], kind: str, prefix: str, findings: Mapping[str, Iterable[Finding]]
) -> list[Implementation]:
    return [bind(loss, fn, f"{prefix}.{loss}", kind, findings.get(loss, ())) for loss, fn in table.items()]


def torch_builtins() -> list[Implementation]:
    from lossguard.implementations import torch_builtins as tb

    return _bind_all(tb.BUILTINS, "torch", "torch.nn.functional", tb.FINDINGS)


def own() -> list[Implementation]:
    from lossguard.implementations import own as lossguard_own

    return _bind_all(lossguard_own.OWN, "own", "lossguard", {})


@functools.cache
def shipped_third_party() -> tuple[tuple[Implementation, ...], Mapping[str, LossSpec]]:
    """Every shipped binding of every installed library, compiled, and the catalog extended by the entries of the
    losses outside it (``implementations/bindings/``; a library not installed contributes nothing)."""
    from lossguard.harness.app.jobs import Prepared, add_library

    prepared = Prepared()
    for name in shipped_libraries():
        add_library(prepared, name)
    return tuple(prepared.impls), prepared.catalog


def shipped_libraries() -> list[str]:
    from lossguard.harness.app.bindings import libraries

    return libraries()


def third_party() -> list[Implementation]:
    """The shipped bindings of installed libraries whose loss has a catalog entry (``check --impl third-party``)."""
    return [i for i in shipped_third_party()[0] if i.loss in CATALOG]


def implementations(kind: str = "all") -> list[Implementation]:
    """The implementations of ``kind``: torch, own, third-party (installed libraries' catalogued losses, through
    their shipped bindings), builtin (torch and own) or all."""
    if kind not in KINDS:
        raise ValueError(f"unknown implementation kind {kind!r}; choose one of {', '.join(KINDS)}")
    found = []
    if kind in ("torch", "builtin", "all"):
        found += torch_builtins()
    if kind in ("own", "builtin", "all"):
        found += own()
    if kind in ("third-party", "all"):
        found += third_party()
    return found


def find(kind: str, name: str) -> tuple[Implementation, Mapping[str, LossSpec] | None]:
    """A shipped implementation by kind and name, and the catalog it is judged against (None: lossguard's)."""
    if kind == "third-party":
        impls, catalog = shipped_third_party()
        return next(i for i in impls if i.name == name), catalog
    return next(i for i in implementations(kind) if i.name == name), None
