"""Catalog entries of the metric-learning and ranking losses.

The example builders reach the family's hard cases: embeddings of zero norm and of huge norm (1e4 and
beyond, capped per dtype so the exact losses stay representable), rows copied from another argument
(distances of exactly 0, all-equal similarities), pairs exactly at the margin, batches of one,
every label the same (batch-hard anchors without a positive or a negative), temperatures from 0.01
to 10 (as floats, and as 0-d arrays: a learnable temperature whose gradient is compared) and score
differences of +-1e4.
"""

from __future__ import annotations

import numpy as np
from hypothesis import strategies as st

from lossguard.catalog.common import family_entry, param_case, positive, tags, without
from lossguard.harness.kernel import strategies as S
from lossguard.harness.kernel.model import ErrorCase, Example, LossSpec
from lossguard.harness.kernel.seeded import first_rows
from lossguard.reference import metric as R

# magnitude caps of embedding coordinates per dtype (typical, extreme)
_EMBED_CAP = {"float16": (4.0, 30.0), "bfloat16": (10.0, 1e4), "float32": (10.0, 1e15), "float64": (10.0, 1e100)}
_DISTANCE_BASED = ("translation_invariance", "rotation_invariance", "margin_met")
_TEMPERATURE_VALUES = st.one_of(st.floats(0.01, 10.0), st.sampled_from([0.07, 0.5, 0.01, 10.0, 1.0]))
# a fixed temperature (a float) or a learnable one (a 0-d float64 array: its gradient is compared too)
_TEMPERATURES = st.one_of(_TEMPERATURE_VALUES, _TEMPERATURE_VALUES.map(np.asarray))


def _coordinates(dtype: str, regime: str) -> st.SearchStrategy[float]:
    bound = S.cap(_EMBED_CAP, dtype, regime)
    return S.mixed(bound, [0.0, 1.0, -1.0, 0.5, 1e-3, 1e4, -1e4, bound, -bound])


def _sizes(draw, max_rows: int = 4) -> tuple[int, int]:
    return draw(st.integers(1, max_rows), label="N"), draw(st.integers(1, 4), label="D")


def _mask(draw, n: int, label: str) -> np.ndarray:
    return np.array(draw(st.lists(st.booleans(), min_size=n, max_size=n), label=label), dtype=bool)


def _embeddings(draw, shape: tuple[int, ...], dtype: str, regime: str) -> np.ndarray:
    """Rows of coordinates; in the extreme regime some rows are exactly 0 (zero norm)."""
    x = S.array(draw, shape, _coordinates(dtype, regime))
    if regime == "extreme":
        x = np.where(_mask(draw, int(np.prod(shape[:-1])), "zero rows").reshape(shape[:-1])[..., None], 0.0, x)
    return x


def _copy_rows(draw, source: np.ndarray, target: np.ndarray, label: str) -> np.ndarray:
    """``target`` with some rows replaced by ``source``'s (distance exactly 0, similarity exactly 1)."""
    return np.where(_mask(draw, len(target), label)[:, None], source, target)


def _unit(x: np.ndarray) -> np.ndarray:
    """Unit rows in the direction of x (the first axis where x is 0)."""
    n = R.p_norm(x)
    first = np.zeros_like(x)
    first[..., 0] = 1.0
    return np.where(n[..., None] > 0, x / np.where(n > 0, n, 1.0)[..., None], first)


def _one_row(doubled: tuple[str, ...], sliced: str):
    """An invalid example: the batch doubled (so N >= 2), then ``sliced`` cut to one row (it broadcasts)."""

    def make(example: Example) -> Example:
        args = {k: np.concatenate([example.args[k], example.args[k]]) for k in doubled}
        args[sliced] = np.asarray(example.args[sliced])[:1]
        return example.replace(args)

    return make


# --- contrastive ------------------------------------------------------------------------------


