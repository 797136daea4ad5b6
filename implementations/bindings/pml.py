"""pytorch-metric-learning's losses whose canonical arrays need code to become its (embeddings, indices_tuple) call.

pml's losses take one batch of embeddings and mine their pairs or triplets from labels; the catalog's
contrastive_loss(x1, x2, label), triplet_margin_loss(anchor, positive, negative) and nt_xent_loss(z_i, z_j) name
them explicitly. Each call here concatenates the canonical arrays into pml's ``embeddings`` and passes the pairs or
triplets they form as an explicit ``indices_tuple`` (pml's documented forward: (anchors, positives, negatives) for
triplets, (anchor1, positives, anchor2, negatives) for pairs), with ``labels=None`` (pml needs labels or an
indices_tuple, and reads labels only to mine). Nothing of the value is computed here: pml computes every distance,
hinge and reduction. The distance and reducer objects are constructor arguments (``init``): LpDistance(p=2,
power=1) without normalising, the documented euclidean distance, and MeanReducer, the catalog's mean over the
triplets or positive pairs.

ContrastiveLoss follows two documented conventions of its own (pml's docs, "Implementation notes"): its hinges are
not squared (the reference variant ``squared=False``), and a reducer reduces the similar pairs' losses and the
dissimilar pairs' apart and adds the two (with MeanReducer: mean over similar + mean over dissimilar pairs, not the
catalog's mean over all pairs). Its binding therefore takes pml's per-pair losses (DoNothingReducer) as the
catalog's reduction='none' output, each pair at its row, and judges them element by element.

The findings (``FINDINGS``, binding label -> departures) were reproduced by lossguard and confirmed independently
in float64 NumPy (tests/bindings/test_pml.py).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from lossguard.harness.kernel import tolerance
from lossguard.harness.kernel.binding import Binding
from lossguard.harness.kernel.model import Example, Finding
from lossguard.implementations.bindings.evidence import float_arrays

UPSTREAM = "pytorch-metric-learning 2.9.0"
_DISTANCE = {
    "object": "pytorch_metric_learning.distances:LpDistance",
    "normalize_embeddings": False,
    "p": 2,
    "power": 1,
}
_MEAN = {"object": "pytorch_metric_learning.reducers:MeanReducer"}
_PER_PAIR = {"object": "pytorch_metric_learning.reducers:DoNothingReducer"}


def _arange(n: int, like: Any) -> Any:
    import torch

    return torch.arange(n, device=like.device)


def contrastive_pairs(loss: Any, args: dict[str, Any], library: dict[str, Any]) -> Any:
    """Row i of x1 and of x2 is one pair: embeddings [x1; x2], pair (i, N + i) positive where label is 1, negative
    where it is 0 (the ``pair-labels`` domain: integer labels 0 or 1). pml's per-pair losses (its DoNothingReducer
    returns them by kind, with their anchors) are laid out as the catalog's 'none' output, pair i at index i; a kind
    pml returns as its zero loss stays 0, on the reducer's own zero (``BaseReducer.zero_loss``: embeddings * 0)."""
    import torch

    x1, x2, label = args["x1"], args["x2"], args["label"]
    n = x1.shape[0]
    rows = _arange(n, x1)
    similar = label == 1
    embeddings = torch.cat([x1, x2])
    pairs = (rows[similar], n + rows[similar], rows[~similar], n + rows[~similar])
    per_kind = loss(embeddings, None, pairs, **library)
    per_pair = loss.reducer.zero_loss(embeddings) + x1.new_zeros(n)
    for kind in per_kind.values():
        if torch.is_tensor(kind["losses"]):
            per_pair = per_pair.index_put((kind["indices"][0],), kind["losses"])
    return per_pair


def triplets(loss: Any, args: dict[str, Any], library: dict[str, Any]) -> Any:
    """Row i of anchor, positive and negative is one triplet: embeddings [a; p; n], triplet (i, N + i, 2N + i)."""
    import torch

    anchor = args["anchor"]
    n = anchor.shape[0]
    rows = _arange(n, anchor)
    embeddings = torch.cat([anchor, args["positive"], args["negative"]])
    return loss(embeddings, None, (rows, n + rows, 2 * n + rows), **library)


