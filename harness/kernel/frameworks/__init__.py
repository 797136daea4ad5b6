"""Framework bindings, by framework name."""

from __future__ import annotations

from functools import cache


@cache
def binding(framework: str):
    """The binding object of ``framework`` (imported on first use)."""
    if framework == "torch":
        from lossguard.harness.kernel.frameworks.torch_binding import TorchBinding

        return TorchBinding()
    raise ValueError(f"unknown framework {framework!r}; known: torch")
