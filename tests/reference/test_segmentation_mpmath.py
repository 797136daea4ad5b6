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
from hypothesis import example, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from mpmath import mp, mpf
from test_references_mpmath import check_derivative

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


def _q(v, from_logits):
    """1 - p without cancellation (sigmoid(-z) for a logit): only to size the precision (``_extra_bits``)."""
    v = mpf(v)
    return 1 / (1 + mp.exp(v)) if from_logits else 1 - v


def _confusion(x, y, from_logits, batch, literal=True) -> dict:
    """(sample or 0, channel) -> [TP, FP, FN] at the ambient precision; x, y float or mpf arrays. ``literal``:
    1 - p by subtraction, as the definition; else by ``_q``."""
    groups: dict = {}
    for i, j in np.ndindex(*x.shape[:2]):
        ps = [_p(v, from_logits) for v in np.ravel(x[i, j])]
        qs = [1 - p for p in ps] if literal else [_q(v, from_logits) for v in np.ravel(x[i, j])]
        ys = [mpf(v) for v in np.ravel(y[i, j])]
        k = groups.setdefault((0 if batch else i, j), [mp.zero, mp.zero, mp.zero])
        k[0] += mp.fsum(p * t for p, t in zip(ps, ys, strict=True))
        k[1] += mp.fsum(p * (1 - t) for p, t in zip(ps, ys, strict=True))
        k[2] += mp.fsum(q * t for q, t in zip(qs, ys, strict=True))
    return groups


def _extra_bits(x, y, alpha, beta, smooth, from_logits, batch) -> int:
    """Bits the literal 1 - (TP + s) / (TP + alpha FP + beta FN + s) loses to its cancellation, the most of
    any group: log2 of (TP + alpha FP + beta FN + s) / (alpha FP + beta FN) (the value's reciprocal), sized
    from cancellation-free TP, FP, FN; plus 16. Evaluated at the ambient precision plus these bits, the
    literal form keeps the ambient precision relative to its value: at 50 digits alone, a value of 1.8e-208
    (y = 3.6e-213 against s = 1e-5) came out as 1 - 1 = 0, and the 1 - p of a logit of 700 as 0."""
    with mp.workdps(DPS):
        bits = 0
        for tp, fp, fn in _confusion(x, y, from_logits, batch, literal=False).values():
            num = alpha * fp + beta * fn
            if num > 0:
                bits = max(bits, int(mp.mag(tp + num + mpf(smooth))) - int(mp.mag(num)))
    return bits + 16


def _literal(x, y, alpha, beta, smooth, from_logits, batch):
    """1 - (TP + s) / (TP + alpha FP + beta FN + s) per (sample, channel), to DPS digits of itself, as an array."""
    extra = _extra_bits(x, y, alpha, beta, smooth, from_logits, batch)
    with mp.workdps(DPS):
        bits = mp.prec
    with mp.workprec(bits + extra):
        s = mpf(smooth)
        groups = _confusion(x, y, from_logits, batch).values()
        values = [1 - (tp + s) / (tp + alpha * fp + beta * fn + s) for tp, fp, fn in groups]
    with mp.workdps(DPS):
        return np.array([+v for v in values])


def _dice_sum(x, y, smooth, from_logits, batch):
    """The literal Dice 1 - (2 sum(p y) + s) / (sum p + sum y + s) summed over (sample, channel), at the
    ambient precision plus the bits its cancellation takes (``_extra_bits``: Dice(s) = Tversky(1/2, 1/2, s/2))."""
    extra = _extra_bits(x, y, 0.5, 0.5, smooth / 2, from_logits, batch)
    with mp.workprec(mp.prec + extra):
        s = mpf(smooth)
        total = mp.fsum(
            1 - (2 * tp + s) / (2 * tp + fp + fn + s) for tp, fp, fn in _confusion(x, y, from_logits, batch).values()
        )
    return +total


def _check_rel(actual, exact, bound, what):
    for a, e in zip(np.ravel(actual), np.ravel(exact), strict=True):
        with mp.workdps(DPS):
            err = abs(mpf(float(a)) - e) / (EPS * max(abs(e), mpf(2.0**-1022)))
        assert err <= bound, f"{float(err):.3g} ulps > {bound}: reference {a!r}, exact {mp.nstr(e, 20)}; {what}"


