"""The measurement core of lossguard's benchmarks: problem sizes, timings, the loss's own peak memory, accuracy.

The asv suite (``benchmarks/``), the pytest-benchmark suite and ``lossguard bench`` measure through this module,
so every figure means the same thing everywhere:

* **Problems** (``problem``): per catalog entry and size, one seeded float64 example (``seeded.benchmark_example``:
  the entry's own examples builder, its rows repeated to ``SIZES[size]`` elements, then its ``benchmark``
  builder), chosen so that every built-in implementation gives a finite loss and gradient (the regular path is
  timed, not a boundary). The entries of ``LANGUAGE_MODEL_ENTRIES`` (cross_entropy and linear_cross_entropy)
  are measured at a language model's head instead, the same shapes for both (``language_model(size, device)``:
  tokens x vocabulary, hidden), ``large`` 8,192 x 32,000, 1,024 on the CPU and 8,192 x 128,256, 1,024 on CUDA.
* **Calls** (``prepare``): one implementation (or ``REFERENCE``, the float64 NumPy reference) on one problem in
  one dtype on one device: ``forward()`` returns the loss (autograd recording, as in training: a fused kernel
  hides work in its forward), ``backward(loss)`` differentiates it (the sum of a per-element output),
  ``forward_backward()`` both. A call the implementation cannot take raises ``Unavailable`` (a
  ``NotImplementedError``: asv reports it as skipped) with the reason.
* **Time** (``median_time``): after a warm-up call, samples of at least ``MIN_SAMPLE`` seconds each (as many
  calls as that takes), the median per call. On CUDA every sample starts with the L2 cache flushed and each
  sample is synchronised; work a sample needs but does not time (the forward before a backward) runs outside
  the clock. ``single_thread()`` pins torch and the BLAS/OpenMP pools to one thread (low noise on a shared
  machine; the environment variables only reach libraries loaded after it: the asv configuration sets them
  for the benchmark processes too).
* **Memory** (``peak_memory``): the loss's own peak, the bytes allocated beyond those held before a forward +
  backward, whatever the process holds besides (torch's import alone is hundreds of MB of RSS). On CUDA:
  ``torch.cuda.max_memory_allocated()`` minus ``memory_allocated()`` before (peak statistics reset). On the CPU:
  the running sum of the allocation and free events the torch profiler records (``profile_memory=True``) during
  the call, its maximum. That counts exactly what torch's CPU allocator hands out and takes back, tensor by
  tensor, in the order it happens, so intermediates freed before the end (CE's softmax) are counted and nothing
  else in the process is. A peak-RSS delta against a no-op in a fresh process was the alternative: it also
  moves with glibc's arena reuse and ``madvise`` trimming, page granularity and the allocator's caching, so two
  runs of the same call differ by more than a small loss allocates. (``tests/test_measure.py`` checks the
  profiler figure on calls whose peak is known to the byte.) The float64 reference allocates through NumPy,
  whose allocations ``tracemalloc`` traces: its figure is tracemalloc's peak over the call. JAX allocates
  outside both; its memory is reported unavailable (``Memory.peak`` None, with the reason).
* **Amplification** (``Memory.amplification``): the peak divided by the bytes of the differentiated
  arguments (the logits of cross_entropy; hidden state and weight of linear_cross_entropy). A forward +
  backward must at least hold the gradients, as large as those arguments: the limit is about 1x; eager
  float32 cross-entropy holds its logits' softmax and their gradient besides.
* **Accuracy** (``worst_ulps``): the worst error of value and gradients, in ulps of the computation's scale
  (``tolerance.compare``, the unit every property judges in, through ``Subject`` as the properties compare), on
  the fixed seeded ``small`` problem rounded to the dtype, against the float64 reference.
"""

from __future__ import annotations

import contextlib
import functools
import math
import os
import statistics
import time
import tracemalloc
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any, NamedTuple

import numpy as np
import torch
from hypothesis.errors import HypothesisDeprecationWarning

from lossguard.catalog import CATALOG
from lossguard.harness.app.inventory import implementations
from lossguard.harness.kernel import seeded, tolerance
from lossguard.harness.kernel.frameworks.torch_binding import to_torch
from lossguard.harness.kernel.model import Example, Implementation, LossSpec
from lossguard.harness.kernel.subject import Subject
from lossguard.properties.generic import kink_mask

