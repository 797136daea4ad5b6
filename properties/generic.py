"""Generic properties: written once, applied to every loss through its catalog tags."""

from __future__ import annotations

import numpy as np
from hypothesis import strategies as st

from lossguard.harness.kernel import tolerance
from lossguard.harness.kernel.failures import ImplementationRaised
from lossguard.properties.base import FLOAT64_AND_FLOAT32, FLOAT64_ONLY, NONE, first_index, numbers_at, register


@register(
    "agreement",
    "value agrees with the float64 reference under the tolerance policy, every reduction",
    checks=("dtype", "shape", "value"),
)
def agreement(subject, data) -> None:
    example = subject.draw(data, regime="any")
    outcome = subject.call(example)
    expected = subject.reference(example)
    promised = subject.impl.output_dtype(subject.dtype)
    if outcome.dtype != promised:
        why = "the input dtype" if promised == subject.dtype else f"its binding's dtype policy for {subject.dtype}"
        subject.fail(f"output dtype = {outcome.dtype}, but should be {promised} [{why}]", example, check="dtype")
    if outcome.value.shape != expected.shape:
        subject.fail(f"output shape = {outcome.value.shape}, but should be {expected.shape}", example, check="shape")
    domain = tolerance.representable(expected, subject.dtype) | np.isnan(expected)
    subject.expect_close("loss", outcome.value, expected, subject.scale(example), example, mask=domain, check="value")


def kink_mask(subject, example, shape) -> np.ndarray:
    """Elements of an argument shaped ``shape`` whose gradient meets a kink. The entry's kinks are a mask over the
    'none' output (a 0-d mask: the whole call), and an output element at a kink spoils the gradient of every
    argument element it depends on: a row's kink reaches every coordinate of that row (``shape`` extends the
    mask's shape), an argument broadcast against the output (a per-row variance of shape (N, 1), a 0-d
    temperature) has a kink wherever one of the elements it reaches has one; any other argument is masked
    entirely as soon as there is a kink anywhere. The rest of the gradient is still compared."""
    shape = tuple(shape)
    if subject.spec.kinks is None:
        return np.zeros(shape, dtype=bool)
    kinks = np.asarray(subject.spec.kinks(example, subject.u), dtype=bool)
    if kinks.shape == shape[: kinks.ndim]:  # rows (or the whole call) -> every coordinate of each row
        return np.broadcast_to(kinks.reshape(kinks.shape + (1,) * (len(shape) - kinks.ndim)), shape)
    try:
        broadcast = np.broadcast_shapes(shape, kinks.shape) == kinks.shape
    except ValueError:
        broadcast = False
    if broadcast:  # the argument broadcasts to the output: any kink among the elements each of its elements reaches
        lead = kinks.ndim - len(shape)
        reduced = np.any(kinks, axis=tuple(range(lead))) if lead else kinks
        axes = tuple(i for i, n in enumerate(shape) if n == 1)
        return np.any(reduced, axis=axes, keepdims=True) if axes else reduced
    return np.full(shape, bool(np.any(kinks)))


@register(
    "gradient",
    "autograd gradient of every differentiable argument agrees with the reference gradient",
    checks=("first_argument", "other_arguments"),  # the first differentiable argument's gradient, the others'
)
def gradient(subject, data) -> None:
    example = subject.draw(data, regime="any")
    names = subject.differentiable(example)
    subject.need(bool(names))
    outcome = subject.call(example, grad=names)
    # where the loss itself overflows the dtype autograd has no meaningful gradient to give: such an example is
    # discarded (never a silent pass)
    subject.need(bool(np.all(tolerance.representable(subject.reference(example), subject.dtype))))
    with np.errstate(all="ignore"):
        expected = subject.spec.reference.grad(**example.kwargs())
    for name in names:
        reference = expected[name]
        actual = outcome.grads[name]
        check = "first_argument" if name == subject.spec.differentiable[0] else "other_arguments"
        if actual.shape != reference.value.shape:
            subject.fail(
                f"d loss / d {name} shape = {actual.shape}, but should be {reference.value.shape}", example, check=check
            )
        kinks = kink_mask(subject, example, reference.value.shape)
        domain = tolerance.representable(reference.value, subject.dtype) & ~kinks
        subject.expect_close(
            f"d loss / d {name}", actual, reference.value, reference.scale, example, mask=domain, check=check
        )


@register("non_negative", "the loss is >= 0 (up to the rounding its tolerance allows)")
def non_negative(subject, data) -> None:
    example = subject.draw(data, regime="any")
    value = subject.value(example)
    scale = subject.scale(example)
    allowed = subject.compare(value, 0.0, scale).allowed
    negative = value < -allowed
    if np.any(negative):
        index = tuple(int(i) for i in np.argwhere(negative)[0]) if value.ndim else ()
        subject.fail(
            f"loss{f' at index {index}' if index else ''} = {value[index]!r}, but should be >= 0",
            example,
            numbers=numbers_at(index, value, 0.0, scale),  # the negative value, the bound 0, its scale
        )


