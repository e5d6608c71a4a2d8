"""The demo released to dev with ``[monitoring] source = "prometheus"``: a real Prometheus
scrapes the environment through the file_sd list the collector (started by the promotion)
keeps, and `relman --json metrics iris --env dev` has per-minute points with rps and p95
read from it; `relman down` stops the collector, which empties the list."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pytest

from core.config.model import load_project
from store.metrics.store import MetricStore
from tests.e2e.served import git, ports_of, relman, relman_json, served
from tests.e2e.test_monitoring import _requests
from tests.prom_stack import Server, needs_prometheus, prometheus_config, running_prometheus
from tests.waiting import wait_for

pytestmark = [pytest.mark.e2e, needs_prometheus]
__all__ = ["served"]

FILE_SD = ".relman/prometheus-targets.json"
MONITORING = "[monitoring]\nscrape_interval = 5.0\n"


def release_read_from_prometheus(
    root: Path, prom: Server, *, scrape_interval: float = 5.0, more: str = ""
) -> tuple[str, dict[str, Any]]:
    """The demo's relman.toml set to read from ``prom`` through the file_sd list (with
    ``more`` lines of [monitoring]), committed and released to dev, and Prometheus
    scraping dev: the release and dev's ``up`` series."""
    config = root / "relman.toml"
    text = config.read_text()
    assert MONITORING in text
    config.write_text(
        text.replace(
            MONITORING,
            f"[monitoring]\nscrape_interval = {scrape_interval}\n"
            f'source = "prometheus"\nprometheus_url = "{prom.url}"\nfile_sd = "{FILE_SD}"\n' + more,
        )
    )
    git(root, "commit", "-qam", "metrics from Prometheus")
    done = relman_json(root, "release")  # to dev; the promotion starts the collector
    assert done["_exit"] == 0, done["_stderr"]
    release: str = done["release"]

    # the collector lists dev's instance; Prometheus scrapes it with the list's labels
    [up] = wait_for(
        lambda: prom.query('up{service="iris", env="dev"} == 1'),
        "Prometheus to scrape dev through the collector's file_sd list",
        120,
        0.5,
    )
    assert up["metric"]["service_version"] == release
    return release, up


def test_the_demo_in_dev_is_read_from_prometheus_through_the_file_sd_list(
    served: Path, tmp_path: Path
) -> None:
    root = served
    listed = root / FILE_SD
    with running_prometheus(tmp_path / "prom", prometheus_config(file_sd=[listed])) as prom:
        release, up = release_read_from_prometheus(root, prom)
        assert up["metric"]["version"].startswith("v")
        [group] = json.loads(listed.read_text())
        assert group["targets"] == [up["metric"]["instance"]]

        project = load_project(root)
        port = ports_of(root)["dev"]

        def rolled_up() -> list[Any]:
            _requests(port, 4)
            with MetricStore.open(project.metrics_path, readonly=True) as store:
                points = store.series("iris", "dev", int(time.time()) - 600, int(time.time()))
            return [p for p in points if p.rps and p.p95_ms is not None]

        wait_for(rolled_up, "a minute rolled up from Prometheus' samples", 240, 1.0)
        metrics = relman_json(root, "metrics", "iris", "--env", "dev", "--range", "10m")
        assert metrics["_exit"] == 0 and metrics["ok"]
        assert metrics["source"] == {"name": "prometheus", "problem": None}
        points = [p for p in metrics["points"] if p["rps"] > 0 and p["p95_ms"] is not None]
        assert points, metrics
        # what the collector stored is what Prometheus holds at that scrape's time
        with MetricStore.open(project.metrics_path, readonly=True) as store:
            row = store.last_scrape("iris", "dev")
        assert row is not None and row.release == release
        query = 'sum(bentoml_service_request_total{service="iris", env="dev", endpoint="/predict"})'
        [held] = prom.get("/api/v1/query", query=query, time=f"{row.t + 0.999}")["data"]["result"]
        assert float(held["value"][1]) == row.requests
        log = (project.state_dir / "collector.log").read_text()
        assert "Prometheus" not in log, log  # never down, slow, silent, nor several series

        stopped = relman(root, "--batch", "down")
        assert stopped.returncode == 0, stopped.stderr
        assert json.loads(listed.read_text()) == []