@SETTINGS
@given(binary_cases(), st.sampled_from([(0.5, 0.5), (1.0, 1.0), (0.3, 0.7), (0.0, 1.0), (2.0, 0.1)]))
# values of 1.8e-208, 5e-296 and 4.9e-305 whose literal form 1 - (TP + s) / (...) at 50 digits was 0 (oracle at
# fault: ``_extra_bits``; the reference's cancellation-free form was right), the last through 1 - sigmoid(700)
@example((np.zeros((1, 1, 1, 1)), np.full((1, 1, 1, 1), 3.62746085e-213), False, 1e-05, False), (0.5, 0.5))
@example((np.full((1, 1, 1, 1), 1e-300), np.zeros((1, 1, 1, 1)), False, 1e-05, False), (0.5, 0.5))
@example((np.full((1, 1, 1, 1), 700.0), np.ones((1, 1, 1, 1)), True, 1e-05, False), (0.5, 0.5))
# a target of 5e-324: the reference's 0.5 FN underflowed to 0 where the value is 2.5e-319 (reference at fault:
# the confusion sums taken at 2^600 times themselves, segmentation._binary)
@example((np.zeros((1, 1, 1, 1)), np.full((1, 1, 1, 1), 5e-324), False, 1e-05, False), (0.5, 0.5))
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
# a logit of -700 against an empty mask: gradient 1e-299 / s; the former fixed step 2^-80 at 90 digits left the
# literal Dice's 1 - 1/(1 + 1e-299) at 0 (oracle at fault; the reference was right)
@example(case=(np.array([[[[-700.0]]]]), np.array([[[[0.0]]]]), True, 1e-05, False))
def test_dice_gradient(case):
    """Central differences of the literal Dice (``mp_losses.slopes`` through ``check_derivative``: a step
    relative to the coordinate, precision for the cancellation) against the reference gradient, relative to
    its scale. Dice is smooth in each probability and logit (a rational function of p = sigmoid(z))."""
    x, y, from_logits, smooth, batch = case
    m = int(np.prod(x.shape[2:])) * (x.shape[0] if batch else 1)
    kw = {"smooth": smooth, "from_logits": from_logits, "batch": batch, "reduction": "sum"}
    grad = R.dice_loss.grad(x, y, **kw)
    for name in ("input", "target"):
        array = x if name == "input" else y
        for index in list(np.ndindex(x.shape))[:4]:

            def along(v, name=name, index=index):
                args = {"input": x.astype(object), "target": y.astype(object)}
                args[name][index] = v
                return _dice_sum(args["input"], args["target"], smooth, from_logits, batch)

            g = grad[name]
            check_derivative(
                float(g.value[index]),
                along,
                [float(array[index])],
                0,
                m + 8,
                scale=float(g.scale[index]),
                extent=max(float(np.max(np.abs(array))), 1.0),
                what=(name, index, case),
            )


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


# --- the variants (reference.segmentation's module docstring) ---------------------------------------------------
#
# smooth_counted and empty change the formula, not its evaluation: the bound of the canonical form (rel m + 8).
# intersection='min' evaluates FP = sum(max(p - y, 0)) and FN = sum(max(y - p, 0)) with a difference of p and y
# that cancels where they are close: the reference is accurate to a few roundings of the sums' magnitudes, the
# scale (metric 'scale': 2 ulps of its own error scale, which counts (m + 5) of them), not relative to its value.


def _min_confusion(x, y, from_logits, batch) -> dict:
    """(sample or 0, channel) -> [TP, FP, FN] with TP = sum(min(p, y)), FP = sum(max(p - y, 0)), FN = sum(max(y - p,
    0)), at the ambient precision."""
    groups: dict = {}
    for i, j in np.ndindex(*x.shape[:2]):
        ps = [_p(v, from_logits) for v in np.ravel(x[i, j])]
        ys = [mpf(v) for v in np.ravel(y[i, j])]
        k = groups.setdefault((0 if batch else i, j), [mp.zero, mp.zero, mp.zero])
        k[0] += mp.fsum(min(p, t) for p, t in zip(ps, ys, strict=True))
        k[1] += mp.fsum(max(p - t, 0) for p, t in zip(ps, ys, strict=True))
        k[2] += mp.fsum(max(t - p, 0) for p, t in zip(ps, ys, strict=True))
    return groups


