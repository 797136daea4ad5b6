"""Each finding recorded against torch's built-in losses (implementations/torch_builtins.py, ``FINDINGS``) confirmed
outside lossguard: torch.nn.functional called directly, in the finding's dtype, on its witness (or a minimal
counterexample of the same defect), against a value computed here from the loss's definition, in float64 NumPy or in
mpmath at 50 digits, or against the error the contract requires of an invalid input.

Every test asserts that the defect is present: it fails once torch changes, with a message naming the version the
finding was recorded against, the signal to update the record (and FINDINGS.md).
"""

from __future__ import annotations

import warnings
from collections.abc import Callable

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from mpmath import mp, mpf

UPSTREAM = "torch 2.14.1"  # the version the findings were recorded against
F64 = torch.float64


def _fixed(what: str) -> str:
    """The failure message of a test whose defect no longer shows."""
    return f"{UPSTREAM} {what}; torch {torch.__version__} no longer does: update implementations/torch_builtins.py"


def _t(values, dtype: torch.dtype = F64, grad: bool = False) -> torch.Tensor:
    """float64 values rounded to ``dtype`` (as a run in that dtype holds them)."""
    return torch.tensor(values, dtype=F64).to(dtype).requires_grad_(grad)


def _rounded(value: float, dtype: torch.dtype) -> float:
    """``value`` rounded to ``dtype``, as a float64 number (torch casts a Python scalar so)."""
    return float(torch.tensor(value, dtype=F64).to(dtype).double())


