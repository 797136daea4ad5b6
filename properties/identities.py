"""Family identities: exact mathematical relations a correct implementation satisfies.

Each is stated exactly where the sources state it loosely (the exact form is in the docstring);
the side that is not the implementation under test is the float64 reference of the catalog.
"""

from __future__ import annotations

import numpy as np
from hypothesis import strategies as st
from scipy.special import expit, log_softmax, logsumexp, softmax, xlogy

from lossguard.harness.kernel.model import BINARY, Example
from lossguard.properties.base import FLOAT64_AND_FLOAT32, NONE, first_index, increase_numbers, numbers_at, register


def _requires(subject, *params: str) -> None:
    """The identity needs ``params`` and per-element values: reduction='none', asked for or the binding's fixed
    value (every identity here compares per-element outputs)."""
    subject.need(all(subject.accepts(p) for p in params) and subject.takes("reduction", NONE))


def _class_axis(z: np.ndarray) -> int:
    return 0 if np.ndim(z) == 1 else 1


def _onehot(target: np.ndarray, z: np.ndarray) -> np.ndarray:
    """Class indices as probabilities shaped like the logits ``z`` (class axis 1, or 0 unbatched)."""
    eye = np.eye(np.shape(z)[_class_axis(z)])[np.asarray(target)]
    return eye if np.ndim(z) == 1 else np.moveaxis(eye, -1, 1)


@register(
    "huber_limits",
    "delta >= max|e|: huber = 0.5 e^2 exactly; |huber/delta - |e|| <= delta/2 for |e| > delta",
    checks=("quadratic", "linear"),
)
def huber_limits(subject, data) -> None:
    """The limits delta -> inf and delta -> 0 of the seeds, in their exact finite form."""
    _requires(subject, "delta")
    example = subject.draw(data, regime="typical", reduction=NONE)
    e = example.args["input"] - example.args["target"]
    wide = subject.rounded(example.replace(delta=float(2 * np.max(np.abs(e)) + 1.0)))
    quadratic = 0.5 * e * e
    subject.expect_close(
        "huber with delta > max|e|", subject.value(wide), quadratic, subject.scale(wide), wide, check="quadratic"
    )
    subject.need(bool(np.all(np.abs(e) > 0)))
    delta = float(1e-3 * np.min(np.abs(e)))
    narrow = example.replace(delta=delta)
    value = subject.value(narrow)
    scale = subject.scale(narrow)
    slack = 0.5 * delta * delta + subject.compare(value, delta * np.abs(e), scale).allowed
    outside = np.abs(value - delta * np.abs(e)) > slack
    if np.any(outside):
        # the value, the end of [delta |e| - delta^2/2, delta |e| + delta^2/2] it passed, the scale compared with
        bound = delta * np.abs(e) + np.where(value > delta * np.abs(e), 0.5, -0.5) * delta * delta
        subject.fail(
            f"huber = {value.tolist()}, but should be within delta^2/2 of delta |e| = {(delta * np.abs(e)).tolist()}",
            narrow,
            check="linear",
            numbers=numbers_at(first_index(outside), value, bound, scale),
        )


@register(
    "huber_smooth_l1",
    "huber(delta = d) = d * smooth_l1(beta = d) for d > 0",
    needs=("relations.rescaled",),
)
def huber_smooth_l1(subject, data) -> None:
    """The entry states the relation (``relations.rescaled``): L(param = d) = d^power * other(other_param = d);
    huber_loss is smooth_l1_loss rescaled by delta (power 1), smooth_l1_loss huber_loss by 1 / beta (power -1).
    The implementation times d^-power is compared with the other entry's float64 reference."""
    rescaled = subject.spec.relations.rescaled
    _requires(subject, rescaled.param)
    example = subject.draw(data, regime="typical", reduction=NONE)
    d = example.params[rescaled.param]
    subject.need(d > 0)
    other = subject.catalog(rescaled.entry)
    counterpart = example.replace(**{rescaled.entry_param: d}).params
    counterpart = {k: v for k, v in counterpart.items() if k in other.params}
    other_example = example.__class__(example.args, counterpart)
    mine = subject.value(example)
    theirs = subject.reference(other_example, other)
    factor = d**-rescaled.power if rescaled.power < 0 else 1.0 / d**rescaled.power
    subject.expect_close(
        f"{subject.spec.name} x {factor:g}",
        mine * factor,
        theirs,
        subject.scale(example) * abs(factor),
        example,
        slack=2.0,
    )


