"""Family properties of the metric-learning and ranking losses.

Embedding arguments are every array argument but the labels (``label``, ``labels``, ``target``).
Invariances are judged in their exact form: transformed inputs are rounded to the dtype, which moves
the exact loss a little; the float64 reference measures that move, so the property requires
``impl(T x) - impl(x) = ref(T x) - ref(x)`` within the tolerance of both evaluations.
"""

from __future__ import annotations

import math

import numpy as np
from hypothesis import strategies as st

from lossguard.properties.base import FLOAT64_AND_FLOAT32, NONE, register

LABELS = ("label", "labels", "target")


def _embedding_args(subject) -> list[str]:
    return [name for name in subject.spec.args if name not in LABELS]


def _transform(example, names, fn):
    return example.replace({k: fn(np.asarray(example.args[k])) for k in names})


def _expect_invariant(subject, example, transformed, what: str) -> None:
    """impl(transformed) - impl(example) equals the reference's change (the rounding of the transformed inputs)."""
    transformed = subject.rounded(transformed)
    expected = subject.value(example) + (subject.reference(transformed) - subject.reference(example))
    scale = subject.scale(example) + subject.scale(transformed)
    subject.expect_close(what, subject.value(transformed), expected, scale, transformed)


def _vector(data, dims: int, label: str) -> np.ndarray:
    values = st.one_of(st.floats(-10.0, 10.0), st.sampled_from([1.0, -3.0, 8.0]))
    return np.array(data.draw(st.lists(values, min_size=dims, max_size=dims), label=label))


@register(
    "translation_invariance",
    "adding one vector c to every embedding leaves a distance-based loss unchanged",
    dtypes=FLOAT64_AND_FLOAT32,
)
def translation_invariance(subject, data) -> None:
    """L(x_1 + c, ..., x_k + c) = L(x_1, ..., x_k): the loss depends on differences of embeddings only."""
    example = subject.draw(data, regime="typical", reduction=NONE)
    names = _embedding_args(subject)
    c = _vector(data, np.shape(example.args[names[0]])[-1], "translation c")
    _expect_invariant(
        subject, example, _transform(example, names, lambda x: x + c), "loss of the translated embeddings"
    )


def _orthogonal(data, dims: int) -> np.ndarray:
    """Q of the QR decomposition of a drawn matrix (sign-fixed): a rotation or reflection."""
    entries = st.floats(-1.0, 1.0).filter(lambda v: abs(v) > 1e-3)
    a = np.array(data.draw(st.lists(entries, min_size=dims * dims, max_size=dims * dims), label="matrix"))
    q, r = np.linalg.qr(a.reshape(dims, dims) + 2.0 * np.eye(dims))
    return q * np.sign(np.diag(r))


@register(
    "rotation_invariance",
    "rotating every embedding by one orthogonal Q leaves the loss unchanged",
    dtypes=FLOAT64_AND_FLOAT32,
)
def rotation_invariance(subject, data) -> None:
    """L(Q x_1, ..., Q x_k) = L(x_1, ..., x_k) for orthogonal Q: euclidean distances and cosines are preserved."""
    example = subject.draw(data, regime="typical", reduction=NONE)
    names = _embedding_args(subject)
    q = _orthogonal(data, np.shape(example.args[names[0]])[-1])
    _expect_invariant(subject, example, _transform(example, names, lambda x: x @ q.T), "loss of the rotated embeddings")


def _unit(data, shape: tuple[int, ...], p: float = 2.0) -> np.ndarray:
    """Rows of p-norm 1 (drawn directions)."""
    raw = np.array(data.draw(st.lists(st.floats(-1.0, 1.0), min_size=math.prod(shape), max_size=math.prod(shape))))
    raw = raw.reshape(shape)
    raw[..., 0] += np.where(raw[..., 0] >= 0, 1.0, -1.0)  # |first component| >= 1: never a zero row
    return raw / np.sum(np.abs(raw) ** p, axis=-1, keepdims=True) ** (1.0 / p)


