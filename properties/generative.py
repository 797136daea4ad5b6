"""Family properties of the generative and multi-task losses (GAN, WGAN, VAE, perceptual, uncertainty weighting).

Each compares the implementation with an exact mathematical statement evaluated in float64 (another catalog
entry's reference, a closed form), under the tolerance policy: an error of ``K u`` times the error scales of
the evaluations involved.
"""

from __future__ import annotations

import numpy as np
from hypothesis import strategies as st

from lossguard.harness.kernel import tolerance
from lossguard.properties.base import FLOAT64_AND_FLOAT32, increase_numbers, register


def _representable(subject, values) -> np.ndarray:
    return tolerance.representable(values, subject.dtype)


@register(
    "gan_bce_composition",
    "GAN losses equal their compositions of the binary_cross_entropy_with_logits reference",
    dtypes=FLOAT64_AND_FLOAT32,
    needs=("relations.cross_entropy",),
)
def gan_bce_composition(subject, data) -> None:
    """Exact statement (Goodfellow et al. 2014, as minimisations): with B(z, y) the reference of the entry's
    ``relations.cross_entropy`` (binary_cross_entropy_with_logits) with ``reduction='mean'`` and constant labels,
    gan_discriminator_loss(r, f) = B(r, 1) + B(f, 0) and gan_generator_loss(f) = B(f, 1) (non-saturating:
    not -B(f, 0)). The tolerance is the sum of the compositions' error scales."""
    example = subject.draw(data, regime="any")
    bce = subject.catalog(subject.spec.relations.cross_entropy).reference
    discriminator = "real_logits" in subject.spec.args
    expected, scale = np.asarray(0.0), np.asarray(0.0)
    with np.errstate(all="ignore"):
        for name in subject.spec.args:
            z = np.asarray(example.args[name])
            y = np.full_like(z, 0.0 if discriminator and name == "fake_logits" else 1.0)
            expected = expected + bce(z, y, reduction="mean")
            scale = scale + bce.error_scale(z, y, reduction="mean")
    value = subject.value(example)
    composition = "BCE(real, 1) + BCE(fake, 0)" if discriminator else "BCE(fake, 1)"
    subject.expect_close(f"loss (vs {composition})", value, expected, scale, example, _representable(subject, expected))


@register(
    "wgan_antisymmetry",
    "WGAN losses are odd: swapping real and fake (negating the fakes) negates the loss, so it takes negative values",
    dtypes=FLOAT64_AND_FLOAT32,
    checks=("antisymmetry", "sign"),  # L(swapped) = -L; negative wherever the reference is
)
def wgan_antisymmetry(subject, data) -> None:
    """Exact statement (Arjovsky et al. 2017): the critic loss mean(f) - mean(r) satisfies L(real=f, fake=r) =
    -L(real=r, fake=f); the generator loss -mean(f) satisfies L(-f) = -L(f). An odd function is negative on one
    side of each pair: wherever the reference is negative beyond the tolerance, the implementation's loss must be
    negative too (no clamping at 0, no absolute value)."""
    example = subject.draw(data, regime="any")
    args = subject.spec.args
    if len(args) == 2:
        swapped = example.replace({args[0]: example.args[args[1]], args[1]: example.args[args[0]]})
    else:
        swapped = example.replace({args[0]: -np.asarray(example.args[args[0]])})
    value, mirrored = subject.value(example), subject.value(swapped)
    scale = subject.scale(example) + subject.scale(swapped)
    subject.expect_close(
        "loss with real and fake swapped (fakes negated)", mirrored, -value, scale, swapped, check="antisymmetry"
    )
    for actual, case in ((value, example), (mirrored, swapped)):
        exact = subject.reference(case)
        case_scale = subject.scale(case)
        allowed = subject.compare(actual, exact, case_scale).allowed
        if exact < -allowed and not actual < 0:
            subject.fail(
                f"loss = {float(actual)!r}, but should be negative (exact value {float(exact)!r})",
                case,
                "sign",
                # a sign compared with 0 is violated by any amount: weighed is the value against its exact one
                numbers=(float(actual), float(exact), float(case_scale)),
            )


