"""core.alerts.alerting and the modules it was split into: rules, the alert state machine,
rollback
commands, persistence, webhook."""

from __future__ import annotations

import json
import random
import shlex
import socket
import threading
from collections.abc import Iterator, Mapping
from http.server import BaseHTTPRequestHandler, HTTPServer
from typing import Any

import pytest

from core.alerts.alert_state import Transition, alert_document, rollback_command
from core.alerts.alerting import DEFAULTS, Rules, check_policy
from core.alerts.webhook import send_webhook
from core.errors import ConfigError

T0 = 1_700_000_040  # a minute start (Unix seconds)


def _minute(i: int) -> int:
    return T0 + 60 * i


def _point(**values: float | None) -> dict[str, float | None]:
    point: dict[str, float | None] = {
        "rps": 10.0,
        "error_rate": 0.0,
        "p50_ms": 40.0,
        "p95_ms": 120.0,
        "p99_ms": 200.0,
    }
    point.update(values)
    return point


def _p99_rules(**policy: float | str | bool) -> Rules:
    return Rules(policy, service="iris", env="prod", only=["latency_p99"])


def _feed(rules: Rules, p99: list[float | None], start: int = 0) -> list[tuple[int, str]]:
    out = []
    for i, value in enumerate(p99, start=start):
        for tr in rules.evaluate(_minute(i), _point(p99_ms=value), release="r1", up=True):
            out.append((i, tr.state))
    return out


def test_defaults_are_the_documented_parameters() -> None:
    assert DEFAULTS == {
        "latency_p99_ms": 500,
        "latency_for_minutes": 2,
        "error_rate_max": 0.05,
        "error_for_minutes": 2,
        "resolve_for_minutes": 2,
        "cooldown_minutes": 5,
        "season": "auto",
        "regression_ratio": 1.5,
        "regression_z": 4.0,
        "regression_for_minutes": 3,
        "regression_severe_ratio": 2.0,
        "regression_severe_z": 5.0,
        "regression_severe_for_minutes": 2,
        "drop_ratio": 2.0,
        "drop_for_minutes": 15,
        "trend_window_minutes": 30,
        "trend_min_slope": 0.01,
        "trend_p_max": 0.001,
        "leak_metric": "p95_ms",
        "leak_baseline_minutes": 10,
        "leak_k": 0.5,
        "leak_h": 8.0,
        "leak_min_sigma_ms": 2.0,
        "drift_psi_max": 0.2,
        "drift_window_minutes": 15,
        "drift_min_records": 200,
        "accuracy_max_drop": 0.05,
        "down_for_minutes": 1,
    }
    assert check_policy({}) == check_policy(DEFAULTS)


@pytest.mark.parametrize(
    ("policy", "needle"),
    [
        ({"latency_p99_ms": True}, "latency_p99_ms must be a number"),
        ({"latency_p99_ms": "500"}, "latency_p99_ms must be a number"),
        ({"latency_for_minutes": 1.5}, "latency_for_minutes must be a whole number"),
        ({"resolve_for_minutes": 0}, "resolve_for_minutes must be a whole number >= 1"),
        ({"leak_metric": "rps"}, "leak_metric must be one of p50_ms, p95_ms, p99_ms"),
        ({"leak_h": 0}, "leak_h must be > 0"),
        ({"leak_k": -1}, "leak_k must be >= 0"),
    ],
)
def test_bad_parameters_name_themselves(policy: dict[str, Any], needle: str) -> None:
    with pytest.raises(ConfigError, match=needle):
        Rules(policy, service="iris", env="prod")


def test_unknown_parameters_only_rejected_when_strict() -> None:
    assert check_policy({"latency_p99_msx": 1})["latency_p99_ms"] == 500
    with pytest.raises(ConfigError, match="unknown monitoring parameter latency_p99_msx"):
        check_policy({"latency_p99_msx": 1}, strict=True)
    assert check_policy({"latency_for_minutes": 3.0})["latency_for_minutes"] == 3
    # an effective policy may carry collection keys and unset (None) values
    effective = check_policy({"webhook": None, "scrape_interval": 5.0, "leak_h": None})
    assert effective["leak_h"] == 8.0 and "webhook" not in effective


