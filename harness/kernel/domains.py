"""The named parts of a contract a binding may declare its implementation supports (``--domain NAME``).

Each is a ``Domain``: a predicate, and where it can, a projection that maps a drawn example of the catalog's
contract into the part (the result still inside the contract, so the reference stays the judge). Only examples
inside the declared parts are ever used to judge the implementation (``Subject.supported``); a part that an
implementation needs but does not declare shows as an ``error`` raised for a reason other than the property.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from lossguard.harness.kernel.model import Domain, Example


def _arrays(example: Example) -> dict[str, np.ndarray]:
    """The array arguments; a NumPy scalar (a 0-d class index, np.argmax's result) as a 0-d array."""
    return {k: np.asarray(v) for k, v in example.args.items() if isinstance(v, (np.ndarray, np.generic))}


def _float_target(example: Example) -> np.ndarray | None:
    target = _arrays(example).get("target")
    if target is not None and np.issubdtype(target.dtype, np.floating):
        return target
    return None


def _index_target(example: Example) -> np.ndarray | None:
    target = _arrays(example).get("target")
    if target is not None and np.issubdtype(target.dtype, np.integer):
        return target
    return None


def _hard(example: Example) -> bool:
    target = _float_target(example)
    return target is None or bool(np.all((target == 0.0) | (target == 1.0)))


def _harden(example: Example) -> Example:
    target = _float_target(example)
    return example.replace({"target": (target >= 0.5).astype(np.float64)})


def _input_ndim(example: Example) -> int:
    return np.ndim(example.args.get("input", example.args.get(next(iter(example.args)))))


def _with_spatial(example: Example) -> Example:
    """Every argument with a trailing pixel axis of size 1: (N, C) -> (N, C, 1), class indices (N,) -> (N, 1)."""
    return example.replace({k: v[..., None] for k, v in _arrays(example).items()})


def _with_batch(example: Example) -> Example:
    """Every argument as a batch of one: (C,) -> (1, C), a class index () -> (1,)."""
    return example.replace({k: v[None, ...] for k, v in _arrays(example).items()})


def _ignore_index(example: Example) -> Any:
    return example.params.get("ignore_index")


def _no_ignored(example: Example) -> bool:
    target, ignore = _index_target(example), _ignore_index(example)
    return target is None or ignore is None or not bool(np.any(target == ignore))


def _unignored(example: Example) -> Example:
    target = _index_target(example)
    return example.replace({"target": np.where(target == _ignore_index(example), 0, target)})


def _indices(example: Example) -> bool:
    return _float_target(example) is None or np.ndim(example.args["target"]) != _input_ndim(example)


def _to_indices(example: Example) -> Example:
    """Class probabilities (N, C, *) as the class of highest probability (N, *): a class-index target."""
    return example.replace({"target": np.argmax(_float_target(example), axis=1 if _input_ndim(example) > 1 else 0)})


def _probabilities(example: Example) -> bool:
    return _index_target(example) is None


def _to_probabilities(example: Example) -> Example | None:
    """Class indices as one-hot class probabilities (classes on axis 1): the same cross-entropy."""
    target, n_classes = _index_target(example), np.shape(example.args["input"])[1 if _input_ndim(example) > 1 else 0]
    onehot = np.moveaxis(np.eye(n_classes)[np.clip(target, 0, n_classes - 1)], -1, 1 if target.ndim else 0)
    return example.replace({"target": onehot})


def _box_arrays(example: Example) -> dict[str, np.ndarray]:
    """The box arguments (``boxes*``) of four coordinates; a box array of another shape (an error case) is not
    this domain's business."""
    return {k: v for k, v in _arrays(example).items() if k.startswith("boxes") and np.shape(v)[-1:] == (4,)}


def _proper_boxes(example: Example) -> bool:
    boxes = _box_arrays(example).values()
    return all(bool(np.all((b[..., 2] > b[..., 0]) & (b[..., 3] > b[..., 1]))) for b in boxes)


def _made_proper(example: Example) -> Example:
    """Every zero side of a box given the length of its other side (1 where both are 0): x2 = x1 + h for a box of
    zero width, y2 = y1 + w for one of zero height. A box and its copy stay identical; the sides stay within the
    extent the catalog draws (a side is at most half of it)."""
    proper = {}
    for name, b in _box_arrays(example).items():
        b = np.array(b, dtype=np.float64)
        w, h = b[..., 2] - b[..., 0], b[..., 3] - b[..., 1]
        side = np.where(w > 0, w, np.where(h > 0, h, 1.0))
        b[..., 2] = np.where(w > 0, b[..., 2], b[..., 0] + side)
        b[..., 3] = np.where(h > 0, b[..., 3], b[..., 1] + side)
        proper[name] = b
    return example.replace(proper)


def _integer_pair_labels(example: Example) -> bool:
    label = example.args.get("label")
    return not isinstance(label, np.ndarray) or (
        np.issubdtype(label.dtype, np.integer) and bool(np.all((label == 0) | (label == 1)))
    )


def _to_integer_pair_labels(example: Example) -> Example:
    """Pair labels rounded to 0 or 1, as integers (a pair is similar or dissimilar, never in between)."""
    return example.replace({"label": (np.asarray(example.args["label"]) >= 0.5).astype(np.int64)})


def _flat(example: Example) -> bool:
    return _input_ndim(example) <= 2


def _flattened(example: Example) -> Example:
    """(N, C, *) logits and targets as (N * prod(*), C) rows: the positions become samples (each element's loss,
    and so the mean over the elements, unchanged; class-index targets (N, *) as (N * prod(*),))."""
    z = np.asarray(example.args["input"])
    rows = np.moveaxis(z, 1, -1).reshape(-1, z.shape[1])
    target = np.asarray(example.args["target"])
    target = np.moveaxis(target, 1, -1).reshape(-1, z.shape[1]) if target.ndim == z.ndim else target.reshape(-1)
    return example.replace({"input": rows, "target": target})


def _one_channel(example: Example) -> bool:
    return _input_ndim(example) >= 2 and np.shape(example.args["input"])[1] == 1


def _first_channel(example: Example) -> Example:
    """Every (N, C, *) argument as its first channel (N, 1, *): one mask, one prediction per sample."""
    return example.replace({k: v[:, :1] for k, v in _arrays(example).items() if v.ndim == _input_ndim(example)})


def _dense_target(example: Example) -> bool:
    return np.shape(example.args.get("target")) == np.shape(example.args.get("input"))


def _smoothing_below_one(example: Example) -> bool:
    return example.params.get("label_smoothing", 0.0) < 1.0


def _indices_in_range(example: Example) -> bool:
    target = _index_target(example)
    classes = np.shape(example.args["input"])[1 if _input_ndim(example) > 1 else 0] if _input_ndim(example) else 0
    return target is None or bool(np.all((target >= 0) & (target < classes)))


def _at_least_two_classes(example: Example) -> bool:
    return _input_ndim(example) >= 1 and np.shape(example.args["input"])[1 if _input_ndim(example) > 1 else 0] >= 2


def _image(example: Example) -> bool:
    return _input_ndim(example) == 4


def _as_image(example: Example) -> Example:
    """(N, C) and (N, C, L) inputs as (N, C, 1, 1) and (N, C, L, 1), every argument given the same trailing axes
    (class indices (N, *) too); other shapes unchanged (then discarded)."""
    missing = 4 - _input_ndim(example)
    if missing < 0 or _input_ndim(example) < 2:
        return example
    return example.replace({k: v.reshape(v.shape + (1,) * missing) for k, v in _arrays(example).items()})


BACKGROUND_ALPHA_SLACK = 2.0**-7  # alpha_0 against 1 - alpha_1 after each is rounded to the dtype (bfloat16's ulp)


def _background_alpha(example: Example) -> bool:
    alpha = example.params.get("alpha")
    if alpha is None:
        return True
    a = np.asarray(alpha, dtype=np.float64)
    if a.ndim != 1:
        return False
    return a.size == 1 or (bool(np.all(a[1:] == a[1])) and abs(a[0] - (1.0 - a[1])) <= BACKGROUND_ALPHA_SLACK)


def _as_background_alpha(example: Example) -> Example:
    """A number a (or a class array's element 1, its element 0 when C = 1) as the (C,) array [1 - a, a, ..., a]."""
    alpha = np.asarray(example.params["alpha"], dtype=np.float64)
    n_classes = np.shape(example.args["input"])[1 if _input_ndim(example) > 1 else 0]
    a = float(alpha if alpha.ndim == 0 else (alpha[1] if alpha.size > 1 else 1.0 - alpha[0]))
    return example.replace(alpha=np.array([1.0 - a] + [a] * (n_classes - 1)))


def _non_constant_rows(example: Example) -> bool:
    """Every row (along the last axis) of every floating-point array argument holds at least two distinct entries."""
    rows = [v for v in _arrays(example).values() if np.issubdtype(v.dtype, np.floating) and v.ndim >= 1]
    return all(v.shape[-1] >= 2 and bool(np.all(np.ptp(v, axis=-1) > 0)) for v in rows)


DOMAINS: Mapping[str, Domain] = {
    d.name: d
    for d in (
        Domain("hard-targets", "targets exactly 0 or 1 (no soft labels); drawn targets rounded", _hard, _harden),
        Domain(
            "spatial",
            "inputs with at least one spatial dimension, (N, C, *) with * non-empty; (N, C) drawn as (N, C, 1)",
            lambda e: _input_ndim(e) >= 3,
            _with_spatial,
        ),
        Domain(
            "batched",
            "batched inputs only (N, C, ...), no unbatched (C,); an unbatched draw as a batch of one",
            lambda e: _input_ndim(e) >= 2,
            _with_batch,
        ),
        Domain(
            "several-samples",
            "a batch of two samples or more (N >= 2: a batch statistic, Barlow Twins' per-feature normalisation); "
            "a batch of one discarded",
            lambda e: _input_ndim(e) >= 2 and np.shape(next(iter(_arrays(e).values())))[0] >= 2,
        ),
        Domain(
            "no-ignore-index",
            "no target equal to ignore_index (it ignores nothing); such entries drawn as class 0",
            _no_ignored,
            _unignored,
        ),
        Domain(
            "class-indices",
            "class-index targets only; class probabilities drawn as their argmax",
            _indices,
            _to_indices,
        ),
        Domain(
            "class-probabilities",
            "class-probability targets only (soft targets); class indices drawn as one-hot probabilities",
            _probabilities,
            _to_probabilities,
        ),
        Domain(
            "proper-boxes",
            "boxes with x1 < x2 and y1 < y2 (no empty box); a drawn zero side given the length of the other side",
            _proper_boxes,
            _made_proper,
        ),
        Domain("two-classes", "at least two classes (C >= 2)", _at_least_two_classes),
        Domain(
            "image",
            "images (N, C, H, W): exactly two spatial axes; (N, C) drawn as (N, C, 1, 1), (N, C, L) as (N, C, L, 1)",
            _image,
            _as_image,
        ),
        Domain(
            "background-alpha",
            "alpha None or the class weights [1 - a, a, ..., a] (class 0 the background: a library's one number a); "
            "a drawn number a, or a class array's element 1, drawn as those weights",
            _background_alpha,
            _as_background_alpha,
        ),
        Domain(
            "one-channel",
            "one channel (N, 1, *): a single mask per sample (the library pools its channels, or weighs them "
            "against each other); drawn (N, C, *) arrays as their first channel",
            _one_channel,
            _first_channel,
        ),
        Domain(
            "pair-labels",
            "pair labels exactly 0 or 1, as integers (each pair similar or dissimilar: no soft label, no gradient "
            "in the label); drawn labels rounded",
            _integer_pair_labels,
            _to_integer_pair_labels,
        ),
        Domain(
            "dense-targets",
            "targets of the input's shape (the library reads a target of any other shape as class indices)",
            _dense_target,
        ),
        Domain(
            "smoothing-below-one",
            "label_smoothing below 1 (eps = 1, every label replaced by the uniform distribution, is rejected)",
            _smoothing_below_one,
        ),
        Domain(
            "no-spatial",
            "inputs (N, C) or (C,), no spatial axes; (N, C, *) drawn with its positions as rows (N * prod(*), C)",
            _flat,
            _flattened,
        ),
        Domain(
            "no-broadcast",
            "a target of the input's shape: the library documents taking a target of another shape (broadcast, or "
            "a channel axis added: optax's 'shape broadcastable to that of predictions', '[..., 1] or [...]'), "
            "where the catalog's contract raises",
            _dense_target,
        ),
        Domain(
            "non-constant-rows",
            "every row of the float arrays (an embedding, along its last axis) holds at least two distinct entries "
            "(a distance that divides by the row's variance, pml's signal-to-noise ratio, is infinite at a constant "
            "row); other examples discarded",
            _non_constant_rows,
        ),
        Domain(
            "indices-in-range",
            "class indices in [0, C): the library takes one-hot targets, which no index outside has (its binding "
            "one-hot encodes the catalog's indices), so the out-of-range case is not its contract",
            _indices_in_range,
        ),
    )
}


def domain(name: str) -> Domain:
    """The part named ``name``; a ValueError that lists the names for any other."""
    try:
        return DOMAINS[name]
    except KeyError:
        raise ValueError(f"unknown domain {name!r}; known: {', '.join(DOMAINS)}") from None
