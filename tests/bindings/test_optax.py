"""optax's shipped bindings (implementations/bindings/optax.toml, optax.py; JAX on the CPU): the audit of its
losses, and each finding recorded against optax 0.2.8 confirmed outside lossguard.

The audit runs once per module (``lossguard audit --library optax`` restricted to ``SELECTION``: JAX compiles every
operation per shape, so a call costs some 50 ms where torch's costs microseconds, and the whole audit of every
dtype and property takes over an hour of one core). Its verdicts: every catalog-bound loss has results and
passes somewhere; nothing fails, errs or xpasses; the recorded findings reproduce (xfail). Each finding is then
confirmed independently: optax called directly, its value or gradient against a float64 NumPy or mpmath computation
of the definition, or its acceptance of an input the catalog's contract rejects. The reference variant
triplet_margin_loss eps_mode='root' (eps under the root, optax's) catches a JAX implementation 32 units of roundoff
off its judged scale, passes the right one, and is needed (the canonical eps placement fails optax's loss).
"""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np
import pytest
from mpmath import mp, mpf

pytest.importorskip("optax", reason="optax not installed (optional extra lossguard[audit])")

import jax
import jax.numpy as jnp
import optax.losses as L
from audit_checks import CI, binding, check_audit, judged

from lossguard.catalog import CATALOG
from lossguard.harness.app import jobs
from lossguard.harness.app.bindings import compile_binding, library
from lossguard.harness.app.runner import run
from lossguard.harness.kernel.binding import Binding
from lossguard.harness.kernel.frameworks import binding as framework_binding

framework_binding("jax")  # float64 arrays: lossguard's x64 setting, as the audit sets it

SHIPPED = library("optax")
CATALOG_BOUND = [b for b in SHIPPED.bindings if b.loss is not None and not b.skip]
# the value against the reference and the error cases, in float64: about two and a half minutes of one core (the
# whole audit of the catalog-bound losses, every property and dtype, over an hour: JAX compiles each operation for
# each new shape)
SELECTION = dataclasses.replace(CI, dtypes=("float64",), properties=("agreement", "invalid_input"))
# the triplet loss's agreement and invalid_input are recorded findings (its p-norm without |.|): a cell it passes
ALSO = {"optax.triplet_margin_loss": ("non_negative",)}


@pytest.fixture(scope="module")
def results():
    """The audit of optax's catalog-bound losses in ``SELECTION``, and the cells ``ALSO`` adds."""
    prepared = jobs.Prepared()
    jobs.add_library(prepared, "optax")
    catalog_bound = [impl for impl in prepared.impls if impl.loss in CATALOG]
    found = run(catalog_bound, SELECTION, catalog=prepared.catalog)
    for impl in catalog_bound:
        if impl.name in ALSO:
            found += run([impl], dataclasses.replace(SELECTION, properties=ALSO[impl.name]), catalog=prepared.catalog)
    return found


def test_the_audit_passes_or_reproduces_its_findings(results):
    check_audit(results, CATALOG_BOUND)
    xfails = {(r.implementation, r.property) for r in results if r.status == "xfail"}
    assert {
        ("optax.triplet_margin_loss", "agreement"),
        ("optax.softmax_cross_entropy_with_integer_labels", "invalid_input"),
        ("optax.hinge_loss", "invalid_input"),
        ("optax.ntxent", "invalid_input"),
    } <= xfails


def test_the_huber_gradient_finding_reproduces():
    """The one finding outside the audit's selection, judged in its cell: the search finds nothing outside it."""
    result = judged(binding(SHIPPED.bindings, "optax.huber_loss"), "gradient")
    assert result.status == "xfail", result.message


def test_every_export_is_bound_and_every_binding_compiles():
    """No export of optax.losses is left unbound; every binding compiles, those outside the catalog included (their
    reference-free audit is not run here); each skip says why."""
    assert jobs.unbound_exports(SHIPPED) == []
    for shipped in SHIPPED.bindings:
        if shipped.skip:
            assert len(shipped.skip) > 20, shipped.label
        else:
            assert shipped.framework == "jax", shipped.label
            compile_binding(shipped)


