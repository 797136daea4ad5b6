"""The runner: every (implementation, property, device, dtype) the catalog tags, run under Hypothesis.

Each run yields one PropertyResult. A property failure found by Hypothesis is shrunk to a
minimal counterexample; the report gives it with one command that reproduces it. Recorded
findings (on the implementation) and failures by definition (on the catalog entry) scope a run, they do
not blind it: the finding's witness must still fail inside the finding's domain (else ``xpass``), and the
search runs as for any other run with that domain discarded (a failure outside it is a plain ``fail``);
then the run is ``xfail``.
"""

from __future__ import annotations

import dataclasses
import os
import re
import shlex
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures import as_completed as _as_completed
from dataclasses import dataclass

import hypothesis
from hypothesis import HealthCheck, given, reject, reproduce_failure, settings
from hypothesis import strategies as st
from hypothesis.errors import FailedHealthCheck, Flaky, HypothesisException, Unsatisfiable

import lossguard.properties.all  # noqa: F401  (registers every property)
from lossguard.catalog import CATALOG
from lossguard.harness.app import diagnosis, shards
from lossguard.harness.kernel import severity
from lossguard.harness.kernel.failures import Failure, ImplementationRaised, PropertyCrashed, PropertyFailure
from lossguard.harness.kernel.frameworks import binding as framework_binding
from lossguard.harness.kernel.model import EVERY_PROPERTY, Finding, Implementation, LossSpec, PropertyResult
from lossguard.harness.kernel.profiles import settings_for
from lossguard.harness.kernel.subject import Subject
from lossguard.properties.base import PROPERTIES, Property

_UNSUPPORTED_DTYPE = re.compile(r"not implemented for '(Half|BFloat16)'|unsupported (dtype|scalar type)", re.I)
_NOT_SUPPORTED = "not supported by the implementation"  # the skip of a dtype the implementation does not support


@dataclass(frozen=True)
class Selection:
    """What to run: dtypes, devices, property names (None: all), the profile, and the command
    (words) that selected it, from which each failure's reproduction command is built."""

    dtypes: Sequence[str] = ("float64", "float32", "float16", "bfloat16")
    devices: Sequence[str] = ("cpu", "cuda")
    properties: Sequence[str] | None = None
    profile: str = "ci"
    base_command: tuple[str, ...] = ()
    replay: str | None = None  # a failing example's Hypothesis choice sequence (``--replay``): replayed first
    # implementation name -> the ``--library`` value of the library it belongs to: an audit of several libraries
    # (``--library all``) is reproduced with that one library, as ``--binding-name`` selects in one library
    libraries: Mapping[str, str] = dataclasses.field(default_factory=dict)
    # the example database (a directory or a redis:// URL; profiles.settings_for): replayed read-only by ci, kept
    # beside the local one by dev and thorough; ``save_examples``: written (``lossguard explore``)
    examples: str | None = None
    save_examples: bool = False
    max_examples: int | None = None  # the search's budget per property (None: the profile's; ``explore``)

    def reproduce(self, impl: Implementation, prop: str, dtype: str, device: str, replay: str = "") -> str:
        """The one command that reproduces a run. ``replay``: the failing example's choice sequence, which the
        command replays whatever the profile (it needs no local example database); without it, the same profile
        (ci replays the same derandomized search)."""
        if not self.base_command:
            return ""
        base = list(self.base_command)
        if impl.name in self.libraries and "--library" in base:
            at = base.index("--library")
            base = [w for i, w in enumerate(base) if not (w == "--library" or (i and base[i - 1] == "--library"))]
            base[at:at] = ["--library", self.libraries[impl.name]]
        builtin = impl.kind in ("torch", "own")
        loss = ["--loss", impl.loss] if builtin and "--loss" not in base else []
        many = "--library" in base or "--binding" in base or impl.kind == "third-party"
        selected = ["--binding-name", impl.name] if many and not builtin else []
        words = [*base, *loss, *selected, "--property", prop, "--dtype", dtype, "--device", device]
        return shlex.join([*words, "--profile", self.profile, *(["--replay", replay] if replay else [])])


def _dtypes_of(prop: Property, selected: Sequence[str]) -> list[str]:
    return [d for d in selected if d in prop.dtypes]


def _lookup(catalog: Mapping[str, LossSpec]) -> Callable[[str], LossSpec]:
    """The entry named ``name`` in ``catalog`` (what a Subject resolves related entries with)."""

    def spec(name: str) -> LossSpec:
        try:
            return catalog[name]
        except KeyError:
            raise KeyError(f"unknown loss {name!r}; known: {', '.join(catalog)}") from None

    return spec


