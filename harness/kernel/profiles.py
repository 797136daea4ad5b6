"""Hypothesis settings profiles: ``ci`` (one verdict per commit), ``dev`` and ``thorough``.

ci: derandomized (the seed derives from each property's identity), no example database, no
deadline, a bounded number of examples: the same commit always gives the same verdict.
dev: random, keeps and replays an example database (``.hypothesis/``), so a failure found once
is tried first next time. thorough: as dev, ten times the examples.
"""

from __future__ import annotations

import os

from hypothesis import Phase, settings
from hypothesis.database import DirectoryBasedExampleDatabase

PROFILES = ("ci", "dev", "thorough")
_EXAMPLES = {"ci": 12, "dev": 25, "thorough": 250}


def default_profile() -> str:
    """``ci`` when the environment variable CI is set (to anything but empty/0/false), else ``dev``."""
    return "ci" if os.environ.get("CI", "").lower() not in ("", "0", "false") else "dev"


def settings_for(profile: str, examples_factor: float = 1.0) -> settings:
    """The Hypothesis settings of ``profile``; ``examples_factor`` scales its example budget."""
    if profile not in PROFILES:
        raise ValueError(f"unknown profile {profile!r}; choose one of {', '.join(PROFILES)}")
    common = {
        "max_examples": max(1, round(_EXAMPLES[profile] * examples_factor)),
        "deadline": None,
        "print_blob": False,
        "report_multiple_bugs": False,
        "phases": [Phase.explicit, Phase.reuse, Phase.generate, Phase.target, Phase.shrink],
    }
    if profile == "ci":
        return settings(derandomize=True, database=None, **common)
    return settings(database=DirectoryBasedExampleDatabase(".hypothesis/lossguard"), **common)
