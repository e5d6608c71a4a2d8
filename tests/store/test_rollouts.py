"""Rollouts in the ledger: recorded and read back, one open per environment, requests from
other commands, the driver's takeover, and what the audit log keeps of them."""

from __future__ import annotations

import multiprocessing
import sqlite3
from pathlib import Path
from typing import Any

import pytest

from core.errors import UsageError, release_error
from store import Ledger, LedgerConflict, RolloutRecord
from store.errors import InvalidRequest, RecordNotFound
from store.ledger.snapshot import latest_rollouts, open_rollouts
from tests.store import FakeClock, add_release, open_ledger

PLAN: list[dict[str, Any]] = [
    {"name": "weight 10%", "weight": 10, "pause": 60.0},
    {"name": "analysis health", "analysis": "health"},
    {"name": "weight 50%", "weight": 50, "pause": 60.0},
]


def _measurement(check: str, verdict: str, t: float, step: int = 1) -> dict[str, Any]:
    return {
        "check": check,
        "stable": "1.0% of 2400",
        "canary": "1.2% of 260",
        "verdict": verdict,
        "detail": f"{check}: {verdict}",
        "t": t,
        "step": step,
    }


def _begin(
    ledger: Ledger, env: str = "prod", *, pid: int | None = 4121, canary: str = "bbbbbbbbbbbb"
) -> RolloutRecord:
    """A rollout of release b beside the live a, under a fresh promotion intent."""
    promotion = ledger.begin_promotion("fraud", env, canary, pid=pid, host="h1")
    return ledger.begin_rollout(
        "fraud",
        env,
        promotion_id=promotion.id,
        run_id=None,
        strategy="canary",
        stable="aaaaaaaaaaaa",
        canary=canary,
        plan=PLAN,
        pid=pid,
        host="h1",
    )


def _two_releases(ledger: Ledger) -> None:
    add_release(ledger, "aaaaaaaaaaaa", version="v1.0.0")
    add_release(ledger, "bbbbbbbbbbbb", version="v1.1.0")


def test_a_rollout_round_trips(tmp_path: Path) -> None:
    clock = FakeClock()
    with open_ledger(tmp_path, clock) as ledger:
        _two_releases(ledger)
        run = ledger.start_run("promote", service="fraud", env="prod", release_id="bbbbbbbbbbbb")
        promotion = ledger.begin_promotion("fraud", "prod", "bbbbbbbbbbbb", pid=7, host="h1")
        begun = ledger.begin_rollout(
            "fraud",
            "prod",
            promotion_id=promotion.id,
            run_id=run.id,
            strategy="shadow",
            stable="aaaaaaaaaaaa",
            canary="bbbbbbbbbbbb",
            plan=PLAN,
            pid=7,
            host="h1",
        )
        assert (begun.phase, begun.step, begun.weight, begun.analysis) == ("progressing", 0, 0, [])
        assert begun.open and begun.finished_at is None and begun.request is None
        assert begun.actor == "alice" and begun.started_at == begun.updated_at
        clock.advance(minutes=1)
        ledger.update_rollout(begun.id, step=1, weight=10, detail="weight 10%\n mirrored")
        clock.advance(seconds=30)
        first = [_measurement("error-rate", "pass", 1.0), _measurement("latency", "pass", 1.0)]
        ledger.update_rollout(begun.id, analysis_append=first)
        ledger.update_rollout(begun.id, analysis_append=[_measurement("error-rate", "fail", 2.0)])
        moved = ledger.update_rollout(begun.id, phase="paused")
        assert moved.updated_at > begun.updated_at

    # What is on disk, through a fresh read-only connection.
    with Ledger.open(tmp_path / ".relman" / "ledger.db", readonly=True) as ledger:
        got = ledger.get_rollout(begun.id)
        assert got == moved
        assert ledger.latest_rollout("fraud", "prod") == got
        assert ledger.open_rollouts() == [got]
    assert got.promotion_id == promotion.id and got.run_id == run.id
    assert (got.strategy, got.stable, got.canary) == ("shadow", "aaaaaaaaaaaa", "bbbbbbbbbbbb")
    assert (got.phase, got.step, got.weight) == ("paused", 1, 10)
    assert got.detail == "weight 10% mirrored"  # one line, as every detail in the ledger
    assert got.plan == PLAN
    assert [(m["check"], m["verdict"], m["t"]) for m in got.analysis] == [
        ("error-rate", "pass", 1.0),
        ("latency", "pass", 1.0),
        ("error-rate", "fail", 2.0),
    ]
    assert got.analysis[0] == first[0]
    assert (got.pid, got.host) == (7, "h1")