def test_pending_firing_resolved() -> None:
    rules = _p99_rules()
    trs: list[Transition] = []
    values = [200, 700, 740, 760, 300, 300, 300]
    for i, v in enumerate(values):
        trs += rules.evaluate(_minute(i), _point(p99_ms=v), release="r1", up=True)
    assert [(t.state, t.since_minute) for t in trs] == [
        ("pending", _minute(1)),
        ("firing", _minute(2)),
        ("resolved", _minute(5)),
    ]
    pending, firing, resolved = trs
    assert pending.detail == "p99 700 ms > 500 ms for 1 of 2 min"
    assert firing.detail == "p99 740 ms > 500 ms for 2 min"
    assert resolved.detail == "p99 300 ms (worst 760 ms) <= 500 ms; clear for 2 min"
    assert {t.opened_minute for t in trs} == {_minute(1)}
    assert firing.kind == "sudden" and firing.metric == "p99_ms"
    assert (firing.value, firing.threshold, firing.release) == (740, 500, "r1")
    assert firing.service == "iris" and firing.env == "prod"


def test_no_flapping_while_firing() -> None:
    rules = _p99_rules()
    # firing, then clear and breach alternate: never two clear minutes in a row
    got = _feed(rules, [600, 600] + [300, 600] * 10 + [300, 300])
    assert got == [(0, "pending"), (1, "firing"), (23, "resolved")]


def test_pending_clears_without_firing() -> None:
    got = _feed(_p99_rules(cooldown_minutes=0), [600, 300, 300, 600, 300])
    assert got == [(0, "pending"), (1, "resolved"), (3, "pending"), (4, "resolved")]


def test_cooldown_reopens_the_same_alert() -> None:
    rules = _p99_rules()
    trs: list[Transition] = []
    values = [600, 600, 300, 300, 600, 300, 600, 600, 300, 300]
    for i, v in enumerate(values):
        trs += rules.evaluate(_minute(i), _point(p99_ms=v), release="r1", up=True)
    # resolved at 3; the brief breach at 4 is ignored; the sustained one re-opens at 7
    assert [(t.state, t.since_minute, t.reopened) for t in trs] == [
        ("pending", _minute(0), False),
        ("firing", _minute(1), False),
        ("resolved", _minute(3), False),
        ("firing", _minute(7), True),
        ("resolved", _minute(9), False),
    ]
    assert {t.opened_minute for t in trs} == {_minute(0)}
    assert "re-opened within the 5 min cooldown" in trs[3].detail


def test_after_the_cooldown_a_new_alert_opens() -> None:
    rules = _p99_rules()
    got = _feed(rules, [600, 600, 300, 300] + [300] * 5 + [600, 600])
    assert got == [(0, "pending"), (1, "firing"), (3, "resolved"), (9, "pending"), (10, "firing")]
    assert {t.opened_minute for t in rules.current()} == {_minute(9)}


def test_missing_minutes_hold_and_old_minutes_are_ignored() -> None:
    rules = _p99_rules()
    got = _feed(rules, [600, None, None, 600, None, 300, None, 300])
    assert got == [(0, "pending"), (3, "firing"), (7, "resolved")]
    assert rules.evaluate(_minute(2), _point(p99_ms=900), release="r1", up=True) == []


def test_rollback_command_is_shell_quoted() -> None:
    detail = "p99 740 ms > 500 ms; it's $HOME `x`"
    command = rollback_command("my svc", "prod", "latency_p99", detail)
    assert command.startswith("relman rollback 'my svc' --env prod --reason ")
    assert shlex.split(command) == [
        "relman",
        "rollback",
        "my svc",
        "--env",
        "prod",
        "--reason",
        f"latency_p99: {detail}",
    ]
    rules = _p99_rules(latency_for_minutes=1)
    (tr,) = rules.evaluate(_minute(0), _point(p99_ms=740), release="r1", up=True)
    assert tr.rollback == (
        "relman rollback iris --env prod --reason 'latency_p99: p99 740 ms > 500 ms for 1 min'"
    )


