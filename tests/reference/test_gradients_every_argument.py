"""Every differentiable argument's reference gradient, for every catalog entry, and the parameters' full domains.

The family tests (``test_*_mpmath.py``) compare the gradients they name with mpmath; this module closes the gaps
generically: for every entry and every argument in ``LossSpec.differentiable`` or ``reference.differentiable``
(targets, weights, ``pos_weight``, variances, temperatures, ``layer_weights``, ``bias``; the optional ones given
a value when the example leaves them ``None``), the reference gradient is compared with central differences of
the reference's own value on a few seeded examples per entry, away from kinks (``LossSpec.kinks``).

The difference quotient: D(h) = (f(x + h) - f(x - h)) / 2h on one coordinate, h = 2^-12 max(|x|, 2^-8 times its
argument's largest magnitude), and Richardson's R = (4 D(h/2) - D(h)) / 3 (truncation O(h^4) for a smooth f). Its
error is bounded by the rounding of f, at most 2 (8 + 8) u S / h with S the value's error scale (the reference is
within 8 u S, K_ref), plus the truncation, which |D(h) - D(h/2)| overestimates by a factor of about 3 / (h^2
f'''' / f'''): the bound used is 64 u S / h + |D(h) - D(h/2)| + 1e-6 (|g| + scale_g). A coordinate where
|D(h) - D(h/2)| or the gap between the one-sided quotients of step h/2 is not small (a kink within h that the
kink mask did not flag, or a steep curvature) is left out; each entry must keep at least one compared coordinate
per argument (and an example whose every argument had one, up to SEEDED such examples); a coordinate
whose quotients' rounding 64 u S / h exceeds 1e-5 (|g| + scale_g) is not counted (it would hide a wrong gradient).

The parameters' full domains: ``ignore_index`` drawn from any integer (negative, 0, inside the class range, at C
and beyond, -100, 2^31 - 1), some target elements set to it; then the value and every gradient are compared with
the straightforward float32 evaluation (within K, ``test_scales_pinned.ratios``) and the gradient with the
difference quotients as above.
"""

from __future__ import annotations

import numpy as np
import pytest
import test_scales_pinned as pinned

from lossguard.catalog import CATALOG
from lossguard.harness.kernel.seeded import seeded_examples

U = 2.0**-53
SEEDED = 3  # examples per entry
COORDINATES = 4  # coordinates per argument and example


def _names(spec) -> tuple[str, ...]:
    return tuple(dict.fromkeys((*spec.differentiable, *spec.reference.differentiable)))


def _filled(spec, example, rng):
    """The example rounded to float32, with every optional differentiable argument given a value."""
    args = {k: pinned._f32(v) for k, v in example.args.items()}
    params = {k: pinned._f32(v) for k, v in example.params.items()}
    first = np.asarray(next(iter(args.values())))
    for name in _names(spec):
        if name in args:
            continue
        value = params.get(name)
        if name == "temperature":
            params[name] = np.asarray(float(value))
        elif value is not None:
            continue
        elif name == "layer_weights":
            params[name] = pinned._f32(rng.uniform(0.5, 2.0, len(params["layers"])))
        elif name == "bias":
            params[name] = pinned._f32(rng.normal(size=np.shape(args["weight"])[0]))
        elif name == "weight" and spec.name == "binary_cross_entropy_with_logits":
            params[name] = pinned._f32(rng.uniform(0.5, 2.0, first.shape))
        elif name == "pos_weight":
            params[name] = pinned._f32(rng.uniform(0.5, 2.0, first.shape[-1:]))
    return type(example)(args, params)


def _value(spec, kw) -> float:
    with np.errstate(all="ignore"):
        return float(np.sum(spec.reference(**kw)))


def _sides(spec, kw, name, index, h, at) -> tuple[float, float]:
    """The one-sided difference quotients (f(x + h) - f(x)) / h and (f(x) - f(x - h)) / h, f(x) = ``at``."""
    array = np.array(kw[name], dtype=np.float64)
    up, down = array.copy(), array.copy()
    up[index] += h
    down[index] -= h
    return (_value(spec, {**kw, name: up}) - at) / h, (at - _value(spec, {**kw, name: down})) / h


