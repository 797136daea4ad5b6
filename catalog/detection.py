"""Catalog entries of the box-regression losses (IoU, GIoU, DIoU, CIoU).

Examples are ``(N, 4)`` box pairs with N <= 5. Each row is drawn in one of the hard relations (independent,
identical, disjoint, sharing an edge, touching at a corner, nested, zero-area, tiny), so one example mixes
them; N = 1 (a batch of one) is drawn on purpose. Coordinates lie within +-100 (typical) or +-1e4 (extreme,
where the tiny boxes of 1e-3 to 1e-6 also appear). float16 coordinates lie on the grid of multiples of 1/8
within +-4: every difference is then a multiple of 1/8 (exact), every area and squared diagonal a normal
float16 number and c^4 = (cw^2 + ch^2)^2 below its 65504 overflow, so the exact values are what a float16
computation can deliver.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import lru_cache

import numpy as np
from hypothesis import strategies as st

from lossguard.catalog.common import param_case, tags
from lossguard.harness.kernel import strategies as S
from lossguard.harness.kernel.model import NO_RELATIONS, ErrorCase, Example, LossSpec, Relations
from lossguard.reference import detection as R

FAMILY = "detection"
RELATIONS = ("independent", "identical", "disjoint", "shared edge", "corner", "nested", "zero area", "tiny")
BOX_PROPERTIES = ("box_loss_range", "identical_boxes", "box_translation_invariance", "box_scale_invariance")

# (typical, extreme) bound of |coordinate|, and the sizes of the tiny boxes (extreme regime only)
_EXTENT = {"float16": (4.0, 4.0), "bfloat16": (100.0, 1e4), "float32": (100.0, 1e4), "float64": (100.0, 1e4)}
_TINY = (1e-3, 1e-6)
_FLOAT16_GRID = 8.0


@lru_cache(maxsize=1024)  # one strategy object per argument: Hypothesis validates it once (kernel/strategies.py)
def _size(bound: float, regime: str) -> st.SearchStrategy[float]:
    specials = [0.0, 1.0, 0.5, bound / 4] + (list(_TINY) if regime == "extreme" else [])
    return st.one_of(st.floats(0.0, bound / 2), st.sampled_from(specials))


@lru_cache(maxsize=1024)
def _corner(bound: float) -> st.SearchStrategy[float]:
    return st.one_of(st.floats(-bound / 2, bound / 2), st.sampled_from([0.0, -bound / 2, bound / 2, 1.0]))


def _box(draw, bound: float, regime: str, sizes: st.SearchStrategy[float] | None = None) -> np.ndarray:
    corner = _corner(bound)
    sizes = sizes if sizes is not None else _size(bound, regime)
    x, y = draw(corner, label="x1"), draw(corner, label="y1")
    return np.array([x, y, x + draw(sizes, label="w"), y + draw(sizes, label="h")])


def _related(draw, relation: str, first: np.ndarray, bound: float, regime: str) -> tuple[np.ndarray, np.ndarray]:
    """(boxes1 row, boxes2 row) in the given relation; ``first`` is an independently drawn box."""
    x1, y1, x2, y2 = first
    w, h = x2 - x1, y2 - y1
    if relation == "identical":
        return first, first.copy()
    if relation == "disjoint":
        gap = draw(st.one_of(st.floats(0.0, bound / 4), st.sampled_from([1.0, 0.5])), label="gap")
        other = _box(draw, bound, regime)
        size = other[2:] - other[:2]
        along_x = draw(st.booleans(), label="disjoint along x")
        start = np.array([x2 + gap, y1]) if along_x else np.array([x1, y2 + gap])
        return first, np.concatenate([start, start + size])
    if relation in ("shared edge", "corner"):
        other = _box(draw, bound, regime)
        ow, oh = other[2] - other[0], other[3] - other[1]
        dy = 0.0 if relation == "corner" else draw(st.floats(-1.0, 1.0), label="offset along the edge") * h
        start = np.array([x2, (y2 if relation == "corner" else y1 + dy)])
        return first, np.array([start[0], start[1], start[0] + ow, start[1] + oh])  # x1' = x2 exactly
    if relation == "nested":
        f = np.array(draw(st.lists(st.sampled_from([0.0, 0.25, 0.5, 1.0]), min_size=4, max_size=4), label="insets"))
        inner = np.array([x1 + f[0] * w / 2, y1 + f[1] * h / 2, x2 - f[2] * w / 2, y2 - f[3] * h / 2])
        return (first, inner) if draw(st.booleans(), label="outer first") else (inner, first)
    if relation == "zero area":
        second = _box(draw, bound, regime)
        which = draw(st.sampled_from(["w1", "h1", "w2", "h2", "both points", "same point"]), label="flat side")
        a, b = first.copy(), second.copy()
        if which in ("w1", "both points", "same point"):
            a[2] = a[0]
        if which in ("h1", "both points", "same point"):
            a[3] = a[1]
        if which in ("w2", "both points"):
            b[2] = b[0]
        if which in ("h2", "both points"):
            b[3] = b[1]
        return (a, a.copy()) if which == "same point" else (a, b)
    if relation == "tiny":
        tiny = st.sampled_from([*_TINY, 0.0, 1e-2])
        a = _box(draw, bound, regime, tiny)
        b = a + np.array(draw(st.lists(st.sampled_from([0.0, *_TINY]), min_size=4, max_size=4), label="jitter"))
        return a, np.concatenate([b[:2], np.maximum(b[2:], b[:2])])
    return first, _box(draw, bound, regime)


def _overlapping(draw, bound: float) -> tuple[np.ndarray, np.ndarray]:
    """A generic overlapping pair: the second box shifted and stretched by a quarter to three quarters of the
    first's sides, so no coordinate ties, no side of the intersection is 0 and no box is flat (no kink): the
    gradient of every coordinate is compared and is not 0. The hard relations above are all kinks or zero
    gradients, and the independent pairs the ci budget draws mostly are too (simple, repeated coordinates)."""
    x, y = (draw(st.floats(-bound / 2, 0.0), label=label) for label in ("x1", "y1"))
    w, h = (draw(st.sampled_from([bound / 4, bound / 8]), label=label) for label in ("w", "h"))
    a, b, c, d = draw(st.lists(st.sampled_from([0.25, 0.5, 0.75]), min_size=4, max_size=4), label="shifts")
    first = np.array([x, y, x + w, y + h])
    return first, first + np.array([a * w, b * h, c * w, d * h])


def _ordered(b: np.ndarray) -> np.ndarray:
    """x2 >= x1 and y2 >= y1 also where a float64 construction (insets of a nested box) rounded across."""
    return np.concatenate([b[:, :2], np.maximum(b[:, 2:], b[:, :2])], axis=1)


def box_examples(draw, dtype: str, regime: str, choose) -> Example:
    """Box pairs (N, 4), each row in a drawn relation; eps and reduction as the implementation accepts."""
    bound = _EXTENT[dtype][1 if regime == "extreme" else 0]
    n = draw(st.one_of(st.just(1), st.integers(1, 5)), label="N")
    relations = RELATIONS if regime == "extreme" else RELATIONS[:-1]
    rows = []
    for _ in range(n):
        relation = draw(st.sampled_from(relations), label="relation")
        rows.append(_related(draw, relation, _box(draw, bound, regime), bound, regime))
    if draw(st.booleans(), label="a generic overlapping pair in row 0"):
        rows[0] = _overlapping(draw, bound)
    b1, b2 = (_ordered(np.array([row[k] for row in rows])) for k in (0, 1))
    if dtype == "float16":  # the grid of multiples of 1/8 (rounding is monotone: x1 <= x2 is kept)
        b1, b2 = (np.clip(np.round(b * _FLOAT16_GRID) / _FLOAT16_GRID, -bound, bound) for b in (b1, b2))
    eps = [1e-7, 1e-3, 0.5] + ([1e-9] if dtype != "float16" else [])  # 1e-9 is 0 in float16
    params = choose({"reduction": S.reduction(), "eps": st.sampled_from(eps)})
    return Example({"boxes1": b1, "boxes2": b2}, params)


def box_kinks(example: Example, eps: float) -> np.ndarray:
    """(N, 4): every coordinate of a row at a kink (reference.detection.box_kinks), for boxes1 and boxes2 alike."""
    rows = R.box_kinks(example.args["boxes1"], example.args["boxes2"])
    return np.repeat(rows[:, None], 4, axis=1)


def _sweep(s: np.ndarray) -> Example:
    """The unit box shifted by s along x against the unit box at the origin: overlap 1 - |s| for |s| < 1."""
    unit = np.tile([0.0, 0.0, 1.0, 1.0], (s.size, 1))
    moved = unit + np.stack([s, np.zeros_like(s), s, np.zeros_like(s)], axis=1)
    return Example({"boxes1": moved, "boxes2": unit}, {"reduction": "none"})


def _with(name: str, change: Callable[[np.ndarray], np.ndarray]) -> Callable[[Example], Example]:
    return lambda ex: ex.replace({name: change(np.array(ex.args[name], dtype=np.float64))})


def _extra_row(b: np.ndarray) -> np.ndarray:
    return np.concatenate([b, b[:1]])


def _inverted_x(b: np.ndarray) -> np.ndarray:
    b[0, 2] = b[0, 0] - 1.0
    return b


def _inverted_y(b: np.ndarray) -> np.ndarray:
    b[0, 3] = b[0, 1] - 1.0
    return b


ERROR_CASES = (
    ErrorCase("boxes2 with one row more than boxes1 ((N + 1, 4) against (N, 4))", _with("boxes2", _extra_row)),
    ErrorCase(
        "boxes of shape (N, 3) (three coordinates)",
        lambda ex: ex.replace({k: np.asarray(v)[:, :3] for k, v in ex.args.items()}),
    ),
    ErrorCase("a box of boxes1 with x2 = x1 - 1 (x2 < x1)", _with("boxes1", _inverted_x)),
    ErrorCase("a box of boxes2 with y2 = y1 - 1 (y2 < y1)", _with("boxes2", _inverted_y)),
    param_case("eps", -1.0, "eps must be > 0"),
)

_BOXES = (
    "; boxes (N, 4) as x1, y1, x2, y2 with x1 <= x2, y1 <= y2, row i of boxes1 against row i of boxes2, "
    "'none' is (N,). Zero-area convention (eps > 0 keeps it finite): IoU = 0 / eps = 0 when the union is 0"
)
_EXCEPTIONS = (
    "zero at identical boxes only up to the eps term: exactly eps / (area + eps) (1 for a zero-area box), "
    "which identical_boxes checks instead of zero_at_perfect. Gradients are not compared at the kinks: "
    "a max/min tie of the intersection or enclosing box (identical or aligned sides), an intersection side "
    "exactly 0 (boxes sharing an edge or a corner), a zero-area box (masked per box row)"
)


def _entry(
    name: str,
    definition: str,
    reference,
    variants: dict[str, str] | None = None,
    variant_values: dict[str, tuple[str, ...]] | None = None,
    value_range: tuple[float, float] = (0.0, 2.0),
    relations: Relations = NO_RELATIONS,
) -> LossSpec:
    """One box loss; ``value_range`` and ``relations`` (the IoU loss it is at least) are box_loss_range's facts."""
    return LossSpec(
        name=name,
        family=FAMILY,
        definition=definition + _BOXES,
        reference=reference,
        examples=box_examples,
        properties=tags("non_negative", *BOX_PROPERTIES, "zero_area_boxes"),
        differentiable=("boxes1", "boxes2"),
        error_cases=ERROR_CASES,
        kinks=box_kinks,
        sweep=_sweep,
        caveats=_EXCEPTIONS,
        variants=variants or {},
        variant_values=variant_values or {},
        value_range=value_range,
        relations=relations,
    )


