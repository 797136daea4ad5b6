"""Catalog entries of the regression losses (input and target of the same shape)."""

from __future__ import annotations

import numpy as np
from hypothesis import strategies as st

from lossguard.catalog.common import (
    SHAPE_MISMATCH,
    elementwise,
    family_entry,
    param_case,
    perfect_regression,
    positive,
    residual_zero,
    sweep_residual,
    tags,
)
from lossguard.harness.kernel import strategies as S
from lossguard.harness.kernel.model import REAL, ErrorCase, Example, Relations, Rescaled
from lossguard.reference import regression as R

_VALUE_DOMAIN = ("non_negative", "zero_at_perfect")


def _non_negative_reals(dtype: str, regime: str) -> st.SearchStrategy[float]:
    return S.reals(dtype, regime).map(abs)


def _log_link(dtype: str, regime: str) -> st.SearchStrategy[float]:
    """Log-means: exp of them stays representable in the dtype in the typical regime."""
    bound = {"float16": 8.0, "bfloat16": 30.0, "float32": 30.0, "float64": 300.0}[dtype]
    return S.mixed(1e4 if regime == "extreme" else bound, [0.0, 1.0, -1.0, bound, -bound, 1e4, -1e4])


def _brier(q: np.ndarray, outcome: int) -> Example:
    """Brier score as mse_loss(q, onehot) x C (Brier 1950): strictly proper."""
    return Example({"input": q, "target": np.eye(q.size)[outcome]}, {"reduction": "sum"})


def _poisson_examples():
    build = elementwise(
        _log_link,
        _non_negative_reals,
        {"log_input": st.booleans(), "full": st.booleans(), "eps": st.sampled_from([1e-8, 1e-3])},
    )

    def examples(draw, dtype, regime, choose):
        example = build(draw, dtype, regime, choose)
        if not example.params["log_input"]:
            example = example.replace({"input": np.abs(example.args["input"])})
        return example

    return examples


def _gaussian_examples(draw, dtype, regime, choose) -> Example:
    """var shaped like input, like input without its last dim, or with size 1 there (torch's rules)."""
    base = elementwise(params={"full": st.booleans(), "eps": st.sampled_from([1e-6, 1e-2])})(
        draw, dtype, regime, choose
    )
    shape = np.shape(base.args["input"])
    var_shape = draw(st.sampled_from([shape, shape[:-1], (*shape[:-1], 1)]), label="var shape")
    low = 1e-8 if regime == "extreme" else 1e-2
    var = S.array(draw, var_shape, st.one_of(st.floats(low, 10.0), st.sampled_from([1.0, low])))
    return base.replace({"var": var})


def _gaussian_var_kinks(example: Example, eps: float) -> np.ndarray:
    """d/dvar is discontinuous where the eps clamp starts: var within rounding of eps."""
    x = np.asarray(example.args["input"])
    var = R.broadcast_var(x, example.args["var"])
    return np.broadcast_to(np.abs(var - example.params["eps"]) <= 4 * eps * example.params["eps"], x.shape)


_negative_var = ErrorCase(
    "var with a negative entry",
    lambda ex: ex.replace({"var": -np.abs(np.asarray(ex.args["var"])) - 1.0}),
)

# the family's defaults: an entry states only what differs (input and target of one shape, compared by residual)
regression_entry = family_entry(
    family="regression",
    examples=elementwise(),
    differentiable=("input", "target"),
    error_cases=(SHAPE_MISMATCH,),
    perfect=perfect_regression,
    sweep=sweep_residual,
)

