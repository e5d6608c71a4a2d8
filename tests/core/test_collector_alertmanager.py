"""relman's alerts in a real Alertmanager (Debian's prometheus-alertmanager), through the
collector driven one pass at a time (tests/core/test_collector.py's harness): an error burst
in the scraped counters fires error_rate, Alertmanager lists it with the labels a route
matches (alertname, service, env, severity, kind, release) and relman's line and rollback
command, and routes it to its receiver; it resolves there when it resolves in relman. A down
Alertmanager is one line in the collector log, its posts kept and delivered in order once it
answers, while the webhook goes on."""

from __future__ import annotations

from http.server import ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from core.monitoring.collector import Collector
from tests.core.test_collector import (
    RELEASE,
    T0,
    TOML,
    World,
    alerts,
    make_world,
)
from tests.core.test_collector_webhook import hook
from tests.ports import worker_ports
from tests.prom_stack import Server, needs_prometheus, running_alertmanager
from tests.waiting import wait_for

pytestmark = needs_prometheus
__all__ = ["hook"]  # the fixture, imported for pytest

ERRORS = (
    'bentoml_service_request_total{{endpoint="/predict",http_response_code="500",'
    'service_name="iris",service_version="{release}"}} {count}\n'
)


def posts(hook: ThreadingHTTPServer) -> list[dict[str, Any]]:
    """The JSON documents posted to the hook (Alertmanager's notifications, relman's
    webhook)."""
    found: list[dict[str, Any]] = hook.posts  # type: ignore[attr-defined]
    return [post["json"] for post in found]


def passes(world: World, collector: Collector, first: int, last: int, errors: int = 0) -> None:
    """Passes at :00, :20 and :40 of minutes ``first`` .. ``last``, each after 6 good
    requests and ``errors`` answered 500."""
    for minute in range(first, last + 1):
        for second in (0, 20, 40):
            world.now[0] = T0 + minute * 60 + second
            world.bento.serve(6, 0.01)
            world.errors = getattr(world, "errors", 0) + errors  # type: ignore[attr-defined]
            count = world.errors  # type: ignore[attr-defined]
            world.bento.extra = ERRORS.format(release=world.bento.release, count=count)
            collector.run_pass()


def fire_then_clear(world: World, collector: Collector) -> None:
    """Minute 0 clean, minute 1 half errors (error_rate fires when it is judged, at 2:00)."""
    passes(world, collector, 0, 0)
    passes(world, collector, 1, 1, errors=6)
    world.now[0] = T0 + 2 * 60
    collector.run_pass()


def resolve(world: World, collector: Collector, last: int = 3) -> None:
    """Minutes 2 .. ``last`` clean: error_rate resolves when minute 2 is judged (a minute
    later after a rollback: the first minute of the new release has no rollup)."""
    passes(world, collector, 2, last)
    [alert] = alerts(world, "error_rate")
    assert alert.state == "resolved"


def listed(manager: Server, rule: str) -> list[dict[str, Any]]:
    """The alerts Alertmanager holds active (not resolved) named ``rule``."""
    return [a for a in manager.get("/api/v2/alerts") if a["labels"]["alertname"] == rule]


def received(manager: Server, status: str) -> float:
    """How many alerts of ``status`` (firing, resolved) Alertmanager took on its v2 API."""
    text = manager.get_text("/metrics")
    prefix = f'alertmanager_alerts_received_total{{status="{status}",version="v2"}} '
    return sum(float(line[len(prefix) :]) for line in text.splitlines() if line.startswith(prefix))