def _restriction_problem(spec, impl: Implementation, restriction) -> str | None:
    for name, value in restriction.items():
        if name in impl.fixed and impl.fixed[name] != value:
            return f"holds only with {name}={value!r}, and this implementation computes with {impl.fixed[name]!r}"
        if name not in impl.accepted and name not in impl.fixed and spec.params.get(name) != value:
            return f"holds only with {name}={value!r}, which this implementation does not accept"
    return None


def plan(
    impls: Iterable[Implementation], selection: Selection, catalog: Mapping[str, LossSpec] | None = None
) -> list[tuple[Implementation, str, str, str]]:
    """The (implementation, property, device, dtype) runs, in report order. ``catalog``: the entries by name
    (default: lossguard's CATALOG; a caller may pass it extended with entries of its own)."""
    catalog = CATALOG if catalog is None else catalog
    runs = []
    for impl in impls:
        spec = catalog[impl.loss]
        names = [n for n in spec.properties if selection.properties is None or n in selection.properties]
        for device in selection.devices:
            if framework_binding(impl.framework).devices().get(device):
                runs.append((impl, EVERY_PROPERTY, device, "all"))  # one skip, with the reason
                continue
            for name in names:
                prop = PROPERTIES[name]
                if prop.cuda_only and device != "cuda":
                    continue
                runs.extend((impl, name, device, dtype) for dtype in _dtypes_of(prop, selection.dtypes))
    return runs


def _hypothesis_run(
    prop: Property, subject: Subject, selection: Selection, key: str, replay: str | None = None
) -> None:
    def check(data):
        subject.begin_example()
        try:
            prop.check(subject, data)
        except Failure as failure:
            if subject.covered(failure.status, str(failure)):
                reject()  # inside a recorded finding's domain: discarded, never judged
            raise
        except HypothesisException:
            raise  # reject(), assume(): Hypothesis' own control flow
        except Exception as crash:  # the property's own code: an error that says so, never a dead run
            raise PropertyCrashed(prop.name, crash) from crash
        subject.end_example()

    check._hypothesis_internal_add_digest = key.encode()  # a distinct seed per run
    chosen = settings_for(
        selection.profile, prop.examples, selection.examples, selection.save_examples, selection.max_examples
    )
    # a finding's domain may hold most of what the strategy draws, and a binding's supported domain may hold none of
    # what a property builds (zero-area boxes for a loss that supports proper boxes only), nor a fixed value what it
    # asks for (reduction='sum' of a loss that computes 'none' only): the rest is still judged, and a property left
    # with no example is a skip (Unsatisfiable), never a health-check error
    if subject.excluded or subject.impl.domain or subject.impl.fixed:
        chosen = settings(chosen, suppress_health_check=[*chosen.suppress_health_check, HealthCheck.filter_too_much])
    test = given(st.data())(chosen(check))
    # the example database's key is the run's key alone (Hypothesis' default digests this function's source too):
    # saved examples replay on every machine and checkout, and across lossguard versions that edit ``check``
    test._hypothesis_internal_database_key = f"lossguard/{key}".encode()
    if replay:  # the exact failing example, whatever the profile's database and seed
        test = reproduce_failure(hypothesis.__version__, replay.encode())(test)
    test()


_BLOB = re.compile(r"@reproduce_failure\('[^']*', b'([^']*)'\)")


def _replay_blob(failure: BaseException) -> str:
    """The failing example's choice sequence Hypothesis attached to ``failure`` (``print_blob``, base64); ''."""
    for note in getattr(failure, "__notes__", ()):
        found = _BLOB.search(note)
        if found:
            return found.group(1)
    return ""


