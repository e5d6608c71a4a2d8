"""core/monitoring/collector_process.py: finding and stopping the project's collector process."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

from core.config.model import Project, parse_config
from core.host.processes import TAG_VARIABLE, pid_alive, tagged
from core.monitoring.collector_process import collector_tag, metrics_path, stop_collector
from tests.waiting import wait_for

TOML = """\
[project]
name = "shop"

[services.iris]
bento = "service:Iris"
model = ["m"]
"""


def test_a_damaged_metric_store_does_not_keep_the_collector_running(tmp_path: Path) -> None:
    """`relman down` stops the collector by its tag when the store's claim cannot be read."""
    config_path = tmp_path / "relman.toml"
    config_path.write_text(TOML)
    project = Project(tmp_path, config_path, parse_config(TOML, config_path))
    metrics = metrics_path(project)
    metrics.parent.mkdir(parents=True)
    metrics.write_bytes(b"this is not SQLite" * 100)
    tag = collector_tag(project)
    # A stand-in collector that would outlast the test: it ends only if it is stopped.
    child = subprocess.Popen(
        ["sleep", "600"], env={**os.environ, TAG_VARIABLE: tag}, start_new_session=True
    )
    try:
        # Until it has exec'd, /proc shows the parent's environment, without the tag.
        wait_for(lambda: child.pid in tagged(tag), "the stand-in collector to carry its tag")
        assert stop_collector(project) is True
        assert child.wait(timeout=60) < 0  # ended by a signal, not on its own
        assert not pid_alive(child.pid)
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()