def _min_tversky(x, y, alpha, beta, smooth, from_logits, batch) -> list:
    """The literal 1 - (TP + s) / (TP + alpha FP + beta FN + s) per group with the min intersection, at 200 digits."""
    with mp.workdps(200):
        s = mpf(smooth)
        return [
            1 - (tp + s) / (tp + alpha * fp + beta * fn + s)
            for tp, fp, fn in _min_confusion(x, y, from_logits, batch).values()
        ]


def _empty(y, batch) -> np.ndarray:
    """(N, C) (or (C,)) mask of the groups whose target sums to 0."""
    axes = ((0,) if batch else ()) + tuple(range(2, y.ndim))
    return np.ravel(np.sum(y, axis=axes) == 0)


@SETTINGS
@given(binary_cases(), st.sampled_from([(0.5, 0.5), (1.0, 1.0), (0.3, 0.7), (0.0, 1.0)]))
@example((np.zeros((1, 1, 1, 1)), np.full((1, 1, 1, 1), 3.62746085e-213), False, 1e-05, False), (0.5, 0.5))
@example((np.full((1, 1, 1, 2), 700.0), np.array([[[[1.0, 0.5]]]]), True, 1e-05, True), (1.0, 1.0))
def test_overlap_variants(case, weights):
    """smooth_counted ('twice': Dice = Tversky(1/2, 1/2, s); 'half': Jaccard = Tversky(1, 1, s / 2)), empty='zero'
    (0 for an empty target, the literal elsewhere) and intersection='min' against the literal definitions."""
    x, y, from_logits, smooth, batch = case
    m = int(np.prod(x.shape[2:])) * (x.shape[0] if batch else 1)
    kw = {"smooth": smooth, "from_logits": from_logits, "batch": batch, "reduction": "none"}
    twice = np.ravel(R.dice_loss(x, y, smooth_counted="twice", **kw))
    _check_rel(twice, _literal(x, y, 0.5, 0.5, smooth, from_logits, batch), m + 8, case)
    half = np.ravel(R.jaccard_loss(x, y, smooth_counted="half", **kw))
    _check_rel(half, _literal(x, y, 1.0, 1.0, smooth / 2, from_logits, batch), m + 8, case)
    alpha, beta = weights
    zero = np.ravel(R.tversky_loss(x, y, alpha, beta, empty="zero", **kw))
    literal = _literal(x, y, alpha, beta, smooth, from_logits, batch)
    empty = _empty(y, batch)
    assert np.all(zero[empty] == 0.0)
    _check_rel(zero[~empty], literal[~empty], m + 8, case)
    terms = R.tversky_loss.terms(x, y, alpha, beta, intersection="min", **kw)
    exact = _min_tversky(x, y, alpha, beta, smooth, from_logits, batch)
    for v, e, sc in zip(np.ravel(terms.values), exact, np.ravel(terms.scale), strict=True):
        with mp.workdps(DPS):
            err = abs(mpf(float(v)) - e) / (EPS * max(mpf(float(sc)), mpf(2.0**-1022)))
        assert err <= 2, f"{float(err):.3g} ulps of the scale: reference {v!r}, exact {mp.nstr(e, 20)}; {case}"
    if all(p_is_y == 0 for p_is_y in np.ravel(R.overlap_kinks(_as_example(x, y, from_logits, batch), 0.0))):
        hard = np.isin(y, (0.0, 1.0)).all()
        if hard:  # the same value for hard targets
            product = np.ravel(R.tversky_loss(x, y, alpha, beta, **kw))
            assert np.allclose(np.ravel(terms.values), product, rtol=1e-12, atol=1e-300)


def _as_example(x, y, from_logits, batch):
    from lossguard.harness.kernel.model import Example

    return Example({"input": x, "target": y}, {"from_logits": from_logits, "batch": batch, "intersection": "min"})


