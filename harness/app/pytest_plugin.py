"""lossguard's pytest plugin (the ``pytest11`` entry point): the project's configured losses as test items.

``pytest --lossguard`` (or ``pytest = true`` in the project's ``[tool.lossguard]``: ``lossguard.harness.app.config``)
collects one item per (loss, property, dtype, device) of the configuration, with the id of
``lossguard.reports.junit.item_id`` (``huber[agreement-float32-cpu]``), under a collector node for the configuration
file; ``-k``, ``-m lossguard``, ``--junitxml`` and pytest-xdist work on them as on any test. Outcomes are the CLI's
(``lossguard.reports.junit.outcome``): pass passes; fail fails and error errors at or above the configured
``fail-on`` (below it they pass with a ``BelowGate`` warning); skip skips with its reason; a recorded finding is
xfail with its reason; an xpass fails (strict). A failure shows the message, the minimal counterexample and the
command that reproduces it, never a traceback of the plugin.

Collection never imports a user's target: items are planned from the configuration and the catalog alone
(``planned``; a library or a Python binding file, whose bindings are code, is planned by the isolated worker). The
judged code runs only in the isolated worker (``lossguard.harness.app.isolation.run_isolated``), once per loss per
process, when the loss's first item runs; every item of the loss then reports its own result. Under pytest-xdist the
items of one loss stay on one worker (``lossguard.harness.app.pytest_xdist``), so no loss is run twice.

This module is imported by every pytest run of every project with lossguard installed: at import it needs only
pytest, and nothing of lossguard is imported unless the plugin is enabled.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

# (implementation, property, device, dtype): one item, one result
Key = tuple[str, str, str, str]


class BelowGate(UserWarning):
    """A failure below the configured ``fail-on`` level: reported, and the item passes."""


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("lossguard", "lossguard: the project's losses as test items")
    group.addoption(
        "--lossguard",
        action="store_true",
        help="collect the losses of the project's lossguard configuration as test items "
        "(also on with 'pytest = true' in [tool.lossguard])",
    )
    group.addoption(
        "--lossguard-config",
        metavar="FILE",
        help="the lossguard configuration (default: the nearest pyproject.toml with [tool.lossguard], "
        "or lossguard.toml, upward from the rootdir)",
    )


def pytest_configure(config: pytest.Config) -> None:
    """Enable the plugin when asked: load the configuration (an error in it is a usage error of the session)."""
    given = config.getoption("lossguard_config")
    enabled = config.getoption("lossguard")
    if not given and not enabled and not _may_enable(config.rootpath):
        return  # the cheap path of every other project's pytest run
    from lossguard.harness.app import config as gate_config

    path = Path(given).resolve() if given else gate_config.find(config.rootpath)
    if path is None:
        if enabled:
            raise pytest.UsageError(
                f"--lossguard: no lossguard configuration found upward from {config.rootpath} "
                "(add [tool.lossguard] to pyproject.toml, or give --lossguard-config FILE)"
            )
        return
    try:
        loaded = gate_config.load(path)
    except gate_config.ConfigError as problem:
        raise pytest.UsageError(f"lossguard: {problem}") from problem
    if not (enabled or loaded.pytest):
        return
    config.stash[_GATE] = Gate.of(path, loaded)
    config.addinivalue_line("markers", "lossguard: an item of a loss of the project's lossguard configuration")


def _may_enable(rootpath: Path) -> bool:
    """Whether a configuration could enable the plugin without ``--lossguard``: a ``lossguard.toml``, or a
    ``pyproject.toml`` that mentions ``tool.lossguard``, in the rootdir or above it (read as text: cheap)."""
    for folder in (rootpath, *rootpath.parents):
        if (folder / "lossguard.toml").is_file():
            return True
        project = folder / "pyproject.toml"
        if project.is_file() and "tool.lossguard" in project.read_text(encoding="utf-8", errors="replace"):
            return True
    return False


@dataclass
class LossRun:
    """One configured loss: its audit job, its planned items, and its results once run (once per process)."""

    name: str
    job: dict[str, Any]
    time_limit: float
    root: Path  # the configuration's folder, where its ``package.module`` targets are found too
    keys: list[Key] = field(default_factory=list)
    skips: list[Any] = field(default_factory=list)  # the skip results of the configured skips, with their reasons
    problem: str = ""  # why the loss could not be planned: each of its items fails with it
    selected: set[Key] = field(default_factory=set)
    results: dict[Key, Any] | None = None

    def result(self, key: Key) -> Any:
        """The result of ``key``: the loss's job is run (narrowed to the selected items) on the first call."""
        if self.results is None:
            self.results = self._run()
        return self.results.get(key) or _error(key, f"the run of {self.name} returned no result for this item")

    def plan(self) -> None:
        """Plan the loss's items (``keys``): its runs, then its configured skips."""
        try:
            with _importable_from(self.root):
                self.keys = planned(self.job, self.time_limit)
        except Exception as problem:  # a binding file gone, a library's plan that failed: its one item fails
            self.problem = f"the loss could not be planned: {type(problem).__name__}: {problem}"
            self.keys = [(self.name, _every(), "cpu", "all")]
        self.keys += [_key(r) for r in self.skips]

    def _run(self) -> dict[Key, Any]:
        from lossguard.harness.app.isolation import IsolatedTargetError, run_isolated

        skipped = {_key(r): r for r in self.skips}
        if self.problem:
            return {key: skipped.get(key) or _error(key, self.problem) for key in self.keys}
        wanted = (self.selected or set(self.keys)) - set(skipped)
        if not wanted:
            return skipped
        try:
            with _importable_from(self.root):
                _, results = run_isolated(_narrowed(self.job, wanted), self.time_limit)
        except IsolatedTargetError as problem:
            return {key: skipped.get(key) or _error(key, str(problem)) for key in self.keys}
        return {**{_key(r): r for r in results}, **skipped}