def _margin_met_example(subject, data, example):
    """The example moved so that every margin is met with a gap (see margin_met's docstring)."""
    args, params = example.args, example.params
    margin = params["margin"]
    gap = data.draw(st.floats(0.05, 2.0), label="gap")
    first = subject.spec.args[0]
    if first == "x1":
        x1 = np.asarray(args["x1"])
        label = np.round(np.asarray(args["label"]))
        far = x1 + (margin + gap) * _unit(data, x1.shape)
        return example.replace({"x2": np.where(label[:, None] > 0, x1, far), "label": label})
    if first == "anchor":
        anchor = np.asarray(args["anchor"])
        p, eps = params["p"], params["eps"]
        dims = anchor.shape[-1]
        delta = data.draw(st.floats(0.0, 1.0), label="delta")
        reach = 2 * (delta + eps * dims) + margin + gap + 4 * eps * dims
        return example.replace(
            {
                "positive": anchor + delta * _unit(data, anchor.shape, p),
                "negative": anchor + reach * _unit(data, anchor.shape, p),
            }
        )
    labels = np.asarray(args["labels"])
    k = max(np.shape(args["embeddings"])[1], int(labels.max()) + 1)
    spread = data.draw(st.floats(0.0, 1.0), label="cluster radius")
    centres = (3.0 * (margin + gap) + 4.0 * spread) * np.eye(k)
    return example.replace({"embeddings": centres[labels] + spread * _unit(data, (len(labels), k))})


@register("margin_met", "the loss is 0 wherever the margin is met", dtypes=FLOAT64_AND_FLOAT32)
def margin_met(subject, data) -> None:
    """Constructed examples where every margin is met with a gap g > 0, on which the loss is exactly 0:
    contrastive: similar pairs identical (d = 0), dissimilar ones at d = margin + g; triplet: d(a, p) <= delta
    + eps D and d(a, n) >= d(a, p) + margin + g (also d(p, n), for swap, by the triangle inequality);
    batch-hard: classes in clusters of radius r around centres 3 (margin + g) + 4 r apart (axis by label).
    """
    example = subject.draw(data, regime="typical", reduction=NONE)
    met = subject.rounded(_margin_met_example(subject, data, example))
    subject.expect_close("loss with every margin met", subject.value(met), 0.0, subject.scale(met), met)


@register(
    "uniform_similarity", "all similarities equal: the loss is log(number of candidates)", dtypes=FLOAT64_AND_FLOAT32
)
def uniform_similarity(subject, data) -> None:
    """InfoNCE with every key equal to the query: log(M + 1) per row; NT-Xent with all 2N views equal:
    log(2N - 1) (every logit equal: the cross-entropy of a uniform softmax over the candidates)."""
    example = subject.draw(data, regime="any", reduction=NONE)
    if "query" in example.args:
        q = np.asarray(example.args["query"])
        m = np.shape(example.args["negative_keys"])[1]
        keys = np.broadcast_to(q[:, None, :], np.shape(example.args["negative_keys"])).copy()
        equal = example.replace({"positive_key": q.copy(), "negative_keys": keys})
        expected = np.full(q.shape[0], math.log(m + 1))
        if equal.params.get("reduction", "mean") != NONE:
            expected = np.sum(expected) if equal.params["reduction"] == "sum" else np.mean(expected)
    else:
        z = np.broadcast_to(np.asarray(example.args["z_i"])[:1], np.shape(example.args["z_i"])).copy()
        equal = example.replace({"z_i": z, "z_j": z.copy()})
        expected = math.log(2 * z.shape[0] - 1)
    equal = subject.rounded(equal)
    subject.expect_close(
        "loss with all similarities equal", subject.value(equal), expected, subject.scale(equal), equal
    )


@register(
    "scale_invariance",
    "rescaling each embedding by a positive factor leaves a normalised loss unchanged",
    dtypes=FLOAT64_AND_FLOAT32,
)
def scale_invariance(subject, data) -> None:
    """L(a_1 x_1, ..., a_k x_k) = L(x_1, ..., x_k) for a_i > 0 when the loss normalises (cosines); the factors
    are powers of two, so the scaled inputs are exact and the values must agree within rounding.

    Exact domain: the entry's ``domains["scale_invariance"]`` (F.normalize divides by max(||x||, eps),
    scale invariant only for x = 0 or ||x|| >= eps), before and after the rescaling."""
    example = subject.draw(data, regime="typical", reduction=NONE)

    def rescale(x: np.ndarray) -> np.ndarray:
        powers = data.draw(st.lists(st.integers(-6, 6), min_size=x[..., 0].size, max_size=x[..., 0].size))
        return x * np.exp2(np.array(powers, dtype=np.float64)).reshape(x.shape[:-1])[..., None]

    names = _embedding_args(subject)
    scaled = subject.rounded(_transform(example, names, rescale))
    subject.need(subject.in_domain(example) and subject.in_domain(scaled))
    scale = subject.scale(example) + subject.scale(scaled)
    subject.expect_close("loss of rescaled embeddings", subject.value(scaled), subject.value(example), scale, scaled)