REFERENCE = "reference"  # the float64 NumPy reference, measured as an implementation of every entry
SIZES = {"small": 1 << 12, "medium": seeded.ELEMENTS, "large": 1 << 20}  # elements of the first argument
LANGUAGE_MODEL_ENTRIES = ("cross_entropy", "linear_cross_entropy")
MIN_SAMPLE = 0.01  # seconds: the shortest sample timed
CALIBRATION_MARGIN = 1.5  # calls per sample: enough for 1.5 x the minimum at the calibration's speed
MAX_SAMPLE_WALL = 1.0  # seconds: the longest a sample may take, untimed preparation included
THREAD_VARIABLES = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS")
CPU_PROFILER = "torch profiler: CPU allocator events"
CUDA_ALLOCATED = "torch.cuda.max_memory_allocated"
NUMPY_TRACED = "tracemalloc: NumPy allocations"


class Unavailable(NotImplementedError):
    """A measurement this implementation, device or problem cannot give (asv: the benchmark is skipped)."""


class LanguageModel(NamedTuple):
    tokens: int
    vocabulary: int
    hidden: int


def language_model(size: str, device: str = "cpu") -> LanguageModel:
    """The language-model head of ``size``: ``large`` is 8,192 tokens through a 32,000 vocabulary (hidden 1,024) on
    the CPU, Llama 3's 128,256 on CUDA; ``medium`` is linear_cross_entropy's own benchmark call (2,048 x 8,192,
    hidden 128); ``small`` 128 x 1,024, hidden 64."""
    if size == "large":
        return LanguageModel(8192, 128_256 if device == "cuda" else 32_000, 1024)
    return {"small": LanguageModel(128, 1024, 64), "medium": LanguageModel(2048, 8192, 128)}[size]


def single_thread() -> None:
    """One thread for torch and for the BLAS/OpenMP libraries loaded from now on (a quiet, comparable clock)."""
    for name in THREAD_VARIABLES:
        os.environ[name] = "1"
    torch.set_num_threads(1)


# --- problems ---------------------------------------------------------------------------------------------


def _language_model_example(spec: LossSpec, shape: LanguageModel, seed: int) -> Example:
    """``spec``'s canonical call at a language model's head: logits (tokens, vocabulary) for cross_entropy,
    hidden state (tokens, hidden) and weight (vocabulary, hidden) for linear_cross_entropy; seeded float32 draws
    (float64 arrays this size would be twice the memory for values rounded to float32 or lower anyway)."""
    rng = np.random.default_rng(seed)
    target = rng.integers(0, shape.vocabulary, shape.tokens)
    if spec.name == "cross_entropy":
        args = {"input": rng.standard_normal((shape.tokens, shape.vocabulary), dtype=np.float32), "target": target}
    else:
        scale = np.float32(shape.hidden**-0.5)
        args = {
            "hidden": rng.standard_normal((shape.tokens, shape.hidden), dtype=np.float32),
            "weight": rng.standard_normal((shape.vocabulary, shape.hidden), dtype=np.float32) * scale,
            "target": target,
        }
    return Example(args, dict(spec.params))


def _finite_everywhere(spec: LossSpec) -> Callable[[Example], bool]:
    """Whether every built-in implementation of ``spec`` gives a finite loss and gradients on an example in
    float32 (a benchmark times the regular path, not a boundary where some return inf)."""
    impls = [impl for impl in implementations("builtin") if impl.loss == spec.name]

    def usable(example: Example) -> bool:
        for impl in impls:
            try:
                call = _torch_call(impl, spec, example, "float32", "cpu")
                loss = call.forward()
                call.backward(loss)
            except Exception:
                return False
            grads = [t.grad for t in call.leaves]
            if not torch.isfinite(loss).all() or any(g is None or not torch.isfinite(g).all() for g in grads):
                return False
        return True

    return usable


@functools.cache
def problem(loss: str, size: str, device: str = "cpu") -> Example:
    """The seeded float64 example of catalog entry ``loss`` at ``size`` (``SIZES``) for ``device``: the same one
    on every run (see the module docstring)."""
    if size not in SIZES:
        raise ValueError(f"unknown size {size!r}; choose one of {', '.join(SIZES)}")
    spec = CATALOG[loss]
    if loss in LANGUAGE_MODEL_ENTRIES:
        return _language_model_example(spec, language_model(size, device), seeded.SEED)
    return seeded.benchmark_example(spec, elements=SIZES[size], usable=_finite_everywhere(spec))


