"""A pipeline run as it truly is: ``running`` only while the relman driving it runs.

The runner (core/pipelines/runner.py) and the history both read runs through this, so a run
whose driver was killed is shown ``interrupted`` everywhere until a driver takes it over.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

from core.host.processes import pid_alive, this_host

if TYPE_CHECKING:
    from store.ledger.pipelines import PipelineRunRecord


def driver_alive(record: PipelineRunRecord) -> bool:
    """The relman driving the run still runs (one on another host is taken as alive: its
    pids mean nothing here)."""
    if record.host != this_host():
        return True
    return record.pid == os.getpid() or pid_alive(record.pid)


def seen_status(record: PipelineRunRecord) -> str:
    """The run's status as it truly is: a ``running`` run whose driver died is
    ``interrupted``."""
    if record.status == "running" and not driver_alive(record):
        return "interrupted"
    return record.status
