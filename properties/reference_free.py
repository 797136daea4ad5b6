"""Reference-free properties: what lossguard judges on a loss outside its catalog (a library's Lovasz or Hausdorff
loss, a user's novel loss), where there is no float64 reference to agree with.

A loss outside the catalog is judged under its binding's free entry (``harness.app.bindings.free_entry``): the
inputs are drawn as those of a catalog entry it is ``like``, the properties are ``FREE_TAGS``. The entry still
carries that entry's reference; these properties never call it (nor ``Subject.reference``, ``Subject.scale`` or
``Subject.value``): every expected value and every error scale below comes from the implementation itself, in
float64 on the same rounded inputs (``Subject.call(..., dtype="float64")``), and from the error analysis written
next to it.

The error model (used by ``low_precision``, ``batch_independence``, ``reduction_consistency``, ``finite`` and
``gradcheck``)
---------------------------------------------------------------------------------------------------------------
Let the inputs x (every float element the implementation reads, n_in of them) be exact in dtype D (they are drawn
rounded to D), f the loss the implementation computes (n_out output elements f_k), and f_D its evaluation in D
(unit roundoff u_D). In the standard model each operation is exact up to a relative error <= u_D (Higham, Accuracy
and Stability of Numerical Algorithms, 2nd ed., sec. 2.2). Each input element reaches the result through a chain
of at most ``CHAIN`` = 8 elementary roundings (a subtraction, an exp or a log, a product, a division by the
normaliser: the tolerance policy's "handful", ``harness.kernel.tolerance``) and through the sums that reduce the
elements: a sum of n terms in any order is ``sum x_i (1 + theta_i)``, |theta_i| <= gamma_(n-1) (Higham eq. 4.4),
gamma_k = k u / (1 - k u) (Higham Lemma 3.1; products of such factors compose, Lemma 3.3). So, to first order,
f_D is f at inputs perturbed by at most gamma_m of their size, m = CHAIN + n_in + n_out, with its result perturbed
by gamma_m of its size too (a mixed forward-backward error, Higham sec. 1.5), and first-order propagation through
the implementation's own float64 gradient bounds the difference:

    |f_D(x) - f(x)| <= gamma_m(u_D) * S,    S = sum_k (|f_k(x)| + 1) + sum_i max(|x_i|, 1) |d(sum_k f_k)/dx_i|.

The size of an input, or of the result, is at least 1: a loss formula computes with constants of magnitude 1, and
an operation on one rounds on the scale 1 whatever the size of the input or the result. An input enters as 1 - y,
1 - p or 2y - 1, where the rounding moves y by u, not by u |y| (a label y = 0 perturbed relatively stays 0, but
torch's binary_cross_entropy_with_logits rounds (1 - y) z + (max(-z, 0) + log1p(exp(-|z|))), terms of size |z|
whose error reaches the loss through d f / d y = -z); a result is formed as 1 - (2I + s)/(P + Y + s), or as
log(1 + sum_j exp(z_j - max)) in a shifted log-sum-exp, with an absolute error of a few u (its argument is at least
1; Blanchard, Higham and Higham, Accurately computing the log-sum-exp and softmax functions, IMA J. Numer. Anal.
41(4), 2021), not one relative to the tiny loss of a sure, right prediction. Without the 1s the bound flags the
standard algorithms (torch's cross_entropy and binary_cross_entropy_with_logits return 0 for a loss of 1e-13 in
float32). They make the bound absolute for inputs and losses far below 1 (a mean squared error of residuals 1e-4
is judged to about u_D, not relative to its 1e-8).

S comes from the implementation itself in float64 on the same rounded inputs (its gradient with respect to the
differentiable arguments of the ``like`` entry). The bound is vacuous where m u_D >= 1 (bfloat16 with a few
hundred elements): such an element is not judged (+inf scale, ``tolerance.compare``). As in the tolerance policy,
underflow adds ``tiny_D`` per unit, and the float64 evaluation standing in for f carries gamma_m(u_64) S of its
own. It is passed to ``Subject.expect_close`` as the scale s = S (1 + u_64 / u_D) / (1 - m u_D) with the constant
K = m (slack m / the entry's K): allowed = m (u_D s + tiny_D) + 8 u_64 s >= gamma_m(u_D) S + gamma_m(u_64) S.

Where a check needs a parameter the loss does not take (``reduction``), its property discards every example
(``Subject.need``): the runner reports a skip, never a vacuous pass.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from functools import partial
from typing import Any

import numpy as np
from hypothesis import strategies as st

from lossguard.harness.kernel import tolerance
from lossguard.harness.kernel.failures import GlobalStateChanged, ImplementationRaised
from lossguard.harness.kernel.model import DTYPES, Example
from lossguard.properties.base import FLOAT64_AND_FLOAT32, FLOAT64_ONLY, NONE, register
from lossguard.properties.generic import _take

FREE_TAGS: tuple[str, ...] = (
    "finite",
    "gradcheck",
    "immutability",  # properties.generic's: it draws and calls, and never reads a reference
    "state",
    "dtype",
    "determinism",
    "batch_independence",
    "reduction_consistency",
    "low_precision",
)

LOW_PRECISION = frozenset({"float32", "float16", "bfloat16"})
CHAIN = 8  # roundings chained on each element's way into the result (the tolerance policy's default K)
U64 = tolerance.roundoff("float64")


def gamma(k: int, u: float) -> float:
    """Higham's gamma_k = k u / (1 - k u) (Lemma 3.1); +inf where k u >= 1 (no bound)."""
    return k * u / (1.0 - k * u) if k * u < 1.0 else float("inf")