def run_one(
    impl: Implementation,
    name: str,
    device: str,
    dtype: str,
    selection: Selection,
    catalog: Mapping[str, LossSpec] | None = None,
) -> PropertyResult:
    """Run one property on one implementation, device and dtype; never raises for the judged code's sake.
    ``catalog``: the entries by name, the implementation's and those its identities relate it to (default:
    lossguard's CATALOG)."""
    catalog = CATALOG if catalog is None else catalog
    spec = catalog[impl.loss]
    result = PropertyResult(
        loss=impl.loss,
        implementation=impl.name,
        kind=impl.kind,
        device=device,
        dtype=dtype,
        property=name,
        status="pass",
        parameters=tuple(sorted(impl.accepted & {*spec.params, *spec.variants})),
    )
    unusable = framework_binding(impl.framework).devices().get(device)
    problem = unusable or _restriction_problem(spec, impl, spec.properties[name])
    if problem:
        result.status, result.message = "skip", problem
        return result
    prop = PROPERTIES[name]
    missing = [fact for fact in prop.needs if not spec.states(fact)]
    if missing:
        result.status = "error"
        result.message = (
            f"catalog entry {spec.name!r} tags {name!r} but states no {missing[0]}, which the property reads "
            "(a problem of the catalog, not a verdict on the implementation)"
        )
        return result
    findings = _findings(impl, spec, name, dtype, device)

    def subject(witness=None, excluded=(), only_case=None) -> Subject:
        return Subject(
            spec,
            impl,
            dtype,
            device,
            restriction=dict(spec.properties[name]),
            witness=witness,
            excluded=tuple(excluded),
            only_case=only_case,
            domain=spec.domains.get(name),
            related=_lookup(catalog),
        )

    key = f"{impl.name}|{name}|{device}|{dtype}"
    started = time.perf_counter()
    if findings:
        _judge_with_findings(result, prop, findings, subject, selection, key)
    else:
        _execute(result, prop, subject(), selection, key, selection.replay)
    result.duration_s = time.perf_counter() - started
    if result.status in ("fail", "error"):
        result.reproduce = selection.reproduce(impl, name, dtype, device, result.replay)
    # "" but for a diagnosed failure; a recorded finding is diagnosed on every example, its domain included
    result.convention = diagnosis.diagnose(result, subject(excluded=() if result.status == "xfail" else findings))
    result.severity = severity.classify(result)
    return result


def _findings(impl: Implementation, spec: LossSpec, name: str, dtype: str, device: str) -> tuple[Finding, ...]:
    """The cell's recorded findings: the implementation's and the entry's failures by definition."""
    by_definition = tuple(f for f in spec.by_definition if f.matches(name, dtype, device))
    return (*impl.findings_for(name, dtype, device), *by_definition)


def _execute(
    result: PropertyResult, prop: Property, subject: Subject, selection: Selection, key: str, replay: str | None = None
) -> Subject:
    """One Hypothesis run of ``prop`` on ``subject``; its verdict, counterexample and observations into ``result``."""
    dtype = subject.dtype
    try:
        _hypothesis_run(prop, subject, selection, key, replay)
    except Failure as failure:
        result.status, result.message = failure.status, str(failure)
        result.replay = _replay_blob(failure)
        result.counterexample = subject.observations.last_example
        result.example = subject.failed_example
        result.check = _failed_check(prop, failure)
        if isinstance(failure, PropertyFailure):
            result.actual, result.expected, result.scale = failure.actual, failure.expected, failure.scale
        if isinstance(failure, ImplementationRaised) and _UNSUPPORTED_DTYPE.search(str(failure)):
            result.status, result.message = "skip", f"{dtype} {_NOT_SUPPORTED}: {failure}"
    except Unsatisfiable:
        result.status = "skip"
        needed = subject.observations.unmet or "parameters or inputs this implementation does not take"
        result.message = f"no example in the property's domain: it needs {needed}"
    except (FailedHealthCheck, Flaky, HypothesisException) as problem:
        result.status = "error"
        result.message = f"harness problem, not a verdict on the implementation: {type(problem).__name__}: {problem}"
    result.examples += subject.observations.examples
    result.comparisons += subject.observations.comparisons
    result.worst_ulps = subject.observations.worst_ulps
    if result.status == "pass" and not subject.observations.comparisons:
        result.status, result.message = "skip", _no_comparison(subject)
    return subject


def _no_comparison(subject: Subject) -> str:
    """Why a run that raised nothing judged nothing: a pass needs at least one comparison made."""
    seen = subject.observations
    if seen.unjudged:
        why = f"{seen.unjudged}, in every one of the {seen.examples} calls"
    elif seen.examples:
        why = f"the property called the implementation {seen.examples} times but judged none of the results"
    else:
        why = "the property never called the implementation"
    return f"no comparison made: {why}"


# what a judged run hands on to the cell's result: its verdict, and the numbers and example of its failure
_NUMBERS = ("counterexample", "example", "actual", "expected", "scale")
_VERDICT = ("status", "message", "check", *_NUMBERS)


def _recorded(finding: Finding) -> str:
    where = "by definition" if finding.upstream == "by definition" else f"recorded against {finding.upstream}"
    return f"{finding.reason} [{where}; domain: {finding.scope()}]"


