"""The automatic rollback with real `bentoml serve` processes and the real collector (the one
the first promotion starts, on the real clock): dev sets ``auto_rollback``, two releases went
live there, an error burst is injected into the second, and dev is back on the first without
anyone running a command. The ledger's history and audit log name relman-collector and the
alert's line; the webhook post and `relman alerts` say it was rolled back; the audit chain
verifies.

The policy's windows are small (the error rate fires after one minute above its limit, a
scrape a second), so the burst is noticed within about a minute. The time from the burst's
start to the rollback is printed (`pytest -s`), not asserted: speed is not this test's to
judge.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from core.config.model import load_project
from core.ledger.releases import open_ledger
from store import PromotionRecord
from tests.core.test_collector import serve_http, stop_http
from tests.e2e.served import (
    environments,
    git,
    ports_of,
    predict,
    relman,
    relman_json,
    second_release,
    served,
)
from tests.waiting import wait_for

pytestmark = pytest.mark.e2e
__all__ = ["served"]  # the fixture, imported for pytest

COLLECTOR = "relman-collector"


class _Hook(BaseHTTPRequestHandler):
    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        self.server.posts.append(json.loads(body))  # type: ignore[attr-defined]
        self.send_response(200)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def hook() -> Iterator[ThreadingHTTPServer]:
    httpd = serve_http(_Hook, posts=[])
    try:
        yield httpd
    finally:
        stop_http(httpd)


def _automatic_rollback(root: Path) -> PromotionRecord | None:
    """dev's newest promotion when it is the collector's rollback, else None."""
    with open_ledger(load_project(root), read_only=True) as ledger:
        done = ledger.done_promotions("iris", "dev")
    return done[0] if done and done[0].actor == COLLECTOR else None


@pytest.mark.slow
def test_an_error_burst_is_rolled_back_without_a_command(
    served: Path, hook: ThreadingHTTPServer
) -> None:
    root = served
    with (root / "relman.toml").open("a") as config:
        config.write(
            "\n[environments.dev.monitoring]\n"
            "auto_rollback = true\n"
            "error_for_minutes = 1\n"
            "scrape_interval = 1.0\n"
            f'webhook = "http://127.0.0.1:{hook.server_port}/hook"\n'
        )
    git(root, "commit", "-qam", "dev rolls back by itself")
    first = relman_json(root, "release")
    assert first["_exit"] == 0, first["_stderr"]
    second_release(root)
    second = relman_json(root, "release")
    assert second["_exit"] == 0, second["_stderr"]
    good, bad = first["release"], second["release"]
    assert environments(root)["dev"]["release"] == bad

    started = relman(
        root,
        *("--batch", "traffic", "iris", "--env", "dev", "--rate", "10", "--duration", "0"),
        *("--inject", "error-burst", "--detach"),
    )
    assert started.returncode == 0, started.stderr
    instances = root / ".relman/envs/iris/dev/instances"
    fault = wait_for(
        lambda: next(iter(instances.glob(f"{bad}-*/faults.json")), None),
        "the error burst's fault file in the served instance",
    )
    assert fault is not None  # wait_for returns what held
    burst_since = float(json.loads(fault.read_text())["since"])

    rolled = wait_for(
        lambda: _automatic_rollback(root), "dev rolled back by the collector", timeout=300, poll=0.5
    )
    assert rolled is not None
    assert (rolled.kind, rolled.release_id, rolled.previous_release_id) == ("rollback", good, bad)
    finished = datetime.fromisoformat(rolled.finished_at or "").timestamp()
    print(f"\nerror burst started -> dev rolled back: {finished - burst_since:.1f} s")
    stopped = relman(root, "--batch", "traffic", "iris", "--env", "dev", "--stop")
    assert stopped.returncode == 0, stopped.stderr

    # dev serves the first release again, through its own port.
    dev = environments(root)["dev"]
    assert (dev["release"], dev["state"]) == (good, "live")
    assert predict(ports_of(root)["dev"]) == ["setosa", "virginica"]

    # History: the rollback is the collector's, its reason the alert's line.
    history = relman_json(root, "history", "--env", "dev")
    entries = [e for e in history["entries"] if e["kind"] in ("promotion", "rollback")]
    assert [(e["kind"], e["release"], e["actor"]) for e in entries] == [
        ("rollback", good, COLLECTOR),
        ("promotion", bad, "alice"),
        ("promotion", good, "alice"),
    ]
    reason = rolled.reason
    assert reason.startswith("error_rate: error rate ") and "> 5.0% for 1 min" in reason
    assert reason in entries[0]["summary"]

    # The audit log: every event of the rollback is the collector's, with that reason.
    with open_ledger(load_project(root), read_only=True) as ledger:
        events = ledger.audit_events(limit=500, env="dev")
    rollback_events = [e for e in events if e.action.startswith("rollback.")]
    assert {e.actor for e in rollback_events} == {COLLECTOR}
    assert [(e.action, e.reason) for e in rollback_events if e.action == "rollback.intent"] == [
        ("rollback.intent", reason)
    ]
    assert {e.actor for e in events if e.action.startswith("promote.")} == {"alice"}
    verified = relman(root, "--json", "audit", "verify")
    assert verified.returncode == 0 and json.loads(verified.stdout)["ok"] is True

    # The alert and its webhook post say it was done.
    said = f"rolled back automatically to {first['version']} ({good[:7]}) from "
    alerts = relman_json(root, "alerts")["alerts"]
    [alert] = [a for a in alerts if a["name"] == "error_rate" and a["release"] == bad]
    assert alert["rollback"].startswith(said), alert
    posts: list[dict[str, Any]] = hook.posts  # type: ignore[attr-defined]
    [post] = [p for p in posts if p["name"] == "error_rate" and p["state"] == "firing"]
    assert post["release"] == bad and post["rollback"] == alert["rollback"]
    assert post["rollback"].endswith(f" by {COLLECTOR}")
