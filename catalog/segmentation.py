"""Catalog entries of the segmentation losses (Dice, Jaccard, Tversky, their compositions, boundary).

Examples are (N, C, *) with N <= 3, C <= 3 and at most 5 x 5 pixels. Masks are drawn in one of the
hard shapes (empty, full, a single pixel, random, soft), per (sample, channel), so one example mixes
them; predictions are logits (the extreme regime reaches +-1e4, where p is exactly 0 or 1) or, with
``from_logits=False``, probabilities (exactly 0 and 1 included).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from hypothesis import strategies as st

from lossguard.catalog.classification import OUT_OF_RANGE
from lossguard.catalog.common import ANYWHERE, SHAPE_MISMATCH, family_entry, param_case, positive, tags, without
from lossguard.harness.kernel import strategies as S
from lossguard.harness.kernel.model import NO_RELATIONS, ErrorCase, Example, LossSpec, Part, Relations
from lossguard.reference import segmentation as R

FAMILY = "segmentation"
MASKS = ("empty", "full", "single pixel", "random", "soft")
OVERLAP = ("overlap_range", "batch_of_one")


def _shape(draw) -> tuple[int, ...]:
    n = draw(st.integers(1, 3), label="N")
    c = draw(st.integers(1, 3), label="C")
    spatial = draw(st.sampled_from([(), (1,), (4,), (2, 3), (3, 3), (5, 5)]), label="spatial dims")
    return (n, c, *spatial)


def masks(draw, shape: tuple[int, ...], regime: str) -> np.ndarray:
    """A target (N, C, *) whose every (sample, channel) mask is empty, full, one pixel, random or soft."""
    y = np.zeros(shape)
    for index in np.ndindex(*shape[:2]):
        kind = draw(st.sampled_from(MASKS[:4] if regime == "extreme" else MASKS), label="mask")
        pixels = shape[2:]
        if kind == "full":
            y[index] = 1.0
        elif kind == "single pixel":
            flat = np.zeros(int(np.prod(pixels)))
            flat[draw(st.integers(0, flat.size - 1), label="pixel")] = 1.0
            y[index] = flat.reshape(pixels)
        elif kind == "random":
            y[index] = S.array(draw, pixels, st.sampled_from([0.0, 1.0]))
        elif kind == "soft":
            y[index] = S.array(draw, pixels, S.probabilities(regime))
    return y


def predictions(draw, shape: tuple[int, ...], dtype: str, regime: str, from_logits: bool) -> np.ndarray:
    return S.array(draw, shape, S.logits(dtype, regime) if from_logits else S.probabilities(regime))


def _smooth() -> st.SearchStrategy[float]:
    return positive(1e-3, 10.0, (1.0, 1e-5, 0.5))


def _overlap_examples(extra: dict) -> Callable[..., Example]:
    def build(draw, dtype: str, regime: str, choose) -> Example:
        shape = _shape(draw)
        params = choose(
            {
                "reduction": S.reduction(),
                "smooth": _smooth(),
                "from_logits": st.booleans(),
                "batch": st.booleans(),
                **extra,
            }
        )
        x = predictions(draw, shape, dtype, regime, params["from_logits"])
        return Example({"input": x, "target": masks(draw, shape, regime)}, params)

    return build


_TVERSKY_WEIGHT = st.one_of(st.floats(0.0, 2.0), st.sampled_from([0.0, 0.5, 1.0, 0.3, 0.7]))


def _multiclass_examples(draw, dtype: str, regime: str, choose) -> Example:
    n, _, *spatial = _shape(draw)
    c = draw(st.integers(2, 4), label="C")
    params = choose(
        {
            "reduction": S.reduction(),
            "smooth": _smooth(),
            "ignore_index": st.sampled_from([None, -100, 0]),
            "batch": st.booleans(),
        }
    )
    target = np.asarray(S.class_indices(draw, (n, *spatial), c, params.get("ignore_index")))
    if draw(st.booleans(), label="one class everywhere"):
        target = np.full_like(target, draw(st.integers(0, c - 1), label="the class"))
    return Example({"input": predictions(draw, (n, c, *spatial), dtype, regime, True), "target": target}, params)


def _bce_dice_examples(draw, dtype: str, regime: str, choose) -> Example:
    shape = _shape(draw)
    weights = positive(0.0, 2.0, (0.5, 1.0, 0.0))
    params = choose({"bce_weight": weights, "dice_weight": weights, "smooth": _smooth()})
    x = predictions(draw, shape, dtype, regime, True)
    return Example({"input": x, "target": masks(draw, shape, regime)}, params)


def _ce_dice_examples(draw, dtype: str, regime: str, choose) -> Example:
    example = _multiclass_examples(draw, dtype, regime, lambda strategies: {})
    weights = positive(0.0, 2.0, (0.5, 0.0))
    params = choose({"ce_weight": weights, "dice_weight": weights, "smooth": _smooth()})
    return Example(example.args, params)


def _boundary_examples(draw, dtype: str, regime: str, choose) -> Example:
    """The distance map of a drawn mask (signed_distance_map), or free values (it is an input)."""
    shape = _shape(draw)
    params = choose({"reduction": S.reduction(), "from_logits": st.booleans()})
    x = predictions(draw, shape, dtype, regime, params["from_logits"])
    if draw(st.booleans(), label="distance map of a mask"):
        d = R.signed_distance_map(masks(draw, shape, "extreme"))
    else:
        d = S.array(draw, shape, S.reals(dtype, "typical"))
    return Example({"input": x, "distance_map": d}, params)


def _perfect_overlap(example: Example, strength: float) -> Example:
    """A non-empty hard mask and predictions equal to it: p = y (probabilities) or logits (2y - 1) 1e4
    (sigmoid is then exactly 0 or 1 in every dtype): TP = sum y, FP = FN = 0, so the loss is exactly 0."""
    y = (np.asarray(example.args["target"]) > 0.5).astype(np.float64)
    flat = y.reshape(*y.shape[:2], -1)
    flat[:, :, 0] = 1.0
    y = flat.reshape(y.shape)
    x = y if example.params.get("from_logits") is False else (2 * y - 1) * 1e4
    return example.replace({"input": x, "target": y})


def _perfect_multiclass(example: Example, strength: float) -> Example:
    """Logits 1e4 at the target class, 0 elsewhere: softmax is exactly the one-hot target (absent classes
    have p = 0 exactly, FP = FN = 0 there too)."""
    t = np.asarray(example.args["target"])
    z = np.asarray(example.args["input"])
    target = np.where((t >= 0) & (t < z.shape[1]), t, 0)
    onehot = np.moveaxis(np.eye(z.shape[1])[target], -1, 1)
    return example.replace({"input": onehot * 1e4, "target": target})


def _sweep_overlap(s: np.ndarray) -> Example:
    """One pixel per sample, target 1: per-pixel dice as a function of the logit."""
    return Example({"input": s[:, None], "target": np.ones((s.size, 1))}, {"reduction": "none"})


def _sweep_boundary(s: np.ndarray) -> Example:
    return Example({"input": s[:, None], "distance_map": np.ones((s.size, 1))}, {"reduction": "none"})


_PROBABILITY_OUTSIDE = ErrorCase(
    "an input probability outside [0, 1] (1.5) with from_logits=False",
    lambda ex: ex.replace({"input": np.full(np.shape(ex.args["input"]), 1.5)}, from_logits=False),
    needs=("from_logits",),
)
_SMOOTH = param_case("smooth", -1.0, "smooth must be non-negative")
_DISTANCE_MISMATCH = ErrorCase(
    "distance_map with a trailing extra dim of size 1 (a different shape)",
    lambda ex: ex.replace({"distance_map": np.asarray(ex.args["distance_map"])[..., None]}),
)
_TARGET_MISMATCH = ErrorCase(
    "target (N, *) with a trailing extra dim of size 1",
    lambda ex: ex.replace({"target": np.asarray(ex.args["target"])[..., None]}),
)
_BATCH_ONLY_PER_SAMPLE = {"batch": False}
_SUMS = "; sums over the spatial dims per (sample, channel), also over the batch with batch=True"
_NO_REDUCTION = "no reduction parameter: one scalar, a mean over the whole batch (reduction and batch do not apply)"


segmentation_entry = family_entry(family=FAMILY)  # the family's defaults


_EMPTY = "'scored' (canonical) or 'zero': a channel whose target is empty contributes 0 (segmentation_models_pytorch)"
_INTERSECTION = (
    "'product' (canonical: TP = sum(p y)) or 'min': TP = sum(min(p, y)), identical for hard targets (Wang et al. "
    "2023, segmentation_models_pytorch); a kink where p = y"
)


def _symmetric_emptiness(example: Example) -> bool:
    """overlap_symmetry's exact domain: under empty='zero' an empty target scores 0, and swapping prediction and
    target keeps the value only where every channel's prediction and target are both empty or both not."""
    if example.params.get("empty", "scored") == "scored":
        return True
    axes = ((0,) if example.params.get("batch", False) else ()) + tuple(range(2, np.ndim(example.args["input"])))
    p, y = (np.sum(np.asarray(example.args[k], dtype=np.float64), axis=axes) > 0 for k in ("input", "target"))
    return bool(np.all(p == y))