def test_error_rate_down_drift_and_performance_rules() -> None:
    rules = Rules({}, service="iris", env="prod")
    trs = rules.evaluate(
        _minute(0),
        _point(error_rate=0.2),
        release="r1",
        up=False,
        drift={"petal_width": 0.31, "sepal_length": 0.05},
        accuracy=(0.871, 0.948),
    )
    by_rule = {t.rule: t for t in trs}
    assert by_rule["error_rate"].state == "pending"
    assert by_rule["error_rate"].detail == "error rate 20.0% > 5.0% for 1 of 2 min"
    assert by_rule["down"].state == "firing" and by_rule["down"].kind == "down"
    assert by_rule["down"].detail == "down for 1 min: scrape failed or /readyz not 200"
    drift = by_rule["drift:petal_width"]
    assert drift.kind == "drift" and drift.state == "firing"
    assert drift.detail == "petal_width PSI 0.31 > 0.20 over the last 15 min"
    assert "drift:sepal_length" not in by_rule and "drift:sepal_length" in rules.names
    perf = by_rule["performance"]
    assert perf.kind == "performance" and perf.baseline == 0.948
    assert perf.detail == "live accuracy 0.871, 0.077 below offline 0.948 (max drop 0.050)"
    # drift not computed this minute (too few records): held, not cleared
    trs = rules.evaluate(_minute(1), _point(), release="r1", up=True, drift=None)
    assert {t.rule for t in trs} == {"error_rate"}  # pending error rate cleared
    trs = rules.evaluate(_minute(2), _point(), release="r1", up=True, drift={"petal_width": 0.1})
    assert {(t.rule, t.state) for t in trs} == {("down", "resolved")}
    trs = rules.evaluate(_minute(3), _point(), release="r1", up=True, drift={"petal_width": 0.1})
    assert {(t.rule, t.state) for t in trs} == {("drift:petal_width", "resolved")}
    assert [t.rule for t in rules.current()] == ["performance"]


def _leak_series(seed: int, quiet: int, ramp: int) -> list[float]:
    rng = random.Random(seed)
    values = [120 + rng.gauss(0, 6) for _ in range(quiet)]
    values += [120 * (1 + 0.01 * (i + 1)) + rng.gauss(0, 6) for i in range(ramp)]
    return values


def test_latency_leak_fires_and_resets_with_the_release() -> None:
    rules = Rules({}, service="iris", env="prod", only=["latency_leak"])
    fired = None
    for i, v in enumerate(_leak_series(1, 30, 60)):
        for tr in rules.evaluate(_minute(i), _point(p95_ms=v), release="r1", up=True):
            if tr.state == "firing":
                fired = tr
    assert fired is not None and fired.kind == "leak"
    assert 30 < (fired.since_minute - T0) // 60 < 55
    assert "creeping up from baseline" in fired.detail and fired.baseline is not None
    # a rollback: the new release learns its own baseline and the alert resolves
    trs: list[Transition] = []
    for i in range(90, 95):
        trs += rules.evaluate(_minute(i), _point(p95_ms=121.0), release="r0", up=True)
    assert [(t.state, t.release) for t in trs] == [("resolved", "r0")]
    assert "learning baseline" in trs[0].detail


def test_error_leak_on_a_zero_baseline() -> None:
    rules = Rules({}, service="iris", env="prod", only=["error_leak"])
    states = []
    for i in range(60):
        rate = 0.0 if i < 20 else 0.03
        for tr in rules.evaluate(_minute(i), _point(error_rate=rate), release="r1", up=True):
            states.append((i, tr.state))
    assert len(states) == 1 and states[0][1] == "firing" and 20 < states[0][0] < 35


def test_state_round_trip_resumes_identically() -> None:
    values = _leak_series(4, 30, 40)

    def run(rules: Rules, start: int, stop: int) -> list[dict[str, Any]]:
        out = []
        for i in range(start, stop):
            point = _point(p95_ms=values[i], p99_ms=values[i] * 4)
            drift = {"f": 0.3 if i % 7 == 0 else 0.1}
            out += [
                t.to_dict()
                for t in rules.evaluate(_minute(i), point, release="r1", up=True, drift=drift)
            ]
        return out

    straight = Rules({}, service="iris", env="prod")
    expected = run(straight, 0, len(values))
    first = Rules({}, service="iris", env="prod")
    got = run(first, 0, 35)
    saved = json.loads(json.dumps(first.to_dict()))
    resumed = Rules.from_dict(saved)
    got += run(resumed, 35, len(values))
    assert got == expected and any(t["rule"] == "latency_leak" for t in got)
    assert resumed.to_dict() == straight.to_dict()


