"""The collector against a real `bentoml serve` of the demo: scrapes, per-minute rollups,
a latency alert that fires, `alerts --check`, the `metrics` document, `policy explain`.

Time is the collector's own clock, started 90 minutes in the past and moved a minute per
loop, so that minutes of data take seconds; everything else is real: the Bento answers, its
/metrics is scraped, its latency is raised by the demo service's fault hook.
"""

from __future__ import annotations

import http.client
import json
import time
import urllib.request
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from core.config.model import Project, load_project
from core.monitoring.collector import Collector
from core.monitoring.collector_process import metrics_path, stop_collector
from core.traffic.faults import fault_spec, remove_fault, write_fault
from core.traffic.load import serving
from store.metrics.store import MetricStore
from tests.e2e.served import ports_of, relman, relman_json, served

pytestmark = pytest.mark.e2e
__all__ = ["served"]

SAMPLE = json.dumps({"features": [[5.1, 3.5, 1.4, 0.2], [6.7, 3.0, 5.2, 2.3]]}).encode()


def _requests(port: int, count: int) -> None:
    def one(_index: int) -> int:
        request = urllib.request.Request(
            f"http://127.0.0.1:{port}/predict",
            data=SAMPLE,
            headers={"Content-Type": "application/json"},
        )
        with urllib.request.urlopen(request, timeout=10) as answer:
            return int(answer.status)

    with ThreadPoolExecutor(count) as pool:
        assert set(pool.map(one, range(count))) == {200}


def _requests_closed_by_us(port: int, count: int) -> None:
    """Requests on keep-alive connections this side closes: the proxy's port is left with no
    TIME_WAIT, which would make `port_is_free` (a bind without SO_REUSEADDR) call the port
    taken for a minute after `relman down`."""
    for _ in range(count):
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        try:
            connection.request("POST", "/predict", SAMPLE, {"Content-Type": "application/json"})
            answer = connection.getresponse()
            answer.read()
            assert answer.status == 200
        finally:
            connection.close()


def _own_collector(project: Project, clock: Callable[[], float]) -> Collector:
    """A collector on a fake clock 90 minutes back, in place of the one promote started:
    that one may have stored a pass at the real time (scrapes, the last minute it judged),
    which a clock going back would never pass again."""
    assert stop_collector(project)
    for name in ("collector.json", "metrics.db", "metrics.db-wal", "metrics.db-shm"):
        (project.state_dir / name).unlink(missing_ok=True)
    return Collector(project, clock=clock)


