"""A binding: how a shipped loss speaks the canonical contract, as data (a TOML table, or this object in Python).

A binding states what a hand-written wrapper would otherwise do, so that a library's loss is judged as it is
shipped: parameter renames and sentinels, constructor arguments, the positional layout, the library's own
defaults and the catalog variant it follows, the output layout, the dtype policy, and the parts of the contract
it supports. ``lossguard.harness.app.bindings`` compiles it into an ``Implementation``; the fields below are the
TOML keys (docs/BINDINGS.md).

A variant the catalog lacks is added to the reference behind a keyword and named in ``variant``: a binding
never hides a difference of value.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from lossguard.harness.kernel.model import Finding

# sum-preserving maps of a library's output onto the canonical layout (``Binding.output``)
OUTPUT_LAYOUTS = {
    "sum-classes": "the 'none' output keeps a class axis (N, C, *): summed over axis 1",
    "squeeze-spatial": "the output keeps its spatial axes as size 1, (N, C, 1, 1) (or (C, 1, 1) with batch=True): "
    "reshaped to (N, C) (or (C,))",
}
INPUT_LAYOUTS = {"classes-last": "class scores (N, *, C) rather than (N, C, *): axis 1 is moved last"}


@dataclass(frozen=True)
class Binding:
    """How ``target`` implements catalog entry ``loss`` (None: a loss outside the catalog, reference-free checks).

    params: canonical parameter -> the library's keyword (or keywords: one canonical ``smooth`` may feed both
        ``smooth_nr`` and ``smooth_dr``). Exactly these are exercised; an empty mapping with ``inspect`` True
        finds them by name in the signature.
    none: canonical parameter -> the value the library spells "none" with (torchvision's ``alpha=-1``).
    init: constructor arguments of an ``nn.Module`` class, fixed for every call (``mode='binary'``).
    fixed: canonical parameter -> the value the library computes with when it is not passed (its own default,
        when it differs from the catalog's); variant: reference variant keyword -> the variant it follows.
        Both are pinned on every draw, reported, and never passed.
    args: the canonical array arguments in the library's positional order (default: canonical order), or a
        mapping canonical name -> the library's keyword.
    input_layout: a key of ``INPUT_LAYOUTS``; output: reduction -> a key of ``OUTPUT_LAYOUTS`` (or "*" for all).
    dtypes: input dtype -> the output dtype it returns by design (box losses: float32 for float16 inputs).
    domain: names of ``lossguard.harness.kernel.domains.DOMAINS``: the parts of the contract it supports.
    like: for a loss outside the catalog, the entry whose inputs it takes (its examples are drawn; default
        dice_loss: logits (N, C, *) and a mask of the same shape).
    framework: 'torch' or 'jax'. requires: the distribution that must be installed (reported when absent).
    call: (the callable or constructed module, library arguments, library keywords) -> output, for the rare
        convention no field expresses (Python bindings only). findings: recorded departures (Python only).
    skip: why a library's export is not audited (it needs pretrained weights, ...): reported, never a pass.
    """

    target: str
    loss: str | None = None
    name: str = ""
    params: Mapping[str, str | tuple[str, ...]] = field(default_factory=dict)
    inspect: bool = False
    none: Mapping[str, Any] = field(default_factory=dict)
    init: Mapping[str, Any] = field(default_factory=dict)
    fixed: Mapping[str, Any] = field(default_factory=dict)
    variant: Mapping[str, Any] = field(default_factory=dict)
    args: tuple[str, ...] | Mapping[str, str] = ()
    input_layout: str = ""
    output: Mapping[str, str] = field(default_factory=dict)
    dtypes: Mapping[str, str] = field(default_factory=dict)
    domain: tuple[str, ...] = ()
    like: str = ""
    framework: str = "torch"
    requires: str = ""
    skip: str = ""
    call: Callable[..., Any] | None = None
    findings: tuple[Finding, ...] = ()

    def __post_init__(self) -> None:
        for key, layout in self.output.items():
            if layout not in OUTPUT_LAYOUTS:
                raise ValueError(f"output layout {layout!r} for {key!r} is not one of {', '.join(OUTPUT_LAYOUTS)}")
        if self.input_layout and self.input_layout not in INPUT_LAYOUTS:
            raise ValueError(f"input_layout {self.input_layout!r} is not one of {', '.join(INPUT_LAYOUTS)}")

    @property
    def label(self) -> str:
        """The name reports give it (default: the target)."""
        return self.name or self.target
