"""Float64 references of the box-regression losses: IoU, GIoU, DIoU and CIoU.

Boxes are ``(N, 4)`` arrays of ``(x1, y1, x2, y2)`` with ``x1 <= x2`` and ``y1 <= y2``; every loss compares
row i of ``boxes1`` with row i of ``boxes2`` and gives one value per row (``reduction='none'``: shape
``(N,)``). With w = x2 - x1, h = y2 - y1 (so area = w h), the intersection I = iw ih with
``iw = max(0, min(x2, X2) - max(x1, X1))`` (capitals: ``boxes2``), the union U = a1 + a2 - I, and C the
smallest enclosing box (``cw = max(x2, X2) - min(x1, X1)``, likewise ch):

* iou_loss = 1 - IoU, IoU = I / (U + eps) (Yu et al. 2016, "UnitBox");
* generalized_box_iou_loss = 1 - IoU + (area(C) - U) / (area(C) + eps) (Rezatofighi et al. 2019);
* distance_box_iou_loss = 1 - IoU + rho^2 / c^2, rho the distance of the box centres and
  ``c^2 = cw^2 + ch^2 + eps`` (Zheng et al. 2020). eps enters c^2 *additively*, as in torchvision's
  ``distance_box_iou_loss`` (``diagonal_distance_squared = cw**2 + ch**2 + eps``);
* complete_box_iou_loss = distance_box_iou_loss + alpha v, ``v = (4 / pi^2) (theta2 - theta1)^2`` with the
  aspect angle ``theta = atan2(w, h)`` (= atan(w / h) for h > 0) and ``alpha = v / (1 - IoU + v + eps)``
  (Zheng et al. 2020). alpha is a function of the boxes and is differentiated like every other term (the
  formula as written; canonical). The variant ``alpha_gradient='detached'`` holds alpha constant in the
  gradient, as torchvision computes it (under ``torch.no_grad()``, after detectron2's implementation): the same
  value, the gradient of DIoU + alpha v with alpha fixed at its value.

Zero-area convention. eps > 0 keeps every quotient finite: a row whose union is 0 (two zero-area boxes)
has IoU = 0 / eps = 0, an enclosing box of area 0 gives a GIoU penalty 0 / eps = 0, a zero diagonal gives
rho^2 / eps = 0, and ``atan2`` gives the angle pi/2 to a box of zero height and positive width and the angle
0 to a point box (w = h = 0; numpy's and torch's ``atan2(0, 0) = 0``). Identical boxes of area a give
exactly eps / (a + eps) for every one of the four losses (zero area included: then 1).

Error scale: a running error analysis in forward mode (Wilkinson's running error bound; Higham,
*Accuracy and Stability of Numerical Algorithms*, 2nd ed., sec. 3.3). Every quantity is a :class:`_Dual`
carrying, besides its value and its gradient with respect to the 8 coordinates of its row,

* ``vm``: a first-order bound, in units of u, of the absolute error of the quantity evaluated by the
  straightforward formulas above in a precision with unit roundoff u (each operation rounds once, relative
  error <= u; coordinates are exact inputs). For ``a +- b`` it is ``vm_a + vm_b + |a +- b|``, for ``a b`` it
  is ``vm_a |b| + |a| vm_b + |a b|``, and so on (see the methods). The box centres are formed as
  ``(x1 + x2) / 2`` (torchvision's form), so rho carries the magnitude of the coordinates, not only of its
  own value: a tiny pair of boxes far from the origin has a large, honest scale on its rho^2 / c^2 term;
* ``gm``: the same bound for the gradient as reverse-mode autograd forms it: the errors of the forward
  values each path uses, plus one rounding per operation per path (``ga``, the sum of the paths'
  magnitudes, counts it).

``Terms.scale`` is ``vm`` and a gradient's scale is ``gm``. The tolerance allows K = 8 times the unit
roundoff times these, so the library's atan/atan2 (<= 2 ulps) and second-order terms stay covered.

Underflow. A product, quotient or atan2 whose result is subnormal rounds to the subnormal grid: its error
is at most u |result| + 2^-1075 (gradual underflow; Higham sec. 2.1), that is ``|result| + UNDERFLOW`` in
units of u with UNDERFLOW = 2^-1022 (float64's; sums and differences of floats are exact there). Every
such rounding term, in the forward values and in each product of the reverse pass, carries UNDERFLOW: boxes
1e-311 wide (subnormal widths, which the catalog's example builder draws) have intersections I = iw ih off
by 2e-13 of themselves, and a gradient of 1e-297 built on them off by 38 of its former, underflow-blind,
scale; above the subnormal range the term is negligible (2^-1022 against |result|).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from lossguard.reference._core import Gradient, Terms, loss_reference

FOUR_OVER_PI_SQUARED = 4.0 / np.pi**2
UNDERFLOW = 2.0**-1022  # a subnormal result's absolute rounding error 2^-1075, in units of u = 2^-53


@dataclass(frozen=True)
class _Dual:
    """A per-row quantity: value (N,), its error bound vm (N,), gradient g (N, 8), |paths| ga, gradient bound gm."""

    v: np.ndarray
    vm: np.ndarray
    g: np.ndarray
    ga: np.ndarray
    gm: np.ndarray

    @staticmethod
    def constant(value: float, n: int) -> _Dual:
        zeros = np.zeros((n, 8))
        return _Dual(np.full(n, float(value)), np.zeros(n), zeros, zeros, zeros)

    @staticmethod
    def coordinate(values: np.ndarray, column: int) -> _Dual:
        """An exact input coordinate: no error, gradient the unit vector of its column (0..7)."""
        n = values.shape[0]
        unit = np.zeros((n, 8))
        unit[:, column] = 1.0
        return _Dual(np.asarray(values, dtype=np.float64), np.zeros(n), unit, unit, np.zeros((n, 8)))

    def _add(self, other: _Dual, sign: float) -> _Dual:
        v = self.v + sign * other.v
        ga = self.ga + other.ga
        return _Dual(v, self.vm + other.vm + np.abs(v), self.g + sign * other.g, ga, self.gm + other.gm + ga)

    def __add__(self, other: _Dual) -> _Dual:
        return self._add(other, 1.0)

    def __sub__(self, other: _Dual) -> _Dual:
        return self._add(other, -1.0)

    def __mul__(self, other: _Dual) -> _Dual:
        """d(ab) = b da + a db; errors: vm_a |b| + |a| vm_b (+ the product's rounding)."""
        a, b = self, other
        v = a.v * b.v
        c = lambda x: x[:, None]  # noqa: E731 (a column of per-row values)
        g = a.g * c(b.v) + c(a.v) * b.g
        ga = a.ga * c(np.abs(b.v)) + c(np.abs(a.v)) * b.ga
        # the reverse pass's two products (adjoint times b, times a) may each underflow
        gm = a.gm * c(np.abs(b.v)) + a.ga * c(b.vm) + b.gm * c(np.abs(a.v)) + b.ga * c(a.vm) + ga + 2 * UNDERFLOW
        return _Dual(v, a.vm * np.abs(b.v) + np.abs(a.v) * b.vm + np.abs(v) + UNDERFLOW, g, ga, gm)

    def __truediv__(self, other: _Dual) -> _Dual:
        """d(a / b) = da / b - a db / b^2; errors to first order in those of a, b and of each path's pieces."""
        a, b = self, other
        with np.errstate(invalid="ignore", divide="ignore"):
            v = a.v / b.v
            ib = 1.0 / np.abs(b.v)
            c = lambda x: x[:, None]  # noqa: E731
            g = a.g * c(1.0 / b.v) - c(a.v / b.v**2) * b.g
            ga = a.ga * c(ib) + c(np.abs(a.v) * ib**2) * b.ga
            gm = (
                a.gm * c(ib)
                + a.ga * c(b.vm * ib**2)
                + b.ga * c(a.vm * ib**2)
                + b.gm * c(np.abs(a.v) * ib**2)
                + b.ga * c(2 * np.abs(a.v) * b.vm * ib**3)
                + ga
                + 4 * UNDERFLOW  # adjoint / b, and adjoint * a / b / b: up to 4 roundings that may underflow
            )
            vm = a.vm * ib + np.abs(a.v) * b.vm * ib**2 + np.abs(v) + UNDERFLOW
        return _Dual(v, vm, g, ga, gm)

    def where(self, condition: np.ndarray, other: _Dual) -> _Dual:
        """Row-wise selection (max, min, clamp): self where ``condition``, else other."""
        c = condition[:, None]
        return _Dual(
            np.where(condition, self.v, other.v),
            np.where(condition, self.vm, other.vm),
            np.where(c, self.g, other.g),
            np.where(c, self.ga, other.ga),
            np.where(c, self.gm, other.gm),
        )

    def detached(self) -> _Dual:
        """The same value (and value error) as a constant of the gradient: no path, no gradient error of its own
        (its value's error still enters a product's gradient bound through ``vm``)."""
        zeros = np.zeros_like(self.g)
        return _Dual(self.v, self.vm, zeros, zeros, zeros)

    def scaled(self, factor: float) -> _Dual:
        """factor * self for a constant factor (one rounding unless it is a power of two; counted always)."""
        return self * _Dual.constant(factor, self.v.shape[0])


def _maximum(a: _Dual, b: _Dual) -> _Dual:
    return a.where(a.v >= b.v, b)


def _minimum(a: _Dual, b: _Dual) -> _Dual:
    return a.where(a.v <= b.v, b)


def _clamp_at_zero(a: _Dual) -> _Dual:
    return a.where(a.v > 0, _Dual.constant(0.0, a.v.shape[0]))


def _angle(w: _Dual, h: _Dual) -> _Dual:
    """theta = atan2(w, h); d theta = (h dw - w dh) / (w^2 + h^2); the point box (w = h = 0) has theta = 0 and,
    by convention, gradient 0 (it is a kink: atan2 has no derivative at the origin)."""
    r2 = w.v**2 + h.v**2
    point = r2 == 0
    with np.errstate(invalid="ignore", divide="ignore"):
        inv = np.where(point, 0.0, 1.0 / np.where(point, 1.0, r2))
    theta = np.arctan2(w.v, h.v)
    c = lambda x: x[:, None]  # noqa: E731
    aw, ah = np.abs(w.v), np.abs(h.v)
    g = (c(h.v) * w.g - c(w.v) * h.g) * c(inv)
    ga = (c(ah) * w.ga + c(aw) * h.ga) * c(inv)
    gm = (c(h.vm) * w.ga + c(ah) * w.gm + c(w.vm) * h.ga + c(aw) * h.gm) * c(inv)
    gm = gm + ga * c(2 * (aw * w.vm + ah * h.vm) * inv) + ga + 4 * UNDERFLOW
    vm = np.abs(theta) + UNDERFLOW + (ah * w.vm + aw * h.vm) * inv
    return _Dual(theta, vm, g, ga, gm)


@dataclass(frozen=True)
class _Pair:
    """The shared pieces of one call, row by row."""

    iou: _Dual
    inter: _Dual
    union: _Dual
    widths: tuple[_Dual, _Dual, _Dual, _Dual]  # w1, h1, w2, h2
    enclosing: tuple[_Dual, _Dual]  # cw, ch
    centre_offsets: tuple[_Dual, _Dual]  # dx, dy (centre of boxes1 minus centre of boxes2)
    eps: _Dual
    one: _Dual


def check_boxes(boxes1, boxes2, eps: float) -> tuple[np.ndarray, np.ndarray]:
    """The boxes as float64 (N, 4) arrays; raises ValueError for other shapes, x2 < x1, y2 < y1 or eps <= 0."""
    b1 = np.asarray(boxes1, dtype=np.float64)
    b2 = np.asarray(boxes2, dtype=np.float64)
    if b1.shape != b2.shape or b1.ndim != 2 or b1.shape[1] != 4:
        raise ValueError(f"boxes1 and boxes2 must both be (N, 4), got {b1.shape} and {b2.shape}")
    for b in (b1, b2):
        if not np.all((b[:, 2] >= b[:, 0]) & (b[:, 3] >= b[:, 1])):
            raise ValueError("boxes must satisfy x1 <= x2 and y1 <= y2")
    if not (np.isfinite(eps) and eps > 0):
        raise ValueError(f"eps must be a finite number > 0, got {eps!r}")
    return b1, b2


def _pair(boxes1, boxes2, eps: float) -> _Pair:
    b1, b2 = check_boxes(boxes1, boxes2, eps)
    n = b1.shape[0]
    x1, y1, x2, y2 = (_Dual.coordinate(b1[:, k], k) for k in range(4))
    X1, Y1, X2, Y2 = (_Dual.coordinate(b2[:, k], 4 + k) for k in range(4))
    w1, h1, w2, h2 = x2 - x1, y2 - y1, X2 - X1, Y2 - Y1
    iw = _clamp_at_zero(_minimum(x2, X2) - _maximum(x1, X1))
    ih = _clamp_at_zero(_minimum(y2, Y2) - _maximum(y1, Y1))
    inter = iw * ih
    union = w1 * h1 + w2 * h2 - inter
    e = _Dual.constant(eps, n)
    cw = _maximum(x2, X2) - _minimum(x1, X1)
    ch = _maximum(y2, Y2) - _minimum(y1, Y1)
    dx = (x1 + x2).scaled(0.5) - (X1 + X2).scaled(0.5)
    dy = (y1 + y2).scaled(0.5) - (Y1 + Y2).scaled(0.5)
    return _Pair(inter / (union + e), inter, union, (w1, h1, w2, h2), (cw, ch), (dx, dy), e, _Dual.constant(1.0, n))


def _giou(p: _Pair) -> _Dual:
    cw, ch = p.enclosing
    area_c = cw * ch
    return p.one - p.iou + (area_c - p.union) / (area_c + p.eps)


def _diou(p: _Pair) -> _Dual:
    cw, ch = p.enclosing
    dx, dy = p.centre_offsets
    return p.one - p.iou + (dx * dx + dy * dy) / (cw * cw + ch * ch + p.eps)


ALPHA_GRADIENTS = ("through", "detached")


def _ciou(p: _Pair, alpha_gradient: str = "through") -> _Dual:
    """DIoU + alpha v; alpha differentiated ('through') or held constant in the gradient ('detached')."""
    if alpha_gradient not in ALPHA_GRADIENTS:
        raise ValueError(f"alpha_gradient must be one of {ALPHA_GRADIENTS}, got {alpha_gradient!r}")
    w1, h1, w2, h2 = p.widths
    d = _angle(w2, h2) - _angle(w1, h1)
    v = (d * d).scaled(FOUR_OVER_PI_SQUARED)
    alpha = v / (p.one - p.iou + v + p.eps)
    if alpha_gradient == "detached":
        alpha = alpha.detached()
    return _diou(p) + alpha * v


def _terms(loss: _Dual) -> Terms:
    return Terms(loss.v, loss.vm)


def _gradient(loss: _Dual) -> dict[str, Gradient]:
    return {
        "boxes1": Gradient(loss.g[:, :4], loss.gm[:, :4]),
        "boxes2": Gradient(loss.g[:, 4:], loss.gm[:, 4:]),
    }


def _iou_loss_of(p: _Pair) -> _Dual:
    return p.one - p.iou


@loss_reference
def iou_loss(boxes1, boxes2, eps=1e-7, reduction="mean") -> Terms:
    """1 - I / (U + eps) per row (Yu et al. 2016)."""
    return _terms(_iou_loss_of(_pair(boxes1, boxes2, eps)))


@iou_loss.gradient("boxes1", "boxes2")
def _iou_grad(boxes1, boxes2, eps=1e-7, reduction="mean"):
    return _gradient(_iou_loss_of(_pair(boxes1, boxes2, eps)))


@loss_reference
def generalized_box_iou_loss(boxes1, boxes2, eps=1e-7, reduction="mean") -> Terms:
    """1 - IoU + (area(C) - U) / (area(C) + eps), C the smallest enclosing box (Rezatofighi et al. 2019)."""
    return _terms(_giou(_pair(boxes1, boxes2, eps)))


@generalized_box_iou_loss.gradient("boxes1", "boxes2")
def _giou_grad(boxes1, boxes2, eps=1e-7, reduction="mean"):
    return _gradient(_giou(_pair(boxes1, boxes2, eps)))


@loss_reference
def distance_box_iou_loss(boxes1, boxes2, eps=1e-7, reduction="mean") -> Terms:
    """1 - IoU + rho^2 / (cw^2 + ch^2 + eps), rho the centre distance (Zheng et al. 2020; eps as torchvision)."""
    return _terms(_diou(_pair(boxes1, boxes2, eps)))


@distance_box_iou_loss.gradient("boxes1", "boxes2")
def _diou_grad(boxes1, boxes2, eps=1e-7, reduction="mean"):
    return _gradient(_diou(_pair(boxes1, boxes2, eps)))


@loss_reference
def complete_box_iou_loss(boxes1, boxes2, eps=1e-7, reduction="mean", alpha_gradient="through") -> Terms:
    """distance_box_iou_loss + alpha v, v = (4/pi^2)(atan2(w2, h2) - atan2(w1, h1))^2,
    alpha = v / (1 - IoU + v + eps), alpha differentiated (Zheng et al. 2020); variant alpha_gradient='detached':
    alpha held constant in the gradient (torchvision), the value unchanged."""
    return _terms(_ciou(_pair(boxes1, boxes2, eps), alpha_gradient))


@complete_box_iou_loss.gradient("boxes1", "boxes2")
def _ciou_grad(boxes1, boxes2, eps=1e-7, reduction="mean", alpha_gradient="through"):
    """The canonical gradient d(DIoU + alpha v); 'detached': d DIoU + alpha dv (the v dalpha path dropped)."""
    return _gradient(_ciou(_pair(boxes1, boxes2, eps), alpha_gradient))


def box_kinks(boxes1, boxes2) -> np.ndarray:
    """(N,) rows at a kink: a max/min tie of the intersection or the enclosing box (x1 = X1, x2 = X2, ...),
    an intersection side exactly 0 (boxes sharing an edge or a corner), or a zero-area box."""
    b1, b2 = np.asarray(boxes1, dtype=np.float64), np.asarray(boxes2, dtype=np.float64)
    ties = np.any(b1 == b2, axis=1)
    sides = (np.minimum(b1[:, 2:], b2[:, 2:]) - np.maximum(b1[:, :2], b2[:, :2])) == 0
    flat = (b1[:, 2:] == b1[:, :2]) | (b2[:, 2:] == b2[:, :2])
    return ties | np.any(sides, axis=1) | np.any(flat, axis=1)
