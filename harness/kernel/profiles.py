"""Hypothesis settings profiles: ``ci`` (one verdict per commit), ``dev`` and ``thorough``.

ci: derandomized (the seed derives from each property's identity), no example database, no
deadline, a bounded number of examples: the same commit always gives the same verdict.
dev: random, keeps and replays an example database (``.hypothesis/``), so a failure found once
is tried first next time. thorough: as dev, ten times the examples.

Every profile draws from the seed alone (``seed_only_generation``): Hypothesis 6.170 also mixes in the
literal constants of every *local* module loaded in ``sys.modules`` (files outside site-packages and the
standard library, ``providers._get_local_constants``), derandomized or not. The examples a ``ci`` run
drew then depended on which modules happened to be imported first, on whether lossguard was installed
editable (its own files are local then) or not, and on the constants in an audited user's module: one
commit gave different verdicts in different sessions (docs/CONTRIBUTING.md). The catalog's builders draw
the interesting constants on purpose (every entry's hard cases), so nothing is lost by leaving them out.
"""

from __future__ import annotations

import os

from hypothesis import Phase, Verbosity, settings
from hypothesis.database import DirectoryBasedExampleDatabase
from hypothesis.internal.conjecture import providers

PROFILES = ("ci", "dev", "thorough")
_EXAMPLES = {"ci": 12, "dev": 25, "thorough": 250}


HYPOTHESIS_LOCAL_CONSTANTS = providers._get_local_constants  # Hypothesis' own, before seed_only_generation


def _no_local_constants() -> providers.Constants:
    return providers.Constants()


def seed_only_generation() -> None:
    """Keep literal constants of loaded local modules out of Hypothesis' generation (see the module's
    docstring). Hypothesis offers no setting for it: this replaces its internal ``_get_local_constants`` by
    one that finds none and clears the constants it cached. Idempotent; the pinned Hypothesis
    (constraints.txt) has the function, and ``tests/test_generation.py`` proves the effect."""
    if providers._get_local_constants is not _no_local_constants:
        providers._get_local_constants = _no_local_constants
        providers.CONSTANTS_CACHE.cache.clear()


def default_profile() -> str:
    """``ci`` when the environment variable CI is set (to anything but empty/0/false), else ``dev``."""
    return "ci" if os.environ.get("CI", "").lower() not in ("", "0", "false") else "dev"


def settings_for(profile: str, examples_factor: float = 1.0) -> settings:
    """The Hypothesis settings of ``profile``; ``examples_factor`` scales its example budget."""
    if profile not in PROFILES:
        raise ValueError(f"unknown profile {profile!r}; choose one of {', '.join(PROFILES)}")
    seed_only_generation()
    common = {
        "max_examples": max(1, round(_EXAMPLES[profile] * examples_factor)),
        "deadline": None,
        "print_blob": True,  # the failing example's choice sequence, attached to the exception (--replay)
        "verbosity": Verbosity.quiet,  # Hypothesis' own lines ("Draw 1: ...", "@seed(...)") never reach the user
        "report_multiple_bugs": False,
        "phases": [Phase.explicit, Phase.reuse, Phase.generate, Phase.target, Phase.shrink],
    }
    if profile == "ci":
        return settings(derandomize=True, database=None, **common)
    return settings(database=DirectoryBasedExampleDatabase(".hypothesis/lossguard"), **common)
