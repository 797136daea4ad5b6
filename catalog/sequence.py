"""Catalog entries of the sequence losses (token-level cross-entropy, chunked linear cross-entropy).

The strategies reach the family's hard cases: logits of +-1e4 (directly, or as products of hidden
and weight entries of +-100), every token ignored, every label the same, sequences of length 1,
batches of one, vocabularies of 1 and 2; the ``linear_materialised`` property adds chunk sizes
1, not dividing N or V, and larger than N or V.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from hypothesis import strategies as st

from lossguard.catalog.classification import _perfect_ce
from lossguard.catalog.common import family_entry, optional_array, param_case, tags, without
from lossguard.harness.kernel import strategies as S
from lossguard.harness.kernel.model import ErrorCase, Example, LossSpec, Relations
from lossguard.reference import sequence as R

_TARGET_KINDS = ("mixed", "mixed", "mixed", "all ignored", "all the same")
# |hidden|, |weight| caps (typical, extreme): 100 * 100 makes logits of 1e4; float16 stays far from 65504
_FACTOR_CAP = {"float16": (3.0, 10.0), "bfloat16": (3.0, 100.0), "float32": (3.0, 100.0), "float64": (3.0, 100.0)}


def _vocabulary(draw: Callable) -> int:
    """V in 1..12, V = 1 and V = 2 often."""
    return draw(st.one_of(st.sampled_from([1, 2]), st.integers(1, 12)), label="V")


def _token_targets(draw: Callable, shape: tuple[int, ...], n_classes: int, ignore_index: int) -> np.ndarray:
    """Class indices with some ignored, or every token ignored, or every token the same label."""
    kind = draw(st.sampled_from(_TARGET_KINDS), label="targets")
    if kind == "all ignored":
        return np.full(shape, ignore_index, dtype=np.int64)
    if kind == "all the same":
        return np.full(shape, draw(st.integers(0, n_classes - 1), label="the label"), dtype=np.int64)
    return np.asarray(S.class_indices(draw, shape, n_classes, ignore_index), dtype=np.int64)


def _smoothing() -> st.SearchStrategy[float]:
    return st.one_of(st.just(0.0), st.floats(0.0, 1.0), st.sampled_from([0.1, 1.0]))


def _sequence_examples(draw, dtype, regime, choose) -> Example:
    """(B, T, V) logits, B in 1..3, T in 1..4 (length-1 sequences and batches of one included)."""
    b = draw(st.integers(1, 3), label="B")
    t = draw(st.integers(1, 4), label="T")
    v = _vocabulary(draw)
    params = choose({"ignore_index": st.sampled_from([-100, 0]), "label_smoothing": _smoothing()})
    logits = S.array(draw, (b, t, v), S.logits(dtype, regime))
    return Example({"logits": logits, "target": _token_targets(draw, (b, t), v, params["ignore_index"])}, params)


def _factors(dtype: str, regime: str) -> st.SearchStrategy[float]:
    bound = S.cap(_FACTOR_CAP, dtype, regime)
    return st.one_of(st.floats(-bound, bound), st.sampled_from([0.0, 1.0, -1.0, 0.5, bound, -bound]))


def _linear_examples(draw, dtype, regime, choose) -> Example:
    """hidden (N, H), weight (V, H), target (N,), N in 1..6, H in 1..4; bias None or (V,)."""
    n = draw(st.integers(1, 6), label="N")
    h = draw(st.integers(1, 4), label="H")
    v = _vocabulary(draw)
    params = choose(
        {
            "bias": optional_array((v,), S.logits(dtype, regime)),
            "ignore_index": st.sampled_from([-100, 0]),
            "reduction": S.reduction(),
        }
    )
    hidden = S.array(draw, (n, h), _factors(dtype, regime))
    weight = S.array(draw, (v, h), _factors(dtype, regime))
    target = _token_targets(draw, (n,), v, params["ignore_index"])
    return Example({"hidden": hidden, "weight": weight, "target": target}, params)


def _index_out_of_range(vocabulary: Callable[[Example], int]) -> ErrorCase:
    def make(example: Example) -> Example:
        bad = np.array(example.args["target"], copy=True)
        bad.flat[0] = vocabulary(example)
        return example.replace({"target": bad}, ignore_index=-100)

    return ErrorCase("a class index equal to V (outside [0, V))", make)


def _target_with_extra_axis(example: Example) -> Example:
    t = np.asarray(example.args["target"])
    return example.replace({"target": t.reshape((*t.shape, 1))})


_TARGET_SHAPE = ErrorCase("target with an extra trailing axis of 1", _target_with_extra_axis)


def _perfect_tokens(example: Example, strength: float) -> Example:
    """The classification entry's perfect prediction, applied to (B, T, V) logits (vocabulary as classes)."""
    as_classes = Example(
        {"input": np.moveaxis(example.args["logits"], -1, 1), "target": example.args["target"]}, dict(example.params)
    )
    surer = _perfect_ce(as_classes, strength)
    return example.replace(
        {"logits": np.moveaxis(surer.args["input"], 1, -1), "target": surer.args["target"]}, **surer.params
    )


