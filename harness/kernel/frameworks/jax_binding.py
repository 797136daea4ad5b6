"""The JAX binding: float64 NumPy in, the implementation called on JAX arrays, NumPy out.

The JAX counterpart of ``torch_binding`` under the contract of ``base``: properties judge a JAX loss exactly as
they judge a torch one. Gradients are those of the summed output, from ``jax.vjp`` with a cotangent of ones.

Float64 needs ``jax_enable_x64``: building the binding enables it. That is lossguard's setting, process-wide;
the global-state check of every call compares against the configuration after it.

Each call is compiled whole, value and gradient together, with ``jax.jit`` (``_compiled``): the way a JAX loss
runs in training, inside a jitted step, and what a judgement of it should see. Run eagerly, JAX compiles every
operation separately for each new input shape, forward and backward: a property's examples bring new shapes, and
an eager value-and-gradient of a Huber loss took 1.6 s per new shape where the jitted one takes 0.12 s (the whole
of optax's audit from about 50 minutes of CPU to a few). XLA may fuse the operations of a jitted program and round
differently from the op-by-op evaluation (bitwise different in float32 on about a third of the inputs tried), as
it does for the user's jitted step; every judgement keeps its error analysis. The implementation therefore always
sees tracers (JAX's counterpart of torch's requires_grad has no effect), except in an immutability check
(``watch_inputs``) without requires_grad, which runs eagerly on concrete arrays so that a write through an exported
buffer (DLPack) can happen and be seen. (With requires_grad the implementation would see differentiation tracers
even eagerly, which have no buffer to export: that call is compiled like any other, sparing the eager
differentiation's per-operation compiles, a third of an optax loss's audit.)

Building the binding also turns on JAX's persistent compilation cache, in ``compilation_cache_dir()``: lossguard's
runs are seeded, so a second run draws the same shapes and loads the executables instead. The cache holds the
executables XLA would compile again, keyed by the program, the compile options and the jax/jaxlib versions, so it
changes no result. JAX is an optional dependency: nothing but this module imports it, and
``frameworks.binding("jax")`` imports this module on first use.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import jaxlib
import numpy as np

from lossguard.harness.kernel.frameworks.base import (
    GlobalStateChanged,
    ImplementationRaised,
    InputMutated,
    NotDifferentiable,
    Outcome,
    WrongOutput,
)
from lossguard.harness.kernel.model import Example, Implementation
from lossguard.harness.kernel.watch import guarded

JAX_DTYPES = {"float64": jnp.float64, "float32": jnp.float32, "float16": jnp.float16, "bfloat16": jnp.bfloat16}

# the process-wide JAX configuration a judgement depends on, read as attributes of ``jax.config``
WATCHED_SETTINGS = (
    "jax_enable_x64",
    "jax_default_matmul_precision",
    "jax_numpy_rank_promotion",
    "jax_numpy_dtype_promotion",
    "jax_debug_nans",
    "jax_debug_infs",
    "jax_disable_jit",
)
NUMPY_RNG = "NumPy's global random-number-generator state"
CACHE_VARIABLE = "LOSSGUARD_JAX_CACHE"


def compilation_cache_dir() -> Path | None:
    """Where compiled XLA executables persist: ``$LOSSGUARD_JAX_CACHE`` ('off': nowhere), else
    ``$XDG_CACHE_HOME/lossguard/jax`` (``~/.cache/lossguard/jax``)."""
    chosen = os.environ.get(CACHE_VARIABLE)
    if chosen == "off":
        return None
    if chosen:
        return Path(chosen)
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "lossguard" / "jax"


def round_to(array: np.ndarray, dtype: str) -> np.ndarray:
    """The float64 values of ``array`` rounded to ``dtype`` (what the implementation will see), nearest-even.

    float16 and bfloat16 are reached through float32, as torch converts float64: bit for bit torch's rounding,
    so a JAX and a torch implementation are judged on the same examples. (JAX's own float64 -> float16
    conversion rounds once, and differs where float32's rounding lands on a float16 tie.) ``to_jax`` then
    converts these values exactly."""
    values = np.asarray(array, dtype=np.float64)
    with np.errstate(over="ignore", invalid="ignore"):  # beyond the range: infinity, as torch gives; NaN stays NaN
        narrowed = values if dtype == "float64" else values.astype(np.float32)
        return narrowed.astype(JAX_DTYPES[dtype]).astype(np.float64)


def to_jax(value: Any, dtype: str, device: str) -> Any:
    """A NumPy array as a JAX array on ``device`` (a copy: the implementation never shares the example's memory):
    floats in ``dtype``, booleans as booleans, integers as JAX's canonical integer (int64 with x64, else int32).
    Anything else (a Python float parameter, a string) unchanged.

    The conversion is NumPy's, on the host, and ``device_put`` moves the result: ``jnp.array(value, dtype)``
    would compile a conversion (and a copy) for every new shape, a third of the compilations of an audit."""
    if isinstance(value, np.generic):
        value = np.asarray(value)
    if not isinstance(value, np.ndarray):
        return value
    if np.issubdtype(value.dtype, np.floating):
        kind = JAX_DTYPES[dtype]
    elif value.dtype == np.bool_:
        kind = np.bool_
    else:
        kind = jax.dtypes.canonicalize_dtype(np.int64)
    return jax.device_put(value.astype(kind, copy=True), jax.devices(device)[0])


def _is_float_array(value: Any) -> bool:
    return isinstance(value, jax.Array) and jnp.issubdtype(value.dtype, jnp.floating)


def _global_state() -> dict[str, Any]:
    state = {name: getattr(jax.config, name) for name in WATCHED_SETTINGS}
    state[NUMPY_RNG] = np.random.get_state()
    return state


def _same_rng(a: tuple, b: tuple) -> bool:
    return all(np.array_equal(x, y) for x, y in zip(a, b, strict=True))


def _changed(before: dict[str, Any], after: dict[str, Any]) -> list[str]:
    changed = [
        f"{name} ({before[name]!r} -> {after[name]!r})"
        for name in WATCHED_SETTINGS if before[name] != after[name]
    ]
    if not _same_rng(before[NUMPY_RNG], after[NUMPY_RNG]):
        changed.append(NUMPY_RNG)
    return changed


def _restore(state: dict[str, Any]) -> None:
    for name in WATCHED_SETTINGS:
        if getattr(jax.config, name) != state[name]:
            jax.config.update(name, state[name])
    np.random.set_state(state[NUMPY_RNG])


class _NotAnArray(Exception):
    """Carries a non-array output out of ``jax.vjp``'s trace, which would convert a float or reject a string."""

    def __init__(self, output: Any):
        super().__init__(type(output).__name__)
        self.output = output


# the compiled programs by key (``_compiled``). Each holds executables, one per input shape, and every executable
# XLA's CPU backend loads keeps memory mappings of its own (a dozen), which JAX's caches keep alive: an audit of
# optax loads thousands, and past the kernel's limit on mappings (vm.max_map_count, 65530) LLVM's next compilation
# fails ("Cannot allocate memory") and kills the process. So after EXECUTABLES_KEPT distinct (program, shapes) the
# programs and JAX's in-memory caches are dropped together (``_flush``); a later call compiles again, or loads
# from the persistent cache.
_COMPILED: dict[tuple, tuple[Implementation, Callable[[dict[str, jax.Array]], Any]]] = {}
_EXECUTABLES: set[tuple] = set()
EXECUTABLES_KEPT = 512
# LLVM's optimisation level 0 for lossguard's programs: their arrays hold a few dozen elements, so what LLVM's passes
# buy at run time is nothing beside the third of each compile they cost (0.39 s -> 0.26 s for a focal loss's value
# and gradient); they never change a floating-point result (no fast-math at any level), and XLA's own passes on
# the program (fusion, algebraic simplification), which can, run as in the user's jitted step. The CPU backend's
# older loop emitters instead of its MLIR fusion emitters: the same fused HLO, the same elementwise functions
# (XLA's own polynomial approximations), emitted as LLVM loops without the MLIR pipeline, which was most of what
# remained of a compile (0.19 s -> 0.07 s per program of the same focal loss, median of 40 shapes)
COMPILER_OPTIONS = {"xla_backend_optimization_level": 0, "xla_cpu_use_fusion_emitters": False}


def _compiled(
    impl: Implementation,
    apply: Callable[[Mapping[str, Any]], Any],
    inputs: Mapping[str, Any],
    traced: tuple[str, ...],
    given: tuple[str, ...],
) -> Callable[[dict[str, Any]], Any]:
    """``apply`` compiled with ``jax.jit`` over the inputs named in ``given`` (arrays, and Python floats, which
    JAX traces as weakly typed scalars: the promotion of a Python scalar, whatever its value): (output, gradients of
    its sum with respect to ``traced`` by name, or None where nothing is traced, the output is not a float array or
    does not depend on what is traced). The other inputs (strings, integers, booleans, None) are constants of the
    program, part of the key under which it is kept (with the implementation, ``given`` and ``traced``), so that a
    repeated call reuses it and a new shape recompiles it alone. ``apply`` reads the given inputs from the mapping
    it receives, and the rest from ``inputs``."""
    constants = tuple(sorted((k, type(v).__name__, repr(v)) for k, v in inputs.items() if k not in given))
    key = (id(impl), given, constants, traced)
    _flush_past_the_limit(key, {k: inputs[k] for k in given})
    if key in _COMPILED:
        return _COMPILED[key][1]

    def value_and_gradients(values: dict[str, Any]) -> tuple[Any, Any]:
        if not traced:
            out = apply(values)
            if not isinstance(out, jax.Array):
                raise _NotAnArray(out)  # jit would turn a float into an array, and reject a string
            return out, None
        others = {k: v for k, v in values.items() if k not in traced}
        seen = {}

        def differentiated(leaves: dict[str, jax.Array]) -> jax.Array:
            out = apply({**others, **leaves})
            if not isinstance(out, jax.Array):
                raise _NotAnArray(out)
            # an output computed from the leaves is a tracer of the differentiation, as the leaves are
            seen["depends"] = type(out) is type(next(iter(leaves.values())))
            return out

        out, backward = jax.vjp(differentiated, {k: values[k] for k in traced})
        if not seen["depends"] or not jnp.issubdtype(out.dtype, jnp.floating):
            return out, None
        (grads,) = backward(jnp.ones(out.shape, out.dtype))
        return out, grads

    program = jax.jit(value_and_gradients, compiler_options=COMPILER_OPTIONS)
    _COMPILED[key] = (impl, program)  # the implementation kept alive with its key's id
    return program


def _flush_past_the_limit(key: tuple, given: Mapping[str, Any]) -> None:
    """Count the executable a call of program ``key`` on ``given`` needs; past EXECUTABLES_KEPT distinct ones,
    drop every program and JAX's in-memory caches first (the mappings' limit, above)."""
    shapes = tuple((k, getattr(v, "shape", None), str(getattr(v, "dtype", type(v).__name__))) for k, v in given.items())
    if (key, shapes) in _EXECUTABLES:
        return
    if len(_EXECUTABLES) >= EXECUTABLES_KEPT:
        _COMPILED.clear()
        _EXECUTABLES.clear()
        jax.clear_caches()
    _EXECUTABLES.add((key, shapes))


def _run_compiled(
    impl: Implementation, apply: Callable[[Mapping[str, Any]], Any], inputs: Mapping[str, Any], leaves: tuple[str, ...]
) -> tuple[Any, Any]:
    """(output, gradients by name or None) of ``apply`` on ``inputs``, compiled (``_compiled``).

    First one program for every call of a shape: every float array differentiated (a call asking for fewer
    gradients, or none, reads what it asked for) and every Python float traced, so that a value, its gradients and
    a new value of a float parameter all run the program compiled once (an audit's compilations halved). Where that
    program cannot be built or run (an implementation branching in Python on a float parameter, a custom
    derivative that rejects an argument it was never asked to differentiate), the call is made as asked: the
    gradients of ``leaves`` only, the Python floats constants; what that raises is the implementation's."""
    arrays = {k: v for k, v in inputs.items() if isinstance(v, jax.Array)}
    floats = {k: v for k, v in inputs.items() if isinstance(v, float)}
    every = tuple(sorted(k for k, v in arrays.items() if jnp.issubdtype(v.dtype, jnp.floating)))
    try:
        given = {**arrays, **floats}
        return _compiled(impl, apply, inputs, every, tuple(sorted(given)))(given)
    except _NotAnArray:
        raise
    except Exception:  # any failure of the shared program: the call as asked decides
        return _compiled(impl, apply, inputs, leaves, tuple(sorted(arrays)))(arrays)


def _forget(impl: Implementation) -> None:
    """Drop ``impl``'s compiled programs: a change of global state happens while JAX traces the implementation,
    never when a program compiled from it runs, so a call that changed the state must trace again next time (the
    same example gives the same verdict when Hypothesis replays it)."""
    for key in [key for key in _COMPILED if key[0] == id(impl)]:
        del _COMPILED[key]


def _gradients(
    out: jax.Array, backward: Callable[[jax.Array], Any] | None, names: tuple[str, ...]
) -> dict[str, np.ndarray]:
    """The gradients of ``out``'s sum with respect to ``names`` (a cotangent of ones through ``backward``)."""
    if not names:
        return {}
    if backward is None or not jnp.issubdtype(out.dtype, jnp.floating):
        raise NotDifferentiable(f"the output does not depend differentiably on {', '.join(names)}")
    try:
        (computed,) = backward(np.ones(out.shape, out.dtype))  # NumPy: no computation to compile per shape
    except Exception as exc:
        raise ImplementationRaised(exc) from exc
    return {name: np.asarray(computed[name]).astype(np.float64) for name in names}


class JaxBinding:
    """Calls a JAX implementation; see ``lossguard.harness.kernel.frameworks.base`` for the contract."""

    name = "jax"

    def __init__(self) -> None:
        jax.config.update("jax_enable_x64", True)  # float64 examples; lossguard's setting (module docstring)
        cache = compilation_cache_dir()
        if cache is not None:
            jax.config.update("jax_compilation_cache_dir", str(cache))
            jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.0)  # each of its compiles is short
            jax.config.update("jax_persistent_cache_min_entry_size_bytes", -1)

    def versions(self) -> dict[str, str]:
        return {"jax": jax.__version__, "jaxlib": jaxlib.__version__}

    def devices(self) -> dict[str, str | None]:
        """Device -> None if JAX can use it here, else the reason it cannot."""
        try:
            jax.devices("cuda")
        except RuntimeError:
            return {"cpu": None, "cuda": "JAX has no CUDA device on this machine (a CPU-only jaxlib, or no GPU)"}
        return {"cpu": None, "cuda": None}

    def round(self, array: np.ndarray, dtype: str) -> np.ndarray:
        return round_to(array, dtype)

    @staticmethod
    def moveaxis(array: Any, source: int, destination: int) -> Any:
        """``array`` with axis ``source`` moved to ``destination`` (a binding's input layout), differentiably."""
        return jnp.moveaxis(array, source, destination)

    @guarded
    def call(
        self,
        impl: Implementation,
        arg_names: Iterable[str],
        example: Example,
        dtype: str,
        device: str = "cpu",
        grad: Iterable[str] = (),
        watch_inputs: bool = False,
        requires_grad: bool = True,
    ) -> Outcome:
        """Call ``impl`` on ``example`` converted to JAX arrays in ``dtype`` on ``device``.

        grad: names (float arrays among the arguments and parameters) whose gradient of the summed output is
        returned. The call is compiled whole (``_compiled``, module docstring): the implementation sees tracers,
        and requires_grad has no effect, except with watch_inputs, no gradient asked for and requires_grad False:
        then the call runs eagerly on concrete arrays (requires_grad is JAX's counterpart of torch's flag: with it,
        the arguments would be traced for differentiation even eagerly). watch_inputs compares the host copy of
        every array handed over before and after the call. JAX arrays are immutable (and a tracer has no buffer
        at all), so a JAX implementation cannot modify its inputs short of writing through a buffer it exported
        (DLPack); the check is kept so that the immutability property judges one. (On the CPU the host copy
        reads the buffer itself; on a GPU JAX caches the copy it made first, so such a write there goes unseen.)
        """
        arg_names = tuple(arg_names)
        args = {name: to_jax(example.args[name], dtype, device) for name in arg_names if name in example.args}
        params = {name: to_jax(value, dtype, device) for name, value in example.params.items()}
        inputs = {**args, **params}
        grad = tuple(grad)
        leaves = tuple(name for name in grad if _is_float_array(inputs.get(name)))
        if grad or not requires_grad:
            traced = leaves
        else:
            traced = tuple(name for name, value in args.items() if _is_float_array(value))

        def apply(primals: Mapping[str, Any]) -> Any:
            a = {name: primals.get(name, value) for name, value in args.items()}
            p = {name: primals.get(name, value) for name, value in params.items()}
            if impl.call is not None:
                return impl.call(impl.fn, a, p)
            return impl.fn(*[a[name] for name in arg_names if name in a], **p)

        originals = {k: np.array(v) for k, v in inputs.items() if isinstance(v, jax.Array)} if watch_inputs else {}
        before = _global_state()
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                if watch_inputs and not traced:  # eagerly, on concrete arrays: a write through DLPack can be seen
                    out, backward = apply({}), None
                else:
                    out, grads = _run_compiled(impl, apply, inputs, leaves)
                    backward = None if grads is None else lambda _ones, grads=grads: (grads,)  # computed already
        except _NotAnArray as returned:
            _restore(before)
            out, backward = returned.output, None
        except Exception as exc:
            _restore(before)
            raise ImplementationRaised(exc) from exc
        changed = _changed(before, _global_state())
        if changed:
            _restore(before)
            _forget(impl)  # a compiled program changes nothing: the next call traces again, and changes it again
            raise GlobalStateChanged(f"the call changed global state: {', '.join(changed)}")
        mutated = [k for k, v in originals.items() if np.asarray(inputs[k]).tobytes() != v.tobytes()]
        if mutated:
            raise InputMutated(f"the call modified its input(s) in place: {', '.join(mutated)}")
        if not isinstance(out, jax.Array):
            raise WrongOutput(f"returned {type(out).__name__}, not a JAX array")
        value = np.asarray(out).astype(np.float64)
        return Outcome(value=value, grads=_gradients(out, backward, leaves), dtype=str(out.dtype))