@register(
    "vae_kl",
    "the VAE's KL term is >= 0, and exactly 0 at mu = 0, logvar = 0",
    dtypes=FLOAT64_AND_FLOAT32,
    checks=("kl_term", "zero_at_prior"),  # the KL term (and its sign, implied); exactly 0 at recon = x and the prior
)
def vae_kl(subject, data) -> None:
    """Exact statement: KL(N(mu, exp(logvar)) || N(0, 1)) = 0.5 sum(mu^2 + exp(logvar) - 1 - logvar) >= 0 with
    equality iff mu = 0 and logvar = 0 (exp(s) >= 1 + s, equal only at s = 0). The term is isolated as
    vae_loss(recon, x, mu, logvar) - vae_loss(recon, x, 0, 0) = beta KL, which must match the reference's
    difference (so it is > 0 wherever the exact KL exceeds the tolerance) and be >= 0; and with
    recon_loss='mse', recon = x, mu = logvar = 0 the loss must be exactly 0 (1 + 0 - 0 - exp(0) = 0 in every
    dtype)."""
    example = subject.draw(data, regime="any")
    zeros = np.zeros_like(np.asarray(example.args["mu"]))
    prior = example.replace({"mu": zeros, "logvar": zeros.copy()})
    kl = subject.value(example) - subject.value(prior)
    expected = subject.reference(example) - subject.reference(prior)
    scale = subject.scale(example) + subject.scale(prior)
    domain = _representable(subject, subject.reference(example))
    comparison = subject.expect_close("beta * KL term", kl, expected, scale, example, domain, check="kl_term")
    if domain and kl < -comparison.allowed:
        subject.fail(
            f"beta * KL term = {float(kl)!r}, but should be >= 0",
            example,
            check="kl_term",
            numbers=(float(kl), 0.0, float(scale)),  # the negative term, the bound 0, the scale compared with
        )
    if subject.accepts("recon_loss"):
        perfect = prior.replace({"recon": np.array(example.args["x"], copy=True)}, recon_loss="mse")
        value = subject.value(perfect)
        if value != 0.0:
            subject.fail(
                f"loss at recon = x (mse), mu = 0, logvar = 0 = {float(value)!r}, but should be exactly 0 "
                "[KL(N(0, 1) || N(0, 1)) = 0]",
                perfect,
                check="zero_at_prior",
                # exactness asked, but the departure is weighed as any other: against the scale of the terms
                # that cancel to 0 (1 - exp(0) per latent)
                numbers=(float(value), 0.0, float(subject.scale(perfect))),
            )


@register(
    "uncertainty_minimiser",
    "uncertainty weighting is minimised over s_i at log L_i: zero gradient, value sum(1 + log L_i), larger nearby",
    dtypes=FLOAT64_AND_FLOAT32,
    checks=("minimum", "gradient", "larger_nearby"),
)
def uncertainty_minimiser(subject, data) -> None:
    """Exact statement (Kendall et al. 2018): for L_i > 0, f(s) = sum_i exp(-s_i) L_i + s_i is strictly convex with
    its minimiser at s_i = log L_i, where d f / d s_i = 1 - exp(-s_i) L_i = 0 and f = sum_i (1 + log L_i); moving
    any s_i by h != 0 raises each moved term by exp(-h) - 1 + h > 0. Losses are raised to at least 1e-3; s is
    log L rounded to the dtype, so the gradient vanishes up to |s - log L| (added to its scale, in ulps)."""
    example = subject.draw(data, regime="typical")
    losses = np.maximum(np.asarray(example.args["losses"]), 1e-3)
    at = subject.rounded(example.replace({"losses": losses, "log_vars": np.log(losses)}))
    losses, s = np.asarray(at.args["losses"]), np.asarray(at.args["log_vars"])
    names = tuple(n for n in subject.differentiable(at) if n == "log_vars")
    outcome = subject.call(at, grad=names)
    with np.errstate(all="ignore"):
        grad_scale = subject.spec.reference.grad(**at.kwargs())["log_vars"].scale
    minimum = np.sum(1.0 + np.log(losses))
    subject.expect_close("loss at s = log L", outcome.value, minimum, subject.scale(at), at, check="minimum")
    if names:
        rounding = np.abs(s - np.log(losses)) / subject.u
        subject.expect_close(
            "d loss / d s at s = log L", outcome.grads["log_vars"], 0.0, grad_scale + rounding, at, check="gradient"
        )
    step = data.draw(st.floats(0.1, 2.0), label="step") * data.draw(st.sampled_from([1.0, -1.0]), label="sign")
    moved = np.array(data.draw(st.lists(st.booleans(), min_size=s.size, max_size=s.size), label="moved"))
    moved[data.draw(st.integers(0, s.size - 1), label="one moved")] = True
    nearby = subject.rounded(at.replace({"log_vars": s + step * moved}))
    value = subject.value(nearby)
    allowed = subject.compare(value, minimum, subject.scale(nearby) + subject.scale(at)).allowed
    if not value > outcome.value + allowed:
        subject.fail(
            f"loss at s = log L + {step:g} (some tasks) = {float(value)!r}, but should exceed the minimum "
            f"{float(outcome.value)!r} at s = log L",
            nearby,
            check="larger_nearby",
            numbers=increase_numbers(subject, at, nearby, value - outcome.value, True),
        )