# --- the findings, confirmed independently ----------------------------------------------------------------------


def _f64(*values: Any) -> list[jax.Array]:
    return [jnp.asarray(v, dtype=jnp.float64) for v in values]


def test_cosine_of_a_zero_vector_is_nan_with_the_default_epsilon():
    """optax's cosine similarity and distance of [0, 0] and [1, 0.5] are NaN (epsilon = 0); with the norms
    clamped (NumPy float64: 0 / max(0 * |y|, 1e-8)) the similarity is 0."""
    zero, other = jnp.array([[0.0, 0.0]]), jnp.array([[1.0, 0.5]])
    assert bool(jnp.isnan(L.cosine_similarity(zero, other)).all())
    assert bool(jnp.isnan(L.cosine_distance(zero, other)).all())
    assert np.zeros(2) @ np.array([1.0, 0.5]) / max(0.0, 1e-8) == 0.0


def test_cosine_distance_float16_gradient_overflows_for_a_row_of_norm_2_to_the_minus_8():
    """[[1]] against [[2^-8]]: a 1-D cosine is the constant sign(a b) = 1, so the exact gradient is 0 (float64
    NumPy central differences); optax's is 0 in float32 and inf in float16 (||b||^-2 = 2^16 overflows). [[1, 0.5]]
    against [[2^-9, -2^-10]]: the exact gradient is finite, float16's NaN."""

    def cosine(a: np.ndarray, b: np.ndarray) -> float:
        return float(1 - a @ b / (np.linalg.norm(a) * np.linalg.norm(b)))

    grad = jax.grad(lambda a, b: L.cosine_distance(a, b).sum(), argnums=1)
    for a, b in (([1.0], [2.0**-8]), ([1.0, 0.5], [2.0**-9, -(2.0**-10)])):
        a, b = np.array(a), np.array(b)
        step = 2.0**-30
        exact = [(cosine(a, b + step * e) - cosine(a, b - step * e)) / (2 * step) for e in np.eye(len(b))]
        assert np.all(np.isfinite(exact))
        half = np.asarray(grad(jnp.asarray([a], jnp.float16), jnp.asarray([b], jnp.float16)), dtype=np.float64)
        assert not np.all(np.isfinite(half))
        single = np.asarray(grad(jnp.asarray([a], jnp.float32), jnp.asarray([b], jnp.float32)), dtype=np.float64)
        assert single[0] == pytest.approx(exact, rel=1e-4, abs=1e-6)


def test_generalized_dice_float16_weight_of_an_absent_class_overflows():
    """One pixel, logit 0, target 0, one class: the normalised weight w / sum(w) is 1 and the loss 1 - (p t + 1) /
    (p t + (p - p t) / 2 + (t - p t) / 2 + 1) = 0.2 at p = sigmoid(0) (NumPy float64); optax's float64 agrees, its
    float16 is 0 under jax.jit and NaN eagerly (1 / (0 + 1e-7) overflows float16), the target's gradient NaN."""
    p, t = 0.5, 0.0
    exact = 1 - (p * t + 1) / (p * t + (p - p * t) / 2 + (t - p * t) / 2 + 1)
    assert exact == pytest.approx(0.2, rel=1e-15)
    loss = L.multiclass_generalized_dice_loss
    assert float(loss(jnp.zeros((1, 1)), jnp.zeros((1, 1)))) == pytest.approx(exact, rel=1e-12)
    x = jnp.zeros((1, 1), jnp.float16)
    for call in (loss, jax.jit(loss)):
        assert float(call(x, x)) != pytest.approx(exact, rel=0.01)  # NaN or 0
    assert np.isnan(float(loss(x, x))) and float(jax.jit(loss)(x, x)) == 0.0
    assert np.isnan(float(jax.jit(jax.grad(loss, argnums=1))(x, x)[0, 0]))