def _accepted(call: Callable[[], torch.Tensor], what: str) -> torch.Tensor:
    """The value of an invalid call, which torch computes instead of raising (its warnings silenced)."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return call()
    except (RuntimeError, ValueError) as error:
        pytest.fail(_fixed(f"accepts {what}") + f" (it raises {type(error).__name__}: {error})")


def _grads(*tensors: torch.Tensor) -> list[float]:
    return [float(g) for x in tensors for g in x.grad.double().flatten()]


# --- a target of another, broadcastable shape ---------------------------------------------------------------------


def _huber(e: np.ndarray, delta: float = 1.0) -> np.ndarray:
    a = np.abs(e)
    return np.where(a < delta, 0.5 * e * e, delta * (a - 0.5 * delta))


def _logsigmoid(z: np.ndarray) -> np.ndarray:
    return -np.logaddexp(0.0, -z)


# loss -> (input, target of the same shape, torch call (input, target), NumPy element-wise loss (input, target))
_BROADCAST = {
    "mse_loss": ([0.5, 1.5], [1.0, 2.0], F.mse_loss, lambda x, t: (x - t) ** 2),
    "l1_loss": ([0.5, 1.5], [1.0, 2.0], F.l1_loss, lambda x, t: np.abs(x - t)),
    "huber_loss": ([0.5, 1.5], [1.0, 2.0], F.huber_loss, lambda x, t: _huber(x - t)),
    "smooth_l1_loss": ([0.5, 1.5], [1.0, 2.0], F.smooth_l1_loss, lambda x, t: _huber(x - t)),  # beta = 1
    "poisson_nll_loss": ([0.5, 1.5], [1.0, 2.0], F.poisson_nll_loss, lambda x, t: np.exp(x) - t * x),
    "gaussian_nll_loss": (
        [0.5, 1.5],
        [1.0, 2.0],
        lambda x, t: F.gaussian_nll_loss(x, t, torch.ones_like(x)),
        lambda x, t: 0.5 * (np.log(1.0) + (x - t) ** 2 / 1.0),
    ),
    "kl_div": ([[-0.5, -1.0]], [[0.6, 0.4]], F.kl_div, lambda x, t: t * (np.log(t) - x)),
    "multilabel_soft_margin_loss": (
        [[0.0, 1.0]],
        [[0.0, 1.0]],
        F.multilabel_soft_margin_loss,
        lambda x, t: -(t * _logsigmoid(x) + (1 - t) * _logsigmoid(-x)),
    ),
}


@pytest.mark.parametrize("loss", sorted(_BROADCAST))
def test_a_target_of_another_shape_is_broadcast_to_an_n_by_n_loss(loss):
    """The target given a trailing axis ((N,) -> (N, 1)): torch does not raise (mse, l1, huber and smooth_l1 only
    warn; poisson_nll, gaussian_nll, kl_div and multilabel_soft_margin say nothing) and broadcasts, so its 'mean' is
    the mean of the element-wise loss over every (input, target) pair, N x N of them (float64 NumPy), not over the N
    matching pairs."""
    x, t, call, elementwise = _BROADCAST[loss]
    x, t = np.array(x), np.array(t)
    value = _accepted(lambda: call(_t(x), _t(t[..., None])), f"a target of shape {t[..., None].shape} for {loss}")
    pairs = elementwise(x, t[..., None])  # NumPy broadcasts as torch does
    assert pairs.size == x.size * t.shape[-1], pairs.shape
    assert float(value) == pytest.approx(float(pairs.mean()), rel=1e-12), _fixed(f"{loss} averages the N x N grid")
    right = float(elementwise(x, t).mean())
    assert abs(float(value) - right) > 0.01 * abs(right), (float(value), right)


# --- poisson_nll_loss(full=True) --------------------------------------------------------------------------------


def _poisson_full(x: mpf, t: mpf) -> mpf:
    """exp(x) - t x + [t > 1] (t log t - t + log(2 pi t) / 2) (log_input=True, full=True)."""
    stirling = t * mp.log(t) - t + mp.log(2 * mp.pi * t) / 2 if t > 1 else mpf(0)
    return mp.exp(x) - t * x + stirling


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
@pytest.mark.parametrize("reduction", ["mean", "none"])
def test_poisson_full_target_gradient_is_nan_at_a_zero_target(dtype, reduction):
    """target = 0, full=True: the Stirling term is masked for target <= 1, so near 0 the loss is exp(x) - t x and
    its target derivative is -x (mpmath: 0 at the witness x = 0, -0.5 at x = 0.5); torch's is NaN (the term's
    log(t) is differentiated before the mask); its input gradient exp(x) is right."""
    for x in (0.0, 0.5):
        inp, tgt = _t([x], dtype, grad=True), _t([0.0], dtype, grad=True)
        F.poisson_nll_loss(inp, tgt, log_input=True, full=True, reduction=reduction).sum().backward()
        with mp.workdps(50):
            d_target = mp.diff(lambda t, x=x: _poisson_full(mpf(x), t), mpf(0))
            d_input = mp.diff(lambda v: _poisson_full(v, mpf(0)), mpf(x))
        assert d_target == -mpf(x)
        assert float(inp.grad) == pytest.approx(float(d_input), rel=1e-6)
        assert torch.isnan(tgt.grad).all(), _fixed(f"gives a NaN target gradient at x = {x}, target = 0 ({dtype})")


# --- gaussian_nll_loss ------------------------------------------------------------------------------------------


def _gaussian(x: float, t: float, var: float) -> mpf:
    """0.5 (log var + (x - t)^2 / var) (full=False), at 50 digits."""
    return (mp.log(mpf(var)) + (mpf(x) - mpf(t)) ** 2 / mpf(var)) / 2


def test_gaussian_float16_loss_overflows_where_the_exact_loss_is_representable():
    """input 22, target -4, var 0.010002 (a float16 number): the exact loss 0.5 (log var + 676 / var) = 33790.48
    (mpmath) is below float16's largest number 65504; torch's float16 loss is inf (676 / var = 67586 overflows before
    the halving), its float32 loss right."""
    x, t, var = 22.0, -4.0, 0.01000213623046875
    with mp.workdps(50):
        exact = float(_gaussian(x, t, var))
    assert exact == pytest.approx(33790.4786, rel=1e-8) and exact < torch.finfo(torch.float16).max
    half = F.gaussian_nll_loss(_t([x], torch.float16), _t([t], torch.float16), _t([var], torch.float16))
    assert torch.isinf(half), _fixed(f"returns inf in float16 where the exact loss is {exact}")
    single = F.gaussian_nll_loss(_t([x], torch.float32), _t([t], torch.float32), _t([var], torch.float32))
    assert float(single) == pytest.approx(exact, rel=1e-6)


def test_gaussian_float16_gradient_is_nan_for_a_var_clamped_to_a_subnormal_eps():
    """var = 0 is clamped (under no_grad) to eps = 1e-6, in float16 the subnormal 1.0133e-6. The exact input gradient
    (x - t) / eps is 0 at the witness x = t = 0 and 241 at x = 2^-12 (mpmath), both finite float16 numbers; torch's
    is NaN and inf. float32, where eps is normal, gets both."""
    eps = _rounded(1e-6, torch.float16)
    assert eps < torch.finfo(torch.float16).tiny
    for x, nonfinite in ((0.0, torch.isnan), (2.0**-12, torch.isinf)):
        with mp.workdps(50):
            exact = float(mp.diff(lambda v: _gaussian(v, 0.0, eps), mpf(x)))
        assert abs(exact) < torch.finfo(torch.float16).max
        inp = _t([x], torch.float16, grad=True)
        F.gaussian_nll_loss(inp, _t([0.0], torch.float16), _t([0.0], torch.float16)).backward()
        assert nonfinite(inp.grad).all(), _fixed(f"gives a non-finite float16 input gradient where it is {exact}")
        inp = _t([x], torch.float32, grad=True)
        F.gaussian_nll_loss(inp, _t([0.0], torch.float32), _t([0.0], torch.float32)).backward()
        single = float(mp.diff(lambda v: _gaussian(v, 0.0, _rounded(1e-6, torch.float32)), mpf(x)))
        assert float(inp.grad) == pytest.approx(single, rel=1e-6, abs=1e-30)


_VAR_GRADIENT = [  # (dtype, input, target, var): the findings' witnesses, and one with var above eps
    (torch.float16, 0.0, 4.0, 2.0**-6),
    (torch.float32, 9.50989712523264e14, 9.77077276770304e14, 1e-8),
    (torch.float32, 0.0, 1.25 * 2.0**45, 2.0**-19),
    (torch.bfloat16, 0.0, 1.8416819765248e13, 1.0011717677116394e-08),
]


@pytest.mark.parametrize(("dtype", "x", "t", "var"), _VAR_GRADIENT)
@pytest.mark.parametrize("reduction", ["mean", "none"])
def test_gaussian_var_gradient_overflows_forming_e2_over_var2_before_halving(dtype, x, t, var, reduction):
    """d loss / d var = 1 / (2 v) - e^2 / (2 v^2) at v = max(var, eps) (torch clamps a copy under no_grad, so the
    gradient is the one at the clamped v): mpmath gives -32736 (float16), -3.4028e38 and -2.66e38 (float32), -2^127
    (bfloat16), each finite and within the dtype's range; torch's is -inf (e^2 / v / v overflows before the 1/2)."""
    x, t, var = (_rounded(v, dtype) for v in (x, t, var))
    v = max(var, _rounded(1e-6, dtype))
    with mp.workdps(50):
        exact = mp.diff(lambda w: _gaussian(x, t, w), mpf(v))
        closed = 1 / (2 * mpf(v)) - (mpf(x) - mpf(t)) ** 2 / (2 * mpf(v) ** 2)
    assert abs(exact - closed) < abs(closed) * mpf(10) ** -30
    assert abs(float(exact)) < torch.finfo(dtype).max, float(exact)
    args = [_t([x], dtype), _t([t], dtype), _t([var], dtype, grad=True)]
    value = F.gaussian_nll_loss(*args, reduction=reduction)
    assert torch.isfinite(value).all()
    value.sum().backward()
    assert float(args[2].grad) == -float("inf"), _fixed(f"gives a var gradient -inf in {dtype} where it is {exact}")


# --- binary_cross_entropy ---------------------------------------------------------------------------------------


def _bce(p: mpf, y: mpf) -> mpf:
    """-(y max(log p, -100) + (1 - y) max(log(1 - p), -100)), the documented clamp of the log."""
    clamp = mpf(-100)
    return -(y * max(mp.log(p), clamp) + (1 - y) * max(mp.log(1 - p), clamp))


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32, torch.bfloat16, torch.float16])
def test_bce_input_gradient_is_not_the_derivative_of_the_clamped_loss(dtype):
    """y = 0: the loss is -log(1 - p) near p = 0 (no clamp acts), its derivative 1 / (1 - p) (mpmath: 1 at p = 0);
    torch's backward (p - y) / max(p (1 - p), 1e-12) gives 0 at p = 0 (NaN in float16, where 1e-12 rounds to 0) and
    0.1 at p = 1e-13, where the exact derivative is 1 + 1e-13."""
    cases = [(0.0, 0.0)] + ([(1e-13, 0.1)] if dtype in (torch.float64, torch.float32) else [])  # (p, torch's)
    for p, observed in cases:
        p = _rounded(p, dtype)
        with mp.workdps(50):
            exact = mp.diff(lambda v: _bce(v, mpf(0)), mpf(p), direction=1)  # p >= 0: the one-sided derivative
        assert float(exact) == pytest.approx(1 / (1 - p), rel=1e-12)
        inp = _t([p], dtype, grad=True)
        F.binary_cross_entropy(inp, _t([0.0], dtype)).backward()
        got = float(inp.grad)
        message = _fixed(f"gives the gradient {got} at p = {p} ({dtype}) where the derivative is {float(exact)}")
        if dtype == torch.float16:
            assert np.isnan(got), message
        else:
            assert got == pytest.approx(observed, rel=1e-2) and abs(got - float(exact)) > 0.5, message


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32, torch.bfloat16, torch.float16])
def test_bce_target_gradient_is_infinite_at_p_zero_or_one(dtype):
    """The loss is linear in y: d loss / d y = max(log(1 - p), -100) - max(log p, -100), 100 at p = 0 and -100 at
    p = 1 with the documented clamp (mpmath); torch's is +inf and -inf (log(1 - p) - log(p) unclamped)."""
    for p in (0.0, 1.0):
        with mp.workdps(50):
            exact = mp.diff(lambda y, p=p: _bce(mpf(p), y), mpf("0.5"))
        assert exact == (100 if p == 0 else -100)
        tgt = _t([0.5], dtype, grad=True)
        F.binary_cross_entropy(_t([p], dtype), tgt, reduction="none").sum().backward()
        assert float(tgt.grad) == float("inf") * float(exact), _fixed(
            f"gives an infinite target gradient at p = {p} ({dtype}) where it is {float(exact)}"
        )


