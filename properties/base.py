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

import numpy as np

from lossguard.harness.kernel.model import DTYPES, FACTS

if TYPE_CHECKING:
    from lossguard.harness.kernel.subject import Subject

# which dtypes a property runs in: a set of names from lossguard.harness.kernel.model.DTYPES
EVERY_DTYPE: frozenset[str] = frozenset(DTYPES)  # every dtype the implementation supports
FLOAT64_AND_FLOAT32: frozenset[str] = frozenset({"float64", "float32"})  # stability at extremes, per the contract
FLOAT64_ONLY: frozenset[str] = frozenset({"float64"})  # structural properties: one dtype is enough

NONE = "none"  # reduction='none'; Subject.draw pins it only for implementations that take ``reduction``


def first_index(mask: Any) -> tuple[int, ...]:
    """The index of the first True element of ``mask`` (() for a 0-d one)."""
    mask = np.asarray(mask)
    return tuple(int(i) for i in np.argwhere(mask)[0]) if mask.ndim else ()


def numbers_at(
    index: tuple[int, ...], actual: Any, expected: Any, scale: Any
) -> tuple[float, float | None, float | None]:
    """``Subject.fail``'s ``numbers`` for the failing element ``index``: that element of ``actual``, ``expected``
    and ``scale``, broadcast together (``expected`` or ``scale`` None where not known). What the severity weighs
    (``lossguard.harness.kernel.severity.departure``): |actual - expected| against max(|expected|, scale, u_D)."""
    shape = np.broadcast_shapes(*(np.shape(x) for x in (actual, expected, scale) if x is not None))

    def element(x: Any) -> float | None:
        return None if x is None else float(np.broadcast_to(np.asarray(x, dtype=np.float64), shape)[index])

    return float(np.broadcast_to(np.asarray(actual, dtype=np.float64), shape)[index]), element(expected), element(scale)


def increase_numbers(
    subject: Subject, lower: Any, higher: Any, increment: Any, failing: Any
) -> tuple[float, float | None, float | None]:
    """``Subject.fail``'s ``numbers`` for a strict increase that did not happen: the implementation's value at the
    example ``higher`` should exceed its value at ``lower``. Against the bound itself (the lower value) a tie would
    weigh nothing, so what is weighed is the increase: the implementation's ``increment`` (higher minus lower, at
    the first element of ``failing``), the exact one from the reference, and the scale of the two evaluations
    (summed). A flat or falling loss where the exact one rises well above rounding is wrong; a rise the size of
    the rounding missed is imprecise."""
    with np.errstate(all="ignore"):
        exact = subject.reference(higher) - subject.reference(lower)
        scale = subject.scale(higher) + subject.scale(lower)
    return numbers_at(first_index(failing), increment, exact, scale)


@dataclass(frozen=True)
class Property:
    """A named check; ``examples`` scales the profile's example budget (cheap structural checks use fewer).

    checks: the stable ids of the sub-checks it judges (each branch, half or identity that can fail on its own);
    a failure names the one it broke (``PropertyResult.check``), and each is proven by its own planted bug.
    A property with one check may leave it undeclared: its one check is its name.
    dtypes: the dtypes it runs in (a subset of ``DTYPES``). needs: the facts of the catalog entry it reads
    (names from ``lossguard.harness.kernel.model.FACTS``, e.g. 'outcome', 'relations.cross_entropy'); the
    runner reports an entry that tags it without stating them as an error of the catalog.
    """

    name: str
    summary: str
    check: Callable[[Subject, Any], None]
    dtypes: frozenset[str] = EVERY_DTYPE
    examples: float = 1.0
    cuda_only: bool = False
    needs: tuple[str, ...] = ()
    checks: tuple[str, ...] = ()


# the properties by name (the catalog's tags); not the inventory of implementations (harness.app.inventory)
PROPERTIES: dict[str, Property] = {}


def _checked_dtypes(name: str, dtypes: Any) -> frozenset[str]:
    if not isinstance(dtypes, frozenset) or not dtypes or not all(isinstance(d, str) for d in dtypes):
        raise TypeError(
            f"property {name!r}: dtypes = {dtypes!r}, but should be a non-empty frozenset of dtype names "
            "(EVERY_DTYPE, FLOAT64_AND_FLOAT32, FLOAT64_ONLY)"
        )
    unknown = sorted(dtypes - set(DTYPES))
    if unknown:
        raise ValueError(f"property {name!r}: unknown dtype {unknown[0]!r} in dtypes; known: {', '.join(DTYPES)}")
    return dtypes


def _checked_checks(name: str, checks: Any) -> tuple[str, ...]:
    if checks is None:
        return (name,)
    if (
        not isinstance(checks, tuple)
        or not checks
        or not all(isinstance(c, str) and c.isidentifier() for c in checks)
        or len(set(checks)) != len(checks)
    ):
        raise TypeError(
            f"property {name!r}: checks = {checks!r}, but should be a non-empty tuple of distinct identifiers "
            "(the ids of its sub-checks)"
        )
    return checks


def register(
    name: str,
    summary: str,
    dtypes: frozenset[str] = EVERY_DTYPE,
    examples: float = 1.0,
    cuda_only: bool = False,
    needs: tuple[str, ...] = (),
    checks: tuple[str, ...] | None = None,
) -> Callable[[Callable[[Subject, Any], None]], Callable[[Subject, Any], None]]:
    """Decorator adding a property to ``PROPERTIES`` under ``name`` (the catalog's tag); a bad dtype set or
    an unknown fact raises here, at import. ``checks``: the ids of its sub-checks (default: one, its name);
    each judgement passes its id (``subject.expect_close(..., check=...)``, ``subject.fail(..., check=...)``)."""
    dtypes = _checked_dtypes(name, dtypes)
    checks = _checked_checks(name, checks)
    unknown = [fact for fact in needs if fact not in FACTS]
    if unknown:
        raise ValueError(f"property {name!r}: needs unknown fact {unknown[0]!r}; known: {', '.join(FACTS)}")

    def add(check: Callable[[Subject, Any], None]) -> Callable[[Subject, Any], None]:
        if name in PROPERTIES:
            raise ValueError(f"property {name!r} registered twice")
        PROPERTIES[name] = Property(name, summary, check, dtypes, examples, cuda_only, tuple(needs), checks)
        return check

    return add
