"""The data every part of lossguard exchanges: catalog entries, implementations, findings, results.

Framework-neutral on purpose: arrays are float64 (or integer) NumPy arrays, a framework binding
(``lossguard.harness.kernel.frameworks``) converts them to its own tensors on a device and dtype.
"""

from __future__ import annotations

import dataclasses
import functools
import inspect
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

DTYPES = ("float64", "float32", "float16", "bfloat16")
DEVICES = ("cpu", "cuda")

STATUSES = ("pass", "fail", "error", "skip", "xfail", "xpass")
FAILING_STATUSES = frozenset({"fail", "error", "xpass"})
EVERY_PROPERTY = "(every property)"  # the property of a result that stands for every property (one skip, why)


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
    """A recorded departure of an implementation (or of a loss's definition) from a property, kept as data.

    A finding scopes a cell, it does not blind it. The runner judges a cell that has findings in two parts:
    the ``witness`` (an example on which the property fails) must still fail, with a failure the finding
    covers (else ``xpass``, which fails the run so the record gets updated); and the property's search runs
    as for any other cell with the covered examples discarded, so a failure outside every finding's domain
    is a plain ``fail`` (or ``error``) with its own counterexample. The cell is ``xfail`` only when both hold.

    domain: ``(example, dtype) -> bool``, whether an example (rounded to the dtype, as the property failed on
        it) lies where the departure shows; as narrow as the departure is. ``where`` states it in words.
        None: the finding covers no example of its own (only its ``case`` or ``raises``).
    case: for ``invalid_input``, the description of the error case the implementation does not reject; that
        case is skipped in the search and the other cases are still judged.
    raises: a regular expression over ``"<ExceptionType>: <message>"``: the exception that is the departure.
        An implementation that raises (an ``error``) is covered only by a finding whose ``raises`` matches.
    ``upstream`` names the version it was recorded against (e.g. "torch 2.14.1", or "by definition");
    ``dtypes``/``devices`` restrict it (None: all).
    """

    property: str
    reason: str
    upstream: str
    dtypes: tuple[str, ...] | None = None
    devices: tuple[str, ...] | None = None
    witness: Example | None = None
    domain: Callable[[Example, str], Any] | None = None
    where: str = ""
    case: str | None = None
    raises: str | None = None

    def matches(self, property_name: str, dtype: str, device: str) -> bool:
        return (
            self.property == property_name
            and (self.dtypes is None or dtype in self.dtypes)
            and (self.devices is None or device in self.devices)
        )

    def covers(self, example: Example | None, dtype: str, message: str, status: str = "fail") -> bool:
        """Whether a failure (its ``status``, ``message`` and failing ``example``) lies inside this departure."""
        if status != "fail" and (self.raises is None or not re.search(self.raises, message)):
            return False  # an error is the departure only where the finding names its exception
        if self.case is not None and self.case not in message:
            return False
        if self.domain is None:  # a case covers its failures; ``raises`` covers errors only, never a wrong value
            return self.case is not None or (self.raises is not None and status != "fail")
        if example is None:
            return False
        with np.errstate(all="ignore"):
            return bool(self.domain(example, dtype))

    def scope(self) -> str:
        """The domain in words, for reports."""
        parts = [self.where] if self.where else []
        if self.case is not None:
            parts.append(f"error case {self.case!r}")
        if self.raises is not None:
            parts.append(f"raising {self.raises!r}")
        return "; ".join(parts) or "no domain stated"


# What a loss's target is: the outcome its prediction is scored against (``LossSpec.outcome``)
BINARY = "binary"  # one event per element (labels in {0, 1} or {-1, +1}): a report is P(y = 1)
MULTICLASS = "multiclass"  # one of C classes per sample (class indices, or their probabilities)
PROBABILITIES = "probabilities"  # a target distribution over C classes (KL divergence)
MULTILABEL = "multilabel"  # C independent binary labels per sample
REAL = "real"  # a real-valued target (regression)
OUTCOMES = (BINARY, MULTICLASS, PROBABILITIES, MULTILABEL, REAL)


@dataclass(frozen=True)
class Rescaled:
    """This loss is another entry's times a power of one shared parameter value d > 0:
    ``L(param = d) = d ** power * entry(entry_param = d)`` (huber_loss(delta = d) = d smooth_l1_loss(beta = d))."""

    entry: str
    param: str
    entry_param: str
    power: int


