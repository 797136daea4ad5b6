"""Deliberately wrong box-regression losses: each family property must catch the one planted for it.

Every function has the canonical signature of the loss it pretends to be and exactly one defect, named in its
docstring (with the property that catches it). The correct pieces come from lossguard's own implementation.
"""

from __future__ import annotations

import math

import torch

from lossguard.implementations.own import detection as own

from planted import _biased


def _reduce(loss: torch.Tensor, reduction: str) -> torch.Tensor:
    return loss.mean() if reduction == "mean" else loss.sum() if reduction == "sum" else loss


def _geometry(boxes1, boxes2, eps) -> own._Geometry:
    return own._Geometry(boxes1, boxes2, eps)


def giou_penalty_over_union(boxes1, boxes2, eps=1e-7, reduction="mean"):
    """Divides the GIoU penalty by the union instead of the enclosing area: (C - U) / (U + eps), unbounded for
    boxes far apart, so the loss exceeds 2 (box_loss_range)."""
    g = _geometry(boxes1, boxes2, eps)
    area_c = g.cw * g.ch
    return _reduce(1 - g.iou + (area_c - g.union) / (g.union + eps), reduction)


def iou_smoothed_numerator(boxes1, boxes2, eps=1e-7, reduction="mean"):
    """Adds eps to the intersection too, 1 - (I + eps) / (U + eps) (a Dice-like smoothing): exactly 0 for identical
    boxes instead of eps / (area + eps) (identical_boxes)."""
    g = _geometry(boxes1, boxes2, eps)
    inter = g.iou * (g.union + eps)
    return _reduce(1 - (inter + eps) / (g.union + eps), reduction)


def giou_enclosing_from_origin(boxes1, boxes2, eps=1e-7, reduction="mean"):
    """Takes the enclosing box as anchored at the origin, area(C) = max(x2, X2) max(y2, Y2) (pixel coordinates
    assumed): changes when both boxes are translated (box_translation_invariance)."""
    g = _geometry(boxes1, boxes2, eps)
    area_c = torch.maximum(boxes1[:, 2], boxes2[:, 2]) * torch.maximum(boxes1[:, 3], boxes2[:, 3])
    return _reduce(1 - g.iou + (area_c - g.union) / (area_c + eps), reduction)


def iou_plus_one_pixel(boxes1, boxes2, eps=1e-7, reduction="mean"):
    """The legacy pixel convention (Pascal VOC, Detectron): widths x2 - x1 + 1 and intersection sides + 1, which
    is not invariant under scaling both boxes (box_scale_invariance)."""
    x1, y1, x2, y2 = boxes1.unbind(-1)
    X1, Y1, X2, Y2 = boxes2.unbind(-1)
    iw = (torch.minimum(x2, X2) - torch.maximum(x1, X1) + 1).clamp(min=0)
    ih = (torch.minimum(y2, Y2) - torch.maximum(y1, Y1) + 1).clamp(min=0)
    inter = iw * ih
    union = (x2 - x1 + 1) * (y2 - y1 + 1) + (X2 - X1 + 1) * (Y2 - Y1 + 1) - inter
    return _reduce(1 - inter / (union + eps), reduction)


def ciou_aspect_by_division(boxes1, boxes2, eps=1e-7, reduction="mean"):
    """The aspect angle as atan(w / h) (torchvision's form) instead of atan2(w, h): 0 / 0 = NaN for a point box
    (zero_area_boxes)."""
    g = _geometry(boxes1, boxes2, eps)
    v = (4 / math.pi**2) * (torch.atan(g.w2 / g.h2) - torch.atan(g.w1 / g.h1)) ** 2
    alpha = v / (1 - g.iou + v + eps)
    return _reduce(own._diou_loss(g) + alpha * v, reduction)


def iou_loss_biased(boxes1, boxes2, eps=1e-7, reduction="mean"):
    """1 - IoU times (1 + 32 u): just above 1 for disjoint boxes (box_loss_range, range)."""
    loss = own.iou_loss(boxes1, boxes2, eps=eps, reduction="none")
    return _reduce(loss * (1 + 32 * torch.finfo(loss.dtype).eps / 2), reduction)


def giou_penalty_short(boxes1, boxes2, eps=1e-7, reduction="mean"):
    """GIoU loss minus 32 x 24 u (1 + penalty) where the boxes differ (IoU below 1 - 1e-3): below 1 - IoU where the
    penalty is 0 (nested boxes) by about 32 units of roundoff of the two losses' scales there (GIoU's and IoU's,
    together ~ 20 at unit-sized boxes; the bound allows the sum of both tolerances), and never below 0, so only
    the lower bound by 1 - IoU can see it (box_loss_range, at_least)."""
    g = _geometry(boxes1, boxes2, eps)
    area_c = g.cw * g.ch
    penalty = (area_c - g.union) / (area_c + eps)
    u = torch.finfo(penalty.dtype).eps / 2
    short = torch.where(g.iou < 1 - 1e-3, 32 * 24 * u * (1 + penalty), torch.zeros_like(penalty))
    return _reduce(1 - g.iou + penalty - short, reduction)


def ciou_aspect_masked_division(boxes1, boxes2, eps=1e-7, reduction="mean"):
    """The aspect angle as atan(w / h) where h > 0, else the limit (pi / 2 for w > 0, 0 for a point box): the
    convention's value, but torch.where's backward multiplies the masked branch's infinite or NaN slope by 0, a
    NaN gradient at every box with h = 0 (zero_area_boxes, finite_gradient)."""
    g = _geometry(boxes1, boxes2, eps)

    def angle(w, h):
        limit = torch.where(w > 0, torch.full_like(w, math.pi / 2), torch.zeros_like(w))
        return torch.where(h > 0, torch.atan(w / h), limit)

    d = angle(g.w2, g.h2) - angle(g.w1, g.h1)
    v = (4 / math.pi**2) * (d * d)
    alpha = v / (1 - g.iou + v + eps)
    return _reduce(own._diou_loss(g) + alpha * v, reduction)


def iou_flat_rows_biased(boxes1, boxes2, eps=1e-7, reduction="mean"):
    """1 - IoU times (1 + 32 u) on rows where a box has zero area, right elsewhere: a degenerate-box branch off by
    32 units of roundoff (zero_area_boxes, value)."""
    loss = own.iou_loss(boxes1, boxes2, eps=eps, reduction="none")
    flat = ((boxes1[:, 2] - boxes1[:, 0]) * (boxes1[:, 3] - boxes1[:, 1]) == 0) | (
        (boxes2[:, 2] - boxes2[:, 0]) * (boxes2[:, 3] - boxes2[:, 1]) == 0
    )
    return _reduce(torch.where(flat, _biased(loss), loss), reduction)