def _perfect_linear(example: Example, strength: float) -> Example:
    """Append V features: hidden gets strength * spread * onehot(y), weight the identity, so the logits
    become z + strength * spread * onehot(y) (the correct logit grows, the others stay)."""
    x = np.asarray(example.args["hidden"], dtype=np.float64)
    w = np.asarray(example.args["weight"], dtype=np.float64)
    bias = example.params.get("bias")
    z = x @ w.T + (0.0 if bias is None else bias)
    target = np.asarray(example.args["target"])
    valid = target != example.params.get("ignore_index", -100)
    onehot = np.eye(w.shape[0])[np.where(valid, target, 0)] * valid[:, None]
    spread = np.ptp(z, axis=1, keepdims=True) + 1.0
    return example.replace(
        {"hidden": np.hstack([x, strength * spread * onehot]), "weight": np.hstack([w, np.eye(w.shape[0])])}
    )


def _weight_width(example: Example) -> Example:
    w = np.asarray(example.args["weight"])
    return example.replace({"weight": np.hstack([w, np.zeros((w.shape[0], 1))])})


def _bias_length(example: Example) -> Example:
    v = np.shape(example.args["weight"])[0]
    return example.replace(bias=np.zeros(v + 1))


def _language_model_head(example: Example, rng: np.random.Generator) -> Example:
    """The benchmark call: 2048 tokens of a 128-wide hidden state through a vocabulary of 8192 (seeded)."""
    tokens, hidden, vocabulary = 2048, 128, 8192
    return example.replace(
        {
            "hidden": rng.standard_normal((tokens, hidden)),
            "weight": rng.standard_normal((vocabulary, hidden)) / hidden**0.5,
            "target": rng.integers(0, vocabulary, tokens),
        }
    )


sequence_entry = family_entry(family="sequence")  # the family's defaults

SEQUENCE: tuple[LossSpec, ...] = (
    sequence_entry(
        name="sequence_cross_entropy",
        definition="token-level CE over (B, T, V) logits, mean over non-ignored tokens (NaN when all are ignored, "
        "torch's 0 / 0); perplexity = exp(loss)",
        reference=R.sequence_cross_entropy,
        examples=_sequence_examples,
        properties=without(
            tags("non_negative", "ignored_tokens", "perplexity", zero_at_perfect={"label_smoothing": 0.0}),
            "reduction",
            "batch",
        ),
        differentiable=("logits",),
        error_cases=(
            _index_out_of_range(lambda ex: np.shape(ex.args["logits"])[-1]),
            _TARGET_SHAPE,
            param_case("label_smoothing", 1.5, "label_smoothing must lie in [0, 1]"),
        ),
        perfect=_perfect_tokens,
        perfect_is_limit=True,
        caveats="no reduction parameter (always the mean over non-ignored tokens, which couples the tokens): "
        "the reduction and batch properties do not apply; zero at a perfect prediction only as a limit, and only "
        "without label smoothing",
    ),
    sequence_entry(
        name="linear_cross_entropy",
        relations=Relations(cross_entropy="cross_entropy"),
        definition="cross_entropy(hidden @ weight.T + bias, target) without ever holding the full (N, V) logits in "
        "memory (the value is the contract; the memory is benchmarked); 'mean' over non-ignored tokens",
        reference=R.linear_cross_entropy,
        examples=_linear_examples,
        properties=without(
            tags("non_negative", "zero_at_perfect", "ignored_tokens", "linear_materialised"),
            "batch",
        ),
        differentiable=("hidden", "weight", "bias"),
        error_cases=(
            _index_out_of_range(lambda ex: np.shape(ex.args["weight"])[0]),
            _TARGET_SHAPE,
            ErrorCase("weight (V, H + 1) against hidden (N, H)", _weight_width),
            ErrorCase("bias of length V + 1", _bias_length, needs=("bias",)),
        ),
        perfect=_perfect_linear,
        perfect_is_limit=True,
        caveats="batch: every token shares weight (V, H), which the generic batch property would slice along "
        "its first axis; zero at a perfect prediction only as a limit; no sweep (lossguard plot sweeps an 'input')",
        benchmark=_language_model_head,
    ),
)