@SETTINGS
@given(binary_cases())
@example(case=(np.array([[[[0.3, -2.0]]]]), np.array([[[[0.5, 1.0]]]]), True, 1.0, False))
def test_min_intersection_gradient(case):
    """Central differences of the literal min-intersection Tversky (alpha 0.3, beta 0.7) against the reference
    gradient, relative to its scale, away from its kinks (p = y, where any one-sided derivative is accepted)."""
    x, y, from_logits, smooth, batch = case
    m = int(np.prod(x.shape[2:])) * (x.shape[0] if batch else 1)
    kw = {"smooth": smooth, "from_logits": from_logits, "batch": batch, "reduction": "sum", "intersection": "min"}
    grad = R.tversky_loss.grad(x, y, 0.3, 0.7, **kw)
    p = 1.0 / (1.0 + np.exp(-x)) if from_logits else x
    for name in ("input", "target"):
        array = x if name == "input" else y
        for index in list(np.ndindex(x.shape))[:4]:
            if abs(p[index] - y[index]) <= 1e-6:
                continue  # a kink of min(p, y): the reference takes the mean of both sides (torch's subgradient)

            def along(v, name=name, index=index):
                args = {"input": x.astype(object), "target": y.astype(object)}
                args[name][index] = v
                return mp.fsum(_min_tversky(args["input"], args["target"], 0.3, 0.7, smooth, from_logits, batch))

            g = grad[name]
            check_derivative(
                float(g.value[index]),
                along,
                [float(array[index])],
                0,
                m + 8,
                scale=float(g.scale[index]),
                extent=max(float(np.max(np.abs(array))), 1.0),
                what=(name, index, case),
            )


@SETTINGS
@given(
    st.integers(1, 2).flatmap(
        lambda n: st.tuples(
            hnp.arrays(np.float64, (n, 3, 2), elements=LOGITS),
            hnp.arrays(np.int64, (n, 2), elements=st.integers(0, 2)),
        )
    ),
    SMOOTH,
    st.booleans(),
)
def test_multiclass_dice_variants(arrays, smooth, batch):
    """smooth_counted='twice' (Dice(2 s) per class) and empty='zero' (an absent class scores 0) against the literal
    per-class Dice of softmax(z) at 50 digits (relative; the softmax's own error is in the canonical bound)."""
    z, t = arrays
    kw = {"smooth": smooth, "batch": batch, "reduction": "none"}
    value = np.ravel(R.multiclass_dice_loss(z, t, smooth_counted="twice", empty="zero", **kw))
    with mp.workdps(DPS):
        rows = [[mp.exp(mpf(float(v))) for v in z[i, :, j]] for i in range(z.shape[0]) for j in range(z.shape[2])]
        probs = [[e / mp.fsum(row) for e in row] for row in rows]
        rest = [[(mp.fsum(row) - e) / mp.fsum(row) for e in row] for row in rows]  # 1 - p, exact at 50 digits
        exact = []
        for group in range(1 if batch else z.shape[0]):
            for c in range(z.shape[1]):
                pixels = [(i, j) for i in range(z.shape[0]) for j in range(z.shape[2]) if batch or i == group]
                ps = [probs[i * z.shape[2] + j][c] for i, j in pixels]
                qs = [rest[i * z.shape[2] + j][c] for i, j in pixels]
                ys = [mpf(int(t[i, j] == c)) for i, j in pixels]
                if sum(ys) == 0:
                    exact.append(mp.zero)
                    continue
                tp = mp.fsum(p * y for p, y in zip(ps, ys, strict=True))
                wrong = mp.fsum(p * (1 - y) for p, y in zip(ps, ys, strict=True))
                wrong += mp.fsum(q * y for q, y in zip(qs, ys, strict=True))
                # 1 - (2 TP + 2 s) / (sum p + sum y + 2 s), without its cancellation: (FP + FN) / (2 TP + FP + FN + 2 s)
                exact.append(wrong / (2 * tp + wrong + 2 * mpf(smooth)))
    for v, e in zip(value, exact, strict=True):
        if e == 0:
            assert v == 0.0
            continue
        with mp.workdps(DPS):
            err = abs(mpf(float(v)) - e) / (EPS * abs(e))
        assert err <= 64, f"{float(err):.3g} ulps: reference {v!r}, exact {mp.nstr(e, 20)}"