# --- implementations --------------------------------------------------------------------------------------


@functools.cache
def _all() -> dict[str, Implementation]:
    return {impl.name: impl for impl in implementations("all")}


def candidates(loss: str) -> list[str]:
    """The names of everything measured for ``loss``: ``REFERENCE``, then every implementation of it lossguard
    knows (torch built-in, own, every installed library's shipped binding)."""
    return [REFERENCE, *(name for name, impl in _all().items() if impl.loss == loss)]


def implementation(name: str | Implementation) -> Implementation:
    """The implementation named ``name`` (as ``candidates`` lists it, ``REFERENCE`` aside); an ``Implementation``
    (a user's, a planted one in a test) is itself."""
    return name if isinstance(name, Implementation) else _all()[name]


def supported(impl: Implementation, example: Example) -> Example:
    """``example`` as ``impl`` takes it: its binding's fixed values pinned, projected into the parts of the
    contract it supports (as ``Subject.supported`` does for a drawn example); ``Unavailable`` if it cannot."""
    example = example.replace(**impl.fixed)
    for part in impl.domain:
        if part.project is not None and not part.contains(example):
            example = part.project(example)
    if not impl.supports(example):
        raise Unavailable(f"{impl.name} does not support this problem (outside its binding's domain)")
    return example


# --- calls ------------------------------------------------------------------------------------------------


def _nothing() -> None:
    pass


@dataclass
class Call:
    """One implementation on one problem, ready to run repeatedly on the same arrays (see the module docstring).

    grad_bytes: bytes of the differentiated arguments (the amplification's denominator). leaves: torch tensors
    whose gradients a backward fills (cleared by each forward). framework: 'torch', 'jax' or 'numpy'."""

    forward: Callable[[], Any]
    backward: Callable[[Any], Any] | None
    framework: str
    device: str
    grad_bytes: int
    sync: Callable[[], None] = _nothing
    leaves: tuple[torch.Tensor, ...] = ()

    def forward_backward(self) -> Any:
        if self.backward is None:
            raise Unavailable(f"a {self.framework} call has no separate backward here")
        return self.backward(self.forward())


def _passed(impl: Implementation, spec: LossSpec, name: str, value: Any) -> bool:
    """Whether parameter ``name`` = ``value`` is passed to ``impl``: it accepts it and, for an implementation
    called canonically, it is not the canonical default, which it applies itself (a user's call; a binding's
    call maps every canonical parameter it accepts, as a property's call passes them)."""
    if name not in impl.accepted:
        return False
    if impl.call is not None or name in spec.supplied or name not in spec.params:
        return True
    default = spec.params[name]
    if isinstance(value, np.ndarray) or isinstance(default, np.ndarray):
        return True
    return not (value is default or (type(value) is type(default) and value == default))


def _torch_call(impl: Implementation, spec: LossSpec, example: Example, dtype: str, device: str) -> Call:
    args = {name: to_torch(example.args[name], dtype, device) for name in spec.args if name in example.args}
    args = {k: v for k, v in args.items() if v is not None}
    params = {k: to_torch(v, dtype, device) for k, v in example.params.items() if _passed(impl, spec, k, v)}
    grad = [args.get(n, params.get(n)) for n in spec.differentiable]
    leaves = tuple(t for t in grad if isinstance(t, torch.Tensor) and t.is_floating_point())
    for leaf in leaves:
        leaf.requires_grad_(True)
    sync = torch.cuda.synchronize if device == "cuda" else _nothing

    def forward() -> torch.Tensor:
        for leaf in leaves:
            leaf.grad = None
        if impl.call is not None:
            return impl.call(impl.fn, args, params)
        return impl.fn(*args.values(), **params)

    def backward(loss: torch.Tensor) -> None:
        (loss if loss.dim() == 0 else loss.sum()).backward()
        sync()

    return Call(forward, backward, "torch", device, sum(t.numel() * t.element_size() for t in leaves), sync, leaves)