@register(
    "zero_at_perfect",
    "zero at a perfect prediction (or decreasing towards 0 as the right answer gets surer)",
    checks=("at_perfect", "monotone", "limit"),  # the exact zero; the limit's decrease and its end near 0
)
def zero_at_perfect(subject, data) -> None:
    example = subject.draw(data, regime="typical", reduction=NONE)
    perfect = subject.spec.perfect
    if not subject.spec.perfect_is_limit:
        best = subject.rounded(perfect(example, 1.0))
        subject.expect_close(
            "loss at a perfect prediction", subject.value(best), 0.0, subject.scale(best), best, check="at_perfect"
        )
        return
    previous = None
    for strength in (0.0, 1.0, 2.0, 4.0, 8.0):
        current = subject.rounded(perfect(example, strength))
        value = subject.value(current)
        if previous is not None:
            scale = subject.scale(current)
            allowed = subject.compare(value, previous, scale).allowed
            rises = value > previous + allowed
            if np.any(rises):
                subject.fail(
                    f"loss = {value.tolist()} after making the prediction surer, but should not exceed "
                    f"{previous.tolist()} [the loss must decrease towards 0]",
                    current,
                    check="monotone",
                    # the risen value, its bound (the less sure prediction's value), the scale the comparison used
                    numbers=numbers_at(first_index(rises), value, previous, scale),
                )
        previous = value
    # and it does approach 0: at the surest prediction it is the reference's (nearly 0) value
    subject.expect_close(
        "loss at a sure, right prediction",
        value,
        subject.reference(current),
        subject.scale(current),
        current,
        check="limit",
    )


@register(
    "reduction",
    "'sum' = sum of 'none'; 'mean' = 'sum' / normaliser (PyTorch's weighted mean)",
    dtypes=FLOAT64_AND_FLOAT32,
    checks=("sum", "mean"),
)
def reduction(subject, data) -> None:
    subject.need(subject.accepts("reduction"))
    example = subject.draw(data, regime="typical", reduction=NONE)
    none = subject.value(example)
    as_sum = example.replace(reduction="sum")
    as_mean = example.replace(reduction="mean")
    total = subject.value(as_sum)
    subject.expect_close("'sum'", total, np.sum(none), subject.scale(as_sum), as_sum, check="sum")
    normaliser = subject.spec.reference.terms(**as_mean.kwargs()).normaliser
    normaliser = none.size if normaliser is None else normaliser
    with np.errstate(all="ignore"):
        expected_mean = total / normaliser if normaliser else np.nan
    subject.expect_close("'mean'", subject.value(as_mean), expected_mean, subject.scale(as_mean), as_mean, check="mean")


def _take(example, first: str, rows, batch: int):
    """The example restricted to ``rows`` of the batch (arguments, and array parameters shaped like ``first``)."""
    shape = np.shape(example.args[first])

    def cut(value, is_arg: bool):
        batched = isinstance(value, np.ndarray) and value.ndim and value.shape[0] == batch
        return value[rows] if batched and (is_arg or value.shape == shape) else value

    return example.replace(
        {k: cut(v, True) for k, v in example.args.items()}, **{k: cut(v, False) for k, v in example.params.items()}
    )


@register("batch", "reduction='none' is batch-independent and permutation-equivariant", dtypes=FLOAT64_AND_FLOAT32)
def batch(subject, data) -> None:
    subject.need(subject.takes("reduction", NONE))
    example = subject.draw(data, regime="typical", reduction=NONE)
    first = subject.spec.args[0]
    n = np.shape(example.args[first])[0] if np.ndim(example.args[first]) else 0
    subject.need(n >= 2 and all(np.ndim(a) and np.shape(a)[0] == n for a in example.args.values()))
    full = subject.value(example)
    subject.need(full.ndim >= 1 and full.shape[0] == n)  # unbatched class inputs have no batch axis
    scale = subject.scale(example)
    # the permuted batch first (an output in the wrong order), then each row alone (rows coupled through a
    # batch statistic, which permuting leaves unchanged)
    order = np.array(data.draw(st.permutations(range(n)), label="permutation"))
    if np.array_equal(order, np.arange(n)):
        order = order[::-1]  # the identity would judge nothing (n >= 2)
    permuted = _take(example, first, order, n)
    subject.expect_close(
        "output of the permuted batch",
        subject.value(permuted),
        full[order],
        scale[order],
        permuted,
    )
    for i in range(n):
        alone = _take(example, first, slice(i, i + 1), n)
        subject.expect_close(f"row {i} computed alone", subject.value(alone)[0], full[i], scale[i], alone)


