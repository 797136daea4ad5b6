"""A gate that scales out: ``--shard I/N`` splits a check deterministically and by cost, its shards together are the
full run, and the ``ci`` profile gives the same results run twice, serially or on two workers (issue 11's proof)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from lossguard.harness.app import shards
from lossguard.harness.app.cli import main

# a small selection with recorded findings (xfail) beside passes: torch's and lossguard's regression losses
SMALL = [
    "check",
    "--impl",
    "builtin",
    "--family",
    "regression",
    "--dtype",
    "float64",
    "--property",
    "agreement",
    "--property",
    "invalid_input",
    "--device",
    "cpu",
    "--profile",
    "ci",
]
JUDGED = ("status", "message", "examples", "comparisons", "counterexample", "replay", "convention", "severity")


def _check(tmp_path: Path, name: str, *extra: str) -> list[dict]:
    """The results of the small check with ``extra`` options (its JSON report, ``name`` in ``tmp_path``)."""
    report = tmp_path / f"{name}.json"
    assert main([*SMALL, *extra, "--json", str(report)]) in (0, 1)
    return json.loads(report.read_text())["results"]


def _judged(results: list[dict]) -> dict[tuple, tuple]:
    """Each result's verdict and numbers, by identity: everything but the timings."""
    return {(r["implementation"], r["property"], r["device"], r["dtype"]): tuple(r[k] for k in JUDGED) for r in results}


@pytest.fixture(scope="module")
def full(tmp_path_factory) -> list[dict]:
    return _check(tmp_path_factory.mktemp("full"), "full", "--jobs", "1")


def test_the_same_check_twice_gives_the_same_results(full, tmp_path):
    again = _check(tmp_path, "again", "--jobs", "1")
    assert [_judged([r]) for r in again] == [_judged([r]) for r in full]  # the same, in the same order
    assert {r["status"] for r in full} >= {"pass", "xfail"}


def test_two_workers_give_the_serial_verdicts(full, tmp_path):
    assert _judged(_check(tmp_path, "jobs2", "--jobs", "2")) == _judged(full)


def test_the_shards_together_are_the_full_run(full, tmp_path, capsys):
    first = _check(tmp_path, "first", "--jobs", "1", "--shard", "1/2")
    second = _check(tmp_path, "second", "--jobs", "1", "--shard", "2/2")
    assert re.search(r"shard\s*: 1/2: \d+ of \d+ implementations", capsys.readouterr().out)
    assert first and second
    assert not {r["implementation"] for r in first} & {r["implementation"] for r in second}
    assert len(first) + len(second) == len(full)
    assert {**_judged(first), **_judged(second)} == _judged(full)


def test_shards_balance_by_the_previous_runs_durations(full, tmp_path):
    """With --durations the split follows the measured seconds: each shard holds the same implementations as
    ``shards.shard`` gives for those costs, and together they are still the full run."""
    previous = tmp_path / "previous.json"
    previous.write_text(json.dumps({"results": full}))
    measured = shards.measured(previous)
    names = list(dict.fromkeys(r["implementation"] for r in full))
    costs = [sum(s for (impl, *_), s in measured.items() if impl == name) for name in names]
    seen = []
    for index in (1, 2):
        options = ["--jobs", "1", "--shard", f"{index}/2", "--durations", str(previous)]
        results = _check(tmp_path, f"timed{index}", *options)
        assert list(dict.fromkeys(r["implementation"] for r in results)) == shards.shard(names, index, 2, costs)
        seen += results
    assert _judged(seen) == _judged(full)


def test_longest_processing_time_assignment():
    # most expensive first, each to the least loaded shard: 5 | 4, then 3 to the second (4), 3 to the first (5)...
    assert shards.assign([5, 4, 3, 3, 3], 2) == [0, 1, 1, 0, 1]
    items = list("abcdefg")
    costs = [3.0, 1.0, 4.0, 1.0, 5.0, 9.0, 2.0]
    parts = [shards.shard(items, i, 3, costs) for i in (1, 2, 3)]
    assert sorted(x for part in parts for x in part) == items  # each item in exactly one shard
    loads = [sum(costs[items.index(x)] for x in part) for part in parts]
    assert max(loads) <= 4 / 3 * 9  # Graham's bound; the optimum is 9 (the largest item)
    assert parts == [shards.shard(items, i, 3, costs) for i in (1, 2, 3)]  # deterministic
    # ties keep the given order and go to the lowest shard first
    assert shards.assign([1, 1, 1, 1], 2) == [0, 1, 0, 1]
    assert shards.longest_first([2, 5, 2, 7]) == [3, 1, 0, 2]


def test_costs_are_measured_seconds_or_planned_cells():
    cells = {"a": [("a", "p", "cpu", "float64"), ("a", "q", "cpu", "float64")], "b": [("b", "p", "cpu", "float64")]}
    assert shards.costs_of(["a", "b"], cells.__getitem__) == [2.0, 1.0]
    durations = {("a", "p", "cpu", "float64"): 1.0, ("b", "p", "cpu", "float64"): 3.0}
    # a cell the previous run did not have costs the mean measured cell (2.0)
    assert shards.costs_of(["a", "b"], cells.__getitem__, durations) == [3.0, 3.0]


@pytest.mark.parametrize(
    ("shard", "says"),
    [("2", "must be I/N"), ("0/2", "between 1 and N"), ("3/2", "between 1 and N"), ("1/99", "use at most")],
)
def test_a_bad_shard_exits_2_with_one_line(shard, says, capsys):
    assert main([*SMALL, "--shard", shard]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("lossguard: error: --shard") and says in err and "\n" not in err


def test_durations_must_be_a_results_report(tmp_path, capsys):
    (tmp_path / "bad.json").write_text("{}")
    assert main([*SMALL, "--shard", "1/2", "--durations", str(tmp_path / "bad.json")]) == 2
    assert "not a lossguard-results JSON report" in capsys.readouterr().err