# --- invalid parameters and shapes ------------------------------------------------------------------------------


def test_multi_margin_accepts_a_negative_margin():
    """margin = -1 is computed, not rejected: torch's value is sum_{i != y} max(0, margin - x_y + x_i) / C with the
    negative margin (float64 NumPy): 0 for the witness [[0, 0]], 0.5 for [[0, 2]]."""
    for row in ([0.0, 0.0], [0.0, 2.0]):
        x = np.array(row)
        value = _accepted(lambda x=x: F.multi_margin_loss(_t([x]), torch.tensor([0]), margin=-1.0), "margin=-1")
        numpy = np.maximum(0.0, -1.0 - x[0] + x[1:]).sum() / x.size
        assert float(value) == pytest.approx(numpy, abs=1e-15), _fixed("computes the negative margin")


def _cosine(x1: np.ndarray, x2: np.ndarray, eps: float = 1e-12) -> np.ndarray:
    return np.sum(x1 * x2, -1) / np.sqrt((np.sum(x1 * x1, -1) + eps) * (np.sum(x2 * x2, -1) + eps))


# loss -> (first, second with one row, third, torch call, NumPy loss per row with the second repeated)
_ONE_ROW = {
    "triplet_margin_loss": (
        [[0.0], [3.0]],
        [[1.0]],
        [[0.0], [0.0]],
        lambda a, p, n: F.triplet_margin_loss(a, p, n, reduction="none"),
        lambda a, p, n: np.maximum(
            np.linalg.norm(a - p + 1e-6, axis=-1) - np.linalg.norm(a - n + 1e-6, axis=-1) + 1.0, 0.0
        ),
    ),
    "cosine_embedding_loss": (
        [[1.0, 0.0], [0.0, 1.0]],
        [[1.0, 0.0]],
        [1.0, 1.0],
        lambda x1, x2, y: F.cosine_embedding_loss(x1, x2, y, reduction="none"),
        lambda x1, x2, y: 1.0 - _cosine(x1, x2),
    ),
    "margin_ranking_loss": (
        [1.0, -1.0],
        [0.0],
        [1.0, 1.0],
        lambda x1, x2, y: F.margin_ranking_loss(x1, x2, y, reduction="none"),
        lambda x1, x2, y: np.maximum(0.0, -y * (x1 - x2)),
    ),
}