def test_one_hot_labels_promote_the_multiclass_losses_to_float64():
    """Under jax_enable_x64 (the binding's setting), float32 scores give a float64 multiclass hinge and perceptron
    loss (jax.nn.one_hot's default dtype), and a float64 multiclass sparsemax loss, which raises under
    differentiation."""
    scores, labels = jnp.zeros((1, 2), jnp.float32), jnp.array([0])
    assert jax.config.jax_enable_x64
    assert L.multiclass_hinge_loss(scores, labels).dtype == jnp.float64
    assert L.multiclass_perceptron_loss(scores, labels).dtype == jnp.float64
    assert jax.nn.one_hot(labels, 2).dtype == jnp.float64
    assert L.multiclass_sparsemax_loss(scores, labels).dtype == jnp.float64
    with pytest.raises(TypeError, match="Custom JVP rule"):
        jax.grad(lambda s: L.multiclass_sparsemax_loss(s, labels).sum())(scores)


def test_multiclass_hinge_is_negative_where_the_margin_rounds():
    """bfloat16 scores [256, 0], label 0: max(256 + 1 - 1, 0 + 1) - 256 = 0 exactly (float64 NumPy); optax gives
    -1 (256 + 1 rounds to 256 in bfloat16)."""
    scores = np.array([[256.0, 0.0]])
    exact = np.max(scores + 1.0 - np.eye(2)[[0]], axis=-1) - scores[:, 0]
    assert exact[0] == 0.0
    assert float(L.multiclass_hinge_loss(jnp.asarray(scores, jnp.bfloat16), jnp.array([0]))[0]) == -1.0


def test_integer_labels_out_of_range_give_nan_not_an_error():
    """A label equal to C: no exception, a NaN loss (the in-range labels give logsumexp(z) - z_y, as NumPy)."""
    z = np.array([[0.5, -1.0], [2.0, 0.25]])
    loss = L.softmax_cross_entropy_with_integer_labels(jnp.asarray(z), jnp.array([2, 0]))
    assert np.isnan(loss[0])
    assert float(loss[1]) == pytest.approx(np.logaddexp(2.0, 0.25) - 2.0, rel=1e-15)


def test_kl_divergence_broadcasts_a_target_of_another_shape():
    """(1, 2) log-predictions against (1, 2, 1) targets: a (1, 2) sum over a broadcast (1, 2, 2), no exception; NumPy
    of the same broadcast gives it, the KL of the distribution (0.6, 0.4) with itself is 0."""
    log_q, t = np.log([[0.6, 0.4]]), np.array([[0.6, 0.4]])
    for kl, target in ((L.kl_divergence, t), (L.kl_divergence_with_log_targets, np.log(t))):
        value = np.asarray(kl(jnp.asarray(log_q), jnp.asarray(target[..., None])))
        assert value.shape == (1, 2)
        np.testing.assert_allclose(value, np.sum(t[..., None] * (np.log(t[..., None]) - log_q[:, None, :]), -1))
        assert float(kl(jnp.asarray(log_q), jnp.asarray(target)).sum()) == pytest.approx(0.0, abs=1e-15)


def test_ntxent_accepts_a_zero_temperature():
    loss = L.ntxent(jnp.asarray([[1.0, 0.0], [0.5, 0.5]]), jnp.array([0, 0]), temperature=0.0)
    assert np.isnan(float(loss))


@pytest.mark.parametrize("loss", ["dice_loss", "binary_dice_loss"])
def test_dice_accepts_a_negative_smooth(loss):
    """One pixel, p = sigmoid(0) = 0.5, target 0.5, optax's smooth -0.5 (the catalog's -1): the exact ratio is
    (0.25 - 0.5) / (0.25 + 0.125 + 0.125 - 0.5) = -0.25 / 0, the loss +inf, and no exception."""
    x, t = jnp.zeros((1, 1, 1)), jnp.full((1, 1, 1), 0.5)
    keywords = {"reduction": "none"} if loss == "dice_loss" else {}
    assert np.isposinf(np.asarray(getattr(L, loss)(x, t, smooth=-0.5, **keywords))).all()


