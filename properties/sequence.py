"""Family properties of the sequence losses (token-level cross-entropy, chunked linear cross-entropy).

Tokens are the positions of ``target``; the first argument (``logits`` (B, T, V) or ``hidden``
(N, H)) carries one row per token along its leading axes.
"""

from __future__ import annotations

import dataclasses
import functools
import inspect
from collections.abc import Callable, Iterable

import numpy as np
from hypothesis import strategies as st

from lossguard.harness.kernel import strategies as S
from lossguard.harness.kernel import tolerance
from lossguard.harness.kernel.frameworks.base import Outcome
from lossguard.harness.kernel.model import Example
from lossguard.properties.base import FLOAT64_AND_FLOAT32, first_index, numbers_at, register

CHUNK_KEYWORDS = ("chunk_size", "token_chunk_size")  # the blocking knobs of a chunked linear_cross_entropy


def _call_with(subject, fn: Callable, example: Example, grad: Iterable[str] = ()) -> Outcome:
    """Call ``fn`` in place of the implementation under test (same binding, dtype, device, parameters)."""
    subject.observations.examples += 1
    impl = dataclasses.replace(subject.impl, fn=fn)
    passed = Example(example.args, subject.received_params(example))
    return subject.binding.call(impl, subject.spec.args, passed, subject.dtype, subject.device, grad=tuple(grad))


def _representable(subject, expected) -> np.ndarray:
    expected = np.asarray(expected, dtype=np.float64)
    return tolerance.representable(expected, subject.dtype) | np.isnan(expected)


def _leak_numbers(subject, case: Example, name: str, grad: np.ndarray, rows: np.ndarray, ignored: np.ndarray):
    """``Subject.fail``'s numbers for a gradient that leaked into an ignored token: the first leaked element, its
    exact 0, and the scale of the gradient that element would get were its token counted (the token's target set to
    class 0: an ignored token's own scale is 0). A leak the size of that gradient's rounding is imprecise, a token's
    gradient leaked whole is wrong."""
    target = np.asarray(case.args["target"])
    counted = case.replace({"target": np.where(ignored, np.zeros_like(target), target)})
    with np.errstate(all="ignore"):
        scale = subject.spec.reference.grad(**counted.kwargs())[name].scale
    return numbers_at(first_index(rows & (grad != 0)), grad, 0.0, scale)


@register(
    "ignored_tokens",
    "changing ignored tokens (their logits / hidden rows, and the ignore value) changes neither the loss nor the "
    "gradient of the other tokens; the gradient at ignored tokens is exactly 0",
    dtypes=FLOAT64_AND_FLOAT32,
    checks=("value", "zero_gradient", "other_gradients"),
)
def ignored_tokens(subject, data) -> None:
    """Exact statement. Let I be the tokens whose target equals ``ignore_index`` (made non-empty by
    setting one drawn token's target to it). Replacing the rows x_i, i in I, of the first argument by
    arbitrary values and, where the implementation takes ``ignore_index``, moving the ignore value to
    another one (-7, never a class) together with the targets in I, leaves the loss (every output
    element) and the gradients of every differentiable argument at the tokens outside I unchanged (up
    to rounding), and d loss / d x_i = 0 exactly for i in I in both calls (torch's contract: ignored
    entries take no part in the value, the gradient or the mean's denominator).
    """
    example = subject.draw(data, regime="any")
    first = subject.spec.args[0]
    ignore = example.params.get("ignore_index", -100)
    target = np.array(example.args["target"], copy=True)
    target.reshape(-1)[data.draw(st.integers(0, target.size - 1), label="a token made ignored")] = ignore
    ignored = target == ignore
    example = subject.rounded(example.replace({"target": target}))
    x = example.args[first]
    rows = np.broadcast_to(ignored.reshape(ignored.shape + (1,) * (x.ndim - ignored.ndim)), x.shape)
    replacement = S.array(data.draw, x.shape, S.logits(subject.dtype, "typical"))
    changed = {first: np.where(rows, replacement, x)}
    moved_ignore = {}
    if subject.accepts("ignore_index"):
        moved_ignore = {"ignore_index": -7 if ignore != -7 else -8}
        changed["target"] = np.where(ignored, moved_ignore["ignore_index"], target)
    moved = subject.rounded(example.replace(changed, **moved_ignore))

    names = subject.differentiable(example)
    before = subject.call(example, grad=names)
    after = subject.call(moved, grad=names)
    scale = subject.scale(example) + subject.scale(moved)
    domain = _representable(subject, subject.reference(example))
    subject.expect_close(
        "loss after changing the ignored tokens", after.value, before.value, scale, moved, domain, check="value"
    )
    with np.errstate(all="ignore"):
        grads = subject.spec.reference.grad(**example.kwargs())
    for name in names:
        if name == first:
            for outcome, case in ((before, example), (after, moved)):
                leaked = outcome.grads[name][rows]
                if np.any(leaked != 0):
                    subject.fail(
                        f"d loss / d {name} at an ignored token = {leaked[leaked != 0][0]!r}, but should be exactly 0",
                        case,
                        check="zero_gradient",
                        numbers=_leak_numbers(subject, case, name, outcome.grads[name], rows, ignored),
                    )
        kept = ~rows if name == first else True
        kept = kept & tolerance.representable(grads[name].value, subject.dtype)
        subject.expect_close(
            f"d loss / d {name} after changing the ignored tokens",
            after.grads[name],
            before.grads[name],
            2.0 * grads[name].scale,
            moved,
            kept,
            check="other_gradients",
        )