# --- the implementation's own float64 result ---------------------------------------------------------------------


def _float_inputs(example: Example) -> dict[str, np.ndarray]:
    """Every float array the implementation reads (arguments and array parameters), by name."""
    return {
        k: v for k, v in example.kwargs().items() if isinstance(v, np.ndarray) and np.issubdtype(v.dtype, np.floating)
    }


def _argument(example: Example, name: str) -> np.ndarray:
    return np.asarray(example.args[name] if name in example.args else example.params[name])


@dataclass(frozen=True)
class Own:
    """The implementation's float64 result on an example (already rounded to the judged dtype): the value, the
    gradient of its summed output by input name, S (the module docstring's scale), m = CHAIN + n_in + n_out, and u,
    the unit roundoff of the dtype it returned (u_64, or float32's where a float64 input comes back float32: its
    own evaluations are no more accurate than that, a departure the dtype property judges)."""

    value: np.ndarray
    grads: Mapping[str, np.ndarray]
    scale: float
    m: int
    u: float = U64

    def allowance(self, dtype: str, copies: int = 1) -> tuple[float, float]:
        """(scale, K) for ``Subject.expect_close`` bounding ``copies`` evaluations in ``dtype``, each within
        gamma_m(u_D) S, and the float64 evaluation standing in for the exact one (gamma_m(u_64) S):
        K (u_D s + tiny_D) >= copies gamma_m(u_D) S + gamma_m(u_64) S with s = S (1 + u_64/u_D) / (1 - m u_D)."""
        u = tolerance.roundoff(dtype)
        if self.m * u >= 1.0 or not np.isfinite(self.scale):
            return float("inf"), float(copies * self.m)
        return self.scale * (1.0 + U64 / u) / (1.0 - self.m * u), float(copies * self.m)


def own_float64(subject, example: Example) -> Own:
    """The implementation itself in float64 on ``example`` (rounded to the subject's dtype), with the gradient of
    its summed output with respect to the differentiable arguments (the ``like`` entry's: a weight is a parameter,
    its rounding one of the chained roundings of its product): the value and scale the reference-free checks use.
    n_in counts every float element read (each is summed somewhere)."""
    names = subject.differentiable(example)
    outcome = subject.call(example, grad=names, dtype="float64")
    value = np.asarray(outcome.value, dtype=np.float64)
    with np.errstate(all="ignore"):
        sensitivity = sum(
            float(np.sum(np.maximum(np.abs(_argument(example, k)), 1.0) * np.abs(outcome.grads[k]))) for k in names
        )
        scale = float(np.sum(np.abs(value) + 1.0)) + sensitivity
    n_in = sum(x.size for x in _float_inputs(example).values())
    u = max(U64, tolerance.roundoff(outcome.dtype)) if outcome.dtype in DTYPES else U64
    return Own(value, outcome.grads, scale if np.isfinite(scale) else float("inf"), CHAIN + n_in + value.size, u)


def yardstick(subject, example: Example) -> Own | None:
    """``own_float64`` as a run's yardstick; in a run of a lower dtype, None where the float64 call raises: that run
    has no yardstick and judges nothing, saying why (the float64 runs report the exception)."""
    try:
        return own_float64(subject, example)
    except ImplementationRaised as raised:
        if subject.dtype == "float64":
            raise  # the judged dtype itself: an error of the run
        subject.unjudgeable(
            f"the implementation raised in float64 ({raised}), the yardstick the reference-free checks in "
            f"{subject.dtype} judge it against"
        )
        return None