def simclr_pairs(loss: Any, args: dict[str, Any], library: dict[str, Any]) -> Any:
    """SimCLR's views [z_i; z_j]: view i of z_i and view N + i (row i of z_j) are each other's positive (both
    directions, 2N positive pairs), every other view but itself is a negative of each (pml's pairs (anchor1,
    positive, anchor2, negative)). A z_j of another length leaves positives outside the batch, as pml is told."""
    import torch

    z_i = args["z_i"]
    views = torch.cat([z_i, args["z_j"]])
    n = z_i.shape[0]
    rows = _arange(n, z_i)
    anchors, partners = torch.cat([rows, n + rows]), torch.cat([n + rows, rows])
    others = _arange(views.shape[0], views)[None, :]
    negative = (others != anchors[:, None]) & (others != partners[:, None])
    which, negatives = torch.nonzero(negative, as_tuple=True)
    return loss(views, None, (anchors, partners, anchors[which], negatives), **library)


BINDINGS = [
    Binding(
        target="pytorch_metric_learning.losses:ContrastiveLoss",
        loss="contrastive_loss",
        name="pml.ContrastiveLoss",
        params={"margin": "neg_margin"},
        init={"distance": _DISTANCE, "reducer": _PER_PAIR},
        fixed={"reduction": "none"},
        variant={"squared": False},
        domain=("pair-labels",),
        call=contrastive_pairs,
    ),
    Binding(
        target="pytorch_metric_learning.losses:TripletMarginLoss",
        loss="triplet_margin_loss",
        name="pml.TripletMarginLoss",
        params={"margin": "margin", "swap": "swap"},
        init={"distance": _DISTANCE, "reducer": _MEAN},
        fixed={"eps": 0.0},
        call=triplets,
    ),
    Binding(  # the log-exp form softplus(d(a, p) - d(a, n) + margin): no catalog entry, triplet inputs
        target="pytorch_metric_learning.losses:TripletMarginLoss",
        name="pml.TripletMarginLoss(smooth_loss=True)",
        like="triplet_margin_loss",
        init={"distance": _DISTANCE, "reducer": _MEAN, "smooth_loss": True},
        call=triplets,
    ),
    Binding(
        target="pytorch_metric_learning.losses:NTXentLoss",
        loss="nt_xent_loss",
        name="pml.NTXentLoss",
        params={"temperature": "temperature"},
        init={"reducer": _MEAN},
        call=simclr_pairs,
    ),
]


def _one_pair_of_each_kind(example: Example, dtype: str) -> bool:
    """At most one similar and at most one dissimilar pair: every tensor of pml's (a1, p, a2, n) holds <= 1 index."""
    label = np.asarray(example.args["label"])
    return int(np.sum(label == 1)) <= 1 and int(np.sum(label != 1)) <= 1


def _positive_below_tiny(example: Example, dtype: str) -> bool:
    """Some view's softmax probability of its positive, exp(-l_a) (l_a its float64 NT-Xent term), is at most the
    dtype's smallest normal number over its unit roundoff: there the tiny that pml adds to it is at least one
    rounding of it (and a probability below the smallest normal number has lost its precision)."""
    from lossguard.reference import metric as R

    z_i, z_j = example.args["z_i"], example.args["z_j"]
    losses = R.nt_xent_loss.terms(z_i, z_j, example.params.get("temperature", 0.5)).values
    bound = np.log(tolerance.roundoff(dtype)) - np.log(tolerance.smallest_normal(dtype))
    return bool(np.any(losses >= bound))


_SINGLE_PAIR = (
    "GenericPairLoss.compute_loss returns zero_losses() when every tensor of the pair indices holds at most one "
    "index (`all(len(x) <= 1 for x in indices_tuple)`), so one pair, or one similar and one dissimilar pair, "
    "gets loss 0 and no gradient whatever their distances (x1 = x2 = 0 dissimilar with margin 1: 0, not 1)"
)
_TINY = (
    "the loss is -log(p + tiny), p = exp(pos - max) / sum exp(... - max) formed in the input dtype and tiny its "
    "smallest normal number (c_f.small_val): a view whose positive's probability is near or below tiny gets "
    "-log(tiny) instead of -log(p) (87.3 instead of 200.7 in float32 at temperature 0.01, 9.7 in float16) and a "
    "gradient damped by p / (p + tiny) to 0"
)
# every view's positive opposite it, its negatives beside it: each l_a near 2 / temperature + log 2
_OPPOSED_VIEWS = float_arrays(z_i=[[1.0, 0.0], [1.0, 0.0]], z_j=[[-1.0, 0.125], [-1.0, -0.125]])


