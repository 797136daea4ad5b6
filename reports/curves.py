"""Loss and gradient curves: the reference and an implementation along a one-dimensional path through the inputs.

Three panels share the x axis (a residual, a logit, one element of a counterexample): the loss, its derivative
with respect to the varied input, and the error of each in ulps of the computation's scale (log axis, the
tolerance drawn as a line), so a reader sees at a glance where an implementation departs from the float64
reference: a clamp, an overflow, a vanished gradient.

``figure`` draws any such ``Curves``; ``lossguard plot`` fills them from an entry's sweep (``sweep_data``), the
HTML report from a slice through a finding's counterexample (``lossguard.harness.app.slices``).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import IO

import numpy as np

from lossguard.harness.kernel.model import Implementation, LossSpec
from lossguard.harness.kernel.subject import Subject

RANGES = {"regression": 8.0, "classification": 30.0}
ULPS_FLOOR = 1e-3  # the log axis' floor: an exact result is drawn here


@dataclass(frozen=True)
class Curves:
    """What one figure draws: reference and implementation along ``x``, value and derivative, with their errors.

    ``marker``: an x to mark with a vertical line (a counterexample), None for none. Labels are plain text (they
    may come from the judged code: ``figure`` never lets matplotlib read them as mathtext)."""

    x: np.ndarray
    reference: np.ndarray
    implementation: np.ndarray
    reference_grad: np.ndarray
    implementation_grad: np.ndarray
    value_ulps: np.ndarray
    grad_ulps: np.ndarray
    budget: float
    title: str
    x_label: str
    implementation_label: str
    value_label: str = "loss"
    grad_label: str = "d loss / d input"
    marker: float | None = None


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


def plain(text: str) -> str:
    """``text`` as matplotlib draws it literally: a '$' would start mathtext (and a malformed one fails to draw)."""
    return str(text).replace("$", r"\$")


def figure(
    curves: Curves, out: str | Path | IO[bytes], format: str | None = None, size=(7.5, 8.5), dpi: int = 110
) -> None:
    """Draw ``curves`` into ``out`` (a path, PNG or SVG by extension, or a binary file with ``format``)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, (loss, grad, ulps) = plt.subplots(3, 1, figsize=size, sharex=True)
    loss.plot(curves.x, curves.reference, lw=3, alpha=0.4, label="float64 reference")
    loss.plot(curves.x, curves.implementation, lw=1.2, label=plain(curves.implementation_label))
    loss.set_ylabel(plain(curves.value_label))
    loss.legend(loc="best", fontsize=8)
    grad.plot(curves.x, curves.reference_grad, lw=3, alpha=0.4, label="reference")
    grad.plot(curves.x, curves.implementation_grad, lw=1.2, label="implementation (autograd)")
    grad.set_ylabel(plain(curves.grad_label))
    for values, label in ((curves.value_ulps, "loss"), (curves.grad_ulps, "gradient")):
        # an infinite error (a NaN or inf result) at the top of the axis; NaN (nothing judged there) is a gap
        drawn = np.clip(np.where(np.isposinf(values), 1e30, values), ULPS_FLOOR, None)
        ulps.semilogy(curves.x, drawn, label=label)
    ulps.axhline(float(curves.budget), color="k", ls="--", lw=0.8, label="tolerance")
    ulps.set_ylabel("error (ulps of scale)")
    ulps.set_xlabel(plain(curves.x_label))
    ulps.legend(loc="best", fontsize=8)
    if curves.marker is not None:
        for axis in (loss, grad, ulps):
            axis.axvline(curves.marker, color="tab:red", ls=":", lw=0.9)
    figure.suptitle(plain(curves.title), fontsize=10)
    figure.tight_layout()
    figure.savefig(out, dpi=dpi, format=format)
    plt.close(figure)


def plot(spec: LossSpec, impl: Implementation, dtype: str, out: str | Path) -> Path:
    """Draw the curves of ``impl`` against the reference into ``out`` (PNG or SVG by extension)."""
    data = sweep_data(spec, impl, dtype)
    curves = Curves(
        x=data["s"],
        reference=data["reference"],
        implementation=data["implementation"],
        reference_grad=data["reference_grad"],
        implementation_grad=data["implementation_grad"],
        value_ulps=data["value_ulps"],
        grad_ulps=data["grad_ulps"],
        budget=float(data["budget"]),
        title=f"{spec.name}: {impl.name} against the float64 reference",
        x_label="residual" if spec.family == "regression" else "logit of the right class",
        implementation_label=f"{impl.name} ({dtype})",
    )
    out = Path(out)
    figure(curves, out)
    return out