def _importable_from(root: Path) -> Any:
    """The isolated workers find ``package.module`` targets from the configuration's folder, as ``check`` does."""
    from lossguard.harness.app.gate import _importable_from as importable

    return importable(root)


def _key(result: Any) -> Key:
    return (result.implementation, result.property, result.device, result.dtype)


def _narrowed(job: dict[str, Any], keys: set[Key]) -> dict[str, Any]:
    """``job`` restricted to the properties, dtypes and devices of ``keys`` (a ``-k`` selection runs no more)."""
    properties = {k[1] for k in keys}
    devices = {k[2] for k in keys}
    dtypes = {k[3] for k in keys}
    return {
        **job,
        "properties": sorted(properties),
        "devices": [d for d in job["devices"] if d in devices],
        "dtypes": [d for d in job["dtypes"] if d in dtypes],
    }


def _error(key: Key, message: str) -> Any:
    from lossguard.harness.kernel.model import PropertyResult

    implementation, prop, device, dtype = key
    return PropertyResult(implementation, implementation, "user", device, dtype, prop, "error", message)


@dataclass
class Gate:
    """The enabled plugin's state: the configuration file, its losses, the gate's level."""

    path: Path
    fail_on: str
    runs: list[LossRun]

    @classmethod
    def of(cls, path: Path, loaded: Any) -> Gate:
        """The gate of configuration ``loaded``, read from ``path``, in its profile (else the default one)."""
        from lossguard.harness.kernel.profiles import default_profile

        profile = loaded.profile or default_profile()
        runs = [
            LossRun(
                entry.name, loaded.job(entry, profile), loaded.time_limit, loaded.root, skips=loaded.skip_results(entry)
            )
            for entry in loaded.entries
        ]
        return cls(path, loaded.fail_on, runs)

    def prefix(self, rootpath: Path) -> str:
        """The node id prefix of the configuration's items (``pyproject.toml::``)."""
        try:
            return f"{self.path.relative_to(rootpath).as_posix()}::"
        except ValueError:
            return f"{self.path.as_posix()}::"


_GATE = pytest.StashKey[Gate]()


def planned(job: dict[str, Any], time_limit: float) -> list[Key]:
    """The (implementation, property, device, dtype) runs of ``job``, in report order, without importing any
    target: a binding is data (its entry, or the free entry of a loss outside the catalog, and its framework are
    all the plan needs). A job with a library or a Python binding file is planned by the isolated worker."""
    from lossguard.harness.app import bindings as B
    from lossguard.harness.app.jobs import selection_from
    from lossguard.harness.app.runner import plan
    from lossguard.harness.kernel.model import Implementation

    data: list[Any] = []
    for source in job["bindings"]:
        if "library" in source or str(source.get("file", "")).endswith(".py"):
            return _planned_by_worker(job, time_limit)
        if "file" in source:
            _, found = B.read_file(source["file"])
            data += [b for b in found if source.get("name") in (None, b.label)]
        else:
            data.append(B.binding_from_fields(source["inline"]))
    catalog = dict(B.CATALOG)
    impls = []
    for binding in data:
        spec = catalog[binding.loss] if binding.loss is not None else B.free_entry(binding)
        catalog.setdefault(spec.name, spec)
        impls.append(Implementation(binding.label, spec.name, "user", None, frozenset(), framework=binding.framework))
    return [(impl.name, prop, device, dtype) for impl, prop, device, dtype in plan(impls, selection_from(job), catalog)]