def _mp_pooled_dice(z, t, smooth, ignore_index, batch, pooling) -> list:
    """kornia's conventions at 50 digits: eps in the denominator only, 1 - 2 TP / (sum p + sum y + s); 'classes'
    pools every class of a group (a sample, or the batch) into one Dice, 'present' averages the per-class losses
    over the classes present in the group's valid target (1 without a valid pixel)."""
    n, c, w = z.shape
    groups = [list(range(n))] if batch else [[i] for i in range(n)]
    probs = {}
    for i in range(n):
        for j in range(w):
            row = [mp.exp(mpf(v)) for v in z[i, :, j]]
            probs[i, j] = [e / mp.fsum(row) for e in row]
    exact = []
    for samples in groups:
        pixels = [(i, j) for i in samples for j in range(w) if ignore_index is None or t[i, j] != ignore_index]

        def sums(classes, pixels=pixels):
            tp = mp.fsum(probs[i, j][k] for i, j in pixels for k in classes if t[i, j] == k)
            return tp, mp.fsum(probs[i, j][k] + (t[i, j] == k) for i, j in pixels for k in classes)

        if pooling == "classes":
            tp, card = sums(range(c))
            exact.append(1 - 2 * tp / (card + mpf(smooth)))
            continue
        present = [k for k in range(c) if any(t[i, j] == k for i, j in pixels)]
        losses = [1 - 2 * tp / (card + mpf(smooth)) for tp, card in (sums([k]) for k in present)]
        exact.append(mp.fsum(losses) / len(losses) if losses else mp.one)
    return exact


@SETTINGS
@given(
    st.integers(1, 2).flatmap(
        lambda n: st.tuples(
            hnp.arrays(np.float64, (n, 3, 2), elements=LOGITS),
            hnp.arrays(np.int64, (n, 2), elements=st.integers(-1, 2), fill=st.nothing()),  # no repeated fill
        )
    ),
    SMOOTH,
    st.booleans(),
    st.sampled_from(["classes", "present"]),
)
@example(arrays=(np.zeros((1, 3, 2)), np.full((1, 2), -1)), smooth=1.0, batch=False, pooling="present")
def test_multiclass_dice_pooling_and_denominator_smoothing(arrays, smooth, batch, pooling):
    """smoothing='denominator' with pooling='classes' (kornia's 'micro') and 'present' (kornia's 'macro'), label -1
    ignored, against the literal formulas at 50 digits: within 64 units of roundoff of the value (a loss that
    cancels below 1e-3 of its terms judged absolutely, at the scale the reference reports)."""
    z, t = arrays
    kw = {"smooth": smooth, "ignore_index": -1, "batch": batch, "reduction": "none"}
    terms = R.multiclass_dice_loss.terms(z, t, smoothing="denominator", pooling=pooling, **kw)
    value, scale = np.ravel(terms.values), np.ravel(terms.scale)
    exact = _mp_pooled_dice(z, t, smooth, -1, batch, pooling)
    assert value.shape == (len(exact),)
    for v, s, e in zip(value, scale, exact, strict=True):
        with mp.workdps(DPS):
            err = abs(mpf(float(v)) - e) / (EPS * max(abs(e), mpf(float(s))))
        assert err <= 64, f"{float(err):.3g} ulps: reference {v!r}, exact {mp.nstr(e, 20)}"


@SETTINGS
@given(
    st.integers(1, 2).flatmap(
        lambda n: st.tuples(
            hnp.arrays(np.float64, (n, 3, 2), elements=st.floats(-4.0, 4.0, width=32)),
            hnp.arrays(np.int64, (n, 2), elements=st.integers(-1, 2), fill=st.nothing()),  # no repeated fill
        )
    ),
    SMOOTH,
    st.booleans(),
    st.sampled_from(["classes", "present"]),
)
def test_multiclass_dice_pooling_gradient(arrays, smooth, batch, pooling):
    """The gradient of the summed 'none' values under smoothing='denominator' and each pooling against mpmath's
    derivative of ``_mp_pooled_dice`` (0 for a sample without a valid pixel: its value is the constant 1)."""
    z, t = arrays
    kw = {"smooth": smooth, "ignore_index": -1, "batch": batch, "reduction": "none"}
    grad = R.multiclass_dice_loss.grad(z, t, smoothing="denominator", pooling=pooling, **kw)["input"]
    for index in list(np.ndindex(z.shape))[:6]:

        def along(v, index=index):
            moved = z.astype(object)
            moved[index] = v
            return mp.fsum(_mp_pooled_dice(moved, t, smooth, -1, batch, pooling))

        check_derivative(
            float(grad.value[index]),
            along,
            [float(z[index])],
            0,
            64,
            scale=float(grad.scale[index]),
            extent=max(float(np.max(np.abs(z))), 1.0),
            what=(index, arrays, pooling),
        )
