"""The segmentation references against mpmath at 50 digits, on Hypothesis-drawn inputs including extremes.

Units as in ``test_references_mpmath``: ``EPS = 2^-52``; ``u = EPS / 2``. The mpmath side evaluates the
*literal* definitions of LOSSES.md at 50 digits (``1 - (2 sum(p y) + s) / (sum p + sum y + s)``, etc.)
with p = 1 / (1 + exp(-z)); the reference evaluates the cancellation-free Tversky form
``(alpha FP + beta FN) / (TP + alpha FP + beta FN + s)``.

Error bound met (first-order count of roundings; m the number of terms per sum)
--------------------------------------------------------------------------------
====================================  ======  =============  ================================================
reference                             metric  bound (ulps)   notes
====================================  ======  =============  ================================================
dice, jaccard, tversky ('none')       rel     m + 8          TP, FP, FN: terms 6u (expit 4u, 1 - y, product),
                                                             sums (m - 1) u each -> (m + 5) u; alpha FP + beta
                                                             FN +2u, + TP + s +2u, division u: 2 (m + 5) + 6 u
boundary ('none')                     rel     2.5            expit 4u, product u
dice gradients (input, target)        scale   m + 8          central differences of the literal Dice; pieces
                                                             over B^2 (lossguard.reference.segmentation.tversky_slopes)
signed_distance_map                   exact   0              brute force: minimum distance to the other label
====================================  ======  =============  ================================================

Not yet covered here: multiclass_dice_loss, bce_dice_loss, ce_dice_loss (their references are
checked against finite differences and the own implementations only).

Domain: logits in {0, +-1, +-20, +-40, +-700, +-1e4} and uniform in [-50, 50]; probabilities 0, 1, 1e-300,
1 - 2^-53 and uniform; hard and soft targets, empty and full masks; smooth in {1e-5, 1e-3, 1, 10}.
"""

from __future__ import annotations

import math

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from mpmath import mp, mpf

from lossguard.reference import segmentation as R

EPS = 2.0**-52
DPS = 50
SETTINGS = settings(max_examples=25, deadline=None)

LOGITS = st.one_of(
    st.sampled_from([0.0, 1.0, -1.0, 20.0, -20.0, 40.0, -40.0, 700.0, -700.0, 1e4, -1e4]), st.floats(-50.0, 50.0)
)
PROBABILITIES = st.one_of(st.sampled_from([0.0, 1.0, 1e-300, 1 - 2**-53, 0.5]), st.floats(0.0, 1.0))
TARGETS = st.one_of(st.sampled_from([0.0, 1.0]), st.floats(0.0, 1.0))
SMOOTH = st.sampled_from([1e-5, 1e-3, 1.0, 10.0])


@st.composite
def binary_cases(draw):
    shape = (draw(st.integers(1, 2)), draw(st.integers(1, 2)), draw(st.integers(1, 3)), draw(st.integers(1, 3)))
    from_logits = draw(st.booleans())
    x = draw(hnp.arrays(np.float64, shape, elements=LOGITS if from_logits else PROBABILITIES))
    y = draw(hnp.arrays(np.float64, shape, elements=TARGETS))
    if draw(st.booleans()):
        y[:, 0] = draw(st.sampled_from([0.0, 1.0]))  # empty or full masks
    return x, y, from_logits, draw(SMOOTH), draw(st.booleans())


def _p(v, from_logits):
    v = mpf(v)
    return 1 / (1 + mp.exp(-v)) if from_logits else v


def _confusion(x, y, from_logits, batch) -> dict:
    """(sample or 0, channel) -> [TP, FP, FN] at the ambient precision; x, y float or mpf arrays."""
    groups: dict = {}
    for i, j in np.ndindex(*x.shape[:2]):
        ps = [_p(v, from_logits) for v in np.ravel(x[i, j])]
        ys = [mpf(v) for v in np.ravel(y[i, j])]
        k = groups.setdefault((0 if batch else i, j), [mp.zero, mp.zero, mp.zero])
        k[0] += mp.fsum(p * t for p, t in zip(ps, ys, strict=True))
        k[1] += mp.fsum(p * (1 - t) for p, t in zip(ps, ys, strict=True))
        k[2] += mp.fsum((1 - p) * t for p, t in zip(ps, ys, strict=True))
    return groups


def _literal(x, y, alpha, beta, smooth, from_logits, batch):
    """1 - (TP + s) / (TP + alpha FP + beta FN + s) per (sample, channel) at DPS digits, as an array."""
    with mp.workdps(DPS):
        s = mpf(smooth)
        return np.array(
            [
                1 - (tp + s) / (tp + alpha * fp + beta * fn + s)
                for tp, fp, fn in _confusion(x, y, from_logits, batch).values()
            ]
        )