def test_a_latency_spike_fires_an_alert_and_the_series_show_it(served: Path) -> None:
    root = served
    done = relman_json(root, "release")
    assert done["_exit"] == 0, done["_stderr"]
    project = load_project(root)
    port = ports_of(root)["dev"]
    t0 = (int(time.time()) // 60 - 90) * 60
    now = [t0]
    collector = _own_collector(project, lambda: now[0])
    fault = None
    try:
        for minute in range(6):
            if minute == 2:  # from the third minute on, every answer takes 600 ms more
                folder = serving(project, "iris", "dev").folder
                assert folder is not None
                fault = folder / "faults.json"
                spec = fault_spec("latency-spike", time.time())
                write_fault(fault, {**spec, "latency_ms": 600.0})
                # The service's contract, not a guess at the machine's speed: each worker
                # looks at the file again once a second has passed since it last looked,
                # so every request from 1 s after the write on sees the fault.
                time.sleep(1.1)
            for second in (0, 20, 40):
                now[0] = t0 + minute * 60 + second
                _requests(port, 4)
                collector.run_pass()
        now[0] = t0 + 6 * 60
        report = collector.run_pass()
    finally:
        if fault is not None:
            remove_fault(fault, json.loads(fault.read_text())["pid"])

    with MetricStore.open(metrics_path(project), readonly=True) as store:
        points = store.series("iris", "dev", t0, t0 + 6 * 60)
    assert [p.t for p in points] == [t0 + 60 * m for m in range(6)]
    assert all(p.rps and p.rps > 0 for p in points)
    assert points[0].p95_ms is not None and points[0].p95_ms < 100
    assert all(p.p99_ms is not None and p.p99_ms > 500 for p in points[3:])

    # the metrics document of docs/json.md, as `relman --json metrics` prints it
    metrics = relman_json(root, "metrics", "iris", "--env", "dev", "--range", "2h")
    assert metrics["_exit"] == 0 and metrics["ok"]
    assert len(metrics["points"]) == 6
    assert {"t", "rps", "error_rate", "p50_ms", "p95_ms", "p99_ms"} <= metrics["points"][0].keys()

    alerts = relman_json(root, "alerts")
    firing = [a for a in alerts["alerts"] if a["state"] == "firing"]
    assert [a["name"] for a in firing] == ["latency_p99"], (alerts["alerts"], report)
    [alert] = firing
    assert alert["release"] == done["release"]
    assert alert["rollback"].startswith("relman rollback iris --env dev --reason ")
    assert "> 500 ms" in alert["detail"]
    check = relman(root, "alerts", "--check")
    assert check.returncode == 1
    assert "latency_p99" in check.stdout

    # policy explain names the layer of each parameter
    explain = relman_json(root, "policy", "explain", "iris", "prod")
    sources = {p["name"]: p["source"] for p in explain["parameters"]}
    assert sources["latency_p99_ms"].startswith("assign #1 -> template latency (when env=")
    assert sources["error_rate_max"] == "built-in"


def test_no_down_alert_after_relman_down_and_a_new_promotion(served: Path) -> None:
    """`relman down --env dev` stops dev on purpose while the collector runs: neither the
    minutes it is down nor its promotion again raise a "service down" alert."""
    root = served
    done = relman_json(root, "release")
    assert done["_exit"] == 0, done["_stderr"]
    project = load_project(root)
    port = ports_of(root)["dev"]
    t0 = (int(time.time()) // 60 - 90) * 60
    now = [t0]
    collector = _own_collector(project, lambda: now[0])

    def minute(index: int, *, serving: bool = True) -> None:
        for second in (0, 20, 40):
            now[0] = t0 + index * 60 + second
            if serving:
                _requests_closed_by_us(port, 2)
            collector.run_pass()

    minute(0)
    minute(1)
    stopped = relman(root, "--batch", "down", "--env", "dev")
    assert stopped.returncode == 0, stopped.stderr
    for index in (2, 3, 4):
        minute(index, serving=False)
    again = relman_json(root, "promote", "iris", "--to", "dev", "--release", done["release"])
    assert again["_exit"] == 0, again["_stderr"]
    stop_collector(project)  # the promotion started one again
    for index in (5, 6, 7):
        minute(index)
    alerts = relman_json(root, "alerts")
    assert [a for a in alerts["alerts"] if a["kind"] == "down"] == [], alerts["alerts"]
    with MetricStore.open(metrics_path(project), readonly=True) as store:
        served_minutes = [p.t for p in store.series("iris", "dev", t0, t0 + 8 * 60)]
    assert served_minutes == [t0 + 60 * m for m in (0, 1, 5, 6)]


def test_each_environment_reports_its_own_counters(served: Path) -> None:
    """Instances of the same Bento in two environments keep their metrics apart (BentoML
    resets a shared Prometheus folder at each start: each instance has a home of its own)."""
    from core.monitoring.scrape import fetch_metrics, parse_scrape
    from core.targets import target_for

    root = served
    done = relman_json(root, "release", "--to", "staging")
    assert done["_exit"] == 0, done["_stderr"]
    project = load_project(root)
    ports = ports_of(root)
    _requests(ports["dev"], 7)
    _requests(ports["staging"], 3)
    counts = {}
    for env in ("dev", "staging"):
        instance = target_for(project, "iris", env).serving()
        assert instance is not None
        scrape = parse_scrape(fetch_metrics(instance.address), int(time.time()))
        assert scrape.release == done["release"]
        counts[env] = scrape.requests
    assert counts["dev"] - counts["staging"] == 4, counts