def _planned_by_worker(job: dict[str, Any], time_limit: float) -> list[Key]:
    """The plan the isolated worker announces (its first event), the worker then stopped: the known results (a
    library not installed, ...) and the runs. The plan comes after the worker's imports, which get
    ``isolation.START_LIMIT`` whatever the per-call ``time_limit`` (as in ``run_isolated``)."""
    import os
    import signal

    from lossguard.harness.app.isolation import START_LIMIT, IsolatedTargetError, _events, start_worker

    process = start_worker({**job, "skip": 0})
    wait = max(time_limit, START_LIMIT)
    try:
        for event in _events(process, wait):  # ends at a timeout, or when the worker's stream ends
            if event["event"] == "target_error":
                raise IsolatedTargetError(event["message"])
            if event["event"] == "plan":
                known = [(r["implementation"], r["property"], r["device"], r["dtype"]) for r in event["known"]]
                return known + [(base["implementation"], p, d, t) for p, d, t, base in event["runs"]]
        raise IsolatedTargetError(f"the isolated worker announced no plan within {wait:g} s")
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
        process.wait()


class ConfigFile(pytest.File):
    """The lossguard configuration file: its items are the configured losses' (loss, property, dtype, device)."""

    def collect(self):
        from lossguard.reports.junit import item_id

        for run in self.config.stash[_GATE].runs:
            run.plan()
            for key in run.keys:
                implementation, prop, device, dtype = key
                yield LossItem.from_parent(self, name=item_id(implementation, prop, dtype, device), run=run, key=key)


def _every() -> str:
    from lossguard.harness.kernel.model import EVERY_PROPERTY

    return EVERY_PROPERTY


class LossItem(pytest.Item):
    """One (loss, property, dtype, device) of the configuration; its verdict is its result's."""

    def __init__(self, *, run: LossRun, key: Key, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.run, self.key = run, key
        self.add_marker(pytest.mark.lossguard)

    def setup(self) -> None:
        """An ``error`` result (nothing judged: the loss crashed, hung or could not be run) errors the item, as
        the CLI's JUnit reports it; runs the loss if this is its first item in this process."""
        result = self.run.result(self.key)
        if result.status == "error" and _fails(result, self.config.stash[_GATE].fail_on):
            pytest.fail(_text(result), pytrace=False)

    def runtest(self) -> None:
        judge(self.run.result(self.key), self.config.stash[_GATE].fail_on)

    def reportinfo(self) -> tuple[Path, int | None, str]:
        return self.path, None, f"lossguard: {self.name}"


def judge(result: Any, fail_on: str) -> None:
    """The pytest outcome of ``result`` (``lossguard.reports.junit.outcome``): return (passed; a failure below
    ``fail_on`` with a ``BelowGate`` warning), skip, xfail, or fail with the failure's text and no traceback."""
    if result.status == "skip":
        pytest.skip(result.message)
    if result.status == "xfail":
        pytest.xfail(result.message)
    if result.status == "pass":
        return
    if _fails(result, fail_on):
        pytest.fail(_text(result), pytrace=False)
    warnings.warn(BelowGate(f"below the gate (fail-on {fail_on}), not failing the run: {_text(result)}"), stacklevel=1)


def _fails(result: Any, fail_on: str) -> bool:
    from lossguard.harness.kernel.severity import fails_gate

    return fails_gate(result, fail_on)


def _text(result: Any) -> str:
    from lossguard.reports.junit import failure_text

    return f"{'[XPASS(strict)] ' if result.status == 'xpass' else ''}{failure_text(result)}"


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(session: pytest.Session, config: pytest.Config, items: list[pytest.Item]) -> None:
    """Add the configuration's items (before ``-k``/``-m`` deselect)."""
    if _GATE in config.stash and not any(isinstance(i, LossItem) for i in items):
        node = ConfigFile.from_parent(session, path=config.stash[_GATE].path)
        collected = list(node.collect())
        # reported as any collector's, so the "collected N items" line and xdist count them
        session.ihook.pytest_collectreport(report=pytest.CollectReport(node.nodeid, "passed", None, collected))
        items.extend(collected)


@pytest.hookimpl(trylast=True)
def pytest_collection_finish(session: pytest.Session) -> None:
    """Each loss runs only the items selected (``-k``, ``-m``, ``--deselect``)."""
    for item in session.items:
        if isinstance(item, LossItem):
            item.run.selected.add(item.key)


@pytest.hookimpl(optionalhook=True)
def pytest_xdist_make_scheduler(config: pytest.Config, log: Any) -> Any:
    """Under pytest-xdist's default ``load`` (or ``loadgroup``): one loss's items on one worker."""
    if _GATE not in config.stash or config.getvalue("dist") not in ("load", "loadgroup"):
        return None
    from lossguard.harness.app.pytest_xdist import LossScheduling

    return LossScheduling(config, log, config.stash[_GATE].prefix(config.rootpath))
