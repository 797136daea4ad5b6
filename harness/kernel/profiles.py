"""Hypothesis settings profiles: ``ci`` (one verdict per commit), ``dev`` and ``thorough``.

ci: derandomized (the seed derives from each property's identity), no deadline, a bounded number of examples,
and no example database but the committed one, read-only: the same commit (the database included) always gives
the same verdict. dev: random, keeps and replays an example database (``.hypothesis/``), so a failure found once
is tried first next time. thorough: as dev, ten times the examples.

The committed example database (``examples``: a directory, e.g. the gate configuration's ``examples`` key, or a
``redis://`` URL, which needs ``pip install "hypothesis[redis]"``) is replayed before the search: by ``ci``
read-only (``ReadOnlyDatabase``), by ``dev`` and ``thorough`` beside their local one (``MultiplexedDatabase``);
with ``save`` (``lossguard explore``, ``--save-examples``) it is written, so what a random search found becomes a
regression check of every later ``ci`` run. Hypothesis 6.170 refuses ``settings(derandomize=True, database=...)``
("derandomize=True implies database=None": a writable database would make two derandomized runs of one commit
differ), but its engine does not consult ``derandomize`` at all: the reuse phase replays whatever ``database`` the
settings carry, then the generate phase draws from the derandomized seed (``core.get_random_for_wrapped_test``,
``engine.ConjectureRunner.reuse_existing_test_cases``). A read-only database removes the reason for the refusal (it
is part of the commit), so ``ci`` sets it on a child of the derandomized settings, which the constructor accepts
(the check reads only the arguments passed); ``tests/test_gate.py`` proves both the replay and the determinism.
A replayed example that still fails ends the run with it (Hypothesis does not shrink an exact saved example
again), one that passes is a normal example of the budget.

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

from hypothesis import HealthCheck, Phase, Verbosity, settings
from hypothesis.database import (
    DirectoryBasedExampleDatabase,
    ExampleDatabase,
    MultiplexedDatabase,
    ReadOnlyDatabase,
)
from hypothesis.internal.conjecture import providers

PROFILES = ("ci", "dev", "thorough")
_EXAMPLES = {"ci": 12, "dev": 25, "thorough": 250}
LOCAL_DATABASE = ".hypothesis/lossguard"  # dev and thorough's own, in the working directory


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


def example_database(location: str, writable: bool = False) -> ExampleDatabase:
    """The example database at ``location``: a directory, or a ``redis://``/``rediss://`` URL (Hypothesis' Redis
    backend, ``pip install "hypothesis[redis]"``: workers on several machines share what each found);
    read-only unless ``writable``."""
    if location.startswith(("redis://", "rediss://")):
        try:
            import redis
            from hypothesis.extra.redis import RedisExampleDatabase
        except ImportError as problem:
            raise ValueError(f"example database {location!r} needs: pip install 'hypothesis[redis]'") from problem
        database: ExampleDatabase = RedisExampleDatabase(redis.Redis.from_url(location))
    else:
        database = DirectoryBasedExampleDatabase(location)
    return database if writable else ReadOnlyDatabase(database)


def settings_for(
    profile: str,
    examples_factor: float = 1.0,
    examples: str | None = None,
    save: bool = False,
    max_examples: int | None = None,
) -> settings:
    """The Hypothesis settings of ``profile``; ``examples_factor`` scales its example budget (``max_examples``, or
    the profile's). ``examples``: the committed example database (module docstring), replayed first; ``save``:
    written as well."""
    if profile not in PROFILES:
        raise ValueError(f"unknown profile {profile!r}; choose one of {', '.join(PROFILES)}")
    seed_only_generation()
    common = {
        "max_examples": max(1, round((max_examples or _EXAMPLES[profile]) * examples_factor)),
        "deadline": None,
        "print_blob": True,  # the failing example's choice sequence, attached to the exception (--replay)
        "verbosity": Verbosity.quiet,  # Hypothesis' own lines ("Draw 1: ...", "@seed(...)") never reach the user
        "report_multiple_bugs": False,
        # a wall-clock health check makes the verdict depend on the machine's load (a loaded CI runner turned two
        # passing cells into 'error'): lossguard's time limits are its own (isolation's per-call watchdog)
        "suppress_health_check": [HealthCheck.too_slow],
        "phases": [Phase.explicit, Phase.reuse, Phase.generate, Phase.target, Phase.shrink],
    }
    committed = example_database(examples, writable=save) if examples else None
    if profile == "ci":
        derandomized = settings(derandomize=True, database=None, **common)
        return derandomized if committed is None else settings(derandomized, database=committed)
    local: ExampleDatabase = DirectoryBasedExampleDatabase(LOCAL_DATABASE)
    return settings(database=local if committed is None else MultiplexedDatabase(local, committed), **common)
