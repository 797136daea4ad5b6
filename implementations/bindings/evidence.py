"""What the library binding modules share to state their findings (``FINDINGS``): witnesses as float64 arrays, the
validation gap (a catalog error case that computes a value instead of raising) and the half-precision dtype
departure (a float16 or bfloat16 input computed and returned in float32). Each finding names the upstream release
it was confirmed against (``upstream``: "monai 1.6.1"), as ``harness.kernel.model.Finding`` records it."""

from __future__ import annotations

from typing import Any

import numpy as np

from lossguard.harness.kernel.model import Example, Finding

NO_VALIDATION = "does not validate its inputs: {what} gives a value instead of raising ({docs})"
HALF = ("float16", "bfloat16")


def float_arrays(**lists: Any) -> dict[str, np.ndarray]:
    """A witness's arrays, by argument name, in float64 (the dtype the catalog draws; a run rounds them)."""
    return {name: np.asarray(values, dtype=np.float64) for name, values in lists.items()}


def validation_gap(case: str, reason: str, witness: Example, upstream: str) -> Finding:
    """invalid_input: the catalog's error ``case`` computes a value instead of raising; ``witness`` is a valid
    example the property turns into the case."""
    return Finding("invalid_input", reason, upstream, witness=witness, case=case)


def not_validated(case: str, what: str, docs: str, witness: Example, upstream: str) -> Finding:
    """``validation_gap`` with the common reason: ``what`` gives a value, against what ``docs`` say."""
    return validation_gap(case, NO_VALIDATION.format(what=what, docs=docs), witness, upstream)


def half_precision(example: Example, dtype: str) -> bool:
    """A finding's domain: every example of a float16 or bfloat16 run."""
    return dtype in HALF


def half_in_float32(reason: str, witness: Example, upstream: str) -> Finding:
    """dtype: a float16 or bfloat16 input gives a float32 loss, for ``reason``."""
    return Finding(
        "dtype",
        reason,
        upstream,
        dtypes=HALF,
        witness=witness,
        domain=half_precision,
        where="float16 and bfloat16 inputs",
    )