@pytest.mark.parametrize("loss", sorted(_ONE_ROW))
def test_a_second_argument_of_one_row_is_broadcast_against_n_rows(loss):
    """The second argument with one row against N = 2: torch does not raise, and its per-row loss is the one with
    that row repeated N times (float64 NumPy)."""
    first, second, third, call, numpy = _ONE_ROW[loss]
    value = _accepted(lambda: call(_t(first), _t(second), _t(third)), f"one row against two for {loss}")
    repeated = np.repeat(np.array(second), len(first), axis=0)
    expected = numpy(np.array(first), repeated, np.array(third))
    assert value.shape == (2,) and value.detach().numpy() == pytest.approx(expected, rel=1e-12, abs=1e-15), _fixed(
        f"broadcasts one row for {loss}"
    )


# --- triplet_margin_loss, p = 3 ---------------------------------------------------------------------------------


def _triplet(a: list, p: list, n: list, degree: int, eps: float, margin: float = 1.0) -> mpf:
    """max(d(a, p) - d(a, n) + margin, 0), d(x, y) = (sum_k |x_k - y_k + eps|^p)^(1/p) (pairwise_distance's)."""

    def d(x: list, y: list) -> mpf:
        total = mp.fsum(abs(mpf(s) - mpf(t) + mpf(eps)) ** degree for s, t in zip(x, y, strict=True))
        return total ** (mpf(1) / degree)

    return max(d(a, p) - d(a, n) + mpf(margin), mpf(0))