def _zero_view(example: Example, dtype: str) -> bool:
    return any(bool(np.any(np.all(np.asarray(example.args[k]) == 0.0, axis=-1))) for k in ("z_i", "z_j"))


def _nt_xent_findings(temperatures: dict[str, float], dtypes: tuple[str, ...]) -> tuple[Finding, ...]:
    """NTXentLoss's departures, for the ``dtypes`` where -log(p + tiny) shows; ``temperatures``: dtype -> the
    temperature its witness passes (empty for a binding that computes with a fixed one)."""
    tiny = tuple(
        Finding(
            prop,
            _TINY,
            UPSTREAM,
            dtypes=(dtype,),
            witness=Example(_OPPOSED_VIEWS, {"temperature": temperatures[dtype]} if temperatures else {}),
            domain=_positive_below_tiny,
            where="some view whose float64 probability of its positive is at most the dtype's smallest normal "
            "number over its unit roundoff (NT-Xent term l_a >= log(u / tiny))",
        )
        for dtype in dtypes
        for prop in ("agreement", "gradient")
    )
    zero = Finding(
        "agreement",
        "float16: CosineSimilarity normalises with F.normalize, whose eps = 1e-12 rounds to 0 in float16, so a zero "
        "embedding is divided by a zero norm: NaN instead of a cosine of 0 (float32 and bfloat16 keep the eps)",
        UPSTREAM,
        dtypes=("float16",),
        witness=Example(float_arrays(z_i=[[0.0], [0.0]], z_j=[[0.0], [0.0]]), {}),
        domain=_zero_view,
        where="some view exactly 0",
    )
    return (*tiny, zero)


def _zero_norm_embedding(example: Example, dtype: str) -> bool:
    """float16, and some embedding row whose float16 norm is 0 (a zero row, or one whose squares underflow)."""
    if dtype != "float16":
        return False
    import torch

    rows = torch.tensor(np.asarray(example.args["embeddings"], dtype=np.float64), dtype=torch.float16)
    return bool(torch.any(torch.linalg.vector_norm(rows, dim=-1) == 0))


_NORMALIZE_FLOAT16 = (
    "the embeddings are normalised with F.normalize (LpDistance and CosineSimilarity's default "
    "normalize_embeddings=True), whose eps = 1e-12 rounds to 0 in float16: a zero embedding is divided by a zero "
    "norm, and the loss (or its gradient) is NaN where the float64 computation on the same inputs is finite"
)


def _embeddings(*rows: float, labels: tuple[int, ...]) -> Example:
    return Example({"embeddings": np.array([[r] for r in rows]), "labels": np.array(labels, dtype=np.int64)}, {})