# the box losses with a penalty (GIoU, DIoU, CIoU) are 1 - IoU plus a term >= 0: at least iou_loss
_AT_LEAST_IOU = Relations(at_least="iou_loss")

DETECTION: tuple[LossSpec, ...] = (
    _entry("iou_loss", "1 - inter / (union + eps)", R.iou_loss, value_range=(0.0, 1.0)),
    _entry(
        "generalized_box_iou_loss",
        "1 - IoU + (area(C) - union) / (area(C) + eps), C the smallest enclosing box (Rezatofighi et al. 2019); "
        "an enclosing box of area 0 gives the penalty 0 / eps = 0",
        R.generalized_box_iou_loss,
        relations=_AT_LEAST_IOU,
    ),
    _entry(
        "distance_box_iou_loss",
        "1 - IoU + rho^2 / c^2 (centre distance over enclosing diagonal), c^2 = cw^2 + ch^2 + eps: eps added to "
        "the squared diagonal as torchvision does (Zheng et al. 2020); a zero diagonal gives 0 / eps = 0",
        R.distance_box_iou_loss,
        relations=_AT_LEAST_IOU,
    ),
    _entry(
        "complete_box_iou_loss",
        "distance_box_iou_loss + alpha v, v = (4/pi^2)(atan2(w2, h2) - atan2(w1, h1))^2, "
        "alpha = v / (1 - IoU + v + eps) (Zheng et al. 2020). alpha is differentiated (the formula as written; "
        "torchvision detaches it, same values, other gradients: the variant alpha_gradient='detached'); atan2 gives "
        "pi/2 for h = 0 < w and 0 for a point box (w = h = 0), whose gradient is taken as 0",
        R.complete_box_iou_loss,
        variants={
            "alpha_gradient": "'through' (canonical: alpha differentiated) or 'detached' (alpha held constant in "
            "the gradient, torchvision; the same value)"
        },
        variant_values={"alpha_gradient": R.ALPHA_GRADIENTS},
        value_range=(0.0, 3.0),
        relations=_AT_LEAST_IOU,
    ),
)