def check_gradients(spec, example, rng) -> dict[str, int]:
    """Compare every differentiable argument's gradient with difference quotients; per name, the count of compared
    coordinates whose gradient is not 0 (a zero gradient is compared too, but proves nothing of a wrong factor)."""
    kw = example.kwargs()
    with np.errstate(all="ignore"):
        grads = spec.reference.grad(**kw)
        total_scale = float(np.sum(spec.reference.error_scale(**kw)))
    value = _value(spec, kw)
    if not np.isfinite(value):
        return {}
    if spec.kinks is not None:
        from types import SimpleNamespace

        subject = SimpleNamespace(spec=spec, u=2.0**-10)
    compared: dict[str, int] = {}
    for name in _names(spec):
        x = kw.get(name)
        if not (isinstance(x, np.ndarray) and np.issubdtype(x.dtype, np.floating)) or name not in grads:
            continue
        g = np.broadcast_to(grads[name].value, np.shape(x))
        g_scale = np.broadcast_to(grads[name].scale, np.shape(x))
        kinks = (
            pinned.kink_mask(subject, example, np.shape(x)) if spec.kinks is not None else np.zeros(np.shape(x), bool)
        )
        reach = max(float(np.max(np.abs(x), initial=0.0)), 2.0**-20)
        flat = [i for i in np.ndindex(np.shape(x)) if not kinks[i]]
        compared[name] = 0
        for i in [flat[k] for k in rng.permutation(len(flat))]:
            if compared[name] == COORDINATES:
                break
            h = 2.0**-12 * max(abs(float(x[i])), 2.0**-8 * reach)
            (f1, b1), (f2, b2) = _sides(spec, kw, name, i, h, value), _sides(spec, kw, name, i, h / 2, value)
            d1, d2 = (f1 + b1) / 2, (f2 + b2) / 2
            noise = 64 * U * total_scale / h
            if not noise <= 1e-5 * (abs(g[i]) + g_scale[i]):
                continue  # the quotients' rounding would hide a wrong gradient (a step far below the value's scale)
            small = 1e-3 * (abs(d2) + abs(g[i])) + 2 * noise
            if not np.all(np.isfinite([d1, d2])) or abs(d1 - d2) > small or abs(f2 - b2) > small:
                continue  # a kink (the one-sided quotients disagree) or a steep curvature within h
            richardson = (4 * d2 - d1) / 3
            bound = noise + abs(d1 - d2) + 1e-6 * (abs(g[i]) + g_scale[i])
            assert abs(g[i] - richardson) <= bound, (
                f"{spec.name}: d/d{name}{list(i)} = {g[i]!r}, but should be {richardson!r} [central differences of "
                f"the reference, bound {bound:.3g}; {kw}]"
            )
            compared[name] += bool(g[i] != 0)
    return compared


@pytest.mark.parametrize("name", sorted(CATALOG))
def test_every_differentiable_argument(name):
    spec = CATALOG[name]
    rng = np.random.default_rng(sum(map(ord, name)))
    compared: dict[str, int] = {}
    used = 0
    for example in seeded_examples(spec, count=24):
        counts = check_gradients(spec, _filled(spec, example, rng), rng)
        for arg, count in counts.items():
            compared[arg] = compared.get(arg, 0) + count
        used += bool(counts) and all(counts.values())
        if used == SEEDED:
            break
    assert compared, f"{name}: no differentiable argument was compared"
    missing = [arg for arg, count in compared.items() if count == 0]
    assert not missing, f"{name}: no coordinate of {missing} with a nonzero gradient away from a kink was compared"


IGNORE_INDICES = (-100, -7, -1, 0, 1, 2, 3, 5, 2**31 - 1)


def _class_count(spec, example) -> int:
    for key in ("input", "logits"):
        if key in example.args:
            x = np.asarray(example.args[key])
            return x.shape[-1] if (spec.name == "sequence_cross_entropy" or x.ndim == 1) else x.shape[1]
    return np.shape(example.args["weight"])[0]  # linear_cross_entropy: the vocabulary


IGNORING = sorted(n for n, s in CATALOG.items() if "ignore_index" in s.params)


@pytest.mark.parametrize("name", IGNORING)
@pytest.mark.parametrize("ignore_index", IGNORE_INDICES)
def test_ignore_index_full_domain(name, ignore_index):
    spec = CATALOG[name]
    rng = np.random.default_rng(abs(ignore_index) % 2**32 + len(name))
    seen = 0
    for example in seeded_examples(spec, count=8):
        target = np.array(example.args["target"])
        if not np.issubdtype(target.dtype, np.integer) or target.size == 0:
            continue
        target = target.copy()
        flat = target.reshape(-1)
        flat[rng.random(flat.size) < 0.3] = ignore_index
        if np.all(flat == ignore_index):
            flat[0] = (ignore_index + 1) % _class_count(spec, example) if ignore_index >= 0 else 0
        if np.any((flat != ignore_index) & ((flat < 0) | (flat >= _class_count(spec, example)))):
            continue
        example = example.replace(
            {"target": target.reshape(np.shape(example.args["target"]))}, ignore_index=ignore_index
        )
        example = _filled(spec, example, rng)
        ratios = pinned.ratios(spec, example)
        for part, ratio in ratios.items():
            assert ratio <= spec.ulps, (
                f"{name} {part} with ignore_index={ignore_index}: a straightforward float32 evaluation errs by "
                f"{ratio:.3g} units, but should be within K = {spec.ulps} [the reference's ignored elements]"
            )
        check_gradients(spec, example, rng)
        seen += 1
    assert seen, f"{name}: no example with integer targets for ignore_index={ignore_index}"