REGRESSION = (
    regression_entry(
        name="mse_loss",
        outcome=REAL,
        definition="e^2, e = input - target",
        reference=R.mse_loss,
        properties=tags(*_VALUE_DOMAIN, "proper_scoring"),
        scoring=_brier,
    ),
    regression_entry(
        name="l1_loss",
        definition="|e|",
        reference=R.l1_loss,
        properties=tags(*_VALUE_DOMAIN),
        kinks=residual_zero,
    ),
    regression_entry(
        name="huber_loss",
        relations=Relations(rescaled=Rescaled("smooth_l1_loss", "delta", "beta", 1)),
        definition="0.5 e^2 if |e| <= delta else delta (|e| - 0.5 delta); delta > 0",
        reference=R.huber_loss,
        examples=elementwise(
            params={"delta": positive(1e-2, 10.0, (1.0, 0.1, 5.0))}, thresholds=lambda p: [p["delta"]]
        ),
        properties=tags(*_VALUE_DOMAIN, "huber_limits", "huber_smooth_l1"),
        error_cases=(SHAPE_MISMATCH, param_case("delta", -1.0, "delta must be positive")),
        caveats="C^1: the kinks of its second derivative at |e| = delta do not affect the gradient",
    ),
    regression_entry(
        name="smooth_l1_loss",
        relations=Relations(rescaled=Rescaled("huber_loss", "beta", "delta", -1)),
        definition="0.5 e^2 / beta if |e| < beta else |e| - 0.5 beta; beta = 0 is l1_loss",
        reference=R.smooth_l1_loss,
        examples=elementwise(
            params={"beta": st.one_of(st.floats(0.0, 10.0), st.sampled_from([0.0, 1.0, 0.1]))},
            thresholds=lambda p: [p["beta"]],
        ),
        properties=tags(*_VALUE_DOMAIN, "huber_smooth_l1"),
        error_cases=(SHAPE_MISMATCH, param_case("beta", -1.0, "beta must be non-negative")),
        kinks=lambda ex, eps: residual_zero(ex, eps) & (ex.params["beta"] == 0),
    ),
    regression_entry(
        name="log_cosh_loss",
        definition="log(cosh(e)), finite for every finite e",
        reference=R.log_cosh_loss,
        properties=tags(*_VALUE_DOMAIN),
    ),
    regression_entry(
        name="quantile_loss",
        definition="r = target - input: max(tau r, (tau - 1) r); 0 < tau < 1",
        reference=R.quantile_loss,
        examples=elementwise(params={"tau": st.one_of(st.floats(0.01, 0.99), st.sampled_from([0.5, 0.1, 0.9]))}),
        properties=tags(*_VALUE_DOMAIN, "quantile_median"),
        error_cases=(
            SHAPE_MISMATCH,
            param_case("tau", 1.5, "tau must lie in (0, 1)"),
            param_case("tau", 0.0, "tau must lie in (0, 1)"),
        ),
        kinks=residual_zero,
    ),
    regression_entry(
        name="poisson_nll_loss",
        definition="log_input: exp(input) - target input; else input - target log(input + eps); "
        "full adds target log target - target + 0.5 log(2 pi target) where target > 1",
        reference=R.poisson_nll_loss,
        examples=_poisson_examples(),
        properties=tags(non_negative={"full": True}),
        caveats="negative without `full` (exp(x) - y x < 0 for some x); exp link overflows at eta = 1e4",
        perfect=None,
    ),
    regression_entry(
        name="gaussian_nll_loss",
        definition="0.5 (log max(var, eps) + (input - target)^2 / max(var, eps)) [+ 0.5 log 2 pi if full]",
        reference=R.gaussian_nll_loss,
        examples=_gaussian_examples,
        properties=tags(),
        differentiable=("input", "target", "var"),
        error_cases=(SHAPE_MISMATCH, _negative_var),
        kinks=_gaussian_var_kinks,
        caveats="negative where var < 1; no perfect prediction (the minimum depends on var)",
        sweep=lambda s: sweep_residual(s).replace({"var": np.ones_like(s)}),
        perfect=None,
    ),
    regression_entry(
        name="tweedie_loss",
        definition="input = log-mean eta: -target exp((1-p) eta) / (1-p) + exp((2-p) eta) / (2-p); 1 < p < 2",
        reference=R.tweedie_loss,
        examples=elementwise(
            _log_link, _non_negative_reals, {"power": st.one_of(st.floats(1.01, 1.99), st.sampled_from([1.5, 1.1]))}
        ),
        properties=tags(),
        error_cases=(
            SHAPE_MISMATCH,
            param_case("power", 2.5, "power must lie in (1, 2)"),
            param_case("power", 1.0, "power must lie in (1, 2)"),
        ),
        caveats="may be negative (a deviance up to a target-only constant); exp link overflows at eta = 1e4",
        perfect=None,
    ),
    regression_entry(
        name="asymmetric_mse_loss",
        definition="over_penalty e^2 if e > 0 else e^2",
        reference=R.asymmetric_mse_loss,
        examples=elementwise(params={"over_penalty": st.one_of(st.floats(0.0, 10.0), st.sampled_from([2.0, 1.0]))}),
        properties=tags(*_VALUE_DOMAIN),
    ),
)
