"""What ``check`` and ``audit`` share: the versions header, the selection, and an audit job."""

from __future__ import annotations

import platform
from importlib.metadata import PackageNotFoundError, version
from typing import Any

from lossguard.harness.app.runner import Selection
from lossguard.harness.app.target import user_implementation
from lossguard.harness.kernel.model import Implementation

LIBRARIES = ("lossguard", "torch", "numpy", "scipy", "hypothesis")


def versions() -> dict[str, str]:
    """Python and the library versions every verdict depends on (the report header and JSON)."""
    found = {"python": platform.python_version()}
    for name in LIBRARIES:
        try:
            found[name] = version(name)
        except PackageNotFoundError:
            found[name] = "not installed"
    return found


def selection_from(job: dict[str, Any]) -> Selection:
    return Selection(
        dtypes=tuple(job["dtypes"]),
        devices=tuple(job["devices"]),
        properties=tuple(job["properties"]) if job.get("properties") else None,
        profile=job["profile"],
        base_command=tuple(job["base_command"]),
    )


def prepare(job: dict[str, Any]) -> tuple[Implementation, Selection, dict[str, Any]]:
    """Resolve an audit job's target into (implementation, selection, header lines)."""
    impl = user_implementation(job["target"], job["loss"])
    accepted = ", ".join(sorted(impl.accepted)) or "none (all parameters at their canonical defaults)"
    header = {
        "target": job["target"],
        "resolved": impl.source,
        "loss": job["loss"],
        "parameters exercised": accepted,
        **versions(),
    }
    return impl, selection_from(job), header