@dataclass(frozen=True)
class Part:
    """One term of a weighted sum of losses: the parameter ``weight`` times ``entry``'s value with
    reduction 'mean', the parameters ``shared`` passed on to it (bce_dice_loss: bce_weight x BCE + ...)."""

    entry: str
    weight: str
    shared: tuple[str, ...] = ()


@dataclass(frozen=True)
class Relations:
    """The other catalog entries a family identity compares this loss with, by name (a property resolves a
    name with ``Subject.catalog``, which the application injects; properties never name a loss themselves).

    cross_entropy: the cross-entropy this loss reduces to or is built from: the focal losses at gamma = 0
        (focal_identities), the per-label BCE that multilabel_soft_margin_loss averages (multilabel_mean_bce),
        the BCE compositions of the GAN losses (gan_bce_composition), the materialised logits' CE of
        linear_cross_entropy (linear_materialised); an entry tagged cross_entropy_kl that names one is the
        KL side of CE = H + KL (kl_div), one that names none is the cross-entropy itself.
    rescaled: this loss as another entry rescaled by a parameter (huber_smooth_l1).
    at_least: an entry whose loss this one is >= on the same inputs (box_loss_range: GIoU, DIoU, CIoU >= IoU).
    dice, jaccard: the entries a Tversky loss equals at alpha = beta = 1/2 and 1 (tversky_identities).
    parts: the terms of a weighted sum of losses (composite_sum), in order.
    """

    cross_entropy: str | None = None
    rescaled: Rescaled | None = None
    at_least: str | None = None
    dice: str | None = None
    jaccard: str | None = None
    parts: tuple[Part, ...] = ()

    def names(self) -> tuple[str, ...]:
        """Every entry named here (each must be in the catalog)."""
        single = (self.cross_entropy, self.at_least, self.dice, self.jaccard)
        rescaled = (self.rescaled.entry,) if self.rescaled else ()
        return tuple(n for n in (*single, *rescaled, *(p.entry for p in self.parts)) if n is not None)


NO_RELATIONS = Relations()


