"""The collector and its metric store: a store locked past its busy timeout keeps the
scrapes in memory and reads the monitor rows again (nothing lost, nothing stored twice); a
collector killed just after storing rows reads none of them again; a minute whose writes
fail is judged again; a full disk stops the collector with one line. The harness (fake
clock, fake Bento on 127.0.0.1, real ledger and store) is test_collector's.
"""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime
from typing import Any

import pytest

from core.monitoring.collector import Collector
from store.errors import StoreFailure
from store.metrics.store import MetricStore, MetricStoreBusy
from tests.core.test_collector import (
    T0,
    Killed,
    World,
    alerts,
    hold_write_lock,
    kill_after,
    record_ids,
    saved_offset,
    scrape_times,
    world,
)

__all__ = ["world"]  # the fixture, shared


# ------------------------------------------------- a locked store: nothing lost, nothing twice


def test_a_store_locked_across_a_pass_keeps_its_batch_for_the_next(world: World) -> None:
    collector = world.collector(busy_timeout=0.2)
    world.log_rows(1, 2)
    world.bento.serve(6, 0.01)
    collector.run_pass()
    assert scrape_times(world) == [T0] and record_ids(world) == ["1", "2"]
    stored = saved_offset(world)

    holder = hold_write_lock(world)  # held across the whole pass (longer than its timeout)
    try:
        world.now[0] = T0 + 20
        world.log_rows(3, 3)
        report = collector.run_pass()
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    assert report.busy and report.scraped == []
    assert report.problems == [
        "iris/dev: .relman/metrics.db: busy, another relman process held its write lock for "
        "more than 0.2 s; wait for it to finish, then retry (the collector holds 1 scrape(s) "
        "and tries next pass)"
    ]
    assert scrape_times(world) == [T0] and record_ids(world) == ["1", "2"]
    assert saved_offset(world) == stored  # a restart now would read rows 3-5 again

    world.now[0] = T0 + 40
    world.log_rows(6, 1)
    report = collector.run_pass()
    assert not report.busy and report.scraped == ["iris/dev"]
    assert scrape_times(world) == [T0, T0 + 20, T0 + 40]  # both batches
    assert record_ids(world) == ["1", "2", "3", "4", "5", "6"]  # each row once
    assert saved_offset(world) == world.log_file.stat().st_size


def test_minutes_are_judged_only_once_the_held_scrapes_are_stored(world: World) -> None:
    collector = world.collector(busy_timeout=0.1)
    world.minutes(collector, 0, 0)
    holder = hold_write_lock(world)
    try:
        world.minutes(collector, 1, 2, seconds=2.0)  # slow minutes, scraped under the lock
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    assert alerts(world) == []
    world.now[0] = T0 + 3 * 60
    report = collector.run_pass()
    with world.store() as store:
        points = store.series("iris", "dev", T0, T0 + 3 * 60)
    assert [p.t for p in points] == [T0, T0 + 60, T0 + 120]  # no minute skipped
    assert all(p.p99_ms is not None and p.p99_ms > 500 for p in points[1:])
    assert [(t["name"], t["state"]) for t in report.transitions] == [("latency_p99", "firing")]