# every value of the overlap losses' variants (the reference's tuples): what a failure's diagnosis tries
_OVERLAP_VALUES = {"smooth_counted": tuple(R.SMOOTH_COUNTED), "empty": R.EMPTY, "intersection": R.INTERSECTIONS}


def _overlap(
    name: str,
    definition: str,
    reference,
    examples,
    properties: dict,
    relations: Relations = NO_RELATIONS,
    smooth_counted: str = "",
) -> LossSpec:
    return segmentation_entry(
        name=name,
        definition=definition + _SUMS,
        reference=reference,
        examples=examples,
        properties=properties,
        differentiable=("input", "target"),
        error_cases=(SHAPE_MISMATCH, _PROBABILITY_OUTSIDE, _SMOOTH),
        perfect=_perfect_overlap,
        sweep=_sweep_overlap,
        kinks=R.overlap_kinks,
        domains={"overlap_symmetry": _symmetric_emptiness},
        caveats="batch (row independence) holds for batch=False only: batch=True sums over the batch",
        relations=relations,
        variants={
            **({"smooth_counted": smooth_counted} if smooth_counted else {}),
            "empty": _EMPTY,
            "intersection": _INTERSECTION,
        },
        variant_values={k: v for k, v in _OVERLAP_VALUES.items() if k != "smooth_counted" or smooth_counted},
    )