def _contrastive_examples(draw, dtype, regime, choose) -> Example:
    n, dims = _sizes(draw)
    params = choose({"reduction": S.reduction(), "margin": positive(0.0, 3.0, (1.0, 0.0, 2.0))})
    x1 = _embeddings(draw, (n, dims), dtype, regime)
    x2 = _copy_rows(draw, x1, _embeddings(draw, (n, dims), dtype, regime), "x2 = x1 rows")
    if regime == "extreme":  # some pairs exactly at the margin (up to rounding): the hinge's kink
        at_margin = x1 + params["margin"] * _unit(_embeddings(draw, (n, dims), dtype, "typical"))
        x2 = np.where(_mask(draw, n, "at the margin")[:, None], at_margin, x2)
    label = S.array(draw, (n,), st.one_of(st.sampled_from([0.0, 1.0]), st.floats(0.0, 1.0)))
    return Example({"x1": x1, "x2": x2, "label": label}, params)


def _contrastive_kinks(example: Example, eps: float) -> np.ndarray:
    """Zero distance with a positive hinge (the norm's gradient), and d within rounding of the margin; with the
    variant squared=False also zero distance with a label other than 0 (label d is the norm itself)."""
    e = np.asarray(example.args["x1"]) - np.asarray(example.args["x2"])
    d = R.p_norm(e)
    margin = example.params["margin"]
    near = np.abs(d - margin) <= 8 * eps * (margin + R.distance_scale(e, d))
    norm_kink = margin > 0
    if not example.params.get("squared", True):
        norm_kink = norm_kink | (np.asarray(example.args["label"]) != 0)
    return near | ((d <= 8 * eps * R.p_norm(np.asarray(example.args["x1"]))) & norm_kink)


def _contrastive_perfect(example: Example, strength: float) -> Example:
    """Hard labels; similar pairs identical, dissimilar ones margin + 1 apart."""
    x1 = np.asarray(example.args["x1"])
    label = np.round(np.asarray(example.args["label"]))
    far = x1 + (example.params["margin"] + 1.0) * _unit(x1 - np.asarray(example.args["x2"]))
    return example.replace({"x2": np.where(label[:, None] > 0, x1, far), "label": label})


# --- triplet margin (torch) ----------------------------------------------------------------------


def _triplet_examples(draw, dtype, regime, choose) -> Example:
    n, dims = _sizes(draw)
    params = choose(
        {
            "reduction": S.reduction(),
            "margin": positive(1e-3, 3.0, (1.0, 0.5)),
            "p": st.sampled_from([2.0, 1.0, 3.0]),
            "eps": st.sampled_from([1e-6, 0.0]),
            "swap": st.booleans(),
        }
    )
    if draw(st.booleans(), label="violated triplets on a line"):  # random rows are mostly kinks in half precision
        # positive 2 k on one side, negative k on the other (k = 1/2 + margin): t = k + margin, every distance and
        # gap over the kinks' tolerance in bfloat16 (one coordinate: the distances' error scale is smallest)
        anchor = S.array(draw, (n, 1), _coordinates(dtype, "typical"))
        k = 0.5 + params["margin"]
        return Example({"anchor": anchor, "positive": anchor + 2.0 * k, "negative": anchor - k}, params)
    anchor = _embeddings(draw, (n, dims), dtype, regime)
    pos = _copy_rows(draw, anchor, _embeddings(draw, (n, dims), dtype, regime), "positive = anchor rows")
    neg = _copy_rows(draw, pos, _embeddings(draw, (n, dims), dtype, regime), "negative = positive rows")
    return Example({"anchor": anchor, "positive": pos, "negative": neg}, params)


def _triplet_kinks(example: Example, eps: float) -> np.ndarray:
    """The hinge at t = 0, a zero distance, and (with swap) d(p, n) tying d(a, n)."""
    a, p, n = (np.asarray(example.args[k]) for k in ("anchor", "positive", "negative"))
    q = example.params
    parts = R.triplet_parts(a, p, n, q["margin"], q["p"], q["eps"], q["swap"], q.get("eps_mode", "difference"))
    (_, d_ap, _, d_an, _, d_pn, _), t, scale = parts
    tol = 16 * eps * scale
    tie = q["swap"] & (np.abs(d_pn - d_an) <= tol)
    return (np.abs(t) <= tol) | (np.minimum(np.minimum(d_ap, d_an), d_pn) <= tol) | tie


def _triplet_perfect(example: Example, strength: float) -> Example:
    anchor = np.asarray(example.args["anchor"])
    away = _unit(np.asarray(example.args["negative"]) - anchor)
    return example.replace({"positive": anchor, "negative": anchor + (example.params["margin"] + 1.0) * away})


