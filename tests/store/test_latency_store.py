"""The proxy's latencies in the metric store (store/metrics/: schema 3, ``add_batch``'s
``latency``, ``latency_minute``, ``latency_sketch``, retention): a minute's histograms
merged across batches and releases, read back per minute, per 10-second bin and over a
window; rollups saying where their percentiles came from; a file of the previous schema
still read (docs/monitoring.md, "Exact latencies")."""

from __future__ import annotations

import random
import sqlite3
from pathlib import Path

import pytest

from store.ledger.db import DEFAULT_BUSY_TIMEOUT, connect
from store.ledger.migrations import migrate
from store.metrics.schema import MIGRATIONS
from store.metrics.sketch import RELATIVE_ACCURACY, LogHistogram, exact_quantile
from store.metrics.store import (
    AccessOffset,
    LatencyRow,
    MetricStore,
    Point,
    Rollup,
    SubBin,
    with_latency,
)

T0 = 1_740_000_000 - 1_740_000_000 % 3600  # a whole hour


def histogram(values: list[float]) -> LogHistogram | None:
    if not values:
        return None
    out = LogHistogram()
    out.add_all(values)
    return out


def row(minute: int, release: str | None, bins: list[list[float]]) -> LatencyRow:
    return LatencyRow("iris", "prod", minute, release, [histogram(b) for b in bins])


def rolled(minute: int) -> Rollup:
    return Rollup("iris", "prod", minute, "r1", 60.0, 0.0, 1.0, 0.0, 250.0, 480.0, 950.0, 0.0)


@pytest.fixture
def store(tmp_path: Path) -> MetricStore:
    return MetricStore.open(tmp_path / "metrics.db")


def test_a_minutes_latencies_merge_across_batches_and_releases(store: MetricStore) -> None:
    rng = random.Random(3)
    bins = [[rng.lognormvariate(3.6, 0.3) for _ in range(n)] for n in (50, 0, 40, 30, 0, 20)]
    late = [[], [], [], [], [], [rng.lognormvariate(3.6, 0.3) for _ in range(7)]]
    other = [[rng.lognormvariate(4.0, 0.2) for _ in range(5)], [], [], [], [], []]
    with store:
        store.add_batch(latency=[row(T0, "r1", bins), row(T0 + 60, "r1", bins)])
        # The next pass: late lines of the same minute, and another release's.
        store.add_batch(latency=[row(T0, "r1", late), row(T0, "r2", other)])
        minute = store.latency_minute("iris", "prod", T0)
        assert store.latency_minute("iris", "prod", T0 + 120) is None
        assert store.latency_minute("iris", "dev", T0) is None
        window_r1 = store.latency_sketch("iris", "prod", T0, T0 + 120, release="r1")
        first_r2 = store.latency_sketch("iris", "prod", T0, T0 + 60, release="r2")
        second = store.latency_sketch("iris", "prod", T0 + 60, T0 + 61)
        assert store.latency_sketch("iris", "prod", T0 + 120, T0 + 600).count == 0
    assert minute is not None
    everything = [v for part in (bins, late, other) for b in part for v in b]
    assert minute.minute == T0 and minute.release == "r1" and minute.count == len(everything)
    assert minute.sketch == histogram(everything)
    assert [b is None for b in minute.sub] == [False, True, False, False, True, False]
    last = [*bins[5], *late[5]]
    assert minute.sub[5] == SubBin(len(last), *histogram(last).quantiles((0.5, 0.95, 0.99)))  # type: ignore[union-attr]
    assert minute.sub[0] is not None and minute.sub[0].requests == 55  # r1's 50 and r2's 5
    assert window_r1.count == 2 * 140 + 7 and first_r2.count == 5 and second.count == 140