def _dtype_unsupported(seen: PropertyResult) -> bool:
    """Whether ``seen`` is the skip of a dtype the implementation does not support (``_execute``): the whole cell
    is unsupported, whatever was recorded in it."""
    return seen.status == "skip" and seen.message.startswith(f"{seen.dtype} {_NOT_SUPPORTED}: ")


def _judge_with_findings(
    result: PropertyResult, prop: Property, findings: tuple[Finding, ...], subject, selection: Selection, key: str
) -> None:
    """(a) each finding's witness must still fail, with a failure inside that finding's domain (else ``xpass``);
    (b) the search runs as for any other run, examples inside the findings' domains discarded: a failure
    outside them is a plain ``fail``/``error`` with its counterexample. ``xfail`` when (a) reproduces and (b) passes.
    A witness the property does not judge (it needs what the witness is not, or judged none of its results) is no
    reproduction either: ``xpass``, never a skip of the cell, which would hide the finding and every other departure
    of the cell. Only a dtype the implementation does not support skips the cell (an absent device never gets here:
    ``run_one`` skips it first). A failure by definition is the entry's, not a record of this implementation (no
    record to update): where the property does not judge its witness on this implementation, it is set aside and
    the cell is the search's (a ``skip`` only when the search judges nothing either), the reason said."""
    observed = []
    unjudged = []  # failures by definition whose witness the property does not judge on this implementation
    for finding in findings:
        seen = dataclasses.replace(result, examples=0, comparisons=0)
        # without a witness the search itself, nothing discarded, must reach the departure
        witnessed = subject(witness=finding.witness, only_case=finding.case if finding.witness else None)
        ran = _execute(seen, prop, witnessed, selection, key)
        result.examples += seen.examples
        result.comparisons += seen.comparisons
        if _dtype_unsupported(seen):  # the implementation does not compute in this dtype: nothing to judge here
            result.status, result.message = seen.status, seen.message
            return
        if seen.status == "skip" and finding.upstream == "by definition":
            unjudged.append(f"{_recorded(finding)} is not judged on this implementation: {seen.message}")
            continue
        failed = seen.status in ("fail", "error")
        if failed and finding.covers(ran.failed_example, seen.dtype, seen.message, seen.status):
            observed.append((finding, seen))
            continue
        if seen.status == "error":  # raised where the finding names no exception: never turned into xfail
            for field in _VERDICT:
                setattr(result, field, getattr(seen, field))
            return
        result.status = "xpass"
        if seen.status == "pass":
            happened = "the witness passes"
        elif seen.status == "skip":
            happened = f"the witness is not judged: {seen.message}"
        else:
            happened = (
                f"the witness {seen.status}s outside the finding's domain: {seen.message} on {seen.counterexample}"
            )
        result.message = f"recorded finding no longer reproduces, update the record ({happened}): {_recorded(finding)}"
        result.counterexample = seen.counterexample
        return
    searched = dataclasses.replace(result)
    _execute(searched, prop, subject(excluded=findings), selection, key)
    result.examples = searched.examples
    result.comparisons = searched.comparisons
    result.worst_ulps = searched.worst_ulps
    if searched.status in ("fail", "error"):
        for field in _VERDICT:
            setattr(result, field, getattr(searched, field))
        scopes = "; ".join(f.scope() for f in findings)
        result.message = f"{result.message} [outside the recorded findings' domains: {scopes}]"
        return
    if not observed:  # every finding a failure by definition this implementation's witness does not show
        result.status = searched.status
        result.message = "; ".join(m for m in (searched.message, *unjudged) if m)
        return
    result.status = "xfail"
    result.message = "; ".join([*(f"{_recorded(f)}; observed: {seen.message}" for f, seen in observed), *unjudged])
    for field in _NUMBERS:  # the first finding's departure, as observed on its witness
        setattr(result, field, getattr(observed[0][1], field))


def _failed_check(prop: Property, failure: Failure) -> str:
    """The id of the sub-check ``failure`` broke: the one it names, or the property's only one."""
    if failure.check is not None:
        if failure.check not in prop.checks:
            raise ValueError(f"property {prop.name!r} failed check {failure.check!r}, which it does not declare")
        return failure.check
    return prop.checks[0] if len(prop.checks) == 1 else ""


Cell = tuple[str, str, str, str]  # (implementation, property, device, dtype): a result's identity


def cell(run: tuple[Implementation, str, str, str]) -> Cell:
    """A planned run's identity, as a result names it (``--durations`` reads the previous run's by it)."""
    impl, name, device, dtype = run
    return impl.name, name, device, dtype