@dataclass(frozen=True)
class LossSpec:
    """One catalog entry: one row of the loss catalog (docs/LOSSES.md is generated from these).

    reference: the float64 ``LossReference`` (value, error scale, gradient). Its Python signature is the
        canonical one and the only statement of the entry's arguments, parameters and defaults: ``args``,
        ``params`` and ``signature`` are derived from it (see those properties).
    supplied: values the catalog gives to reference parameters that have no canonical default and are
        not array arguments (perceptual_loss's feature extractor and layers): they count as parameters.
    variants: reference keywords outside the canonical contract (name -> description): not in
        ``params`` nor in ``signature``; an implementation that accepts one is checked on it too.
    variant_values: variant name -> every value its reference takes, the canonical one included (the reference
        module's tuple, e.g. ``ALPHA_GRADIENTS``); a bool variant needs none (``alternatives``). The diagnosis of a
        failure tries the other values (``lossguard.harness.app.diagnosis``).
    benchmark: (example, seeded generator) -> the call to time, for a loss whose realistic call is not
        its seeded example with the rows repeated (``lossguard.harness.kernel.seeded.benchmark_example``);
        None: that call.
    examples: ``(draw, dtype, regime, accepted) -> Example`` — a Hypothesis composite body that
        builds valid inputs ("typical" or "extreme" regime) varying only accepted parameters.
    properties: tag -> parameter restriction under which the property holds ({} for none).
    by_definition: the properties that fail mathematically, as ``Finding`` objects (upstream "by definition",
        with a witness and the domain where the definition fails; judged as an implementation's finding is, for
        every implementation, e.g. hinge is not a strictly proper scoring rule).
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
    outcome: what the target is, one of ``OUTCOMES`` ("" when no property needs it): 'binary' (one event
        per element), 'multiclass' (one of C classes), 'probabilities' (a target distribution),
        'multilabel', 'real'. proper_scoring reports over 2 outcomes for a binary loss, over C otherwise.
    value_range: (low, high): every value of the loss lies in [low, high] (box_loss_range); None: not stated.
    relations: the other entries the family identities compare this loss with (``Relations``).

    Properties read these facts, never the entry's name: a new entry stating them gets the properties it
    tags without a change to any property (tests/test_catalog_facts.py).
    """

    name: str
    family: str
    definition: str
    reference: Any
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
    by_definition: tuple[Finding, ...] = ()
    variants: Mapping[str, str] = field(default_factory=dict)
    variant_values: Mapping[str, tuple[Any, ...]] = field(default_factory=dict)
    supplied: Mapping[str, Any] = field(default_factory=dict)
    benchmark: Callable[[Example, np.random.Generator], Example] | None = None
    caveats: str = ""
    ulps: float = 8.0
    outcome: str = ""
    value_range: tuple[float, float] | None = None
    relations: Relations = NO_RELATIONS

    def __post_init__(self) -> None:
        self._check_signature()
        if self.outcome and self.outcome not in OUTCOMES:
            raise ValueError(f"entry {self.name!r}: outcome {self.outcome!r} is not one of {OUTCOMES}")
        if self.value_range is not None and not self.value_range[0] <= self.value_range[1]:
            raise ValueError(f"entry {self.name!r}: value_range {self.value_range!r} is not (low, high), low <= high")

    # --- the contract, derived from the reference's signature ---------------------------------

    @property
    def _reference_parameters(self) -> Mapping[str, inspect.Parameter]:
        return inspect.signature(self.reference).parameters

    def _check_signature(self) -> None:
        """``variants`` and ``supplied`` name reference parameters of the right kind (else the entry is wrong)."""
        parameters = self._reference_parameters
        for name in self.variants:
            if name not in parameters or parameters[name].default is inspect.Parameter.empty:
                raise ValueError(f"entry {self.name!r}: variants names {name!r}, not a keyword of its reference")
        for name, values in self.variant_values.items():
            if name not in self.variants or parameters[name].default not in values:
                raise ValueError(
                    f"entry {self.name!r}: variant_values names {name!r}, not a variant with its default among them"
                )
        for name in self.supplied:
            if name not in parameters or parameters[name].default is not inspect.Parameter.empty:
                raise ValueError(
                    f"entry {self.name!r}: supplied names {name!r}, not a parameter of its reference without a default"
                )

    @functools.cached_property
    def args(self) -> tuple[str, ...]:
        """The array arguments in canonical order: the reference's parameters without a default (not supplied)."""
        return tuple(
            name
            for name, p in self._reference_parameters.items()
            if p.default is inspect.Parameter.empty and name not in self.supplied
        )

    @functools.cached_property
    def params(self) -> dict[str, Any]:
        """Canonical parameters and their defaults, in the reference's order: its keywords (variants aside)
        and the supplied values of its other non-array parameters (reduction included where the loss takes it)."""
        params = {}
        for name, p in self._reference_parameters.items():
            if name in self.supplied:
                params[name] = self.supplied[name]
            elif p.default is not inspect.Parameter.empty and name not in self.variants:
                params[name] = p.default
        return params

    @functools.cached_property
    def variant_defaults(self) -> dict[str, Any]:
        """The reference's defaults of the ``variants`` keywords (the canonical choice of each)."""
        return {name: self._reference_parameters[name].default for name in self.variants}

    def alternatives(self, name: str) -> tuple[Any, ...]:
        """The values of variant ``name`` other than its canonical one: those ``variant_values`` states, or a bool
        variant's other value; () where neither says (the variant cannot be tried)."""
        default = self.variant_defaults[name]
        if name in self.variant_values:
            return tuple(v for v in self.variant_values[name] if v != default)
        return (not default,) if isinstance(default, bool) else ()

    @functools.cached_property
    def signature(self) -> str:
        """The canonical signature as text (documentation and reports), e.g. ``huber_loss(input, target, ...)``."""
        parts = [
            name if name in self.args or name in self.supplied else f"{name}={literal(value)}"
            for name, value in {**dict.fromkeys(self.args), **self.params}.items()
        ]
        return f"{self.name}({', '.join(parts)})"

    def states(self, fact: str) -> bool:
        """Whether the entry states ``fact``: a field name or ``relations.<field>`` (see ``FACTS``)."""
        value: Any = self
        for part in fact.split("."):
            value = getattr(value, part)
        return value is not None and value != "" and value != ()