@pytest.mark.parametrize("reduction", ["mean", "none"])
def test_triplet_p3_float32_power_sum_overflows(reduction):
    """p = 3, positive 5.54e12 (both components) from the anchor: the exact loss (mpmath) is the distance
    2^(1/3) 5.54e12 = 6.98e12 plus the margin, far inside float32's range; torch's float32 loss is inf (the sum of
    cubes, 3.4e38, overflows before the cube root). Its float64 loss is right."""
    a, p, n = [[0.0, 0.0]], [[5.541191483392e12] * 2], [[0.0, 0.0]]
    eps = _rounded(1e-6, torch.float32)
    with mp.workdps(50):
        exact = float(_triplet(a[0], p[0], n[0], 3, eps))
    assert exact == pytest.approx(6981463791424.778, rel=1e-12) and exact < torch.finfo(torch.float32).max
    single = F.triplet_margin_loss(*(_t(v, torch.float32) for v in (a, p, n)), p=3.0, reduction=reduction)
    assert torch.isinf(single).all(), _fixed(f"gives inf in float32 where the loss is {exact}")
    double = F.triplet_margin_loss(*(_t(v) for v in (a, p, n)), p=3.0, eps=eps, reduction=reduction)
    assert float(double.sum()) == pytest.approx(exact, rel=1e-12)