def test_multiclass_dice_accepts_a_negative_smooth():
    """optax 0.2.8, dice_loss of logits [0.5, -1] (softmax p), one-hot class 0, no spatial axis, smooth -0.5 (the
    catalog's -1 halved, as the binding passes it), reduction='none': no exception, and per class NumPy's float64
    1 - (I + s) / (I + (P - I) / 2 + (T - I) / 2 + s): class 0 0.2231, class 1 -0.2231 (a loss below 0: its ratio
    (0 - 0.5) / (0.0912 - 0.5) crosses 0 / 0 and changes sign)."""
    x = jnp.asarray([[0.5, -1.0]], dtype=jnp.float64)
    value = np.asarray(L.dice_loss(x, jax.nn.one_hot(jnp.array([0]), 2, dtype=x.dtype), smooth=-0.5, reduction="none"))
    z = np.array([0.5, -1.0])
    p, t, s = np.exp(z - np.logaddexp.reduce(z)), np.array([1.0, 0.0]), -0.5
    exact = 1 - (p * t + s) / (p * t + (p - p * t) / 2 + (t - p * t) / 2 + s)
    np.testing.assert_allclose(value.ravel(), exact, rtol=1e-12)
    np.testing.assert_allclose(exact, [0.22313016, -0.22313016], rtol=1e-7)


def test_dice_float16_gradient_is_nan_below_a_denominator_of_2_to_the_minus_8():
    """alpha = beta = 0: the Tversky ratio (TP + s) / (TP + s) is 1, the loss identically 0 and so its gradient (as
    float32 computes it); in float16 with smooth = 2^-8 the gradient is NaN (d^-2 = 65536 overflows)."""

    def gradient(dtype: Any) -> np.ndarray:
        x, t = jnp.zeros((1, 1), dtype), jnp.zeros((1, 1), dtype)

        def loss(z: jax.Array) -> jax.Array:
            return L.dice_loss(z, t, alpha=0.0, beta=0.0, smooth=2.0**-8, reduction="none").sum()

        return np.asarray(jax.grad(loss)(x), dtype=np.float64)

    assert np.isnan(gradient(jnp.float16)).all()
    np.testing.assert_array_equal(gradient(jnp.float32), 0.0)
    assert float(jnp.finfo(jnp.float16).max) < 1.0 / (2.0**-8) ** 2  # d^-2 overflows


def test_hinge_broadcasts_a_target_of_another_shape():
    """(2,) outputs against (2, 1) targets: an undocumented 2 x 2 outer loss max(0, 1 - t_i x_j), no exception."""
    x, t = np.array([0.5, -1.5]), np.array([1.0, -1.0])
    loss = np.asarray(L.hinge_loss(jnp.asarray(x), jnp.asarray(t[:, None])))
    assert loss.shape == (2, 2)
    np.testing.assert_array_equal(loss, np.maximum(0.0, 1.0 - t[:, None] * x[None, :]))


def test_focal_accepts_alpha_and_gamma_outside_their_range():
    """alpha = 1.5: the loss of a negative label is negative; gamma = -1: a confident right prediction (z = 40,
    y = 1) costs about 1, not about 0. Both against mpmath's alpha_t (1 - p_t)^gamma BCE."""
    mp.dps = 50

    def exact(z: float, y: float, alpha: float, gamma: float) -> mpf:
        p = 1 / (1 + mp.exp(-mpf(z)))
        bce = -(y * mp.log(p) + (1 - y) * mp.log(1 - p))
        return (alpha * y + (1 - alpha) * (1 - y)) * (p * (1 - y) + (1 - p) * y) ** gamma * bce

    negative = float(L.sigmoid_focal_loss(*_f64([0.5], [0.0]), alpha=1.5, gamma=2.0)[0])
    assert negative < 0 and negative == pytest.approx(float(exact(0.5, 0.0, 1.5, 2.0)), rel=1e-13)
    sure = float(L.sigmoid_focal_loss(*_f64([40.0], [1.0]), gamma=-1.0)[0])
    assert sure == pytest.approx(float(exact(40.0, 1.0, 1.0, -1.0)), rel=1e-13)
    assert sure == pytest.approx(1.0, rel=1e-13)


