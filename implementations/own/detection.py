"""lossguard's own PyTorch implementations of the box-regression losses (IoU, GIoU, DIoU, CIoU).

Boxes ``(N, 4)`` as ``(x1, y1, x2, y2)`` with ``x1 <= x2``, ``y1 <= y2``; row i of ``boxes1`` is compared with
row i of ``boxes2``; ``reduction='none'`` gives ``(N,)``. Written from the formulas (see ``reference.detection``
for the definitions and the zero-area convention), vectorised over the rows, device-agnostic:

* IoU = I / (U + eps): Yu et al. 2016; GIoU adds (area(C) - U) / (area(C) + eps): Rezatofighi et al. 2019;
* DIoU adds rho^2 / (cw^2 + ch^2 + eps), CIoU also alpha v with v = (4 / pi^2)(atan2(w2, h2) - atan2(w1, h1))^2
  and alpha = v / (1 - IoU + v + eps), alpha differentiated (not detached): Zheng et al. 2020.

Stability:

* every width and every intersection/enclosing side is one subtraction of two exact coordinates (relative
  error u); the centre offset is ``((x1 - X1) + (x2 - X2)) / 2`` rather than a difference of centres, so it
  stays relatively accurate for tiny boxes far from the origin;
* max, min and the positive part send the gradient of a tie to their first argument: the reference's
  subgradient at these kinks (any subgradient is accepted there, but this one is finite in float16 wherever
  the reference's is);
* the aspect angle is ``atan2(w, h)``, finite for h = 0; the point box w = h = 0 gets angle 0 through a
  guarded denominator, so autograd's gradient is finite there too (atan2's own backward is 0 / 0 there);
* float64 and float32 inputs are computed in their dtype; half-precision inputs in float32, the loss rounded
  back to their dtype: in float16 the slope 1 / (U + eps) at U = 0 is 1 / eps = 8.4e6 for the default
  eps = 1e-7, beyond 65504, and autograd's inf * 0 would give NaN gradients on zero-area boxes.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch

from ._checks import check_floating_tensor, check_open_interval, check_reduction, fmt_shape, reduce, working_dtype

__all__ = ["complete_box_iou_loss", "distance_box_iou_loss", "generalized_box_iou_loss", "iou_loss"]


def _checked(boxes1: object, boxes2: object, eps: object, reduction: object, fn: str) -> tuple:
    """Validate (before computing anything) and return (b1, b2, eps)."""
    b1 = check_floating_tensor(boxes1, fn, "boxes1")
    b2 = check_floating_tensor(boxes2, fn, "boxes2")
    if b1.dim() != 2 or b1.shape[1] != 4 or b1.shape != b2.shape:
        raise ValueError(
            f"{fn}: boxes1 and boxes2 must both have shape (N, 4), got {fmt_shape(b1.shape)} and {fmt_shape(b2.shape)}"
        )
    for name, b in (("boxes1", b1), ("boxes2", b2)):
        if not bool(((b[:, 2] >= b[:, 0]) & (b[:, 3] >= b[:, 1])).all()):
            raise ValueError(f"{fn}: {name} must satisfy x1 <= x2 and y1 <= y2 in every row (and hold no NaN)")
    eps = check_open_interval(eps, 0.0, math.inf, fn, "eps")
    check_reduction(reduction, fn)
    return b1, b2, eps


def _max(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """max(a, b) whose gradient at a tie goes to a (the reference's subgradient convention at this kink)."""
    return torch.where(a >= b, a, b)


def _min(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    return torch.where(a <= b, a, b)


def _positive_part(a: torch.Tensor) -> torch.Tensor:
    return torch.where(a > 0, a, torch.zeros_like(a))


class _Geometry:
    """The shared pieces of the four losses, one entry per row."""

    def __init__(self, b1: torch.Tensor, b2: torch.Tensor, eps: float):
        x1, y1, x2, y2 = b1.unbind(-1)
        X1, Y1, X2, Y2 = b2.unbind(-1)
        self.w1, self.h1, self.w2, self.h2 = x2 - x1, y2 - y1, X2 - X1, Y2 - Y1
        iw = _positive_part(_min(x2, X2) - _max(x1, X1))
        ih = _positive_part(_min(y2, Y2) - _max(y1, Y1))
        inter = iw * ih
        self.union = self.w1 * self.h1 + self.w2 * self.h2 - inter
        self.iou = inter / (self.union + eps)
        self.cw = _max(x2, X2) - _min(x1, X1)
        self.ch = _max(y2, Y2) - _min(y1, Y1)
        self.dx = ((x1 - X1) + (x2 - X2)) / 2
        self.dy = ((y1 - Y1) + (y2 - Y2)) / 2
        self.eps = eps


def _angle(w: torch.Tensor, h: torch.Tensor) -> torch.Tensor:
    """atan2(w, h), 0 with a zero gradient at w = h = 0 (h replaced by 1 there before atan2, then masked)."""
    point = (w == 0) & (h == 0)
    theta = torch.atan2(w, torch.where(point, torch.ones_like(h), h))
    return torch.where(point, torch.zeros_like(theta), theta)


def _iou_loss(g: _Geometry) -> torch.Tensor:
    return 1 - g.iou


def _giou_loss(g: _Geometry) -> torch.Tensor:
    area_c = g.cw * g.ch
    return 1 - g.iou + (area_c - g.union) / (area_c + g.eps)


def _diou_loss(g: _Geometry) -> torch.Tensor:
    return 1 - g.iou + (g.dx * g.dx + g.dy * g.dy) / (g.cw * g.cw + g.ch * g.ch + g.eps)


def _ciou_loss(g: _Geometry) -> torch.Tensor:
    d = _angle(g.w2, g.h2) - _angle(g.w1, g.h1)
    v = (4 / math.pi**2) * (d * d)
    alpha = v / (1 - g.iou + v + g.eps)
    return _diou_loss(g) + alpha * v


def _loss(name: str, form: Callable[[_Geometry], torch.Tensor], doc: str) -> Callable[..., torch.Tensor]:
    def loss(boxes1: torch.Tensor, boxes2: torch.Tensor, eps: float = 1e-7, reduction: str = "mean") -> torch.Tensor:
        b1, b2, eps = _checked(boxes1, boxes2, eps, reduction, name)
        work = working_dtype(b1.dtype)
        value = form(_Geometry(b1.to(work), b2.to(work), eps))
        return reduce(value, reduction, name).to(b1.dtype)

    loss.__name__ = loss.__qualname__ = name
    loss.__doc__ = doc
    return loss


iou_loss = _loss("iou_loss", _iou_loss, "1 - I / (U + eps) per row (Yu et al. 2016, UnitBox).")
generalized_box_iou_loss = _loss(
    "generalized_box_iou_loss",
    _giou_loss,
    "1 - IoU + (area(C) - U) / (area(C) + eps), C the smallest enclosing box (Rezatofighi et al. 2019).",
)
distance_box_iou_loss = _loss(
    "distance_box_iou_loss",
    _diou_loss,
    "1 - IoU + rho^2 / (cw^2 + ch^2 + eps), rho the centre distance (Zheng et al. 2020).",
)
complete_box_iou_loss = _loss(
    "complete_box_iou_loss",
    _ciou_loss,
    "distance_box_iou_loss + alpha v, v = (4/pi^2)(atan2(w2, h2) - atan2(w1, h1))^2, "
    "alpha = v / (1 - IoU + v + eps), differentiated (Zheng et al. 2020).",
)

OWN: dict[str, Callable] = {
    "iou_loss": iou_loss,
    "generalized_box_iou_loss": generalized_box_iou_loss,
    "distance_box_iou_loss": distance_box_iou_loss,
    "complete_box_iou_loss": complete_box_iou_loss,
}
