"""Float64 references of the segmentation losses (Dice, Jaccard, Tversky, their compositions, boundary).

Input ``(N, C, *)``; ``p = sigmoid(input)`` when ``from_logits`` (else ``input`` is p). For each
(sample, channel) the sums run over the spatial dims ``*`` (and over the batch too when
``batch=True``: one value per channel); ``reduction`` then acts on those values.

Every overlap loss is evaluated in one cancellation-free form. With TP = sum(p y),
FP = sum(p (1 - y)), FN = sum((1 - p) y), each a sum of non-negative terms, and ``1 - p`` formed as
``sigmoid(-z)`` (logits) so that it is relatively accurate,

    Tversky(alpha, beta, s) = 1 - (TP + s) / (TP + alpha FP + beta FN + s)
                            = (alpha FP + beta FN) / (TP + alpha FP + beta FN + s)     (Salehi et al. 2017)

and, since sum p + sum y - 2 sum(p y) = FP + FN exactly (also for soft targets),

    Dice(s)    = 1 - (2 TP + s) / (sum p + sum y + s) = (FP + FN) / (2 TP + FP + FN + s) = Tversky(1/2, 1/2, s/2)
    Jaccard(s) = 1 - (TP + s) / (sum p + sum y - TP + s) = (FP + FN) / (TP + FP + FN + s) = Tversky(1, 1, s)

(Milletari et al. 2016 for Dice; Rahman & Wang 2016 for the soft Jaccard). Scaling by 1/2 is exact in
binary floating point, so the references of the three losses agree bit for bit on these identities.

Error scale (see ``lossguard.reference._core``). An implementation computing the literal ``1 - r`` with
``r = (TP + s) / B`` from float sums of m terms has an absolute error of at most about
``u |v| + r (2 (m - 1) + 12) u`` (sums of non-negative terms: (m - 1) u relative each, Higham eq. 4.4;
sigmoid and 1 - p: 4u; products, the additions of the smoothing and the division: 6u). Against the
tolerance's K = 8 roundings that is covered by the scale ``|v| + r (m + 1)``. The gradient pieces are
handled the same way, ``(m + 2)`` times the sum of the magnitudes of their terms. For the softmax of
multiclass Dice, p_c = exp(z_c - max) / sum has an absolute error of about
``u p_c (|z_c - max| + C + 3)`` (not relative to p_c): its effect through ``|d v / d p|`` joins the scale.

Variants (keywords of the references, each a convention a library documents; the canonical choice first):

* ``smooth_counted`` (Dice, multiclass Dice, Jaccard): ``'once'``, the definitions above; ``'twice'``, Dice
  taken as Tversky(1/2, 1/2, s) = ``(TP + s) / (TP + (FP + FN) / 2 + s)``, the smoothing counted twice against
  ``2 TP`` (segmentation_models_pytorch: Dice(2 s)); ``'half'``, Jaccard taken with Dice's doubled counts,
  ``(2 TP + s) / (2 (TP + FP + FN) + s)`` (MONAI's ``DiceLoss(jaccard=True)``: Jaccard(s / 2)).
* ``empty`` (Dice, multiclass Dice, Jaccard, Tversky): ``'scored'``, every channel as defined; ``'zero'``, a
  channel whose target is empty (sums to 0 over the summed axes) contributes 0, value and gradients
  (segmentation_models_pytorch: "we set the contribution of any channel without true pixels to zero").
* ``intersection`` (Dice, Jaccard, Tversky): ``'product'``, TP = sum(p y); ``'min'``, TP = sum(min(p, y)) =
  (sum p + sum y - |p - y|_1) / 2, FP = sum(max(p - y, 0)), FN = sum(max(y - p, 0)) (Wang et al. 2023, "Dice
  Semimetric Losses", segmentation_models_pytorch): the same value for hard targets, another for soft ones, and
  other derivatives (min is not differentiable where p = y: a kink, ``overlap_kinks``). An implementation forms
  TP from the three sums: TP, FP and FN carry about (2 m + 10) u (sum p + sum y) each, the cancellation of
  ``P + Y - D``, which joins the scale (``tversky_terms``' ``spread``).
* ``smoothing`` (multiclass Dice): ``'both'``, the smoothing in the numerator and the denominator as defined;
  ``'denominator'``, ``1 - 2 TP / (sum p + sum y + s)`` = ``(FP + FN + s) / (2 TP + FP + FN + s)``: an ``eps``
  that only guards the division (kornia's ``dice_loss``). A class with an empty target and no predicted mass then
  scores 1, not 0.
* ``pooling`` (multiclass Dice): ``'none'``, a Dice per (sample, class), 'none' (N, C); ``'classes'``, one Dice per
  sample whose sums run over every class and pixel (kornia's ``average='micro'``), 'none' (N,); ``'present'``, per
  sample the mean of the per-class losses over the classes present in its (non-ignored) target, 1 for a sample
  without a valid pixel (kornia's ``average='macro'``), 'none' (N,). With ``batch`` each is one value, 'none' ().
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
from scipy.ndimage import distance_transform_edt

from lossguard.reference import classification as C
from lossguard.reference._core import Gradient, Terms, loss_reference, sigmoid

# --- shared pieces ------------------------------------------------------------------------------


class Confusion(NamedTuple):
    """Soft confusion sums per (sample, channel) (or per channel with batch), kept with summed axes."""

    tp: np.ndarray
    fp: np.ndarray
    fn: np.ndarray
    count: int  # m: the number of terms in each sum


def _axes(ndim: int, batch: bool) -> tuple[int, ...]:
    """The summed axes of an (N, C, *) array: the spatial ones, and the batch with ``batch=True``."""
    return ((0,) if batch else ()) + tuple(range(2, ndim))


def probabilities(input, from_logits: bool) -> tuple[np.ndarray, np.ndarray]:
    """(p, 1 - p): sigmoid(z) and sigmoid(-z) for logits (both relatively accurate), else (x, 1 - x)."""
    x = np.asarray(input, dtype=np.float64)
    return (sigmoid(x), sigmoid(-x)) if from_logits else (x, 1.0 - x)


def confusion(
    p: np.ndarray, q: np.ndarray, y: np.ndarray, batch: bool, factor: float = 1.0, intersection: str = "product"
) -> Confusion:
    """TP = sum(p y), FP = sum(p (1 - y)), FN = sum((1 - p) y) over the summed axes (keepdims), each times
    ``factor`` (a power of two, applied to one factor of every product: exact, see :func:`_binary`).
    ``intersection='min'``: TP = sum(min(p, y)), FP = sum(max(p - y, 0)), FN = sum(max(y - p, 0)), with
    y - p formed as (y - 1) + (1 - p) where y >= 1/2 (exact for a hard target: 1 - p accurate)."""
    axes = _axes(p.ndim, batch)
    count = int(np.prod([p.shape[a] for a in axes])) if axes else 1

    def total(v: np.ndarray) -> np.ndarray:
        return np.sum(v, axis=axes, keepdims=True)

    p_f, y_f = p * factor, y * factor
    if intersection == "min":
        excess = np.where(y >= 0.5, (y - 1.0) + q, y - p) * factor  # y - p, times factor
        return Confusion(
            total(np.minimum(p_f, y_f)), total(np.maximum(-excess, 0.0)), total(np.maximum(excess, 0.0)), count
        )
    return Confusion(total(p_f * y), total(p_f * (1.0 - y)), total(q * y_f), count)


SMOOTH_COUNTED = {"once": 1.0, "twice": 2.0, "half": 0.5}  # the factor on smooth
EMPTY = ("scored", "zero")
INTERSECTIONS = ("product", "min")


def _check_variants(smooth_counted: str = "once", empty: str = "scored", intersection: str = "product") -> float:
    """The factor ``smooth_counted`` puts on smooth; a ValueError for an unknown variant."""
    if smooth_counted not in SMOOTH_COUNTED:
        raise ValueError(f"smooth_counted must be one of {tuple(SMOOTH_COUNTED)}, got {smooth_counted!r}")
    if empty not in EMPTY:
        raise ValueError(f"empty must be one of {EMPTY}, got {empty!r}")
    if intersection not in INTERSECTIONS:
        raise ValueError(f"intersection must be one of {INTERSECTIONS}, got {intersection!r}")
    return SMOOTH_COUNTED[smooth_counted]


UNDERFLOW_GUARD = 2.0**600  # _binary's common factor of the confusion sums and smooth (inputs up to 2^100)


def _squeeze(v: np.ndarray, batch: bool) -> np.ndarray:
    """(1 or N, C, 1, ...) -> (C,) with batch, else (N, C)."""
    v = v.reshape(v.shape[:2])
    return v[0] if batch else v


def _ratio(k: Confusion, alpha: float, beta: float, smooth: float, numerator_smooth: bool = True):
    """(A, B, T) with v = A / B and 1 - v = T / B, B = TP + alpha FP + beta FN + s: A = alpha FP + beta FN and
    T = TP + s; without ``numerator_smooth`` (``smoothing='denominator'``) A = alpha FP + beta FN + s and T = TP.
    Each is a sum of non-negative terms: no cancellation."""
    a = alpha * k.fp + beta * k.fn
    b = k.tp + a + smooth
    return (a, b, k.tp + smooth) if numerator_smooth else (a + smooth, b, k.tp)


def tversky_terms(
    k: Confusion,
    alpha: float,
    beta: float,
    smooth: float,
    spread: np.ndarray | None = None,
    numerator_smooth: bool = True,
) -> tuple[np.ndarray, np.ndarray]:
    """(value, scale) with summed axes kept: v = (a FP + b FN) / (TP + a FP + b FN + s), scale |v| + r (m + 1).

    ``spread``: sum p + sum y, for TP formed as (sum p + sum y - |p - y|_1) / 2 (``intersection='min'``): TP, FP
    and FN then carry about (2 m + 10) u spread each, which reaches v as (2 m + 10) u spread (A + (alpha + beta)
    (TP + s)) / B^2 (dv/dTP = -A / B^2, dv/dFP = alpha (TP + s) / B^2, ...): the scale adds (m + 5) times that
    quotient (K = 8 roundings cover it). ``numerator_smooth``: ``_ratio``."""
    a, b, t = _ratio(k, alpha, beta, smooth, numerator_smooth)
    with np.errstate(invalid="ignore", divide="ignore"):
        value = a / b
        r = t / b
        scale = np.abs(value) + np.abs(r) * (k.count + 1)
        if spread is not None:
            scale = scale + (k.count + 5) * (spread / b) * ((a + (alpha + beta) * t) / b)
    return value, scale


def tversky_slopes(k: Confusion, p, q, y, alpha, beta, smooth, numerator_smooth=True) -> tuple[np.ndarray, ...]:
    """(dv/dp, its scale, dv/dy, its scale, the scale of dv/dp's part through 1 - p), per element.

    For v = A / B of :func:`tversky_terms`:

    dv/dTP = -A / B^2, dv/dFP = alpha (TP + s) / B^2, dv/dFN = beta (TP + s) / B^2 (no cancellation), so
    dv/dp = [-y A + alpha (1 - y)(TP + s) - beta y (TP + s)] / B^2 and
    dv/dy = [-p A - alpha p (TP + s) + beta (1 - p)(TP + s)] / B^2. The scales add the magnitudes of the
    terms of the forms an implementation may differentiate, each with the sums' (m - 1) u relative error:
    the literal ``1 - (TP + s) / B`` gives ``-y / B + (TP + s) / B^2`` terms, the quotient ``A / B`` gives
    ``1 / B - A / B^2`` per FP and FN (which cancels to ``(TP + s) / B^2``). The last value,
    ``beta y (B + A + TP + s) / B^2``, is the magnitude of the part of dv/dp that an implementation forms through
    ``1 - p`` (FN), whose logit derivative is then formed from ``1 - (1 - p)`` (see :func:`_binary_grad`).
    Without ``numerator_smooth`` (``_ratio``) the same forms hold with that A and T = B - A = TP.
    """
    a, b, t = _ratio(k, alpha, beta, smooth, numerator_smooth)
    with np.errstate(invalid="ignore", divide="ignore"):
        b2 = b * b
        d_p = (-y * a + alpha * (1.0 - y) * t - beta * y * t) / b2
        d_y = (-p * a - alpha * p * t + beta * q * t) / b2
        # an implementation differentiating A / B forms dv/dFP = alpha (1/B - A/B^2): terms of B + A over B^2
        spread = b + a + t
        s_p = (np.abs(y) * (a + b) + (alpha * np.abs(1.0 - y) + beta * np.abs(y)) * spread) / b2 * (k.count + 2)
        s_y = (p * (a + b) + (alpha * p + beta * q) * spread) / b2 * (k.count + 2)
        through_q = beta * np.abs(y) * spread / b2
    return d_p, s_p, d_y, s_y, through_q


def min_slopes(k: Confusion, p, y, alpha, beta, smooth, spread, numerator_smooth=True) -> tuple[np.ndarray, ...]:
    """(dv/dp, its scale, dv/dy, its scale) of :func:`tversky_terms` with TP = sum(min(p, y)) (``'min'``).

    Where p < y, p moves TP up and FN down: dv/dp = -(A + beta (TP + s)) / B^2, dv/dy = beta (TP + s) / B^2;
    where p > y, p moves FP: dv/dp = alpha (TP + s) / B^2, dv/dy = -(A + alpha (TP + s)) / B^2. Where p = y min is
    not differentiable (a kink: ``overlap_kinks``; the mean of both sides here, torch's subgradient). Scale: the
    terms' magnitudes over B^2 times (m + 2), as :func:`tversky_slopes`, and the sums' cancellation (see
    :func:`tversky_terms`) through A, TP + s and B: (m + 5) spread (1 + alpha + beta)^2 / B^2. Without
    ``numerator_smooth``, A and T as ``_ratio`` forms them."""
    a, b, t = _ratio(k, alpha, beta, smooth, numerator_smooth)
    with np.errstate(invalid="ignore", divide="ignore"):
        b2 = b * b
        below_p, below_y = -(a + beta * t) / b2, beta * t / b2
        above_p, above_y = alpha * t / b2, -(a + alpha * t) / b2
        d_p = np.where(p < y, below_p, np.where(p > y, above_p, (below_p + above_p) / 2))
        d_y = np.where(p < y, below_y, np.where(p > y, above_y, (below_y + above_y) / 2))
        terms = (a + (alpha + beta) * (b + a + t)) / b2 * (k.count + 2)
        cancel = (k.count + 5) * spread * (1.0 + alpha + beta) ** 2 / b2
    scale = np.broadcast_to(terms + cancel, np.broadcast_shapes(np.shape(p), np.shape(terms)))
    return d_p, scale, d_y, scale


def _check_parameters(smooth: float, alpha: float = 0.0, beta: float = 0.0) -> None:
    if smooth < 0:
        raise ValueError(f"smooth must be non-negative, got {smooth!r}")
    if alpha < 0 or beta < 0:
        raise ValueError(f"alpha and beta must be non-negative, got {alpha!r} and {beta!r}")


def _summed(v: np.ndarray, batch: bool) -> np.ndarray:
    """v summed over the axes the confusion sums run over (keepdims)."""
    return np.sum(v, axis=_axes(np.ndim(v), batch), keepdims=True)


def _binary(input, target, alpha, beta, smooth, from_logits, batch, empty="scored", intersection="product") -> Terms:
    """(alpha FP + beta FN) / (TP + alpha FP + beta FN + s) per (sample, channel), with the variants ``empty``
    and ``intersection`` (module docstring)."""
    _check_parameters(smooth, alpha, beta)
    _check_variants(empty=empty, intersection=intersection)
    p, q = probabilities(input, from_logits)
    y = np.asarray(target, dtype=np.float64)
    if p.shape != y.shape or p.ndim < 2:
        raise ValueError(f"input and target must have one (N, C, *) shape, got {p.shape} and {y.shape}")
    # The value is a ratio (alpha FP + beta FN) / (TP + alpha FP + beta FN + s), invariant under a common factor
    # of the sums and s: taken at 2^600 times them, products of a subnormal target (or probability) with an
    # O(1) factor stay normal instead of rounding to the subnormal grid, an absolute error that the division by
    # s (>= 1e-5) would magnify (y = 5e-324: 0.5 FN rounded to 0 where the exact value is 2.5e-319).
    big = max(float(np.max(np.abs(p), initial=0.0)), float(np.max(np.abs(y), initial=0.0)), smooth)
    factor = UNDERFLOW_GUARD if big <= 2.0**100 else 1.0
    spread = (_summed(p, batch) + _summed(y, batch)) * factor if intersection == "min" else None
    k = confusion(p, q, y, batch, factor, intersection)
    value, scale = tversky_terms(k, alpha, beta, smooth * factor, spread)
    if empty == "zero":
        scored = _summed(y, batch) > 0
        value, scale = np.where(scored, value, 0.0), np.where(scored, scale, 0.0)
    return Terms(_squeeze(value, batch), _squeeze(scale, batch))


def _binary_grad(
    input, target, alpha, beta, smooth, from_logits, batch, empty="scored", intersection="product"
) -> dict[str, Gradient]:
    """Gradients of the sum of the (sample, channel) values; logits chain through dp/dz = p (1 - p).

    The scale of d/dz: torch's sigmoid backward forms p (1 - p) from the rounded p, so ``1 - p`` carries an
    absolute error of about u (relative u / (1 - p)): the error is about u |dv/dp| p, not u |dv/dp| p (1 - p);
    likewise u |dv/d(1 - p)| (1 - p) for the part through sigmoid(-z). Both terms join the scale.
    """
    p, q = probabilities(input, from_logits)
    y = np.asarray(target, dtype=np.float64)
    k = confusion(p, q, y, batch, intersection=intersection)
    if intersection == "min":
        d_p, s_p, d_y, s_y = min_slopes(k, p, y, alpha, beta, smooth, _summed(p, batch) + _summed(y, batch))
        through_q = np.zeros_like(d_p)
    else:
        d_p, s_p, d_y, s_y, through_q = tversky_slopes(k, p, q, y, alpha, beta, smooth)
    if empty == "zero":  # an empty channel's loss is 0 whatever p and y: its gradients are 0
        scored = _summed(y, batch) > 0
        d_p, s_p, d_y, s_y = (np.where(scored, v, 0.0) for v in (d_p, s_p, d_y, s_y))
        through_q = np.where(scored, through_q, 0.0)
    if from_logits:
        d_p, s_p = d_p * p * q, s_p * p * q + s_p / (k.count + 2) * p + through_q * q
    return {"input": Gradient(d_p, s_p), "target": Gradient(d_y, s_y)}


# --- Dice, Jaccard, Tversky ------------------------------------------------------------------------


@loss_reference
def dice_loss(
    input,
    target,
    smooth=1.0,
    from_logits=True,
    batch=False,
    reduction="mean",
    smooth_counted="once",
    empty="scored",
    intersection="product",
) -> Terms:
    """1 - (2 sum(p y) + smooth) / (sum p + sum y + smooth) per (sample, channel) (Milletari et al. 2016),
    evaluated as (FP + FN) / (2 TP + FP + FN + smooth); 'none' is (N, C), or (C,) with ``batch``. Variants
    ``smooth_counted`` ('twice': Dice(2 smooth)), ``empty``, ``intersection`` (module docstring)."""
    factor = _check_variants(smooth_counted, empty, intersection)
    return _binary(input, target, 0.5, 0.5, 0.5 * smooth * factor, from_logits, batch, empty, intersection)


@dice_loss.gradient("input", "target")
def _dice_grad(
    input,
    target,
    smooth=1.0,
    from_logits=True,
    batch=False,
    reduction="mean",
    smooth_counted="once",
    empty="scored",
    intersection="product",
):
    factor = _check_variants(smooth_counted, empty, intersection)
    return _binary_grad(input, target, 0.5, 0.5, 0.5 * smooth * factor, from_logits, batch, empty, intersection)


@loss_reference
def jaccard_loss(
    input,
    target,
    smooth=1.0,
    from_logits=True,
    batch=False,
    reduction="mean",
    smooth_counted="once",
    empty="scored",
    intersection="product",
) -> Terms:
    """1 - (sum(p y) + smooth) / (sum p + sum y - sum(p y) + smooth) (soft IoU, Rahman & Wang 2016),
    evaluated as (FP + FN) / (TP + FP + FN + smooth). Variants ``smooth_counted`` ('half': Jaccard(smooth / 2)),
    ``empty``, ``intersection`` (module docstring)."""
    factor = _check_variants(smooth_counted, empty, intersection)
    return _binary(input, target, 1.0, 1.0, smooth * factor, from_logits, batch, empty, intersection)


@jaccard_loss.gradient("input", "target")
def _jaccard_grad(
    input,
    target,
    smooth=1.0,
    from_logits=True,
    batch=False,
    reduction="mean",
    smooth_counted="once",
    empty="scored",
    intersection="product",
):
    factor = _check_variants(smooth_counted, empty, intersection)
    return _binary_grad(input, target, 1.0, 1.0, smooth * factor, from_logits, batch, empty, intersection)


@loss_reference
def tversky_loss(
    input,
    target,
    alpha=0.5,
    beta=0.5,
    smooth=1.0,
    from_logits=True,
    batch=False,
    reduction="mean",
    empty="scored",
    intersection="product",
) -> Terms:
    """1 - (TP + smooth) / (TP + alpha FP + beta FN + smooth) (Salehi et al. 2017), alpha, beta >= 0,
    evaluated as (alpha FP + beta FN) / (TP + alpha FP + beta FN + smooth). Variants ``empty``,
    ``intersection`` (module docstring)."""
    return _binary(input, target, alpha, beta, smooth, from_logits, batch, empty, intersection)


@tversky_loss.gradient("input", "target")
def _tversky_grad(
    input,
    target,
    alpha=0.5,
    beta=0.5,
    smooth=1.0,
    from_logits=True,
    batch=False,
    reduction="mean",
    empty="scored",
    intersection="product",
):
    _check_variants(empty=empty, intersection=intersection)
    return _binary_grad(input, target, alpha, beta, smooth, from_logits, batch, empty, intersection)


def overlap_kinks(example, eps: float) -> np.ndarray:
    """The (sample, channel) values (or channels, with ``batch``) of an overlap loss whose min(p, y) meets its
    kink p = y within a few roundings (8 eps) at some pixel, under ``intersection='min'``; none otherwise.
    A mask over the 'none' output (``LossSpec.kinks``)."""
    args, params = example.args, example.params
    batch = bool(params.get("batch", False))
    shape = np.shape(args["input"])
    if params.get("intersection", "product") != "min":
        return np.zeros(shape[1:2] if batch else shape[:2], dtype=bool)
    p, _ = probabilities(args["input"], params.get("from_logits", True))
    y = np.asarray(args["target"], dtype=np.float64)
    near = (np.abs(p - y) <= 8.0 * eps * np.maximum(1.0, np.abs(y))).astype(np.float64)
    return _squeeze(_summed(near, batch), batch) > 0


# --- multiclass Dice ------------------------------------------------------------------------------


def _softmax(input) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(p, 1 - p, absolute error of p in units of u) along axis 1.

    p = exp(z - max) / sum; 1 - p = (sum of the other exponentials) / sum, summed directly (no cancellation
    for the largest class); p's error is about u p (|z - max| + C + 3), at most u (C + 4) in absolute terms.
    """
    z = np.asarray(input, dtype=np.float64)
    shifted = z - np.max(z, axis=1, keepdims=True)
    e = np.exp(shifted)
    total = np.sum(e, axis=1, keepdims=True)
    others = np.einsum("kc,nc...->nk...", 1.0 - np.eye(z.shape[1]), e)
    return e / total, others / total, e / total * (np.abs(shifted) + z.shape[1] + 3)


def _multiclass_parts(input, target, ignore_index):
    """(p, 1 - p, one-hot y, p's error, valid pixel mask (N, 1, *)), p and 1 - p zero at ignored pixels."""
    z = np.asarray(input, dtype=np.float64)
    t = np.asarray(target)
    if z.ndim < 2 or t.shape != (z.shape[0], *z.shape[2:]):
        raise ValueError(f"target must be (N, *) class indices for input (N, C, *), got {t.shape} and {z.shape}")
    n_classes = z.shape[1]
    valid = np.ones(t.shape, dtype=bool) if ignore_index is None else t != ignore_index
    if np.any((t[valid] < 0) | (t[valid] >= n_classes)):
        raise IndexError(f"class index out of range [0, {n_classes})")
    keep = valid[:, None]
    y = np.moveaxis(np.eye(n_classes)[np.where(valid, t, 0)], -1, 1) * keep
    p, q, error = _softmax(z)
    return p * keep, q * keep, y, error * keep, keep


SMOOTHING = ("both", "denominator")
POOLING = ("none", "classes", "present")


def _check_multiclass_variants(smoothing: str, pooling: str, empty: str, intersection: str) -> None:
    """A ValueError for an unknown ``smoothing`` or ``pooling``, or one combined with a per-class variant it does
    not define (``empty`` and ``intersection='min'`` are per-class conventions of another library)."""
    if smoothing not in SMOOTHING:
        raise ValueError(f"smoothing must be one of {SMOOTHING}, got {smoothing!r}")
    if pooling not in POOLING:
        raise ValueError(f"pooling must be one of {POOLING}, got {pooling!r}")
    if pooling != "none" and (empty != "scored" or intersection != "product"):
        raise ValueError(f"pooling={pooling!r} is defined with empty='scored' and intersection='product' only")


def _pool_classes(k: Confusion, n_classes: int) -> Confusion:
    """``pooling='classes'``: the confusion sums of every class of a sample added into one (keepdims)."""
    total = [np.sum(v, axis=1, keepdims=True) for v in (k.tp, k.fp, k.fn)]
    return Confusion(*total, k.count * n_classes)


def _present_weights(y: np.ndarray, batch: bool) -> tuple[np.ndarray, np.ndarray]:
    """``pooling='present'``: (1 / (classes present) where a class is present in the summed target, else 0;
    whether the sample has any present class), keepdims (N or 1, C, 1...) and (N or 1, 1, 1...)."""
    present = _summed(y, batch) > 0
    count = np.sum(present, axis=1, keepdims=True)
    with np.errstate(divide="ignore"):
        return np.where(present, 1.0 / np.maximum(count, 1), 0.0), count > 0


def _squeeze_samples(v: np.ndarray, batch: bool) -> np.ndarray:
    """(1 or N, 1, 1, ...) -> () with batch, else (N,): a pooled value per sample."""
    v = v.reshape(v.shape[:1])
    return v[0] if batch else v


@loss_reference
def multiclass_dice_loss(
    input,
    target,
    smooth=1.0,
    ignore_index=None,
    batch=False,
    reduction="mean",
    smooth_counted="once",
    empty="scored",
    intersection="product",
    smoothing="both",
    pooling="none",
) -> Terms:
    """Dice per class of softmax(input) against the one-hot target indices; pixels whose target is
    ``ignore_index`` take no part in any sum. 'none' is (N, C) (or (C,) with ``batch``), so 'mean' is the
    mean over classes and samples (Sudre et al. 2017 without class weights). Variants ``smooth_counted``,
    ``empty`` (a class absent from the target: 0), ``intersection`` (the same value for one-hot targets; its
    cancellation in the scale, a kink where p rounds to the target: ``multiclass_kinks``), ``smoothing``
    (kornia's eps in the denominator only) and ``pooling`` (kornia's 'micro' and 'macro': a value per sample),
    module docstring. With 'present' a sample's value is the mean of its present classes' values: its scale
    is their scales' mean (the division by the count is one more rounding, within |v|)."""
    _check_parameters(smooth)
    smooth = smooth * _check_variants(smooth_counted, empty, intersection)
    _check_multiclass_variants(smoothing, pooling, empty, intersection)
    p, q, y, error, _ = _multiclass_parts(input, target, ignore_index)
    k = confusion(p, q, y, batch, intersection=intersection)
    if pooling == "classes":
        k = _pool_classes(k, p.shape[1])
    both = smoothing == "both"
    spread = _summed(p, batch) + _summed(y, batch) if intersection == "min" else None
    value, scale = tversky_terms(k, 0.5, 0.5, 0.5 * smooth, spread, numerator_smooth=both)
    _, s_p, _, _, _ = tversky_slopes(k, p, q, y, 0.5, 0.5, 0.5 * smooth, numerator_smooth=both)
    pooled_axes = (1, *_axes(p.ndim, batch)) if pooling == "classes" else _axes(p.ndim, batch)
    scale = scale + np.sum(s_p / (k.count + 2) * error, axis=pooled_axes, keepdims=True)
    if empty == "zero":
        scored = _summed(y, batch) > 0
        value, scale = np.where(scored, value, 0.0), np.where(scored, scale, 0.0)
    if pooling == "present":
        weights, any_present = _present_weights(y, batch)
        value = np.where(any_present, np.sum(weights * np.nan_to_num(value), axis=1, keepdims=True), 1.0)
        scale = np.where(any_present, np.sum(weights * np.nan_to_num(scale), axis=1, keepdims=True), 0.0)
    if pooling == "none":
        return Terms(_squeeze(value, batch), _squeeze(scale, batch))
    return Terms(_squeeze_samples(value, batch), _squeeze_samples(scale, batch))


@multiclass_dice_loss.gradient("input")
def _multiclass_dice_grad(
    input,
    target,
    smooth=1.0,
    ignore_index=None,
    batch=False,
    reduction="mean",
    smooth_counted="once",
    empty="scored",
    intersection="product",
    smoothing="both",
    pooling="none",
):
    """dv/dz_k = p_k (g_k - sum_c p_c g_c) with g = dv/dp per pixel (0 at ignored pixels), p = softmax(z): the
    gradient of the sum of the 'none' values. ``pooling='classes'``: g from the pooled sums (every class of a
    sample in one Dice); ``'present'``: each present class's g over the count of present classes, 0 for an
    absent class and for a sample without a valid pixel (its value is the constant 1).

    Scale: the error of g_k is at most s_g (tversky_slopes: its terms times the sums' (m + 2) roundings) plus the
    part p's own errors (relative E = |z - max| + C + 3, :func:`_softmax`) carry through the sums into g, at most
    s_g / (m + 2) times the largest E over the summed pixels; p_k's error multiplies |g_k - sum_c p_c g_c| by E_k.
    So scale_k = p_k (A_k + sum_c p_c A_c), A = s_g (1 + max E / (m + 2)) + |g| E. (It was
    p_k (s_g + sum p s_g) E: the product of the sums' and the softmax's counts, m C times the rounding a
    straightforward float32 evaluation makes, 0.019 of it at most on drawn inputs (tests/reference/
    test_scales_pinned.py); a doubled bfloat16 gradient passed.)"""
    smooth = smooth * _check_variants(smooth_counted, empty, intersection)
    _check_multiclass_variants(smoothing, pooling, empty, intersection)
    z = np.asarray(input, dtype=np.float64)
    p, q, y, _, keep = _multiclass_parts(z, target, ignore_index)
    k = confusion(p, q, y, batch, intersection=intersection)
    if pooling == "classes":
        k = _pool_classes(k, p.shape[1])
    both = smoothing == "both"
    if intersection == "min":
        spread = _summed(p, batch) + _summed(y, batch)
        g, s_g, _, _ = min_slopes(k, p, y, 0.5, 0.5, 0.5 * smooth, spread, numerator_smooth=both)
    else:
        g, s_g, _, _, _ = tversky_slopes(k, p, q, y, 0.5, 0.5, 0.5 * smooth, numerator_smooth=both)
    weight = keep
    if empty == "zero":  # an absent class's loss is 0 whatever the logits
        weight = weight * (_summed(y, batch) > 0)
    if pooling == "present":  # the mean over the present classes; an absent class's loss is not counted
        weight = weight * _present_weights(y, batch)[0]
    g, s_g = g * weight, s_g * weight
    p_all, _, _ = _softmax(z)
    d_z = p_all * (g - np.sum(p_all * g, axis=1, keepdims=True))
    shifted = z - np.max(z, axis=1, keepdims=True)
    e = (np.abs(shifted) + z.shape[1] + 3) * (weight > 0)
    e_max = np.max(e, axis=(1, *_axes(z.ndim, batch)), keepdims=True)
    a = s_g * (1.0 + e_max / (k.count + 2)) + np.abs(g) * e
    scale = p_all * (a + np.sum(p_all * a, axis=1, keepdims=True))
    return {"input": Gradient(d_z, scale)}


def multiclass_kinks(example, eps: float) -> np.ndarray:
    """Under ``intersection='min'``, the samples (every class of them: softmax couples the classes) whose
    softmax probability of the target class lies within 8 eps of 1 at some pixel, where min(p, 1) meets its
    kink; every class with ``batch`` (the 'none' output is then (C,)). A mask over the 'none' output (none under
    a ``pooling``, which is defined with the product intersection only: 'none' is then (N,), or () with batch)."""
    args, params = example.args, example.params
    batch = bool(params.get("batch", False))
    z = np.asarray(args["input"], dtype=np.float64)
    if params.get("pooling", "none") != "none":
        return np.zeros(() if batch else z.shape[:1], dtype=bool)
    if params.get("intersection", "product") != "min":
        return np.zeros(z.shape[1:2] if batch else z.shape[:2], dtype=bool)
    p, _, y, _, _ = _multiclass_parts(z, args["target"], params.get("ignore_index"))
    near = np.any((y > 0) & (p >= 1.0 - 8.0 * eps), axis=tuple(range(1, z.ndim)))  # (N,)
    if batch:
        return np.full(z.shape[1], bool(np.any(near)))
    return np.broadcast_to(near[:, None], z.shape[:2])


# --- compositions ---------------------------------------------------------------------------------


def _weighted_sum(parts) -> Terms:
    """sum_i w_i v_i of scalar losses, with scale sum_i |w_i| scale_i."""
    value = sum(w * float(v) for w, v, _ in parts)
    scale = sum(abs(w) * float(s) for w, _, s in parts) + abs(value)
    return Terms(np.asarray(value), np.asarray(scale))


@loss_reference
def bce_dice_loss(input, target, bce_weight=0.5, dice_weight=1.0, smooth=1.0) -> Terms:
    """bce_weight * binary_cross_entropy_with_logits(mean) + dice_weight * dice_loss(mean), from logits."""
    bce, dice = C.binary_cross_entropy_with_logits, dice_loss
    return _weighted_sum(
        [
            (bce_weight, bce(input, target), bce.error_scale(input, target)),
            (dice_weight, dice(input, target, smooth=smooth), dice.error_scale(input, target, smooth=smooth)),
        ]
    )


def _combine(parts) -> dict[str, Gradient]:
    names = parts[0][1].keys()
    return {
        name: Gradient(
            sum(w * g[name].value for w, g in parts if name in g), sum(abs(w) * g[name].scale for w, g in parts)
        )
        for name in names
    }


@bce_dice_loss.gradient("input", "target")
def _bce_dice_grad(input, target, bce_weight=0.5, dice_weight=1.0, smooth=1.0):
    bce = C.binary_cross_entropy_with_logits.grad(input, target)
    return _combine([(bce_weight, bce), (dice_weight, dice_loss.grad(input, target, smooth=smooth))])


@loss_reference
def ce_dice_loss(input, target, ce_weight=0.5, dice_weight=0.5, smooth=1.0) -> Terms:
    """ce_weight * cross_entropy(mean) + dice_weight * multiclass_dice_loss(mean) on (N, C, *) logits."""
    ce, dice = C.cross_entropy, multiclass_dice_loss
    return _weighted_sum(
        [
            (ce_weight, ce(input, target), ce.error_scale(input, target)),
            (dice_weight, dice(input, target, smooth=smooth), dice.error_scale(input, target, smooth=smooth)),
        ]
    )


@ce_dice_loss.gradient("input")
def _ce_dice_grad(input, target, ce_weight=0.5, dice_weight=0.5, smooth=1.0):
    ce = {"input": C.cross_entropy.grad(input, target)["input"]}
    return _combine([(ce_weight, ce), (dice_weight, multiclass_dice_loss.grad(input, target, smooth=smooth))])


# --- boundary -----------------------------------------------------------------------------------


def signed_distance_map(target) -> np.ndarray:
    """Signed Euclidean distance to the boundary of each (sample, channel) mask of ``target`` (N, C, *).

    Outside the object (mask 0): the distance to the nearest object pixel, ``distance_transform_edt`` of
    the complement; inside (mask 1): minus the distance to the nearest background pixel, the transform of
    the mask (Kervadec et al. 2019, without their -1 shift of the inside). An empty or full mask has no
    boundary: its map is all zero.
    """
    mask = np.asarray(target) > 0.5
    out = np.zeros(mask.shape, dtype=np.float64)
    for index in np.ndindex(*mask.shape[:2]):
        m = mask[index]
        if m.any() and not m.all():
            out[index] = distance_transform_edt(~m) * ~m - distance_transform_edt(m) * m
    return out


@loss_reference
def boundary_loss(input, distance_map, from_logits=True, reduction="mean") -> Terms:
    """p * distance_map element-wise, 'mean' over every element (Kervadec et al. 2019); may be negative."""
    p, _ = probabilities(input, from_logits)
    d = np.asarray(distance_map, dtype=np.float64)
    if p.shape != d.shape:
        raise ValueError(f"input and distance_map must have one shape, got {p.shape} and {d.shape}")
    value = p * d
    return Terms(value, np.abs(value))


@boundary_loss.gradient("input", "distance_map")
def _boundary_grad(input, distance_map, from_logits=True, reduction="mean"):
    """d/dz = d p (1 - p) (logits) or d (probabilities); d/d distance_map = p."""
    p, q = probabilities(input, from_logits)
    d = np.asarray(distance_map, dtype=np.float64)
    if not from_logits:
        return {"input": Gradient(d, np.abs(d)), "distance_map": Gradient(p, p)}
    # torch's sigmoid backward forms 1 - p from the rounded p: an error of about u |d| p (see _binary_grad)
    return {"input": Gradient(d * p * q, np.abs(d) * p), "distance_map": Gradient(p, p)}
