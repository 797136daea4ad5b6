"""The JAX binding: lossguard's properties judge a loss written in JAX exactly as they judge a torch one.

test_rounding_agrees_with_torch_bit_for_bit: the examples a JAX implementation sees are those a torch one sees.
test_a_correct_jax_huber_passes_the_properties: no false alarm on float64, float32, float16 and bfloat16.
test_a_value_a_few_ulps_off_fails_agreement, test_a_gradient_a_few_ulps_off_fails_gradient,
test_a_rounded_input_fails_gradient, test_an_integer_output_is_not_differentiable,
test_a_changed_setting_fails_the_property, test_a_non_array_output_is_an_error: slightly wrong JAX losses fail
the property that should catch them. test_every_watched_setting_is_restored_and_named,
test_a_mutated_buffer_is_caught, test_an_output_independent_of_the_leaves_is_not_differentiable,
test_the_implementation_sees_tracers_except_in_an_immutability_check, test_a_repeated_call_runs_the_compiled_program,
test_the_registry_knows_jax: the binding's contract, called directly.
test_lossguard_runs_without_importing_jax: JAX stays an optional dependency.
test_mse_value_and_gradients_by_hand: value, gradients and conversions on a fixed example, computed by hand.
test_the_compilation_cache_goes_where_the_environment_says: LOSSGUARD_JAX_CACHE, XDG_CACHE_HOME, 'off'.
"""

from __future__ import annotations

import functools
import subprocess
import sys

import numpy as np
import pytest
import torch

from lossguard.harness.app.runner import Selection, run
from lossguard.harness.kernel.frameworks import binding
from lossguard.harness.kernel.frameworks.base import (
    GlobalStateChanged,
    InputMutated,
    NotDifferentiable,
    WrongOutput,
)
from lossguard.harness.kernel.frameworks.torch_binding import round_to as torch_round_to
from lossguard.harness.kernel.model import Example, Implementation

jax = pytest.importorskip("jax", reason="jax not installed (optional extra)")

import jax.numpy as jnp  # noqa: E402

from lossguard.harness.kernel.frameworks.jax_binding import (  # noqa: E402
    WATCHED_SETTINGS,
    JaxBinding,
    compilation_cache_dir,
    round_to,
)

DTYPES = ("float64", "float32", "float16", "bfloat16")
ARGS = ("input", "target")


def select(*properties: str, dtypes: tuple[str, ...] = DTYPES) -> Selection:
    return Selection(dtypes=dtypes, devices=("cpu",), properties=properties, profile="ci")


# --- rounding -----------------------------------------------------------------------------------------------


