"""The automatic rollback (core/delivery/auto_rollback.py) and how the collector hands it a
firing alert.

The rules are about the ledger, so the ledger is real and so is `relman rollback`'s code
(recover, clearance, the lock, the deploy steps, the audit); only the target is fake (an
instance is a name, switching is an assignment). At most once per release, never to a
release a rollback left, the next alert after an automatic rollback pages, a held lock is
not waited for, an alert about a release no longer live is left alone; every record of the
rollback is relman-collector's, and nothing else's actor changes.

Then the collector (tests/core/test_collector.py's harness: fake /metrics, real stores):
it acts only where the policy says ``auto_rollback``, and the line the action answers is the
alert's ``rollback`` in the store and in the webhook post, for the rest of the episode.
"""

from __future__ import annotations

import dataclasses
import os
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import ThreadingHTTPServer
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from core import api
from core.alerts.alert_state import Transition
from core.delivery.auto_rollback import COLLECTOR_ACTOR, plan, roll_back_on_firing
from core.host.processes import this_host
from core.targets import Instance
from store.ledger.records import PromotionKind
from tests.core.test_collector import T0, alerts, make_world
from tests.core.test_collector import TOML as COLLECTOR_TOML
from tests.core.test_collector_webhook import _Hook
from tests.store import add_release, open_ledger
from tests.waiting import wait_for

TOML = """\
[project]
name = "fraud"
gto_tags = false

[services.fraud]
bento = "service:Fraud"
model = ["model.pkl"]

[environments.prod]
port = 3102
approvals = 1
"""
A, B, C = "aaaaaaaaaaaa", "bbbbbbbbbbbb", "cccccccccccc"
VERSIONS = {A: "v1.0.0", B: "v1.1.0", C: "v1.2.0"}


@dataclass
class FakeTarget:
    """prod as a name: ``serving`` is the instance the environment routes to."""

    project: Any
    service: str
    env: str
    world: dict[str, Any]

    @property
    def url(self) -> str:
        return "http://127.0.0.1:3102"

    def prepare(self) -> None:
        pass

    def start(self, bento: str, release: str, *, log: Any, provenance: Any = None) -> Instance:
        self.world["started"].append(release)
        return Instance(release, f"127.0.0.1:{4000 + len(self.world['started'])}", None)

    def wait_ready(self, instance: Instance, timeout: float) -> float:
        return 0.1

    def smoke(self, instance: Instance, body: bytes, endpoint: str) -> Any:
        raise AssertionError("no sample request is configured")

    def switch(self, instance: Instance) -> None:
        self.world["serving"] = instance

    def serving(self) -> Instance | None:
        serving: Instance | None = self.world["serving"]
        return serving

    def routing(self) -> None:
        return None

    def instances(self) -> list[Instance]:
        return [self.world["serving"]] if self.world["serving"] else []

    def health(self) -> str | None:
        return None

    def stop(self, instance: Instance) -> None:
        pass

    def sweep(self, keep: Any) -> list[str]:
        return []

    def down(self) -> bool:
        return False


@dataclass
class Prod:
    """The project, and what its fake prod serves."""

    project: api.Project
    world: dict[str, Any]

    @property
    def root(self) -> Path:
        return self.project.root

    @property
    def serving(self) -> str | None:
        instance: Instance | None = self.world["serving"]
        return instance.release if instance is not None else None