def _dice_sum(x, y, smooth, from_logits, batch):
    """The literal Dice 1 - (2 sum(p y) + s) / (sum p + sum y + s) summed over (sample, channel)."""
    s = mpf(smooth)
    return mp.fsum(
        1 - (2 * tp + s) / (2 * tp + fp + fn + s) for tp, fp, fn in _confusion(x, y, from_logits, batch).values()
    )


def _check_rel(actual, exact, bound, what):
    for a, e in zip(np.ravel(actual), np.ravel(exact), strict=True):
        with mp.workdps(DPS):
            err = abs(mpf(float(a)) - e) / (EPS * max(abs(e), mpf(2.0**-1022)))
        assert err <= bound, f"{float(err):.3g} ulps > {bound}: reference {a!r}, exact {mp.nstr(e, 20)}; {what}"


@SETTINGS
@given(binary_cases(), st.sampled_from([(0.5, 0.5), (1.0, 1.0), (0.3, 0.7), (0.0, 1.0), (2.0, 0.1)]))
def test_overlap_losses(case, weights):
    x, y, from_logits, smooth, batch = case
    m = int(np.prod(x.shape[2:])) * (x.shape[0] if batch else 1)
    bound = m + 8
    kw = {"smooth": smooth, "from_logits": from_logits, "batch": batch, "reduction": "none"}
    alpha, beta = weights
    exact = _literal(x, y, alpha, beta, smooth, from_logits, batch)
    _check_rel(np.reshape(R.tversky_loss(x, y, alpha, beta, **kw), exact.shape), exact, bound, (case, weights))
    dice = _literal(x, y, 0.5, 0.5, smooth / 2, from_logits, batch)  # Dice(s) = Tversky(1/2, 1/2, s/2)
    _check_rel(np.reshape(R.dice_loss(x, y, **kw), dice.shape), dice, bound, case)
    jaccard = _literal(x, y, 1.0, 1.0, smooth, from_logits, batch)
    _check_rel(np.reshape(R.jaccard_loss(x, y, **kw), jaccard.shape), jaccard, bound, case)


@SETTINGS
@given(binary_cases())
def test_dice_gradient(case):
    """Central differences of the literal 50-digit Dice against the reference gradient, relative to its scale."""
    x, y, from_logits, smooth, batch = case
    m = int(np.prod(x.shape[2:])) * (x.shape[0] if batch else 1)
    kw = {"smooth": smooth, "from_logits": from_logits, "batch": batch, "reduction": "sum"}
    grad = R.dice_loss.grad(x, y, **kw)
    h = mpf(2) ** -80
    for name in ("input", "target"):
        for index in list(np.ndindex(x.shape))[:4]:
            with mp.workdps(DPS + 40):
                shifted = []
                for delta in (h, -h):
                    args = {"input": x.astype(object), "target": y.astype(object)}
                    args[name][index] = mpf(float(args[name][index])) + delta
                    shifted.append(_dice_sum(args["input"], args["target"], smooth, from_logits, batch))
                exact = (shifted[0] - shifted[1]) / (2 * h)
            g = grad[name]
            err = abs(mpf(float(g.value[index])) - exact) / (EPS * max(mpf(float(g.scale[index])), mpf(2.0**-1022)))
            assert err <= m + 8, (name, index, float(err), case)


@SETTINGS
@given(binary_cases())
def test_boundary_loss(case):
    x, y, from_logits, _, _ = case
    d = R.signed_distance_map(y)
    value = R.boundary_loss(x, d, from_logits=from_logits, reduction="none")
    with mp.workdps(DPS):
        exact = [_p(v, from_logits) * mpf(float(w)) for v, w in zip(np.ravel(x), np.ravel(d), strict=True)]
    for a, e in zip(np.ravel(value), exact, strict=True):
        if e == 0:
            assert a == 0
            continue
        _check_rel([a], [e], 2.5, case)


@settings(max_examples=25, deadline=None)
@given(hnp.arrays(np.float64, st.tuples(st.integers(1, 4), st.integers(1, 5)), elements=st.sampled_from([0.0, 1.0])))
def test_signed_distance_map_by_brute_force(mask):
    """Each pixel's value is the minimum Euclidean distance to a pixel of the other label (sign: + outside)."""
    d = R.signed_distance_map(mask[None, None])[0, 0]
    points = list(np.ndindex(mask.shape))
    for point in points:
        others = [q for q in points if mask[q] != mask[point]]
        if not others:
            assert d[point] == 0.0
            continue
        nearest = min(math.dist(point, q) for q in others)
        assert d[point] == (-nearest if mask[point] else nearest)
