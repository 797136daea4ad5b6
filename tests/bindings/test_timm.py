"""timm.loss's shipped bindings (implementations/bindings/timm.toml, timm.py): the audit of every loss it exports
that lossguard binds, CPU, ci profile, every dtype, and each recorded finding confirmed outside lossguard.

The audit's verdicts: every catalog-bound loss has results and passes somewhere; nothing fails, errs or xpasses (a
departure is a recorded finding, an xfail); at least one finding reproduces. Each finding is then confirmed
independently: timm called directly, against a float64 NumPy computation of the definition.
"""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("timm", reason="timm not installed (optional extra lossguard[audit])")

import torch
from audit_checks import audit, check_audit
from timm import loss as timm_loss

from lossguard.harness.app.bindings import library
from lossguard.harness.kernel.model import DTYPES
from lossguard.implementations.bindings.timm import FINDINGS

BINDINGS = library("timm").bindings


@pytest.fixture(scope="module")
def results():
    return audit("timm", DTYPES, free=True)  # timm's findings are on its losses outside the catalog


def test_the_audit_passes_or_reproduces_its_findings(results):
    check_audit(results, BINDINGS)
    assert {r.implementation for r in results if r.status == "xfail"} == set(FINDINGS)
    assert {b.loss for b in BINDINGS if b.loss} == {"cross_entropy", "binary_cross_entropy_with_logits"}


def test_every_export_is_bound_or_skipped_with_a_reason(results):
    assert not [r for r in results if "without a binding" in r.message]
    assert all(len(b.skip) > 20 for b in BINDINGS if b.skip)


# --- the findings, confirmed outside lossguard -----------------------------------------------------------------


def _log_softmax(z: np.ndarray) -> np.ndarray:
    top = z.max(axis=-1, keepdims=True)
    return z - top - np.log(np.sum(np.exp(z - top), axis=-1, keepdims=True))


def test_poly_cross_entropy_computes_float64_in_float32():
    """Poly-1 CE, CE + epsilon (1 - p_t) (Leng et al. 2022, eq. 3), in float64 NumPy against timm on float64 logits:
    timm returns float32, off by about float32's rounding (1e-8 relative), where float64 carries 1e-16."""
    z = np.array([[1.0, 0.1, -1.3], [0.3, 2.2, -0.7]])
    target = np.array([2, 0])
    log_p = _log_softmax(z)[np.arange(2), target]
    exact = np.mean(-log_p + 2.0 * (1.0 - np.exp(log_p)))
    got = timm_loss.PolyCrossEntropy()(torch.tensor(z), torch.tensor(target))
    assert got.dtype == torch.float32
    assert 1e-12 < abs(got.item() - exact) / exact < 1e-6


@pytest.mark.parametrize(
    "make",
    [timm_loss.PolyBinaryCrossEntropy, timm_loss.AsymmetricLossMultiLabel, timm_loss.TwoWayLoss, timm_loss.ZlprLoss],
    ids=lambda c: c.__name__,
)
def test_multilabel_losses_compute_float64_in_float32(make):
    """On float64 logits these return float32, bitwise the result of the same call on the logits rounded to float32:
    the computation never saw the float64 digits."""
    z = torch.tensor([[1.0 + 2.0**-40, -0.3, 2.7], [0.1, -1.9, 0.4]], dtype=torch.float64)
    y = torch.tensor([[1.0, 0.0, 1.0], [0.0, 0.0, 1.0]], dtype=torch.float64)
    as64, as32 = make()(z, y), make()(z.float(), y.float())
    assert as64.dtype == torch.float32
    assert torch.equal(as64, as32)
