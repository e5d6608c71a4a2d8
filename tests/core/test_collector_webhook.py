"""The webhook, through the collector: a firing alert and its resolution each arrive as one
JSON POST (DESIGN.md's ``alerts`` entry) at a local HTTP server; a post the endpoint refuses
is delivered on a later pass, in order, even by a restarted collector; an alert that never
fired is not announced."""

from __future__ import annotations

import json
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from tests.core.test_collector import (
    RELEASE,
    T0,
    TOML,
    World,
    alerts,
    make_world,
    serve_http,
    stop_http,
)


class _Hook(BaseHTTPRequestHandler):
    """Records every POST; answers 500 to the first ``server.refuse`` of them."""

    def do_POST(self) -> None:
        server: Any = self.server
        body = self.rfile.read(int(self.headers["Content-Length"]))
        refused = server.refuse > 0
        server.refuse -= refused
        server.posts.append(
            {
                "path": self.path,
                "type": self.headers["Content-Type"],
                "json": json.loads(body),
                "refused": refused,
            }
        )
        self.send_response(500 if refused else 200)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def hook() -> Iterator[ThreadingHTTPServer]:
    httpd = serve_http(_Hook, posts=[], refuse=0)
    try:
        yield httpd
    finally:
        stop_http(httpd)


def _world(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, hook: ThreadingHTTPServer, extra: str = ""
) -> Any:
    url = f"http://127.0.0.1:{hook.server_port}/hook"
    return make_world(tmp_path, monkeypatch, TOML + f'webhook = "{url}"\n' + extra)


def _delivered(hook: ThreadingHTTPServer) -> list[tuple[str, str]]:
    posts: list[dict[str, Any]] = hook.posts  # type: ignore[attr-defined]
    return [(p["json"]["name"], p["json"]["state"]) for p in posts if not p["refused"]]


def _slow_then_well(world: World, collector: Any) -> None:
    """Minute 0 fast, minutes 1-2 at 2 s a request, minutes 3-5 fast again; then minute 6."""
    world.minutes(collector, 0, 0)
    world.minutes(collector, 1, 2, seconds=2.0)
    world.minutes(collector, 3, 5)
    world.now[0] = T0 + 6 * 60
    collector.run_pass()


def test_a_firing_alert_and_its_resolution_are_posted_as_json(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, hook: ThreadingHTTPServer
) -> None:
    with _world(tmp_path, monkeypatch, hook) as world:
        collector = world.collector()
        world.minutes(collector, 0, 0)
        world.minutes(collector, 1, 1, seconds=2.0)
        assert _delivered(hook) == []  # minute 1 is judged once it is over
        world.now[0] = T0 + 2 * 60
        collector.run_pass()
        assert _delivered(hook) == [("latency_p99", "firing")]
        world.minutes(collector, 2, 2, seconds=2.0)
        world.minutes(collector, 3, 4)
        [alert] = alerts(world, "latency_p99")
    posts: list[dict[str, Any]] = hook.posts  # type: ignore[attr-defined]
    assert [(p["path"], p["type"]) for p in posts] == [("/hook", "application/json")] * 2
    firing, resolved = (p["json"] for p in posts)
    assert firing["detail"].startswith("p99 ") and "> 500 ms" in firing["detail"]
    assert firing == {
        "name": "latency_p99",
        "kind": "sudden",
        "service": "iris",
        "env": "dev",
        "state": "firing",
        "since": "2026-09-21T14:01:00+00:00",
        "detail": firing["detail"],
        "release": RELEASE,
        "rollback": firing["rollback"],
        "value": firing["value"],
        "threshold": 500.0,
        "baseline": None,
    }
    assert firing["value"] > 500
    assert firing["rollback"].startswith("relman rollback iris --env dev --reason ")
    assert resolved["state"] == "resolved" and resolved["name"] == "latency_p99"
    assert resolved["since"] == "2026-09-21T14:03:00+00:00"  # minute 3, the first clear one
    assert (alert.state, alert.since) == ("resolved", T0 + 3 * 60)


def test_a_refused_post_is_delivered_later_in_order_even_after_a_restart(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, hook: ThreadingHTTPServer
) -> None:
    hook.refuse = 2  # type: ignore[attr-defined]
    with _world(tmp_path, monkeypatch, hook) as world:
        collector = world.collector()
        world.minutes(collector, 0, 1, seconds=0.01)
        world.minutes(collector, 2, 2, seconds=2.0)
        world.now[0] = T0 + 3 * 60
        report = collector.run_pass()  # minute 2 fires: refused
        url = f"http://127.0.0.1:{hook.server_port}/hook"
        assert report.problems == [
            f"webhook {url}: HTTP 500 Internal Server Error; 1 post(s) kept, tried again"
        ]
        world.now[0] += 20
        collector.run_pass()  # refused again
        assert _delivered(hook) == []
        restarted = world.collector()  # the post waits in collector.json
        world.now[0] += 20
        restarted.run_pass()
        assert _delivered(hook) == [("latency_p99", "firing")]
        world.minutes(restarted, 4, 5)
    assert _delivered(hook) == [("latency_p99", "firing"), ("latency_p99", "resolved")]


def test_an_alert_that_cleared_before_firing_is_not_announced(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, hook: ThreadingHTTPServer
) -> None:
    extra = "\n[environments.dev.monitoring]\nlatency_for_minutes = 3\n"
    with _world(tmp_path, monkeypatch, hook, extra) as world:
        _slow_then_well(world, world.collector())
        [alert] = alerts(world, "latency_p99")
    assert alert.state == "resolved"  # pending for two minutes, then cleared
    assert hook.posts == []  # type: ignore[attr-defined]