@register("quantile_median", "quantile_loss(tau = 0.5) = 0.5 * l1_loss")
def quantile_median(subject, data) -> None:
    _requires(subject)
    example = subject.draw(data, regime="typical", reduction=NONE, tau=0.5)
    subject.need(example.params["tau"] == 0.5)
    half_l1 = 0.5 * np.abs(example.args["input"] - example.args["target"])
    subject.expect_close("quantile at tau = 0.5", subject.value(example), half_l1, subject.scale(example), example)


def _hard_targets(example):
    """The example with class-index targets and none ignored: probabilities become their argmax,
    ignored positions class 0 (constructing the domain instead of filtering for it)."""
    z = example.args["input"]
    target = np.asarray(example.args["target"])
    if np.issubdtype(target.dtype, np.floating):
        target = np.argmax(target, axis=_class_axis(z))
    ignore = example.params.get("ignore_index", -100)
    return example.replace({"target": np.where(target == ignore, 0, target)}, ignore_index=-100)


@register(
    "label_smoothing",
    "CE_eps = (1 - eps) CE + eps mean_c(-log p_c); grows with eps when right; minimiser -> uniform",
    checks=("decomposition", "grows", "minimiser"),
)
def label_smoothing(subject, data) -> None:
    """Exact forms. Decomposition: the eps/C smoothed target gives CE_eps = (1 - eps) CE + eps U with
    U = mean_c(-log p_c). Direction: dCE_eps/deps = U - CE > 0 iff the true class has the largest
    probability, so the loss strictly grows with eps for a correct argmax. Minimiser: CE_eps(., y) is
    minimised where softmax(z) = t_eps; at that z, the eps' > eps gradient has a positive true-class
    component and negative others, so descent moves the logits towards uniform.
    """
    _requires(subject, "label_smoothing")
    example = _hard_targets(subject.draw(data, regime="typical", reduction=NONE, label_smoothing=0.0, weight=None))
    z = example.args["input"]
    axis = _class_axis(z)
    eps = data.draw(st.floats(0.01, 0.8), label="eps")
    smoothed = subject.rounded(example.replace(label_smoothing=eps))
    uniform = -np.mean(log_softmax(z, axis=axis), axis=axis)
    expected = (1 - eps) * subject.value(example) + eps * uniform
    subject.expect_close(
        "CE with label smoothing",
        subject.value(smoothed),
        expected,
        subject.scale(smoothed),
        smoothed,
        check="decomposition",
    )

    confident = subject.spec.perfect(example, 1.0)
    steps = (0.0, 0.2, 0.5, 0.9)
    values = [subject.value(confident.replace(label_smoothing=e)) for e in steps]
    for k, (low, high, e) in enumerate(zip(values, values[1:], steps[1:], strict=False)):
        if np.any(high <= low):
            subject.fail(
                f"CE at eps = {e} = {high.tolist()}, but should exceed {low.tolist()} [right, confident]",
                confident,
                check="grows",
                numbers=increase_numbers(
                    subject,
                    subject.rounded(confident.replace(label_smoothing=steps[k])),
                    subject.rounded(confident.replace(label_smoothing=e)),
                    high - low,
                    high <= low,
                ),
            )

    y = np.asarray(example.args["target"]).reshape(-1)[0]
    n_classes = np.shape(z)[axis]
    target = (1 - eps) * np.eye(n_classes)[y] + eps / n_classes
    at_minimum = example.replace(
        {
            "input": np.log(target).reshape((n_classes,) if np.ndim(z) == 1 else (1, n_classes)),
            "target": np.asarray(y if np.ndim(z) == 1 else [y]),
        },
        label_smoothing=min(1.0, eps + 0.1),
        reduction="sum",
    )
    at_minimum = subject.rounded(at_minimum)
    grad = subject.call(at_minimum, grad=("input",)).grads["input"].reshape(-1)
    others = np.delete(grad, y)
    if not (grad[y] > 0 and np.all(others < 0)):
        # a sign compared with 0 is violated by any amount at all: weighed instead is the offending component's
        # departure from its exact value, against that gradient's scale
        wrong_sign = np.where(np.arange(grad.size) == y, grad <= 0, grad >= 0)
        with np.errstate(all="ignore"):
            exact = subject.spec.reference.grad(**at_minimum.kwargs())["input"]
        subject.fail(
            f"gradient at the eps-minimiser under a larger eps = {grad.tolist()}, but should be positive "
            f"for the true class {y} and negative elsewhere [the minimiser moves towards uniform]",
            at_minimum,
            check="minimiser",
            numbers=numbers_at(first_index(wrong_sign), grad, np.reshape(exact.value, -1), np.reshape(exact.scale, -1)),
        )