def _expect_within(
    subject, what: str, actual, expected, own: Own, example: Example, check: str, copies: int = 1, mask=None
) -> None:
    """``actual`` (in the subject's dtype) within ``copies`` gamma_m(u_D) S of ``expected`` (module docstring),
    where ``mask``."""
    scale, k = own.allowance(subject.dtype, copies)
    subject.expect_close(what, actual, expected, scale, example, mask=mask, slack=k / subject.spec.ulps, check=check)


# --- finite ------------------------------------------------------------------------------------------------------


def _empty_mean(subject, example: Example, value: np.ndarray) -> bool:
    """A 'mean' over no contributing element (every target ignored): NaN by the catalog's convention
    (docs/LOSSES.md, as in PyTorch), recognised by the 'sum' of the same example being exactly 0."""
    if example.params.get("reduction") != "mean" or not subject.accepts("reduction") or not np.all(np.isnan(value)):
        return False
    total = subject.call(example.replace(reduction="sum"), requires_grad=False).value
    return bool(np.all(total == 0.0))


def _expect_finite(subject, what: str, actual: np.ndarray, must: np.ndarray, own, example: Example, check: str):
    """Fail where ``must`` holds but ``actual`` is not finite; ``own``: the float64 values shown beside it."""
    subject.same_shape(what, actual, must, example, check)
    actual = np.broadcast_to(np.asarray(actual), np.shape(must))
    subject.judged(int(np.count_nonzero(must)))
    bad = must & ~np.isfinite(actual)
    if np.any(bad):
        index = tuple(int(i) for i in np.argwhere(bad)[0])
        where = f" at index {index}" if index else ""
        shown = "" if own is None else f" [the implementation's own float64 result there: {own[index]!r}]"
        subject.fail(
            f"{what}{where} = {actual[index]!r}, but should be finite{shown}",
            example,
            check=check,
            # the non-finite value and the yardstick standing in for the exact one (unknown in float64 itself)
            numbers=(float(actual[index]), None if own is None else float(own[index]), None),
        )


@register(
    "finite",
    "finite loss and gradients on finite inputs, typical and extreme (gradients where the loss has a finite slope; "
    "below float64: where the implementation's own float64 results, plus their error allowance, are representable)",
    checks=("value", "gradient"),
)
def finite(subject, data) -> None:
    """float64: the value is finite, always (a 'mean' over no contributing element aside, ``_empty_mean``), and so
    is the gradient of every differentiable argument, except at an element where the loss has no finite derivative
    (``_unbounded_slopes``: x log x at x = 0, sqrt at 0; the contract of such a loss, a KL divergence at a target
    of 0, cannot ask for one). A lower dtype D: finite where the implementation's own float64
    value plus its allowance (module docstring) lies within D's range (a result within its allowed error of the
    overflow threshold may round to infinity), and where its float64 gradient times (1 + gamma_m(u_D)) does (the
    gradient's terms have no scale without second derivatives: its allowance is taken relative), unless the value
    itself may overflow: the gradient of the summed loss passes through every output element, and backward through
    an infinite one gives inf - inf (a signal-to-noise distance of 3.6e51 in float32: NaN in every element)."""
    example = subject.draw(data, regime="any")
    names = subject.differentiable(example)
    outcome = subject.call(example, grad=names)
    if subject.dtype == "float64":
        subject.need(not _empty_mean(subject, example, outcome.value))
        _expect_finite(subject, "loss", outcome.value, np.ones(np.shape(outcome.value), bool), None, example, "value")
        for name in names:
            grad = outcome.grads[name]
            must = ~_unbounded_slopes(subject, example, name, ~np.isfinite(grad))
            _expect_finite(subject, f"d loss / d {name}", grad, must, None, example, "gradient")
        return
    own = yardstick(subject, example)
    if own is None:
        return
    scale, k = own.allowance(subject.dtype)
    with np.errstate(all="ignore"):
        allowed = tolerance.compare(own.value, own.value, scale, subject.dtype, k).allowed
        must = tolerance.representable(np.abs(own.value) + allowed, subject.dtype)
    _expect_finite(subject, "loss", outcome.value, must, own.value, example, "value")
    if not np.all(must):
        return  # the loss itself may overflow D: its gradient is the derivative of an infinity, nothing is asked
    relative = 1.0 + gamma(own.m, subject.u)
    for name in names:
        exact = own.grads[name]
        with np.errstate(all="ignore"):
            must = tolerance.representable(np.abs(exact) * relative, subject.dtype)
        _expect_finite(subject, f"d loss / d {name}", outcome.grads[name], must, exact, example, "gradient")


