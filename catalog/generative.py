"""Catalog entries of the generative and multi-task losses (GAN, WGAN, VAE, perceptual, uncertainty weighting).

The example builders reach the family's hard cases: logits of +-1e4 (and beyond, capped for half
precision), batches of one, mu = 0 and logvar = 0 exactly (a KL term of exactly 0), |logvar| up to 80
in float64 and 20 in float32, reconstruction probabilities of exactly 0 and 1 (BCE's -100 clamp),
saturated extractor features and targets equal to inputs, log variances from -10 to 10 against losses
of exactly 0. None of these losses takes a reduction, so the ``reduction`` and ``batch`` properties do
not apply to any of them.
"""

from __future__ import annotations

import numpy as np
from hypothesis import strategies as st

from lossguard.catalog.common import family_entry, optional_array, param_case, positive, tags, without
from lossguard.harness.kernel import strategies as S
from lossguard.harness.kernel.model import ErrorCase, Example, LossSpec, Relations
from lossguard.reference import generative as R

_SCALAR = ("batch", "reduction")
_NO_REDUCTION = "no `batch` and `reduction` properties: the loss has no reduction parameter (one scalar)"
# |logvar| caps per dtype (typical, extreme): exp(logvar) stays representable, 80 in float64 and 20 in float32
_LOGVAR_CAP = {"float16": (3.0, 8.0), "bfloat16": (5.0, 20.0), "float32": (5.0, 20.0), "float64": (5.0, 80.0)}
_MU_CAP = {"float16": (3.0, 20.0), "bfloat16": (10.0, 1e3), "float32": (10.0, 1e6), "float64": (10.0, 1e100)}
_FEATURE_INPUT_CAP = {"float16": (3.0, 1e3), "bfloat16": (3.0, 1e4), "float32": (3.0, 1e4), "float64": (3.0, 1e4)}
# (losses bound, |log_vars| bound) per dtype: exp(10) L stays below float16's 65504 at L <= 2, |s| <= 6
_UNCERTAINTY_CAP = {"float16": (2.0, 6.0), "bfloat16": (1e3, 10.0), "float32": (1e3, 10.0), "float64": (1e3, 10.0)}


def _batch(draw, label: str, high: int = 6) -> int:
    return draw(st.one_of(st.just(1), st.integers(1, high)), label=label)


def _column(draw, n: int) -> tuple[int, ...]:
    """(N,) or (N, 1): the shapes a discriminator's output takes."""
    return (n, 1) if draw(st.booleans(), label="(N, 1) scores") else (n,)


def _empty(name: str) -> ErrorCase:
    return ErrorCase(
        f"an empty {name} (the mean over no samples is undefined)",
        lambda ex: ex.replace({name: np.zeros((0,))}),
    )


# --- GAN and WGAN ----------------------------------------------------------------------------------


def _scores_examples(names: tuple[str, ...], values):
    """Builder of losses of independent batches of scores (one array per name, each of its own size)."""

    def build(draw, dtype, regime, choose) -> Example:
        return Example(
            {name: S.array(draw, _column(draw, _batch(draw, f"N {name}")), values(dtype, regime)) for name in names},
            choose({}),
        )

    return build


def _perfect_discriminator(example: Example, strength: float) -> Example:
    """Real logits raised, fake ones lowered by 10 strength: the loss decreases towards 0."""
    real, fake = np.asarray(example.args["real_logits"]), np.asarray(example.args["fake_logits"])
    return example.replace(
        {"real_logits": np.abs(real) + 10.0 * strength, "fake_logits": -np.abs(fake) - 10.0 * strength}
    )


def _perfect_generator(example: Example, strength: float) -> Example:
    return example.replace({"fake_logits": np.abs(np.asarray(example.args["fake_logits"])) + 10.0 * strength})


# --- VAE ---------------------------------------------------------------------------------------------


def _latent(dtype: str, regime: str, table) -> st.SearchStrategy[float]:
    bound = S.cap(table, dtype, regime)
    return S.mixed(bound, [0.0, 0.0, 1.0, -1.0, 1e-8, bound, -bound])


