"""The detection references against mpmath at 50 digits, on Hypothesis-drawn inputs including extremes.

Units as in ``test_references_mpmath``: ``EPS = 2^-52``; ``u = EPS / 2``. The mpmath side evaluates the literal
definitions of LOSSES.md (and of ``lossguard.reference.detection``: eps added to the squared diagonal, aspect angle
``atan2(w, h)``) at 50 digits from the exact float inputs; the boxes are drawn by the catalog's own example
builder (identical, disjoint, shared-edge, corner, nested, zero-area and tiny pairs; coordinates up to 1e4,
boxes down to 1e-6, and subnormal sizes, which its float strategies allow) with every eps it draws.

Error bound met (in units of EPS times the reference's error scale)
------------------------------------------------------------------
=====================================  ======  ============  ===================================================
reference                              metric  bound         notes
=====================================  ======  ============  ===================================================
iou, giou, diou, ciou ('none')         scale   1             the scale is a first-order running error bound of
                                                             this very evaluation in units of u = EPS / 2, so
                                                             the error is <= 0.5 EPS scale to first order; the
                                                             rest covers numpy's atan2 (< 1 ulp of theta)
gradients (boxes1, boxes2), all four,  scale   1             central differences of the literal loss (step
                                                             2^-60 of the coordinate's reach and of the row's
                                                             smallest coordinate gap: _step; digits enough for
                                                             the tolerance: _digits) on rows away from the
                                                             kinks (lossguard.reference.detection.box_kinks);
                                                             subnormal intermediates in the scale (UNDERFLOW)
and CIoU alpha_gradient='detached'                           (detached: of the loss with alpha held at its
                                                             value in the point; its value is checked too)
=====================================  ======  ============  ===================================================
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st
from mpmath import mp, mpf

from lossguard.catalog.detection import box_examples
from lossguard.reference import detection as R

EPS = 2.0**-52
DPS = 50
SETTINGS = settings(max_examples=25, deadline=None)
LOSSES = ("iou_loss", "generalized_box_iou_loss", "distance_box_iou_loss", "complete_box_iou_loss")
# (loss, reference variant keywords): each loss canonically, and CIoU with alpha held constant in the gradient
VARIANTS = (*((name, {}) for name in LOSSES), ("complete_box_iou_loss", {"alpha_gradient": "detached"}))


@st.composite
def cases(draw):
    regime = draw(st.sampled_from(["typical", "extreme"]))
    example = box_examples(draw, "float64", regime, lambda strategies: {"eps": draw(strategies["eps"])})
    return example.args["boxes1"], example.args["boxes2"], example.params["eps"]


def _exact(v) -> mpf:
    """A float64 as an exact mpf (an mpf, e.g. a shifted coordinate, as it is)."""
    return v if isinstance(v, mpf) else mpf(float(v))


def _aspect_term(row1, row2, eps, iou: mpf) -> tuple[mpf, mpf]:
    """CIoU's (v, alpha) of one box pair: v = (4 / pi^2)(atan2(w2, h2) - atan2(w1, h1))^2, alpha = v / (1 - IoU
    + v + eps)."""
    x1, y1, x2, y2 = (_exact(v) for v in row1)
    X1, Y1, X2, Y2 = (_exact(v) for v in row2)
    v = 4 / mp.pi**2 * (mp.atan2(X2 - X1, Y2 - Y1) - mp.atan2(x2 - x1, y2 - y1)) ** 2
    return v, v / (1 - iou + v + mpf(float(eps)))


def _literal(name: str, row1, row2, eps, alpha: mpf | None = None) -> mpf:
    """The loss of one box pair at the ambient precision, from the definitions. ``alpha``: CIoU's alpha held at
    that value instead of computed (alpha_gradient='detached' is the derivative of this at alpha's value there)."""
    x1, y1, x2, y2 = (_exact(v) for v in row1)
    X1, Y1, X2, Y2 = (_exact(v) for v in row2)
    e = mpf(float(eps))
    w1, h1, w2, h2 = x2 - x1, y2 - y1, X2 - X1, Y2 - Y1
    inter = max(mpf(0), min(x2, X2) - max(x1, X1)) * max(mpf(0), min(y2, Y2) - max(y1, Y1))
    union = w1 * h1 + w2 * h2 - inter
    iou = inter / (union + e)
    if name == "iou_loss":
        return 1 - iou
    cw, ch = max(x2, X2) - min(x1, X1), max(y2, Y2) - min(y1, Y1)
    if name == "generalized_box_iou_loss":
        return 1 - iou + (cw * ch - union) / (cw * ch + e)
    rho2 = ((x1 + x2) / 2 - (X1 + X2) / 2) ** 2 + ((y1 + y2) / 2 - (Y1 + Y2) / 2) ** 2
    diou = 1 - iou + rho2 / (cw**2 + ch**2 + e)
    if name == "distance_box_iou_loss":
        return diou
    v, computed = _aspect_term(row1, row2, eps, iou)
    return diou + (computed if alpha is None else alpha) * v


def _ciou_alpha(row1, row2, eps) -> mpf:
    """CIoU's alpha of one box pair at the ambient precision."""
    return _aspect_term(row1, row2, eps, 1 - _literal("iou_loss", row1, row2, eps))[1]


@SETTINGS
@given(cases())
@pytest.mark.parametrize(("name", "variant"), VARIANTS)
def test_values(name, variant, case):
    b1, b2, eps = case
    reference = getattr(R, name)
    value = reference(b1, b2, eps=eps, reduction="none", **variant)
    scale = reference.error_scale(b1, b2, eps=eps, reduction="none", **variant)
    for i in range(b1.shape[0]):
        with mp.workdps(DPS):
            exact = _literal(name, b1[i], b2[i], eps)
            err = abs(mpf(float(value[i])) - exact) / (EPS * max(mpf(float(scale[i])), mpf(2.0**-1022)))
        assert err <= 1, f"{name} row {i}: {float(err):.3g} > 1: {value[i]!r} vs {mp.nstr(exact, 20)}; {case}"


def _step(row1: np.ndarray, row2: np.ndarray, k: int) -> mpf:
    """The central difference's step for coordinate k (0..7) of a smooth row: the power of two at or below
    2^-60 min(reach, gap). The reach max(|coordinate|, 2^-52 max |row|) is the coordinate's own size with a
    floor at the scale of the row (a coordinate 0 next to others of 1e4); the gap, the smallest distance
    between two distinct x (or two distinct y) coordinates of the row, bounds the distance to every kink of
    the row's max/min and the lengths (widths, heights and their ratios) over which the loss is smooth. The
    central quotient's truncation error, h^2 f'''(xi) / 6, is then ~2^-120 of the gradient's size over that
    length (mp_losses.slopes). The former absolute cap of 2^-120 is replaced by the relative reach."""
    gaps = [
        abs(a - b)
        for axis in (0, 1)
        for a in (row1[axis], row1[axis + 2], row2[axis], row2[axis + 2])
        for b in (row1[axis], row1[axis + 2], row2[axis], row2[axis + 2])
        if a != b
    ]
    coordinate = float((row1 if k < 4 else row2)[k % 4])
    top = max(abs(float(v)) for v in (*row1, *row2))
    reach = max(abs(coordinate), top * 2.0**-52)
    length = mpf(min([reach, *[float(g) for g in gaps]]))
    return mp.ldexp(1, int(mp.floor(mp.log(length, 2))) - 60)


def _digits(h: mpf, tolerance: mpf) -> int:
    """Working digits of the central difference with step h, for a gradient checked to ``tolerance``
    (absolute: EPS times the reference's scale).

    At p digits the difference quotient is off by two kinds of rounding error: the shifted coordinate
    ``x + h`` (|x| <= 1e4) and the quantities built from it, relative errors 10^-p carried through the loss,
    which are proportional to the gradient and come to about 10^(4 - p) / h relative to it; and the absolute
    rounding errors of the two loss values themselves, which are O(1) (quotients of size <= 3) and give an
    absolute error of about 10^-p / h in the quotient *whatever the size of the gradient*. ``-log10 h + 80``
    digits make the first about 10^-76 relative, far inside a tolerance of EPS |gradient|, and the second
    10^-80 absolute, inside an O(1) tolerance but not a tiny one: with widths of 1e-81 against an eps of 1e-7
    the gradient in X1 is -I h2 / (U + eps)^2 = -7.3e-68, its tolerance about 2e-82, and at -log10 h + 80 =
    179 digits the two losses (= 1 - 7e-75) differ by only 2e-167, leaving the quotient 12 correct digits
    (3.5e-14 relative: 10 times the tolerance, though the reference is correct to an ulp). Adding
    ``-log10 tolerance`` digits keeps the second error about 10^-80 times the tolerance in every row (at
    most ~340 more digits, at the 2^-1022 floor of the scale)."""
    return int(-mp.log10(h)) + 80 + max(0, int(mp.ceil(-mp.log10(tolerance))))


# widths ~1e-81 against heights ~1 and eps = 1e-7: gradients of 7e-68 and 1e-148 next to losses of 1 - 7e-75
# (the oracle needs the digits of _digits; the reference was right)
TINY_WIDTHS = (
    np.array([[1.63328256e-82, 1.25e-01, 1.14329779e-81, 8.75e-01]]),
    np.array([[0.0, 0.0, 1.30662605e-81, 1.0]]),
    1e-7,
)


# subnormal widths (1.4e-311, drawn by the catalog's builder): I = iw ih rounds to the subnormal grid, 2e-13 of
# itself, and the gradient in X1 (-1.04e-297) was 35-41 times its underflow-blind scale off in iou, diou and ciou
# (the reference's error scale at fault: reference.detection's UNDERFLOW term; the oracle was right)
SUBNORMAL_WIDTHS = (
    np.array([[2.7813423231325e-312, 0.125, 1.6688053938805e-311, 0.875]]),
    np.array([[0.0, 0.0, 2.225073858507e-311, 1.0]]),
    1e-7,
)


@SETTINGS
@given(cases())
@example(case=TINY_WIDTHS)
@example(case=SUBNORMAL_WIDTHS)
@pytest.mark.parametrize(("name", "variant"), VARIANTS)
def test_gradients(name, variant, case):
    """Central differences of the literal loss; for alpha_gradient='detached', of the literal loss with CIoU's
    alpha held at its value in the unshifted point (computed at the difference's working precision)."""
    b1, b2, eps = case
    grads = getattr(R, name).grad(b1, b2, eps=eps, reduction="sum", **variant)
    smooth = ~R.box_kinks(b1, b2)
    detached = variant.get("alpha_gradient") == "detached"
    for i in np.flatnonzero(smooth):
        for k in range(8):
            h = _step(b1[i], b2[i], k)
            g = grads["boxes1" if k < 4 else "boxes2"]
            value, scale = g.value[i, k % 4], g.scale[i, k % 4]
            tolerance = EPS * max(mpf(float(scale)), mpf(2.0**-1022))  # exact: 53-bit products
            with mp.workdps(_digits(h, tolerance)):
                alpha = _ciou_alpha(b1[i], b2[i], eps) if detached else None
                shifted = []
                for delta in (h, -h):
                    rows = [[mpf(float(v)) for v in b1[i]], [mpf(float(v)) for v in b2[i]]]
                    rows[k // 4][k % 4] += delta
                    shifted.append(_literal(name, *rows, eps, alpha))
                exact = (shifted[0] - shifted[1]) / (2 * h)
                err = abs(mpf(float(value)) - exact) / tolerance
            assert err <= 1, f"{name}{variant} row {i} coordinate {k}: {float(err):.3g} > 1 ({value!r}); {case}"
