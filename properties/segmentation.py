"""Family properties of the segmentation losses (Dice, Jaccard, Tversky, their compositions, boundary).

Notation: p the predicted probabilities (sigmoid of the logits, or the input with from_logits=False),
y the target mask, TP = sum(p y), FP = sum(p (1 - y)), FN = sum((1 - p) y) per (sample, channel).
"""

from __future__ import annotations

import numpy as np
from hypothesis import strategies as st

from lossguard.properties.base import FLOAT64_AND_FLOAT32, NONE, first_index, numbers_at, register


@register("overlap_range", "Dice, Jaccard and Tversky values lie in [0, 1]")
def overlap_range(subject, data) -> None:
    """0 <= v <= 1 for every (sample, channel) value, up to the rounding the tolerance allows.

    Exact form: v = (alpha FP + beta FN) / (TP + alpha FP + beta FN + smooth) with TP, FP, FN >= 0
    (p, y in [0, 1]), alpha, beta, smooth >= 0: a non-negative numerator over a denominator at least as
    large. Dice is alpha = beta = 1/2 (smooth / 2), Jaccard alpha = beta = 1, multiclass Dice the same per
    class of the softmax.
    """
    example = subject.draw(data, regime="any", reduction=NONE)
    value = subject.value(example)
    scale = subject.scale(example)
    allowed = subject.compare(value, 0.0, scale).allowed
    outside = (value < -allowed) | (value > 1 + allowed) | np.isnan(value)
    if np.any(outside):
        index = tuple(int(i) for i in np.argwhere(outside)[0]) if value.ndim else ()
        # the value, the end of [0, 1] it passed (none for a NaN: finite in the range), the scale compared with
        end = None if np.isnan(value[index]) else 0.0 if value[index] < 0 else 1.0
        subject.fail(
            f"loss at index {index} = {value[index]!r}, but should lie in [0, 1]",
            example,
            numbers=numbers_at(index, value, end, scale),
        )


@register("overlap_symmetry", "from probabilities, the loss is symmetric in prediction and target (alpha = beta)")
def overlap_symmetry(subject, data) -> None:
    """v(p, y) = v(y, p) for p, y in [0, 1] with from_logits=False.

    Exact form: swapping p and y keeps TP = sum(p y) and exchanges FP and FN, so Dice and Jaccard (alpha
    = beta) are symmetric; Tversky only when alpha = beta (the property draws alpha and sets beta = alpha).
    """
    subject.need(subject.accepts("from_logits"))
    example = subject.draw(data, regime="any", from_logits=False, reduction=NONE)
    if "beta" in subject.spec.params:
        alpha = example.params["alpha"]
        subject.need(subject.accepts("beta") or alpha == subject.spec.params["beta"])
        example = example.replace(beta=alpha)
    subject.need(subject.in_domain(example))  # the entry's exact domain (an empty target scored 0: not symmetric)
    swapped = example.replace({"input": example.args["target"], "target": example.args["input"]})
    scale = subject.scale(example) + subject.scale(swapped)
    subject.expect_close(
        "loss with prediction and target swapped", subject.value(swapped), subject.value(example), scale, swapped
    )


@register(
    "tversky_identities",
    "Tversky(1/2, 1/2, smooth = s) = Dice(smooth = 2 s); Tversky(1, 1, s) = Jaccard(s)",
    needs=("relations.dice", "relations.jaccard"),
    checks=("dice", "jaccard"),  # alpha = beta = 1/2; alpha = beta = 1
)
def tversky_identities(subject, data) -> None:
    """Exact forms, from v = 1 - (TP + s) / (TP + alpha FP + beta FN + s) and sum p + sum y = 2 TP + FP + FN:

    * alpha = beta = 1/2: multiplying numerator and denominator by 2 gives
      1 - (2 TP + 2 s) / (sum p + sum y + 2 s), which is Dice with smooth 2 s;
    * alpha = beta = 1: TP + FP + FN = sum p + sum y - TP, which is Jaccard with smooth s.

    The implementation's Tversky is compared with the float64 references of the entries it names
    (``relations.dice``, ``relations.jaccard``: dice_loss and jaccard_loss).
    """
    subject.need(all(subject.accepts(p) for p in ("alpha", "beta", "smooth")))
    example = subject.draw(data, regime="any", reduction=NONE)
    s = example.params["smooth"]
    shared = {k: v for k, v in example.params.items() if k not in ("alpha", "beta", "smooth")}
    relations = subject.spec.relations
    for check, weight, other, other_smooth in (
        ("dice", 0.5, relations.dice, 2 * s),
        ("jaccard", 1.0, relations.jaccard, s),
    ):
        mine = example.replace(alpha=weight, beta=weight)
        theirs = example.__class__(example.args, {**shared, "smooth": other_smooth})
        expected = subject.reference(theirs, subject.catalog(other))
        subject.expect_close(
            f"tversky at alpha = beta = {weight:g} (= {other})",
            subject.value(mine),
            expected,
            subject.scale(mine),
            mine,
            check=check,
        )


