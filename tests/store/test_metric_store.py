"""The metric store (store/metrics/store.py): round trips, the rollup arithmetic, retention, the
opening rules it shares with the ledger, busy and full files, the one-collector claim, and
what the collector consumed (reader offsets with their batch, webhook posts with their
alert changes)."""

from __future__ import annotations

import os
import sqlite3
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from core.errors import release_error
from store.errors import (
    InvalidRequest,
    ReadOnlyRefused,
    RecordNotFound,
    SchemaTooNew,
    SchemaTooOld,
    StoreBusy,
    StoreCorrupt,
    StoreFull,
)
from store.metrics.collector import ReaderOffset
from store.metrics.schema import SCHEMA_VERSION, TABLES
from store.metrics.store import (
    AlertChange,
    Feedback,
    MetricStore,
    MetricStoreBusy,
    MetricStoreFull,
    Point,
    Record,
    Rollup,
    ScrapeRow,
    histogram_quantile,
    rollup,
)

T0 = 1_740_000_000 - 1_740_000_000 % 3600  # a whole hour
LES = ("0.1", "0.5", "1.0", "+Inf")


def scrape(
    t: int,
    requests: float,
    buckets: tuple[float, ...] | None = None,
    *,
    errors: float = 0.0,
    release: str | None = "r1",
    in_progress: float = 0.0,
    service: str = "iris",
    env: str = "prod",
) -> ScrapeRow:
    counts = buckets if buckets is not None else (requests,) * len(LES)
    return ScrapeRow(
        service, env, t, release, requests, errors, in_progress, dict(zip(LES, counts, strict=True))
    )