def test_an_error_burst_fires_in_alertmanager_with_its_labels_and_resolves_there(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, hook: ThreadingHTTPServer
) -> None:
    notify = f"http://127.0.0.1:{hook.server_port}/am"
    with running_alertmanager(tmp_path / "am", notify) as manager:
        toml = TOML + f'error_for_minutes = 1\nalertmanager_url = "{manager.url}"\n'
        with make_world(tmp_path, monkeypatch, toml) as world:
            collector = world.collector()
            fire_then_clear(world, collector)
            [fired] = alerts(world, "error_rate")
            assert fired.state == "firing"
            [alert] = wait_for(lambda: listed(manager, "error_rate"), "error_rate in Alertmanager")
            assert alert["labels"] == {
                "alertname": "error_rate",
                "service": "iris",
                "env": "dev",
                "severity": "critical",
                "kind": "sudden",
                "release": RELEASE,
            }
            assert alert["annotations"]["summary"] == fired.detail
            assert alert["annotations"]["rollback"] == fired.rollback
            assert alert["annotations"]["rollback"].startswith("relman rollback iris --env dev")
            assert alert["startsAt"].startswith("2026-09-21T14:01:00")  # the minute it fired
            assert alert["status"]["state"] == "active"
            # Alertmanager routed it to its receiver, firing.
            wait_for(
                lambda: any(p["status"] == "firing" for p in posts(hook)),
                "Alertmanager's firing notification",
            )

            resolve(world, collector)
            wait_for(lambda: not listed(manager, "error_rate"), "error_rate resolved there")
            notified = wait_for(
                lambda: [p for p in posts(hook) if p["status"] == "resolved"],
                "Alertmanager's resolved notification",
            )
    names = {a["labels"]["alertname"] for p in notified for a in p["alerts"]}
    assert "error_rate" in names
    assert not any("alertmanager" in line for line in world.lines)  # it never failed


def test_a_down_alertmanager_is_one_line_its_posts_kept_and_delivered_in_order(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, hook: ThreadingHTTPServer
) -> None:
    (port,) = worker_ports(1)  # nothing listens there yet
    url = f"http://127.0.0.1:{port}"
    webhook = f"http://127.0.0.1:{hook.server_port}/hook"
    toml = TOML + f'error_for_minutes = 1\nalertmanager_url = "{url}"\nwebhook = "{webhook}"\n'
    with make_world(tmp_path, monkeypatch, toml) as world:
        collector = world.collector()
        fire_then_clear(world, collector)
        resolve(world, collector)
        down = [line for line in world.lines if line.startswith(f"alertmanager {url}")]
        assert down == [
            f"alertmanager {url}: connection refused; relman's alerts are kept and posted when "
            "it answers"
        ]
        # The webhook was not held up behind it.
        assert [(p["name"], p["state"]) for p in posts(hook)] == [
            ("error_rate", "firing"),
            ("error_rate", "resolved"),
        ]
        with world.store() as store:
            kept = [(p.url, p.document["state"]) for p in store.webhook_posts()]
        assert (f"{url}/api/v2/alerts", "firing") in kept
        assert kept[-1] == (f"{url}/api/v2/alerts", "resolved")

        with running_alertmanager(tmp_path / "am", port=port) as manager:
            world.now[0] += 20
            collector.run_pass()
            assert world.lines[-1] == f"alertmanager {url}: answers again; relman's alerts posted"
            with world.store() as store:
                assert store.webhook_posts() == []
            # Both posts taken, the resolution last: nothing is left firing there.
            assert received(manager, "firing") >= 1
            assert received(manager, "resolved") >= 1
            assert listed(manager, "error_rate") == []


def test_an_alert_resolved_after_a_rollback_resolves_the_one_that_fired(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The release label is the one it fired for; the resolution, read under the release
    rolled back to, still ends that alert."""
    with running_alertmanager(tmp_path / "am") as manager:
        toml = TOML + f'error_for_minutes = 1\nalertmanager_url = "{manager.url}"\n'
        with make_world(tmp_path, monkeypatch, toml) as world:
            collector = world.collector()
            fire_then_clear(world, collector)
            [alert] = wait_for(lambda: listed(manager, "error_rate"), "error_rate in Alertmanager")
            assert alert["labels"]["release"] == RELEASE
            world.target.release = world.bento.release = "0f9e8d7c6b5a"  # rolled back
            resolve(world, collector, last=4)
            [row] = alerts(world, "error_rate")
            assert row.release == "0f9e8d7c6b5a"
            wait_for(lambda: not listed(manager, "error_rate"), "error_rate resolved there")