_ZEROS_TWO = _embeddings(0.0, 0.0, labels=(0, 0))
_ZEROS_THREE = _embeddings(0.0, 0.0, 0.0, labels=(0, 0, 1))
_ONE_ZERO = _embeddings(0.0, 20.0, 10.0, labels=(0, 0, 1))
# A zero row the float16 'finite' check judges: F.normalize's slope at 0 is 1 / eps = 1e12, so wherever the float64
# loss depends on the zero row's direction its own gradient there is ~1e12 and the value's error allowance lies
# beyond float16's range (nothing judged: _ONE_ZERO there). Alone in its class, the zero row is only a negative,
# whose float64 cosine 0 sits where the float64 loss is flat in it (PNPLoss: sigmoid exponents clamped at +-50;
# ThresholdConsistentMarginLoss: a negative cosine below margin_minus; TupletMarginLoss: exp(-64 * 0.77) next to
# 1), so float64 is finite and judged, and float16's NaN cosine still makes the loss NaN.
_LONE_ZERO = _embeddings(0.0, 1.0, 2.0, labels=(1, 0, 0))
# a negative cosine of 1 >= margin_minus, so the negative term (and the zero row's NaN cosine) is not dropped
_LONE_ZERO_TCM = _embeddings(0.0, 1.0, 2.0, 3.0, labels=(2, 0, 0, 1))
# 2-D: a positive cosine below 1 (1-D rows have cosine +-1, where acos' is infinite: the finding below)
_LONE_ZERO_2D = Example(
    {"embeddings": np.array([[1.0, 0.0], [1.0, 1.0], [0.0, 0.0]]), "labels": np.array([0, 0, 1], dtype=np.int64)}, {}
)
# loss -> {property: witness}: the float16 counterexamples lossguard found, each with a zero embedding
_ZERO_EMBEDDING_CELLS: dict[str, dict[str, Example]] = {
    "pml.AngularLoss": {"low_precision": _ZEROS_THREE},
    "pml.GeneralizedLiftedStructureLoss": {"finite": _ZEROS_TWO, "low_precision": _ZEROS_TWO},
    "pml.InstanceLoss": {"finite": _embeddings(0.0, labels=(0,)), "low_precision": _embeddings(0.0, labels=(0,))},
    "pml.IntraPairVarianceLoss": {"finite": _ZEROS_TWO, "low_precision": _ZEROS_TWO},
    "pml.MarginLoss": {"low_precision": _ONE_ZERO},
    "pml.MultiSimilarityLoss": {"finite": _ZEROS_TWO, "low_precision": _ZEROS_TWO},
    "pml.NCALoss": {"finite": _ZEROS_TWO, "low_precision": _ZEROS_TWO},
    "pml.NPairsLoss": {"finite": _ZEROS_TWO},
    "pml.PNPLoss": {"finite": _LONE_ZERO, "low_precision": _ZEROS_TWO},
    "pml.RankedListLoss": {"finite": _embeddings(0.0, labels=(0,))},
    "pml.ThresholdConsistentMarginLoss": {"finite": _LONE_ZERO_TCM},
    "pml.TupletMarginLoss": {"finite": _LONE_ZERO_2D, "low_precision": _ZEROS_THREE},
}


def _normalized_zero(cells: dict[str, Example]) -> tuple[Finding, ...]:
    return tuple(
        Finding(
            prop,
            _NORMALIZE_FLOAT16,
            UPSTREAM,
            dtypes=("float16",),
            witness=witness,
            domain=_zero_norm_embedding,
            where="float16, some embedding whose float16 norm is 0",
        )
        for prop, witness in cells.items()
    )


_BIN_PAST_THE_END = (
    "the similarities are binned with an index computed from the similarity (s = +-1 at the histogram's edge, or "
    "NaN from a float16 zero embedding) without clamping it to the bins: a pair of identical or opposite "
    "directions (cosine exactly +-1, which every pair of 1-D embeddings has) indexes one past the last bin, and "
    "the call raises 'index ... is out of bounds' on valid embeddings"
)
_OUT_OF_BOUNDS = r"RuntimeError: index -?\d+ is out of bounds for dimension 0 with size \d+"
_REFERENCE_FREE = ("finite", "gradcheck", "immutability", "state", "dtype", "determinism", "low_precision")


def _binned_past_the_end(witness: Example) -> tuple[Finding, ...]:
    return tuple(
        Finding(prop, _BIN_PAST_THE_END, UPSTREAM, witness=witness, raises=_OUT_OF_BOUNDS) for prop in _REFERENCE_FREE
    )


def _rows(example: Example, dtype: str) -> Any:
    """The embeddings as pml receives them: a torch tensor in ``dtype``."""
    import torch

    return torch.tensor(np.asarray(example.args["embeddings"], dtype=np.float64), dtype=getattr(torch, dtype))


def _same_label(example: Example) -> tuple[np.ndarray, np.ndarray]:
    """pml's positive pairs (i != j, equal labels) and negative pairs (different labels), as boolean (N, N) masks."""
    labels = np.asarray(example.args["labels"])
    same = labels[:, None] == labels[None, :]
    return same & ~np.eye(len(labels), dtype=bool), ~same


def _cosines(example: Example, dtype: str) -> np.ndarray:
    """pml's CosineSimilarity matrix, computed as it does (F.normalize, then a matmul) in ``dtype``, as float64."""
    import torch

    unit = torch.nn.functional.normalize(_rows(example, dtype), p=2, dim=1)
    return (unit @ unit.T).double().numpy()