@register(
    "perplexity",
    "the implementation's perplexity(logits, target, ...) = exp(mean per-token CE), not a mean of per-token exps",
    dtypes=FLOAT64_AND_FLOAT32,
)
def perplexity(subject, data) -> None:
    """Exact statement: perplexity = exp(L) with L the loss itself, the mean over the non-ignored tokens
    of their cross-entropy (Jurafsky & Martin, ch. 3); by Jensen, mean_i exp(l_i) > exp(mean_i l_i)
    whenever the tokens' losses differ. The perplexity is the ``perplexity`` attribute of the
    implementation (lossguard's own sequence_cross_entropy carries it); an implementation without
    one has no example in this property's domain. Tolerance: an absolute error e in L is a relative
    one in exp(L), so the scale is exp(L) (scale(L) + 1) (exp itself rounds once).
    """
    function = getattr(subject.impl.fn, "perplexity", None)
    subject.need(callable(function))
    example = subject.draw(data, regime="typical")
    value = _call_with(subject, function, example).value
    loss = subject.reference(example)
    with np.errstate(all="ignore"):
        expected = np.exp(loss)
        scale = expected * (subject.scale(example) + 1.0)
    subject.expect_close("perplexity", value, expected, scale, example, _representable(subject, expected))


def _chunk_keywords(fn: Callable) -> tuple[str, ...]:
    try:
        parameters = inspect.signature(fn).parameters
    except (TypeError, ValueError):
        return ()
    return tuple(k for k in CHUNK_KEYWORDS if k in parameters)


@register(
    "linear_materialised",
    "linear_cross_entropy = cross_entropy(hidden @ weight.T + bias) on the float64 logits, value and gradients, "
    "for every chunk size",
    dtypes=FLOAT64_AND_FLOAT32,
    needs=("relations.cross_entropy",),
    checks=("value", "gradient"),  # the loss for the drawn chunking; every argument's gradient
)
def linear_materialised(subject, data) -> None:
    """Exact statement: for every blocking of the computation (``chunk_size`` vocabulary entries in
    1..V+2, ``token_chunk_size`` tokens in 1..N+2, whichever of these keywords the implementation
    takes), loss(hidden, weight, target, bias) = CE(z, target) with z = hidden weight^T + bias formed
    in float64 from the inputs (the reference of the entry's ``relations.cross_entropy``), and, with
    G = dCE/dz: d/dhidden = G weight, d/dweight = G^T hidden, d/dbias = sum_n G_n. Chunking (an online
    logsumexp over vocabulary blocks, the rescaling of its running sum when the maximum grows) must
    not change the result beyond rounding: tolerances are the linear reference's error scales.
    """
    example = subject.draw(data, regime="any")
    hidden, weight = example.args["hidden"], example.args["weight"]
    bounds = {"chunk_size": weight.shape[0] + 2, "token_chunk_size": hidden.shape[0] + 2}
    # several blocks (size below the extent) half of the time, where blocking can go wrong; any size otherwise
    sizes = {
        k: data.draw(st.one_of(st.integers(1, max(1, bounds[k] - 3)), st.integers(1, bounds[k])), label=k)
        for k in _chunk_keywords(subject.impl.fn)
    }
    names = subject.differentiable(example)
    outcome = _call_with(subject, functools.partial(subject.impl.fn, **sizes), example, grad=names)
    bias = example.params.get("bias")
    logits = hidden @ weight.T + (0.0 if bias is None else bias)
    cross_entropy = subject.catalog(subject.spec.relations.cross_entropy).reference
    params = {"ignore_index": example.params.get("ignore_index", -100), "reduction": example.params["reduction"]}
    with np.errstate(all="ignore"):
        expected = cross_entropy(logits, example.args["target"], **params)
        g = cross_entropy.grad(logits, example.args["target"], **params)["input"].value
        scales = subject.spec.reference.grad(**example.kwargs())
    chunks = ", ".join(f"{k}={v}" for k, v in sizes.items()) or "default chunks"
    domain = _representable(subject, expected)
    subject.expect_close(
        f"loss ({chunks})", outcome.value, expected, subject.scale(example), example, domain, check="value"
    )
    if not np.all(tolerance.representable(expected, subject.dtype)):
        return  # where the loss overflows the dtype, autograd has no meaningful gradient to give
    materialised = {"hidden": g @ weight, "weight": g.T @ hidden, "bias": g.sum(axis=0)}
    for name in names:
        reference = materialised[name]
        subject.expect_close(
            f"d loss / d {name} ({chunks})",
            outcome.grads[name],
            reference,
            scales[name].scale,
            example,
            tolerance.representable(reference, subject.dtype),
            check="gradient",
        )
