"""An open alert's line says the latest minute and the worst of the episode, in the rules
(core.alerts.alert_state) and in the metric store the collector keeps (what `relman
alerts`, `relman status` and the gate read), without a new event or a webhook post."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from core.alerts.alerting import Rules
from tests.core.test_collector import T0, TOML, World, alerts, make_world, serve_http, stop_http
from tests.core.test_collector_webhook import _delivered, _Hook

MINUTE0 = 1_700_000_040


def _error_rules() -> Rules:
    return Rules({}, service="iris", env="dev", only=["error_rate"])


def _point(error_rate: float) -> dict[str, float | None]:
    return {"rps": 5.0, "error_rate": error_rate, "p50_ms": 4.0, "p95_ms": 9.0, "p99_ms": 12.0}


def test_a_firing_line_follows_the_minutes_and_keeps_the_worst() -> None:
    rules = _error_rules()
    said: list[tuple[str, str]] = []
    refreshed: list[list[str]] = []
    for i, rate in enumerate([0.233, 0.330, 0.317, 0.02, 0.01]):
        moved = rules.evaluate(MINUTE0 + 60 * i, _point(rate), release="r1", up=True)
        said += [(t.state, t.detail) for t in moved]
        refreshed.append([t.detail for t in rules.refreshed])
    assert said == [
        ("pending", "error rate 23.3% > 5.0% for 1 of 2 min"),
        ("firing", "error rate 33.0% > 5.0% for 2 min"),
        ("resolved", "error rate 1.0% (worst 33.0%) <= 5.0%; clear for 2 min"),
    ]
    # The minutes in between change no state: their lines are refreshes, dated that minute.
    assert refreshed == [
        [],
        [],
        ["error rate 31.7% (worst 33.0%) > 5.0% for 3 min"],
        ["error rate 2.0% (worst 33.0%) <= 5.0%"],
        [],
    ]


def test_the_open_alert_reads_as_the_last_minute() -> None:
    rules = _error_rules()
    for i, rate in enumerate([0.233, 0.330, 0.317]):
        rules.evaluate(MINUTE0 + 60 * i, _point(rate), release="r1", up=True)
    [alert] = rules.current()
    assert alert.detail == "error rate 31.7% (worst 33.0%) > 5.0% for 3 min"
    assert alert.value == pytest.approx(0.317)
    assert "31.7% (worst 33.0%)" in alert.rollback
    # A restarted collector resumes the same worst.
    resumed = Rules.from_dict(rules.to_dict())
    resumed.evaluate(MINUTE0 + 180, _point(0.31), release="r1", up=True)
    assert resumed.current()[0].detail == "error rate 31.0% (worst 33.0%) > 5.0% for 4 min"


def test_a_new_episode_starts_a_new_worst() -> None:
    rules = _error_rules()
    rates = [0.5, 0.5, 0.0, 0.0] + [0.0] * 5 + [0.08, 0.07]
    for i, rate in enumerate(rates):
        rules.evaluate(MINUTE0 + 60 * i, _point(rate), release="r1", up=True)
    assert rules.current()[0].detail == "error rate 7.0% (worst 8.0%) > 5.0% for 2 min"


def _p99(detail: str) -> list[int]:
    return [int(n) for n in re.findall(r"(\d+) ms", detail)]


def test_the_stored_alert_follows_without_an_event_nor_a_post(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    hook = serve_http(_Hook, posts=[], refuse=0)
    url = f"http://127.0.0.1:{hook.server_port}/hook"
    try:
        with make_world(tmp_path, monkeypatch, TOML + f'webhook = "{url}"\n') as world:
            collector = world.collector()
            world.minutes(collector, 0, 0)
            world.minutes(collector, 1, 1, seconds=2.0)
            world.minutes(collector, 2, 2, seconds=20.0)  # the worst minute
            world.minutes(collector, 3, 3, seconds=2.0)
            world.now[0] = T0 + 4 * 60
            collector.run_pass()  # minute 3 judged
            [row] = alerts(world, "latency_p99")
            events = _events(world, row.id)
        delivered = _delivered(hook)
    finally:
        stop_http(hook)
    assert row.state == "firing" and row.updated == T0 + 3 * 60
    now, worst, limit = _p99(row.detail)
    assert (limit, row.value) == (500, pytest.approx(now, abs=1))
    assert worst > now > 500, row.detail
    assert f"{now} ms (worst {worst} ms) > 500 ms for 3 min" in row.detail
    assert f"'latency_p99: {row.detail}'" in (row.rollback or "")
    assert [e.state for e in events] == ["firing"]  # the refreshes are not state changes
    assert delivered == [("latency_p99", "firing")]  # nor announcements


def _events(world: World, alert_id: int) -> list[Any]:
    with world.store() as store:
        return store.alert_events(alert_id)