def _jax_call(impl: Implementation, spec: LossSpec, example: Example, dtype: str, device: str) -> Call:
    """A JAX implementation compiled with ``jax.jit`` (XLA's default options, as a user's step): ``forward`` the
    loss, ``backward`` the value and gradient program (JAX compiles a backward with its forward: there is no
    separate backward to time, so ``backward`` is the whole forward + backward, and the call's backward slot is
    empty)."""
    import jax
    import jax.numpy as jnp

    from lossguard.harness.kernel.frameworks.jax_binding import to_jax

    if device != "cpu":
        raise Unavailable("JAX implementations are measured on the CPU only")
    args = {name: to_jax(example.args[name], dtype, device) for name in spec.args if example.args.get(name) is not None}
    params = {k: to_jax(v, dtype, device) for k, v in example.params.items() if _passed(impl, spec, k, v)}
    traced = tuple(n for n in spec.differentiable if n in args and jnp.issubdtype(args[n].dtype, jnp.floating))

    def apply(a: dict[str, Any]) -> Any:
        if impl.call is not None:
            return impl.call(impl.fn, a, params)
        return impl.fn(*a.values(), **params)

    forward_program = jax.jit(apply)
    both = jax.jit(jax.value_and_grad(lambda leaves, rest: jnp.sum(apply({**rest, **leaves}))))
    leaves = {n: args[n] for n in traced}
    rest = {n: v for n, v in args.items() if n not in traced}
    grad_bytes = sum(v.size * v.dtype.itemsize for v in leaves.values())
    call = Call(lambda: forward_program(args).block_until_ready(), None, "jax", device, grad_bytes)
    call.forward_backward = lambda: jax.block_until_ready(both(leaves, rest))  # type: ignore[method-assign]
    return call


def _reference_call(spec: LossSpec, example: Example) -> Call:
    kwargs = example.kwargs()
    grad_bytes = sum(
        np.asarray(kwargs[n]).size * 8 for n in spec.differentiable if isinstance(kwargs.get(n), np.ndarray)
    )

    def forward() -> np.ndarray:
        with np.errstate(all="ignore"):
            return spec.reference(**kwargs)

    def backward(_: Any) -> Any:
        with np.errstate(all="ignore"):
            return spec.reference.grad(**kwargs)

    return Call(forward, backward, "numpy", "cpu", grad_bytes)


def prepare(name: str | Implementation, loss: str, size: str, dtype: str, device: str = "cpu") -> Call:
    """The call of implementation ``name`` (or ``REFERENCE``: float64 on the CPU only) on ``loss``'s problem at
    ``size`` in ``dtype`` on ``device``, warmed up (a forward, and a forward + backward: which also proves it runs)."""
    spec = CATALOG[loss]
    if device == "cuda" and not torch.cuda.is_available():
        raise Unavailable("CUDA is not available on this machine")
    if name == REFERENCE:
        if dtype != "float64" or device != "cpu":
            raise Unavailable("the reference computes in float64 NumPy, on the CPU")
        if size != "small" and loss in LANGUAGE_MODEL_ENTRIES:
            raise Unavailable(
                f"the float64 reference is measured on the small language-model head only ({size}: "
                "seconds to minutes a call, GBs of temporaries)"
            )
        call = _reference_call(spec, problem(loss, size, device))
    else:
        impl = implementation(name)
        example = supported(impl, problem(loss, size, device))
        make = _jax_call if impl.framework == "jax" else _torch_call
        call = make(impl, spec, example, dtype, device)
    call.forward()  # warm-up: caches, a JAX program's compilation
    with contextlib.suppress(Unavailable):
        call.forward_backward()
    return call


# --- time -------------------------------------------------------------------------------------------------


@functools.cache
def _flush_buffer() -> torch.Tensor:
    """A CUDA buffer twice the L2 cache: writing it evicts whatever a previous sample left there."""
    size = torch.cuda.get_device_properties(torch.cuda.current_device()).L2_cache_size
    return torch.empty(2 * max(size, 1 << 20), dtype=torch.uint8, device="cuda")


def flush_l2(device: str) -> None:
    """Evict the L2 cache of ``device`` (CUDA) and wait for it; nothing on the CPU."""
    if device == "cuda":
        _flush_buffer().zero_()
        torch.cuda.synchronize()