# Probes of a one-sided slope: steps h_k relative to max(|x_i|, 1), each 2^-8 times the last. A finite derivative
# g makes the difference quotient q(h) = g + O(h), so successive quotients differ by at most a 2^-8 fraction of the
# previous difference; x log x (q = log h + 1) differs by 8 ln 2 at every step and sqrt (q = h^-1/2) by 16 times more
# at each. The quotient is summed from the output elements' own differences, so that elements the move leaves
# unchanged add no rounding: its noise is u_64 (|f_k(x)| + |f_k(x + h)|) / h over the changed elements only.
SLOPE_STEPS = (2.0**-8, 2.0**-16, 2.0**-24, 2.0**-32)
SLOPE_PROBES = 8  # non-finite gradient elements probed per argument (the first, and evenly spaced after it)


def _float64_value(subject, example: Example) -> np.ndarray:
    """The implementation's float64 output alone (no gradient computed)."""
    return np.asarray(subject.call(example, requires_grad=False, dtype="float64").value, dtype=np.float64)


def _inside(subject, example: Example, evaluate: Callable[[Example], Any]) -> Any:
    """``evaluate(example)`` (an output, or an ``Own``) at a point a property moved to; None where that point leaves
    what the implementation supports, makes it raise or gives a non-finite loss (the move left the loss's domain: a
    probability past 1): nothing is judged from it."""
    if not subject.supports(example):
        return None
    try:
        result = evaluate(example)
    except ImplementationRaised:
        return None
    return result if np.all(np.isfinite(result.value if isinstance(result, Own) else result)) else None


def _diverges(subject, example: Example, name: str, index: tuple[int, ...], base: np.ndarray) -> bool:
    """True where a one-sided difference quotient of the summed loss in element ``index`` of ``name`` grows without
    bound as the step shrinks (on either side where the loss is finite at every probe): the quotients move in one
    direction, no step's change is below half the last one (a finite derivative shrinks it 256-fold), and the last
    change is 16 times float64's rounding noise at the two smallest steps."""
    x = _argument(example, name)
    value = partial(_float64_value, subject)
    unit = np.zeros(x.shape)
    unit[index] = max(abs(float(x[index])), 1.0)
    for side in (1.0, -1.0):
        probes = [_inside(subject, _moved(example, {name: unit}, side * h), value) for h in SLOPE_STEPS]
        if any(p is None or p.shape != base.shape for p in probes):
            continue
        q = np.array([float(np.sum(p - base)) / (side * h) for p, h in zip(probes, SLOPE_STEPS, strict=True)])
        noise = sum(
            U64 * float(np.sum(np.where(p != base, np.abs(base) + np.abs(p), 0.0))) / h
            for p, h in zip(probes[-2:], SLOPE_STEPS[-2:], strict=True)
        )
        changes = np.diff(q)
        steady = np.all(np.sign(changes) == np.sign(changes[-1])) and np.all(
            np.abs(changes[1:]) >= 0.5 * np.abs(changes[:-1])
        )
        if steady and abs(changes[-1]) > 16.0 * noise:
            return True
    return False


def _unbounded_slopes(subject, example: Example, name: str, suspect: np.ndarray) -> np.ndarray:
    """The elements of ``suspect`` (where the float64 gradient with respect to ``name`` is not finite) at which the
    loss has no finite derivative (``_diverges``). At most ``SLOPE_PROBES`` of them are probed (the first one, and
    evenly spaced after it): if every probed one diverges the rest are taken to share that cause, as they share the
    gradient's failure; otherwise the suspects that do not diverge stay suspects and are judged."""
    unbounded = np.zeros(suspect.shape, bool)
    where = [tuple(int(i) for i in w) for w in np.argwhere(suspect)]
    base = _inside(subject, example, partial(_float64_value, subject)) if where else None
    if base is None:
        return unbounded
    probed = [where[int(k)] for k in np.unique(np.linspace(0, len(where) - 1, SLOPE_PROBES).astype(int))]
    diverging = [index for index in probed if _diverges(subject, example, name, index, base)]
    if len(diverging) == len(probed):
        return suspect.copy()
    for index in diverging:
        unbounded[index] = True
    return unbounded


# --- moving along a direction ------------------------------------------------------------------------------------


def _direction(rng: np.random.Generator, x: np.ndarray) -> np.ndarray:
    """A random direction relative to each element's magnitude: v_i = z_i max(|x_i|, 1), z standard normal (the
    fast mode of ``torch.autograd.gradcheck``, scaled so that a logit of 1e4 and a probability of 1e-30 both move)."""
    return rng.standard_normal(np.shape(x)) * np.maximum(np.abs(x), 1.0)