def _triplet_sweep(s: np.ndarray) -> Example:
    """anchor 0, negative 1, positive s: the hinge of |s| - 1 + margin."""
    return Example(
        {"anchor": np.zeros((s.size, 1)), "positive": s[:, None], "negative": np.ones((s.size, 1))},
        {"reduction": "none", "margin": 1.0, "p": 2.0, "eps": 1e-6, "swap": False},
    )


# --- batch-hard triplet ----------------------------------------------------------------------------


def _violated_triplets(draw, dims: int, dtype: str, params: dict) -> Example:
    """Three rows on a line through a drawn point: an anchor, its positive 10 k away and a negative 5 k away
    on the same side (k = 1 + margin), so both anchors of the pair are violated by 5 k + margin (a gradient
    that is not 0), and every gap between an anchor's distances is over 1/4 of them: no tie, no zero distance
    and no hinge within the kinks' tolerance even in bfloat16 (16 u of 4 (d_pos + d_neg))."""
    centre = S.array(draw, (dims,), _coordinates(dtype, "typical"))
    direction = _unit(_embeddings(draw, (dims,), dtype, "typical"))
    k = 1.0 + params["margin"]
    x = centre + np.array([0.0, 10.0 * k, 5.0 * k])[:, None] * direction
    same, other = draw(st.permutations([0, 1, 2]), label="labels of the pair and of the negative")[:2]
    return Example({"embeddings": x, "labels": np.array([same, same, other], dtype=np.int64)}, params)


def _batch_hard_examples(draw, dtype, regime, choose) -> Example:
    n, dims = _sizes(draw, max_rows=6)
    params = choose({"margin": positive(0.0, 3.0, (1.0, 0.0))})
    if draw(st.booleans(), label="violated triplets"):  # random rows rarely reach a non-zero gradient
        return _violated_triplets(draw, dims, dtype, params)
    labels = draw(st.one_of(st.lists(st.integers(0, 2), min_size=n, max_size=n), st.just([0] * n)), label="labels")
    x = _embeddings(draw, (n, dims), dtype, regime)
    duplicates = _mask(draw, n, "duplicate of row 0")
    x = np.where(duplicates[:, None], x[:1], x)  # ties and zero distances
    return Example({"embeddings": x, "labels": np.array(labels, dtype=np.int64)}, params)


def _batch_hard_kinks(example: Example, eps: float) -> np.ndarray:
    """Any tie among the distances of an anchor, a chosen distance of 0, or a hinge at 0 (a scalar mask)."""
    x, _, d, valid, pos, neg, t, scale = R.batch_hard_parts(
        example.args["embeddings"], example.args["labels"], example.params["margin"]
    )
    rows = np.arange(len(x))
    tol = 16 * eps * (scale[:, None] + d)
    gaps = np.abs(d - d[rows, pos][:, None]), np.abs(d - d[rows, neg][:, None])
    ties = np.sum(gaps[0] <= tol, axis=1) + np.sum(gaps[1] <= tol, axis=1) > 2
    zero = (d[rows, pos] <= tol[:, 0]) | (d[rows, neg] <= tol[:, 0])
    return np.array(bool(np.any(valid & (ties | zero | (np.abs(t) <= tol[:, 0])))))


def _batch_hard_perfect(example: Example, strength: float) -> Example:
    """Each class a point on its own axis, 10 (margin + 1) apart: hardest positive 0, negatives far."""
    labels = np.asarray(example.args["labels"])
    dims = np.shape(example.args["embeddings"])[1]
    centres = 10.0 * (example.params["margin"] + 1.0) * np.eye(max(dims, int(labels.max()) + 1))
    return example.replace({"embeddings": centres[labels]})


# --- InfoNCE, NT-Xent ----------------------------------------------------------------------------------


def _info_nce_examples(draw, dtype, regime, choose) -> Example:
    b, dims = _sizes(draw)
    m = draw(st.integers(1, 4), label="M")
    params = choose({"reduction": S.reduction(), "temperature": _TEMPERATURES, "normalize": st.booleans()})
    if not params["normalize"] and dtype in ("float16", "bfloat16"):
        regime = "typical"  # dot products / 0.01 of extreme embeddings leave half precision's range
    q = _embeddings(draw, (b, dims), dtype, regime)
    k = _copy_rows(draw, q, _embeddings(draw, (b, dims), dtype, regime), "positive = query rows")
    neg = _embeddings(draw, (b, m, dims), dtype, regime)
    equal = _mask(draw, b, "all keys = query")  # every similarity of the row equal
    neg = np.where(equal[:, None, None], q[:, None, :], neg)
    k = np.where(equal[:, None], q, k)
    return Example({"query": q, "positive_key": k, "negative_keys": neg}, params)