@pytest.fixture
def prod(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Prod:
    """fraud with three releases; prod's target fake; the collector was started by alice."""
    monkeypatch.setenv("RELMAN_USER", "alice")
    (tmp_path / "relman.toml").write_text(TOML)
    project = api.load_project(tmp_path)
    with open_ledger(tmp_path) as ledger:
        for release, version in VERSIONS.items():
            add_release(ledger, release, version=version)
    world: dict[str, Any] = {"serving": None, "started": []}

    def target_for(project: Any, service: str, env: str) -> FakeTarget:
        return FakeTarget(project, service, env, world)

    monkeypatch.setattr("core.delivery.deploy.target_for", target_for)
    monkeypatch.setattr("core.delivery.recovery.target_for", target_for)
    monkeypatch.setattr(
        "core.build.bento_store.find_bento",
        lambda service, release: SimpleNamespace(tag=f"{service}:{release}"),
    )
    monkeypatch.setattr("core.monitoring.collector_process.ensure_collector", lambda p: None)
    return Prod(project, world)


def went_live(
    prod: Prod, release: str, *, kind: PromotionKind = "promote", actor: str = "alice"
) -> None:
    """``release`` recorded live in prod (and served by the fake target), by ``actor``."""
    with open_ledger(prod.root, actor=actor) as ledger:
        promotion = ledger.begin_promotion("fraud", "prod", release, kind=kind)
        ledger.finish_promotion(promotion.id, "done")
    prod.world["serving"] = Instance(release, "127.0.0.1:4000", None)


def firing(release: str, detail: str = "error rate 31.7% > 5.0% for 1 min") -> Transition:
    """An error_rate alert that starts firing in prod now, about ``release``."""
    minute = int(time.time()) // 60 * 60 - 60
    return Transition(
        rule="error_rate",
        kind="sudden",
        state="firing",
        since_minute=minute,
        detail=detail,
        value=0.317,
        threshold=0.05,
        baseline=None,
        release=release,
        rollback="relman rollback fraud --env prod --reason '...'",
        service="fraud",
        env="prod",
        metric="error_rate",
        opened_minute=minute,
    )


def promotions(prod: Prod) -> list[tuple[str, str, str | None, str, str]]:
    """prod's promotions that went live, oldest first: (kind, release, from, actor, reason)."""
    with open_ledger(prod.root) as ledger:
        done = ledger.done_promotions("fraud", "prod")
    return [(str(p.kind), p.release_id, p.previous_release_id, p.actor, p.reason) for p in done][
        ::-1
    ]


def events(prod: Prod, prefix: str = "rollback.") -> list[tuple[str, str, str, str]]:
    """The audit events of ``prefix``, oldest first: (action, actor, outcome, reason)."""
    with open_ledger(prod.root) as ledger:
        found = ledger.audit_events(limit=200)
    return [(e.action, e.actor, e.outcome, e.reason) for e in found if e.action.startswith(prefix)][
        ::-1
    ]


def decided(prod: Prod, alert: Transition) -> Any:
    with open_ledger(prod.root) as ledger:
        return plan(ledger, alert)


REASON = "error_rate: error rate 31.7% > 5.0% for 1 min"


def test_a_firing_alert_rolls_back_to_the_last_good_release_as_the_collector(
    prod: Prod,
) -> None:
    went_live(prod, A)
    went_live(prod, B)
    line = roll_back_on_firing(prod.project, firing(B))
    assert line is not None
    assert line.startswith(
        "rolled back automatically to v1.0.0 (aaaaaaa) from v1.1.0 (bbbbbbb) at "
    )
    assert line.endswith(" by relman-collector")
    assert prod.serving == A
    assert promotions(prod) == [
        ("promote", A, None, "alice", ""),
        ("promote", B, A, "alice", ""),
        ("rollback", A, B, COLLECTOR_ACTOR, REASON),
    ]
    # Every record of the rollback is the collector's, with the alert's line as the reason;
    # no approval was asked for (A was live in prod before) and nothing was forced.
    assert events(prod) == [
        ("rollback.intent", COLLECTOR_ACTOR, "intent", REASON),
        ("rollback.finish", COLLECTOR_ACTOR, "done", ""),
    ]
    with open_ledger(prod.root) as ledger:
        run = ledger.latest_run("rollback")
    assert run is not None
    assert (run.actor, run.status, run.details["reason"]) == (COLLECTOR_ACTOR, "passed", REASON)
    # ... and only the rollback's: the session's own actor is back.
    assert os.environ["RELMAN_USER"] == "alice"
    assert {e[1] for e in events(prod, "promote.")} == {"alice"}


def test_the_next_alert_after_an_automatic_rollback_pages_instead(prod: Prod) -> None:
    went_live(prod, A)
    went_live(prod, B)
    went_live(prod, C)
    assert roll_back_on_firing(prod.project, firing(C)) is not None  # back to B
    assert prod.serving == B

    # B fires too: rolling back again could go on forever (to A, then ...). It pages.
    line = roll_back_on_firing(prod.project, firing(B, "error rate 12.0% > 5.0% for 1 min"))
    assert line is not None and line.startswith(
        "not rolled back: prod was rolled back automatically to v1.1.0 (bbbbbbb) at "
    )
    assert line.endswith(
        "a second automatic rollback could loop, so on-call decides; to roll back by hand: "
        "relman rollback fraud --env prod --reason 'error_rate: error rate 12.0% > 5.0% for 1 min'"
    )
    assert prod.serving == B
    assert [p[:2] for p in promotions(prod)][-1] == ("rollback", B)
    [refused] = [e for e in events(prod) if e[0] == "rollback.auto"]
    assert refused[:3] == ("rollback.auto", COLLECTOR_ACTOR, "not done")
    assert refused[3].startswith("prod was rolled back automatically to v1.1.0")


def test_a_release_is_rolled_back_automatically_at_most_once(prod: Prod) -> None:
    went_live(prod, A)
    went_live(prod, B)
    assert roll_back_on_firing(prod.project, firing(B)) is not None
    went_live(prod, B, actor="bob")  # bob puts B back: it fires again
    line = roll_back_on_firing(prod.project, firing(B))
    assert line is not None and line.startswith(
        "not rolled back: v1.1.0 (bbbbbbb) was rolled back automatically once already (at "
    )
    assert prod.serving == B
    assert [p[0] for p in promotions(prod)] == ["promote", "promote", "rollback", "promote"]


def test_never_back_to_a_release_that_was_itself_rolled_back(prod: Prod) -> None:
    went_live(prod, A)
    went_live(prod, B)
    assert roll_back_on_firing(prod.project, firing(B)) is not None  # B -> A
    went_live(prod, B, actor="bob")
    went_live(prod, C, actor="bob")
    # The release live before C is B, which a rollback left: C goes back to A.
    assert decided(prod, firing(C)).target.id == A
    line = roll_back_on_firing(prod.project, firing(C))
    assert line is not None and line.startswith("rolled back automatically to v1.0.0 (aaaaaaa)")
    assert promotions(prod)[-1] == ("rollback", A, C, COLLECTOR_ACTOR, REASON)


def test_no_earlier_good_release_pages(prod: Prod) -> None:
    went_live(prod, A)
    line = roll_back_on_firing(prod.project, firing(A))
    assert line is not None
    assert line.startswith("not rolled back: no earlier release was live in prod to go back to;")
    assert [p[0] for p in promotions(prod)] == ["promote"]


def test_a_latency_drop_is_never_rolled_back(prod: Prod) -> None:
    went_live(prod, A)
    went_live(prod, B)
    drop = dataclasses.replace(
        firing(B, "p95 12 ms vs 40 ms this hour, last 7 days (x0.30)"),
        rule="latency_drop",
        kind="regression",
        metric="p95_ms",
    )
    line = roll_back_on_firing(prod.project, drop)
    assert line is not None and line.startswith("not rolled back: latency fell well below")
    assert [p[0] for p in promotions(prod)] == ["promote", "promote"]


def test_an_alert_about_a_release_no_longer_live_is_left_alone(prod: Prod) -> None:
    went_live(prod, A)
    went_live(prod, B)
    went_live(prod, A, kind="rollback", actor="carol")  # carol was quicker
    assert roll_back_on_firing(prod.project, firing(B)) is None
    assert [p[3] for p in promotions(prod)] == ["alice", "alice", "carol"]
    assert events(prod, "rollback.auto") == []


def test_the_same_alert_judged_again_says_what_it_did_and_does_not_act_twice(
    prod: Prod,
) -> None:
    """A collector killed after the rollback, before it stored the minute, judges the minute
    again: the alert still says it was rolled back, and nothing is rolled back twice."""
    went_live(prod, A)
    went_live(prod, B)
    alert = firing(B)
    first = roll_back_on_firing(prod.project, alert)
    assert roll_back_on_firing(prod.project, alert) == first
    assert [p[0] for p in promotions(prod)] == ["promote", "promote", "rollback"]


def test_a_held_lock_is_not_waited_for_and_the_next_firing_tries_again(
    prod: Prod,
) -> None:
    went_live(prod, A)
    went_live(prod, B)
    with open_ledger(prod.root, actor="bob") as ledger:  # bob's relman promotes C now
        held = ledger.begin_promotion("fraud", "prod", C, pid=os.getpid(), host=this_host())
    line = roll_back_on_firing(prod.project, firing(B))
    assert line is not None and line.startswith(
        f"not rolled back: prod is being promoted by bob (pid {os.getpid()}) since "
    )
    assert "to roll back by hand: relman rollback fraud --env prod --reason " in line
    assert prod.serving == B
    assert [e[:3] for e in events(prod)] == [("rollback.auto", COLLECTOR_ACTOR, "not done")]

    with open_ledger(prod.root, actor="bob") as ledger:
        ledger.finish_promotion(held.id, "failed", reason="bob gave up")
    line = roll_back_on_firing(prod.project, firing(B))  # the alert re-opens: the rules allow it
    assert line is not None and line.startswith("rolled back automatically to v1.0.0")
    assert prod.serving == A


# ----------------------------------------------------------------- through the collector


@dataclass
class Action:
    """A fake on_firing: records the alerts it is handed, answers ``line``."""

    line: str | None = "rolled back automatically to v0 (test)"
    seen: list[Transition] = field(default_factory=list)
    wait: threading.Event | None = None

    def __call__(self, project: Any, alert: Transition) -> str | None:
        self.seen.append(alert)
        if self.wait is not None:
            assert self.wait.wait(60)
        return self.line


@pytest.fixture
def hook() -> Iterator[ThreadingHTTPServer]:
    from tests.core.test_collector import serve_http, stop_http

    httpd = serve_http(_Hook, posts=[], refuse=0)
    try:
        yield httpd
    finally:
        stop_http(httpd)


def _toml(hook: ThreadingHTTPServer, auto: bool) -> str:
    url = f"http://127.0.0.1:{hook.server_port}/hook"
    return (
        COLLECTOR_TOML
        + f'webhook = "{url}"\n'
        + f"\n[environments.dev.monitoring]\nauto_rollback = {str(auto).lower()}\n"
    )


@pytest.mark.parametrize("auto", [True, False])
def test_the_collector_acts_where_the_policy_says_and_the_alert_says_what_was_done(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, hook: ThreadingHTTPServer, auto: bool
) -> None:
    action = Action()
    with make_world(tmp_path, monkeypatch, _toml(hook, auto)) as world:
        collector = world.collector(on_firing=action)
        world.minutes(collector, 0, 0)
        world.minutes(collector, 1, 2, seconds=2.0)  # slow: latency_p99 fires (for = 1)
        world.minutes(collector, 3, 4)  # fast again: it resolves
        [alert] = alerts(world, "latency_p99")
    posts = [p["json"] for p in hook.posts]  # type: ignore[attr-defined]
    assert [(p["name"], p["state"]) for p in posts] == [
        ("latency_p99", "firing"),
        ("latency_p99", "resolved"),
    ]
    if not auto:
        assert action.seen == []
        assert all(p["rollback"].startswith("relman rollback iris --env dev") for p in posts)
        return
    [seen] = action.seen  # once: the minutes after it only refresh the open alert
    assert (seen.rule, seen.state, seen.since_minute) == ("latency_p99", "firing", T0 + 60)
    # The webhook post, the stored alert after its refreshes, and its resolution say it.
    assert [p["rollback"] for p in posts] == [action.line, action.line]
    assert alert.rollback == action.line
    assert f"iris/dev: alert latency_p99: {action.line}" in world.lines


def test_an_action_that_does_nothing_leaves_the_alert_as_it_was(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, hook: ThreadingHTTPServer
) -> None:
    action = Action(line=None)
    with make_world(tmp_path, monkeypatch, _toml(hook, True)) as world:
        collector = world.collector(on_firing=action)
        world.minutes(collector, 0, 0)
        world.minutes(collector, 1, 1, seconds=2.0)
        world.now[0] = T0 + 2 * 60
        collector.run_pass()
        [alert] = alerts(world, "latency_p99")
    assert len(action.seen) == 1
    assert alert.rollback.startswith("relman rollback iris --env dev --reason 'latency_p99: ")


def test_the_collector_keeps_its_heartbeat_while_the_action_runs(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, hook: ThreadingHTTPServer
) -> None:
    from core.monitoring import firing_action
    from core.monitoring.collector_process import metrics_path
    from store.metrics.store import MetricStore

    monkeypatch.setattr(firing_action, "HEARTBEAT_SECONDS", 0.05)
    release = threading.Event()
    action = Action(wait=release)
    with make_world(tmp_path, monkeypatch, _toml(hook, True)) as world:
        collector = world.collector(on_firing=action)
        world.minutes(collector, 0, 0)
        world.minutes(collector, 1, 1, seconds=2.0)
        store = collector._open_store()
        assert store.claim_collector(os.getpid(), this_host(), T0 + 120)
        collector._pid = os.getpid()  # as run() holds the claim
        world.now[0] = T0 + 2 * 60
        passing = threading.Thread(target=collector.run_pass)
        passing.start()
        try:
            wait_for(lambda: action.seen, "the action to be handed the firing alert")
            world.now[0] = T0 + 2 * 60 + 45  # the action takes long: the clock goes on

            def beat() -> int:
                with MetricStore.open(metrics_path(world.project), readonly=True) as reader:
                    holder = reader.collector()
                return holder.heartbeat if holder is not None else 0

            wait_for(lambda: beat() == T0 + 2 * 60 + 45, "a heartbeat while the action runs")
        finally:
            release.set()
            passing.join(60)
        assert not passing.is_alive()
