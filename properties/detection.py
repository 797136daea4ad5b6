"""Family properties of the box-regression losses (IoU, GIoU, DIoU, CIoU).

Notation (lossguard.reference.detection): boxes (x1, y1, x2, y2) row by row, w = x2 - x1, h = y2 - y1, I the
intersection area, U = a1 + a2 - I the union, C the smallest enclosing box (sides cw, ch), rho the distance of
the centres, c^2 = cw^2 + ch^2 + eps, v = (4 / pi^2)(atan2(w2, h2) - atan2(w1, h1))^2,
alpha = v / (1 - IoU + v + eps), IoU = I / (U + eps).
"""

from __future__ import annotations

import numpy as np
from hypothesis import strategies as st

from lossguard.harness.kernel import tolerance
from lossguard.harness.kernel.model import Example
from lossguard.properties.base import FLOAT64_AND_FLOAT32, NONE, first_index, numbers_at, register


def _first(mask: np.ndarray) -> int:
    return int(np.argwhere(mask)[0][0])


@register(
    "box_loss_range",
    "0 <= IoU loss <= 1, 0 <= GIoU, DIoU loss < 2, 0 <= CIoU loss < 3; GIoU, DIoU, CIoU >= IoU loss",
    dtypes=FLOAT64_AND_FLOAT32,
    needs=("value_range",),
    checks=("range", "at_least"),  # within the entry's value_range; >= the loss it is at least (relations.at_least)
)
def box_loss_range(subject, data) -> None:
    """Exact forms, for eps > 0 and valid boxes:

    * 0 <= I <= U, so 0 <= IoU < 1 (IoU = 0 when U = 0) and iou_loss = 1 - IoU lies in (0, 1];
    * GIoU: C contains both boxes, so area(C) >= U and the penalty (area(C) - U) / (area(C) + eps) lies in
      [0, 1): 1 - IoU <= giou loss < 2;
    * DIoU: both centres lie in C, |dx| <= cw and |dy| <= ch, so rho^2 <= cw^2 + ch^2 < c^2: the penalty lies in
      [0, 1) and 1 - IoU <= diou loss < 2;
    * CIoU: 0 <= v <= (4 / pi^2)(pi / 2)^2 = 1 and 0 <= alpha < 1 (the denominator exceeds v), so
      0 <= alpha v < 1 and 1 - IoU <= ciou loss < 3.

    The implementation's values are checked against these bounds (the entry's ``value_range``), and the lower
    bound 1 - IoU against the float64 reference of the entry it is at least (``relations.at_least``: iou_loss)
    on the same boxes, each within the tolerance of the value.
    """
    low, high = subject.spec.value_range
    example = subject.draw(data, regime="any", reduction=NONE)
    value = subject.value(example)
    scale = subject.scale(example)
    allowed = subject.compare(value, 0.0, scale).allowed
    outside = (value < low - allowed) | (value > high + allowed) | np.isnan(value)
    if np.any(outside):
        i = _first(outside)
        # the value, the end of the range it passed (none for a NaN: finite in the range, exact value not needed),
        # the scale the comparison used
        end = None if np.isnan(value[i]) else low if value[i] < low else high
        subject.fail(
            f"loss at row {i} = {value[i]!r}, but should lie in [{low:g}, {high:g}]",
            example,
            check="range",
            numbers=numbers_at((i,), value, end, scale),
        )
    if subject.spec.relations.at_least is not None:
        bound = subject.catalog(subject.spec.relations.at_least)
        lower = subject.reference(example, bound)
        lower_scale = subject.scale(example, bound)
        below = value < lower - allowed - subject.compare(lower, lower, lower_scale).allowed
        if np.any(below):
            i = _first(below)
            subject.fail(
                f"loss at row {i} = {value[i]!r}, but should be >= the {bound.name} {lower[i]!r}",
                example,
                check="at_least",
                # the value, the exact lower bound, the two scales whose tolerances the comparison summed
                numbers=numbers_at((i,), value, lower, scale + lower_scale),
            )