def _zero_rows(*arrays) -> np.ndarray:
    """Normalising is not differentiable at a zero embedding: any such row (a scalar mask)."""
    return np.array(any(np.any(R.p_norm(np.asarray(a)) <= R.NORMALIZE_EPS) for a in arrays))


def _normalisable(example: Example) -> bool:
    """Scale invariance's exact domain: F.normalize divides by max(||x||, eps), scale invariant only for
    embeddings of norm 0 or at least eps (a norm in (0, eps) is divided by eps, not by itself)."""
    arrays = [np.asarray(v) for v in example.args.values()]
    norms = [R.p_norm(a) for a in arrays if a.ndim and np.issubdtype(a.dtype, np.floating)]
    return all(bool(np.all((n == 0) | (n >= R.NORMALIZE_EPS))) for n in norms)


def _info_nce_kinks(example: Example, eps: float) -> np.ndarray:
    if not example.params["normalize"]:
        return np.array(False)
    return _zero_rows(*(example.args[k] for k in ("query", "positive_key", "negative_keys")))


def _square_views(draw, dims: int, dtype: str) -> tuple[np.ndarray, np.ndarray]:
    """Two pairs of views on the four points of a square along two coordinate axes, of a drawn radius: each
    view's positive at 90 degrees, one negative opposite, one at 90 degrees. The gradient is tangential
    (normalisation keeps it whole) and over 1.5 times its tolerance even in bfloat16, whatever the temperature:
    random views mostly give gradients near 0 (copied rows, one view per pair, a 1-D embedding) or below half
    precision's tolerance (a square turned off the axes too: its rounded similarities are no longer exact)."""
    dims = max(dims, 2)
    first, second = draw(st.permutations(range(dims)), label="axes of the square")[:2]
    radius = draw(st.sampled_from([1.0, 3.0, 0.5, S.cap(_EMBED_CAP, dtype, "typical")]), label="radius")
    v0, v1 = np.eye(dims)[first], np.eye(dims)[second]
    return radius * np.stack([v0, -v0]), radius * np.stack([v1, -v1])


def _nt_xent_examples(draw, dtype, regime, choose) -> Example:
    n, dims = _sizes(draw)
    params = choose({"temperature": _TEMPERATURES})
    if draw(st.booleans(), label="views on a square"):
        z_i, z_j = _square_views(draw, dims, dtype)
        return Example({"z_i": z_i, "z_j": z_j}, params)
    z_i = _embeddings(draw, (n, dims), dtype, regime)
    z_j = _copy_rows(draw, z_i, _embeddings(draw, (n, dims), dtype, regime), "z_j = z_i rows")
    if draw(st.booleans(), label="all views equal"):
        z_i = z_j = np.broadcast_to(z_i[:1], z_i.shape).copy()
    return Example({"z_i": z_i, "z_j": z_j}, params)


# --- cosine embedding, margin ranking, pairwise logistic (torch and own) ---------------------------


def _signs(n: int) -> st.SearchStrategy:
    return st.lists(st.sampled_from([1.0, -1.0]), min_size=n, max_size=n).map(np.array)


def _cosine_examples(draw, dtype, regime, choose) -> Example:
    n, dims = _sizes(draw)
    params = choose(
        {"reduction": S.reduction(), "margin": st.one_of(st.floats(-1.0, 1.0), st.sampled_from([0.0, 0.5, -0.5]))}
    )
    if draw(st.booleans(), label="pairs at 45 degrees"):  # random pairs mostly give gradients near 0 (copies)
        pairs = _pairs_at_45_degrees(draw, n, dims, dtype)
        return Example({**pairs, "target": draw(_signs(n), label="target")}, params)
    x1 = _embeddings(draw, (n, dims), dtype, regime)
    x2 = _copy_rows(draw, x1, _embeddings(draw, (n, dims), dtype, regime), "input2 = input1 rows")
    return Example({"input1": x1, "input2": x2, "target": draw(_signs(n), label="target")}, params)