def test_triplet_p3_float64_gradient_is_nan_where_the_power_sum_underflows():
    """p = 3, eps = 0, anchor 0, positive 1, negative 1e-200: the loss is |a - p| - |a - n| + 1 (one component), its
    exact gradients (mpmath) 0 in the anchor, 1 in the positive, -1 in the negative; torch's anchor and negative
    gradients are NaN (|a - n|^3 = 1e-600 underflows to 0, and the backward divides by it)."""
    a, p, n = (_t(v, grad=True) for v in ([[0.0]], [[1.0]], [[1e-200]]))
    F.triplet_margin_loss(a, p, n, p=3.0, eps=0.0, reduction="none").sum().backward()
    point = [mpf(0), mpf(1), mpf(1e-200)]
    exact = []
    with mp.workdps(500):  # the step 1e-220 beside 1 and 1e-200
        for k in range(3):

            def loss(v, k=k):
                args = [[v if j == k else point[j]] for j in range(3)]
                return _triplet(*args, 3, 0.0)

            exact.append(mp.diff(loss, point[k], h=mpf("1e-220")))
    assert [float(g) for g in exact] == [0.0, 1.0, -1.0]
    assert float(p.grad) == 1.0
    assert torch.isnan(a.grad).all() and torch.isnan(n.grad).all(), _fixed(
        "gives NaN anchor and negative gradients where they are 0 and -1"
    )


# --- cosine_embedding_loss --------------------------------------------------------------------------------------


def _mp_cosine_loss(x1: list, x2: list, eps: float = 1e-12) -> mpf:
    """1 - x1.x2 / sqrt((|x1|^2 + eps)(|x2|^2 + eps)) (target 1, margin 0), at 50 digits."""
    x1, x2 = [mpf(v) for v in x1], [mpf(v) for v in x2]
    m1, m2 = mp.fsum(v * v for v in x1) + mpf(eps), mp.fsum(v * v for v in x2) + mpf(eps)
    return 1 - mp.fsum(u * v for u, v in zip(x1, x2, strict=True)) / mp.sqrt(m1 * m2)


def _cosine_loss(x1: list, x2: list, dtype: torch.dtype, reduction: str = "mean", grad: bool = False):
    a, b = _t([x1], dtype, grad), _t([x2], dtype, grad)
    return F.cosine_embedding_loss(a, b, _t([1.0], dtype), reduction=reduction), a, b


@pytest.mark.parametrize(
    ("dtype", "row"),
    [(torch.float64, [1e78]), (torch.float32, [1e10]), (torch.bfloat16, [1e10]), (torch.float16, [16.0, 0.0])],
)
def test_cosine_two_equal_embeddings_get_loss_one_where_the_product_of_squared_norms_overflows(dtype, row):
    """Two equal embeddings: the exact loss (mpmath, eps = 1e-12) is below 4e-15 (0 to the dtype's precision);
    torch's is 1 (|x|^2 |x|^2 overflows: 1e312 in float64, 1e40 in float32 and bfloat16, 65536 in float16, and the
    cosine x.x / inf becomes 0)."""
    with mp.workdps(50):
        exact = _mp_cosine_loss(row, row)
    assert 0 <= exact < mpf("4e-15")
    value, _, _ = _cosine_loss(row, row, dtype)
    assert float(value) == 1.0, _fixed(f"gives loss 1 for two equal embeddings {row} in {dtype}")


def test_cosine_float16_zero_embedding_is_nan():
    """Zero embeddings: the cosine 0 / sqrt(eps^2) is 0 and the loss 1 (mpmath, eps = 1e-12); torch's float16 loss is
    NaN (1e-12 rounds to 0 in float16: 0 / 0), its float32 loss 1."""
    with mp.workdps(50):
        assert _mp_cosine_loss([0.0], [0.0]) == 1
    assert float(_cosine_loss([0.0], [0.0], torch.float32)[0]) == 1.0
    assert torch.isnan(_cosine_loss([0.0], [0.0], torch.float16)[0]), _fixed("gives NaN for a zero embedding")