def _vae_examples(draw, dtype, regime, choose) -> Example:
    """recon and x (N, D) (probabilities for bce: exactly 0 and 1 in the extreme regime; reals for mse), mu and
    logvar (N, Z) with exact zeros (some rows entirely: a KL of exactly 0)."""
    n = _batch(draw, "N", 3)
    d, z = draw(st.integers(1, 4), label="D"), draw(st.integers(1, 3), label="Z")
    # beta is a weight: 0 or a normal number (a subnormal beta * 0.5 underflows in any evaluation order autograd takes)
    beta = st.one_of(st.just(0.0), positive(1e-3, 4.0, (1.0, 0.5)))
    params = choose({"beta": beta, "recon_loss": st.sampled_from(R.RECON_LOSSES)})
    if params["recon_loss"] == "bce":
        recon = S.array(draw, (n, d), S.probabilities(regime))
        x = S.array(draw, (n, d), st.one_of(st.sampled_from([0.0, 1.0]), S.probabilities(regime)))
    else:
        reals = _latent(dtype, "typical", _MU_CAP)
        recon, x = S.array(draw, (n, d), reals), S.array(draw, (n, d), reals)
    mu = S.array(draw, (n, z), _latent(dtype, regime, _MU_CAP))
    logvar = S.array(draw, (n, z), _latent(dtype, regime, _LOGVAR_CAP))
    prior = np.array(draw(st.lists(st.booleans(), min_size=n, max_size=n), label="rows at the prior"))
    mu, logvar = np.where(prior[:, None], 0.0, mu), np.where(prior[:, None], 0.0, logvar)
    return Example({"recon": recon, "x": x, "mu": mu, "logvar": logvar}, params)


def _perfect_vae(example: Example, strength: float) -> Example:
    """mu = logvar = 0 and recon = x (hard x for bce: -x log x - (1 - x) log(1 - x) = 0 only at 0 and 1)."""
    x = np.asarray(example.args["x"])
    if example.params["recon_loss"] == "bce":
        x = np.round(x)
    zeros = np.zeros_like(np.asarray(example.args["mu"]))
    return example.replace({"recon": x.copy(), "x": x, "mu": zeros, "logvar": zeros.copy()})


# --- perceptual --------------------------------------------------------------------------------------


def _perceptual_examples(draw, dtype, regime, choose) -> Example:
    """A seeded TanhExtractor of 1..3 layers of 1..3 channels; inputs (N, C, *spatial) with spatial (), (2,) or
    (2, 2); the extreme regime saturates the tanh (inputs up to 1e4) and copies input rows into the target."""
    widths = tuple(draw(st.lists(st.integers(1, 3), min_size=2, max_size=4), label="widths"))
    extractor = R.TanhExtractor(draw(st.integers(0, 2**16), label="seed"), widths)
    layers = tuple(draw(st.lists(st.integers(0, extractor.depth - 1), min_size=1, max_size=3, unique=True)))
    params = choose({"layer_weights": optional_array((len(layers),), positive(0.1, 5.0, (1.0, 0.5)))})
    params["feature_extractor"], params["layers"] = extractor, layers
    shape = (_batch(draw, "N", 3), widths[0], *draw(st.sampled_from([(), (2,), (2, 2)]), label="spatial"))
    bound = S.cap(_FEATURE_INPUT_CAP, dtype, regime)
    values = S.mixed(bound, [0.0, 1.0, -1.0, 0.5, bound, -bound])
    x, t = S.array(draw, shape, values), S.array(draw, shape, values)
    if regime == "extreme":
        same = np.array(draw(st.lists(st.booleans(), min_size=shape[0], max_size=shape[0]), label="target = input"))
        t = np.where(same.reshape((-1,) + (1,) * (len(shape) - 1)), x, t)
    return Example({"input": x, "target": t}, params)


def _perceptual_params_case(description: str, **params) -> ErrorCase:
    return ErrorCase(description, lambda ex: ex.replace(**params))


