"""The collector with ``source = "prometheus"`` against a REAL Prometheus (tests/prom_stack.py)
that scrapes a fake BentoML exporter (test_collector.py's FakeBento on a thread HTTP
server: the request counter by endpoint and code, the in-progress gauge, the duration
histogram) through the file_sd list the collector itself writes. The collector runs in
this process on the real clock (Prometheus stamps its samples with it) until it has stored
a minute's rollup, with rps and p95 from what Prometheus scraped."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from core.monitoring.collector import Collector
from core.targets import Instance
from store.metrics.store import MetricStore
from tests.core.test_collector import RELEASE, TOML, World, make_world
from tests.core.test_file_sd import RunningTarget
from tests.prom_stack import Server, needs_prometheus, prometheus_config, running_prometheus
from tests.waiting import wait_for

pytestmark = needs_prometheus

FILE_SD = ".relman/prometheus-targets.json"


@pytest.fixture
def live(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[World, Server]]:
    """Prometheus scraping the collector's file_sd list every second, and the world whose
    relman.toml reads from it; iris/dev served by the fake Bento."""
    listed = tmp_path / "shop" / FILE_SD  # make_world's project root is tmp_path/shop
    config = prometheus_config(file_sd=[listed], interval="1s")
    with running_prometheus(tmp_path / "prom", config) as prometheus:
        toml = (
            TOML.replace("scrape_interval = 0.05", "scrape_interval = 1.0")
            + f'source = "prometheus"\nprometheus_url = "{prometheus.url}"\n'
            + f'file_sd = "{FILE_SD}"\n'
        )
        with make_world(tmp_path, monkeypatch, toml) as world:
            target = RunningTarget(world.target.address, world.target.folder)
            target.running = [Instance(RELEASE, world.target.address, None)]
            world.target = target
            monkeypatch.setattr("core.targets.target_for", lambda project, service, env: target)
            yield world, prometheus


def test_the_collector_stores_rollups_from_what_real_prometheus_scraped(
    live: tuple[World, Server],
) -> None:
    world, prometheus = live
    collector = Collector(world.project, log=world.lines.append)  # on the real clock

    def rollups() -> list[Any]:
        collector.run_pass()
        if world.bento.requests < 10_000:
            world.bento.serve(5, 0.03)  # 30 ms each: the 0.025-0.05 bucket
        with MetricStore.open(world.project.metrics_path, readonly=True) as store:
            found = store.rollups("iris", "dev", 0, 2**31)
        return [r for r in found if r.rps > 0 and r.p95_ms is not None]

    found = wait_for(rollups, "a minute rolled up from Prometheus' samples", 180, 0.5)
    first = found[0]
    assert 25 < first.p95_ms <= 50  # interpolated in BentoML's 25-50 ms bucket
    assert first.latency_source == "histogram"  # no proxy in front: the histogram's
    assert first.error_rate == 0

    # Prometheus scraped the target the collector listed, with its labels
    [up] = prometheus.query('up{service="iris", env="dev"}')
    assert up["value"][1] == "1"
    assert up["metric"]["service_version"] == RELEASE
    assert up["metric"]["instance"] == world.target.address
    # what was stored is what Prometheus holds: the counter's value at a stored scrape
    with MetricStore.open(world.project.metrics_path, readonly=True) as store:
        row = store.last_scrape("iris", "dev")
    assert row is not None and row.release == RELEASE
    [held] = prometheus.get(
        "/api/v1/query",
        query='bentoml_service_request_total{service="iris", env="dev", endpoint="/predict"}',
        time=str(row.t + 0.999),
    )["data"]["result"]
    assert float(held["value"][1]) == row.requests
    assert not [line for line in world.lines if "Prometheus at" in line], world.lines
