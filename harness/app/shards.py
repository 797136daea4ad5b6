"""Splitting a gate's work: shards of a run for a CI matrix, and the order a process pool takes it in.

``shard(items, index, count, costs)`` gives the ``index``-th of ``count`` shards (1-based, as ``--shard i/n``
writes it): every item lands in exactly one shard, the same items always land in the same shard, and the shards'
costs are balanced by greedy longest-processing-time assignment (Graham 1969, "Bounds on multiprocessing timing
anomalies": each item, most expensive first, goes to the shard with the least cost so far; at most 4/3 of the
optimal longest shard). Ties are broken stably: equal costs keep the items' order, equal loads take the lowest
shard. The items are anything with a cost (implementations, a configuration's losses): ``shard`` never looks
inside them, so ``check`` and ``check --config`` split by the same function.

The costs come from the previous run (``measured``: a ``lossguard-results`` JSON, whose results carry
``duration_s``), else from an estimate (``planned``: the number of planned (property, device, dtype) cells).
"""

from __future__ import annotations

import argparse
import heapq
import json
import re
from collections.abc import Callable, Hashable, Mapping, Sequence
from pathlib import Path
from typing import Any, TypeVar

Item = TypeVar("Item")

_SPEC = re.compile(r"^\s*(\d+)\s*/\s*(\d+)\s*$")


class ShardError(ValueError):
    """A malformed ``--shard`` or ``--durations`` value (the CLI reports it as a usage error)."""


def parse(text: str) -> tuple[int, int]:
    """``"i/n"`` as (i, n), with 1 <= i <= n; ShardError otherwise."""
    found = _SPEC.match(text)
    if not found:
        raise ShardError(f"--shard {text!r} must be I/N, e.g. 1/4 (the first of four shards)")
    index, count = int(found.group(1)), int(found.group(2))
    if not 1 <= index <= count:
        raise ShardError(f"--shard {text!r}: I must be between 1 and N")
    return index, count


def assign(costs: Sequence[float], count: int) -> list[int]:
    """The shard (0-based) of each of ``costs``' items: greedy longest-processing-time, stable ties."""
    if count < 1:
        raise ValueError(f"count must be at least 1, got {count}")
    order = sorted(range(len(costs)), key=lambda i: (-costs[i], i))
    loads = [(0.0, shard) for shard in range(count)]  # a heap of (load, shard): the least load, lowest shard first
    owner = [0] * len(costs)
    for item in order:
        load, shard = heapq.heappop(loads)
        owner[item] = shard
        heapq.heappush(loads, (load + costs[item], shard))
    return owner


def shard(items: Sequence[Item], index: int, count: int, costs: Sequence[float]) -> list[Item]:
    """The items of shard ``index`` (1-based) of ``count``, in their given order; ``costs[k]`` is ``items[k]``'s
    cost. The union of the ``count`` shards is ``items``, each item in one shard."""
    if len(costs) != len(items):
        raise ValueError(f"{len(items)} items but {len(costs)} costs")
    if not 1 <= index <= count:
        raise ValueError(f"shard {index} of {count} does not exist")
    owner = assign(costs, count)
    return [item for item, where in zip(items, owner, strict=True) if where == index - 1]


def longest_first(costs: Sequence[float]) -> list[int]:
    """The items' indices, most expensive first (stable): the order a pool of workers should take them in, so
    that the last task to start is a short one (the same rule as ``assign``, for a pool whose workers pick the
    next task when free)."""
    return sorted(range(len(costs)), key=lambda i: (-costs[i], i))


def measured(path: str | Path) -> dict[tuple[str, str, str, str], float]:
    """(implementation, property, device, dtype) -> seconds, from a ``lossguard-results`` JSON (``--json``);
    ShardError for a file that is missing or is no such report."""
    try:
        document = json.loads(Path(path).read_text(encoding="utf-8"))
        results = document["results"]
        return {
            (r["implementation"], r["property"], r["device"], r["dtype"]): float(r.get("duration_s") or 0.0)
            for r in results
        }
    except (OSError, ValueError, KeyError, TypeError) as problem:
        raise ShardError(f"--durations {path}: not a lossguard-results JSON report ({problem})") from problem


def costs_of(
    items: Sequence[Item],
    cells: Callable[[Item], Sequence[Hashable]],
    durations: Mapping[Any, float] | None = None,
) -> list[float]:
    """Each item's cost: the sum of its ``cells``' measured ``durations`` where known; a cell the previous run
    did not have (a new loss, a new dtype) costs the mean measured cell; without ``durations`` every cell costs 1
    (an estimate by the number of planned cells)."""
    if not durations:
        return [float(len(cells(item))) for item in items]
    typical = sum(durations.values()) / len(durations)
    return [float(sum(durations.get(cell, typical) for cell in cells(item))) for item in items]


def by_implementation(names: Sequence[str], durations: Mapping[tuple[str, str, str, str], float] | None) -> list[float]:
    """The cost of each implementation named (a configured loss is run under its name): the sum of its results'
    measured seconds; one it did not have costs the mean measured implementation; without ``durations`` each costs 1
    (configured losses are planned by their isolated worker, so their cells are not counted beforehand)."""
    if not durations:
        return [1.0] * len(names)
    per: dict[str, float] = {}
    for (implementation, *_), seconds in durations.items():
        per[implementation] = per.get(implementation, 0.0) + seconds
    typical = sum(per.values()) / len(per)
    return [per.get(name, typical) for name in names]


def add_options(parser: argparse.ArgumentParser) -> None:
    """``--shard I/N`` and ``--durations FILE`` (``check``, with or without ``--config``)."""
    parser.add_argument(
        "--shard",
        metavar="I/N",
        help="run only the I-th of N shards (a CI matrix: every shard of the same N gives the whole run, each "
        "implementation or configured loss in exactly one shard, balanced by cost; see docs/SCALING.md)",
    )
    parser.add_argument(
        "--durations",
        metavar="FILE",
        help="a previous run's --json report: balance shards and order the work by its seconds per result "
        "(default: by the number of planned results)",
    )


def pick(
    items: Sequence[Item], spec: str | None, costs: Callable[[], Sequence[float]], what: str = "implementations"
) -> list[Item]:
    """The items of shard ``spec`` (``"I/N"``; None: all of them), balanced by ``costs()`` (asked only when
    sharding); ShardError for a malformed spec or more shards than ``items`` (none: nothing to split, an empty
    shard)."""
    if spec is None:
        return list(items)
    index, count = parse(spec)
    if items and count > len(items):
        raise ShardError(f"--shard {spec}: only {len(items)} {what} to split; use at most {len(items)} shards")
    return shard(items, index, count, costs()) if items else []