@register(
    "excludes_self",
    "NT-Xent: each anchor's denominator runs over the 2N - 1 other views, never itself",
    dtypes=FLOAT64_AND_FLOAT32,
)
def excludes_self(subject, data) -> None:
    """mean_a [log sum_{k != a} exp(s_ak) - s_a,pair(a)], s = cosine / temperature, written out anchor by anchor."""
    example = subject.draw(data, regime="typical")
    z = np.concatenate([example.args["z_i"], example.args["z_j"]])
    n, t = len(z) // 2, float(example.params["temperature"])
    z = z / np.maximum(np.linalg.norm(z, axis=1, keepdims=True), 1e-12)
    losses = []
    for a in range(2 * n):
        others = [float(np.dot(z[a], z[k])) / t for k in range(2 * n) if k != a]
        top = max(others)
        denominator = top + math.log(sum(math.exp(s - top) for s in others))
        losses.append(denominator - float(np.dot(z[a], z[(a + n) % (2 * n)])) / t)
    subject.expect_close(
        "NT-Xent", subject.value(example), float(np.mean(losses)), subject.scale(example), example, slack=2.0
    )


@register(
    "hardest_pair",
    "batch-hard mining picks the farthest positive and the nearest negative of each anchor",
    dtypes=FLOAT64_AND_FLOAT32,
)
def hardest_pair(subject, data) -> None:
    """Brute force, anchor by anchor: mean over anchors with a positive and a negative of
    max(0, max_pos ||x_a - x_p|| - min_neg ||x_a - x_n|| + margin); 0 without such anchors. Judged at the
    drawn margin and at one above every distance (every hinge active, so a wrongly mined pair shows)."""
    drawn = subject.draw(data, regime="typical")
    x = drawn.args["embeddings"]
    # and six rows in two alternating classes: every anchor has two positives (at distinct distances)
    six = np.resize(x, (6, x.shape[1])) + np.arange(6.0)[:, None] * np.arange(1.0, x.shape[1] + 1.0)
    alternating = drawn.replace({"embeddings": six, "labels": np.arange(6) % 2})
    for example in (drawn, subject.rounded(alternating)):
        x = example.args["embeddings"]
        wide = 2.0 * max(math.dist(a, b) for a in x for b in x) + 1.0
        for margin in (example.params["margin"], wide):
            _judge_batch_hard(subject, subject.rounded(example.replace(margin=margin)))


def _judge_batch_hard(subject, case) -> None:
    """The brute-force batch-hard value of ``case``, anchor by anchor, against the implementation's."""
    x, labels, margin = case.args["embeddings"], case.args["labels"], case.params["margin"]
    losses = []
    for a in range(len(x)):
        positives = [math.dist(x[a], x[p]) for p in range(len(x)) if p != a and labels[p] == labels[a]]
        negatives = [math.dist(x[a], x[k]) for k in range(len(x)) if labels[k] != labels[a]]
        if positives and negatives:
            losses.append(max(0.0, max(positives) - min(negatives) + margin))
    expected = sum(losses) / len(losses) if losses else 0.0
    subject.expect_close("batch-hard loss", subject.value(case), expected, subject.scale(case), case)


@register(
    "softplus_identity",
    "pairwise logistic = softplus(rejected - chosen), finite at differences of +-1e4",
    dtypes=FLOAT64_AND_FLOAT32,
)
def softplus_identity(subject, data) -> None:
    """-log sigmoid(c - r) = softplus(r - c) = max(r - c, 0) + log1p(exp(-|r - c|)), also at r - c = +-1e4
    (1e4 and ~0: a form taking log of an underflowed sigmoid gives inf)."""
    example = subject.draw(data, regime="any", reduction=NONE)
    chosen = np.asarray(example.args["chosen"])
    hard = example.replace({"rejected": chosen + np.where(np.arange(chosen.size) % 2, 1e4, -1e4).reshape(chosen.shape)})
    for case in (example, subject.rounded(hard)):
        diff = np.asarray(case.args["rejected"]) - np.asarray(case.args["chosen"])
        expected = np.logaddexp(0.0, diff)
        if case.params.get("reduction", NONE) != NONE:
            expected = np.sum(expected) if case.params["reduction"] == "sum" else np.mean(expected)
        subject.expect_close("pairwise logistic", subject.value(case), expected, subject.scale(case), case)