def test_huber_accepts_a_negative_delta():
    """delta = -1, e = 3: 0.5 delta^2 + delta (|e| - delta) = 0.5 - 4 = -3.5, a negative loss, no exception."""
    loss = float(L.huber_loss(*_f64([3.0], [0.0]), delta=-1.0)[0])
    assert loss == 0.5 * (-1.0) ** 2 + (-1.0) * (3.0 - (-1.0)) == -3.5


def _huber_gradient(e: float, dtype: Any) -> float:
    grad = jax.grad(lambda p: L.huber_loss(p, jnp.zeros_like(p), delta=1.0).sum())(jnp.asarray([e], dtype=dtype))
    return float(grad[0])


def test_huber_gradient_cancels_below_delta():
    """For |e| < delta the exact gradient is e (d/de 0.5 e^2). optax's is delta + (e - delta): 0 at e = 1e-200 in
    float64 and at e = 1e-4 in bfloat16; at e = 1e-4 in float32 off by far more than 8 units of roundoff of e
    (its float64 evaluation, e rounded to float32, is the exact derivative of 0.5 e^2 for that e)."""
    assert _huber_gradient(1e-200, jnp.float64) == 0.0
    assert _huber_gradient(1e-4, jnp.bfloat16) == 0.0
    e32 = float(np.float32(1e-4))
    u32 = 2.0**-24
    error = abs(_huber_gradient(e32, jnp.float32) - e32)
    assert error > 8 * u32 * e32
    assert error <= u32 * 1.0  # the rounding of e - delta, u delta: the departure's own bound
    assert _huber_gradient(0.5, jnp.float64) == 0.5  # |e| near delta: exact enough


def test_triplet_accepts_a_broadcast_positive_and_a_zero_margin():
    a, p, n = _f64([[0.0, 1.0], [1.0, 0.0]], [[0.5, 1.0]], [[2.0, -1.0], [0.0, 3.0]])
    assert L.triplet_margin_loss(a, p, n).shape == (2,)
    assert L.triplet_margin_loss(a[:1], p, n[:1], margin=0.0).shape == (1,)


def _triplet_exact(a: list, p: list, n: list, margin: float, degree: float, eps: float) -> mpf:
    """max(d(a, p) - d(a, n) + margin, 0), d(x, y) = (sum_k |x_k - y_k|^p + eps)^(1/p) (eps under the root)."""
    mp.dps = 50

    def d(x: list, y: list) -> mpf:
        return (mp.fsum(abs(mpf(s) - mpf(t)) ** degree for s, t in zip(x, y, strict=True)) + mpf(eps)) ** (
            1 / mpf(degree)
        )

    return max(d(a, p) - d(a, n) + mpf(margin), mpf(0))


def test_triplet_p_norm_without_absolute_value():
    """p = 1, anchor 0, positive 0, negative 2: the exact loss is max(1e-6 - (2 + 1e-6) + 1, 0) = 0; optax's is 3
    (the negative's 'distance' -2 + 1e-6). p = 3 with a negative difference: NaN. p = 2: right."""
    a, p, n = _f64([[0.0]], [[0.0]], [[2.0]])
    assert _triplet_exact([0.0], [0.0], [2.0], 1.0, 1.0, 1e-6) == 0
    assert float(L.triplet_margin_loss(a, p, n, norm_degree=1.0)[0]) == pytest.approx(3.0, rel=1e-12)
    assert np.isnan(float(L.triplet_margin_loss(a, p, n, norm_degree=3.0)[0]))
    a, p, n = _f64([[0.0, 1.0]], [[3.0, -1.0]], [[-1.5, 0.5]])
    expected = float(_triplet_exact([0.0, 1.0], [3.0, -1.0], [-1.5, 0.5], 1.0, 2.0, 1e-6))
    assert float(L.triplet_margin_loss(a, p, n, norm_degree=2.0)[0]) == pytest.approx(expected, rel=1e-14)