@register("shift_invariance", "adding a constant to all logits of an element leaves the loss unchanged")
def shift_invariance(subject, data) -> None:
    example = subject.draw(data, regime="typical", **({"reduction": NONE} if subject.takes("reduction", NONE) else {}))
    z = example.args["input"]
    axis = _class_axis(z)
    shape = list(np.shape(z))
    shape[axis] = 1
    shift = data.draw(st.floats(-100, 100), label="shift") * np.ones(shape)
    moved = subject.rounded(example.replace({"input": z + shift}))
    scale = subject.scale(example) + subject.scale(moved)
    subject.expect_close("loss of the shifted logits", subject.value(moved), subject.value(example), scale, moved)


@register("softmax_gradient", "softmax-CE gradient = (softmax - onehot) / N")
def softmax_gradient(subject, data) -> None:
    example = _hard_targets(subject.draw(data, regime="any", reduction="mean", label_smoothing=0.0, weight=None))
    target = np.asarray(example.args["target"])
    z = example.args["input"]
    axis = _class_axis(z)
    p = softmax(z, axis=axis)
    onehot = _onehot(target, z)
    count = max(target.size, 1)
    expected = (p - onehot) / count
    lse = np.log(np.sum(np.exp(z - np.max(z, axis=axis, keepdims=True)), axis=axis, keepdims=True)) + np.max(
        z, axis=axis, keepdims=True
    )
    scale = (p * (1 + np.abs(z) + np.abs(lse) + np.shape(z)[axis]) + onehot) / count
    grad = subject.call(example, grad=("input",)).grads["input"]
    subject.expect_close("d CE / d logits", grad, expected, scale, example)


@register("sigmoid_gradient", "BCE-with-logits gradient = (sigmoid(z) - y) / n without weight and pos_weight")
def sigmoid_gradient(subject, data) -> None:
    example = subject.draw(data, regime="any", reduction="mean", weight=None, pos_weight=None)
    z, y = example.args["input"], example.args["target"]
    n = max(np.size(z), 1)
    grad = subject.call(example, grad=("input",)).grads["input"]
    scale = (expit(z) + np.abs(y) + 1.0) / n
    subject.expect_close("d BCE / d logits", grad, (expit(z) - y) / n, scale, example)


@register("mixup", "CE is linear in probability targets: lam CE(y_a) + (1 - lam) CE(y_b) = CE(lam y_a + (1 - lam) y_b)")
def mixup(subject, data) -> None:
    _requires(subject)
    example = _hard_targets(subject.draw(data, regime="typical", reduction=NONE, label_smoothing=0.0))
    z = example.args["input"]
    target_b = (np.asarray(example.args["target"]) + 1) % np.shape(z)[_class_axis(z)]  # another class
    a, b = _onehot(example.args["target"], z), _onehot(target_b, z)
    lam = data.draw(st.floats(0.0, 1.0), label="lam")
    mixed = subject.rounded(example.replace({"target": lam * a + (1 - lam) * b}))
    with_b = example.replace({"target": target_b})
    combined = lam * subject.value(example) + (1 - lam) * subject.value(with_b)
    scale = subject.scale(example) + subject.scale(with_b) + subject.scale(mixed)
    subject.expect_close("CE of the mixed target", subject.value(mixed), combined, scale, mixed)


def _entropy(p: np.ndarray, axis: int) -> np.ndarray:
    return -np.sum(xlogy(p, p), axis=axis)


@register(
    "cross_entropy_kl",
    "CE(p, q) = H(p) + KL(p || q) for class probabilities p",
    checks=("kl_side", "cross_entropy_side"),  # the entry that relates to a cross-entropy; the cross-entropy
)
def cross_entropy_kl(subject, data) -> None:
    """An entry that names the cross-entropy it relates to (``relations.cross_entropy``) is the KL side:
    sum_c KL(p || q) = CE(p, log q) - H(p) through that entry's reference; one that names none is the
    cross-entropy, compared with H(p) + KL(p || softmax(z)) in closed form."""
    _requires(subject)
    related = subject.spec.relations.cross_entropy
    if related is not None:
        example = subject.draw(data, regime="typical", reduction=NONE, log_target=False)
        log_q, p = example.args["input"], example.args["target"]
        kl = np.sum(subject.value(example), axis=1)
        ce = subject.catalog(related).reference(log_q, p, reduction=NONE)
        scale = np.sum(subject.scale(example), axis=1) + np.abs(ce) + np.abs(_entropy(p, 1))
        subject.expect_close("sum_c kl_div", kl, ce - _entropy(p, 1), scale, example, check="kl_side")
        return
    example = subject.draw(data, regime="typical", reduction=NONE, label_smoothing=0.0, weight=None)
    p = np.asarray(example.args["target"])
    subject.need(np.issubdtype(p.dtype, np.floating))
    z = example.args["input"]
    axis = _class_axis(z)
    log_q = log_softmax(z, axis=axis)
    kl = np.sum(xlogy(p, p) - p * log_q, axis=axis)
    scale = subject.scale(example) + np.abs(_entropy(p, axis))
    subject.expect_close(
        "CE(p, q)", subject.value(example), _entropy(p, axis) + kl, scale, example, check="cross_entropy_side"
    )