def _wrong_weight_count(example: Example) -> Example:
    return example.replace(layer_weights=np.ones(len(example.params["layers"]) + 1))


# --- uncertainty weighting ------------------------------------------------------------------------------


def _uncertainty_examples(draw, dtype, regime, choose) -> Example:
    """losses >= 0 (exact zeros included) and log_vars in [-10, 10] (capped for float16), (T,) with T in 1..6."""
    t = _batch(draw, "T")
    l_cap, s_cap = _UNCERTAINTY_CAP[dtype]
    losses = S.array(draw, (t,), st.one_of(st.floats(0.0, l_cap), st.sampled_from([0.0, 1.0, 1e-3, l_cap])))
    specials = [0.0, 1.0, -1.0, s_cap, -s_cap] if regime == "typical" else [s_cap, -s_cap, 0.0]
    log_vars = S.array(draw, (t,), st.one_of(st.floats(-s_cap, s_cap), st.sampled_from(specials)))
    return Example({"losses": losses, "log_vars": log_vars}, choose({}))


_GAN_DEFINITIONS = {
    "gan_discriminator_loss": "BCE-with-logits(real, 1) + BCE-with-logits(fake, 0), each a mean",
    "gan_generator_loss": "non-saturating: BCE-with-logits(fake, 1), mean",
}
_WGAN_EXCEPTION = (
    "not non-negative (the WGAN losses are differences of mean critic scores: negative whenever the critic "
    "scores the real samples higher, or the fakes positively), no zero at a perfect prediction; " + _NO_REDUCTION
)

generative_entry = family_entry(family="generative")  # the family's defaults

