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
    "pml.PNPLoss": {"finite": _ONE_ZERO, "low_precision": _ZEROS_TWO},
    "pml.ThresholdConsistentMarginLoss": {"finite": _ONE_ZERO},
    "pml.TupletMarginLoss": {"finite": _ONE_ZERO, "low_precision": _ZEROS_THREE},
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


FINDINGS: dict[str, tuple[Finding, ...]] = {
    "pml.HistogramLoss": _binned_past_the_end(_embeddings(1.0, 1.0, 1.0, labels=(0, 0, 1))),
    "pml.DynamicSoftMarginLoss": _binned_past_the_end(_embeddings(-1.0, 19.0, 9.0, labels=(0, 0, 1))),
    **{label: _normalized_zero(cells) for label, cells in _ZERO_EMBEDDING_CELLS.items()},
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