def literal(value: Any) -> str:
    """A default as the signature text writes it: its repr, exponents without padding (1e-7, not 1e-07)."""
    return re.sub(r"e([+-])0*(\d)", r"e\1\2", repr(value)) if isinstance(value, float) else repr(value)


# the facts of an entry a property may declare it reads (``register(..., needs=...)``)
FACTS = (
    *(f.name for f in dataclasses.fields(LossSpec) if f.name != "relations"),
    *(f"relations.{f.name}" for f in dataclasses.fields(Relations)),
)


@dataclass(frozen=True)
class Domain:
    """A part of a catalog contract that an implementation supports, declared by its binding (hard labels only,
    spatial dimensions required, batched input only, ...): examples outside it are never used to judge it.

    contains: whether an example lies in it. project: maps a drawn example of the contract into it (hard labels:
    the target rounded to {0, 1}), the result still inside the contract; None: examples outside are discarded.
    """

    name: str
    description: str
    contains: Callable[[Example], bool]
    project: Callable[[Example], Example] | None = None


@dataclass(frozen=True)
class Implementation:
    """A callable under test bound to a catalog entry.

    kind: 'torch' (a torch built-in), 'own' (lossguard's own), 'third-party', or 'user'.
    accepted: the canonical parameters the callable accepts; the others stay at their defaults.
    call: maps (callable, framework arrays by canonical name, parameters) to the loss, for
        signatures that differ from the canonical one (None: call canonically by keyword).
    fixed: canonical parameters and reference variants the callable computes with although it does not receive
        them (a library's own default, the variant it follows): every draw pins them, the reference sees them.
    domain: the parts of the contract it supports (``Domain``); examples outside them are never judged.
    output: maps the float64 output and the example's parameters to the canonical output layout (a library's
        'none' per class, summed over classes). Only a map that preserves the output's sum is allowed: the
        gradients are those of the library's summed output.
    output_dtypes: input dtype -> the output dtype it returns by design (float32 for half inputs); others: the
        input dtype.
    adaptations: what its binding adapts, in words, for the report.
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
    fixed: Mapping[str, Any] = field(default_factory=dict)
    domain: tuple[Domain, ...] = ()
    output: Callable[[np.ndarray, Mapping[str, Any]], np.ndarray] | None = None
    output_dtypes: Mapping[str, str] = field(default_factory=dict)
    adaptations: tuple[str, ...] = ()

    def output_dtype(self, dtype: str) -> str:
        """The dtype of its output for inputs in ``dtype``."""
        return self.output_dtypes.get(dtype, dtype)

    def supports(self, example: Example) -> bool:
        """Whether ``example`` lies in every part of the contract it supports."""
        return all(d.contains(example) for d in self.domain)

    def finding_for(self, property_name: str, dtype: str, device: str) -> Finding | None:
        return next((f for f in self.findings if f.matches(property_name, dtype, device)), None)

    def findings_for(self, property_name: str, dtype: str, device: str) -> tuple[Finding, ...]:
        """Every finding of this cell (a cell may have more than one departure)."""
        return tuple(f for f in self.findings if f.matches(property_name, dtype, device))

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
    comparisons: int = 0  # judgements made (Subject.judged); a run that made none is a skip, never a pass
    duration_s: float = 0.0
    parameters: tuple[str, ...] = ()
    check: str = ""  # the id of the property's sub-check that failed ("" unless fail or error)
    replay: str = ""  # the failing example's Hypothesis choice sequence, base64 (``lossguard ... --replay``)
    library: str = ""  # the library whose shipped loss this is (``audit --library``); "" otherwise
    # the failing element's numbers (``PropertyFailure``): the implementation's value, the exact one, the error
    # scale of its computation; None where the failure compared no numbers
    actual: float | None = None
    expected: float | None = None
    scale: float | None = None
    severity: str = ""  # lossguard.harness.kernel.severity.classify: "" unless fail, error or xfail
    convention: str = ""  # the diagnosed variant of the contract the implementation follows ("" if none matched)
    # the failing example itself (float64, as the property drew it): for diagnosis and plots, never serialised
    example: Example | None = field(default=None, repr=False, compare=False)

    def to_json(self) -> dict[str, Any]:
        fields = {f.name: getattr(self, f.name) for f in dataclasses.fields(self) if f.name != "example"}
        return fields | {"parameters": list(self.parameters)}