def _moved(example: Example, directions: Mapping[str, np.ndarray], t: float) -> Example:
    """``example`` with each argument named in ``directions`` moved by ``t`` times its direction."""
    args = {k: _argument(example, k) + t * v for k, v in directions.items() if k in example.args}
    params = {k: _argument(example, k) + t * v for k, v in directions.items() if k not in example.args}
    return example.replace(args, **params)


# --- gradcheck ---------------------------------------------------------------------------------------------------

STEP = 2.0**-7  # h, along v (relative to max(|x_i|, 1)), at the first scale
SCALES = tuple(STEP * 2.0 ** (-6 * k) for k in range(5))  # 2^-7 ... 2^-31, while a smaller step tightens the judgement
KINK = 0.25  # kappa: an h^4 term above a quarter of the h^2 term says the step straddles a kink


@dataclass(frozen=True)
class _Differences:
    """What the central differences at one step say of the slope along v: the Richardson estimate R2, the
    step-dependent part of the allowance (truncation |R1 - R2| and the kink term) and the rest (rounding of the
    differences, autograd's own error)."""

    step: float
    estimate: float
    truncation: float
    kink: float
    rounding: float
    autograd: float

    @property
    def allowed(self) -> float:
        return self.truncation + self.rounding + self.kink + self.autograd


def _differences(subject, example: Example, own: Own, name: str, v: np.ndarray, step: float) -> _Differences | None:
    """The central differences along v at ``step``, h/2 and h/4 (``gradcheck``'s docstring); None where a moved
    point leaves the loss's domain, or a kink lies within the step or at x (nothing judged at this step)."""
    steps = (step, step / 2, step / 4)
    moved = partial(own_float64, subject)
    points = [_inside(subject, _moved(example, {name: v}, sign * h), moved) for h in steps for sign in (1.0, -1.0)]
    if any(point is None for point in points):
        return None
    centre = float(np.sum(own.value))
    plus = [float(np.sum(point.value)) for point in points[0::2]]
    minus = [float(np.sum(point.value)) for point in points[1::2]]
    eps = gamma(own.m, own.u) * max(point.scale for point in points)  # the six moved evaluations: D, R1, R2
    eps_x = max(eps, gamma(own.m, own.u) * own.scale)  # E(h) also takes f(x)
    d = [(p - q) / (2 * h) for p, q, h in zip(plus, minus, steps, strict=True)]
    e = [p + q - 2 * centre for p, q in zip(plus, minus, strict=True)]
    r1, r2 = (4 * d[1] - d[0]) / 3, (4 * d[2] - d[1]) / 3
    odd = abs(r1 - r2) <= KINK * abs(d[0] - d[1]) + 9 * eps / step
    even = all(abs(e[k] - 4 * e[k + 1]) <= KINK * abs(e[k]) + 20 * eps_x for k in (0, 1))
    if not (odd and even):
        return None  # a kink within the step (a sort, a relu, a clamp): the differences bound nothing here
    jump = [abs(e[0] - 4 * e[1]) / (2 * step), abs(e[1] - 4 * e[2]) / step]  # K1, K2 (docstring)
    if jump[1] > 30 * eps_x / step and jump[0] < 4 * jump[1]:
        return None  # a kink at x: autograd's subgradient is either one-sided slope
    grad = own.grads[name]
    return _Differences(
        step=step,
        estimate=r2,
        truncation=abs(r1 - r2),
        kink=jump[1] + abs(jump[0] - jump[1]) + 30 * eps_x / step,
        rounding=6 * eps / step,
        autograd=gamma(own.m, own.u) * (float(np.sum(np.abs(v * grad))) + own.scale),
    )


