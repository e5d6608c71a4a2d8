"""core/monitoring/collector_process.py: finding and stopping the project's collector process."""

from __future__ import annotations

import os
import subprocess
import time
from pathlib import Path

from core.config.model import Project, parse_config
from core.host.processes import TAG_VARIABLE, pid_alive
from core.monitoring.collector_process import collector_tag, metrics_path, stop_collector

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
    env = {**os.environ, TAG_VARIABLE: collector_tag(project)}
    child = subprocess.Popen(["sleep", "30"], env=env, start_new_session=True)
    try:
        time.sleep(0.1)  # its environment is readable in /proc once it has started
        assert stop_collector(project) is True
        child.wait(timeout=10)
        assert not pid_alive(child.pid)
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()
