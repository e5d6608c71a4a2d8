""" "What was live in prod at 03:12": done promotions and rollbacks, by when they finished."""

from __future__ import annotations

from pathlib import Path

from store.ledger.records import PromotionKind, PromotionStatus
from tests.store import T0, FakeClock, add_release, open_ledger


def test_live_at_across_promotions_a_failure_and_a_rollback(tmp_path: Path) -> None:
    clock = FakeClock()  # 03:00
    with open_ledger(tmp_path, clock) as ledger:
        for release_id in ("aaaaaaaaaaaa", "bbbbbbbbbbbb", "cccccccccccc"):
            add_release(ledger, release_id)

        def promote(
            release_id: str, status: PromotionStatus, *, kind: PromotionKind = "promote"
        ) -> None:
            promotion = ledger.begin_promotion("fraud", "prod", release_id, kind=kind)
            clock.advance(minutes=2)  # deploying takes two minutes
            ledger.finish_promotion(promotion.id, status)
            clock.advance(minutes=8)

        promote("aaaaaaaaaaaa", "done")  # live from 03:02
        promote("bbbbbbbbbbbb", "done")  # live from 03:12
        promote("cccccccccccc", "failed")  # 03:20-03:22, never live
        promote("cccccccccccc", "undone")  # 03:30-03:32, restored b
        promote("aaaaaaaaaaaa", "done", kind="rollback")  # rolled back at 03:42
        open_intent = ledger.begin_promotion("fraud", "prod", "cccccccccccc")  # 03:50, open
        ledger.begin_promotion("fraud", "staging", "cccccccccccc")

        def live(minute: int, second: int = 0, env: str = "prod") -> str | None:
            return ledger.live_at("fraud", env, T0.replace(minute=minute, second=second))

        assert live(0) is None
        assert live(1, 59) is None
        assert live(2) == "aaaaaaaaaaaa"  # finished_at is inclusive
        assert live(11) == "aaaaaaaaaaaa"  # b started deploying at 03:10 but was not live
        assert live(12) == "bbbbbbbbbbbb"
        assert live(25) == "bbbbbbbbbbbb"  # c's failed attempt changed nothing
        assert live(35) == "bbbbbbbbbbbb"
        assert live(42) == "aaaaaaaaaaaa"  # the rollback
        assert live(59) == "aaaaaaaaaaaa"  # an open intent is not live
        assert live(59, env="staging") is None
        assert ledger.live_at("churn", "prod", clock.now) is None
        assert [p.id for p in ledger.open_promotions()] == [open_intent.id, open_intent.id + 1]
        state = ledger.environment_state("fraud", "prod")
        assert state is not None and state.release_id == "aaaaaaaaaaaa"
