"""Issue 16's chain with real processes: the demo released to dev with ``[monitoring]
source = "prometheus"``, a real Prometheus scraping dev through the file_sd list the
collector keeps, and a real Alertmanager at ``alertmanager_url``. An injected error burst
shows in `relman metrics` (read from Prometheus), fires `error_rate` in relman, arrives at
Alertmanager with its service and env labels, is shown silenced by `relman alerts` once a
silence for iris/dev is created there, and resolves in both when clean traffic follows.
The same Prometheus, loaded with `relman policy export --format prometheus`, fires the
exported error-rate rule under the same burst.

The policy's windows are the shortest the rules allow (one minute to fire, one clear minute
to resolve, no cooldown; the collector reads every second), so the chain takes about three
minutes of real time after the release.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pytest

from core.alerts.alertmanager import iso
from core.config.model import load_project
from store.metrics.store import MetricStore
from tests.e2e.prometheus_setup import FILE_SD, release_read_from_prometheus
from tests.e2e.served import relman, relman_json, served
from tests.prom_stack import (
    Server,
    needs_prometheus,
    prometheus_config,
    running_alertmanager,
    running_prometheus,
)
from tests.waiting import wait_for

pytestmark = [pytest.mark.e2e, pytest.mark.slow, needs_prometheus]
__all__ = ["served"]  # the fixture, imported for pytest


def _relman_alert(root: Path, release: str, state: str) -> dict[str, Any] | None:
    """relman's error_rate alert of iris/dev for ``release`` when in ``state``, with the
    whole ``alerts`` document under ``_document``."""
    document = relman_json(root, "alerts")
    assert document["_exit"] == 0, document["_stderr"]
    for alert in document["alerts"]:
        if (alert["name"], alert["env"], alert["release"]) == ("error_rate", "dev", release):
            return {**alert, "_document": document} if alert["state"] == state else None
    return None


def _am_alerts(am: Server) -> list[dict[str, Any]]:
    """The error_rate alerts of iris/dev Alertmanager's ``GET /api/v2/alerts`` lists (it
    leaves out those whose ``endsAt`` has passed: the resolved)."""
    return [
        alert
        for alert in am.get("/api/v2/alerts")
        if alert["labels"].get("alertname") == "error_rate"
        and alert["labels"].get("service") == "iris"
        and alert["labels"].get("env") == "dev"
    ]


def _traffic(root: Path, *args: str) -> None:
    done = relman(root, "--batch", "traffic", "iris", "--env", "dev", *args)
    assert done.returncode == 0, done.stderr


def test_an_error_burst_read_from_prometheus_fires_in_relman_and_alertmanager(
    served: Path, tmp_path: Path
) -> None:
    root = served
    listed = root / FILE_SD
    rules = tmp_path / "relman-rules.yml"
    rules.write_text("groups: []\n")  # relman's export replaces it once relman.toml is set
    config = prometheus_config(file_sd=[listed], rule_files=[rules])
    with (
        running_alertmanager(tmp_path / "am") as am,
        running_prometheus(tmp_path / "prom", config) as prom,
    ):
        release, up = release_read_from_prometheus(
            root,
            prom,
            scrape_interval=1.0,
            more=f'alertmanager_url = "{am.url}"\n'
            "error_for_minutes = 1\nresolve_for_minutes = 1\ncooldown_minutes = 0\n",
        )
        exported = relman_json(
            root, "policy", "export", "--format", "prometheus", "--out", str(rules)
        )
        assert exported["_exit"] == 0 and exported["alerting"] > 0, exported
        prom.reload()
        wait_for(
            lambda: any(
                rule.get("name") == "RelmanErrorRate"
                for group in prom.get("/api/v1/rules")["data"]["groups"]
                for rule in group["rules"]
            ),
            "Prometheus to load the exported rules",
            60,
            0.5,
        )

        _traffic(root, "--rate", "10", "--duration", "0", "--inject", "error-burst", "--detach")
        firing = wait_for(
            lambda: _relman_alert(root, release, "firing"), "error_rate to fire in relman", 300, 1
        )
        assert firing["kind"] == "sudden" and "> 5.0% for 1 min" in firing["detail"], firing
        assert firing["_document"]["firing"] >= 1 and "silence" not in firing

        # the minutes relman judged are Prometheus' samples: rps, p95 and the burst's errors
        metrics = relman_json(root, "metrics", "iris", "--env", "dev", "--range", "10m")
        assert metrics["_exit"] == 0 and metrics["source"]["name"] == "prometheus", metrics
        points = [p for p in metrics["points"] if p["rps"] > 0 and p["p95_ms"] is not None]
        assert points and max(p["error_rate"] for p in points) > 0.05, metrics["points"]
        assert metrics["source"] == {"name": "prometheus", "problem": None}
        # the list names dev's instance with its version; what the collector stored is what
        # Prometheus holds at that scrape's time
        assert up["metric"]["version"].startswith("v")
        [group] = json.loads(listed.read_text())
        assert group["targets"] == [up["metric"]["instance"]]
        with MetricStore.open(load_project(root).metrics_path, readonly=True) as store:
            row = store.last_scrape("iris", "dev")
        assert row is not None and row.release == release
        query = 'sum(bentoml_service_request_total{service="iris", env="dev", endpoint="/predict"})'
        [held] = prom.get("/api/v1/query", query=query, time=f"{row.t + 0.999}")["data"]["result"]
        assert float(held["value"][1]) == row.requests

        # Alertmanager lists it under the labels a routing tree reads, not silenced
        [posted] = wait_for(lambda: _am_alerts(am), "the firing alert in Alertmanager", 60, 0.5)
        assert posted["labels"]["release"] == release
        assert posted["labels"]["severity"] == "critical"
        assert posted["status"]["state"] == "active", posted

        # Prometheus, with relman's exported rules, fires the error-rate rule as well
        def exported_firing() -> list[dict[str, Any]]:
            return [
                alert
                for alert in prom.get("/api/v1/alerts")["data"]["alerts"]
                if alert["labels"].get("alertname") == "RelmanErrorRate"
                and alert["labels"].get("service") == "iris"
                and alert["labels"].get("env") == "dev"
                and alert["state"] == "firing"
            ]

        [exported_alert] = wait_for(exported_firing, "the exported error-rate rule to fire", 180, 1)
        assert exported_alert["annotations"]["rollback"].startswith(
            "relman rollback iris --env dev"
        )

        # a silence of iris/dev created in Alertmanager: relman shows the alert silenced
        now = time.time()
        silence = am.post(
            "/api/v2/silences",
            {
                "matchers": [
                    {"name": "service", "value": "iris", "isRegex": False, "isEqual": True},
                    {"name": "env", "value": "dev", "isRegex": False, "isEqual": True},
                ],
                "startsAt": iso(now),
                "endsAt": iso(now + 3600),
                "createdBy": "ada",
                "comment": "fixing the burst",
            },
        )["silenceID"]
        silenced = _relman_alert(root, release, "firing")
        assert silenced is not None and silenced["silence"]["id"] == silence, silenced
        assert silenced["silence"]["by"] == "ada"
        assert silenced["silence"]["matchers"] == 'service="iris", env="dev"'
        document = silenced["_document"]
        assert document["firing"] == 0 and document["silenced"] >= 1 and document["ok"], document
        assert document["alertmanager"]["silences"] == 1
        text_alerts = relman(root, "--batch", "alerts", "--check")
        assert text_alerts.returncode == 0, text_alerts.stdout + text_alerts.stderr
        assert "silenced by ada" in text_alerts.stdout, text_alerts.stdout
        [muted] = _am_alerts(am)
        assert muted["status"]["state"] == "suppressed"
        assert muted["status"]["silencedBy"] == [silence]

        # the burst ends, clean traffic follows: resolved in relman, gone from Alertmanager
        _traffic(root, "--stop")
        assert not list((root / ".relman/envs/iris/dev/instances").glob("*/faults.json"))
        _traffic(root, "--rate", "10", "--duration", "0", "--detach")
        resolved = wait_for(
            lambda: _relman_alert(root, release, "resolved"), "error_rate to resolve", 300, 1
        )
        assert "silence" not in resolved
        wait_for(lambda: not _am_alerts(am), "the resolution in Alertmanager", 60, 0.5)
        log = (root / ".relman/collector.log").read_text()
        assert "Prometheus" not in log and "alertmanager" not in log, log

        stopped = relman(root, "--batch", "down")
        assert stopped.returncode == 0, stopped.stderr
        assert json.loads(listed.read_text()) == []
