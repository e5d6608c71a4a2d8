"""The webhook, through the collector: a firing alert and its resolution each arrive as one
JSON POST (the ``alerts`` entry of docs/json.md) at a local HTTP server; a post the endpoint refuses
is delivered on a later pass, in order, even by a restarted collector; so is one whose
collector was killed after the alert change was stored, exactly once; an alert that never
fired is not announced; an older collector.json's posts and offsets are taken over once."""

from __future__ import annotations

import json
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from core.alerts.webhook import Outbox
from core.monitoring.collector_process import metrics_path
from core.targets.monitor_log import MonitorReader
from store.metrics.store import MetricStore, MetricStoreBusy, Record, WebhookPost
from tests.core.test_collector import (
    RELEASE,
    T0,
    TOML,
    Killed,
    World,
    alerts,
    kill_after,
    make_world,
    record_ids,
    saved_offset,
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


def _slow_minute_one(world: World) -> Any:
    """A collector that watched minute 0 fast and minute 1 at 2 s a request."""
    collector = world.collector()
    world.minutes(collector, 0, 0)
    world.minutes(collector, 1, 1, seconds=2.0)
    return collector


def test_a_firing_alert_and_its_resolution_are_posted_as_json(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, hook: ThreadingHTTPServer
) -> None:
    with _world(tmp_path, monkeypatch, hook) as world:
        collector = _slow_minute_one(world)
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
        restarted = world.collector()  # the post waits in the metric store
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


def _killed_once_stored(
    world: World, monkeypatch: pytest.MonkeyPatch, collector: Any, minute: int
) -> None:
    """A pass at the start of ``minute`` whose collector is killed just after the alert
    change of the minute before is stored (before anything is posted)."""
    world.now[0] = T0 + minute * 60
    with monkeypatch.context() as patch:
        has_changes = lambda store, rollups, changes, *rest: bool(changes)  # noqa: E731
        kill_after(patch, "store.metrics.store.MetricStore.record_minute", when=has_changes)
        with pytest.raises(Killed):
            collector.run_pass()


def test_posts_of_alert_changes_stored_before_a_kill_are_delivered_once_after_restart(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, hook: ThreadingHTTPServer
) -> None:
    with _world(tmp_path, monkeypatch, hook) as world:
        collector = _slow_minute_one(world)
        _killed_once_stored(world, monkeypatch, collector, 2)  # minute 1 fires
        assert [a.state for a in alerts(world, "latency_p99")] == ["firing"]
        assert _delivered(hook) == []
        collector = world.collector()  # restarted: judges minute 1 again
        world.minutes(collector, 2, 2, seconds=2.0)
        world.minutes(collector, 3, 3)
        assert _delivered(hook) == [("latency_p99", "firing")]
        _killed_once_stored(world, monkeypatch, collector, 4)  # minute 3 resolves
        assert [a.state for a in alerts(world, "latency_p99")] == ["resolved"]
        collector = world.collector()  # restarted: judges minute 3 again
        world.minutes(collector, 4, 6)
    assert _delivered(hook) == [("latency_p99", "firing"), ("latency_p99", "resolved")]


def test_an_older_collector_json_hands_its_offsets_and_posts_to_the_store_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, hook: ThreadingHTTPServer
) -> None:
    url = f"http://127.0.0.1:{hook.server_port}/hook"
    with _world(tmp_path, monkeypatch, hook) as world:
        # What an older relman left: rows 1-2 stored, and in collector.json the offsets they
        # were read up to and a post its endpoint had refused.
        world.log_rows(1, 2)
        folder = world.log_file.parent.parent
        reader = MonitorReader(folder)
        rows = reader.read()
        with MetricStore.open(metrics_path(world.project)) as store:
            store.add_records(
                Record("iris", "dev", r.t, RELEASE, r.request_id, r.features, r.prediction, None)
                for r in rows
            )
        document = {"name": "latency_p99", "state": "firing", "service": "iris", "env": "dev"}
        state_file = world.project.state_dir / "collector.json"
        older = {
            "iris/dev": {"last_minute": T0 - 60, "readers": {str(folder): reader.state()}},
            "_webhooks": [{"url": url, "document": document}],
        }
        state_file.write_text(json.dumps(older))
        world.log_rows(3, 1)
        world.collector().run_pass()
        taken = "offsets and webhook posts taken over from .relman/collector.json into the"
        assert world.lines[0] == f"{taken} metric store"
        assert record_ids(world) == ["1", "2", "3"]  # rows 1-2 not read again
        assert _delivered(hook) == [("latency_p99", "firing")]
        assert saved_offset(world) == world.log_file.stat().st_size
        saved = json.loads(state_file.read_text())
        assert "_webhooks" not in saved and set(saved["iris/dev"]) == {"rules", "last_minute"}

        # Offsets are taken only while the store has none: older ones found now are not.
        state_file.write_text(json.dumps({"iris/dev": older["iris/dev"]}))
        world.now[0] += 20
        world.log_rows(4, 1)
        world.collector().run_pass()
        assert record_ids(world) == ["1", "2", "3", "4"]
    assert _delivered(hook) == [("latency_p99", "firing")]


class _LockedStore:
    """An outbox's store whose deletions meet a lock while ``locked``."""

    def __init__(self, posts: list[WebhookPost]) -> None:
        self.rows = posts
        self.locked = True
        self.removals = 0

    def webhook_posts(self) -> list[WebhookPost]:
        return list(self.rows)

    def remove_webhook_posts(self, ids: Any) -> None:
        self.removals += 1
        if self.locked:
            raise MetricStoreBusy(".relman/metrics.db: busy (test)")
        self.rows = [post for post in self.rows if post.id not in ids]


def test_posts_delivered_while_the_store_is_locked_are_not_posted_again(
    hook: ThreadingHTTPServer,
) -> None:
    url = f"http://127.0.0.1:{hook.server_port}/hook"
    store = _LockedStore(
        [WebhookPost(n, url, {"name": f"rule{n}", "state": "firing"}) for n in (1, 2)]
    )
    outbox = Outbox(store)
    assert outbox.deliver() == []
    assert store.removals == 1  # found locked once: the second post does not wait again
    assert outbox.deliver() == []  # still locked: skipped, not posted again
    store.locked = False
    assert outbox.deliver() == [] and store.rows == []
    assert _delivered(hook) == [("rule1", "firing"), ("rule2", "firing")]