def _pairs_at_45_degrees(draw, n: int, dims: int, dtype: str) -> dict[str, np.ndarray]:
    """Rows r1 e_a and r2 (e_a + e_b) along two coordinate axes: cos = 1/sqrt(2) exactly as far as rounding goes,
    away from every kink, and a gradient of 1 - cos (or of cos - margin) far above its tolerance in bfloat16."""
    dims = max(dims, 2)
    first, second = draw(st.permutations(range(dims)), label="axes of the pairs")[:2]
    radii = st.sampled_from([1.0, 3.0, 0.5, S.cap(_EMBED_CAP, dtype, "typical")])
    r1, r2 = (S.array(draw, (n, 1), radii) for _ in range(2))
    a, b = np.eye(dims)[first], np.eye(dims)[second]
    return {"input1": r1 * a, "input2": r2 * (a + b)}


def _cosine_kinks(example: Example, eps: float) -> np.ndarray:
    *_, cos, err = R.cosine_parts(example.args["input1"], example.args["input2"])
    at = (np.asarray(example.args["target"]) == -1) & (np.abs(cos - example.params["margin"]) <= 16 * eps * err)
    return at | _zero_rows(example.args["input1"]) | _zero_rows(example.args["input2"])


def _cosine_perfect(example: Example, strength: float) -> Example:
    """input2 = target * input1, rows scaled to norm 1e3: torch's eps in the norms leaves 1 - cos = eps / |x|^2
    (1e-12 at norm 1), below float64's rounding of 1 from norm 1e3 on."""
    x1 = np.asarray(example.args["input1"])
    norm = R.p_norm(x1)[:, None]
    x1 = np.where(norm > 0, x1 / np.where(norm > 0, norm, 1.0), 1.0) * 1e3
    y = np.asarray(example.args["target"])
    return example.replace({"input1": x1, "input2": y[:, None] * x1})


def _ranking_examples(draw, dtype, regime, choose) -> Example:
    n = draw(st.integers(1, 6), label="N")
    params = choose(
        {"reduction": S.reduction(), "margin": st.one_of(st.floats(-1.0, 2.0), st.sampled_from([0.0, 1.0]))}
    )
    x1 = S.array(draw, (n,), S.reals(dtype, regime))
    x2 = S.array(draw, (n,), S.reals(dtype, regime))
    y = draw(_signs(n), label="target")
    if regime == "extreme":  # at the hinge: -y (x1 - x2) + margin = 0
        x2 = np.where(_mask(draw, n, "at the margin"), x1 + y * params["margin"], x2)
    return Example({"input1": x1, "input2": x2, "target": y}, params)


def _ranking_kinks(example: Example, eps: float) -> np.ndarray:
    x1, x2, y = (np.asarray(example.args[k]) for k in ("input1", "input2", "target"))
    margin = example.params["margin"]
    return np.abs(-y * (x1 - x2) + margin) <= 4 * eps * (np.abs(x1 - x2) + abs(margin))


def _logistic_examples(draw, dtype, regime, choose) -> Example:
    shape = S.batch_shape(draw)
    chosen = S.array(draw, shape, S.logits(dtype, regime))
    rejected = S.array(draw, shape, S.logits(dtype, regime))
    if regime == "extreme":  # differences of exactly +-1e4
        shift = S.array(draw, shape, st.sampled_from([1e4, -1e4, 0.0]))
        rejected = np.where(shift != 0, np.clip(chosen, -1e3, 1e3) + shift, rejected)
        chosen = np.where(shift != 0, np.clip(chosen, -1e3, 1e3), chosen)
    return Example({"chosen": chosen, "rejected": rejected}, choose({"reduction": S.reduction()}))


_NEGATIVE_MARGIN = param_case("margin", -1.0, "margin must be non-negative")
_ZERO_TEMPERATURE = param_case("temperature", 0.0, "temperature must be positive")
_COUPLED = ("batch", "reduction")  # no reduction parameter, and the samples are coupled

metric_entry = family_entry(family="metric")  # the family's defaults

