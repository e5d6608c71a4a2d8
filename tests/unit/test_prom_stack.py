"""The test harness for real Prometheus and Alertmanager (tests/prom_stack.py): both start on
free loopback ports, Prometheus scrapes a file_sd list and answers PromQL, Alertmanager takes
an alert on its v2 API and lists it."""

from __future__ import annotations

import http.client
import json
import time
from pathlib import Path

from tests.prom_stack import (
    needs_prometheus,
    prometheus_config,
    running_alertmanager,
    running_prometheus,
)

pytestmark = needs_prometheus


def test_prometheus_scrapes_a_file_sd_list_and_alertmanager_lists_a_posted_alert(
    tmp_path: Path,
) -> None:
    with running_alertmanager(tmp_path / "am") as alertmanager:
        targets = tmp_path / "targets.json"
        with running_prometheus(
            tmp_path / "prom", prometheus_config(file_sd=[targets], alertmanager=alertmanager.url)
        ) as prometheus:
            # Prometheus scrapes itself through the list, with the labels the list gives.
            address = prometheus.url.removeprefix("http://")
            targets.write_text(json.dumps([{"targets": [address], "labels": {"env": "dev"}}]))
            deadline = time.monotonic() + 60
            while not prometheus.query('up{env="dev"} == 1'):
                assert time.monotonic() < deadline, "the file_sd target was never scraped"
                time.sleep(0.2)
        host, port = alertmanager.url.removeprefix("http://").rsplit(":", 1)
        conn = http.client.HTTPConnection(host, int(port), timeout=10)
        alert = [{"labels": {"alertname": "probe", "service": "iris", "env": "dev"}}]
        conn.request(
            "POST", "/api/v2/alerts", json.dumps(alert), {"Content-Type": "application/json"}
        )
        assert conn.getresponse().status == 200
        conn.close()
        listed = alertmanager.get("/api/v2/alerts")
        assert [a["labels"]["service"] for a in listed] == ["iris"]
