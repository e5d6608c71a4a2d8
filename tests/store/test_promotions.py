"""Promotion intents and results, approvals and environment state."""

from __future__ import annotations

from pathlib import Path

import pytest

from core.errors import BlockedError, release_error
from store import LedgerConflict, PromotionOpen, ReleaseNotFound
from store.errors import InvalidRequest
from tests.store import FakeClock, add_release, open_ledger


def test_one_open_promotion_per_environment(tmp_path: Path) -> None:
    with open_ledger(tmp_path) as ledger:
        add_release(ledger, "aaaaaaaaaaaa")
        first = ledger.begin_promotion("fraud", "prod", "aaaaaaaaaaaa", pid=4121, host="h1")
        assert (first.pid, first.host) == (4121, "h1")
        events = len(ledger.audit_events())
        with pytest.raises(
            PromotionOpen, match=r"prod is being promoted by alice \(pid 4121\) since"
        ) as caught:
            ledger.begin_promotion("fraud", "prod", "aaaaaaaaaaaa")
        assert caught.value.promotion == first
        assert isinstance(release_error(caught.value), BlockedError)  # exit 1
        assert len(ledger.audit_events()) == events  # a refused change leaves no event
        ledger.begin_promotion("fraud", "staging", "aaaaaaaaaaaa")  # other envs are free
        ledger.finish_promotion(first.id, "failed", reason="health check timed out")
        with pytest.raises(LedgerConflict, match="already ended as failed"):
            ledger.finish_promotion(first.id, "done")
        assert ledger.environment_state("fraud", "prod") is None  # failed: nothing went live
        ledger.begin_promotion("fraud", "prod", "aaaaaaaaaaaa")


def test_done_promotion_sets_state_and_remembers_previous(tmp_path: Path) -> None:
    clock = FakeClock()
    with open_ledger(tmp_path, clock) as ledger:
        add_release(ledger, "aaaaaaaaaaaa", version="v1.0.0")
        add_release(ledger, "bbbbbbbbbbbb", version="v1.1.0")
        first = ledger.begin_promotion("fraud", "prod", "aaaaaaaaaaaa")
        ledger.finish_promotion(first.id, "done", url="http://h:1", pid=10)
        clock.advance(hours=1)
        second = ledger.begin_promotion("fraud", "prod", "bbbbbbbbbbbb")
        assert second.previous_release_id == "aaaaaaaaaaaa"
        done = ledger.finish_promotion(second.id, "done", url="http://h:1", pid=11)
        state = ledger.environment_state("fraud", "prod")
        assert state is not None
        assert (state.release_id, state.version, state.state, state.pid) == (
            "bbbbbbbbbbbb",
            "v1.1.0",
            "live",
            11,
        )
        assert state.since == done.finished_at


def test_environment_state_since_moves_only_on_change(tmp_path: Path) -> None:
    clock = FakeClock()
    with open_ledger(tmp_path, clock) as ledger:
        add_release(ledger, "aaaaaaaaaaaa")
        first = ledger.set_environment_state("fraud", "dev", "live", release_id="aaaaaaaaaaaa")
        clock.advance(minutes=5)
        same = ledger.set_environment_state("fraud", "dev", "live", pid=99)
        assert same.since == first.since and same.updated_at > first.updated_at
        assert same.release_id == "aaaaaaaaaaaa" and same.pid == 99
        clock.advance(minutes=5)
        down = ledger.set_environment_state("fraud", "dev", "down")
        assert down.since == down.updated_at > same.since
        assert down.release_id == "aaaaaaaaaaaa"  # what was last deployed there
        assert [s.env for s in ledger.environment_states("fraud")] == ["dev"]
        assert [e.action for e in ledger.audit_events(limit=3)] == ["env.state"] * 3


def test_approvals(tmp_path: Path) -> None:
    with open_ledger(tmp_path) as ledger:
        add_release(ledger, "aaaaaaaaaaaa")
        ledger.approve("aaaaaaaaaaaa", "prod", actor="bob")
        again = ledger.approve("aaaaaaaaaaaa", "prod", actor="bob", comment="retry")
        assert again.comment == ""  # the first approval stands
        ledger.approve("aaaaaaaaaaaa", "prod", actor="carol")
        ledger.approve("aaaaaaaaaaaa", "staging")
        assert [a.actor for a in ledger.approvals("aaaaaaaaaaaa", "prod")] == ["bob", "carol"]
        assert len(ledger.approvals("aaaaaaaaaaaa")) == 3
        with pytest.raises(ReleaseNotFound):
            ledger.approve("nope", "prod")


def test_promotion_must_match_the_service(tmp_path: Path) -> None:
    with open_ledger(tmp_path) as ledger:
        add_release(ledger, "aaaaaaaaaaaa", service="churn")
        with pytest.raises(InvalidRequest, match="belongs to churn, not fraud"):
            ledger.begin_promotion("fraud", "prod", "aaaaaaaaaaaa")


def test_done_promotions_newest_first_skip_failed(tmp_path: Path) -> None:
    clock = FakeClock()
    with open_ledger(tmp_path, clock) as ledger:
        for rid in ("aaaaaaaaaaaa", "bbbbbbbbbbbb", "cccccccccccc"):
            add_release(ledger, rid)
        for rid, status in (("aaaaaaaaaaaa", "done"), ("bbbbbbbbbbbb", "done")):
            p = ledger.begin_promotion("fraud", "dev", rid)
            clock.advance(minutes=1)
            ledger.finish_promotion(p.id, status)  # type: ignore[arg-type]
        p = ledger.begin_promotion("fraud", "dev", "cccccccccccc")
        ledger.finish_promotion(p.id, "undone")
        assert [p.release_id for p in ledger.done_promotions("fraud", "dev")] == [
            "bbbbbbbbbbbb",
            "aaaaaaaaaaaa",
        ]
        assert ledger.done_promotions("fraud", "prod") == []
