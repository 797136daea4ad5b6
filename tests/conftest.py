"""Hypothesis settings of the project's own tests: one commit, one verdict in CI.

With the environment variable CI set, every test's search is derandomized and keeps no example
database (the ``ci`` profile, as lossguard's own ``--profile ci``); elsewhere tests search randomly
and replay the failures they saved. Settings a test states itself (example counts) inherit this.
"""

from __future__ import annotations

from hypothesis import settings

from harness.profiles import default_profile

settings.register_profile("ci", derandomize=True, database=None, deadline=None)
settings.register_profile("dev", deadline=None)
settings.load_profile(default_profile())