@register("batch_of_one", "on a batch of one, batch=True equals the per-sample form")
def batch_of_one(subject, data) -> None:
    """With N = 1 the batch sum has one term, so batch=True's (C,) values equal batch=False's (1, C) row."""
    subject.need(subject.accepts("batch"))
    example = subject.draw(data, regime="any", batch=False, reduction=NONE)
    one = example.replace({k: np.asarray(v)[:1] for k, v in example.args.items()})
    pooled = one.replace(batch=True)
    per_sample = subject.value(one)
    expected = per_sample[0] if per_sample.ndim == 2 else per_sample
    subject.expect_close(
        "loss with batch=True on a batch of one",
        subject.value(pooled),
        expected,
        subject.scale(pooled) + subject.scale(one).reshape(np.shape(expected)),
        pooled,
    )


def _near_zero(data, shape: tuple[int, ...], logits: bool) -> np.ndarray:
    """Predictions of (nearly) 0: logits far below 0, or probabilities 0 and tiny ones."""
    values = [-1e4, -100.0, -40.0, -20.0] if logits else [0.0, 1e-30, 1e-7]
    size = int(np.prod(shape))
    drawn = data.draw(st.lists(st.sampled_from(values), min_size=size, max_size=size), label="predictions")
    return np.asarray(drawn, dtype=np.float64).reshape(shape)


@register(
    "empty_masks_finite",
    "finite value and gradients on empty masks with predictions near 0",
    dtypes=FLOAT64_AND_FLOAT32,
    checks=("value", "gradient"),  # each finite (a clearer message first) and equal to the reference's
)
def empty_masks_finite(subject, data) -> None:
    """All targets 0 and p ~ 0 (p = 0 exactly at logits -1e4 or probability 0): TP = FN = 0 and FP ~ 0,
    so v = alpha FP / (alpha FP + smooth) is finite (0 at FP = 0) for every smooth > 0, and so are its
    gradients; both are also compared with the reference."""
    example = subject.draw(data, regime="typical", reduction=NONE)
    shape = np.shape(example.args["input"])
    logits = example.params.get("from_logits", True) is not False
    empty = subject.rounded(example.replace({"input": _near_zero(data, shape, logits), "target": np.zeros(shape)}))
    names = subject.differentiable(empty)
    outcome = subject.call(empty, grad=names)
    expected = subject.reference(empty)
    if not np.all(np.isfinite(outcome.value)):
        subject.fail(
            f"loss = {outcome.value.tolist()}, but should be finite (exact {expected.tolist()})",
            empty,
            "value",
            numbers=numbers_at(first_index(~np.isfinite(outcome.value)), outcome.value, expected, None),
        )
    subject.expect_close("loss on empty masks", outcome.value, expected, subject.scale(empty), empty, check="value")
    with np.errstate(all="ignore"):
        grads = subject.spec.reference.grad(**empty.kwargs())
    for name in names:
        if not np.all(np.isfinite(outcome.grads[name])):
            grad = outcome.grads[name]
            subject.fail(
                f"d loss / d {name} has non-finite entries {grad.ravel().tolist()}, but should be finite",
                empty,
                "gradient",
                numbers=numbers_at(first_index(~np.isfinite(grad)), grad, grads[name].value, None),
            )
        subject.expect_close(
            f"d loss / d {name} on empty masks",
            outcome.grads[name],
            grads[name].value,
            grads[name].scale,
            empty,
            check="gradient",
        )


@register(
    "composite_sum",
    "bce_dice / ce_dice = w_1 * (its cross-entropy) + w_2 * (its Dice), each a mean",
    needs=("relations.parts",),
    checks=("parts", "sum"),  # each part alone times its weight; the weighted loss the sum of the parts
)
def composite_sum(subject, data) -> None:
    """L(w_1, w_2, ...) = w_1 L_1 + w_2 L_2 + ... exactly (each part with its 'mean'), the parts and their
    weight parameters as the entry states them (``relations.parts``: bce_dice_loss is bce_weight x
    binary_cross_entropy_with_logits + dice_weight x dice_loss): the implementation with every other weight
    0 must give each part times its weight (against that part's float64 reference), and the weighted loss
    must be the sum of the parts."""
    terms = subject.spec.relations.parts
    subject.need(all(subject.accepts(term.weight) for term in terms))
    example = subject.draw(data, regime="any")
    values = []
    for term in terms:
        weight = example.params[term.weight]
        alone = example.replace(**{t.weight: (weight if t is term else 0.0) for t in terms})
        spec = subject.catalog(term.entry)
        part = example.__class__(example.args, {k: example.params[k] for k in term.shared})
        value = subject.value(alone)
        expected = weight * subject.reference(part, spec)
        scale = abs(weight) * subject.scale(part, spec)
        subject.expect_close(f"{spec.name} part (weight {weight:g})", value, expected, scale, alone, check="parts")
        values.append(value)
    total = values[0]
    for value in values[1:]:
        total = total + value
    subject.expect_close("weighted loss", subject.value(example), total, subject.scale(example), example, check="sum")