@register(
    "gradcheck",
    "autograd gradient along a random direction agrees with the implementation's own Richardson-extrapolated "
    "central differences (float64), wherever the step straddles no kink",
    dtypes=FLOAT64_ONLY,
    checks=("first_argument", "other_arguments"),
)
def gradcheck(subject, data) -> None:
    """Per differentiable argument x, a random direction v (``_direction``), f = the summed output, A = v . grad f
    (autograd), against central differences D(h) = (f(x + h v) - f(x - h v)) / 2h at h, h/2, h/4, with h = 2^-7 first,
    then 2^-13, 2^-19, 2^-25 and 2^-31 while a smaller step would tighten the judgement (below), the tightest judging.

    Truncation: D(h) = g + a h^2 + b h^4 + ..., so the Richardson estimates R1 = (4 D(h/2) - D(h)) / 3 and
    R2 = (4 D(h/4) - D(h/2)) / 3 are g - b h^4 / 4 and g - b h^4 / 64: |R2 - g| = |R1 - R2| / 15 <= |R1 - R2|.
    Rounding: each evaluation of f errs by at most eps = gamma_m(u) max S, u = u_64 (or the unit roundoff of
    the dtype a float64 input comes back in, ``Own``) (module docstring; S at each of the
    six moved points, from the implementation's value and gradient there: a huge input moved by h of itself makes
    f(x +- h v) far larger than f(x)), so D(h / 2^k) errs by 2^k eps / h, R2 by 6 eps / h, R1 - R2 by 9 eps / h:
    the O(u |f| / h) rounding against the O(h^4) truncation. The differences D never take f(x): its own S (huge
    where f is ill-conditioned at x, a scale-invariant loss at an input of norm 1e-16) enters only the even part
    E below, as eps_x = max(eps, gamma_m(u) S(x)), never the allowance of the odd one, which it would make
    vacuous. Autograd's own error: gamma_m(u) (sum |v_i g_i| +
    S) (its terms are the derivatives of the value's along v, and v scales with x).

    Smooth at this step (otherwise not judged): |R1 - R2| <= kappa |D(h) - D(h/2)| + 9 eps / h (the h^4 term small
    beside the h^2 term: the expansion holds, no kink between x - h v and x + h v) and, for the even part
    E(h) = f(x + h v) + f(x - h v) - 2 f(x) = f'' h^2 + O(h^4), |E(h) - 4 E(h/2)| <= kappa |E(h)| + 20 eps_x at both
    pairs of steps (a kink at x itself leaves every D(h) equal to the mean one-sided slope, but makes E(h) linear
    in h); kappa = 1/4. A kink at x whose jump J of the one-sided slopes is small beside the curvature passes that
    test, and autograd may give either slope, J / 2 from every D(h). With one-sided expansions f_+- = f(x) +
    s_+- t + c_+- t^2 / 2 + d_+- t^3 / 6, E(h) - 4 E(h/2) = -J h + (d_+ - d_-) h^3 / 12, so K1 = |E(h) - 4 E(h/2)| /
    2h and K2 = |E(h/2) - 4 E(h/4)| / h are |J| / 2 + O(h^2) (ratio near 1), while a smooth f makes them
    f'''' h^3 / 32 and f'''' h^3 / 256 (ratio 8): K2 above its rounding (30 eps_x / h) with K1 < 4 K2 is a kink at
    x, not judged. Otherwise the allowance adds K2 + |K1 - K2| + 30 eps_x / h (a jump below rounding, |J| / 2 =
    K2 - (K1 - K2) / 3, or the smooth remainder). One-sided curvatures also put a term in h into D(h), which R1 - R2
    carries whole (R2 - m = R1 - R2 to that order). Judged: |A - R2| <= |R1 - R2| + 6 eps / h + that allowance +
    autograd's error, where the allowance is below max(|A|, |R2|) (a step whose
    rounding swamps the slope judges nothing, nor one that leaves the loss's domain, ``_inside``).

    Steps: the truncation and kink terms shrink with h (as h^4 and h), the rounding terms grow as 1 / h. A step wide
    beside the loss's own features (an input of norm 1e-4 of a scale-invariant loss, a kink 1e-3 away) leaves a
    truncation that hides a relative error of 2^-10, or straddles the kink and judges nothing; so while the
    step-dependent terms exceed the others (rounding and autograd's own), the next step, 2^6 times smaller, is
    tried (truncation 2^24 times smaller, rounding 2^6 times larger), and the smallest allowance of the smooth
    steps judges. A loss smooth on the scale of 2^-7 stops at the first or second step."""
    example = subject.draw(data, regime="any")
    names = subject.differentiable(example)
    subject.need(bool(names))
    own = own_float64(subject, example)  # the subject's dtype is float64: this is the call whose gradient is judged
    subject.need(bool(np.all(np.isfinite(own.value))))  # finite judges a non-finite loss
    rng = np.random.default_rng(data.draw(st.integers(0, 2**32 - 1), label="direction seed"))
    for name in names:
        check = "first_argument" if name == subject.spec.differentiable[0] else "other_arguments"
        v = _direction(rng, _argument(example, name))
        best = None
        for step in SCALES:
            at = _differences(subject, example, own, name, v, step)
            if at is not None and (best is None or at.allowed < best.allowed):
                best = at
            if best is not None and best.truncation + best.kink <= best.rounding + best.autograd:
                break  # a smaller step would only add rounding
        actual = float(np.sum(v * own.grads[name]))
        if best is None or best.allowed >= max(abs(actual), abs(best.estimate)):
            continue  # every step straddles a kink, or its rounding (or a kink's jump) swamps the slope
        subject.judged()
        if not abs(actual - best.estimate) <= best.allowed:
            subject.fail(
                f"d loss / d {name} along a random direction = {actual!r}, but should be {best.estimate!r} [the "
                f"implementation's own central differences at h = {best.step:g}, h/2, h/4, Richardson-extrapolated; "
                f"error {abs(actual - best.estimate):.3g} > {best.allowed:.3g} allowed (truncation "
                f"{best.truncation:.3g}, rounding {best.rounding:.3g}, a kink at x {best.kink:.3g}, autograd's own "
                f"{best.autograd:.3g})]",
                example,
                check=check,
                # the autograd slope, the extrapolated one, and the size of the terms of v . grad (sum |v_i g_i|)
                numbers=(actual, best.estimate, float(np.sum(np.abs(v * own.grads[name])))),
            )


