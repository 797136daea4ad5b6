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

from lossguard.harness.kernel.model import DTYPES, FACTS

if TYPE_CHECKING:
    from lossguard.harness.kernel.subject import Subject

# which dtypes a property runs in: a set of names from lossguard.harness.kernel.model.DTYPES
EVERY_DTYPE: frozenset[str] = frozenset(DTYPES)  # every dtype the implementation supports
FLOAT64_AND_FLOAT32: frozenset[str] = frozenset({"float64", "float32"})  # stability at extremes, per the contract
FLOAT64_ONLY: frozenset[str] = frozenset({"float64"})  # structural properties: one dtype is enough

NONE = "none"  # reduction='none'; Subject.draw pins it only for implementations that take ``reduction``


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