def _ties(significand_bits: int, rng: np.random.Generator) -> np.ndarray:
    """Float64 values at, and a hair either side of, halfway between two neighbours of a format with that many
    significand bits, over exponents from its subnormals to beyond its range: where a double rounding (float64
    -> float32 -> the format) and a direct one can differ."""
    top = 2**significand_bits
    mantissa = rng.integers(top // 2, top, 200).astype(np.float64) + 0.5
    exponents = rng.integers(-150, 130, 200).astype(np.float64)
    hairs = np.array([0.0, 2.0**-40, -(2.0**-40), 2.0**-20, -(2.0**-20), 2.0**-14, -(2.0**-14)])
    return ((mantissa[:, None] + hairs) * 2.0 ** (exponents[:, None] - significand_bits)).ravel()


def _rounding_cases() -> np.ndarray:
    rng = np.random.default_rng(0)
    edges = [0.0, -0.0, np.inf, -np.inf, np.nan, 5e-324, np.finfo(np.float64).max, 1.0, -1.0]
    for dtype in (jnp.float32, jnp.float16, jnp.bfloat16):
        info = jnp.finfo(dtype)
        tiny = float(info.smallest_subnormal)
        for x in (float(info.max), tiny, float(info.smallest_normal)):
            edges += [x, -x, x * 0.5, x * 1.5, x * (1 + 2.0**-30), x * (1 - 2.0**-30)]
        edges += [float(info.max) + float(info.eps) * float(info.max) / 4]  # halfway to the first overflow
    return np.concatenate(
        [
            np.array(edges),
            rng.standard_normal(4000) * 2.0 ** rng.integers(-160, 140, 4000),  # subnormals to overflow
            rng.integers(0, 2**64, 4000, dtype=np.uint64).view(np.float64),  # any bit pattern
            _ties(11, rng),  # float16
            _ties(8, rng),  # bfloat16
        ]
    )


@pytest.mark.parametrize("dtype", DTYPES)
def test_rounding_agrees_with_torch_bit_for_bit(dtype):
    values = _rounding_cases()
    with np.errstate(over="ignore", invalid="ignore"):
        ours, theirs = round_to(values, dtype), torch_round_to(values, dtype)
    nan = np.isnan(theirs)
    assert np.array_equal(np.isnan(ours), nan)
    differ = ours[~nan].view(np.uint64) != theirs[~nan].view(np.uint64)
    values, ours, theirs = values[~nan][differ], ours[~nan][differ], theirs[~nan][differ]
    assert not np.any(differ), f"{values[:5]} rounded to {ours[:5]}, by torch to {theirs[:5]}"
    again = round_to(ours, dtype)  # values of the dtype: converted exactly
    assert np.array_equal(again, ours, equal_nan=True)


def test_the_ties_are_where_a_direct_rounding_would_differ():
    """The cases are not vacuous: JAX's own float64 -> float16 conversion differs from torch's on some of them."""
    values = _ties(11, np.random.default_rng(0))
    with np.errstate(over="ignore"):
        direct = np.asarray(jnp.asarray(values, dtype=jnp.float16)).astype(np.float64)
        assert np.any(direct != torch_round_to(values, "float16"))


# --- a JAX huber_loss -----------------------------------------------------------------------------------------


@jax.jit
def _terms(input, target, delta):
    """0.5 e^2 where |e| <= delta, else delta (|e| - 0.5 delta), as m (|e| - m / 2), m = min(|e|, delta): no
    square of a large residual, and the gradient e or delta sign(e) on either side of the kink."""
    a = jnp.abs(input - target)
    m = jnp.minimum(a, delta)
    return m * (a - 0.5 * m)


@functools.partial(jax.jit, static_argnames="reduction")
def _reduce(values, reduction):
    return {"none": values, "mean": jnp.mean(values), "sum": jnp.sum(values)}[reduction]


def huber_from(terms):
    """huber_loss's contract (validation, reductions) around the elementwise ``terms(input, target, delta)``."""

    def huber_loss(input, target, reduction="mean", delta=1.0):
        if input.shape != target.shape:
            raise ValueError(f"target shape {target.shape} differs from input shape {input.shape}")
        if not delta > 0:
            raise ValueError(f"delta must be positive, got {delta}")
        if reduction not in ("none", "mean", "sum"):
            raise ValueError(f"unknown reduction {reduction!r}")
        return _reduce(terms(input, target, delta), reduction)

    return huber_loss


def jax_impl(fn, loss="huber_loss", accepted=("reduction", "delta")) -> Implementation:
    return Implementation(
        name=f"tests.{getattr(fn, '__name__', 'jax_loss')}",
        loss=loss,
        kind="user",
        fn=fn,
        accepted=frozenset(accepted),
        framework="jax",
    )


HUBER = jax_impl(huber_from(_terms))


def _eps(x):
    return jnp.finfo(x.dtype).eps


# 16 eps = 32 units of roundoff of the value, 4 x the 8 huber_loss allows: a defect near the tolerance
@jax.jit
def _biased_terms(input, target, delta):
    return _terms(input, target, delta) * (1 + 16 * _eps(input))


@jax.custom_vjp
def _steep_terms(input, target, delta):
    return _terms(input, target, delta)


def _steep_forward(input, target, delta):
    return _terms(input, target, delta), (input, target, delta)


def _steep_backward(saved, cotangent):
    grad_input, grad_target, grad_delta = jax.vjp(_terms, *saved)[1](cotangent)
    steeper = 1 + 16 * _eps(grad_input)  # the gradient 32 units of roundoff too steep, the value right
    return grad_input * steeper, grad_target * steeper, grad_delta


_steep_terms.defvjp(_steep_forward, _steep_backward)


def test_a_correct_jax_huber_passes_the_properties():
    names = ("agreement", "gradient", "invalid_input")  # the others call the binding no other way, and are slow
    results = run([HUBER], select(*names))
    assert {(r.property, r.dtype) for r in results} >= {(p, d) for p in ("agreement", "gradient") for d in DTYPES}
    for r in results:
        assert r.status == "pass" and r.comparisons, f"{r.property} {r.dtype}: {r.status} {r.message}"


@pytest.mark.parametrize("dtype", ["float64", "float16", "bfloat16"])  # float32's search shrinks long: no more
def test_a_value_a_few_ulps_off_fails_agreement(dtype):
    (result,) = run([jax_impl(huber_from(_biased_terms))], select("agreement", dtypes=(dtype,)))
    assert (result.status, result.check) == ("fail", "value"), result.message
    assert "ulps of the computation's scale" in result.message and result.counterexample


def test_a_gradient_a_few_ulps_off_fails_gradient():
    steep = jax_impl(huber_from(jax.jit(_steep_terms)))
    (agreement, gradient) = run([steep], select("agreement", "gradient", dtypes=("float64",)))
    assert agreement.status == "pass", agreement.message  # the value is right
    assert (gradient.status, gradient.check) == ("fail", "first_argument"), gradient.message
    assert gradient.message.startswith("d loss / d input")


def test_a_rounded_input_fails_gradient():
    """jnp.round's gradient is 0: a loss of the input rounded (finely: the value nearly right) has none."""
    rounded = huber_from(lambda input, target, delta: _terms(jnp.round(input * 2.0**20) / 2.0**20, target, delta))
    (result,) = run([jax_impl(rounded)], select("gradient", dtypes=("float64",)))
    assert (result.status, result.check) == ("fail", "first_argument"), result.message


def test_an_integer_output_is_not_differentiable():
    integer = huber_from(lambda input, target, delta: jnp.round(_terms(input, target, delta)).astype(jnp.int64))
    (result,) = run([jax_impl(integer)], select("gradient", dtypes=("float64",)))
    assert result.status == "error", result.message
    assert "does not depend differentiably on input" in result.message


def test_a_changed_setting_fails_the_property():
    def huber_disabling_x64(input, target, reduction="mean", delta=1.0):
        jax.config.update("jax_enable_x64", False)
        return HUBER.fn(input, target, reduction, delta)

    (result,) = run([jax_impl(huber_disabling_x64)], select("agreement", dtypes=("float64",)))
    assert result.status == "fail", result.message
    assert "jax_enable_x64 (True -> False)" in result.message
    assert jax.config.jax_enable_x64  # restored


@pytest.mark.parametrize("output", [0.5, [0.5]], ids=["float", "list"])
def test_a_non_array_output_is_an_error(output):
    (result,) = run([jax_impl(lambda input, target: output, accepted=())], select("agreement", dtypes=("float64",)))
    assert result.status == "error"
    assert result.message == f"returned {type(output).__name__}, not a JAX array"


# --- the contract, called directly ------------------------------------------------------------------------------

EXAMPLE = Example({"input": np.array([1.0, 2.0, 4.0]), "target": np.array([0.5, 2.5, 1.0])}, {"reduction": "mean"})

# a value other than the default for every watched setting
CHANGES = {
    "jax_enable_x64": False,
    "jax_default_matmul_precision": "highest",
    "jax_numpy_rank_promotion": "raise",
    "jax_numpy_dtype_promotion": "strict",
    "jax_debug_nans": True,
    "jax_debug_infs": True,
    "jax_disable_jit": True,
}


def mse(input, target, reduction="mean"):
    squares = (input - target) ** 2
    return {"none": squares, "mean": jnp.mean(squares), "sum": jnp.sum(squares)}[reduction]


def _call(fn, example=EXAMPLE, dtype="float64", **options):
    return binding("jax").call(jax_impl(fn, "mse_loss", ("reduction",)), ARGS, example, dtype, **options)


def test_the_registry_knows_jax():
    assert isinstance(binding("jax"), JaxBinding)
    assert set(binding("jax").versions()) == {"jax", "jaxlib"}
    assert binding("jax").devices()["cpu"] is None
    with pytest.raises(ValueError, match="known: jax, torch"):
        binding("tensorflow")


def test_lossguard_runs_without_importing_jax():
    """JAX is optional: the application and the torch binding never import it."""
    code = (
        "import sys, lossguard.harness.app.cli, lossguard.harness.app.runner;"
        "from lossguard.harness.kernel.frameworks import binding; binding('torch');"
        "assert 'jax' not in sys.modules, 'jax was imported'"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-2000:]


def test_every_watched_setting_is_restored_and_named():
    assert set(CHANGES) == set(WATCHED_SETTINGS)
    for name, value in CHANGES.items():

        def changing(input, target, reduction="mean", name=name, value=value):
            jax.config.update(name, value)
            return input.sum()

        before = getattr(jax.config, name)
        with pytest.raises(GlobalStateChanged, match=name):
            _call(changing)
        assert getattr(jax.config, name) == before

    def seeding(input, target, reduction="mean"):
        np.random.seed(0)
        return input.sum()

    state = np.random.get_state()
    with pytest.raises(GlobalStateChanged, match="random-number-generator state"):
        _call(seeding)
    assert np.array_equal(np.random.get_state()[1], state[1])


def test_a_mutated_buffer_is_caught():
    """JAX arrays are immutable, but their buffer can be written through DLPack (torch on the CPU shares it)."""

    def mutating(input, target, reduction="mean"):
        torch.from_dlpack(target).mul_(2.0)
        return mse(input, target, reduction)

    with pytest.raises(InputMutated, match="target"):
        _call(mutating, watch_inputs=True, requires_grad=False)  # traced, the arguments have no buffer to export
    assert _call(mse, watch_inputs=True, requires_grad=False).dtype == "float64"
    assert EXAMPLE.args["target"].tolist() == [0.5, 2.5, 1.0]  # converted copies: the example is untouched


def test_an_output_independent_of_the_leaves_is_not_differentiable():
    with pytest.raises(NotDifferentiable, match="input"):
        _call(lambda input, target, reduction: jax.lax.stop_gradient(mse(input, target, reduction)), grad=("input",))
    with pytest.raises(WrongOutput, match="returned str"):
        _call(lambda input, target, reduction: "loss", grad=("input",))


def test_the_implementation_sees_tracers_except_in_an_immutability_check():
    """Every call is compiled whole (jax.jit): the implementation sees tracers whatever requires_grad says, as in a
    jitted training step; an immutability check (watch_inputs) without requires_grad runs eagerly, on concrete
    arrays (with it, the compiled call: differentiation would trace them eagerly too)."""
    traced = []

    def recording(input, target, reduction="mean"):
        traced.append(isinstance(input, jax.core.Tracer))
        return mse(input, target, reduction)

    for requires_grad in (True, False):
        _call(recording, requires_grad=requires_grad)
    _call(recording, grad=("input",), requires_grad=False)
    _call(recording, watch_inputs=True, requires_grad=False)
    _call(recording, watch_inputs=True, requires_grad=True)
    assert traced == [True, True, True, False, True]


def test_a_repeated_call_runs_the_compiled_program():
    """The program compiled for an implementation, its array names and constants, and the traced names is kept: a
    second call of the same shape does not trace the implementation again, one of a new shape does."""
    calls = []

    def counting(input, target, reduction="mean"):
        calls.append(input.shape)
        return mse(input, target, reduction)

    impl = jax_impl(counting, "mse_loss", ("reduction",))
    longer = Example({k: np.concatenate([v, v]) for k, v in EXAMPLE.args.items()}, EXAMPLE.params)
    for example in (EXAMPLE, EXAMPLE, longer, longer):
        binding("jax").call(impl, ARGS, example, "float64", grad=("input",))
    assert calls == [(3,), (6,)]


def test_mse_value_and_gradients_by_hand():
    outcome = _call(mse, grad=("input", "target"))
    # e = input - target = (0.5, -0.5, 3): mean e^2 = (0.25 + 0.25 + 9) / 3; d/d input = 2 e / 3 = -d/d target
    assert outcome.dtype == "float64"
    assert outcome.value.dtype == np.float64 and outcome.value.shape == ()
    assert outcome.value == pytest.approx(9.5 / 3, rel=1e-15)
    np.testing.assert_allclose(outcome.grads["input"], [1 / 3, -1 / 3, 2.0], rtol=1e-15)
    np.testing.assert_allclose(outcome.grads["target"], [-1 / 3, 1 / 3, -2.0], rtol=1e-15)
    half = _call(mse, dtype="bfloat16", grad=("input",))
    assert half.dtype == "bfloat16" and half.grads["input"].dtype == np.float64

    seen = {}

    def recording(input, target, reduction="mean", weight=None, labels=None, eps=None):
        # a Python float parameter is traced as a weakly typed scalar: it promotes as the Python float would
        seen.update(input=input.dtype, weight=weight.dtype, labels=labels.dtype, eps=(input * eps).dtype)
        seen.update(weak=eps.weak_type)
        return input.sum()

    example = EXAMPLE.replace(weight=np.ones(3), labels=np.array([0, 1, 1]), eps=1e-3)
    binding("jax").call(jax_impl(recording, "mse_loss"), ARGS, example, "float32")
    assert seen == {"input": jnp.float32, "weight": jnp.float32, "labels": jnp.int64, "eps": jnp.float32, "weak": True}


def test_the_compilation_cache_goes_where_the_environment_says(monkeypatch, tmp_path):
    monkeypatch.setenv("LOSSGUARD_JAX_CACHE", str(tmp_path / "mine"))
    assert compilation_cache_dir() == tmp_path / "mine"
    monkeypatch.setenv("LOSSGUARD_JAX_CACHE", "off")
    assert compilation_cache_dir() is None
    monkeypatch.delenv("LOSSGUARD_JAX_CACHE")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    assert compilation_cache_dir() == tmp_path / "lossguard" / "jax"
