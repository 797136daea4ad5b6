"""PyTorch's built-in losses bound to their canonical names, with the findings recorded against them.

Findings are data next to the binding (PyTorch OpInfo keeps its known failures the same way), typed
``Finding`` objects (property, reason, upstream, dtypes or None, witness, and the departure's domain:
``domain``/``where``, the error ``case`` of invalid_input), so a misspelt field fails at import. Each is a
departure of torch from the canonical contract that lossguard's properties detect; the property stays
strict, the result is ``xfail`` while the witness reproduces and the search finds nothing outside the
domain, ``fail`` when it does, and ``xpass`` (failing the run) once torch changes.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from lossguard.harness.kernel import tolerance
from lossguard.harness.kernel.model import Example, Finding
from lossguard.reference.regression import broadcast_var

UPSTREAM = f"torch {torch.__version__.split('+')[0]}"

BUILTINS = {
    "mse_loss": F.mse_loss,
    "l1_loss": F.l1_loss,
    "huber_loss": F.huber_loss,
    "smooth_l1_loss": F.smooth_l1_loss,
    "poisson_nll_loss": F.poisson_nll_loss,
    "gaussian_nll_loss": F.gaussian_nll_loss,
    "binary_cross_entropy": F.binary_cross_entropy,
    "binary_cross_entropy_with_logits": F.binary_cross_entropy_with_logits,
    "cross_entropy": F.cross_entropy,
    "nll_loss": F.nll_loss,
    "kl_div": F.kl_div,
    "multi_margin_loss": F.multi_margin_loss,
    "multilabel_soft_margin_loss": F.multilabel_soft_margin_loss,
    "triplet_margin_loss": F.triplet_margin_loss,
    "cosine_embedding_loss": F.cosine_embedding_loss,
    "margin_ranking_loss": F.margin_ranking_loss,
}


def chunked_linear_cross_entropy(hidden, weight, target, bias=None, ignore_index=-100, reduction="mean"):
    """torch's ``F.linear_cross_entropy`` (torch >= 2.14) on its chunked path (``options=LinearCrossEntropyOptions()``,
    the one that never materialises the logits), under the canonical names (torch's: linear_weight, linear_bias)."""
    return F.linear_cross_entropy(
        hidden,
        weight,
        target,
        linear_bias=bias,
        ignore_index=ignore_index,
        reduction=reduction,
        options=torch.nn.LinearCrossEntropyOptions(),
    )


if hasattr(F, "linear_cross_entropy"):
    BUILTINS["linear_cross_entropy"] = chunked_linear_cross_entropy


def _arrays(**lists: list) -> dict[str, np.ndarray]:
    return {name: np.asarray(values) for name, values in lists.items()}


_SHAPE_MISMATCH = "target shape differs from input shape (broadcastable)"  # the entries' error case (catalog)


def _broadcasts(**args: list) -> Finding:
    """The shape-mismatch finding; the witness is a valid example the property then reshapes."""
    return Finding(
        "invalid_input",
        "a target whose shape differs from the input's only triggers a UserWarning and is broadcast, "
        "so (N,) against (N, 1) silently computes an N x N loss instead of raising",
        UPSTREAM,
        witness=Example(_arrays(**(args or {"input": [0.5, 1.5], "target": [1.0, 2.0]})), {}),
        case=_SHAPE_MISMATCH,
    )


# --- the departures' domains: (example, dtype) -> whether the example lies where the departure shows --------


def _arg(example: Example, name: str) -> np.ndarray:
    return np.asarray(example.args[name], dtype=np.float64)


def _above_range(values: np.ndarray, dtype: str) -> np.ndarray:
    """At or above the dtype's largest number, within the few roundings that form them (8 u)."""
    return np.asarray(values) >= tolerance.largest(dtype) / (1.0 + 8.0 * tolerance.roundoff(dtype))


def _tiny(dtype: str) -> float:
    """The dtype's smallest normal number."""
    return tolerance.smallest_normal(dtype)


def _full_at_zero_target(example: Example, dtype: str) -> bool:
    return bool(example.params.get("full", False)) and bool(np.any(_arg(example, "target") == 0))


def _gaussian_parts(example: Example) -> tuple[np.ndarray, np.ndarray]:
    """(squared residual, var clamped to eps) element-wise, var broadcast as torch does."""
    x = _arg(example, "input")
    e2 = (x - _arg(example, "target")) ** 2
    var = np.maximum(broadcast_var(x, example.args["var"]), example.params.get("eps", 1e-6))
    return e2, var


def _gaussian_square_overflows(example: Example, dtype: str) -> bool:
    e2, var = _gaussian_parts(example)
    return bool(np.any(_above_range(e2, dtype) | _above_range(e2 / var, dtype)))


def _gaussian_var_clamped(example: Example, dtype: str) -> bool:
    x = _arg(example, "input")
    return bool(np.any(broadcast_var(x, example.args["var"]) < example.params.get("eps", 1e-6)))


def _gaussian_var_gradient_overflows(example: Example, dtype: str) -> bool:
    e2, var = _gaussian_parts(example)
    return bool(np.any(_above_range(e2 / var**2, dtype)))


def _bce_clamped(example: Example, dtype: str) -> bool:
    p = _arg(example, "input")
    return bool(np.any(p * (1.0 - p) <= 1e-12 * (1.0 + 2.0**-20)))


def _bce_at_certainty(example: Example, dtype: str) -> bool:
    p = _arg(example, "input")
    return bool(np.any((p == 0.0) | (p == 1.0)))


def _every_token_ignored_mean(example: Example, dtype: str) -> bool:
    target = np.asarray(example.args["target"])
    ignore = example.params.get("ignore_index", -100)
    return example.params.get("reduction", "mean") == "mean" and bool(np.all(target == ignore))


def _triplet_power_sums(example: Example) -> list[np.ndarray]:
    """sum_k |x_k - y_k + eps|^p of each pair pairwise_distance forms (the swap pair included)."""
    p, eps = float(example.params.get("p", 2.0)), float(example.params.get("eps", 1e-6))
    a, pos, neg = (_arg(example, k) for k in ("anchor", "positive", "negative"))
    pairs = [(a, pos), (a, neg), (pos, neg)]
    with np.errstate(all="ignore"):
        return [np.sum(np.abs(x - y + eps) ** p, axis=-1) for x, y in pairs]


def _triplet_power_sum_overflows(example: Example, dtype: str) -> bool:
    return any(bool(np.any(_above_range(s, dtype))) for s in _triplet_power_sums(example))


def _triplet_power_sum_underflows(example: Example, dtype: str) -> bool:
    return any(bool(np.any(s < _tiny(dtype))) for s in _triplet_power_sums(example))


_COSINE_EPS = 1e-12


def _cosine_squares(example: Example, eps: float = _COSINE_EPS) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per row: x1.x2, |x1|^2 + eps, |x2|^2 + eps."""
    x1, x2 = _arg(example, "input1"), _arg(example, "input2")
    with np.errstate(all="ignore"):
        return np.sum(x1 * x2, axis=-1), np.sum(x1 * x1, axis=-1) + eps, np.sum(x2 * x2, axis=-1) + eps


def _cosine_overflows(example: Example, dtype: str) -> bool:
    _, m1, m2 = _cosine_squares(example)
    with np.errstate(all="ignore"):
        return bool(np.any(_above_range(m1, dtype) | _above_range(m2, dtype) | _above_range(m1 * m2, dtype)))


def _cosine_product_underflows(example: Example, dtype: str) -> bool:
    """float16: eps = 1e-12 rounds to 0, so the product of the plain squared norms rounds to 0."""
    _, m1, m2 = _cosine_squares(example, eps=0.0)
    return bool(np.any(m1 * m2 < 2.0**-25))


def _cosine_below_normal(example: Example, dtype: str) -> bool:
    """A squared norm or their product (eps rounds to 0 in float16) below the dtype's smallest normal number."""
    _, m1, m2 = _cosine_squares(example, eps=0.0)
    tiny = _tiny(dtype)
    return bool(np.any((m1 < tiny) | (m2 < tiny) | (m1 * m2 < tiny)))


def _cosine_backward_subnormal(example: Example, dtype: str) -> bool:
    """An intermediate of the backward of x1.x2 / sqrt(m1 m2) (d = sqrt(m1 m2)), x1.x2 / d^2 or x1.x2 / (2 d^3),
    is nonzero and below the dtype's smallest normal number (4 times it: its rounding)."""
    dot, m1, m2 = _cosine_squares(example)
    with np.errstate(all="ignore"):
        log_d = 0.5 * (np.log(m1) + np.log(m2))
        log_dot = np.log(np.abs(dot))
    limit = np.log(4.0 * _tiny(dtype))
    small = (log_dot - 2.0 * log_d < limit) | (log_dot - np.log(2.0) - 3.0 * log_d < limit)
    return bool(np.any((dot != 0) & small))


_ZERO = {"input": [0.0], "target": [0.0]}

# loss -> findings (each a Finding: property, reason, dtypes (None: all), witness on which it fails)
FINDINGS: dict[str, list[Finding]] = {
    "mse_loss": [_broadcasts()],
    "l1_loss": [_broadcasts()],
    "huber_loss": [_broadcasts()],
    "smooth_l1_loss": [_broadcasts()],
    "poisson_nll_loss": [
        _broadcasts(),
        Finding(
            "gradient",
            "with full=True the Stirling term is computed for every target and masked afterwards "
            "(masked_fill(target <= 1, 0)), so its infinite derivative at target = 0 leaks into the target "
            "gradient as 0 * inf = NaN (the exact gradient at input = 0 is -input = 0)",
            UPSTREAM,
            witness=Example(_arrays(**_ZERO), {"log_input": True, "full": True}),
            domain=_full_at_zero_target,
            where="full=True and some target = 0",
        ),
        Finding(
            "stability",
            "NaN target gradient at target = 0 with full=True (see its gradient finding)",
            UPSTREAM,
            witness=Example(_arrays(**_ZERO), {"log_input": True, "full": True}),
            domain=_full_at_zero_target,
            where="full=True and some target = 0",
        ),
    ],
    "gaussian_nll_loss": [
        _broadcasts(input=[0.5, 1.5], target=[1.0, 2.0], var=[1.0, 1.0]),
        Finding(
            "agreement",
            "float16: (input - target)^2 / var is formed before halving and overflows to inf where "
            "the exact loss is representable",
            UPSTREAM,
            dtypes=("float16",),
            witness=Example(_arrays(input=[22.0], target=[-4.0], var=[0.01000213623046875]), {}),
            domain=_gaussian_square_overflows,
            where="some (input - target)^2 or (input - target)^2 / max(var, eps) at or above the dtype's largest "
            "number",
        ),
        Finding(
            "gradient",
            "float16: a var below eps is clamped to eps = 1e-6, a subnormal number in float16, and the "
            "gradient is NaN",
            UPSTREAM,
            dtypes=("float16",),
            witness=Example(_arrays(**_ZERO, var=[0.0]), {}),
            domain=_gaussian_var_clamped,
            where="some var below eps (the clamp acts)",
        ),
        Finding(
            "gradient",
            "float16: d/dvar forms e^2 / var^2 before halving, which overflows to -inf where the exact gradient "
            "0.5 / var - 0.5 e^2 / var^2 is representable (input 0, target 4, var 2^-6: e^2 / var^2 = 65536 > 65504, "
            "the exact gradient -32736; float32 gives it exactly). Found by the search outside the clamp finding",
            UPSTREAM,
            dtypes=("float16",),
            witness=Example(_arrays(input=[0.0], target=[4.0], var=[0.015625]), {}),
            domain=_gaussian_var_gradient_overflows,
            where="some (input - target)^2 / max(var, eps)^2 at or above the dtype's largest number",
        ),
        *(
            Finding(
                prop,
                "float32: d/dvar forms e^2 / var^2 before halving, which overflows to -inf where the "
                "exact gradient -0.5 e^2 / var^2 is within a factor 2 of float32's largest number",
                UPSTREAM,
                dtypes=("float32",),
                witness=Example(_arrays(input=[9.50989712523264e14], target=[9.77077276770304e14], var=[1e-8]), {}),
                domain=_gaussian_var_gradient_overflows,
                where="some (input - target)^2 / max(var, eps)^2 at or above the dtype's largest number",
            )
            for prop in ("gradient", "stability")
        ),
        Finding(
            "gradient",
            "bfloat16 (float32's range): d/dvar forms e^2 / var^2 before halving and overflows to -inf "
            "where the exact gradient is half of bfloat16's largest number",
            UPSTREAM,
            dtypes=("bfloat16",),
            witness=Example(_arrays(input=[0.0], target=[1.8416819765248e13], var=[1.0011717677116394e-08]), {}),
            domain=_gaussian_var_gradient_overflows,
            where="some (input - target)^2 / max(var, eps)^2 at or above the dtype's largest number",
        ),
    ],
    "binary_cross_entropy": [
        Finding(
            "gradient",
            "the backward computes w (p - y) / max(p (1 - p), 1e-12) instead of the derivative of the "
            "clamped loss: 0 instead of 1 / (1 - p) at p = 0, wrong by the clamp for p within 1e-12 of 0 or 1, "
            "and in float16 the 1e-12 underflows to give 0 / 0 = NaN",
            UPSTREAM,
            witness=Example(_arrays(**_ZERO), {}),
            domain=_bce_clamped,
            where="some p with p (1 - p) <= 1e-12 (p within about 1e-12 of 0 or 1, p in {0, 1} included)",
        ),
        Finding(
            "stability",
            "the target gradient log(1 - p) - log(p) is computed without the -100 clamp of the value: "
            "infinite at p = 0 or 1 where the loss's derivative is +-100",
            UPSTREAM,
            witness=Example(_arrays(**_ZERO), {}),
            domain=_bce_at_certainty,
            where="some p in {0, 1}",
        ),
    ],
    "kl_div": [_broadcasts(input=[[-0.5, -1.0]], target=[[0.6, 0.4]])],
    "linear_cross_entropy": [
        Finding(
            "ignored_tokens",
            "chunked path: with every token ignored, reduction='mean' divides by a zero count in the "
            "backward too, so the gradients of hidden and weight are NaN where cross_entropy and "
            "linear_cross_entropy(options=None) give exactly 0",
            UPSTREAM,
            witness=Example(_arrays(hidden=[[0.0]], weight=[[0.0]], target=[-100]), {}),
            domain=_every_token_ignored_mean,
            where="reduction='mean' and every target equal to ignore_index",
        ),
    ],
    "multi_margin_loss": [
        Finding(
            "invalid_input",
            "a negative margin is accepted and silently computes a loss",
            UPSTREAM,
            witness=Example(_arrays(input=[[0.0, 0.0]], target=[0]), {}),
            case="margin=-1.0: margin must be non-negative",
        ),
    ],
    "multilabel_soft_margin_loss": [_broadcasts(input=[[0.0, 1.0]], target=[[0.0, 1.0]])],
    "triplet_margin_loss": [
        Finding(
            "invalid_input",
            "a positive (or negative) with one row against N anchors is broadcast silently, not rejected",
            UPSTREAM,
            witness=Example(_arrays(anchor=[[0.0]], positive=[[0.0]], negative=[[0.0]]), {}),
            case="positive with one row against N >= 2 anchors (broadcastable)",
        ),
        *(
            Finding(
                prop,
                "float32, p = 3: pairwise_distance sums |x - y|^3 without scaling, which overflows to inf "
                "for differences above ~5e12 although the distance itself is far below float32's range",
                UPSTREAM,
                dtypes=("float32",),
                witness=Example(
                    _arrays(
                        anchor=[[0.0, 0.0]],
                        positive=[[5.541191483392e12, 5.541191483392e12]],
                        negative=[[0.0, 0.0]],
                    ),
                    {"p": 3.0},
                ),
                domain=_triplet_power_sum_overflows,
                where="some pair's sum of |x - y + eps|^p at or above the dtype's largest number",
            )
            for prop in ("agreement", "stability")
        ),
        Finding(
            "stability",
            "float64, p = 3: pairwise_distance's backward divides by the distance squared, formed from "
            "|x - y|^3, which underflows to 0 for differences below ~1e-103: the gradient is NaN where the exact "
            "one is -1 (in float32 the same happens below ~1e-13, beside the overflow above)",
            UPSTREAM,
            dtypes=("float64",),
            witness=Example(_arrays(anchor=[[0.0]], positive=[[1.0]], negative=[[1e-200]]), {"p": 3.0, "eps": 0.0}),
            domain=_triplet_power_sum_underflows,
            where="some pair's sum of |x - y + eps|^p below the dtype's smallest normal number",
        ),
    ],
    "cosine_embedding_loss": [
        Finding(
            "invalid_input",
            "input2 with one row against N rows of input1 is broadcast silently instead of raising",
            UPSTREAM,
            witness=Example(_arrays(input1=[[0.0]], input2=[[0.0]], target=[1.0]), {}),
            case="input2 with one row against N >= 2 rows (broadcastable)",
        ),
        *(
            Finding(
                "agreement",
                "the cosine divides by sqrt((|x1|^2 + eps) (|x2|^2 + eps)): the product of the squared norms "
                "overflows (norms above ~1e77 in float64, ~4e9 in float32) and the cosine becomes 0, so two equal "
                "embeddings get loss 1 instead of 0",
                UPSTREAM,
                dtypes=dtypes,
                witness=Example(_arrays(input1=[[norm]], input2=[[norm]], target=[1.0]), {}),
                domain=_cosine_overflows,
                where="some row whose |x1|^2 + eps, |x2|^2 + eps or their product is at or above the dtype's "
                "largest number",
            )
            for dtypes, norm in ((("float64",), 1e78), (("float32", "bfloat16"), 1e10))
        ),
        Finding(
            "agreement",
            "float16: the eps = 1e-12 added to the squared norms underflows to 0, so a zero embedding "
            "gives 0 / 0 = NaN instead of a cosine of 0",
            UPSTREAM,
            dtypes=("float16",),
            witness=Example(_arrays(input1=[[0.0]], input2=[[0.0]], target=[1.0]), {}),
            domain=_cosine_product_underflows,
            where="some row whose |x1|^2 |x2|^2 (eps = 0 in float16) rounds to 0 (below 2^-25)",
        ),
        Finding(
            "agreement",
            "float16: the product of the squared norms overflows for norms of 16 and above (|x1|^2 |x2|^2 > 65504) "
            "and the cosine becomes 0: two equal embeddings [16, 0] get loss 1 instead of 0 (float32 gives 0). "
            "Found by the search outside the eps-underflow finding (the mechanism of the float64/float32 finding)",
            UPSTREAM,
            dtypes=("float16",),
            witness=Example(_arrays(input1=[[16.0, 0.0]], input2=[[16.0, 0.0]], target=[1.0]), {}),
            domain=_cosine_overflows,
            where="some row whose |x1|^2, |x2|^2 or their product is at or above float16's largest number",
        ),
        Finding(
            "zero_at_perfect",
            "float16: squared norms are formed in float16 and overflow for components above 256, so two "
            "equal embeddings get NaN instead of 0",
            UPSTREAM,
            dtypes=("float16",),
            witness=Example(_arrays(input1=[[1000.0]], input2=[[1000.0]], target=[1.0]), {}),
            domain=_cosine_overflows,
            where="some row whose |x1|^2, |x2|^2 or their product is at or above float16's largest number",
        ),
        Finding(
            "non_negative",
            "float16: the product of the squared norms underflows to 0 for components below ~0.01, and "
            "the cosine of two equal embeddings becomes x.y / 0 = inf: the loss is -inf",
            UPSTREAM,
            dtypes=("float16",),
            witness=Example(_arrays(input1=[[0.0078125]], input2=[[0.0078125]], target=[1.0]), {}),
            domain=_cosine_below_normal,
            where="some row whose |x1|^2, |x2|^2 or their product is below float16's smallest normal number 2^-14",
        ),
        Finding(
            "gradient",
            "float16: squared norms below float16's normal range lose their precision, and their "
            "product underflows: the gradient is inf where the exact one is about -1e-12",
            UPSTREAM,
            dtypes=("float16",),
            witness=Example(_arrays(input1=[[1.0]], input2=[[0.001953125]], target=[1.0]), {}),
            domain=_cosine_below_normal,
            where="some row whose |x1|^2, |x2|^2 or their product is below float16's smallest normal number 2^-14",
        ),
        Finding(
            "gradient",
            "float32: the product of the squared norms overflows (norms above ~4e9 against ~1e10) and "
            "the gradient of the cosine becomes 0 where it is -5.9e-16",
            UPSTREAM,
            dtypes=("float32",),
            witness=Example(
                _arrays(input1=[[5.98862255357952e14, 5.98862255357952e14]], input2=[[21781.0, 0.0]], target=[1.0]),
                {},
            ),
            domain=_cosine_overflows,
            where="some row whose |x1|^2 + eps, |x2|^2 + eps or their product is at or above float32's largest number",
        ),
        Finding(
            "gradient",
            "float64: the backward through sqrt((|x1|^2 + eps) (|x2|^2 + eps)) loses about 30 ulps "
            "(relative 7e-15) on a gradient a direct evaluation gets to a few: 2.0755779413714226e-200 where "
            "the exact value is 2.0755779413714084e-200",
            UPSTREAM,
            dtypes=("float64",),
            witness=Example(_arrays(input1=[[6.94113476918575e99, 1.0]], input2=[[0.0, 102327.0]], target=[1.0]), {}),
            domain=_cosine_backward_subnormal,
            where="some row where x1.x2 / d^2 or x1.x2 / (2 d^3), d = sqrt((|x1|^2 + eps)(|x2|^2 + eps)), "
            "is nonzero and below float64's smallest normal number (a subnormal intermediate of the backward)",
        ),
    ],
    "margin_ranking_loss": [
        Finding(
            "invalid_input",
            "input2 with one element against N elements of input1 is broadcast silently instead of raising",
            UPSTREAM,
            witness=Example(_arrays(input1=[0.0], input2=[0.0], target=[1.0]), {}),
            case="input2 with one element against N >= 2 (broadcastable)",
        ),
    ],
}