def _cosine_of_a_positive_pair_at_or_beyond_one(example: Example, dtype: str) -> bool:
    """Some positive pair whose cosine, computed as pml computes it in ``dtype``, is +-1 or beyond (acos' infinite
    there, acos NaN beyond), in a batch with a negative pair (else pml returns its zero loss without the acos)."""
    positive, negative = _same_label(example)
    cosines = _cosines(example, dtype)
    return bool(np.any(negative)) and bool(np.any(np.abs(cosines[positive]) >= 1.0))


_ACOS_UNCLAMPED = (
    "the positive pairs' angles are torch.acos of the unclamped cosine (tuplet_margin_loss.py:28; pml clamps it "
    "in LargeMarginSoftmaxLoss and P2SGradLoss): acos'(+-1) is infinite, so a computed cosine of exactly +-1 (every "
    "pair of 1-D embeddings, where the loss is locally constant with gradient 0; float16 rows within about 1.8 "
    "degrees, whose cosine rounds to 1, where the exact gradient is finite) gives a NaN gradient, and a cosine "
    "rounded beyond 1 (duplicate rows in float64: 1.0000000000000002) a NaN loss"
)


def _tuplet_findings() -> tuple[Finding, ...]:
    cells = (
        ("finite", "float64", _embeddings(1.0, 21.0, 11.0, labels=(0, 0, 1))),
        (
            "finite",
            "float16",
            Example(
                {
                    "embeddings": np.array([[2.0, 0.0625], [22.0, 0.0625], [12.0, 0.0625]]),
                    "labels": np.array([0, 0, 1], dtype=np.int64),
                },
                {},
            ),
        ),
        ("gradcheck", "float64", _embeddings(1.0, 1.0, 1.0, labels=(0, 0, 1))),
    )
    return tuple(
        Finding(
            prop,
            _ACOS_UNCLAMPED,
            UPSTREAM,
            dtypes=(dtype,),
            witness=witness,
            domain=_cosine_of_a_positive_pair_at_or_beyond_one,
            where="some positive pair whose cosine, computed as pml computes it in the dtype (F.normalize, matmul), "
            "is +-1 or beyond, in a batch with a negative pair",
        )
        for prop, dtype, witness in cells
    )


_PNP_ANNEAL = 0.01  # PNPLoss's default temperature, which the binding keeps


def _pnp_exp_overflows(example: Example, dtype: str) -> bool:
    """Some entry of PNPLoss.sigmoid's exponent, computed as pml computes it in ``dtype`` (-(s_ik - s_ij) / anneal over
    every (i, j, k), clamped to +-50), whose exp overflows to inf while the clamp passes its gradient (|z| <= 50), in
    a batch where some sample has a positive (else pml returns its zero loss first)."""
    import torch

    positive, _ = _same_label(example)
    if not np.any(positive):
        return False
    sim = torch.tensor(_cosines(example, dtype), dtype=getattr(torch, dtype))
    z = -(sim[:, None, :] - sim[:, :, None]) / _PNP_ANNEAL
    return bool(torch.any(torch.isinf(torch.exp(torch.clamp(z, -50, 50))) & (z.abs() <= 50)))


_RANKED_LIST_ALPHA = 1.0 + 0.4 / 2  # pml's default alpha = 1 + margin / 2, at the binding's margin 0.4


def _negative_at_float64_distance_zero(example: Example, dtype: str) -> bool:
    """Some negative pair (different labels) whose float64 distance, computed as pml computes it (F.normalize, then
    torch.cdist) on the embeddings rounded to ``dtype``, is exactly 0."""
    import torch

    rounded = _rows(example, dtype).double()
    unit = torch.nn.functional.normalize(rounded, p=2, dim=1)
    _, negative = _same_label(example)
    return bool(np.any(torch.cdist(unit, unit, p=2).numpy()[negative] == 0.0))


def _histogram_pairs(example: Example) -> np.ndarray:
    """The pairs HistogramLoss bins (its triplets' anchor-positive and anchor-negative pairs, sorted and unique), as
    an (M, 2) array of indices; empty without a triplet (then pml returns its zero loss)."""
    positive, negative = _same_label(example)
    anchors = np.flatnonzero(positive.any(axis=1) & negative.any(axis=1))
    pairs = {tuple(sorted((a, int(b)))) for a in anchors for b in np.flatnonzero(positive[a] | negative[a])}
    return np.array(sorted(pairs), dtype=np.int64).reshape(-1, 2)