@register(
    "kl_divergence",
    "sum_c KL >= 0.5 ||p - q||_1^2 (Pinsker) >= 0, and KL(p || p) = 0",
    dtypes=FLOAT64_AND_FLOAT32,
    checks=("pinsker", "self_zero"),
)
def kl_divergence(subject, data) -> None:
    """Non-negativity with equality iff p = q, made quantitative by Pinsker's inequality."""
    _requires(subject)
    example = subject.draw(data, regime="typical", reduction=NONE, log_target=False)
    log_q, p = example.args["input"], example.args["target"]
    kl = np.sum(subject.value(example), axis=1)
    scale = np.sum(subject.scale(example), axis=1)
    q = np.exp(log_q)
    # Pinsker's bound is for normalised q; rounded log-probabilities sum to 1 + delta: KL >= bound - |delta|
    pinsker = 0.5 * np.sum(np.abs(p - q), axis=1) ** 2 - np.abs(np.expm1(logsumexp(log_q, axis=1)))
    allowed = subject.compare(kl, pinsker, scale).allowed
    below = kl < pinsker - allowed
    if np.any(below):
        subject.fail(
            f"sum_c KL = {kl.tolist()}, but should be >= 0.5 ||p - q||_1^2 = {pinsker.tolist()} [Pinsker]",
            example,
            check="pinsker",
            numbers=numbers_at(first_index(below), kl, pinsker, scale),  # the KL, Pinsker's bound, the KL's scale
        )
    with np.errstate(divide="ignore"):
        log_p = np.where(p > 0, np.log(p), 0.0)  # where p = 0 the input does not enter KL
    same = subject.rounded(example.replace({"input": log_p}))
    value = np.sum(subject.value(same), axis=1)
    subject.expect_close("KL(p || p)", value, 0.0, np.sum(subject.scale(same), axis=1), same, check="self_zero")


@register(
    "focal_identities",
    "focal with gamma = 0 and no alpha is CE / BCE; focal <= CE for 0 <= alpha <= 1",
    needs=("relations.cross_entropy",),
    checks=("bounded_by_ce", "gamma_zero"),
)
def focal_identities(subject, data) -> None:
    """The cross-entropy is the entry's ``relations.cross_entropy`` (BCE-with-logits for the sigmoid focal
    loss, cross_entropy for the softmax one), called with the parameters both share (ignore_index)."""
    _requires(subject)
    ce = subject.catalog(subject.spec.relations.cross_entropy)
    example = subject.draw(data, regime="any", reduction=NONE)
    alpha = example.params.get("alpha")
    subject.need(alpha is None or bool(np.all((np.asarray(alpha) >= 0) & (np.asarray(alpha) <= 1))))
    shared = {k: v for k, v in example.params.items() if k in ce.params and k != "reduction"}
    keep = {"reduction": NONE, **shared}
    plain = ce.reference(example.args["input"], example.args["target"], **keep)
    value = subject.value(example)
    scale = subject.scale(example)
    allowed = subject.compare(value, plain, scale).allowed
    above = value > plain + allowed
    if np.any(above):
        subject.fail(
            f"focal = {value.tolist()}, but should be <= cross-entropy = {plain.tolist()}",
            example,
            check="bounded_by_ce",
            numbers=numbers_at(first_index(above), value, plain, scale),  # the focal, the CE bounding it, its scale
        )
    if subject.accepts("gamma") and subject.accepts("alpha"):
        reduced = subject.rounded(example.replace(gamma=0.0, alpha=None))
        subject.expect_close(
            "focal with gamma = 0, alpha = None",
            subject.value(reduced),
            plain,
            subject.scale(reduced),
            reduced,
            check="gamma_zero",
        )


