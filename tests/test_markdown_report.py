"""The Markdown report (``--markdown FILE``): the verdict, the root causes by severity, each new one in full, and
nothing the judged code wrote becomes markup (rendered by a CommonMark renderer, markdown-it, as CI pages do)."""

from __future__ import annotations

import math

from markdown_it import MarkdownIt

from lossguard.harness.kernel.model import PropertyResult
from lossguard.harness.kernel.severity import classify
from lossguard.reports import json_report, markdown

HOSTILE = "<script>alert(1)</script>`|<img src=x onerror=alert(2)>"


def _result(**fields) -> PropertyResult:
    base = {"loss": "huber_loss", "implementation": "mine", "kind": "user", "device": "cpu", "dtype": "float32"}
    result = PropertyResult(**{**base, "property": "agreement", "status": "fail", **fields})
    result.severity = classify(result)
    return result


def _document(results: list[PropertyResult]) -> dict:
    return json_report.document(results, "lossguard audit x", {"target": "x"}, {"torch": "2"}, "ci", 1.0, 1)


def test_the_report_names_the_verdict_the_severities_and_each_new_root_cause():
    results = [
        _result(message="loss = nan", counterexample="input=[0.]", actual=math.nan, expected=0.5, reproduce="cmd"),
        _result(message="loss = nan", counterexample="input=[0.]", property="gradient", actual=math.nan),
        _result(status="pass"),
    ]
    text = markdown.render(_document(results))
    assert text.startswith("## lossguard: FAILED")
    assert "| user | 0 | 1 | 0 | 0 | 0 | 0 | 0 |" in text  # one nan-inf root cause
    assert "### 1. [nan-inf]" in text and "### 2." not in text
    assert "breaks: agreement (float32), gradient (float32)" in text
    assert "- reproduce: ` cmd `" in text


def test_nothing_the_judged_code_wrote_becomes_markup():
    results = [
        _result(
            implementation=HOSTILE,
            message=f"loss = {HOSTILE}\n```\n<script>x</script>",
            counterexample=HOSTILE,
            reproduce=HOSTILE,
            convention=HOSTILE,
        ),
        _result(implementation=HOSTILE, status="xfail", message=f"{HOSTILE} [recorded against lib 1; domain: x]"),
    ]
    html = MarkdownIt("commonmark").render(markdown.render(_document(results)))
    assert "<script" not in html and "<img" not in html
    assert "&lt;script&gt;" in html