# --- global state, output dtype, determinism ---------------------------------------------------------------------


@register(
    "state",
    "a call leaves the global state alone: the random-number generators, and the framework's settings (default "
    "dtype, grad mode, threads, deterministic algorithms, anomaly detection)",
    examples=0.25,
    checks=("rng", "settings"),
)
def state(subject, data) -> None:
    """The framework binding compares the global state before and after every call (``GlobalStateChanged``); this
    property makes one call whose only judgement is that comparison, and names the sub-check (the binding compares
    around the forward call; the gradient it computes afterwards is not watched).
    In every dtype: a half-precision path may touch state the float64 one does not."""
    example = subject.draw(data, regime="typical")
    try:
        subject.call(example, grad=subject.differentiable(example))
    except GlobalStateChanged as changed:
        check = "rng" if "random-number-generator" in str(changed) else "settings"
        subject.fail(f"global state after the call = changed ({changed}), but should be unchanged", example, check)
    subject.judged()


@register(
    "dtype",
    "the output's dtype is the input dtype (or the binding's dtype policy), in every dtype",
    examples=0.25,
    checks=("output",),
)
def dtype(subject, data) -> None:
    example = subject.draw(data, regime="typical")
    outcome = subject.call(example)
    promised = subject.impl.output_dtype(subject.dtype)
    subject.judged()
    if outcome.dtype != promised:
        why = "the input dtype" if promised == subject.dtype else f"its binding's dtype policy for {subject.dtype}"
        subject.fail(f"output dtype = {outcome.dtype}, but should be {promised} [{why}]", example, check="output")


def _expect_identical(subject, what: str, second: np.ndarray, first: np.ndarray, example: Example, check: str):
    """``second`` bitwise equal to ``first`` (NaN matches NaN; the sign of zero counts)."""
    subject.same_shape(what, second, first, example, check)
    second, first = np.asarray(second, dtype=np.float64), np.asarray(first, dtype=np.float64)
    subject.judged(first.size)
    same = ((second == first) & (np.signbit(second) == np.signbit(first))) | (np.isnan(second) & np.isnan(first))
    if not np.all(same):
        index = tuple(int(i) for i in np.argwhere(~same)[0]) if same.ndim else ()
        where = f" at index {index}" if index else ""
        subject.fail(
            f"{what} of a second call{where} = {second[index]!r}, but should be {first[index]!r} [the first call's, "
            "bitwise: same inputs, same device]",
            example,
            check=check,
            numbers=(float(second[index]), float(first[index]), None),  # weighed against the first call's value
        )


@register(
    "determinism",
    "two calls on the same inputs give bitwise identical values and gradients (CPU)",
    examples=0.5,
    checks=("value", "gradient"),
)
def determinism(subject, data) -> None:
    """CPU only (CUDA kernels may accumulate with atomics): on another device every example is discarded."""
    subject.need(subject.device == "cpu")
    example = subject.draw(data, regime="any")
    names = subject.differentiable(example)
    first = subject.call(example, grad=names)
    second = subject.call(example, grad=names)
    _expect_identical(subject, "loss", second.value, first.value, example, "value")
    for name in names:
        _expect_identical(subject, f"d loss / d {name}", second.grads[name], first.grads[name], example, "gradient")


# --- reductions --------------------------------------------------------------------------------------------------


