"""Judge one property on one implementation, as the planted-bug tests of every family do."""

from __future__ import annotations

from collections.abc import Callable

from lossguard.harness.app.inventory import bind
from lossguard.harness.app.runner import Selection, run_one
from lossguard.harness.kernel.model import PropertyResult

CI = Selection(devices=("cpu",), profile="ci")


def judge(prop: str, loss: str, fn: Callable, dtype: str = "float64") -> PropertyResult:
    """The result of property ``prop`` on ``fn`` as an implementation of catalog entry ``loss`` (CPU, ci profile)."""
    return run_one(bind(loss, fn, f"tests.{fn.__name__}", "user"), prop, "cpu", dtype, CI)


def assert_catches(prop: str, loss: str, wrong: Callable, right: Callable, dtype: str = "float64") -> None:
    """``prop`` fails on ``wrong`` (naming a counterexample) and passes on ``right``, the same loss done correctly."""
    caught = judge(prop, loss, wrong, dtype)
    assert caught.status == "fail", f"{prop} did not catch {wrong.__name__}: {caught.status} {caught.message}"
    assert caught.counterexample, "a failure names its minimal counterexample"
    correct = judge(prop, loss, right, dtype)
    assert correct.status == "pass", f"{prop} fails on a correct {loss}: {correct.status} {correct.message}"
