"""JUnit XML (``--junit FILE``): one ``<testcase>`` per result, as CI systems read pytest's ``--junitxml``.

The item id and the outcome of a result are defined here once, for the CLI's report and the pytest plugin alike
(the same configuration gives the same testcases, names and outcomes, through either):

* id: ``item_id(name, property, dtype, device)`` = ``name[property-dtype-device]``, e.g.
  ``huber[agreement-float32-cpu]`` (``name``: the configured entry's name, i.e. the result's implementation);
* classname: the configuration file's path relative to the root folder (what pytest's ``--junitxml`` gives a
  node under that file), or ``lossguard`` for a run without a configuration;
* outcome (``outcome``): pass -> passed; fail or error at or above the ``--fail-on`` gate -> failed (``<failure>``)
  or error (``<error>``), below it -> passed (the failure reported in ``<system-out>`` as a warning); skip ->
  skipped (``<skipped type="pytest.skip">`` with the reason); xfail -> xfailed (``<skipped type="pytest.xfail">``
  with the recorded reason); xpass -> failed (strict: ``<failure message="[XPASS(strict)] ...">``).

A failure's text (``failure_text``) is its message, its minimal counterexample and the one command that
reproduces it (``--replay``: no local example database needed).
"""

from __future__ import annotations

import socket
import xml.etree.ElementTree as ET
from collections import Counter
from collections.abc import Sequence
from datetime import datetime, timezone
from pathlib import Path

from lossguard.harness.kernel.model import PropertyResult
from lossguard.harness.kernel.severity import DEFAULT_FAIL_ON, fails_gate

OUTCOMES = ("passed", "failed", "error", "skipped", "xfailed")


def item_id(name: str, prop: str, dtype: str, device: str) -> str:
    """The id of one result: ``name[property-dtype-device]``."""
    return f"{name}[{prop}-{dtype}-{device}]"


def result_id(result: PropertyResult) -> str:
    return item_id(result.implementation, result.property, result.dtype, result.device)


def outcome(result: PropertyResult, fail_on: str = DEFAULT_FAIL_ON) -> str:
    """The result's test outcome, one of ``OUTCOMES`` (the module docstring)."""
    if result.status == "xpass":
        return "failed"
    if result.status in ("fail", "error"):
        if not fails_gate(result, fail_on):
            return "passed"
        return "failed" if result.status == "fail" else "error"
    return {"pass": "passed", "skip": "skipped", "xfail": "xfailed"}[result.status]


def failure_text(result: PropertyResult) -> str:
    """The message, the minimal counterexample and the reproduce command, one per line (those present)."""
    severity = f" [{result.severity}]" if result.severity else ""
    lines = [f"{result.status}{severity}: {result.message}"]
    if result.counterexample:
        lines.append(f"minimal counterexample: {result.counterexample}")
    if result.reproduce:
        lines.append(f"reproduce: {result.reproduce}")
    return "\n".join(lines)


def _first_line(text: str) -> str:
    return text.splitlines()[0] if text else ""


def testcase(result: PropertyResult, classname: str, fail_on: str = DEFAULT_FAIL_ON) -> ET.Element:
    """One ``<testcase>`` element for ``result``."""
    case = ET.Element(
        "testcase", {"classname": classname, "name": result_id(result), "time": f"{result.duration_s:.3f}"}
    )
    verdict = outcome(result, fail_on)
    if verdict in ("failed", "error"):
        tag = "failure" if verdict == "failed" else "error"
        message = result.message if result.status != "xpass" else f"[XPASS(strict)] {result.message}"
        ET.SubElement(case, tag, {"message": _first_line(message)}).text = failure_text(result)
    elif verdict == "skipped":
        ET.SubElement(case, "skipped", {"type": "pytest.skip", "message": result.message}).text = result.message
    elif verdict == "xfailed":
        ET.SubElement(case, "skipped", {"type": "pytest.xfail", "message": result.message}).text = result.message
    elif result.status in ("fail", "error"):  # below the gate: passes, with the failure as a warning
        warning = f"below the gate (--fail-on {fail_on}), not failing the run: {failure_text(result)}"
        ET.SubElement(case, "system-out").text = warning
    return case


def document(
    results: Sequence[PropertyResult], classname: str = "lossguard", fail_on: str = DEFAULT_FAIL_ON, seconds: float = 0
) -> ET.ElementTree:
    """The JUnit document: one ``<testsuite name="lossguard">`` in ``<testsuites>``."""
    counts = Counter(outcome(r, fail_on) for r in results)
    suite = ET.Element(
        "testsuite",
        {
            "name": "lossguard",
            "tests": str(len(results)),
            "failures": str(counts["failed"]),
            "errors": str(counts["error"]),
            "skipped": str(counts["skipped"] + counts["xfailed"]),
            "time": f"{seconds:.3f}",
            "timestamp": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            "hostname": socket.gethostname(),
        },
    )
    suite.extend(testcase(r, classname, fail_on) for r in results)
    root = ET.Element("testsuites")
    root.append(suite)
    ET.indent(root)
    return ET.ElementTree(root)


def write(
    path: str | Path,
    results: Sequence[PropertyResult],
    classname: str = "lossguard",
    fail_on: str = DEFAULT_FAIL_ON,
    seconds: float = 0,
) -> None:
    document(results, classname, fail_on, seconds).write(path, encoding="utf-8", xml_declaration=True)