def test_cosine_float16_squared_norms_overflow_above_256():
    """[1000] against itself: the exact loss is 1e-18 (mpmath); torch's float16 loss is NaN (1000^2 overflows:
    inf / inf)."""
    with mp.workdps(50):
        assert 0 <= _mp_cosine_loss([1000.0], [1000.0]) < mpf("1e-17")
    value = _cosine_loss([1000.0], [1000.0], torch.float16, reduction="none")[0]
    assert torch.isnan(value).all(), _fixed("gives NaN for two equal embeddings [1000] in float16")


def test_cosine_float16_product_underflow_gives_minus_inf():
    """[2^-7] against itself: the exact loss is 1.6e-8 >= 0 (mpmath); torch's float16 loss is -inf (each squared norm
    is 2^-14, their product 2^-28 rounds to 0, and the cosine is 2^-14 / 0)."""
    row = [0.0078125]
    with mp.workdps(50):
        exact = _mp_cosine_loss(row, row)
    assert 0 <= exact < mpf("2e-8")
    assert float(_cosine_loss(row, row, torch.float16)[0]) == -float("inf"), _fixed("gives -inf in float16")


def test_cosine_float16_gradient_is_inf_where_the_squared_norms_are_subnormal():
    """[1] against [2^-9]: the exact gradients (mpmath, eps = 1e-12) are -1.0e-12 in x1 and -1.342e-4 in x2 (a normal
    float16 number; with eps = 0 both are 0, the 1-D cosine being constant); torch's float16 gradients are inf."""
    with mp.workdps(50):
        d1 = mp.diff(lambda v: _mp_cosine_loss([v], [2.0**-9]), mpf(1))
        d2 = mp.diff(lambda v: _mp_cosine_loss([1.0], [v]), mpf(2) ** -9)
    assert float(d1) == pytest.approx(-1e-12, rel=1e-6) and float(d2) == pytest.approx(-1.3421767e-4, rel=1e-6)
    value, a, b = _cosine_loss([1.0], [2.0**-9], torch.float16, grad=True)
    value.backward()
    assert torch.isinf(a.grad).all() and torch.isinf(b.grad).all(), _fixed(
        f"gives infinite float16 gradients where they are {float(d1)} and {float(d2)}"
    )


def test_cosine_float32_gradient_is_zero_where_the_product_overflows():
    """x1 = [5.99e14, 5.99e14], x2 = [21781, 0]: the exact cosine is 1/sqrt(2) (loss 0.2929) and d loss / d x1[0]
    -5.90e-16 (mpmath; a normal float32 number); torch's float32 loss is 1 and its gradient 0 (|x1|^2 |x2|^2 = 3.4e38
    overflows): a relative departure of 1 in both."""
    x1, x2 = [5.98862255357952e14] * 2, [21781.0, 0.0]
    with mp.workdps(50):
        exact = _mp_cosine_loss(x1, x2)
        d = mp.diff(lambda v: _mp_cosine_loss([v, x1[1]], x2), mpf(x1[0]))
    assert float(exact) == pytest.approx(1 - 2**-0.5, rel=1e-12)
    assert float(d) == pytest.approx(-5.903751445847056e-16, rel=1e-9)
    value, a, _ = _cosine_loss(x1, x2, torch.float32, grad=True)
    value.backward()
    assert float(value.detach()) == 1.0 and float(a.grad[0, 0]) == 0.0, _fixed(
        f"gives loss {float(value)} and gradient {float(a.grad[0, 0])} where they are {float(exact)} and {float(d)}"
    )


