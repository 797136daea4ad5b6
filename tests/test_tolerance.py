"""The tolerance policy's edges (``lossguard.harness.kernel.tolerance``): a scale that overflowed float64 bounds
nothing, so such an element is not judged (never a false alarm, never counted as a comparison); a NaN scale keeps
the rule that only the identical non-finite value agrees."""

from __future__ import annotations

import numpy as np
import pytest

import lossguard.properties.all  # noqa: F401  (registers every property)
from lossguard.catalog import spec
from lossguard.harness.app.inventory import own
from lossguard.harness.kernel import tolerance
from lossguard.harness.kernel.failures import PropertyFailure
from lossguard.harness.kernel.model import Example
from lossguard.harness.kernel.subject import Subject


def test_an_infinite_scale_judges_nothing():
    c = tolerance.compare(np.array([1e186, 1.0]), np.array([0.0, 1.0]), np.array([np.inf, 1.0]), "float64", 8.0)
    assert c.ok and c.judgeable.tolist() == [False, True] and c.worst == 0.0 and np.isinf(c.allowed[0])


def test_a_nan_scale_still_demands_the_identical_non_finite_value():
    agree = tolerance.compare(np.array([np.nan]), np.array([np.nan]), np.array([np.nan]), "float32", 8.0)
    differ = tolerance.compare(np.array([0.0]), np.array([np.nan]), np.array([np.nan]), "float32", 8.0)
    assert agree.ok and agree.judgeable.all() and not differ.ok


# InfoNCE without normalising, at embeddings of 1e100: logits of 1e200 / 0.07, whose d/dtemperature has an error
# scale of |logit|^2 (reference/metric.py, _temperature_grad), beyond float64. Autograd's d/dtemperature and the
# reference's differ in the last bit or two there (the README's main job met this as "inf ulps").
_OVERFLOWING_SCALE = Example(
    {"query": np.array([[1e100]]), "positive_key": np.array([[-1e100]]), "negative_keys": np.array([[[1.5e100]]])},
    {"temperature": np.array(0.07), "normalize": False, "reduction": "mean"},
)


def test_a_gradient_whose_scale_overflows_is_not_judged():
    entry = spec("info_nce_loss")
    exact = entry.reference.grad(**_OVERFLOWING_SCALE.kwargs())["temperature"]
    assert np.isposinf(exact.scale), "the example no longer reaches the overflowing scale"
    subject = Subject(entry, next(i for i in own() if i.loss == "info_nce_loss"), "float64", "cpu")
    two_bits_off = exact.value * (1.0 + 4.0 * tolerance.roundoff("float64"))
    subject.expect_close("d loss / d temperature", two_bits_off, exact.value, exact.scale, _OVERFLOWING_SCALE)
    assert subject.observations.comparisons == 0 and "beyond float64's range" in subject.observations.unjudged
    # and a finite scale still judges the same disagreement
    with pytest.raises(PropertyFailure):
        subject.expect_close("d loss / d temperature", two_bits_off, exact.value, 0.0, _OVERFLOWING_SCALE)
