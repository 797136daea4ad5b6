"""asv benchmarks of the regression losses: time, own memory and accuracy of every implementation (see suite.py)."""

from __future__ import annotations

from . import suite

FAMILY = "regression"
IMPLEMENTATIONS = suite.implementations(FAMILY)


class TimeForward(suite._TimeForward):
    params = (IMPLEMENTATIONS, suite.DEVICES, suite.DTYPES, suite.SIZES)


class TimeBackward(suite._TimeBackward):
    params = (IMPLEMENTATIONS, suite.DEVICES, suite.DTYPES, suite.SIZES)


class TimeForwardBackward(suite._TimeForwardBackward):
    params = (IMPLEMENTATIONS, suite.DEVICES, suite.DTYPES, suite.SIZES)


class Memory(suite._Memory):
    params = (IMPLEMENTATIONS, suite.DEVICES, suite.DTYPES, suite.SIZES)


class Accuracy(suite._Accuracy):
    params = (IMPLEMENTATIONS, suite.DEVICES, suite.DTYPES)