def test_lookups_filter_by_service_and_environment(tmp_path: Path) -> None:
    with open_ledger(tmp_path) as ledger:
        _two_releases(ledger)
        assert ledger.latest_rollout("fraud", "prod") is None
        assert ledger.open_rollouts() == []
        prod = _begin(ledger, "prod")
        staging = _begin(ledger, "staging")
        assert [r.id for r in ledger.open_rollouts()] == [prod.id, staging.id]
        assert [r.id for r in ledger.open_rollouts(env="staging")] == [staging.id]
        assert ledger.open_rollouts(service="other") == []
        assert [r.id for r in ledger.open_rollouts("fraud", "prod")] == [prod.id]
        ledger.update_rollout(staging.id, phase="promoted", step=3, weight=100)
        assert [r.id for r in ledger.open_rollouts()] == [prod.id]
        latest = ledger.latest_rollout("fraud", "staging")
        assert latest is not None and (latest.id, latest.phase) == (staging.id, "promoted")
        with pytest.raises(RecordNotFound, match="no rollout #99 in"):
            ledger.get_rollout(99)
        expected_open = ledger.open_rollouts()
        expected_latest = [ledger.latest_rollout("fraud", env) for env in ("prod", "staging")]
    # The standard-library snapshot (status, the overview) reads the same records.
    path = tmp_path / ".relman" / "ledger.db"
    assert open_rollouts(path) == expected_open
    assert latest_rollouts(path) == expected_latest
    assert open_rollouts(tmp_path / "nothing" / "ledger.db") == []


def test_one_open_rollout_per_environment(tmp_path: Path) -> None:
    with open_ledger(tmp_path) as ledger:
        _two_releases(ledger)
        first = _begin(ledger)
        promotion = ledger.get_promotion(first.promotion_id)
        events = len(ledger.audit_events(limit=1000))
        with pytest.raises(
            LedgerConflict,
            match=r"prod already has rollout #1 of fraud progressing \(pid 4121\) since",
        ) as caught:
            ledger.begin_rollout(
                "fraud",
                "prod",
                promotion_id=promotion.id,
                run_id=None,
                strategy="canary",
                stable="aaaaaaaaaaaa",
                canary="bbbbbbbbbbbb",
                plan=PLAN,
                pid=1,
                host="h2",
            )
        assert isinstance(release_error(caught.value), UsageError)
        assert len(ledger.audit_events(limit=1000)) == events  # a refusal leaves no event
        ledger.update_rollout(first.id, phase="paused")  # paused is still open
        with pytest.raises(LedgerConflict, match="already has rollout #1 of fraud paused"):
            ledger.begin_rollout(
                "fraud",
                "prod",
                promotion_id=promotion.id,
                run_id=None,
                strategy="canary",
                stable=None,
                canary="bbbbbbbbbbbb",
                plan=[],
                pid=None,
                host=None,
            )
        _begin(ledger, "staging")  # another environment is free
        ledger.update_rollout(first.id, phase="aborted", detail="error-rate: fail")
        ledger.finish_promotion(promotion.id, "undone")
        again = _begin(ledger)
        assert again.id > first.id and again.open

    # Below the code's own check, the schema refuses a second open row too.
    conn = sqlite3.connect(tmp_path / ".relman" / "ledger.db")
    with pytest.raises(sqlite3.IntegrityError, match="UNIQUE"):
        conn.execute(
            "INSERT INTO rollouts (service, env, promotion_id, strategy, canary, phase, actor,"
            " started_at, updated_at) SELECT service, env, promotion_id, strategy, canary,"
            " 'paused', actor, started_at, updated_at FROM rollouts WHERE id = ?",
            [again.id],
        )
    conn.close()