def test_cosine_float64_gradient_loses_30_ulps_through_the_product_of_squared_norms():
    """x1 = [6.94e99, 1], x2 = [0, 102327]: d loss / d x1[0] = x1.x2 x1[0] / (m1 sqrt(m1 m2)) is
    2.0755779413714084e-200 (mpmath, and its derivative of the loss), which the float64 evaluation
    (x1.x2 / sqrt(m1)) / sqrt(m2) (x1[0] / m1) gets to within 4 ulps; torch's is 2.0755779413714226e-200, 30 ulps
    (relative 6.8e-15) off."""
    x1, x2 = [6.94113476918575e99, 1.0], [0.0, 102327.0]
    with mp.workdps(50):
        a, b, eps = mpf(x1[0]), mpf(x2[1]), mpf(1e-12)
        m1, m2 = a * a + 1 + eps, b * b + eps
        closed = b * a / (m1 * mp.sqrt(m1 * m2))
    with mp.workdps(400):
        numeric = mp.diff(lambda v: _mp_cosine_loss([v, 1.0], x2), a, h=a * mpf(10) ** -100)
    assert abs(numeric - closed) < closed * mpf(10) ** -40
    ulp = mpf(2) ** -52 * float(closed)
    m1_, m2_ = x1[0] * x1[0] + 1.0 + 1e-12, x2[1] * x2[1] + 1e-12
    direct = (x2[1] / np.sqrt(m1_)) / np.sqrt(m2_) * (x1[0] / m1_)
    assert abs(direct - closed) < 4 * abs(closed) * mpf(2) ** -52
    value, grad1, _ = _cosine_loss(x1, x2, F64, grad=True)
    value.backward()
    got = float(grad1.grad[0, 0])
    assert abs(got - closed) / abs(closed) * 2**52 > 16, _fixed(
        f"loses {float(abs(got - closed) / ulp):.1f} ulps: {got!r} where the gradient is {float(closed)!r}"
    )


# --- linear_cross_entropy (chunked path) --------------------------------------------------------------------------


@pytest.mark.skipif(not hasattr(F, "linear_cross_entropy"), reason="F.linear_cross_entropy is torch >= 2.14")
@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
def test_linear_cross_entropy_chunked_mean_gradient_is_nan_with_every_token_ignored(dtype):
    """Every target equal to ignore_index: the loss's numerator, the sum over the tokens not ignored, is an empty
    sum, the constant 0 whatever hidden and weight are (NumPy: perturbing them leaves it 0), so its gradient is 0,
    and 'mean' = 0 / 0 has a NaN value in every path. cross_entropy on the materialised logits and
    linear_cross_entropy(options=None) give the gradient 0; the chunked path (options=LinearCrossEntropyOptions())
    gives NaN in hidden, weight and bias."""
    rng = np.random.default_rng(0)
    hidden, weight, bias = rng.normal(size=(3, 4)), rng.normal(size=(5, 4)), rng.normal(size=5)
    target = np.full(3, -100)

    def numerator(h: np.ndarray, w: np.ndarray) -> float:
        logits = h @ w.T + bias
        logp = logits - np.logaddexp.reduce(logits, axis=1, keepdims=True)
        kept = target != -100
        return float(-logp[kept, target[kept]].sum())

    step = 1e-3 * rng.normal(size=hidden.shape)
    assert numerator(hidden + step, weight) - numerator(hidden, weight) == 0.0

    def grads(options) -> list[float]:
        h, w, b = _t(hidden, dtype, True), _t(weight, dtype, True), _t(bias, dtype, True)
        t = torch.from_numpy(target)
        if options == "materialised":
            value = F.cross_entropy(h @ w.T + b, t)
        else:
            value = F.linear_cross_entropy(h, w, t, linear_bias=b, options=options)
        assert torch.isnan(value)  # 0 / 0
        value.backward()
        return _grads(h, w, b)

    assert grads("materialised") == [0.0] * (hidden.size + weight.size + bias.size)
    assert grads(None) == [0.0] * (hidden.size + weight.size + bias.size)
    chunked = grads(torch.nn.LinearCrossEntropyOptions())
    assert all(np.isnan(chunked)), _fixed("gives NaN gradients on the chunked path with every token ignored")