@register(
    "multilabel_mean_bce",
    "multilabel_soft_margin = mean over labels of BCE-with-logits",
    needs=("relations.cross_entropy",),
)
def multilabel_mean_bce(subject, data) -> None:
    _requires(subject)
    example = subject.draw(data, regime="any", reduction=NONE)
    bce = subject.catalog(subject.spec.relations.cross_entropy).reference
    weight = example.params.get("weight")
    expected = np.mean(bce(example.args["input"], example.args["target"], weight=weight, reduction=NONE), axis=-1)
    subject.expect_close("multilabel soft margin", subject.value(example), expected, subject.scale(example), example)


def _simplex(data, n_classes: int, label: str) -> np.ndarray:
    raw = np.array(data.draw(st.lists(st.floats(0.05, 1.0), min_size=n_classes, max_size=n_classes), label=label))
    return raw / raw.sum()


def _report(data, p: np.ndarray) -> np.ndarray:
    """A report q != p: p moved part of the way towards a class (where an improper score such as the
    absolute error or the hinge gains: it rewards overstating the likeliest class) or towards a random
    distribution."""
    n_classes = p.size
    towards = data.draw(st.one_of(st.integers(0, n_classes - 1), st.none()), label="move towards class (None: random)")
    other = _simplex(data, n_classes, "random report") if towards is None else np.eye(n_classes)[towards]
    t = data.draw(st.floats(0.25, 0.9), label="fraction of the way")
    return (1 - t) * p + t * other


@register(
    "proper_scoring",
    "strictly proper: the expected loss under p is smallest when reporting q = p",
    dtypes=FLOAT64_AND_FLOAT32,
    needs=("scoring", "outcome"),
)
def proper_scoring(subject, data) -> None:
    """For a true distribution p and any report q != p, E_{y~p} L(q, y) > E_{y~p} L(p, y).

    Log loss: the gap is exactly KL(p || q); Brier: ||p - q||^2. Hinge and focal are not strictly
    proper (the catalog records why), so this property fails on them by definition. A loss whose
    ``outcome`` is binary reports over 2 outcomes (P(y = 1) = q[1]), any other over C = 2..4. A failure
    names the pair as the example ``Example({"p": p, "q": q}, {})``, the form of a recorded witness.
    """
    if subject.witness is not None:  # a recorded finding's pair (p, q)
        p, q = (np.asarray(subject.witness.args[k], dtype=np.float64) for k in ("p", "q"))
        n_classes = p.size
    else:
        binary = subject.spec.outcome == BINARY
        n_classes = 2 if binary else data.draw(st.integers(2, 4), label="C")
        p = _simplex(data, n_classes, "p")
        q = _report(data, p)
        subject.need(np.sum(np.abs(p - q)) >= 0.2)

    def expected_loss(report, evaluate=subject.value):
        total, scale = 0.0, 0.0
        for outcome in range(n_classes):
            # the report as the implementation takes it: in the part of the contract its binding supports (a batch
            # axis, ...), and at the reduction it computes with unasked (optax's 'none': the sum of its output is
            # the same loss). Another fixed value (a margin, a smoothing) scores with another loss: not judged
            example = subject.spec.scoring(report, outcome)
            example = example.replace(**{k: v for k, v in subject.spec.params.items() if k not in example.params})
            fixed = {k: v for k, v in subject.impl.fixed.items() if k == "reduction"}
            example = subject.rounded(subject.supported(example.replace(**fixed)))
            total += p[outcome] * float(np.sum(evaluate(example)))
            scale += p[outcome] * float(np.sum(subject.scale(example)))
        return total, scale

    truthful, s1 = expected_loss(p)
    other, s2 = expected_loss(q)
    allowed = float(subject.compare(other, truthful, s1 + s2).allowed)
    if not other > truthful + allowed:
        # weighed: the gap, against the exact gap (a tie weighs nothing against the bound); where the exact loss
        # itself has no gap beyond the tolerance (hinge, focal: not strictly proper by definition) no departure of
        # the implementation's is to weigh (no numbers)
        with np.errstate(all="ignore"):
            gap = expected_loss(q, subject.reference)[0] - expected_loss(p, subject.reference)[0]
        subject.fail(
            f"expected loss reporting q = {q.round(4).tolist()} is {other!r}, but should exceed the "
            f"expected loss {truthful!r} of reporting the true p = {p.round(4).tolist()}",
            Example({"p": p, "q": q}, {}),
            numbers=(other - truthful, gap, s1 + s2) if gap > allowed else None,
        )