def test_a_rollout_needs_an_open_promotion_of_its_environment(tmp_path: Path) -> None:
    with open_ledger(tmp_path) as ledger:
        _two_releases(ledger)
        add_release(ledger, "cccccccccccc", service="other")
        promotion = ledger.begin_promotion("fraud", "prod", "bbbbbbbbbbbb")

        def begin(**changes: Any) -> RolloutRecord:
            arguments: dict[str, Any] = {
                "promotion_id": promotion.id,
                "run_id": None,
                "strategy": "canary",
                "stable": "aaaaaaaaaaaa",
                "canary": "bbbbbbbbbbbb",
                "plan": PLAN,
                "pid": None,
                "host": None,
                **changes,
            }
            env = arguments.pop("env", "prod")
            return ledger.begin_rollout("fraud", env, **arguments)

        with pytest.raises(RecordNotFound, match="no promotion #42"):
            begin(promotion_id=42)
        with pytest.raises(InvalidRequest, match="is of fraud in prod, not fraud in staging"):
            begin(env="staging")
        with pytest.raises(InvalidRequest, match="cccccccccccc is not a release of fraud"):
            begin(canary="cccccccccccc")
        with pytest.raises(InvalidRequest, match="no release 'dddddddddddd'"):
            begin(stable="dddddddddddd")
        ledger.finish_promotion(promotion.id, "failed")
        with pytest.raises(LedgerConflict, match="already ended as failed"):
            begin()
        assert ledger.open_rollouts() == []


def test_ending_a_rollout_finishes_it_and_is_audited(tmp_path: Path) -> None:
    clock = FakeClock()
    with open_ledger(tmp_path, clock) as ledger:
        _two_releases(ledger)
        rollout = _begin(ledger)
        ledger.update_rollout(rollout.id, step=1, weight=10)
        ledger.request_rollout(rollout.id, "pause", actor="bob")
        clock.advance(minutes=2)
        aborted = ledger.update_rollout(
            rollout.id,
            phase="aborted",
            weight=0,
            detail="p95 412 ms vs stable 31 ms (x13.3 > x1.5): fail",
            analysis_append=[_measurement("latency", "fail", 120.0)],
            actor="relman-collector",
        )
        assert aborted.finished_at == aborted.updated_at
        assert aborted.request is None and aborted.requested_by is None  # nothing pending
        assert [m["verdict"] for m in aborted.analysis] == ["fail"]
        # Asking for the phase it ended in again is a no-op; anything else is refused.
        assert ledger.update_rollout(rollout.id, phase="aborted", detail="again") == aborted
        with pytest.raises(LedgerConflict, match="rollout #1 already ended as aborted"):
            ledger.update_rollout(rollout.id, phase="promoted")
        with pytest.raises(LedgerConflict, match="already ended as aborted"):
            ledger.update_rollout(rollout.id, weight=50)
        with pytest.raises(InvalidRequest, match="unknown phase 'done'"):
            ledger.update_rollout(rollout.id, phase="done")  # type: ignore[arg-type]
        events = ledger.audit_events(service="fraud", env="prod", limit=3)
    actions = [(e.action, e.outcome, e.actor) for e in events]
    # Newest first; the step and weight updates between were not audited.
    assert actions == [
        ("rollout.aborted", "aborted", "relman-collector"),
        ("rollout.pause", "requested", "bob"),
        ("rollout.begin", "progressing", "alice"),
    ]
    ended = events[0]
    assert ended.reason == "p95 412 ms vs stable 31 ms (x13.3 > x1.5): fail"
    assert ended.release_id == "bbbbbbbbbbbb"
    assert ended.details == {"rollout": 1, "stable": "aaaaaaaaaaaa", "step": 1, "weight": 0}
    assert events[2].details["strategy"] == "canary" and events[2].details["steps"] == 3