_BINARY = ("non_negative", "zero_at_perfect", "overlap_symmetry", "empty_masks_finite", *OVERLAP)
_COMPOSITE = {**without(tags("non_negative", "zero_at_perfect"), "reduction", "batch"), "composite_sum": ANYWHERE}

SEGMENTATION: tuple[LossSpec, ...] = (
    _overlap(
        "dice_loss",
        "1 - (2 sum(p y) + smooth) / (sum p + sum y + smooth)",
        R.dice_loss,
        _overlap_examples({}),
        tags(
            "non_negative",
            "zero_at_perfect",
            "overlap_symmetry",
            "empty_masks_finite",
            *OVERLAP,
            batch=_BATCH_ONLY_PER_SAMPLE,
        ),
        smooth_counted="'once' (canonical) or 'twice': (TP + s) / (TP + (FP + FN) / 2 + s), Dice(2 s) "
        "(segmentation_models_pytorch)",
    ),
    segmentation_entry(
        name="multiclass_dice_loss",
        definition="softmax over C, one-hot target indices, dice_loss per class, mean over classes (and samples); "
        "pixels whose target is ignore_index take no part; 'none' is (N, C), or (C,) with batch=True",
        reference=R.multiclass_dice_loss,
        examples=_multiclass_examples,
        properties=tags("non_negative", "zero_at_perfect", *OVERLAP, batch=_BATCH_ONLY_PER_SAMPLE),
        error_cases=(OUT_OF_RANGE, _TARGET_MISMATCH, _SMOOTH),
        perfect=_perfect_multiclass,
        caveats="batch (row independence) holds for batch=False only; not symmetric: the target is class "
        "indices, the prediction a softmax",
        kinks=R.multiclass_kinks,
        variants={
            "smooth_counted": "'once' (canonical) or 'twice': Dice(2 s) per class (segmentation_models_pytorch)",
            "empty": "'scored' (canonical) or 'zero': a class absent from the target contributes 0 "
            "(segmentation_models_pytorch)",
            "intersection": "'product' (canonical) or 'min': TP = sum(min(p, y)), the same value for one-hot "
            "targets, a kink where p rounds to 1 (segmentation_models_pytorch)",
            "smoothing": "'both' (canonical) or 'denominator': 1 - 2 TP / (sum p + sum y + s), the smoothing only "
            "guarding the division (kornia)",
            "pooling": "'none' (canonical: a Dice per (sample, class)), 'classes' (one Dice per sample, its sums over "
            "every class and pixel: kornia's average='micro') or 'present' (per sample, the mean loss of the classes "
            "present in its target, 1 without a valid pixel: kornia's average='macro'); pooled, 'none' is (N,), or "
            "() with batch=True",
        },
        variant_values={**_OVERLAP_VALUES, "smoothing": R.SMOOTHING, "pooling": R.POOLING},
    ),
    _overlap(
        "jaccard_loss",
        "1 - (sum(p y) + smooth) / (sum p + sum y - sum(p y) + smooth)",
        R.jaccard_loss,
        _overlap_examples({}),
        tags(
            "non_negative",
            "zero_at_perfect",
            "overlap_symmetry",
            "empty_masks_finite",
            *OVERLAP,
            batch=_BATCH_ONLY_PER_SAMPLE,
        ),
        smooth_counted="'once' (canonical) or 'half': (2 TP + s) / (2 (TP + FP + FN) + s), Jaccard(s / 2) "
        "(MONAI's DiceLoss(jaccard=True))",
    ),
    _overlap(
        "tversky_loss",
        "1 - (TP + smooth) / (TP + alpha FP + beta FN + smooth), TP = sum(p y), FP = sum(p (1-y)), "
        "FN = sum((1-p) y); alpha, beta >= 0; alpha = beta = 0.5 and smooth = s is dice_loss with 2 s, "
        "alpha = beta = 1 is jaccard_loss",
        R.tversky_loss,
        _overlap_examples({"alpha": _TVERSKY_WEIGHT, "beta": _TVERSKY_WEIGHT}),
        tags(
            "non_negative",
            "zero_at_perfect",
            "overlap_symmetry",
            "tversky_identities",
            "empty_masks_finite",
            *OVERLAP,
            batch=_BATCH_ONLY_PER_SAMPLE,
        ),
        relations=Relations(dice="dice_loss", jaccard="jaccard_loss"),
    ),
    segmentation_entry(
        name="bce_dice_loss",
        relations=Relations(
            parts=(
                Part("binary_cross_entropy_with_logits", "bce_weight"),
                Part("dice_loss", "dice_weight", shared=("smooth",)),
            )
        ),
        definition="bce_weight * binary_cross_entropy_with_logits(mean) + dice_weight * dice_loss(mean)",
        reference=R.bce_dice_loss,
        examples=_bce_dice_examples,
        properties={
            **without(tags("non_negative", "zero_at_perfect"), "reduction", "batch"),
            "composite_sum": ANYWHERE,
            "empty_masks_finite": ANYWHERE,
        },
        differentiable=("input", "target"),
        error_cases=(SHAPE_MISMATCH, _SMOOTH),
        perfect=_perfect_overlap,
        caveats=_NO_REDUCTION,
    ),
    segmentation_entry(
        name="ce_dice_loss",
        relations=Relations(
            parts=(
                Part("cross_entropy", "ce_weight"),
                Part("multiclass_dice_loss", "dice_weight", shared=("smooth",)),
            )
        ),
        definition="ce_weight * cross_entropy + dice_weight * multiclass_dice_loss",
        reference=R.ce_dice_loss,
        examples=_ce_dice_examples,
        properties={
            **without(tags("non_negative", "zero_at_perfect"), "reduction", "batch"),
            "composite_sum": ANYWHERE,
        },
        error_cases=(OUT_OF_RANGE, _SMOOTH),
        perfect=_perfect_multiclass,
        caveats=_NO_REDUCTION,
    ),
    segmentation_entry(
        name="boundary_loss",
        definition="mean of p * distance_map (Kervadec et al. 2019), distance_map the signed euclidean distance "
        "to the target boundary (reference.segmentation.signed_distance_map: positive outside, negative inside, "
        "all zero for an empty or full mask)",
        reference=R.boundary_loss,
        examples=_boundary_examples,
        properties=tags(),
        differentiable=("input", "distance_map"),
        error_cases=(_DISTANCE_MISMATCH, _PROBABILITY_OUTSIDE),
        sweep=_sweep_boundary,
        caveats="may be negative (p times a negative distance inside the object): no non_negative, and no zero "
        "at a perfect prediction (the loss is minimised, not zeroed, by p = 1 inside)",
    ),
)