def test_an_alert_whose_write_meets_a_lock_is_not_lost(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    collector = world.collector()
    world.minutes(collector, 0, 0)
    world.minutes(collector, 1, 1, seconds=2.0)
    original = MetricStore.record_minute
    refused: list[bool] = []

    def record_minute(self: MetricStore, rollups: Any, changes: Any, *args: Any) -> Any:
        changes = list(changes)
        if changes and not refused:  # another writer took the lock just then
            refused.append(True)
            raise MetricStoreBusy(".relman/metrics.db: busy (test)")
        return original(self, rollups, changes, *args)

    monkeypatch.setattr(MetricStore, "record_minute", record_minute)
    world.now[0] = T0 + 2 * 60
    report = collector.run_pass()  # minute 1 is judged, its alert cannot be written
    assert report.busy and refused and alerts(world) == []
    with world.store() as store:
        assert store.series("iris", "dev", T0 + 60, T0 + 120) == []  # nor its rollup
    world.now[0] = T0 + 2 * 60 + 20
    report = collector.run_pass()  # judged again, from the rules as they were
    [alert] = alerts(world, "latency_p99")
    assert (alert.state, alert.since) == ("firing", T0 + 60)
    assert [(t["name"], t["state"]) for t in report.transitions] == [("latency_p99", "firing")]


def test_scrapes_held_over_the_cap_drop_the_oldest_with_one_warning(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("core.monitoring.collector.MAX_PENDING_SCRAPES", 3)
    collector = world.collector(busy_timeout=0.05)
    collector.run_pass()  # T0, stored
    holder = hold_write_lock(world)
    reports = []
    try:
        for _ in range(5):  # a pass every 5 s, all under the lock
            world.now[0] += 5
            reports.append(collector.run_pass())
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    warnings = [p for r in reports for p in r.problems if "dropped" in p]
    assert warnings == [
        "iris/dev: the metric store stayed locked for over 3 scrapes; the oldest are dropped "
        "from now on (counters are cumulative: request counts stay right, those minutes get no "
        "rollup); find what holds .relman/metrics.db"
    ]
    world.now[0] += 5
    report = collector.run_pass()
    assert scrape_times(world) == [T0, T0 + 15, T0 + 20, T0 + 25, T0 + 30]
    assert report.problems == [
        "iris/dev: the metric store takes writes again; 4 held scrape(s) stored, 2 dropped "
        "while it was locked"
    ]


def test_once_with_the_store_locked_says_what_it_could_not_store_and_fails(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    holders: list[sqlite3.Connection] = []
    one_pass = Collector.run_pass

    def locked_pass(self: Collector) -> Any:
        holders.append(hold_write_lock(world))  # taken just after the claim
        return one_pass(self)

    monkeypatch.setattr(Collector, "run_pass", locked_pass)
    try:
        assert world.collector(busy_timeout=0.05).run(once=True) == 3
    finally:
        for holder in holders:
            holder.execute("ROLLBACK")
            holder.close()
    assert world.lines[-2:] == [
        "scraped nothing; 0 alert change(s)",
        "1 scrape(s) not stored: .relman/metrics.db stayed locked; run `relman monitor --once` "
        "again once it is free",
    ]


# --------------------------------------------------------------- a failed write of the rows


def test_rows_whose_write_fails_are_read_again_once(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    collector = world.collector()
    world.log_rows(1, 2)
    collector.run_pass()
    stored = saved_offset(world)
    original = MetricStore.add_batch

    def add_batch(self: MetricStore, *args: Any, **kwargs: Any) -> Any:
        raise StoreFailure(".relman/metrics.db: SQLite failed (test); retry, or report it")

    monkeypatch.setattr(MetricStore, "add_batch", add_batch)
    world.log_rows(3, 2)
    world.now[0] += 20
    with pytest.raises(StoreFailure):  # run() logs it and goes on next interval
        collector.run_pass()
    assert saved_offset(world) == stored  # the offsets kept went back with the batch
    monkeypatch.setattr(MetricStore, "add_batch", original)
    world.now[0] += 20
    collector.run_pass()
    assert record_ids(world) == ["1", "2", "3", "4"]
    # and a collector started afresh from the saved state reads nothing twice
    world.now[0] += 20
    world.log_rows(5, 1)
    world.collector().run_pass()
    assert record_ids(world) == ["1", "2", "3", "4", "5"]


# ---------------------------------------------- killed between the commit and the pass's end


@pytest.mark.parametrize("moment", ["just after the batch commits", "saving collector.json"])
def test_a_collector_killed_after_storing_rows_reads_none_of_them_again(
    world: World, monkeypatch: pytest.MonkeyPatch, moment: str
) -> None:
    collector = world.collector()
    world.log_rows(1, 2)
    collector.run_pass()
    world.log_rows(3, 2)
    world.now[0] += 20
    with monkeypatch.context() as patch:
        if moment == "saving collector.json":
            kill_after(patch, "core.monitoring.collector.save_state", call=False)
        else:
            kill_after(patch, "store.metrics.store.MetricStore.add_batch")
        with pytest.raises(Killed):
            collector.run_pass()
    assert record_ids(world) == ["1", "2", "3", "4"]  # committed before the kill
    world.now[0] += 20
    world.log_rows(5, 1)
    world.collector().run_pass()  # the restarted collector
    assert record_ids(world) == ["1", "2", "3", "4", "5"]  # each row once
    assert saved_offset(world) == world.log_file.stat().st_size


def test_rotation_and_a_partial_line_between_passes_lose_nothing(world: World) -> None:
    collector = world.collector()
    world.log_rows(1, 2)
    with world.log_file.open("a") as handle:
        handle.write('{"x": 1.0, "prediction": "a", "time')  # the writer is mid-line
    collector.run_pass()
    assert record_ids(world) == ["1", "2"]
    rotated = world.log_file.with_name("data.1.log.2026-09-21")
    world.log_file.rename(rotated)
    moment = datetime.fromtimestamp(T0, UTC).isoformat()
    with rotated.open("a") as handle:  # the line ends in the file the writer holds
        handle.write(f'stamp": "{moment}", "request_id": "3", "trace_id": "0"}}\n')
    world.log_rows(4, 1)  # the new file
    world.now[0] += 20
    collector.run_pass()
    assert record_ids(world) == ["1", "2", "3", "4"]


# ------------------------------------------------------------------------------ full disk


def test_a_full_disk_stops_the_collector_with_one_line(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    original = Collector._open_store

    def small_disk(self: Collector) -> Any:
        store = original(self)
        pages = store._conn.execute("PRAGMA page_count").fetchone()[0]
        store._conn.execute(f"PRAGMA max_page_count = {pages}")  # no page more
        return store

    monkeypatch.setattr(Collector, "_open_store", small_disk)
    world.log_rows(1, 400)  # more rows than the pages left hold
    collector = world.collector()
    assert collector.run() == 3  # not once: it would loop if it did not stop
    assert world.lines == [".relman/metrics.db: disk full; free space, the collector stops"]


def test_a_full_disk_under_the_state_file_stops_it_too(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    import errno

    def no_space(*args: Any) -> None:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr("core.monitoring.collector.os.replace", no_space)
    assert world.collector().run() == 3
    assert world.lines == [".relman/collector.json: disk full; free space, the collector stops"]