_HISTOGRAM_DELTA = 2 / 100  # HistogramLoss's default bin width (n_bins = 100)


def _histogram_weights_unbalanced(example: Example, dtype: str) -> bool:
    """Some binned similarity whose two linear-binning weights, computed as HistogramLoss.compute_density computes
    them (histogram_loss.py:60-66) in ``dtype`` or in float64 (the yardstick), do not sum to exactly 1."""
    import torch

    pairs = _histogram_pairs(example)
    if not len(pairs):
        return False
    for computed in dict.fromkeys((dtype, "float64")):
        s = torch.tensor(_cosines(example, computed)[pairs[:, 0], pairs[:, 1]], dtype=getattr(torch, computed))
        r_star = torch.floor((s.float() + 1) / _HISTOGRAM_DELTA).to(torch.long)
        a = ((s + 1 - r_star * _HISTOGRAM_DELTA) / _HISTOGRAM_DELTA).to(s.dtype)
        b = (((r_star + 1) * _HISTOGRAM_DELTA - 1 - s) / _HISTOGRAM_DELTA).to(s.dtype)
        if bool(torch.any(a + b != 1)):
            return True
    return False


_HISTOGRAM_MASS = (
    "HistogramLoss.compute_density forms each binned similarity's two linear-binning weights independently "
    "(delta_ijr_a = (s + 1 - r* delta) / delta and delta_ijr_b = ((r* + 1) delta - 1 - s) / delta, "
    "histogram_loss.py:65-66) instead of b = 1 - a, so a + b = 1 only up to O(u / delta) = O(50 u) and each "
    "histogram's mass is not 1: the loss sum(p_neg cumsum(p_pos)), at most 1 by definition, errs by tens of u where "
    "it is exactly 1 and locally constant (1.0000041 in float32, 0.983 in float16). The float64 yardstick carries "
    "float32 rounding of its own: r* is an int64 tensor (from a float32 floor, lines 60-63), so r* * delta (a Python "
    "float) is computed in float32 (torch's default dtype) inside the float64 computation (1.0000011 there)"
)


def _histogram_findings() -> tuple[Finding, ...]:
    witnesses = {
        "float32": np.array([[2.0, 2.0, 2.0], [22.0, 2.0, 2.0], [12.0, 2.0, 2.0]]),
        "float16": np.array([[0.0, 1.0], [20.0, 1.0], [10.0, 1.0]]),
    }
    return tuple(
        Finding(
            "low_precision",
            _HISTOGRAM_MASS,
            UPSTREAM,
            dtypes=(dtype,),
            witness=Example({"embeddings": rows, "labels": np.array([0, 0, 1], dtype=np.int64)}, {}),
            domain=_histogram_weights_unbalanced,
            where="some binned similarity whose two binning weights, computed as pml computes them in the dtype or "
            "in float64, do not sum to exactly 1 (nearly every batch with a triplet)",
        )
        for dtype, rows in witnesses.items()
    )


def _anchor_with_positive_and_negative(example: Example, dtype: str) -> bool:
    """Some anchor with a positive and a negative: its row of the loss is not zeroed, and its alpha_p =
    relu(1 + m - s_p) >= m > 0 (a cosine s_p <= 1) is active, so the detached weight's derivative is missing."""
    positive, negative = _same_label(example)
    return bool(np.any(positive.any(axis=1) & negative.any(axis=1)))


def _norm_squared_underflows(example: Example, dtype: str) -> bool:
    """Some embedding row of positive norm n (computed in ``dtype``) whose square n * n rounds to 0 in ``dtype``."""
    import torch

    norms = torch.linalg.vector_norm(_rows(example, dtype), dim=-1)
    return bool(torch.any((norms > 0) & (norms * norms == 0)))


def _zero_embedding_row(example: Example, dtype: str) -> bool:
    """Some embedding row exactly 0 (where F.normalize's eps acts in float64: its norm below 1e-12 is 0)."""
    return bool(np.any(np.all(np.asarray(example.args["embeddings"]) == 0.0, axis=-1)))