@register(
    "identical_boxes",
    "identical boxes give exactly eps / (area + eps) (0 up to the eps term), zero-area boxes 1",
    dtypes=FLOAT64_AND_FLOAT32,
)
def identical_boxes(subject, data) -> None:
    """boxes2 = boxes1, area a = w h: I = U = a, so IoU = a / (a + eps) and 1 - IoU = eps / (a + eps); the
    enclosing box is the box itself (area(C) - U = 0: GIoU adds 0), the centres coincide (rho = 0: DIoU adds
    0 / c^2 = 0) and so do the aspect angles (v = 0: CIoU adds 0). Every loss is eps / (a + eps): 1 for a
    zero-area box, about eps / a otherwise. The closed form is evaluated in float64 on the rounded boxes."""
    example = subject.draw(data, regime="any", reduction=NONE)
    boxes = np.asarray(example.args["boxes1"])
    same = subject.rounded(example.replace({"boxes2": boxes.copy()}))
    b = np.asarray(same.args["boxes1"], dtype=np.float64)
    eps = same.params["eps"]
    area = (b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1])
    expected = eps / (area + eps)
    subject.expect_close("loss of identical boxes", subject.value(same), expected, subject.scale(same), same)


def _expect_covariant(subject, example, transformed, base, what: str) -> None:
    """impl(transformed) - impl(base) equals the reference's change (0 for an exact invariance; the rounding of
    the transformed inputs or an exactly derived eps term otherwise)."""
    transformed, base = subject.rounded(transformed), subject.rounded(base)
    expected = subject.value(base) + (subject.reference(transformed) - subject.reference(base))
    scale = subject.scale(base) + subject.scale(transformed)
    subject.expect_close(what, subject.value(transformed), expected, scale, transformed)


def _boxes(example, change) -> dict:
    return {k: change(np.asarray(v, dtype=np.float64)) for k, v in example.args.items()}


@register(
    "box_translation_invariance",
    "translating both boxes by one vector leaves the loss unchanged",
    dtypes=FLOAT64_AND_FLOAT32,
)
def box_translation_invariance(subject, data) -> None:
    """L(b1 + t, b2 + t) = L(b1, b2) exactly, t = (tx, ty, tx, ty): widths, intersection and enclosing sides and
    the centre offset are differences of coordinates, unchanged by t. The translated coordinates are rounded
    to the dtype; where that rounding is not exact the reference's change (of order u |t|) is the expected one.
    tx, ty are drawn mostly as small integers and powers of two, which keep many rows exact."""
    example = subject.draw(data, regime="any", reduction=NONE)
    shift = st.one_of(st.sampled_from([1.0, -2.0, 0.5, 8.0, -64.0, 3.0]), st.floats(-50.0, 50.0))
    tx, ty = data.draw(shift, label="tx"), data.draw(shift, label="ty")
    t = np.array([tx, ty, tx, ty])
    moved = example.replace(_boxes(example, lambda b: b + t))
    _expect_covariant(subject, example, moved, example, f"loss of the boxes translated by ({tx!r}, {ty!r})")


@register(
    "box_scale_invariance",
    "scaling both boxes by s = 2^k: L(s b; eps) = L(b; eps / s^2) (and for CIoU up to an exact eps term)",
    dtypes=FLOAT64_AND_FLOAT32,
)
def box_scale_invariance(subject, data) -> None:
    """Scaling every coordinate by s multiplies areas by s^2 and lengths by s. Hence, exactly,

    * IoU(s b; eps) = s^2 I / (s^2 U + eps) = IoU(b; eps / s^2), and the GIoU penalty
      (s^2 C - s^2 U) / (s^2 C + eps) and the DIoU penalty s^2 rho^2 / (s^2 (cw^2 + ch^2) + eps) likewise take
      eps / s^2: iou, giou and diou satisfy L(s b; eps) = L(b; eps / s^2);
    * CIoU: v is scale-free (w / h), but alpha = v / (1 - IoU + v + eps) keeps eps unscaled, so
      L(s b; eps) - L(b; eps / s^2) = v^2 / D - v^2 / D' with D = 1 - IoU' + v + eps, D' = 1 - IoU' + v + eps / s^2:
      v^2 (eps / s^2 - eps) / (D D'), of magnitude at most eps |1 - 1 / s^2| (as v <= D, D').

    s = 2^k keeps the scaled coordinates and eps / s^2 exact; the implementation at (b, eps / s^2) plus the
    reference's difference (0 up to its rounding for iou, giou, diou; the CIoU term above) is the expected value.
    """
    subject.need(subject.accepts("eps"))
    example = subject.draw(data, regime="typical", reduction=NONE)
    k = data.draw(st.integers(-4, 4).filter(lambda v: v != 0), label="k (s = 2^k)")
    s = 2.0**k
    scaled = example.replace(_boxes(example, lambda b: b * s))
    base = example.replace(eps=example.params["eps"] / (s * s))
    subject.need(subject.rounded(base).params["eps"] > 0)  # eps / s^2 representable (not flushed to 0 in float16)
    _expect_covariant(subject, example, scaled, base, f"loss of the boxes scaled by 2^{k}")


