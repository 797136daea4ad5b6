"""optax's losses (``optax.losses``, JAX) whose convention needs code, and the findings recorded against optax 0.2.8.

optax's losses take their arrays classes last and have no reduction (one value per element, or per example with
the class axis summed): the bindings pin ``reduction='none'`` (optax.toml). Here: a class-probability target moved
classes last with the input (``input_layout = "classes-last"`` moves the input only), the per-example KL summed
over the batch (kl_div's 'sum': the catalog's 'none' is pointwise, optax sums over the classes), NT-Xent's two
views as one batch with pair labels, the Dice losses' class axis, reduction and smoothing, and a Fenchel-Young
loss constructed from the log-sum-exp. Findings (``FINDINGS``: binding label -> findings) are each confirmed
independently in tests/bindings/test_optax.py.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from typing import Any

import numpy as np

from lossguard.harness.kernel.binding import Binding
from lossguard.harness.kernel.model import Example, Finding
from lossguard.implementations.bindings.evidence import float_arrays, validation_gap

UPSTREAM = "optax 0.2.8"


def _classes_last(array: Any) -> Any:
    import jax.numpy as jnp

    return jnp.moveaxis(array, 1, -1) if array.ndim > 1 else array


def probability_target(fn: Any, args: dict[str, Any], keywords: dict[str, Any]) -> Any:
    """``fn(input, target)`` with the class-probability target's class axis moved last, as the input's is."""
    return fn(args["input"], _classes_last(args["target"]), **keywords)


def poly_as_cross_entropy(fn: Any, args: dict[str, Any], keywords: dict[str, Any]) -> Any:
    """PolyLoss-1 with epsilon = 0: CE + 0 (1 - p_t), the softmax cross-entropy (Leng et al. 2022, eq. 3)."""
    return fn(args["input"], _classes_last(args["target"]), epsilon=0.0, **keywords)


def ranking_reduction(fn: Any, args: dict[str, Any], keywords: dict[str, Any]) -> Any:
    """``ranking_softmax_loss`` spells the reduction as ``reduce_fn``: jnp.mean, jnp.sum, or None ('none')."""
    import jax.numpy as jnp

    reduce_fn = {"mean": jnp.mean, "sum": jnp.sum, "none": None}[keywords.pop("reduction", "mean")]
    return fn(args["input"], _classes_last(args["target"]), reduce_fn=reduce_fn, **keywords)


def fenchel_young_logsumexp(fn: Any, args: dict[str, Any], keywords: dict[str, Any]) -> Any:
    """``make_fenchel_young_loss(max_fun=logsumexp)`` (its docstring's example): logsumexp(s) - <t, s>, the
    cross-entropy of a distribution t (Blondel et al. 2020, sec. 4.1)."""
    from jax.scipy.special import logsumexp

    return fn(max_fun=logsumexp)(args["input"], _classes_last(args["target"]), **keywords)


def summed_over_batch(fn: Any, args: dict[str, Any], keywords: dict[str, Any]) -> Any:
    """optax's KL of each example (the class axis summed, shape (N,)) summed over the batch: kl_div's 'sum'."""
    return fn(args["input"], args["target"], **keywords).sum()


def nt_xent_pairs(fn: Any, args: dict[str, Any], keywords: dict[str, Any]) -> Any:
    """``ntxent(embeddings, labels)`` on the 2N views [z_i; z_j] with the pair labels [0..N-1, 0..N-1]: each view's
    one positive is its pair (SimCLR's two views, the form of its docstring's example)."""
    import jax.numpy as jnp

    z_i, z_j = args["z_i"], args["z_j"]
    pairs = jnp.arange(z_i.shape[0])
    return fn(jnp.concatenate([z_i, z_j]), jnp.concatenate([pairs, pairs]), **keywords)


def _dice_axis(ndim: int, batch: bool) -> tuple[int, ...] | None:
    """The axes optax's dice_loss sums over, classes last: the spatial ones (its default), also the batch's."""
    return tuple(range(ndim - 1)) if batch else None


def dice_classes_last(fn: Any, args: dict[str, Any], keywords: dict[str, Any]) -> Any:
    """optax's dice_loss on (N, *, C) predictions and masks, per (sample, class) ('none'): the catalog's (N, C, *)
    moved classes last, batch=True as optax's ``axis`` over the batch and the spatial axes."""
    batch = keywords.pop("batch", False)
    x, y = _classes_last(args["input"]), _classes_last(args["target"])
    return fn(x, y, reduction="none", axis=_dice_axis(x.ndim, batch), **keywords)


def _halved_smooth(keywords: dict[str, Any]) -> dict[str, Any]:
    """With alpha = beta = 1/2, optax's 1 - (I + s) / (I + (P - I) / 2 + (T - I) / 2 + s) is the catalog's
    1 - (2 I + 2 s) / (P + T + 2 s): optax's smooth is half the catalog's."""
    return {**keywords, "smooth": keywords["smooth"] / 2} if "smooth" in keywords else keywords


def dice_multiclass(fn: Any, args: dict[str, Any], keywords: dict[str, Any]) -> Any:
    """optax's dice_loss (softmax over C >= 2 classes) against the catalog's class indices (N, *) one-hot, classes
    last, per (sample, class) ('none'); smooth as optax's half."""
    import jax

    batch = keywords.pop("batch", False)
    x = _classes_last(args["input"])
    onehot = jax.nn.one_hot(args["target"], x.shape[-1], dtype=x.dtype)
    return fn(x, onehot, reduction="none", axis=_dice_axis(x.ndim, batch), **_halved_smooth(keywords))


def binary_dice(fn: Any, args: dict[str, Any], keywords: dict[str, Any]) -> Any:
    """optax's binary_dice_loss on one-channel (N, 1, *) logits and masks moved classes last ((N, *, 1)); its
    output (N,) (the mean over the one class) as the catalog's (N, 1); smooth as optax's half."""
    x, y = _classes_last(args["input"]), _classes_last(args["target"])
    return fn(x, y, **_halved_smooth(keywords))[:, None]


def masks_classes_last(fn: Any, args: dict[str, Any], keywords: dict[str, Any]) -> Any:
    """``fn(input, target)`` with both (N, C, *) arrays moved classes last."""
    return fn(_classes_last(args["input"]), _classes_last(args["target"]), **keywords)


def _jax(target: str, name: str, call: Callable[..., Any], **fields: Any) -> Binding:
    return Binding(target=f"optax.losses:{target}", name=f"optax.{name}", framework="jax", call=call, **fields)


_NONE = {"reduction": "none"}

BINDINGS = [
    _jax(
        "softmax_cross_entropy",
        "softmax_cross_entropy",
        probability_target,
        loss="cross_entropy",
        fixed=_NONE,
        input_layout="classes-last",
        domain=("class-probabilities",),
    ),
    _jax(
        "safe_softmax_cross_entropy",
        "safe_softmax_cross_entropy",
        probability_target,
        loss="cross_entropy",
        fixed=_NONE,
        input_layout="classes-last",
        domain=("class-probabilities",),
    ),
    _jax(
        "poly_loss_cross_entropy",
        "poly_loss_cross_entropy.epsilon0",
        poly_as_cross_entropy,
        loss="cross_entropy",
        fixed=_NONE,
        input_layout="classes-last",
        domain=("class-probabilities",),
    ),
    _jax(
        "poly_loss_cross_entropy",
        "poly_loss_cross_entropy",
        probability_target,
        like="cross_entropy",
        input_layout="classes-last",
        domain=("class-probabilities",),
    ),
    _jax(
        "ranking_softmax_loss",
        "ranking_softmax_loss",
        ranking_reduction,
        loss="cross_entropy",
        params={"reduction": "reduction"},
        input_layout="classes-last",
        domain=("class-probabilities",),
    ),
    # the cross-entropy's value on the simplex, not its target gradient: d/dt (lse(s) - <t, s>) = -s, the
    # cross-entropy's -log softmax(s) = lse(s) - s less lse(s) along (1, ..., 1), off the simplex's tangent space
    _jax(
        "make_fenchel_young_loss",
        "make_fenchel_young_loss.logsumexp",
        fenchel_young_logsumexp,
        like="cross_entropy",
        input_layout="classes-last",
        domain=("class-probabilities",),
    ),
    _jax("kl_divergence", "kl_divergence", summed_over_batch, loss="kl_div", fixed={"reduction": "sum"}),
    _jax(
        "kl_divergence_with_log_targets",
        "kl_divergence_with_log_targets",
        summed_over_batch,
        loss="kl_div",
        fixed={"reduction": "sum", "log_target": True},
    ),
    _jax("generalized_kl_divergence", "generalized_kl_divergence", summed_over_batch, like="kl_div"),
    _jax("convex_kl_divergence", "convex_kl_divergence", summed_over_batch, like="kl_div"),
    _jax("ntxent", "ntxent", nt_xent_pairs, loss="nt_xent_loss", params={"temperature": "temperature"}),
    # dice_loss and binary_dice_loss document [..., 1] or [...] predictions and targets (a channel axis added to
    # the one without): a target of another shape is their convention (no-broadcast)
    _jax(
        "dice_loss",
        "dice_loss",
        dice_classes_last,
        loss="tversky_loss",
        params={"alpha": "alpha", "beta": "beta", "smooth": "smooth", "batch": "batch"},
        fixed=_NONE,
        domain=("one-channel", "no-broadcast"),
    ),
    _jax(
        "dice_loss",
        "dice_loss.multiclass",
        dice_multiclass,
        loss="multiclass_dice_loss",
        params={"smooth": "smooth", "batch": "batch"},
        fixed=_NONE,
        domain=("two-classes", "indices-in-range"),
    ),
    _jax(
        "binary_dice_loss",
        "binary_dice_loss",
        binary_dice,
        loss="dice_loss",
        params={"smooth": "smooth"},
        fixed=_NONE,
        domain=("one-channel", "no-broadcast"),
    ),
    _jax("multiclass_generalized_dice_loss", "multiclass_generalized_dice_loss", masks_classes_last, like="dice_loss"),
]

# --- the findings ------------------------------------------------------------------------------------------------


_unchecked = partial(validation_gap, upstream=UPSTREAM)


def _small_residual(example: Example, dtype: str) -> bool:
    """Some residual e = input - target with |e| < delta / 4: huber_loss's gradient there is delta + (min(|e|,
    delta) - delta) sign(e), whose rounding of min(|e|, delta) - delta errs by up to u delta, more than the 8 u |e|
    the gradient is allowed once |e| < delta / 6 (delta / 4: the computed |e| and the sum round too)."""
    e = np.asarray(example.args["input"], dtype=np.float64) - np.asarray(example.args["target"], dtype=np.float64)
    return bool(np.any(np.abs(e) < example.params.get("delta", 1.0) / 4))


def _signed_power(example: Example, dtype: str) -> bool:
    """p is not an even integer and some component of anchor - positive or anchor - negative is negative: there
    jnp.power(x, p) is signed (p odd) or NaN (p not an integer), not |x|^p."""
    p = example.params.get("p", 2.0)
    a, pos, neg = (np.asarray(example.args[k], dtype=np.float64) for k in ("anchor", "positive", "negative"))
    return not (float(p).is_integer() and p % 2 == 0) and bool(np.any(a - pos < 0) or np.any(a - neg < 0))


def _zero_distance_without_eps(example: Example, dtype: str) -> bool:
    """eps = 0, p > 1 and some anchor row whose every |anchor - positive|^p (or |anchor - negative|^p) is 0 in the
    dtype (equal rows, or differences whose powers underflow): the root's derivative s^(1/p - 1) is infinite at
    s = 0, times ds/dx = 0."""
    import jax.numpy as jnp

    p = example.params.get("p", 2.0)
    if example.params.get("eps", 1e-6) != 0 or p <= 1:
        return False
    tiny = float(jnp.finfo(getattr(jnp, dtype)).smallest_subnormal)
    a = np.asarray(example.args["anchor"], dtype=np.float64)
    with np.errstate(under="ignore"):
        powers = [np.abs(a - np.asarray(example.args[k], dtype=np.float64)) ** p for k in ("positive", "negative")]
    return any(bool(np.any(np.all(2 * w < tiny, axis=-1))) for w in powers)  # below half of it: rounds to 0


def _small_tversky_denominator(example: Example, dtype: str) -> bool:
    """Some (sample, channel) whose Tversky denominator TP + alpha FP + beta FN + smooth (p = sigmoid(input), the
    sums over the spatial axes, and the batch's with batch=True) is below 2^-8 (1% over it: the dtype's rounding of
    the sums), where its reciprocal square exceeds float16's largest number."""
    from scipy.special import expit

    p = expit(np.asarray(example.args["input"], dtype=np.float64))
    y = np.asarray(example.args["target"], dtype=np.float64)
    axes = tuple(range(2, p.ndim)) + ((0,) if example.params.get("batch", False) else ())
    tp, fp, fn = (np.sum(v, axis=axes) for v in (p * y, p * (1 - y), (1 - p) * y))
    q = example.params
    denominator = tp + q.get("alpha", 0.5) * fp + q.get("beta", 0.5) * fn + q.get("smooth", 1.0)
    return bool(np.any(denominator < 1.01 * 2.0**-8))


_SIGNED_POWER = (
    "the p-norm is formed as (sum_k (x_k - y_k)^p + eps)^(1/p) without the absolute value: for p = 1 the "
    "'distance' is the signed sum of the differences (negative for a negative pointing the other way: the hinge is "
    "violated by pairs at any distance), for p = 3 jnp.power of a negative base is NaN"
)
_SIGNED_WHERE = "p not an even integer and some component of anchor - positive or anchor - negative negative"
_TRIPLET_WITNESS = Example(float_arrays(anchor=[[0.0]], positive=[[0.0]], negative=[[2.0]]), {"p": 1.0, "margin": 1.0})
# the gradient's witness keeps the anchor off its positive: a zero difference is a kink of the distance, where the
# gradient property judges no element once the dtype's rounding reaches it (float32 and below)
_TRIPLET_GRADIENT = Example(float_arrays(anchor=[[0.0]], positive=[[0.5]], negative=[[2.0]]), {"p": 1.0, "margin": 1.0})
_TRIPLET_NAN = Example(float_arrays(anchor=[[0.0]], positive=[[3.0]], negative=[[-1.5]]), {"p": 3.0, "margin": 1.0})


def _zero_vector(example: Example, dtype: str) -> bool:
    """Some row of input1 or input2 that is exactly 0 (its norm is 0)."""
    return any(bool(np.any(np.all(np.asarray(example.args[k]) == 0.0, axis=-1))) for k in ("input1", "input2"))


_COSINE_ZERO = (
    "the default epsilon = 0.0 ('minimum norm for terms in the denominator') leaves the norms unclamped: a zero "
    "vector gives 0 / 0 = NaN, silently, where torch's cosine_similarity clamps each norm at eps = 1e-8 and gives 0 "
    "(pass epsilon > 0 to keep the loss finite)"
)


def _cosine_at_zero() -> Finding:
    return Finding(
        "finite",
        _COSINE_ZERO,
        UPSTREAM,
        dtypes=("float64",),
        witness=Example({"input1": np.array([[0.0, 0.0]]), "input2": np.array([[1.0, 0.5]])}, {}),
        domain=_zero_vector,
        where="a row of input1 or input2 exactly 0",
    )


def _small_nonzero_norm(example: Example, dtype: str) -> bool:
    """float16, and some non-zero row of input1 or input2 whose norm is at most 2^-8 (its square at most 2^-16,
    within 1%: the dtype's rounding of the sum and the root), where the norm^-2 of JAX's division rule exceeds
    float16's largest number."""
    if dtype != "float16":
        return False
    for name in ("input1", "input2"):
        rows = np.asarray(example.args[name], dtype=np.float64)
        squares = np.sum(rows * rows, axis=-1)
        if np.any(np.any(rows != 0.0, axis=-1) & (squares <= 1.01 * 2.0**-16)):
            return True
    return False


_COSINE_SMALL = (
    "float16: the normalisation a / ||a|| (_regression.py:181-182) is differentiated by JAX's division rule as "
    "-g a ||a||^-2 (jax/_src/lax/lax.py:5098, integer_pow(y, -2)), and ||a||^-2 overflows float16 (65504) for any "
    "non-zero row of norm <= 2^-8 (2^16 = 65536), though a / ||a||^2 is only 2^8: the gradient is inf or NaN where "
    "the exact one is finite (0 for [[1]] against [[2^-8]], a 1-D cosine being constant)"
)


def _cosine_small_norm() -> Finding:
    return Finding(
        "finite",
        _COSINE_SMALL,
        UPSTREAM,
        dtypes=("float16",),
        witness=Example({"input1": np.array([[1.0]]), "input2": np.array([[2.0**-8]])}, {}),
        domain=_small_nonzero_norm,
        where="float16, some non-zero row of input1 or input2 of norm <= 2^-8 (within 1%)",
    )


def _weight_sum(example: Example) -> float:
    """The sum of the class weights 1 / (frequency^2 + 1e-7), the frequency being the target summed over every axis
    but the class axis (the catalog's axis 1, optax's last)."""
    target = np.asarray(example.args["target"], dtype=np.float64)
    frequencies = target if target.ndim == 1 else np.sum(target, axis=(0, *range(2, target.ndim)))
    return float(np.sum(1.0 / (frequencies**2 + 1e-7)))


def _weights_overflow(example: Example, dtype: str) -> bool:
    """float16, and the class weights summing to at least float16's largest number (within 1%): a class of frequency
    below about 3.9e-3 (an absent one) has a weight that overflows to inf, or the sum w / sum(w) divides by does."""
    return dtype == "float16" and _weight_sum(example) >= 0.99 * 65504.0


def _weights_out_of_range(example: Example, dtype: str) -> bool:
    """``_weights_overflow``, or (for the target's gradient) float16 and the weights summing to at most 2^-8 (within
    1%): JAX differentiates w / sum(w) with sum(w)^-2, which then exceeds float16's largest number."""
    return _weights_overflow(example, dtype) or (dtype == "float16" and _weight_sum(example) <= 1.01 * 2.0**-8)


_GENERALIZED_WEIGHTS = (
    "float16: _segmentation.py:244-245 weighs each class by 1 / (frequency^2 + 1e-7), and a class absent from the "
    "targets gets 1e7, which overflows float16 (65504) to inf; the normalisation at line 248, w / sum(w) * C, is "
    "inf / inf: the loss is NaN eagerly (0 under jax.jit, which keeps the weight in float32 inside the fusion: "
    "finite / inf) and its gradient NaN, where the exact loss is 0.2 at one pixel (input 0, target 0){more}"
)
_FREQUENT = (
    ". At the other end, weights summing to at most 2^-8 (every class more frequent than about 16) make JAX's "
    "division rule for w / sum(w) form sum(w)^-2 (jax/_src/lax/lax.py:5098), which overflows: d loss / d target is "
    "NaN (25 target pixels of one class: exact -0.008)"
)


def _generalized_weights(prop: str) -> Finding:
    gradient = prop == "finite"  # low_precision judges the value, which only the overflowing weights change
    return Finding(
        prop,
        _GENERALIZED_WEIGHTS.format(more=_FREQUENT if gradient else ""),
        UPSTREAM,
        dtypes=("float16",),
        witness=Example(float_arrays(input=[[0.0]], target=[[0.0]]), {}),
        domain=_weights_out_of_range if gradient else _weights_overflow,
        where="float16, the class weights 1 / (frequency^2 + 1e-7) summing to at least 65504 (within 1%: a class "
        "of frequency below about 3.9e-3)" + (" or, for the gradient, to at most 2^-8 (within 1%)" if gradient else ""),
    )


def _below_float64(example: Example, dtype: str) -> bool:
    return dtype != "float64"


_ONE_HOT_FLOAT64 = (
    "the labels are one-hot encoded by jax.nn.one_hot(labels, C) in JAX's default float dtype, which is float64 "
    "under jax_enable_x64 (the setting every float64 JAX program needs, and lossguard's): a float32, float16 or "
    "bfloat16 score is promoted to float64 by the one-hot labels, so the loss is {consequence}"
)
_LOWER = ("float32", "float16", "bfloat16")
_SCORES = Example({"input": np.zeros((1, 2)), "target": np.array([0])}, {})


def _one_hot_promoted(prop: str, consequence: str, raises: str | None = None) -> Finding:
    return Finding(
        prop,
        _ONE_HOT_FLOAT64.format(consequence=consequence),
        UPSTREAM,
        dtypes=_LOWER,
        witness=_SCORES,
        domain=None if raises else _below_float64,
        where="" if raises else "float32, float16 and bfloat16 scores",
        raises=raises,
    )


def _margin_rounds(example: Example, dtype: str) -> bool:
    """Some score s whose s + 1 the dtype does not represent (|s| >= 2^8 in bfloat16, 2^11 in float16)."""
    from lossguard.harness.kernel.frameworks.jax_binding import round_to

    scores = np.asarray(example.args["input"], dtype=np.float64)
    return dtype != "float64" and bool(np.any(round_to(scores + 1.0, dtype) != scores + 1.0))


_HINGE_NEGATIVE = (
    "max(scores + 1 - one_hot) - score_y forms scores + 1 in the scores' dtype before the float64 one-hot labels "
    "promote it: where s + 1 rounds (s = 256 in bfloat16: 257 -> 256) the margin of the true class is lost and "
    "the loss is negative (bfloat16 scores [256, 0], label 0: -1, exactly 0)"
)


def _hinge_margin_lost() -> Finding:
    return Finding(
        "low_precision",
        _HINGE_NEGATIVE,
        UPSTREAM,
        dtypes=("bfloat16",),  # the witness's dtype; in float16 the same happens from s = 2048
        witness=Example({"input": np.array([[256.0, 0.0]]), "target": np.array([0])}, {}),
        domain=_margin_rounds,
        where="some score s whose s + 1 rounds in the dtype",
    )


_SPARSEMAX_RAISES = r"TypeError: Custom JVP rule must produce primal and tangent outputs"
_SPARSEMAX_CONSEQUENCE = (
    "returned in float64, and cannot be differentiated: the custom JVP of its sparsemax returns tangents of the "
    "input dtype beside the float64 primal, so every gradient raises 'Custom JVP rule must produce primal and "
    "tangent outputs with corresponding shapes and dtypes'"
)

FINDINGS: dict[str, tuple[Finding, ...]] = {
    "optax.multiclass_hinge_loss": (_one_hot_promoted("dtype", "returned in float64"), _hinge_margin_lost()),
    "optax.multiclass_perceptron_loss": (_one_hot_promoted("dtype", "returned in float64"),),
    "optax.multiclass_sparsemax_loss": (
        _one_hot_promoted("dtype", _SPARSEMAX_CONSEQUENCE),
        *(
            _one_hot_promoted(prop, _SPARSEMAX_CONSEQUENCE, _SPARSEMAX_RAISES)
            for prop in ("finite", "state", "determinism")  # the properties that differentiate in float32 and below
        ),
    ),
    "optax.cosine_similarity": (_cosine_at_zero(),),
    "optax.cosine_distance": (_cosine_at_zero(), _cosine_small_norm()),
    "optax.multiclass_generalized_dice_loss": (_generalized_weights("finite"), _generalized_weights("low_precision")),
    "optax.softmax_cross_entropy_with_integer_labels": (
        _unchecked(
            "a class index equal to C (outside [0, C))",
            "a class index outside [0, C) is not rejected: jnp.take_along_axis fills an out-of-bounds index with "
            "NaN (a label C gives a NaN loss; -1 wraps around to class C - 1), so a bad label silently poisons the "
            "loss (its docstring only 'assumes' labels in [0, C))",
            Example({"input": np.zeros((1, 2)), "target": np.array([0])}, {}),
        ),
    ),
    **{
        label: (
            _unchecked(
                "target shape differs from input shape (broadcastable)",
                "a target of another shape is broadcast without a word (its docstring: both of shape [..., dim]): "
                "(N, C, 1) targets against (N, C) log-predictions give an N x C x C sum",
                Example(float_arrays(input=[[-0.5, -1.0]], target=[[0.6, 0.4]]), {}),
            ),
        )
        for label in ("optax.kl_divergence", "optax.kl_divergence_with_log_targets")
    },
    "optax.ntxent": (
        _unchecked(
            "temperature=0.0: temperature must be positive",
            "temperature = 0 is accepted: the similarities divided by 0 are +-inf (NaN for a zero similarity) and "
            "the loss is NaN",
            Example(float_arrays(z_i=[[1.0, 0.0]], z_j=[[0.5, 0.5]]), {"temperature": 0.5}),
        ),
    ),
    "optax.dice_loss": (
        _unchecked(
            "smooth=-1.0: smooth must be non-negative",
            "a negative smooth is accepted: the ratio (I + s) / (I + alpha (P - I) + beta (T - I) + s) then crosses "
            "0 / 0 and changes sign (at one pixel of p = 0.5 and target 0.5 with alpha = beta = 1/2 and smooth = "
            "-0.5, the loss is infinite)",
            Example(float_arrays(input=[[[0.5, -1.0]]], target=[[[1.0, 0.0]]]), {"smooth": 1.0}),
        ),
        Finding(
            "gradient",
            "float16: the ratio's gradient is NaN where its denominator d is below 2^-8: JAX differentiates n / d "
            "as -n d^-2, and d^-2 overflows float16 (65504) to inf, times the zero weight of a term (alpha = 0, or "
            "an empty mask) NaN, where the exact gradient is finite (0 at alpha = beta = 0, a loss identically 0)",
            UPSTREAM,
            dtypes=("float16",),
            witness=Example(
                float_arrays(input=[[0.0]], target=[[0.0]]), {"alpha": 0.0, "beta": 0.0, "smooth": 2.0**-8}
            ),
            domain=_small_tversky_denominator,
            where="some (sample, channel) with TP + alpha FP + beta FN + smooth below 2^-8 (within 1%)",
        ),
    ),
    "optax.binary_dice_loss": (
        _unchecked(
            "smooth=-1.0: smooth must be non-negative",
            "a negative smooth is accepted: the ratio (I + s) / ((P + T) / 2 + s) then crosses 0 / 0 and changes "
            "sign (at one pixel of p = 0.5 and target 0.5 with optax's smooth = -0.5, the catalog's -1, the loss is "
            "infinite)",
            Example(float_arrays(input=[[[0.5, -1.0]]], target=[[[1.0, 0.0]]]), {"smooth": 1.0}),
        ),
    ),
    "optax.dice_loss.multiclass": (
        _unchecked(
            "smooth=-1.0: smooth must be non-negative",
            "a negative smooth is accepted: the per-class ratio (I + s) / ((P + T) / 2 + s) then crosses 0 / 0 and "
            "changes sign",
            Example({"input": np.array([[0.5, -1.0]]), "target": np.array([0])}, {"smooth": 1.0}),
        ),
    ),
    "optax.hinge_loss": (
        _unchecked(
            "target shape differs from input shape (broadcastable)",
            "a target of another shape is broadcast without a word ((N,) outputs against (N, 1) targets give an "
            "N x N loss); unlike its regression and sigmoid losses, hinge_loss does not document broadcasting",
            Example(float_arrays(input=[0.5, -1.5], target=[1.0, -1.0]), {}),
        ),
    ),
    "optax.sigmoid_focal_loss": (
        _unchecked(
            "alpha=1.5: alpha must lie in [0, 1]",
            "alpha outside [0, 1] is accepted (its docstring: 'in range (0, 1)'): the negative class's weight "
            "1 - alpha turns negative, and so does the loss of a negative label",
            Example(float_arrays(input=[0.5, -1.5], target=[1.0, 0.0]), {"alpha": 0.25, "gamma": 2.0}),
        ),
        _unchecked(
            "gamma=-1.0: gamma must be non-negative",
            "a negative gamma is accepted: (1 - p_t)^gamma grows without bound as p_t -> 1, and the loss of a "
            "confident correct prediction tends to 1 instead of 0",
            Example(float_arrays(input=[0.5, -1.5], target=[1.0, 0.0]), {"alpha": 0.25, "gamma": 2.0}),
        ),
    ),
    "optax.huber_loss": (
        _unchecked(
            "delta=-1.0: delta must be positive",
            "a negative delta is accepted: min(|e|, delta) = delta, and the 'loss' 0.5 delta^2 + delta (|e| - delta) "
            "is negative and decreases as |e| grows",
            Example(float_arrays(input=[0.5, -1.5], target=[1.0, 2.0]), {"delta": 1.0}),
        ),
        Finding(
            "gradient",
            "the linear part is formed as |e| - min(|e|, delta) (to avoid 'doubling the gradient'), so for |e| < "
            "delta the gradient is delta + (min(|e|, delta) - delta) sign(e): delta - delta + e, which cancels "
            "catastrophically: its error is u delta, not u |e| (0 instead of e for |e| < u delta: 0 instead of "
            "-3.7e-275 in float64; 0 instead of 1e-4 in bfloat16, a relative error of 2e-4 at e = 1e-4 in "
            "float32). float16's allowance for underflow (8 times its smallest normal, 4.9e-4) exceeds the error's "
            "bound u delta / 2 = 2.4e-4 at delta = 1: not seen there",
            UPSTREAM,
            dtypes=("float64", "float32", "bfloat16"),
            witness=Example(float_arrays(input=[0.0], target=[1e-4]), {"delta": 1.0}),
            domain=_small_residual,
            where="some |input - target| < delta / 4",
        ),
    ),
    "optax.triplet_margin_loss": (
        _unchecked(
            "positive with one row against N >= 2 anchors (broadcastable)",
            "positives of another batch size are broadcast against the anchors without a word (its docstring: "
            "positives of shape [batch, feature_dim])",
            Example(float_arrays(anchor=[[0.0, 1.0]], positive=[[0.5, 1.0]], negative=[[2.0, -1.0]]), {"margin": 1.0}),
        ),
        _unchecked(
            "margin=0.0: margin must be positive",
            "margin = 0 is accepted (and any negative margin): the loss is then 0 for every triplet whose negative "
            "is merely as far as its positive",
            Example(float_arrays(anchor=[[0.0, 1.0]], positive=[[0.5, 1.0]], negative=[[2.0, -1.0]]), {"margin": 1.0}),
        ),
        *(
            Finding(prop, _SIGNED_POWER, UPSTREAM, witness=witness, domain=_signed_power, where=_SIGNED_WHERE)
            for prop, witness in (
                ("agreement", _TRIPLET_WITNESS),
                ("gradient", _TRIPLET_GRADIENT),
                ("stability", _TRIPLET_NAN),
                ("zero_at_perfect", _TRIPLET_WITNESS),
                ("margin_met", _TRIPLET_WITNESS),
            )
        ),
        Finding(
            "stability",
            "with eps = 0 a zero distance (an anchor equal to its positive or negative) has a NaN gradient: the "
            "root (s + eps)^(1/p) is differentiated as s^(1/p - 1) / p = inf at s = 0, times ds/dx = 0 (torch's "
            "norm takes the subgradient 0 there)",
            UPSTREAM,
            witness=Example(float_arrays(anchor=[[0.0]], positive=[[0.0]], negative=[[0.0]]), {"p": 2.0, "eps": 0.0}),
            domain=_zero_distance_without_eps,
            where="eps = 0, p > 1 and some anchor row at distance 0 (in the dtype) from its positive or negative",
        ),
    ),
}