GENERATIVE: tuple[LossSpec, ...] = (
    generative_entry(
        name="gan_discriminator_loss",
        relations=Relations(cross_entropy="binary_cross_entropy_with_logits"),
        definition=_GAN_DEFINITIONS["gan_discriminator_loss"],
        reference=R.gan_discriminator_loss,
        examples=_scores_examples(("real_logits", "fake_logits"), S.logits),
        properties=without(tags("non_negative", "zero_at_perfect", "gan_bce_composition"), *_SCALAR),
        differentiable=("real_logits", "fake_logits"),
        error_cases=(_empty("real_logits"), _empty("fake_logits")),
        perfect=_perfect_discriminator,
        perfect_is_limit=True,
        caveats=_NO_REDUCTION + "; zero at a perfect prediction is a limit (logits to +-infinity)",
    ),
    generative_entry(
        name="gan_generator_loss",
        relations=Relations(cross_entropy="binary_cross_entropy_with_logits"),
        definition=_GAN_DEFINITIONS["gan_generator_loss"],
        reference=R.gan_generator_loss,
        examples=_scores_examples(("fake_logits",), S.logits),
        properties=without(tags("non_negative", "zero_at_perfect", "gan_bce_composition"), *_SCALAR),
        differentiable=("fake_logits",),
        error_cases=(_empty("fake_logits"),),
        perfect=_perfect_generator,
        perfect_is_limit=True,
        caveats=_NO_REDUCTION + "; zero at a perfect prediction is a limit (fake logits to +infinity)",
    ),
    generative_entry(
        name="wgan_critic_loss",
        definition="mean(fake) - mean(real); may be negative",
        reference=R.wgan_critic_loss,
        examples=_scores_examples(("real_scores", "fake_scores"), S.reals),
        properties=without(tags("wgan_antisymmetry"), *_SCALAR),
        differentiable=("real_scores", "fake_scores"),
        error_cases=(_empty("real_scores"), _empty("fake_scores")),
        caveats=_WGAN_EXCEPTION,
    ),
    generative_entry(
        name="wgan_generator_loss",
        definition="-mean(fake)",
        reference=R.wgan_generator_loss,
        examples=_scores_examples(("fake_scores",), S.reals),
        properties=without(tags("wgan_antisymmetry"), *_SCALAR),
        differentiable=("fake_scores",),
        error_cases=(_empty("fake_scores"),),
        caveats=_WGAN_EXCEPTION,
    ),
    generative_entry(
        name="vae_loss",
        definition="sum-reduced reconstruction (BCE on probabilities, each log clamped at -100 as torch's "
        "binary_cross_entropy, or 'mse') + beta * KL(N(mu, exp(logvar)) || N(0, I)) = "
        "-0.5 sum(1 + logvar - mu^2 - exp(logvar))",
        reference=R.vae_loss,
        examples=_vae_examples,
        properties=without(tags("non_negative", "zero_at_perfect", "vae_kl"), *_SCALAR),
        differentiable=("recon", "x", "mu", "logvar"),
        error_cases=(
            ErrorCase(
                "x shaped (N, D, 1) against recon (N, D) (broadcastable)",
                lambda ex: ex.replace({"x": np.asarray(ex.args["x"])[..., None]}),
            ),
            ErrorCase(
                "logvar with one latent more than mu",
                lambda ex: ex.replace({"logvar": np.concatenate([ex.args["logvar"], ex.args["logvar"][:, :1]], 1)}),
            ),
            ErrorCase(
                "recon of 1.5 with recon_loss='bce' (not a probability)",
                lambda ex: ex.replace({"recon": np.full_like(ex.args["recon"], 1.5)}, recon_loss="bce"),
                needs=("recon_loss",),
            ),
            param_case("recon_loss", "l1", "recon_loss must be 'bce' or 'mse'"),
            param_case("beta", -1.0, "beta must be non-negative"),
        ),
        perfect=_perfect_vae,
        caveats=_NO_REDUCTION + "; zero at a perfect prediction needs hard x with BCE (its entropy otherwise)",
    ),
    generative_entry(
        name="perceptual_loss",
        definition="sum_l w_l mse_l / sum_l w_l over the chosen layers (equal weights by default), mse_l the "
        "mse_loss between the frozen extractor's features of input and target (Johnson et al. 2016); tests use "
        "a small seeded extractor built in the test (no downloaded weights); the reference receives the "
        "float64 features",
        reference=R.perceptual_loss,
        supplied={"feature_extractor": R.TanhExtractor(0, (2, 3)), "layers": (0,)},
        examples=_perceptual_examples,
        properties=without(tags("non_negative", "zero_at_perfect"), *_SCALAR),
        differentiable=("input", "target", "layer_weights"),
        error_cases=(
            ErrorCase(
                "target with one sample against N >= 2 (broadcastable)",
                lambda ex: ex.replace(
                    {"input": np.concatenate([ex.args["input"]] * 2), "target": np.asarray(ex.args["target"])[:1]}
                ),
            ),
            _perceptual_params_case("layers=(): no layer chosen", layers=(), layer_weights=None),
            _perceptual_params_case("layers=(99,): beyond the extractor's depth", layers=(99,), layer_weights=None),
            ErrorCase("one layer weight more than layers", _wrong_weight_count, needs=("layer_weights",)),
        ),
        perfect=lambda ex, s: ex.replace({"target": np.array(ex.args["input"], copy=True)}),
        caveats=_NO_REDUCTION,
    ),
    generative_entry(
        name="uncertainty_weighted_loss",
        definition="Kendall et al.: sum_i exp(-s_i) L_i + s_i, losses and log_vars `(T,)`",
        reference=R.uncertainty_weighted_loss,
        examples=_uncertainty_examples,
        properties=without(tags("uncertainty_minimiser"), *_SCALAR),
        differentiable=("losses", "log_vars"),
        error_cases=(
            ErrorCase(
                "log_vars with one task more than losses",
                lambda ex: ex.replace({"log_vars": np.append(ex.args["log_vars"], 0.0)}),
            ),
        ),
        caveats="not non-negative (its minimum over s_i is 1 + log L_i, negative for L_i < 1/e; s_i alone when "
        "L_i = 0), no zero at a perfect prediction; the T entries are tasks, not a batch: " + _NO_REDUCTION,
    ),
)
