"""What every shipped library's audit test asserts, and the planted variant bugs: shared by tests/bindings/test_*.py.

``audit(name, dtypes)`` runs the library's shipped bindings as ``lossguard audit --library NAME`` does (CPU, ci
profile, the bindings outside the catalog included), ``check_audit`` asserts the shipped-library target (every
bound catalog loss has results and a pass, no fail, error or xpass, some xfail from a recorded finding), and
``biased`` plants a bug of 32 u of the judged scale into a binding that follows a reference variant: the
variant's value and error scale are what the property judges, so the right binding passes and the biased one
fails (the planted-bug convention of tests/planted.py).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np
import torch

from lossguard.catalog import CATALOG
from lossguard.harness.app import jobs
from lossguard.harness.app.runner import Selection, run, run_one
from lossguard.harness.kernel.binding import Binding
from lossguard.harness.kernel.model import PropertyResult

CI = Selection(devices=("cpu",), profile="ci")


def audit(name: str, dtypes: Sequence[str], free: bool = False) -> list[PropertyResult]:
    """The results of ``lossguard audit --library name`` on the CPU in the ci profile, for ``dtypes``, for the
    bindings to catalog entries (and with ``free``, those outside the catalog, judged by the reference-free
    properties alone: a library whose findings there are all recorded), with the skipped exports' notes."""
    prepared = jobs.Prepared()
    jobs.add_library(prepared, name)
    selection = dataclasses.replace(CI, dtypes=tuple(dtypes))
    catalog_bound = [impl for impl in prepared.impls if free or impl.loss in CATALOG]
    return [*prepared.known, *run(catalog_bound, selection, catalog=prepared.catalog)]


def check_audit(results: list[PropertyResult], bindings: Sequence[Binding]) -> None:
    """Every bound catalog loss has results and at least one pass; nothing fails, errs or xpasses; some xfail."""
    for binding in bindings:
        if binding.loss is None or binding.skip:
            continue
        mine = [r for r in results if r.implementation == binding.label]
        assert mine, f"{binding.label} has no results"
        assert any(r.status == "pass" for r in mine), f"{binding.label} has no pass"
    bad = [f"{r.implementation} {r.property} {r.dtype} {r.status}: {r.message[:300]}" for r in results]
    bad = [line for line, r in zip(bad, results, strict=True) if r.status in ("fail", "error", "xpass")]
    assert not bad, "\n".join(bad)
    assert any(r.status == "xfail" for r in results), "no recorded finding reproduced"


def binding(bindings: Sequence[Binding], label: str) -> Binding:
    return next(b for b in bindings if b.label == label)


def _numpy(value: Any) -> Any:
    """A tensor as the float64 reference takes it: floating ones in float64, class indices as they are."""
    if not isinstance(value, torch.Tensor):
        return value
    value = value.detach()
    return (value.double() if value.is_floating_point() else value).numpy()


def biased(
    original: Binding,
    canonical: Callable[[Any, dict[str, Any]], dict[str, Any]],
    argument: str | None = None,
    ulps: float = 32.0,
) -> Binding:
    """``original`` with a planted bug of ``ulps`` u of the scale the property judges: in its value (argument
    None) or in its gradient in ``argument`` (the value unchanged). ``canonical(module, library keywords)`` gives
    the canonical parameters the call computes with (the reference takes them, the binding's variant added)."""
    reference = CATALOG[original.loss].reference
    call = original.call

    def planted(module: Any, args: dict[str, Any], keywords: dict[str, Any]) -> Any:
        value = call(module, args, keywords) if call else module(*args.values(), **keywords)
        arrays = {k: _numpy(v) for k, v in args.items()}
        params: Mapping[str, Any] = {**canonical(module, keywords), **original.fixed, **original.variant}
        u = torch.finfo(value.dtype).eps / 2
        if argument is None:
            scale = np.nan_to_num(np.asarray(reference.error_scale(**arrays, **params)), nan=0.0, posinf=0.0)
            return value + torch.as_tensor(ulps * u * scale, dtype=value.dtype)  # a NaN value (0 / 0) stays NaN
        x = args[argument]
        scale = np.asarray(reference.grad(**arrays, **params)[argument].scale)
        tilt = (x * torch.as_tensor(ulps * u * scale, dtype=x.dtype)).sum()
        return value + (tilt - tilt.detach())

    return dataclasses.replace(original, name=f"{original.label}.planted", call=planted)


def judged(impl_binding: Binding, prop: str, dtype: str = "float64") -> PropertyResult:
    from lossguard.harness.app.bindings import compile_binding

    impl, spec = compile_binding(impl_binding)
    return run_one(impl, prop, "cpu", dtype, CI, {**CATALOG, spec.name: spec})
