"""The data every part of lossguard exchanges: catalog entries, implementations, findings, results.

Framework-neutral on purpose: arrays are float64 (or integer) NumPy arrays, a framework binding
(``lossguard.harness.kernel.frameworks``) converts them to its own tensors on a device and dtype.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

DTYPES = ("float64", "float32", "float16", "bfloat16")
DEVICES = ("cpu", "cuda")

STATUSES = ("pass", "fail", "error", "skip", "xfail", "xpass")
FAILING_STATUSES = frozenset({"fail", "error", "xpass"})


@dataclass(frozen=True)
class Example:
    """One call of a loss: its array arguments (by canonical name) and its parameters."""

    args: Mapping[str, np.ndarray | None]
    params: Mapping[str, Any]

    def replace(self, args: Mapping[str, Any] | None = None, **params: Any) -> Example:
        """A copy with some arguments and/or parameters replaced."""
        return Example({**self.args, **(args or {})}, {**self.params, **params})

    def kwargs(self) -> dict[str, Any]:
        """Everything as keyword arguments, for a reference or a canonical call."""
        return {**self.args, **self.params}


@dataclass(frozen=True)
class ErrorCase:
    """Invalid input the canonical contract says must raise (OpInfo's ``error_inputs`` as data).

    make: turns a valid example into an invalid one. needs: parameters the implementation
    must accept for the case to apply (a negative ``delta`` says nothing about a loss without one).
    """

    description: str
    make: Callable[[Example], Example]
    needs: tuple[str, ...] = ()


@dataclass(frozen=True)
class Finding:
    """A recorded departure of an implementation from a property, kept as data next to it.

    While it reproduces the result is ``xfail``; when it stops reproducing it is ``xpass``, which
    fails the run so the record gets updated. ``witness``: an example on which the property fails;
    the property is judged on it, so a finding does not depend on where a search happens to go.
    ``upstream`` names the version it was recorded
    against (e.g. "torch 2.14.1"); ``dtypes``/``devices`` restrict it (None: all).
    """

    property: str
    reason: str
    upstream: str
    dtypes: tuple[str, ...] | None = None
    devices: tuple[str, ...] | None = None
    witness: Example | None = None

    def matches(self, property_name: str, dtype: str, device: str) -> bool:
        return (
            self.property == property_name
            and (self.dtypes is None or dtype in self.dtypes)
            and (self.devices is None or device in self.devices)
        )


@dataclass(frozen=True)
class LossSpec:
    """One catalog entry: one row of the loss catalog (docs/LOSSES.md is generated from these).

    args: the array arguments in canonical order (tensors: input, target, weight, ...).
    reference: the float64 ``LossReference`` (value, error scale, gradient).
    signature: the canonical signature as text (documentation and reports).
    params: canonical defaults of the parameters (reduction included where the loss takes it).
    examples: ``(draw, dtype, regime, accepted) -> Example`` — a Hypothesis composite body that
        builds valid inputs ("typical" or "extreme" regime) varying only accepted parameters.
    properties: tag -> parameter restriction under which the property holds ({} for none).
    by_definition: property -> why it fails mathematically (reported as xfail for every
        implementation, e.g. hinge is not a strictly proper scoring rule).
    kinks: (example, eps) -> boolean mask over the 'none' output of elements at a kink, where
        the gradient is not compared (any subgradient is accepted).
    perfect: (example, strength) -> the example with a perfect prediction (``perfect_is_limit``
        False: the loss is 0 there) or one whose confidence in the right answer grows with
        ``strength`` (True: the loss decreases towards 0, a limit, not a value).
    scoring: (q, outcome) -> Example: the loss as a scoring rule, reporting the distribution q
        (shape (C,)) when ``outcome`` happens; used by the proper-scoring property.
    sweep: (s) -> Example with reduction 'none' whose i-th element depends on s[i] only, through
        ``input`` (a residual, a logit, a probability): the curves ``lossguard plot`` draws.
    differentiable: arguments whose gradient is compared (subset of the reference's).
    domains: tag -> predicate on an example: the exact domain of a property beyond its parameter
        restriction (scale invariance of F.normalize holds only for norms 0 or >= eps); examples
        outside it are discarded, never judged.
    """

    name: str
    family: str
    args: tuple[str, ...]
    signature: str
    definition: str
    reference: Any
    params: Mapping[str, Any]
    examples: Callable[..., Example]
    properties: Mapping[str, Mapping[str, Any]]
    differentiable: tuple[str, ...] = ("input",)
    error_cases: tuple[ErrorCase, ...] = ()
    kinks: Callable[[Example, float], np.ndarray] | None = None
    perfect: Callable[[Example, float], Example] | None = None
    perfect_is_limit: bool = False
    scoring: Callable[[np.ndarray, int], Example] | None = None
    sweep: Callable[[np.ndarray], Example] | None = None
    domains: Mapping[str, Callable[[Example], bool]] = field(default_factory=dict)
    by_definition: Mapping[str, str] = field(default_factory=dict)
    variants: Mapping[str, str] = field(default_factory=dict)
    exceptions: str = ""
    ulps: float = 8.0


@dataclass(frozen=True)
class Implementation:
    """A callable under test bound to a catalog entry.

    kind: 'torch' (a torch built-in), 'own' (lossguard's own), 'third-party', or 'user'.
    accepted: the canonical parameters the callable accepts; the others stay at their defaults.
    call: maps (callable, framework arrays by canonical name, parameters) to the loss, for
        signatures that differ from the canonical one (None: call canonically by keyword).
    """

    name: str
    loss: str
    kind: str
    fn: Callable[..., Any]
    accepted: frozenset[str]
    framework: str = "torch"
    findings: tuple[Finding, ...] = ()
    source: str = ""
    call: Callable[..., Any] | None = None

    def finding_for(self, property_name: str, dtype: str, device: str) -> Finding | None:
        return next((f for f in self.findings if f.matches(property_name, dtype, device)), None)

    def with_findings(self, findings: tuple[Finding, ...]) -> Implementation:
        return dataclasses.replace(self, findings=findings)


@dataclass
class PropertyResult:
    """The verdict of one property on one implementation, device and dtype (every report renders these)."""

    loss: str
    implementation: str
    kind: str
    device: str
    dtype: str
    property: str
    status: str
    message: str = ""
    counterexample: str = ""
    reproduce: str = ""
    worst_ulps: float | None = None
    examples: int = 0
    duration_s: float = 0.0
    parameters: tuple[str, ...] = ()

    def to_json(self) -> dict[str, Any]:
        return dataclasses.asdict(self) | {"parameters": list(self.parameters)}
