"""Loss and gradient curves: the reference and an implementation along a sweep of the input.

Three panels share the x axis (a residual, a logit): the loss, its derivative with respect to
the swept input, and the error of each in ulps of the computation's scale (log axis, the
tolerance drawn as a line), so a reader sees at a glance where an implementation departs from
the float64 reference: a clamp, an overflow, a vanished gradient.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from lossguard.harness.kernel.model import Implementation, LossSpec
from lossguard.harness.kernel.subject import Subject

RANGES = {"regression": 8.0, "classification": 30.0}


def sweep_data(spec: LossSpec, impl: Implementation, dtype: str, points: int = 801) -> dict[str, np.ndarray]:
    """The curves as arrays: s, reference and implementation value and derivative, errors in ulps."""
    if spec.sweep is None:
        raise ValueError(f"{spec.name} has no one-dimensional sweep to plot")
    bound = RANGES.get(spec.family, 10.0)
    s = np.linspace(-bound, bound, points)
    subject = Subject(spec, impl, dtype, "cpu")
    example = subject.rounded(
        spec.sweep(s).replace(**{k: v for k, v in spec.params.items() if k not in spec.sweep(s).params})
    )
    outcome = subject.call(example, grad=("input",))
    reference = subject.reference(example)
    scale = subject.scale(example)
    grads = spec.reference.grad(**example.kwargs())["input"]

    def per_point(array: np.ndarray) -> np.ndarray:
        """The derivative along the sweep: the swept column of a (points, C) gradient."""
        array = np.asarray(array)
        return array[:, 0] if array.ndim > 1 else array

    value_error = subject.compare(outcome.value, reference, scale).ulps
    grad_error = subject.compare(outcome.grads["input"], grads.value, grads.scale).ulps
    return {
        "s": s,
        "reference": np.ravel(reference),
        "implementation": np.ravel(outcome.value),
        "reference_grad": per_point(grads.value),
        "implementation_grad": per_point(outcome.grads["input"]),
        "value_ulps": np.ravel(value_error),
        "grad_ulps": per_point(grad_error),
        "budget": np.asarray(spec.ulps),
    }


def plot(spec: LossSpec, impl: Implementation, dtype: str, out: str | Path) -> Path:
    """Draw the curves of ``impl`` against the reference into ``out`` (PNG or SVG by extension)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    data = sweep_data(spec, impl, dtype)
    axis_name = "residual" if spec.family == "regression" else "logit of the right class"
    figure, (loss, grad, ulps) = plt.subplots(3, 1, figsize=(7.5, 8.5), sharex=True)
    loss.plot(data["s"], data["reference"], lw=3, alpha=0.4, label="float64 reference")
    loss.plot(data["s"], data["implementation"], lw=1.2, label=f"{impl.name} ({dtype})")
    loss.set_ylabel("loss")
    loss.legend(loc="best", fontsize=8)
    grad.plot(data["s"], data["reference_grad"], lw=3, alpha=0.4, label="reference")
    grad.plot(data["s"], data["implementation_grad"], lw=1.2, label="implementation (autograd)")
    grad.set_ylabel("d loss / d input")
    floor = 1e-3
    ulps.semilogy(data["s"], np.clip(np.nan_to_num(data["value_ulps"], posinf=1e30), floor, None), label="loss")
    ulps.semilogy(data["s"], np.clip(np.nan_to_num(data["grad_ulps"], posinf=1e30), floor, None), label="gradient")
    ulps.axhline(float(data["budget"]), color="k", ls="--", lw=0.8, label="tolerance")
    ulps.set_ylabel("error (ulps of scale)")
    ulps.set_xlabel(axis_name)
    ulps.legend(loc="best", fontsize=8)
    figure.suptitle(f"{spec.name}: {impl.name} against the float64 reference", fontsize=10)
    figure.tight_layout()
    out = Path(out)
    figure.savefig(out, dpi=110)
    plt.close(figure)
    return out
