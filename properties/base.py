"""Properties: checks written once and applied to every loss whose catalog entry tags them.

A property is a function ``check(subject, data)``: ``data`` is Hypothesis's ``st.data()``
object (draws are labelled so a falsifying example reads like a sentence) and ``subject``
bundles one implementation, catalog entry, dtype and device (``lossguard.harness.kernel.subject.Subject``:
draw an example, call the implementation, evaluate the reference, compare under the tolerance
policy, raise a failure). Properties never import a concrete implementation.

Failure messages follow one pattern everywhere:
``<what> = <actual>, but should be <expected> [<why>]``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from lossguard.harness.kernel.subject import Subject

# which dtypes a property runs in
ALL_DTYPES = "all"  # every dtype the implementation supports (float64, float32, float16, bfloat16)
FLOAT64_AND_32 = "float"  # float64 and float32 (stability at extremes, per the contract)
FLOAT64 = "float64"  # structural properties: one dtype is enough

NONE = "none"  # reduction='none'; Subject.draw pins it only for implementations that take ``reduction``


@dataclass(frozen=True)
class Property:
    """A named check; ``examples`` scales the profile's example budget (cheap structural checks use fewer)."""

    name: str
    summary: str
    check: Callable[[Subject, Any], None]
    dtypes: str = ALL_DTYPES
    examples: float = 1.0
    cuda_only: bool = False


REGISTRY: dict[str, Property] = {}


def register(
    name: str, summary: str, dtypes: str = ALL_DTYPES, examples: float = 1.0, cuda_only: bool = False
) -> Callable[[Callable[[Subject, Any], None]], Callable[[Subject, Any], None]]:
    """Decorator adding a property to the registry under ``name`` (the catalog's tag)."""

    def add(check: Callable[[Subject, Any], None]) -> Callable[[Subject, Any], None]:
        if name in REGISTRY:
            raise ValueError(f"property {name!r} registered twice")
        REGISTRY[name] = Property(name, summary, check, dtypes, examples, cuda_only)
        return check

    return add
