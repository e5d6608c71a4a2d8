"""History: one newest-first timeline of releases, runs, promotions and approvals, paged by
cursor, filtered by service and environment."""

from __future__ import annotations

from pathlib import Path

import pytest

from store import HistoryEntry, Ledger
from store.errors import InvalidRequest
from tests.store import T0, FakeClock, add_release, open_ledger


def _populate(ledger: Ledger, clock: FakeClock, *, tick: bool = True) -> None:
    """Two services, three environments, every kind of entry; ``tick`` False puts many
    entries at the very same instant, which the cursor must still page through."""
    for n in range(6):
        service = "fraud" if n % 2 == 0 else "churn"
        release = add_release(ledger, f"{n:02d}" * 6, service=service)
        for env in ("dev", "staging", "prod"):
            if tick:
                clock.advance(seconds=1)
            run = ledger.start_run("test", service=service, env=env, release_id=release.id)
            ledger.finish_run(run.id, "passed")
            ledger.approve(release.id, env, actor="bob")
            promotion = ledger.begin_promotion(service, env, release.id)
            ledger.finish_promotion(promotion.id, "done")
        if tick:
            clock.advance(seconds=1)


def _all_pages(ledger: Ledger, limit: int, **filters: str) -> list[list[HistoryEntry]]:
    pages, cursor = [], None
    for _ in range(1000):  # a cursor that does not advance must fail the test, not hang it
        page = ledger.history(limit=limit, before=cursor, **filters)
        pages.append(list(page.entries))
        if page.next_cursor is None:
            return pages
        cursor = page.next_cursor
    raise AssertionError("history pages never ended")


def _key(entry: HistoryEntry) -> tuple[str, str, str]:
    return (entry.kind, str(getattr(entry.record, "id", "")), entry.at)


@pytest.mark.parametrize("tick", [True, False], ids=["distinct-times", "same-instant"])
def test_cursor_pages_cover_everything_once_newest_first(tmp_path: Path, tick: bool) -> None:
    clock = FakeClock()
    with open_ledger(tmp_path, clock) as ledger:
        _populate(ledger, clock, tick=tick)
        everything = ledger.history(limit=1000)
        assert everything.next_cursor is None
        # 6 releases + 18 runs + 18 approvals + 18 promotions
        assert len(everything.entries) == 60
        times = [entry.at for entry in everything.entries]
        assert times == sorted(times, reverse=True)
        for limit in (1, 7, 50):
            pages = _all_pages(ledger, limit)
            flat = [entry for page in pages for entry in page]
            assert [_key(e) for e in flat] == [_key(e) for e in everything.entries]
            assert all(len(page) == limit for page in pages[:-1])


def test_newest_first_across_kinds(tmp_path: Path) -> None:
    clock = FakeClock()
    with open_ledger(tmp_path, clock) as ledger:
        add_release(ledger, "aaaaaaaaaaaa", version="v1.0.0")
        clock.advance(minutes=1)
        run = ledger.start_run("test", service="fraud", env="dev", release_id="aaaaaaaaaaaa")
        ledger.finish_run(run.id, "failed", reason="2 tests failed")
        clock.advance(minutes=1)
        ledger.approve("aaaaaaaaaaaa", "prod", comment="ok", actor="bob")
        clock.advance(minutes=1)
        promotion = ledger.begin_promotion("fraud", "prod", "aaaaaaaaaaaa", kind="rollback")
        ledger.finish_promotion(promotion.id, "done")
        entries = ledger.history().entries
        assert [(e.kind, e.summary) for e in entries] == [
            ("rollback", "roll prod back to aaaaaaaaaaaa (v1.0.0): done"),
            ("approval", "bob approved aaaaaaaaaaaa (v1.0.0) for prod: ok"),
            ("run", "test run #1 of aaaaaaaaaaaa (v1.0.0) in dev: failed (2 tests failed)"),
            (
                "release",
                "release aaaaaaaaaaaa (v1.0.0) of fraud from main@aaaaaaa: release aaaaaaaaaaaa",
            ),
        ]
        assert entries[-1].at == T0.isoformat(timespec="microseconds")


def test_filters_by_service_and_env(tmp_path: Path) -> None:
    clock = FakeClock()
    with open_ledger(tmp_path, clock) as ledger:
        _populate(ledger, clock)
        fraud = [e for page in _all_pages(ledger, 5, service="fraud") for e in page]
        assert len(fraud) == 30 and {e.service for e in fraud} == {"fraud"}
        prod = [e for page in _all_pages(ledger, 4, env="prod") for e in page]
        # A release belongs to no environment: prod shows runs, approvals, promotions.
        assert len(prod) == 18 and {e.env for e in prod} == {"prod"}
        assert {e.kind for e in prod} == {"run", "approval", "promotion"}
        both = ledger.history(service="churn", env="dev", limit=100).entries
        assert len(both) == 9
        assert {(e.service, e.env) for e in both} == {("churn", "dev")}


def test_before_a_moment_and_bad_cursors(tmp_path: Path) -> None:
    clock = FakeClock()
    with open_ledger(tmp_path, clock) as ledger:
        _populate(ledger, clock)
        moment = T0.replace(second=5)
        stamp = moment.isoformat(timespec="microseconds")
        expected = [e for e in ledger.history(limit=100).entries if e.at < stamp]
        older = ledger.history(before=moment, limit=100).entries
        assert 0 < len(older) < 60
        assert [_key(e) for e in older] == [_key(e) for e in expected]
        with pytest.raises(InvalidRequest, match="not one relman gave"):
            ledger.history(before="garbage")
        with pytest.raises(InvalidRequest, match="at least 1"):
            ledger.history(limit=0)