@dataclass(frozen=True)
class Timing:
    """The median seconds per call over ``samples`` samples of ``number`` calls each."""

    median: float
    samples: tuple[float, ...]
    number: int


def median_time(
    run: Callable[[Any], Any],
    before: Callable[[], Any] = _nothing,
    device: str = "cpu",
    samples: int = 5,
    min_sample: float = MIN_SAMPLE,
) -> Timing:
    """Time ``run(before())``, the work ``before`` returns for it prepared outside the clock (a backward's forward),
    synchronised and, on CUDA, each sample after an L2 flush. Each sample is at least ``min_sample`` seconds of
    ``run`` (the number of calls per sample calibrated after a warm-up call, with a margin), unless that would
    take a sample past ``MAX_SAMPLE_WALL`` seconds with its preparation (a forward far slower than its
    backward); the median per call."""
    sync = torch.cuda.synchronize if device == "cuda" else _nothing

    def timed(number: int) -> float:
        flush_l2(device)
        total = 0.0
        for _ in range(number):
            work = before()
            sync()
            start = time.perf_counter()
            run(work)
            sync()
            total += time.perf_counter() - start
        return total

    timed(1)  # warm-up
    start = time.perf_counter()
    fastest = min(timed(1), timed(1))  # calibration: the fastest of two calls (a preempted one would mislead)
    wall = (time.perf_counter() - start) / 2
    enough = math.ceil(CALIBRATION_MARGIN * min_sample / max(fastest, 1e-9))
    number = max(1, min(enough, int(MAX_SAMPLE_WALL / max(wall, 1e-9))))
    taken = tuple(timed(number) / number for _ in range(samples))
    return Timing(statistics.median(taken), taken, number)


def time_call(call: Call, what: str, samples: int = 5) -> Timing:
    """The median time of ``call``'s ``what``: 'forward', 'backward' or 'forward_backward'."""
    if what == "forward":
        return median_time(lambda _: call.forward(), device=call.device, samples=samples)
    if what == "forward_backward":
        return median_time(lambda _: call.forward_backward(), device=call.device, samples=samples)
    if what == "backward":
        if call.backward is None:
            raise Unavailable(f"a {call.framework} call has no separate backward here")
        return median_time(call.backward, call.forward, device=call.device, samples=samples)
    raise ValueError(f"unknown measurement {what!r}; choose forward, backward or forward_backward")


# --- memory -----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Memory:
    """The loss's own peak memory in bytes over a forward + backward (None: unavailable, ``how`` says why),
    ``how`` it was measured, and the bytes of the differentiated arguments."""

    peak: int | None
    how: str
    grad_bytes: int = 0

    @property
    def amplification(self) -> float | None:
        """The peak over the bytes of the differentiated arguments (about 1 at best: the gradients themselves)."""
        if self.peak is None or not self.grad_bytes:
            return None
        return self.peak / self.grad_bytes


def _allocation_events(profile: torch.profiler.profile) -> Iterator[tuple[int, int]]:
    """(time in ns, bytes: + allocated, - freed) of every allocator event the profiler recorded."""
    from torch._C._profiler import _EventType

    stack = list(profile.profiler.kineto_results.experimental_event_tree())
    while stack:
        event = stack.pop()
        stack.extend(event.children)
        if event.tag == _EventType.Allocation:
            yield event.start_time_ns, event.extra_fields.alloc_size


def profiled_peak(run: Callable[[], Any]) -> int:
    """The most bytes torch's CPU allocator held during ``run()`` beyond those held before it: the maximum of the
    running sum of the allocation and free events the torch profiler records (``profile_memory=True``), in order."""
    with torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CPU], profile_memory=True) as profile:
        run()
    held = peak = 0
    for _, size in sorted(_allocation_events(profile)):
        held += size
        peak = max(peak, held)
    return peak


def cuda_peak(run: Callable[[], Any]) -> int:
    """The most bytes torch's CUDA allocator had allocated during ``run()`` beyond those allocated before it."""
    torch.cuda.synchronize()
    torch.cuda.reset_peak_memory_stats()
    before = torch.cuda.memory_allocated()
    run()
    torch.cuda.synchronize()
    return torch.cuda.max_memory_allocated() - before