def test_a_rollup_takes_its_percentiles_from_the_proxy_when_the_minute_has_any(
    store: MetricStore,
) -> None:
    rng = random.Random(7)
    values = [rng.lognormvariate(3.64, 0.2) for _ in range(600)]  # about 38 ms
    with store:
        store.add_batch(latency=[row(T0, "r1", [values[i::6] for i in range(6)])])
        exact = with_latency(rolled(T0), store.latency_minute("iris", "prod", T0))
        kept = with_latency(rolled(T0 + 60), store.latency_minute("iris", "prod", T0 + 60))
        store.record_minute([exact, kept], [])
        points = store.series("iris", "prod", T0, T0 + 120)
        assert store.rollups("iris", "prod", T0, T0 + 120) == [exact, kept]
    assert exact.latency_source == "proxy" and kept == rolled(T0 + 60)
    for got, q in zip((exact.p50_ms, exact.p95_ms, exact.p99_ms), (0.5, 0.95, 0.99), strict=True):
        truth = exact_quantile(values, q)
        assert got is not None and truth is not None
        assert abs(got - truth) <= RELATIVE_ACCURACY * truth * (1 + 1e-9)
    assert [p.latency_source for p in points] == ["proxy", "histogram"]
    assert points[1] == Point(T0 + 60, 1.0, 0.0, 250.0, 480.0, 950.0)
    assert points[0].to_dict()["latency_source"] == "proxy"
    assert points[1].to_dict()["latency_source"] == "histogram"


def test_the_access_log_offsets_are_stored_with_the_latencies(store: MetricStore) -> None:
    state = {"files": [{"inode": 5, "offset": 120, "head": "80:ab"}], "seen": 1.5, "floor": 0}
    with store:
        assert store.access_offsets() == {}
        store.add_batch(
            latency=[row(T0, None, [[1.0], [], [], [], [], []])],
            access=[AccessOffset("iris", "prod", state)],
        )
        assert store.access_offsets() == {("iris", "prod"): state}
        minute = store.latency_minute("iris", "prod", T0)
    assert minute is not None and minute.release is None and minute.count == 1


def test_latencies_are_pruned_with_the_rollups(store: MetricStore) -> None:
    now = T0 + 30 * 86400
    with store:
        for days in range(6):
            minute = now - 86400 * days
            # Several releases a minute: the rows of one minute share its time.
            store.add_batch(
                latency=[row(minute + 60 * k, r, [[5.0]] * 6) for k in range(3) for r in "abc"]
            )
        deleted = store.prune(now, raw_hours=2, rollup_days=3, batch=4)
        left = store.latency_sketch("iris", "prod", 0, now + 86400)
    assert deleted == 2 * 9  # 4 and 5 days ago: 9 rows each
    assert left.count == 4 * 9 * 6


def test_a_row_of_another_accuracy_is_replaced_not_fatal(store: MetricStore) -> None:
    conn = sqlite3.connect(store.path)
    foreign = '{"a":0.02,"z":0,"b":{"1":3}}'
    conn.execute(
        "INSERT INTO latency VALUES ('iris', 'prod', ?, 'r1', 3, ?)",
        (T0, "[" + ",".join([foreign] + ["null"] * 5) + "]"),
    )
    conn.commit()
    conn.close()
    with store:
        store.add_batch(latency=[row(T0, "r1", [[9.0], [], [], [], [], []])])
        minute = store.latency_minute("iris", "prod", T0)
    assert minute is not None and minute.count == 1


def test_a_file_of_the_previous_schema_is_read_as_it_is(tmp_path: Path) -> None:
    """A collector of the previous relman still writes it: rollups read as histogram ones,
    no latencies; the next writer's open upgrades it."""
    path = tmp_path / "metrics.db"
    db = connect(path, readonly=False, busy_timeout=DEFAULT_BUSY_TIMEOUT)
    migrate(db, path, MIGRATIONS[:2])
    db.execute(
        "INSERT INTO rollups VALUES ('iris', 'prod', ?, 'r1', 60, 0, 1, 0, 250, 480, 950, 0)",
        [T0],
    )
    db.conn.commit()
    db.close()
    with MetricStore.open(path, readonly=True) as reader:
        assert reader.series("iris", "prod", T0, T0 + 60) == [
            Point(T0, 1.0, 0.0, 250.0, 480.0, 950.0, "histogram")
        ]
        assert reader.rollups("iris", "prod", T0, T0 + 60) == [rolled(T0)]
        assert reader.latency_minute("iris", "prod", T0) is None
        assert reader.latency_sketch("iris", "prod", T0, T0 + 60).count == 0
        assert reader.access_offsets() == {}
    with MetricStore.open(path) as writer:
        assert writer.schema_version == len(MIGRATIONS)
        assert writer.rollups("iris", "prod", T0, T0 + 60) == [rolled(T0)]
