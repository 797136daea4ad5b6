"""The detection references against mpmath at 50 digits, on Hypothesis-drawn inputs including extremes.

Units as in ``test_references_mpmath``: ``EPS = 2^-52``; ``u = EPS / 2``. The mpmath side evaluates the literal
definitions of LOSSES.md (and of ``reference.detection``: eps added to the squared diagonal, aspect angle
``atan2(w, h)``) at 50 digits from the exact float inputs; the boxes are drawn by the catalog's own example
builder (identical, disjoint, shared-edge, corner, nested, zero-area and tiny pairs; coordinates up to 1e4,
boxes down to 1e-6) with every eps it draws.

Error bound met (in units of EPS times the reference's error scale)
------------------------------------------------------------------
=====================================  ======  ============  ===================================================
reference                              metric  bound         notes
=====================================  ======  ============  ===================================================
iou, giou, diou, ciou ('none')         scale   1             the scale is a first-order running error bound of
                                                             this very evaluation in units of u = EPS / 2, so
                                                             the error is <= 0.5 EPS scale to first order; the
                                                             rest covers numpy's atan2 (< 1 ulp of theta)
gradients (boxes1, boxes2), all four   scale   1             central differences of the literal loss (step
                                                             below the row's smallest coordinate gap) on rows
                                                             away from the kinks (reference.detection.box_kinks)
=====================================  ======  ============  ===================================================
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from mpmath import mp, mpf

from harness.catalog.detection import box_examples
from reference import detection as R

EPS = 2.0**-52
DPS = 50
SETTINGS = settings(max_examples=25, deadline=None)
LOSSES = ("iou_loss", "generalized_box_iou_loss", "distance_box_iou_loss", "complete_box_iou_loss")


@st.composite
def cases(draw):
    regime = draw(st.sampled_from(["typical", "extreme"]))
    example = box_examples(draw, "float64", regime, lambda strategies: {"eps": draw(strategies["eps"])})
    return example.args["boxes1"], example.args["boxes2"], example.params["eps"]


def _exact(v) -> mpf:
    """A float64 as an exact mpf (an mpf, e.g. a shifted coordinate, as it is)."""
    return v if isinstance(v, mpf) else mpf(float(v))


def _literal(name: str, row1, row2, eps) -> mpf:
    """The loss of one box pair at the ambient precision, from the definitions."""
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
    v = 4 / mp.pi**2 * (mp.atan2(w2, h2) - mp.atan2(w1, h1)) ** 2
    return diou + v / (1 - iou + v + e) * v


@SETTINGS
@given(cases())
@pytest.mark.parametrize("name", LOSSES)
def test_values(name, case):
    b1, b2, eps = case
    reference = getattr(R, name)
    value = reference(b1, b2, eps=eps, reduction="none")
    scale = reference.error_scale(b1, b2, eps=eps, reduction="none")
    for i in range(b1.shape[0]):
        with mp.workdps(DPS):
            exact = _literal(name, b1[i], b2[i], eps)
            err = abs(mpf(float(value[i])) - exact) / (EPS * max(mpf(float(scale[i])), mpf(2.0**-1022)))
        assert err <= 1, f"{name} row {i}: {float(err):.3g} > 1: {value[i]!r} vs {mp.nstr(exact, 20)}; {case}"


def _step(row1: np.ndarray, row2: np.ndarray) -> tuple[mpf, int]:
    """(step, working digits) of a central difference that stays on one side of every max/min of the row: the
    step is 2^-120 or 2^-60 times the smallest gap between two of its x (or two of its y) coordinates."""
    gaps = [
        abs(a - b)
        for axis in (0, 1)
        for a in (row1[axis], row1[axis + 2], row2[axis], row2[axis + 2])
        for b in (row1[axis], row1[axis + 2], row2[axis], row2[axis + 2])
        if a != b
    ]
    h = min([mpf(2) ** -120] + [mpf(float(g)) * mpf(2) ** -60 for g in gaps])
    return h, int(-mp.log10(h)) + 80


@SETTINGS
@given(cases())
@pytest.mark.parametrize("name", LOSSES)
def test_gradients(name, case):
    b1, b2, eps = case
    grads = getattr(R, name).grad(b1, b2, eps=eps, reduction="sum")
    smooth = ~R.box_kinks(b1, b2)
    for i in np.flatnonzero(smooth):
        h, digits = _step(b1[i], b2[i])
        for k in range(8):
            with mp.workdps(digits):
                shifted = []
                for delta in (h, -h):
                    rows = [[mpf(float(v)) for v in b1[i]], [mpf(float(v)) for v in b2[i]]]
                    rows[k // 4][k % 4] += delta
                    shifted.append(_literal(name, *rows, eps))
                exact = (shifted[0] - shifted[1]) / (2 * h)
            g = grads["boxes1" if k < 4 else "boxes2"]
            value, scale = g.value[i, k % 4], g.scale[i, k % 4]
            err = abs(mpf(float(value)) - exact) / (EPS * max(mpf(float(scale)), mpf(2.0**-1022)))
            assert err <= 1, f"{name} row {i} coordinate {k}: {float(err):.3g} > 1 ({value!r}); {case}"
