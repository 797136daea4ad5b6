"""Hypothesis settings of the project's own tests: one verdict from the README's test command.

Every test's search is derandomized, keeps no example database and draws no constants of loaded modules
(``lossguard.harness.kernel.profiles.seed_only_generation``) by default, on every machine, CI or not (the
``ci`` profile, as lossguard's own ``--profile ci``): the same commit gives the same verdict everywhere.
Exploration is opt-in: ``LOSSGUARD_TEST_PROFILE=explore pytest --hypothesis-seed=N`` searches randomly with
the given seed (``tox -e explore`` runs it over many seeds; docs/CONTRIBUTING.md). Settings a test states
itself (example counts) inherit the profile.
"""

from __future__ import annotations

import os

from hypothesis import settings

from lossguard.harness.kernel.profiles import seed_only_generation

settings.register_profile("ci", derandomize=True, database=None, deadline=None)
settings.register_profile("explore", derandomize=False, database=None, deadline=None)
settings.load_profile(os.environ.get("LOSSGUARD_TEST_PROFILE", "ci"))
seed_only_generation()  # draws depend on the seed alone, not on which modules a session has loaded