def test_triplet_gradient_is_nan_at_a_zero_distance_without_eps():
    """eps = 0, anchor = positive = negative = 0 (D = 1): optax's gradient is NaN; the loss |a - p| - |a - n| + 1 is
    Lipschitz there (mpmath's one-sided difference quotients in the anchor are 0: both distances move alike), so a
    finite subgradient (0, torch's) exists."""
    a = jnp.zeros((1, 1))
    grad = jax.grad(lambda x: L.triplet_margin_loss(x, a, a, eps=0.0).sum())(a)
    assert np.isnan(np.asarray(grad)).all()
    for h in (mpf("1e-20"), mpf("-1e-20")):
        quotient = (_triplet_exact([float(h)], [0.0], [0.0], 1.0, 2.0, 0.0) - 1) / h
        assert quotient == 0


# --- the reference variant triplet_margin_loss eps_mode='root' ------------------------------------------------------


def _triplet_root(anchor, positive, negative, margin=1.0, p=2.0, eps=1e-6):
    """The triplet loss with eps under the root, (sum_k |x_k - y_k|^p + eps)^(1/p), written in JAX (with the absolute
    value optax omits)."""

    def distance(x, y):
        return (jnp.sum(jnp.abs(x - y) ** p, axis=-1) + eps) ** (1.0 / p)

    return jnp.maximum(distance(anchor, positive) - distance(anchor, negative) + margin, 0.0)


def _planted(ulps: float) -> Any:
    """_triplet_root plus ``ulps`` units of roundoff of the reference's error scale (variant eps_mode='root'): a
    defect near the tolerance. The scale is computed in float64 NumPy through a callback, outside the gradient."""
    reference = CATALOG["triplet_margin_loss"].reference

    def loss(anchor, positive, negative, margin=1.0, p=2.0, eps=1e-6):
        value = _triplet_root(anchor, positive, negative, margin, p, eps)

        def scale(a, pos, neg):
            kwargs = {"margin": margin, "p": p, "eps": eps, "reduction": "none", "eps_mode": "root"}
            return np.asarray(reference.error_scale(a, pos, neg, **kwargs), dtype=value.dtype)

        frozen = [jax.lax.stop_gradient(x) for x in (anchor, positive, negative)]
        s = jax.pure_callback(scale, jax.ShapeDtypeStruct(value.shape, value.dtype), *frozen)
        return value + ulps * (jnp.finfo(value.dtype).eps / 2) * s

    return loss


def _root_binding(name: str, loss: Any = None) -> Binding:
    """_triplet_root (or ``loss``, called in its place) bound as optax's triplet loss is: eps_mode='root'."""
    return Binding(
        target="test_optax:_triplet_root",
        name=f"tests.{name}",
        loss="triplet_margin_loss",
        framework="jax",
        params={"margin": "margin", "p": "p", "eps": "eps"},
        fixed={"reduction": "none"},
        variant={"eps_mode": "root"},
        call=None if loss is None else lambda fn, args, keywords: loss(*args.values(), **keywords),
    )


@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_the_root_variant_catches_a_planted_bias_and_passes_the_right_loss(dtype):
    right = judged(_root_binding("triplet_root"), "agreement", dtype)
    assert right.status == "pass", right.message
    wrong = judged(_root_binding("triplet_root_biased", _planted(32.0)), "agreement", dtype)
    assert (wrong.status, wrong.check) == ("fail", "value"), wrong.message


def test_the_root_variant_is_what_optax_follows():
    """Judged with the canonical eps placement (eps added to each difference), optax's triplet loss fails agreement
    on p = 2 triplets, where its absolute value is not missing: the variant is needed, not a loosening."""
    shipped = binding(SHIPPED.bindings, "optax.triplet_margin_loss")
    params = {"margin": "margin", "eps": "eps"}  # p stays 2 (optax's default): no sign to lose
    canonical = dataclasses.replace(shipped, name="tests.optax_triplet", variant={}, params=params, findings=())
    result = judged(canonical, "agreement")
    assert (result.status, result.check) == ("fail", "value"), result.message