@register(
    "batch_independence",
    "reduction='none' gives one value per sample: row i of the batch equals row i computed alone",
    dtypes=FLOAT64_AND_FLOAT32,
    checks=("row",),
)
def batch_independence(subject, data) -> None:
    """Only where the loss takes ``reduction`` and its 'none' output has one row per sample (the batch axis first;
    a row computed alone gives one row): otherwise every example is discarded. Both results are evaluations in D
    of the same row: each within gamma_m(u_D) S_i of it (module docstring; S_i and m from the row alone in
    float64), so they differ by at most 2 gamma_m(u_D) S_i."""
    subject.need(subject.takes("reduction", NONE))
    example = subject.draw(data, regime="typical", reduction=NONE)
    first = subject.spec.args[0]
    n = np.shape(example.args[first])[0] if np.ndim(example.args[first]) else 0
    subject.need(n >= 2 and all(np.ndim(a) and np.shape(a)[0] == n for a in example.args.values()))
    full = subject.call(example).value
    subject.need(full.ndim >= 1 and full.shape[0] == n)
    alone = [_take(example, first, slice(i, i + 1), n) for i in range(n)]
    rows = [subject.call(row).value for row in alone]
    subject.need(all(row.shape == (1, *full.shape[1:]) for row in rows))  # else 'none' is not one value per sample
    for i, (row, value) in enumerate(zip(alone, rows, strict=True)):
        own = yardstick(subject, row)
        if own is None:
            return
        _expect_within(subject, f"row {i} of the batch", full[i], value[0], own, row, "row", copies=2)


@register(
    "reduction_consistency",
    "'sum' is the sum of 'none' and 'mean' its mean",
    dtypes=FLOAT64_AND_FLOAT32,
    checks=("sum", "mean"),
)
def reduction_consistency(subject, data) -> None:
    """Only where the loss takes ``reduction``. 'sum' and the float64 sum of the 'none' values in D are each within
    gamma_m(u_D) S of the exact sum (module docstring; S and m from 'none' in float64; the float64 sum of n_out
    values adds n_out u_64 sum |f_k|, within the float64 allowance): at most 2 gamma_m(u_D) S apart. 'mean': that
    bound divided by n_out, one more rounding (the division): 2 gamma_(m+1)(u_D) S / n_out. The mean is the plain
    mean of the 'none' elements (the catalog's default): a loss whose 'mean' is weighted (PyTorch's class weights,
    ignored targets) follows another convention, which its binding must leave unexercised."""
    subject.need(subject.accepts("reduction"))
    example = subject.draw(data, regime="typical", reduction=NONE)
    none = subject.call(example).value
    subject.need(none.size > 0)
    own = yardstick(subject, example)
    if own is None:
        return
    as_sum, as_mean = example.replace(reduction="sum"), example.replace(reduction="mean")
    total = subject.call(as_sum).value
    _expect_within(subject, "'sum'", total, np.sum(none), own, as_sum, "sum", copies=2)
    per_element = Own(own.value, own.grads, own.scale / none.size, own.m + 1)
    mean = subject.call(as_mean).value
    _expect_within(subject, "'mean'", mean, np.mean(none), per_element, as_mean, "mean", copies=2)


# --- low precision -----------------------------------------------------------------------------------------------


@register(
    "low_precision",
    "the loss in float32, float16 or bfloat16 agrees with the implementation itself in float64 on the same rounded "
    "inputs within gamma_m(u_D) (|f| + 1 + sum max(|x_i|, 1) |df/dx_i|), m = 8 + the elements read and summed",
    dtypes=LOW_PRECISION,
    checks=("value",),
)
def low_precision(subject, data) -> None:
    """|f_D - f_64| <= gamma_m(u_D) S (+ the float64 value's own gamma_m(u_64) S and tiny_D per unit): the module
    docstring's bound. What it catches: accuracy lost in D beyond the first-order bound of an algorithm whose
    rounding acts on its inputs and result (an exp that overflows D, a log-sum-exp without its shift, a sum
    accumulated past D's range, an intermediate that underflows). An algorithm that cancels terms larger than its
    inputs and result (x^2 - 2 x y + y^2 for (x - y)^2) fails it in every precision low enough to show it. On a
    scalar loss (a reduction of 'mean' or 'sum' where it takes one): S needs the gradient of the judged value
    itself, and the binding differentiates the summed output only, so a vector output's elements would share one S
    that cancellation between them could make too small (such examples are discarded). A value of f outside D's
    range is not judged (``finite`` judges it)."""
    pinned = {}
    if subject.accepts("reduction"):
        pinned["reduction"] = data.draw(st.sampled_from(("mean", "sum")), label="reduction")
    example = subject.draw(data, regime="any", **pinned)
    outcome = subject.call(example)
    subject.need(np.size(outcome.value) == 1)
    own = yardstick(subject, example)
    if own is None:
        return
    mask = tolerance.representable(own.value, subject.dtype)
    _expect_within(subject, "loss", outcome.value, own.value, own, example, "value", mask=mask)