def costs(
    impls: Sequence[Implementation],
    selection: Selection,
    durations: Mapping[Cell, float] | None = None,
    catalog: Mapping[str, LossSpec] | None = None,
) -> list[float]:
    """Each implementation's expected cost under ``selection``: its planned cells' ``durations`` (seconds of the
    previous run, ``shards.measured``), or the number of its planned cells (``shards.costs_of``)."""
    planned = {impl.name: [cell(r) for r in plan([impl], selection, catalog)] for impl in impls}
    return shards.costs_of(impls, lambda impl: planned[impl.name], durations)


def run(
    impls: Iterable[Implementation],
    selection: Selection,
    progress: Callable[[int, int, PropertyResult], None] | None = None,
    workers: int = 1,
    catalog: Mapping[str, LossSpec] | None = None,
    durations: Mapping[Cell, float] | None = None,
) -> list[PropertyResult]:
    """Run everything ``selection`` asks for; ``progress(done, total, result)`` after each run.

    With ``workers > 1`` built-in implementations (found again by name in each worker process)
    are spread over that many processes, the most expensive first (``costs``: by ``durations``, the previous
    run's seconds per cell, else by planned cells), so that the last to finish is a short one; results come back
    in plan order either way, and the same: each run is derandomized by its own identity, whichever worker takes
    it. ``catalog``: the entries by name (default: lossguard's CATALOG); a caller's own mapping runs in this
    process.
    """
    impls = list(impls)
    runs = plan(impls, selection, catalog)
    # a worker finds a shipped implementation again by name, with the catalog it is judged against
    builtin = catalog is None and all(i.kind in ("torch", "own", "third-party") for i in impls)
    if workers > 1 and len(impls) > 1 and (builtin or all(i.kind == "third-party" for i in impls)):
        order = shards.longest_first(costs(impls, selection, durations, catalog))
        return _run_parallel(impls, selection, progress, workers, runs, order)
    results = []
    for index, (impl, name, device, dtype) in enumerate(runs, start=1):
        results.append(run_one(impl, name, device, dtype, selection, catalog))
        if progress:
            progress(index, len(runs), results[-1])
    return results


def _run_builtin(kind: str, name: str, selection: Selection) -> list[PropertyResult]:
    """Worker side: find a shipped implementation by name and run its plan single-threaded."""
    import torch

    from lossguard.harness.app.inventory import find

    torch.set_num_threads(1)
    impl, catalog = find(kind, name)
    runs = plan([impl], selection, catalog)
    return [run_one(impl, n, device, dtype, selection, catalog) for impl, n, device, dtype in runs]


def _worker_died(impl: Implementation, runs: Sequence[tuple], problem: BaseException) -> list[PropertyResult]:
    """An error for every run of ``impl`` whose worker process died (the kernel's out-of-memory killer, a crash in
    native code, one the implementation caused or not): a verdict on nothing, never a crash of lossguard."""
    why = f"the worker process running this implementation died ({type(problem).__name__}): no verdict"
    return [
        PropertyResult(impl.loss, impl.name, impl.kind, device, dtype, name, "error", why)
        for owner, name, device, dtype in runs
        if owner is impl
    ]


def _run_parallel(
    impls, selection, progress, workers: int, runs: Sequence[tuple], order: Sequence[int]
) -> list[PropertyResult]:
    """``impls`` on a pool of ``workers`` processes, submitted in ``order`` (indices into ``impls``: a free worker
    takes the next task, so the most expensive go first); the results in ``impls``' order."""
    import multiprocessing
    from concurrent.futures.process import BrokenProcessPool

    from lossguard.harness.app.lifeline import die_with_parent

    done: dict[str, list[PropertyResult]] = {}
    count = 0
    spawn = multiprocessing.get_context("spawn")  # the workers die with lossguard (a CI timeout, Ctrl-C)
    with ProcessPoolExecutor(workers, mp_context=spawn, initializer=die_with_parent, initargs=(os.getpid(),)) as pool:
        futures = {pool.submit(_run_builtin, impls[k].kind, impls[k].name, selection): impls[k] for k in order}
        for future in _as_completed(futures):
            impl = futures[future]
            try:
                done[impl.name] = future.result()
            except BrokenProcessPool as problem:  # a dead worker breaks the pool: every pending run ends so
                done[impl.name] = _worker_died(impl, runs, problem)
            for result in done[impl.name]:
                count += 1
                if progress:
                    progress(count, len(runs), result)
    return [r for impl in impls for r in done[impl.name]]


def default_workers() -> int:
    """One worker per core (2 on the CI machine)."""
    return max(1, len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1)