@register(
    "stability",
    "finite value and gradients at extreme inputs wherever the exact ones are",
    dtypes=FLOAT64_AND_FLOAT32,
    checks=("value", "gradient"),
)
def stability(subject, data) -> None:
    example = subject.draw(data, regime="extreme", reduction=NONE)
    names = subject.differentiable(example)
    outcome = subject.call(example, grad=names)
    value = subject.reference(example)
    finite_value = _must_be_finite(subject, value, subject.scale(example))
    _expect_finite(subject, "loss", outcome.value, value, finite_value, example, "value")
    if not np.all(finite_value):
        names = ()  # autograd's intermediates overflow with the loss (as in the gradient property)
    with np.errstate(all="ignore"):
        grads = subject.spec.reference.grad(**example.kwargs()) if names else {}
    for name in names:
        exact = grads[name].value
        must = _must_be_finite(subject, exact, grads[name].scale)
        _expect_finite(subject, f"d loss / d {name}", outcome.grads[name], exact, must, example, "gradient")


def _must_be_finite(subject, exact: np.ndarray, scale: np.ndarray) -> np.ndarray:
    """Where every result the tolerance accepts is finite: the exact value plus its allowed error lies within
    the dtype's range. (A value within its allowed error of the overflow threshold may round to infinity in an
    evaluation as accurate as the policy asks for.)"""
    exact = np.asarray(exact, dtype=np.float64)
    with np.errstate(all="ignore"):
        # the bound alone, no judgement (so not Subject.compare, which counts one): _expect_finite judges
        allowed = tolerance.compare(exact, exact, np.broadcast_to(scale, exact.shape), subject.dtype, subject.spec.ulps)
        allowed = allowed.allowed
        return tolerance.representable(np.abs(exact) + allowed, subject.dtype)


def _expect_finite(
    subject, what: str, actual: np.ndarray, exact: np.ndarray, must: np.ndarray, example, check: str
) -> None:
    """Fail where ``must`` (``_must_be_finite``) holds but ``actual`` is not finite."""
    exact = np.asarray(exact, dtype=np.float64)
    subject.same_shape(what, actual, exact, example, check)
    actual = np.broadcast_to(actual, exact.shape)
    bad = must & ~np.isfinite(actual)
    subject.judged(int(np.count_nonzero(must)))
    if np.any(bad):
        index = tuple(int(i) for i in np.argwhere(bad)[0])
        where = f" at index {index}" if index else ""
        subject.fail(
            f"{what}{where} = {actual[index]!r}, but should be finite [exact value {exact[index]!r}]",
            example,
            check=check,
            numbers=(float(actual[index]), float(exact[index]), None),
        )


@register("immutability", "the call modifies none of its inputs, with and without requires_grad", dtypes=FLOAT64_ONLY)
def immutability(subject, data) -> None:
    example = subject.draw(data, regime="typical")
    for requires_grad in (False, True):
        subject.call(example, watch_inputs=True, requires_grad=requires_grad)
        subject.judged()  # the binding compared every input before and after the call


@register(
    "invalid_input",
    "invalid input raises an exception with a message",
    dtypes=FLOAT64_ONLY,
    examples=0.25,
    checks=("raises", "message"),
)
def invalid_input(subject, data) -> None:
    cases = [c for c in subject.spec.error_cases if all(subject.accepts(n) for n in c.needs)]
    subject.need(bool(cases))
    example = subject.draw(data, regime="typical")
    # the valid example first: an implementation that raises on every call (an unsupported parameter, a broken
    # import) raised "for an unrelated reason", an error with that reason, never a pass of this property
    subject.call(example)
    for case in cases:
        if subject.device == "cuda" and "class index" in case.description:
            continue  # a device-side assert kills the process: such cases run only on the CPU
        invalid = subject.rounded(case.make(example))
        if not subject.supports(invalid):
            continue  # outside what the implementation's binding declares it supports: not its contract
        if subject.excused(case.description, invalid):
            continue  # a recorded finding's departure (its witness is judged apart); the other cases still are
        try:
            outcome = subject.call(invalid)
        except ImplementationRaised as raised:
            subject.judged()  # the case raised; its message is judged next
            if not str(raised.original).strip():
                subject.fail(
                    f"exception message = '', but should say what is wrong [{case.description}]",
                    invalid,
                    check="message",
                )
            continue
        subject.judged()  # the case did not raise: judged, and failed
        subject.fail(
            f"result = {np.array2string(outcome.value, threshold=8)}, but should be an exception [{case.description}]",
            invalid,
            check="raises",
        )


@register("device", "CUDA and CPU agree on value and gradients", cuda_only=True)
def device(subject, data) -> None:
    example = subject.draw(data, regime="any")
    names = subject.differentiable(example)
    on_cuda = subject.call(example, grad=names)
    on_cpu = subject.call(example, grad=names, device="cpu")
    scale = subject.scale(example)
    subject.expect_close("loss on CUDA", on_cuda.value, on_cpu.value, scale, example, slack=2.0)
    with np.errstate(all="ignore"):
        grads = subject.spec.reference.grad(**example.kwargs()) if names else {}
    for name in names:
        subject.expect_close(
            f"d loss / d {name} on CUDA", on_cuda.grads[name], on_cpu.grads[name], grads[name].scale, example, slack=2.0
        )
