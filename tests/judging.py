"""Judge one property on one implementation, as the planted-bug tests of every family do."""

from __future__ import annotations

from collections.abc import Callable

from lossguard.harness.app.inventory import bind
from lossguard.harness.app.runner import Selection, run_one
from lossguard.harness.kernel.model import PropertyResult
from lossguard.properties.base import PROPERTIES

CI = Selection(devices=("cpu",), profile="ci")


def judge(prop: str, loss: str, fn: Callable, dtype: str = "float64") -> PropertyResult:
    """The result of property ``prop`` on ``fn`` as an implementation of catalog entry ``loss`` (CPU, ci profile)."""
    return run_one(bind(loss, fn, f"tests.{fn.__name__}", "user"), prop, "cpu", dtype, CI)


def only_check(prop: str) -> str:
    """The one sub-check of ``prop``; a property with several needs its planted bugs to name theirs."""
    checks = PROPERTIES[prop].checks
    assert len(checks) == 1, f"{prop} has sub-checks {checks}: name the one each planted bug proves"
    return checks[0]


def assert_catches(
    prop: str, loss: str, wrong: Callable, right: Callable, dtype: str = "float64", check: str | None = None
) -> None:
    """``prop`` fails on ``wrong`` (naming a counterexample) in its sub-check ``check`` (default: the property's
    only one), and passes on ``right``, the same loss done correctly."""
    check = only_check(prop) if check is None else check
    assert check in PROPERTIES[prop].checks, f"{prop} declares no sub-check {check!r}"
    caught = judge(prop, loss, wrong, dtype)
    assert caught.status == "fail", f"{prop} did not catch {wrong.__name__}: {caught.status} {caught.message}"
    assert caught.check == check, f"{wrong.__name__} failed {prop}'s check {caught.check!r}, not {check!r}"
    assert caught.counterexample, "a failure names its minimal counterexample"
    correct = judge(prop, loss, right, dtype)
    assert correct.status == "pass", f"{prop} fails on a correct {loss}: {correct.status} {correct.message}"