METRIC: tuple[LossSpec, ...] = (
    metric_entry(
        name="contrastive_loss",
        definition="d = euclidean distance per row; label 1 = similar: label d^2 + (1-label) max(0, margin - d)^2",
        reference=R.contrastive_loss,
        examples=_contrastive_examples,
        properties=tags("non_negative", "zero_at_perfect", *_DISTANCE_BASED),
        differentiable=("x1", "x2", "label"),
        error_cases=(
            ErrorCase("x2 with one row against N >= 2 rows of x1 (broadcastable)", _one_row(("x1", "label"), "x2")),
            ErrorCase(
                "a label outside [0, 1] (2)", lambda ex: ex.replace({"label": np.full_like(ex.args["label"], 2.0)})
            ),
            _NEGATIVE_MARGIN,
        ),
        kinks=_contrastive_kinks,
        perfect=_contrastive_perfect,
        variants={
            "squared": "True (canonical) or False: label d + (1 - label) max(0, margin - d), neither term squared "
            "(pytorch-metric-learning's ContrastiveLoss with LpDistance(power=1), pos_margin=0)"
        },
        sweep=lambda s: Example(
            {"x1": s[:, None], "x2": np.zeros((s.size, 1)), "label": np.zeros(s.size)}, {"reduction": "none"}
        ),
    ),
    metric_entry(
        name="triplet_margin_loss",
        definition="max(d(a, p) - d(a, n) + margin, 0), d(x, y) = ||x - y + eps||_p (non-squared, torch's "
        "pairwise_distance); swap: d(a, n) -> min(d(a, n), d(p, n)); margin > 0",
        reference=R.triplet_margin_loss,
        examples=_triplet_examples,
        properties=tags(
            "non_negative",
            "zero_at_perfect",
            "translation_invariance",
            "margin_met",
            rotation_invariance={"p": 2.0, "eps": 0.0},
        ),
        differentiable=("anchor", "positive", "negative"),
        error_cases=(
            ErrorCase(
                "positive with one row against N >= 2 anchors (broadcastable)",
                _one_row(("anchor", "negative"), "positive"),
            ),
            param_case("margin", 0.0, "margin must be positive"),
        ),
        kinks=_triplet_kinks,
        perfect=_triplet_perfect,
        caveats="rotation invariance only for p = 2 and eps = 0 (eps is added along fixed axes)",
        variants={
            "eps_mode": "'difference' (canonical, torch: ||x - y + eps||_p) or 'root': (sum_k |x_k - y_k|^p + "
            "eps)^(1/p), eps under the root (optax)"
        },
        variant_values={"eps_mode": R.EPS_MODES},
        sweep=_triplet_sweep,
    ),
    metric_entry(
        name="batch_hard_triplet_loss",
        definition="for each anchor with at least one positive and one negative: max(0, max_pos d - min_neg d + "
        "margin), euclidean d; mean over those anchors; 0 when there are none",
        reference=R.batch_hard_triplet_loss,
        examples=_batch_hard_examples,
        properties=without(tags("non_negative", "zero_at_perfect", "hardest_pair", *_DISTANCE_BASED), *_COUPLED),
        differentiable=("embeddings",),
        error_cases=(
            ErrorCase(
                "labels one longer than the batch",
                lambda ex: ex.replace({"labels": np.append(ex.args["labels"], 0)}),
            ),
            _NEGATIVE_MARGIN,
        ),
        kinks=_batch_hard_kinks,
        perfect=_batch_hard_perfect,
        caveats="no `batch` and `reduction` properties: no reduction parameter, and the hardest pairs are "
        "mined across the batch (samples are coupled)",
        benchmark=first_rows(512),  # N x N distances
    ),
    metric_entry(
        name="info_nce_loss",
        definition="query (B, D), positive (B, D), negatives (B, M, D); sim = cosine (dot if normalize=False) / "
        "temperature; cross-entropy with the positive at index 0",
        reference=R.info_nce_loss,
        examples=_info_nce_examples,
        properties=tags(
            "non_negative", "uniform_similarity", "rotation_invariance", scale_invariance={"normalize": True}
        ),
        differentiable=("query", "positive_key", "negative_keys", "temperature"),
        error_cases=(
            ErrorCase(
                "negative_keys of dimension 2 D against D",
                lambda ex: ex.replace({"negative_keys": np.concatenate([ex.args["negative_keys"]] * 2, axis=-1)}),
            ),
            _ZERO_TEMPERATURE,
        ),
        kinks=_info_nce_kinks,
        domains={"scale_invariance": _normalisable},
        caveats="not zero at a perfect prediction: with normalised embeddings the loss is at least "
        "log(1 + M exp(-2 / temperature)) > 0; scale invariance only when normalising",
    ),
    metric_entry(
        name="nt_xent_loss",
        definition="SimCLR: 2N views, cosine similarity / temperature, each view's positive is its pair, the "
        "denominator runs over the 2N - 1 other views (never itself); mean over all 2N anchors",
        reference=R.nt_xent_loss,
        examples=_nt_xent_examples,
        properties=without(
            tags("non_negative", "uniform_similarity", "rotation_invariance", "scale_invariance", "excludes_self"),
            *_COUPLED,
        ),
        differentiable=("z_i", "z_j", "temperature"),
        error_cases=(
            ErrorCase("z_j with one row against N >= 2 rows of z_i", _one_row(("z_i",), "z_j")),
            _ZERO_TEMPERATURE,
        ),
        kinks=lambda ex, eps: _zero_rows(ex.args["z_i"], ex.args["z_j"]),
        domains={"scale_invariance": _normalisable},
        caveats="not zero at a perfect prediction (at least log(1 + (2N - 2) exp(-2 / temperature))); no "
        "`batch` and `reduction` properties: no reduction parameter, and every view is a negative of every "
        "other (samples are coupled)",
        benchmark=first_rows(512),  # 2N x 2N similarities
    ),
    metric_entry(
        name="cosine_embedding_loss",
        definition="1 - cos(x1, x2) where target = 1, max(0, cos(x1, x2) - margin) where target = -1; torch's cos "
        "= x1.x2 / sqrt((|x1|^2 + 1e-12)(|x2|^2 + 1e-12))",
        reference=R.cosine_embedding_loss,
        examples=_cosine_examples,
        properties=tags("non_negative", "zero_at_perfect", "rotation_invariance"),
        differentiable=("input1", "input2"),
        error_cases=(
            ErrorCase(
                "input2 with one row against N >= 2 rows (broadcastable)", _one_row(("input1", "target"), "input2")
            ),
        ),
        kinks=_cosine_kinks,
        perfect=_cosine_perfect,
        sweep=lambda s: Example(
            {
                "input1": np.stack([np.ones_like(s), s], axis=1),
                "input2": np.tile([1.0, 0.0], (s.size, 1)),
                "target": np.ones(s.size),
            },
            {"reduction": "none", "margin": 0.0},
        ),
    ),
    metric_entry(
        name="margin_ranking_loss",
        definition="max(0, -target (input1 - input2) + margin), target in {1, -1}",
        reference=R.margin_ranking_loss,
        examples=_ranking_examples,
        properties=tags("non_negative", "zero_at_perfect"),
        differentiable=("input1", "input2", "target"),
        error_cases=(
            ErrorCase(
                "input2 with one element against N >= 2 (broadcastable)", _one_row(("input1", "target"), "input2")
            ),
        ),
        kinks=_ranking_kinks,
        perfect=lambda ex, s: ex.replace(
            {"input1": np.asarray(ex.args["input2"]) + np.asarray(ex.args["target"]) * (abs(ex.params["margin"]) + 1.0)}
        ),
        sweep=lambda s: Example(
            {"input1": s, "input2": np.zeros_like(s), "target": np.ones_like(s)}, {"reduction": "none", "margin": 0.0}
        ),
    ),
    metric_entry(
        name="pairwise_logistic_loss",
        definition="BPR / Bradley-Terry reward loss: -log sigmoid(chosen - rejected), stable for any finite difference",
        reference=R.pairwise_logistic_loss,
        examples=_logistic_examples,
        properties=tags("non_negative", "zero_at_perfect", "softplus_identity"),
        differentiable=("chosen", "rejected"),
        error_cases=(
            ErrorCase(
                "rejected shaped (..., 1) against chosen (...) (broadcastable)",
                lambda ex: ex.replace({"rejected": np.asarray(ex.args["rejected"])[..., None]}),
            ),
        ),
        perfect=lambda ex, s: ex.replace({"chosen": np.asarray(ex.args["rejected"]) + 10.0 * s}),
        perfect_is_limit=True,
        sweep=lambda s: Example({"chosen": s, "rejected": np.zeros_like(s)}, {"reduction": "none"}),
    ),
)