def traced_peak(run: Callable[[], Any]) -> int:
    """The most bytes tracemalloc saw allocated during ``run()`` beyond those before it (NumPy's arrays)."""
    tracemalloc.start()
    try:
        tracemalloc.reset_peak()
        before, _ = tracemalloc.get_traced_memory()
        run()
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    return max(peak - before, 0)


def peak_memory(call: Call) -> Memory:
    """The loss's own peak memory over one forward + backward of ``call`` (see the module docstring)."""
    if call.framework == "jax":
        return Memory(None, "unavailable: JAX allocates outside torch's allocator and tracemalloc", call.grad_bytes)
    if call.framework == "numpy":
        return Memory(traced_peak(call.forward_backward), NUMPY_TRACED, call.grad_bytes)
    call.sync()
    if call.device == "cuda":
        return Memory(cuda_peak(call.forward_backward), CUDA_ALLOCATED, call.grad_bytes)
    return Memory(profiled_peak(call.forward_backward), CPU_PROFILER, call.grad_bytes)


# --- accuracy ---------------------------------------------------------------------------------------------


@dataclass
class Accuracy:
    """The worst error in ulps of the computation's scale, over the value and every gradient (``worst``), and per
    output (``by_output``: 'loss', 'd loss / d <argument>')."""

    worst: float
    by_output: dict[str, float] = field(default_factory=dict)


@functools.cache
def accuracy_example(loss: str) -> Example:
    """The fixed float64 input accuracy is judged on: the entry's seeded example as its builder draws it (the
    largest of the first few on which every built-in implementation is finite), unscaled, so that a mean's error
    scale is not that of thousands of repeated rows; the small language-model head for cross_entropy and
    linear_cross_entropy."""
    spec = CATALOG[loss]
    if loss in LANGUAGE_MODEL_ENTRIES:
        return problem(loss, "small")
    return seeded.seeded_example(spec, usable=_finite_everywhere(spec))


def _errors(subject: Subject, example: Example, label: str) -> dict[str, float]:
    """The worst ulps of the value and of each gradient of ``subject`` on ``example``, where the properties judge
    (representable values, no kinks, a finite error scale), by output ('loss', 'd loss / d <argument>')."""
    spec, dtype = subject.spec, subject.dtype
    names = subject.differentiable(example)
    with warnings.catch_warnings():  # the call's Hypothesis ``assume`` holds: ``supported`` checked it
        warnings.simplefilter("ignore", HypothesisDeprecationWarning)
        outcome = subject.call(example, grad=names)
    expected = subject.reference(example)
    judged = {label: (outcome.value, expected, subject.scale(example), tolerance.representable(expected, dtype))}
    with np.errstate(all="ignore"):
        gradients = spec.reference.grad(**example.kwargs()) if names else {}
    for n in names:
        ref = gradients[n]
        mask = tolerance.representable(ref.value, dtype) & ~kink_mask(subject, example, ref.value.shape)
        judged[f"d {label} / d {n}"] = (outcome.grads[n], ref.value, ref.scale, mask)
    errors = {}
    for what, (actual, exact, scale, mask) in judged.items():
        comparison = subject.compare(actual, exact, scale)
        keep = comparison.judgeable & np.broadcast_to(mask, comparison.ulps.shape)
        errors[what] = float(np.max(np.where(keep, comparison.ulps, 0.0), initial=0.0))
    return errors


def worst_ulps(name: str | Implementation, loss: str, dtype: str, device: str = "cpu") -> Accuracy:
    """The accuracy of implementation ``name`` on ``loss``'s fixed ``accuracy_example`` rounded to ``dtype``,
    against the float64 reference: at the canonical parameters ('loss' and its gradients) and, where the
    implementation computes per element, also at reduction='none' ('loss per element' and its gradients: each
    element judged at its own scale, which a mean's error scale, grown with the element count, would hide).
    ``REFERENCE`` is the reference itself: 0."""
    if name == REFERENCE:
        return Accuracy(0.0)
    spec, impl = CATALOG[loss], implementation(name)
    subject = Subject(spec, impl, dtype, device)
    example = subject.rounded(supported(impl, accuracy_example(loss)))
    by_output = _errors(subject, example, "loss")
    if "reduction" in spec.params and subject.takes("reduction", "none"):
        none = example.replace(reduction="none")
        if impl.supports(none):
            by_output |= _errors(subject, none, "loss per element")
    return Accuracy(max(by_output.values()), by_output)
