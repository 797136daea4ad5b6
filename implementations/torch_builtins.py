"""PyTorch's built-in losses bound to their canonical names, with the findings recorded against them.

Findings are data next to the binding (PyTorch OpInfo keeps its known failures the same way):
``(property, reason, dtypes or None)``. Each is a departure of torch from the canonical
contract that lossguard's properties detect; the property stays strict, the result is ``xfail``
while the finding reproduces and ``xpass`` (failing the run) once torch changes.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

UPSTREAM = f"torch {torch.__version__.split('+')[0]}"

BUILTINS = {
    "mse_loss": F.mse_loss,
    "l1_loss": F.l1_loss,
    "huber_loss": F.huber_loss,
    "smooth_l1_loss": F.smooth_l1_loss,
    "poisson_nll_loss": F.poisson_nll_loss,
    "gaussian_nll_loss": F.gaussian_nll_loss,
    "binary_cross_entropy": F.binary_cross_entropy,
    "binary_cross_entropy_with_logits": F.binary_cross_entropy_with_logits,
    "cross_entropy": F.cross_entropy,
    "nll_loss": F.nll_loss,
    "kl_div": F.kl_div,
    "multi_margin_loss": F.multi_margin_loss,
    "multilabel_soft_margin_loss": F.multilabel_soft_margin_loss,
}

_BROADCASTS = (
    "invalid_input",
    "a target whose shape differs from the input's only triggers a UserWarning and is broadcast, so "
    "(N,) against (N, 1) silently computes an N x N loss instead of raising",
    None,
)

_HALF = ("float16",)

FINDINGS: dict[str, list[tuple[str, str, tuple[str, ...] | None]]] = {
    "mse_loss": [_BROADCASTS],
    "l1_loss": [_BROADCASTS],
    "huber_loss": [_BROADCASTS],
    "smooth_l1_loss": [_BROADCASTS],
    "poisson_nll_loss": [
        _BROADCASTS,
        (
            "gradient",
            "with full=True the Stirling term is computed for every target and masked afterwards "
            "(masked_fill(target <= 1, 0)), so its infinite derivative at target = 0 leaks into the target "
            "gradient as 0 * inf = NaN",
            None,
        ),
        ("stability", "NaN target gradient at target = 0 with full=True (see the gradient finding)", None),
        (
            "agreement",
            "log_input=False: eps = 1e-8 underflows to 0 in float16, so input = 0 gives log(0) and 0 * -inf = NaN "
            "where the exact loss is 0",
            _HALF,
        ),
    ],
    "gaussian_nll_loss": [
        _BROADCASTS,
        (
            "agreement",
            "float16: (input - target)^2 / var is formed before halving and overflows to inf where the exact "
            "loss is representable",
            _HALF,
        ),
        (
            "gradient",
            "float16: var clamped to eps = 1e-6 (a subnormal in float16) gives a NaN gradient",
            _HALF,
        ),
    ],
    "binary_cross_entropy": [
        (
            "gradient",
            "the backward computes w (p - y) / max(p (1 - p), 1e-12) instead of the derivative of the clamped "
            "loss: 0 instead of 1 / (1 - p) at p = 0 (and wrong by the clamp for p within 1e-12 of 0 or 1); "
            "in float16 the 1e-12 underflows and 0 / 0 = NaN",
            None,
        ),
        (
            "stability",
            "the target gradient log(1 - p) - log(p) is computed without the -100 clamp of the value: "
            "infinite at p = 0 or 1 where the loss's derivative is +-100",
            None,
        ),
    ],
    "kl_div": [_BROADCASTS],
    "multi_margin_loss": [
        ("invalid_input", "a negative margin is accepted and silently computes a loss", None),
    ],
    "multilabel_soft_margin_loss": [_BROADCASTS],
}