def test_from_dict_with_a_changed_policy_keeps_alerts() -> None:
    rules = _p99_rules()
    _feed(rules, [600, 600])
    resumed = Rules.from_dict(rules.to_dict(), {"latency_p99_ms": 550})
    assert [t.state for t in resumed.current()] == ["firing"]
    assert resumed.policy["latency_p99_ms"] == 550
    # the threshold's streak was dropped (new parameters), the alert is still open
    assert _feed(resumed, [300, 300], start=2) == [(3, "resolved")]


def test_alert_document_shapes() -> None:
    rules = _p99_rules(latency_for_minutes=1)
    (tr,) = rules.evaluate(_minute(0), _point(p99_ms=740), release="r1", up=True)
    doc = alert_document(tr)
    assert list(doc)[:9] == [
        "name",
        "kind",
        "service",
        "env",
        "state",
        "since",
        "detail",
        "release",
        "rollback",
    ]
    assert doc["name"] == "latency_p99" and doc["state"] == "firing"
    assert doc["since"] == "2023-11-14T22:14:00+00:00"
    assert doc["rollback"] == tr.rollback and doc["value"] == 740
    row: Mapping[str, Any] = {
        "rule": "down",
        "kind": "down",
        "state": "resolved",
        "since": _minute(1),
        "detail": "up",
        "release": None,
        "rollback": "relman rollback iris --env prod --reason 'down: up'",
    }
    doc = alert_document(row, service="iris", env="prod")
    assert doc["name"] == "down" and doc["service"] == "iris" and doc["env"] == "prod"
    assert doc["since"] == "2023-11-14T22:15:00+00:00"
    assert alert_document({**row, "since": "2023-11-14T22:15:00+00:00"})["since"] == doc["since"]


# -- webhook -----------------------------------------------------------------------------


class _Hook(BaseHTTPRequestHandler):
    received: list[tuple[str, str, bytes]] = []
    status = 200

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        _Hook.received.append((self.path, self.headers["Content-Type"], body))
        self.send_response(_Hook.status)
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"ok")

    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture
def hook() -> Iterator[str]:
    _Hook.received = []
    _Hook.status = 200
    server = HTTPServer(("127.0.0.1", 0), _Hook)
    thread = threading.Thread(target=server.serve_forever, args=(0.02,), daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/alerts"
    finally:
        server.shutdown()
        server.server_close()


def test_webhook_posts_json(hook: str) -> None:
    payload = {"ok": True, "alerts": [{"name": "latency_p99", "state": "firing"}]}
    assert send_webhook(hook, payload) is None
    ((path, ctype, body),) = _Hook.received
    assert path == "/alerts" and ctype == "application/json"
    assert json.loads(body) == payload


def test_webhook_http_error_is_a_line(hook: str) -> None:
    _Hook.status = 500
    error = send_webhook(hook, {"ok": True})
    assert error is not None and error.startswith(f"webhook {hook}: HTTP 500")
    assert "\n" not in error


def test_webhook_unreachable_and_bad_urls_never_raise() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    error = send_webhook(f"http://127.0.0.1:{port}/x", {"ok": True}, timeout=2)
    assert error is not None and error.startswith(f"webhook http://127.0.0.1:{port}/x: ")
    assert "refused" in error.lower()
    assert (
        send_webhook("file:///etc/passwd", {}) == "webhook file:///etc/passwd: not an http(s) URL"
    )
    error = send_webhook("http://[::1", {})
    assert error is not None and error.startswith("webhook http://[::1: ")


def test_webhook_timeout_is_a_line() -> None:
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(1)  # accepts the connection, never answers
        url = f"http://127.0.0.1:{listener.getsockname()[1]}/"
        assert send_webhook(url, {"ok": True}, timeout=0.2) == f"webhook {url}: timed out"