_FLAT = ("w1", "h1", "w2", "h2", "both points", "same point", "both flat")
_ZERO_WIDTH_PAIR = Example({"boxes1": np.array([[0.0, 0.0, 0.0, 1.0]]), "boxes2": np.array([[0.0, 0.0, 1.0, 1.0]])}, {})


@register(
    "zero_area_boxes",
    "zero-area boxes (x1 = x2 or y1 = y2) give the finite values of the catalog's convention, finite gradients",
    dtypes=FLOAT64_AND_FLOAT32,
    checks=("value", "finite_gradient"),  # the value (finite, and the reference's); the gradients finite
)
def zero_area_boxes(subject, data) -> None:
    """Every row gets a zero-area box (boxes1, boxes2, both, or one point box repeated): the value must be the
    reference's, which is finite by the convention eps > 0 (U = 0 gives IoU = 0 / eps = 0, area(C) = 0 the GIoU
    penalty 0, a zero diagonal the DIoU penalty 0, atan2(0, 0) = 0 the point box's aspect angle); the
    gradients must be finite wherever the reference's subgradient is finite and representable in the dtype (their
    values are not compared: zero-area rows are kinks; the GIoU penalty's slope at area(C) = 0 is (dC - dU) / eps).
    An implementation whose binding supports proper boxes only has no example here (a skip), found before drawing."""
    subject.need(subject.supports(_ZERO_WIDTH_PAIR))
    example = subject.draw(data, regime="any", reduction=NONE)
    b1 = np.array(example.args["boxes1"], dtype=np.float64)
    b2 = np.array(example.args["boxes2"], dtype=np.float64)
    for i in range(b1.shape[0]):
        which = data.draw(st.sampled_from(_FLAT), label=f"row {i} flat")
        if which in ("w1", "both points", "same point", "both flat"):
            b1[i, 2] = b1[i, 0]
        if which in ("h1", "both points", "same point"):
            b1[i, 3] = b1[i, 1]
        if which in ("w2", "both points"):
            b2[i, 2] = b2[i, 0]
        if which in ("h2", "both points", "both flat"):
            b2[i, 3] = b2[i, 1]
        if which == "same point":
            b2[i] = b1[i]
    flat = subject.rounded(example.replace({"boxes1": b1, "boxes2": b2}))
    names = subject.differentiable(flat)
    outcome = subject.call(flat, grad=names)
    expected = subject.reference(flat)
    if not np.all(np.isfinite(outcome.value)):
        i = _first(~np.isfinite(outcome.value))
        subject.fail(
            f"loss at row {i} = {outcome.value[i]!r}, but should be finite ({expected[i]!r})",
            flat,
            "value",
            numbers=numbers_at((i,), outcome.value, expected, None),
        )
    subject.expect_close("loss with zero-area boxes", outcome.value, expected, subject.scale(flat), flat, check="value")
    with np.errstate(all="ignore"):
        exact = subject.spec.reference.grad(**flat.kwargs())
    for name in names:
        grad = outcome.grads[name]
        bad = ~np.isfinite(grad) & tolerance.representable(exact[name].value, subject.dtype)
        if np.any(bad):
            i = _first(np.any(bad, axis=1))
            subject.fail(
                f"d loss / d {name} at row {i} = {grad[i].tolist()}, but should be finite",
                flat,
                "finite_gradient",
                numbers=numbers_at(first_index(bad), grad, exact[name].value, None),  # its first non-finite element
            )