def test_requests_wait_for_the_driver_and_end_with_the_rollout(tmp_path: Path) -> None:
    clock = FakeClock()
    with open_ledger(tmp_path, clock) as ledger:
        _two_releases(ledger)
        rollout = _begin(ledger)
        clock.advance(seconds=5)
        paused = ledger.request_rollout(rollout.id, "pause", actor="bob")
        assert (paused.request, paused.requested_by) == ("pause", "bob")
        assert paused.requested_at == paused.updated_at > rollout.updated_at
        assert paused.phase == "progressing"  # asked, not yet done: the driver pauses it
        # A newer request replaces one not acted on; the driver's stale clear keeps it.
        ledger.request_rollout(rollout.id, "abort")
        assert ledger.clear_request(rollout.id, "pause") is False
        assert ledger.get_rollout(rollout.id).request == "abort"
        assert ledger.clear_request(rollout.id, "abort") is True
        cleared = ledger.get_rollout(rollout.id)
        assert (cleared.request, cleared.requested_by, cleared.requested_at) == (None, None, None)
        assert ledger.clear_request(rollout.id) is False  # nothing pending
        ledger.request_rollout(rollout.id, "promote")
        assert ledger.clear_request(rollout.id) is True
        with pytest.raises(InvalidRequest, match="unknown rollout request 'skip'"):
            ledger.request_rollout(rollout.id, "skip")  # type: ignore[arg-type]
        with pytest.raises(RecordNotFound, match="no rollout #5"):
            ledger.request_rollout(5, "pause")

        ledger.update_rollout(rollout.id, phase="promoted", weight=100, detail="all steps passed")
        events = len(ledger.audit_events(limit=1000))
        with pytest.raises(
            LedgerConflict,
            match="rollout #1 of fraud in prod already ended as promoted; there is nothing to "
            "abort",
        ) as caught:
            ledger.request_rollout(rollout.id, "abort", actor="carol")
        assert isinstance(release_error(caught.value), UsageError)
        assert len(ledger.audit_events(limit=1000)) == events
        assert ledger.get_rollout(rollout.id).request is None
        actions = [e.action for e in reversed(ledger.audit_events(limit=6))]
    assert actions[-5:] == [
        "rollout.begin",
        "rollout.pause",
        "rollout.abort",
        "rollout.promote",
        "rollout.promoted",
    ]


def test_claim_is_a_compare_and_set_on_the_driver(tmp_path: Path) -> None:
    with open_ledger(tmp_path) as ledger:
        _two_releases(ledger)
        rollout = _begin(ledger, pid=4121)
        assert ledger.claim_rollout(rollout.id, 999, pid=5000, host="h2") is False  # not it
        assert ledger.get_rollout(rollout.id).pid == 4121
        assert ledger.claim_rollout(rollout.id, 4121, pid=5000, host="h2", reason="pid 4121 died")
        claimed = ledger.get_rollout(rollout.id)
        assert (claimed.pid, claimed.host) == (5000, "h2")
        # A second process that also saw 4121 dead loses.
        assert ledger.claim_rollout(rollout.id, 4121, pid=6000, host="h3") is False
        [event] = ledger.audit_events(limit=1)
        assert (event.action, event.reason) == ("rollout.takeover", "pid 4121 died")
        assert event.details == {"rollout": 1, "from_pid": 4121, "pid": 5000, "host": "h2"}
        # A rollout begun without a holder can be claimed from None.
        unheld = _begin(ledger, "staging", pid=None)
        assert ledger.claim_rollout(unheld.id, None, pid=7000, host="h1") is True
        # An ended rollout has no driver to take over.
        ledger.update_rollout(claimed.id, phase="aborted", detail="stopped")
        assert ledger.claim_rollout(claimed.id, 5000, pid=8000, host="h1") is False


def _claim(path: str, pid: int, start: Any, results: Any) -> None:
    with Ledger.open(Path(path), actor=f"p{pid}") as ledger:
        start.wait()
        results.put((pid, ledger.claim_rollout(1, 4121, pid=pid, host="h")))


def test_of_processes_racing_to_claim_one_wins(tmp_path: Path) -> None:
    path = tmp_path / ".relman" / "ledger.db"
    with open_ledger(tmp_path) as ledger:
        _two_releases(ledger)
        _begin(ledger, pid=4121)
    context = multiprocessing.get_context("fork")
    start, results = context.Event(), context.Queue()
    pids = [9001, 9002, 9003, 9004]
    workers = [context.Process(target=_claim, args=(str(path), p, start, results)) for p in pids]
    for worker in workers:
        worker.start()
    start.set()
    outcomes = dict(results.get(timeout=60) for _ in workers)
    for worker in workers:
        worker.join(timeout=60)
        assert worker.exitcode == 0
    winners = [pid for pid, won in outcomes.items() if won]
    assert len(winners) == 1
    with Ledger.open(path, readonly=True) as ledger:
        assert ledger.get_rollout(1).pid == winners[0]
        assert [e.action for e in ledger.audit_events(limit=100)].count("rollout.takeover") == 1
