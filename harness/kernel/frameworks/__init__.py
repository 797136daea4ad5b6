"""Framework bindings, by framework name. Each is imported on first use: JAX stays an optional dependency."""

from __future__ import annotations

from functools import cache

FRAMEWORKS = ("jax", "torch")


@cache
def binding(framework: str):
    """The binding object of ``framework`` (imported on first use)."""
    if framework == "torch":
        from lossguard.harness.kernel.frameworks.torch_binding import TorchBinding

        return TorchBinding()
    if framework == "jax":
        from lossguard.harness.kernel.frameworks.jax_binding import JaxBinding

        return JaxBinding()
    raise ValueError(f"unknown framework {framework!r}; known: {', '.join(FRAMEWORKS)}")