# the departures recorded beside the zero-embedding ones (label -> findings), merged into FINDINGS below
_DEPARTURES: dict[str, tuple[Finding, ...]] = {
    "pml.TupletMarginLoss": _tuplet_findings(),
    "pml.PNPLoss": (
        Finding(
            "finite",
            "PNPLoss.sigmoid forms 1 / (1 + exp(z)) with z = -(s_ik - s_ij) / anneal clamped to +-50 "
            "(pnp_loss.py:88-91), and exp(z) overflows float16 from z = 11.09 (a similarity difference beyond 0.111 "
            "at anneal 0.01): the value stays right (1 / inf = 0), but its backward multiplies 0 by inf, NaN in "
            "every gradient (also for the (i, j, k) the negative mask zeroes), where torch.sigmoid(-z) gives the "
            "finite exact one",
            UPSTREAM,
            dtypes=("float16",),
            witness=Example(
                {
                    "embeddings": np.array([[1.0, 1.0], [21.0, 1.0], [11.0, 1.0]]),
                    "labels": np.array([0, 0, 1], dtype=np.int64),
                },
                {},
            ),
            domain=_pnp_exp_overflows,
            where="float16, some sigmoid exponent -(s_ik - s_ij) / anneal (computed as pml computes it) in "
            "(11.09, 50], where exp overflows and the clamp passes the gradient, in a batch where some sample has a "
            "positive",
        ),
    ),
    "pml.RankedListLoss": (
        Finding(
            "finite",
            "float16: F.normalize's backward (LpDistance's default normalize_embeddings=True) divides by the row's "
            "norm squared, which underflows to 0 in float16 for a norm below about 2^-12.5 = 1.7e-4: the gradient "
            "is NaN or inf where float32 and float64 give the finite one (0 for one sample, the loss identically 0)",
            UPSTREAM,
            dtypes=("float16",),
            witness=_embeddings(2.0**-23, labels=(0,)),
            domain=_norm_squared_underflows,
            where="float16, some embedding row of positive norm whose square rounds to 0 in float16",
        ),
        Finding(
            "low_precision",
            "the float64 yardstick is the value that departs: RankedListLoss marks the negatives of N* by their "
            "stored distance being positive (w_n[N_star > 0], ranked_list_loss.py:71), so a negative at distance "
            "exactly 0 (the hardest: d = 0 < alpha) is dropped; float64 and float32 compute the distance with "
            "torch.cdist (exactly 0 for coincident normalised embeddings) and give 0, float16 with "
            "F.pairwise_distance (eps 1e-6, so d > 0) keeps it and gives the definition's value (0.6001, Wang et al.'s "
            "0.5999955 with pml's 1e-5 terms, on 1-D embeddings of two classes)",
            UPSTREAM,
            dtypes=("float16",),
            witness=_embeddings(1.0, 21.0, 11.0, labels=(0, 0, 1)),
            domain=_negative_at_float64_distance_zero,
            where="some negative pair whose float64 distance (computed as pml computes it, on the embeddings rounded "
            "to the dtype) is exactly 0: coincident normalised embeddings of different labels",
        ),
    ),
    "pml.HistogramLoss": _histogram_findings(),
    "pml.CircleLoss": (
        Finding(
            "gradcheck",
            "by design: the re-weighting factors alpha_p = relu(1 + m - s_p) and alpha_n = relu(s_n + m) are formed "
            "from anchor_positive.detach() and anchor_negative.detach() (circle_loss.py:51,56), constants in "
            "backpropagation as Sun et al. 2020 (Circle Loss, CVPR) prescribe, so autograd returns the paper's "
            "re-weighted gradient, not the derivative of the value it returns (the gradient with the weights held "
            "constant)",
            UPSTREAM,
            dtypes=("float64",),
            witness=Example(
                {
                    "embeddings": np.array([[1.0, 1.0], [21.0, 1.0], [11.0, 1.0]]),
                    "labels": np.array([0, 0, 1], dtype=np.int64),
                },
                {},
            ),
            domain=_anchor_with_positive_and_negative,
            where="some anchor with a positive and a negative: every example with a row of the loss, since its "
            "alpha_p >= m > 0 is always active there",
        ),
    ),
    "pml.FastAPLoss": (
        Finding(
            "gradcheck",
            "at a zero embedding row F.normalize (base_distance.py:75) computes x / max(||x||, 1e-12), whose slope is "
            "1e12: the backward pass multiplies the histogram pulses' slopes (+-1 / delta = +-2.5) by it, terms that "
            "cancel in real arithmetic, and returns their float64 rounding (-2e-5 along a direction where every "
            "label is equal and the loss is identically 0); x / ||x|| itself has no derivative at 0",
            UPSTREAM,
            dtypes=("float64",),
            witness=_embeddings(0.0, 1.0, 1.0, 1.0, labels=(0, 0, 0, 0)),
            domain=_zero_embedding_row,
            where="some embedding row exactly 0",
        ),
    ),
}