@pytest.fixture
def store(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> MetricStore:
    monkeypatch.chdir(tmp_path)
    return MetricStore.open(tmp_path / ".relman" / "metrics.db")


# ------------------------------------------------------------------------------ round trips


def test_a_new_store_is_wal_at_the_current_schema_with_without_rowid_tables(
    store: MetricStore,
) -> None:
    with store:
        assert store.schema_version == SCHEMA_VERSION
    conn = sqlite3.connect(store.path)
    try:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        tables = dict(conn.execute("SELECT name, sql FROM sqlite_master WHERE type = 'table'"))
    finally:
        conn.close()
    assert set(tables) == {
        "scrapes", "rollups", "records", "feedback", "alerts", "alert_events", "collector",
        "monitor_offsets", "webhook_outbox", "latency", "access_offsets",
    } == TABLES  # fmt: skip
    for name in ("scrapes", "rollups", "feedback", "monitor_offsets"):
        assert tables[name].endswith("WITHOUT ROWID"), name


def test_scrapes_round_trip(store: MetricStore) -> None:
    with store:
        rows = [scrape(T0 + 5 * n, 10.0 * n, errors=n, in_progress=1.5) for n in range(4)]
        assert store.add_scrapes(iter(rows)) == 4
        store.add_scrapes([scrape(T0, 0.0, service="other")])
        assert store.scrapes("iris", "prod", T0, T0 + 15) == rows[:3]
        assert store.last_scrape("iris", "prod") == rows[3]
        assert store.last_scrape("iris", "prod", before=T0 + 10) == rows[1]
        assert store.last_scrape("iris", "dev") is None
        # A second scrape of the same second replaces the first.
        again = scrape(T0 + 15, 99.0)
        store.add_scrapes([again])
        assert store.last_scrape("iris", "prod") == again
        assert store.add_scrapes([]) == 0


def test_rollups_upsert_and_read_as_an_ordered_series(store: MetricStore) -> None:
    def roll(minute: int, rps: float, p99: float | None) -> Rollup:
        return Rollup(
            "iris", "prod", minute, "r1", rps * 60, 0.0, rps, 0.0, 1.0, 2.0, p99, 0.5
        )  # fmt: skip

    with store:
        store.put_rollups([roll(T0 + 120, 3.0, 9.0), roll(T0, 1.0, 7.0), roll(T0 + 60, 2.0, None)])
        store.put_rollups([roll(T0 + 60, 2.5, 8.0)])  # the same minute again: replaced
        assert store.series("iris", "prod", T0, T0 + 180) == [
            Point(T0, 1.0, 0.0, 1.0, 2.0, 7.0),
            Point(T0 + 60, 2.5, 0.0, 1.0, 2.0, 8.0),
            Point(T0 + 120, 3.0, 0.0, 1.0, 2.0, 9.0),
        ]
        assert [p.t for p in store.series("iris", "prod", T0 + 60, T0 + 120)] == [T0 + 60]
        assert store.rollups("iris", "prod", T0, T0 + 60) == [roll(T0, 1.0, 7.0)]
    point = Point(T0, 1 / 3, 0.25, 12.34567, None, 99.0)
    assert point.to_dict() == {
        "t": "2025-02-19T21:00:00+00:00",
        "rps": 0.333333,
        "error_rate": 0.25,
        "p50_ms": 12.346,
        "p95_ms": None,
        "p99_ms": 99.0,
        "latency_source": "histogram",
    }


def test_records_feedback_and_their_join(store: MetricStore) -> None:
    def record(t: int, request_id: str | None, prediction: str, target: str | None = None,
               release: str = "r1") -> Record:  # fmt: skip
        return Record("iris", "prod", t, release, request_id, {"petal": t - T0 + 0.5},
                      prediction, target)  # fmt: skip

    rows = [
        record(T0, "a", "setosa"),
        record(T0 + 1, "b", "virginica", target="virginica"),
        record(T0 + 2, "c", "setosa"),
        record(T0 + 3, None, "setosa"),
        record(T0 + 4, "d", "setosa", release="r2"),
    ]
    with store:
        assert store.add_records(rows) == 5
        assert store.records("iris", "prod", T0, T0 + 5) == rows
        assert store.records("iris", "prod", T0, T0 + 5, release="r2") == rows[4:]
        assert store.records("iris", "prod", T0 + 1, T0 + 2) == rows[1:2]
        store.add_feedback([Feedback("iris", "prod", "a", "versicolor", T0 + 100)])
        store.add_feedback([Feedback("iris", "prod", "a", "setosa", T0 + 200)])  # corrected
        store.add_feedback([Feedback("iris", "prod", "b", "setosa", T0 + 200)])
        # Feedback wins over a logged target; unlabelled predictions are left out.
        assert store.feedback_join("iris", "prod", T0, T0 + 10) == [
            ("setosa", "setosa"),
            ("virginica", "setosa"),
        ]


# ------------------------------------------------------------------------ percentile math


def test_histogram_quantile_interpolates_inside_the_bucket() -> None:
    # 50 requests <= 0.1 s, 40 more <= 0.5 s, 10 more <= 1 s, none above.
    buckets = {"+Inf": 100.0, "0.5": 90.0, "0.1": 50.0, "1.0": 100.0}
    assert histogram_quantile(0.5, buckets) == pytest.approx(0.1)  # 0 + 0.1 * 50/50
    assert histogram_quantile(0.95, buckets) == pytest.approx(0.75)  # 0.5 + 0.5 * 5/10
    assert histogram_quantile(0.99, buckets) == pytest.approx(0.95)  # 0.5 + 0.5 * 9/10
    assert histogram_quantile(0.25, buckets) == pytest.approx(0.05)  # 0 + 0.1 * 25/50
    assert histogram_quantile(0.7, buckets) == pytest.approx(0.3)  # 0.1 + 0.4 * 20/40


def test_histogram_quantile_in_the_inf_bucket_and_without_data() -> None:
    # 10 <= 0.1 s, 10 more <= 0.5 s, 80 slower than the highest bound: Prometheus answers
    # the highest finite bound.
    assert histogram_quantile(0.5, {"0.1": 10.0, "0.5": 20.0, "+Inf": 100.0}) == 0.5
    assert histogram_quantile(0.5, {"0.1": 0.0, "+Inf": 0.0}) is None
    assert histogram_quantile(0.5, {"0.1": 5.0, "0.5": 5.0}) is None  # no +Inf bucket
    # Non-monotonic counts (a reset seen bucket by bucket) are made monotonic first.
    assert histogram_quantile(0.5, {"0.1": 10.0, "0.5": 4.0, "+Inf": 10.0}) == pytest.approx(0.05)
    with pytest.raises(ValueError):
        histogram_quantile(1.5, {"+Inf": 1.0})


def test_rollup_of_a_minute_from_cumulative_scrapes() -> None:
    previous = scrape(T0 + 55, 1000.0, (500.0, 900.0, 1000.0, 1000.0), errors=10.0)
    minute = [
        scrape(T0 + 85, 1060.0, (530.0, 950.0, 1060.0, 1060.0), errors=13.0, in_progress=2.0),
        scrape(T0 + 115, 1100.0, (550.0, 990.0, 1100.0, 1100.0), errors=15.0, in_progress=4.0),
    ]
    result = rollup(previous, minute, T0 + 60)
    assert result is not None
    # Deltas: 100 requests (50 <= 0.1, 90 <= 0.5, 100 <= 1), 5 errors, over 60 s.
    assert (result.requests, result.errors, result.release) == (100.0, 5.0, "r1")
    assert result.rps == pytest.approx(100 / 60)
    assert result.error_rate == pytest.approx(0.05)
    assert result.p50_ms == pytest.approx(100.0)
    assert result.p95_ms == pytest.approx(750.0)
    assert result.p99_ms == pytest.approx(950.0)
    assert result.in_progress == 3.0
    assert (result.service, result.env, result.minute) == ("iris", "prod", T0 + 60)


def test_rollup_counter_reset_and_release_change_take_the_new_value() -> None:
    previous = scrape(T0 + 59, 5000.0, (4000.0, 5000.0, 5000.0, 5000.0), errors=50.0)
    restarted = [
        # The process restarted: every counter starts over, its delta is its new value.
        scrape(T0 + 89, 20.0, (10.0, 20.0, 20.0, 20.0), errors=2.0),
        scrape(T0 + 119, 40.0, (10.0, 20.0, 30.0, 40.0), errors=2.0),
    ]
    result = rollup(previous, restarted, T0 + 60)
    assert result is not None
    # 40 requests: 10 <= 0.1, 20 <= 0.5, 30 <= 1, 40 in all.
    assert (result.requests, result.errors) == (40.0, 2.0)
    assert result.error_rate == pytest.approx(0.05)
    assert result.p50_ms == pytest.approx(500.0)  # rank 20: the top of the 0.5 bucket
    assert result.p95_ms == pytest.approx(1000.0)  # rank 38 falls in +Inf: highest bound
    # A scrape of another release is another process, even if its counters are higher.
    promoted = [scrape(T0 + 119, 6000.0, (5000.0,) * 4, release="r2")]
    result = rollup(previous, promoted, T0 + 60)
    assert result is not None
    assert (result.requests, result.release, result.p50_ms) == (6000.0, "r2", pytest.approx(50))


def test_rollup_edges() -> None:
    assert rollup(None, [], T0) is None
    assert rollup(None, [scrape(T0, 5.0)], T0) is None  # one scrape measures nothing
    idle = rollup(scrape(T0 - 1, 5.0), [scrape(T0 + 29, 5.0)], T0)
    assert idle is not None
    assert (idle.requests, idle.rps, idle.error_rate, idle.p99_ms) == (0.0, 0.0, 0.0, None)
    # Without a previous scrape the minute's first is the base, and rps uses the seconds
    # covered.
    first = rollup(None, [scrape(T0 + 10, 100.0), scrape(T0 + 40, 130.0)], T0)
    assert first is not None
    assert (first.requests, first.rps) == (30.0, 1.0)


def test_rollups_from_scrapes_match_rollup_minute_by_minute(store: MetricStore) -> None:
    rows: list[ScrapeRow] = []
    requests = 0.0
    for n in range(36):  # 6 minutes of scrapes every 10 s
        t = T0 - 60 + 10 * n + 3
        requests = 7.0 if n == 17 else requests + n  # a restart in the third minute
        low = requests // 2 if n < 17 else requests // 3  # cumulative: never falls
        rows.append(scrape(t, requests, (low, requests, requests, requests), errors=n // 4,
                           release="r2" if n >= 29 else "r1", in_progress=n))  # fmt: skip
    with store:
        store.add_scrapes(rows)
        computed = store.rollups_from_scrapes("iris", "prod", T0 + 5, T0 + 300)
    expected = []
    for minute in range(T0, T0 + 300, 60):
        before = [r for r in rows if r.t < minute]
        result = rollup(before[-1], [r for r in rows if minute <= r.t < minute + 60], minute)
        assert result is not None
        expected.append(result)
    assert computed == expected
    assert [r.minute for r in computed] == [T0 + 60 * m for m in range(5)]


# ---------------------------------------------------------------------------- retention


def test_prune_deletes_by_age_in_batches_and_keeps_alerts(store: MetricStore) -> None:
    now = T0 + 10 * 3600
    with store:
        for service in ("iris", "fraud"):
            store.add_scrapes(scrape(now - 600 * n, float(n), service=service) for n in range(40))
            store.add_records(
                Record(service, "prod", now - 600 * n, "r1", f"q{n}", {}, "x", None)
                for n in range(40)
            )
            store.add_feedback(
                Feedback(service, "prod", f"q{n}", "x", now - 600 * n) for n in range(40)
            )
            store.put_rollups(
                Rollup(service, "prod", now - 86400 * n, "r1", 1, 0, 1, 0, 1, 1, 1, 0)
                for n in range(10)
            )
        store.open_alert("p99", "sudden", "iris", "prod", t=now - 30 * 86400)
        # Raw kept 2 h: scrapes at 0, 600, ... 7200 s ago stay (13 a series), 27 go; rollups
        # kept 3 days: 0, 1, 2, 3 days ago stay, 6 go.
        deleted = store.prune(now, raw_hours=2, rollup_days=3, batch=4)
        assert deleted == 2 * (27 * 3 + 6)
        for service in ("iris", "fraud"):
            kept = store.scrapes(service, "prod", 0, now + 1)
            assert [s.t for s in kept] == [now - 600 * n for n in range(12, -1, -1)]
            assert len(store.records(service, "prod", 0, now + 1)) == 13
            assert len(store.feedback_join(service, "prod", 0, now + 1)) == 13
            assert len(store.series(service, "prod", 0, now + 1)) == 4
        assert len(store.alerts()) == 1
        assert store.prune(now, raw_hours=2, rollup_days=3) == 0


# ------------------------------------------------------------------------ opening rules


def test_read_only_open_of_a_missing_file_reads_empty_and_creates_nothing(
    tmp_path: Path,
) -> None:
    path = tmp_path / ".relman" / "metrics.db"
    with MetricStore.open(path, readonly=True) as store:
        assert store.series("iris", "prod", 0, 2**40) == []
        assert store.last_scrape("iris", "prod") is None
        assert store.alerts() == []
        assert store.collector() is None
        with pytest.raises(ReadOnlyRefused, match="opened read-only") as caught:
            store.add_scrapes([scrape(T0, 1.0)])
        assert release_error(caught.value).exit_code == 1
    assert not path.parent.exists()


def test_read_only_sees_the_writer_and_never_writes(tmp_path: Path) -> None:
    path = tmp_path / "metrics.db"
    with MetricStore.open(path) as writer:
        writer.add_scrapes([scrape(T0, 1.0)])
        with MetricStore.open(path, readonly=True) as reader:
            writer.add_scrapes([scrape(T0 + 5, 2.0)])
            assert [s.t for s in reader.scrapes("iris", "prod", 0, T0 + 10)] == [T0, T0 + 5]
            attempts = [
                lambda: reader.add_scrapes([scrape(T0 + 9, 3.0)]),
                lambda: reader.add_records([Record("iris", "prod", T0, "r1", "a", {}, "x", None)]),
                lambda: reader.add_feedback([Feedback("iris", "prod", "a", "x", T0)]),
                lambda: reader.claim_collector(1, "box", T0),
                lambda: reader.open_alert("r", "down", "iris", "prod", t=T0),
                lambda: reader.prune(T0 + 3600, 0.1, 0.1),
                lambda: reader.add_scrapes([]),
                lambda: reader.add_batch(offsets=[ReaderOffset("iris", "prod", "/m", {})]),
                lambda: reader.take_over_progress([], []),
                lambda: reader.remove_webhook_posts([]),
            ]
            for attempt in attempts:
                with pytest.raises(ReadOnlyRefused, match="opened read-only"):
                    attempt()
            assert len(reader.scrapes("iris", "prod", 0, T0 + 10)) == 2


def _write_foreign(path: Path, version: int, table: str) -> bytes:
    path.parent.mkdir(parents=True, exist_ok=True)
    conn = sqlite3.connect(path)
    conn.execute(f"CREATE TABLE {table} (id INTEGER PRIMARY KEY, future TEXT)")
    conn.execute(f"PRAGMA user_version = {version}")
    conn.commit()
    conn.close()
    return path.read_bytes()


@pytest.mark.parametrize("readonly", [False, True])
def test_a_newer_schema_is_refused_untouched(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, readonly: bool
) -> None:
    monkeypatch.chdir(tmp_path)
    path = tmp_path / ".relman" / "metrics.db"
    before = _write_foreign(path, 9, "scrapes")
    with pytest.raises(SchemaTooNew) as caught:
        MetricStore.open(path, readonly=readonly)
    assert str(caught.value) == (
        f".relman/metrics.db: written by a newer relman (schema 9, this one knows "
        f"{SCHEMA_VERSION}); upgrade relman, or move the file aside to start a new metric store"
    )
    assert release_error(caught.value).exit_code == 3
    assert path.read_bytes() == before
    assert [p.name for p in path.parent.iterdir()] == ["metrics.db"]


@pytest.mark.parametrize("readonly", [False, True])
def test_foreign_files_are_refused_untouched(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, readonly: bool
) -> None:
    monkeypatch.chdir(tmp_path)
    garbage = tmp_path / "garbage.db"
    garbage.write_bytes(os.urandom(4096))
    with pytest.raises(StoreCorrupt, match=r"^garbage\.db: not a readable relman database "
                       r"\(not an SQLite file\); move it aside"):  # fmt: skip
        MetricStore.open(garbage, readonly=readonly)
    other = tmp_path / "ledger.db"  # e.g. the ledger, or any other program's database
    before = _write_foreign(other, 0, "releases")
    with pytest.raises(StoreCorrupt, match="not a relman metric store: it holds other tables"):
        MetricStore.open(other, readonly=readonly)
    assert other.read_bytes() == before


def test_read_only_open_of_an_older_schema_asks_for_a_writer(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Only a file older than what readers can read: a newer relman whose readers query a
    changed table (READERS_READ_FROM raised past the file's version)."""
    path = tmp_path / "metrics.db"
    MetricStore.open(path).close()
    monkeypatch.setattr("store.metrics.store.SCHEMA_VERSION", SCHEMA_VERSION + 1)
    MetricStore.open(path, readonly=True).close()  # added tables only: read as it is
    monkeypatch.setattr("store.metrics.store.READERS_READ_FROM", SCHEMA_VERSION + 1)
    with pytest.raises(SchemaTooOld, match="a read-only open cannot upgrade it"):
        MetricStore.open(path, readonly=True)


# -------------------------------------------------------------------------- busy, full


def _hold_write_lock(path: Path, seconds: float, started: threading.Event) -> None:
    holder = sqlite3.connect(path, isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")  # another writer, mid-transaction
    started.set()
    time.sleep(seconds)
    holder.execute("ROLLBACK")
    holder.close()


def test_a_briefly_locked_file_is_waited_for_and_nothing_is_lost(tmp_path: Path) -> None:
    path = tmp_path / "metrics.db"
    MetricStore.open(path).close()
    started = threading.Event()
    holder = threading.Thread(target=_hold_write_lock, args=(path, 0.3, started))
    holder.start()
    started.wait()
    try:
        with MetricStore.open(path, busy_timeout=3) as store:
            begun = time.monotonic()
            assert store.add_scrapes(scrape(T0 + n, float(n)) for n in range(100)) == 100
            assert time.monotonic() - begun >= 0.2
            assert len(store.scrapes("iris", "prod", T0, T0 + 100)) == 100
    finally:
        holder.join()


def test_a_lock_held_past_the_timeout_fails_the_batch_whole(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    path = tmp_path / ".relman" / "metrics.db"
    MetricStore.open(path).close()
    holder = sqlite3.connect(path, isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")
    rows = [scrape(T0 + n, float(n)) for n in range(10)]
    try:
        with MetricStore.open(path, busy_timeout=0.2) as store:
            with pytest.raises(StoreBusy) as caught:
                store.add_scrapes(rows)
            assert store.scrapes("iris", "prod", 0, T0 + 100) == []  # readers are not blocked
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    assert isinstance(caught.value, MetricStoreBusy)  # the collector keeps such a batch
    assert str(caught.value) == (
        ".relman/metrics.db: busy, another relman process held its write lock for more than "
        "0.2 s; wait for it to finish, then retry"
    )
    with MetricStore.open(path) as store:  # the same batch, once the lock is gone
        store.add_scrapes(rows)
        assert store.scrapes("iris", "prod", 0, T0 + 100) == rows


def test_a_full_disk_is_one_line_and_the_batch_is_not_half_written(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    with MetricStore.open(tmp_path / "metrics.db") as store:
        pages = store._conn.execute("PRAGMA page_count").fetchone()[0]
        store._conn.execute(f"PRAGMA max_page_count = {pages + 2}")  # a disk of two pages
        with pytest.raises(StoreFull) as caught:
            store.add_scrapes(scrape(T0 + n, float(n)) for n in range(2000))
        assert isinstance(caught.value, MetricStoreFull)  # the collector stops on it
        assert str(caught.value) == "metrics.db: disk full; free space, the collector stops"
        assert release_error(caught.value).exit_code == 3
        assert store.last_scrape("iris", "prod") is None


def _batch(n: int, start: int = 0) -> tuple[list[ScrapeRow], list[Record], list[Feedback]]:
    scrapes = [scrape(T0 + start + i, float(start + i)) for i in range(n)]
    records = [
        Record("iris", "prod", T0 + start + i, "r1", f"q{start + i}", {"x": 1.0}, "a", "a")
        for i in range(n)
    ]
    labels = [Feedback("iris", "prod", f"q{start + i}", "a", T0 + start + i) for i in range(n)]
    return scrapes, records, labels


def test_a_batch_is_stored_whole_in_one_transaction(store: MetricStore) -> None:
    with store:
        assert store.add_batch(*_batch(3)) == (3, 3, 3)
        assert store.add_batch() == (0, 0, 0)
        assert len(store.scrapes("iris", "prod", T0, T0 + 60)) == 3
        assert len(store.records("iris", "prod", T0, T0 + 60)) == 3
        assert store.feedback_join("iris", "prod", T0, T0 + 60) == [("a", "a")] * 3


def test_a_batch_that_meets_a_full_disk_stores_nothing_of_any_table(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    with MetricStore.open(tmp_path / "metrics.db") as store:
        pages = store._conn.execute("PRAGMA page_count").fetchone()[0]
        store._conn.execute(f"PRAGMA max_page_count = {pages + 2}")
        scrapes, records, labels = _batch(2000)
        with pytest.raises(MetricStoreFull):
            store.add_batch(scrapes[:5], records, labels)  # the records overflow
        assert store.scrapes("iris", "prod", 0, T0 + 9999) == []
        assert store.records("iris", "prod", 0, T0 + 9999) == []


def test_a_batch_refused_by_a_lock_is_stored_once_when_offered_again(tmp_path: Path) -> None:
    path = tmp_path / "metrics.db"
    MetricStore.open(path).close()
    holder = sqlite3.connect(path, isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")
    first, second = _batch(3), _batch(2, start=3)
    with MetricStore.open(path, busy_timeout=0.1) as store:
        try:
            with pytest.raises(MetricStoreBusy):
                store.add_batch(*first)
        finally:
            holder.execute("ROLLBACK")
            holder.close()
        # What a caller holding the first batch does: both together, on its next try.
        together = [a + b for a, b in zip(first, second, strict=True)]
        assert store.add_batch(*together) == (5, 5, 5)
        assert [s.t for s in store.scrapes("iris", "prod", 0, T0 + 60)] == [
            T0 + i for i in range(5)
        ]
        assert len(store.records("iris", "prod", 0, T0 + 60)) == 5


# ------------------------------------------------------------ what the collector consumed


def _offset(offset: int, env: str = "prod") -> ReaderOffset:
    state = {"data.1.log": {"inode": 7, "offset": offset, "head": "61:4f2a"}}
    return ReaderOffset("iris", env, "/instances/r1-3100/monitoring/iris", state)


def test_reader_offsets_are_stored_with_their_batch_and_only_with_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    with MetricStore.open(tmp_path / "metrics.db") as store:
        assert store.reader_offsets() == {}
        store.add_batch(offsets=[_offset(120)])  # a pass that read only bad lines moves too
        store.add_batch(*_batch(2), offsets=[_offset(240), _offset(50, env="dev")])
        folder = _offset(0).folder
        stored = {("iris", "prod"): {folder: _offset(240).state}}
        assert store.reader_offsets() == {**stored, ("iris", "dev"): {folder: _offset(50).state}}
        pages = store._conn.execute("PRAGMA page_count").fetchone()[0]
        store._conn.execute(f"PRAGMA max_page_count = {pages + 2}")
        scrapes, records, labels = _batch(2000, start=10)
        with pytest.raises(MetricStoreFull):  # the rows are not stored: nor are their offsets
            store.add_batch(scrapes[:5], records, labels, [_offset(99_999)])
        assert store.reader_offsets()[("iris", "prod")] == stored[("iris", "prod")]


def test_a_minutes_posts_are_queued_with_its_alert_changes_and_removed_when_delivered(
    store: MetricStore,
) -> None:
    firing = AlertChange("p99", "sudden", "iris", "prod", T0, "firing", 900.0, "p99 900 ms")
    resolved = AlertChange("p99", "sudden", "iris", "prod", T0 + 60, "resolved", 80.0, "ok")
    found: list[list[str | None]] = []

    def announce(before: Any) -> list[tuple[str, dict[str, Any]]]:
        found.append(list(before))
        return [("http://hook", {"state": "firing"})] if before != ["firing"] else []

    def broken(before: Any) -> list[tuple[str, dict[str, Any]]]:
        raise RuntimeError("a bug in announcing")

    with store:
        store.record_minute([], [firing], announce)
        store.record_minute([], [firing], announce)  # the same minute judged again
        assert found == [[None], ["firing"]]
        [post] = store.webhook_posts()
        assert (post.url, post.document) == ("http://hook", {"state": "firing"})
        minute = Rollup("iris", "prod", T0 + 60, "r1", 6.0, 0.0, 0.1, 0.0, 5.0, 9.0, 9.9, 0.0)
        with pytest.raises(RuntimeError):  # nothing of the minute is stored
            store.record_minute([minute], [resolved], broken)
        assert [a.state for a in store.alerts()] == ["firing"]
        assert store.rollups("iris", "prod", 0, T0 + 120) == []
        assert store.webhook_posts() == [post]
        store.record_minute([minute], [resolved], lambda before: [("http://hook", {"n": 2})])
        first, second = store.webhook_posts()
        assert (first, second.document) == (post, {"n": 2})  # oldest first
        store.remove_webhook_posts([post.id])
        assert store.webhook_posts() == [second]


def test_an_older_collectors_progress_is_taken_only_by_a_store_without_any(
    store: MetricStore,
) -> None:
    with store:
        assert store.take_over_progress([], []) == (False, False)
        taken = store.take_over_progress([_offset(10)], [("http://hook", {"n": 1})])
        again = store.take_over_progress([_offset(5)], [("http://hook", {"n": 2})])
        assert (taken, again) == ((True, True), (False, False))
        assert store.reader_offsets() == {("iris", "prod"): {_offset(0).folder: _offset(10).state}}
        assert [p.document for p in store.webhook_posts()] == [{"n": 1}]


# ---------------------------------------------------------------------- collector, alerts


def test_one_collector_per_project(store: MetricStore) -> None:
    with store:
        assert store.claim_collector(100, "box", T0)
        assert not store.claim_collector(200, "box", T0 + 10)  # 100 beats
        assert store.heartbeat(100, T0 + 50)
        assert not store.claim_collector(200, "box", T0 + 110)  # heartbeat 60 s old: alive
        assert store.claim_collector(100, "box", T0 + 111)  # itself again: keeps its start
        collector = store.collector()
        assert collector is not None
        assert (collector.pid, collector.started, collector.heartbeat) == (100, T0, T0 + 111)
        assert store.claim_collector(200, "box", T0 + 172)  # 61 s silent: taken over
        assert not store.heartbeat(100, T0 + 173)  # the old one learns it must stop
        store.release_collector(100)  # not the collector: nothing happens
        assert store.collector() is not None
        store.release_collector(200)
        assert store.collector() is None
        assert store.claim_collector(300, "other", T0 + 174, stale_after=5)


def test_a_dead_holder_named_is_replaced_even_within_its_last_second(store: MetricStore) -> None:
    with store:
        assert store.claim_collector(100, "box", T0)
        # 100 died just after its heartbeat: a new collector found it dead, in the same second
        assert not store.claim_collector(200, "box", T0)
        assert store.claim_collector(200, "box", T0, replacing=100)
        # a third one that also found 100 dead does not take over from 200, which lives
        assert not store.claim_collector(300, "box", T0, replacing=100)
        assert not store.claim_collector(300, "other", T0, replacing=200)  # another host's pid
        collector = store.collector()
        assert collector is not None and collector.pid == 200


def test_alerts_dedupe_move_forward_and_keep_history(store: MetricStore) -> None:
    with store:
        alert = store.open_alert(
            "p99", "sudden", "iris", "prod", t=T0, value=812.0, detail="p99 812 ms > 500 ms",
            release="r1", rollback='relman rollback iris --env prod --reason "p99"',
        )  # fmt: skip
        assert (alert.state, alert.since, alert.updated) == ("pending", T0, T0)
        assert store.open_alert("p99", "sudden", "iris", "prod", t=T0 + 60) == alert  # dedupe
        other = store.open_alert("errors", "sudden", "iris", "prod", t=T0 + 60, state="firing")
        still = store.update_alert(alert.id, t=T0 + 60, value=900.0)
        assert (still.state, still.since, still.updated, still.value) == (
            "pending", T0, T0 + 60, 900.0
        )  # fmt: skip
        firing = store.update_alert(alert.id, t=T0 + 120, state="firing", detail="p99 950 ms")
        assert (firing.state, firing.since, firing.detail) == ("firing", T0 + 120, "p99 950 ms")
        with pytest.raises(InvalidRequest, match="cannot go back to pending"):
            store.update_alert(alert.id, t=T0 + 130, state="pending")
        resolved = store.update_alert(alert.id, t=T0 + 300, state="resolved")
        with pytest.raises(InvalidRequest, match="stays as history"):
            store.update_alert(alert.id, t=T0 + 310, value=1.0)
        with pytest.raises(RecordNotFound, match="no alert 999"):
            store.update_alert(999, t=T0, state="firing")
        again = store.open_alert("p99", "sudden", "iris", "prod", t=T0 + 400)
        assert again.id not in (alert.id, other.id)
        assert [e.state for e in store.alert_events(alert.id)] == [
            "pending", "firing", "resolved"
        ]  # fmt: skip
        assert [a.id for a in store.alerts()] == [again.id, alert.id, other.id]
        assert [a.id for a in store.alerts(state="open")] == [again.id, other.id]
        assert [a.id for a in store.alerts(state="firing", service="iris", env="prod")] == [
            other.id
        ]
        assert store.alerts(env="dev") == []
        assert store.alerts(limit=1) == [store.alerts()[0]]
    entry = resolved.to_dict()
    assert entry["name"] == "p99"
    assert entry["state"] == "resolved"
    assert entry["since"] == "2025-02-19T21:05:00+00:00"
    assert entry["rollback"] == 'relman rollback iris --env prod --reason "p99"'
    assert set(entry) >= {"name", "kind", "service", "env", "state", "since", "detail",
                          "release", "rollback"}  # fmt: skip


def test_minutes_judged_again_after_a_crash_neither_reopen_nor_repost(tmp_path: Path) -> None:
    """One pass fires and resolves an alert, then dies before saving its rules; the next
    judges the same minutes again from the older rules: the store holds one alert, and
    the firing and the resolution are each posted once."""
    from core.alerts.webhook import announcer

    with MetricStore.open(tmp_path / "metrics.db") as store:

        def minute(t: int, state: str) -> list[str | None]:
            change = AlertChange("p99", "sudden", "iris", "prod", t, state, detail=state)
            document = {"state": state, "t": t}
            return store.record_minute([], [change], announcer("http://hook", [state], [document]))

        for _ in range(2):  # the pass, and the same minutes judged again
            minute(60, "firing")
            minute(120, "resolved")
        assert [(a.state, a.since) for a in store.alerts()] == [("resolved", 120)]  # one
        posts = [(p.document["state"], p.document["t"]) for p in store.webhook_posts()]
        assert posts == [("firing", 60), ("resolved", 120)]
        minute(180, "pending")  # a new breach later opens a new alert
        assert [a.state for a in store.alerts()] == ["pending", "resolved"]
