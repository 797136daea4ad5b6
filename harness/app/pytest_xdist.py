"""pytest-xdist scheduling for the lossguard plugin: each configured loss's items on one worker.

A loss's items share one run of the loss (``pytest_plugin.LossRun``, once per process): spread over workers, each
worker would run the loss again. ``LossScheduling`` is xdist's ``loadgroup`` with one more group per loss: an item
of the configuration (node id ``<config file>::<implementation>[<property>-<dtype>-<device>]``) is grouped by its
implementation; every other test is scheduled as ``loadgroup`` schedules it (alone, or by its ``xdist_group``).
Imported only when the plugin is enabled and xdist schedules (the module imports xdist).
"""

from __future__ import annotations

from typing import Any

import pytest
from xdist.scheduler import LoadGroupScheduling


class LossScheduling(LoadGroupScheduling):
    """``loadgroup``, plus: the items of one loss of the configuration (node ids under ``prefix``) form one group."""

    def __init__(self, config: pytest.Config, log: Any, prefix: str) -> None:
        super().__init__(config, log)
        self.prefix = prefix

    def _split_scope(self, nodeid: str) -> str:
        if nodeid.startswith(self.prefix):
            return nodeid.partition("[")[0]
        return super()._split_scope(nodeid)