FINDINGS: dict[str, tuple[Finding, ...]] = {
    "pml.HistogramLoss": (
        *_binned_past_the_end(_embeddings(1.0, 1.0, 1.0, labels=(0, 0, 1))),
        *_DEPARTURES["pml.HistogramLoss"],
    ),
    "pml.DynamicSoftMarginLoss": _binned_past_the_end(_embeddings(-1.0, 19.0, 9.0, labels=(0, 0, 1))),
    **{label: found for label, found in _DEPARTURES.items() if label != "pml.HistogramLoss"},
    **{label: _normalized_zero(cells) + _DEPARTURES.get(label, ()) for label, cells in _ZERO_EMBEDDING_CELLS.items()},
    "pml.ContrastiveLoss": (
        *(
            Finding(
                prop,
                _SINGLE_PAIR,
                UPSTREAM,
                witness=Example(
                    {**float_arrays(x1=[[0.0]], x2=[[x2]]), "label": np.array([0], dtype=np.int64)}, {"margin": 1.0}
                ),
                domain=_one_pair_of_each_kind,
                where="at most one similar pair and at most one dissimilar pair (N = 1, or N = 2 with one of each)",
            )
            for prop, x2 in (("agreement", 0.0), ("gradient", 0.5))
        ),
        Finding(  # a row of two dissimilar pairs at distance 0 computed alone: 0, not its loss 1 in the batch
            "batch",
            _SINGLE_PAIR,
            UPSTREAM,
            witness=Example(
                {**float_arrays(x1=[[0.0], [0.0]], x2=[[0.0], [0.0]]), "label": np.array([0, 0], dtype=np.int64)},
                {"margin": 1.0},
            ),
            domain=_one_pair_of_each_kind,
            where="a row computed alone: one pair",
        ),
        Finding(
            "invalid_input",
            "a negative neg_margin is accepted silently: every dissimilar pair's hinge max(0, margin - d) is then 0",
            UPSTREAM,
            witness=Example({**float_arrays(x1=[[0.0]], x2=[[0.0]]), "label": np.array([0], dtype=np.int64)}, {}),
            case="margin=-1.0: margin must be non-negative",
        ),
    ),
    "pml.TripletMarginLoss": (
        Finding(
            "invalid_input",
            "margin=0 is accepted silently: max(d(a, p) - d(a, n), 0) is 0 wherever the embeddings collapse to one "
            "point (the degenerate minimiser a positive margin exists to exclude)",
            UPSTREAM,
            witness=Example(float_arrays(anchor=[[0.0]], positive=[[0.0]], negative=[[0.0]]), {}),
            case="margin=0.0: margin must be positive",
        ),
    ),
    "pml.NTXentLoss": (
        Finding(
            "invalid_input",
            "temperature=0 is accepted silently: 0 for one pair of views (no negatives), NaN from 2 pairs on",
            UPSTREAM,
            witness=Example(float_arrays(z_i=[[0.0]], z_j=[[0.0]]), {}),
            case="temperature=0.0: temperature must be positive",
        ),
        *_nt_xent_findings({"float32": 0.01, "bfloat16": 0.01, "float16": 0.125}, ("float32", "bfloat16", "float16")),
    ),
    # at pml's temperature 0.07 a probability reaches tiny / u only in float16 (e^(-2 / 0.07) / (2N - 1) > 1e-14)
    "pml.SelfSupervisedLoss(NTXentLoss)": _nt_xent_findings({}, ("float16",)),
}
