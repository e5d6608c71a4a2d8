"""Metric store: ingest against bare sqlite3, and the 1-hour p50/p95/p99 query at 1M and 10M.

A *sample* is one scrape row, what ``relman monitor`` stores per environment per scrape: the
cumulative counters of one (service, env) at one second (requests, errors, in-flight) and
its 16-bucket latency histogram (BentoML's bounds 0.005 ... 180 s and +Inf) as JSON, about
300 bytes. The query stores hold 6 hours (the default raw retention) of scrapes every second
(5x denser than the default 5 s interval), so 1M samples are 46 series and 10M are 463;
rows go in time-major, as the collector writes them (built with SQL in big transactions).

1. Ingest: ``MetricStore.add_scrapes`` (ScrapeRow objects in, buckets encoded to JSON on the
   way) against ``executemany`` of the same INSERT with the same rows as ready tuples (JSON
   already encoded) into an identical table (a file made by the same migration, same WAL and
   ``synchronous`` settings), same process, same batches, each batch one BEGIN IMMEDIATE
   transaction. Likewise ``add_records`` (4 features each). Best of 3 rounds, interleaved.
   Goal: the store at >= 50% of the bare throughput.
2. Query: ``MetricStore.rollups_from_scrapes(service, env, t, t + 3600)``: the 60
   per-minute rollups (rps, error rate, p50/p95/p99 by Prometheus-style interpolation inside
   the histogram buckets) of one series computed from its 3,600 raw samples plus the one
   before. Median (and p95) over queries on random series and hours, each on the store
   opened read-only, warm OS cache. Goal: <= 20 ms at 10M, growing < 1.5x from 1M. For
   reference: the same through ``scrapes()`` + :func:`store.metrics.store.rollup` minute by minute
   (every histogram decoded), and ``series()``, the stored rollups the panes draw.

    .venv/bin/python benchmarks/bench_metric_store.py [--rows 10000000] [--queries 50]
"""

from __future__ import annotations

import argparse
import json
import random
import sqlite3
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from store.metrics.store import (
    INSERT_RECORD,
    INSERT_SCRAPE,
    MetricStore,
    Record,
    Rollup,
    ScrapeRow,
    rollup,
)

LES = (
    "0.005", "0.01", "0.025", "0.05", "0.1", "0.25", "0.5", "1.0", "2.5", "5.0", "10.0",
    "30.0", "60.0", "120.0", "180.0", "+Inf",
)  # fmt: skip
# Cumulative share of requests at or under each bound: mostly 10-100 ms, a slow tail.
SHARES = (
    0.02, 0.08, 0.30, 0.62, 0.88, 0.96, 0.985, 0.995, 0.998, 0.999, 1.0, 1.0, 1.0, 1.0, 1.0,
    1.0,
)  # fmt: skip
SPAN = 6 * 3600  # seconds of scrapes per series in the query stores
START = 1_750_000_000 - 1_750_000_000 % 3600
INGEST_GOAL = 0.5
QUERY_GOAL_MS = 20.0
GROWTH_GOAL = 1.5


# ------------------------------------------------------------------------------------ ingest


def scrape_rows(count: int, series: int = 50) -> list[ScrapeRow]:
    rows = []
    for n in range(count):
        tick, s = divmod(n, series)
        requests = float(tick * (13 + s % 20) + (tick * 7919 + s) % 13)
        buckets = {le: float(int(requests * share)) for le, share in zip(LES, SHARES, strict=True)}
        buckets["+Inf"] = requests
        rows.append(
            ScrapeRow(
                f"svc{s:03d}",
                "prod",
                START + tick,
                "r1",
                requests,
                requests // 50,
                float(tick % 7),
                buckets,
            )
        )
    return rows


def record_rows(count: int) -> list[Record]:
    names = ("sepal_length", "sepal_width", "petal_length", "petal_width")
    return [
        Record("iris", "prod", START + n // 20, "r1", f"req-{n // 2}",
               {name: round(1 + (n * (i + 3)) % 70 / 10, 1) for i, name in enumerate(names)},
               ("setosa", "versicolor", "virginica")[n % 3], None)
        for n in range(count)
    ]  # fmt: skip


def ingest(folder: Path, count: int, batch: int) -> None:
    scrapes = scrape_rows(count)
    records = record_rows(count)
    cases = [
        (
            "scrapes",
            INSERT_SCRAPE,
            scrapes,
            [(r.service, r.env, r.t, r.release, r.requests, r.errors, r.in_progress,
              _json(r.buckets)) for r in scrapes],
            MetricStore.add_scrapes,
        ),
        (
            "records",
            INSERT_RECORD,
            records,
            [(r.service, r.env, r.t, r.release, r.request_id, _json(r.features), r.prediction,
              r.target) for r in records],
            MetricStore.add_records,
        ),
    ]  # fmt: skip
    print(f"1. ingest, {count:,} rows in batches of {batch} (best of 3, rows/s)")
    for name, sql, objects, tuples, add in cases:
        bare_s, store_s = [], []
        for round_ in range(3):
            path = folder / f"bare-{name}-{batch}-{round_}.db"
            MetricStore.open(path).close()  # the identical table: same migration
            conn = sqlite3.connect(path, isolation_level=None)
            conn.execute("PRAGMA synchronous = NORMAL")
            started = time.perf_counter()
            for i in range(0, count, batch):
                conn.execute("BEGIN IMMEDIATE")
                conn.executemany(sql, tuples[i : i + batch])
                conn.execute("COMMIT")
            bare_s.append(time.perf_counter() - started)
            conn.close()
            with MetricStore.open(folder / f"store-{name}-{batch}-{round_}.db") as store:
                started = time.perf_counter()
                for i in range(0, count, batch):
                    add(store, objects[i : i + batch])
                store_s.append(time.perf_counter() - started)
        bare, ours = count / min(bare_s), count / min(store_s)
        verdict = "ok" if ours / bare >= INGEST_GOAL else "UNDER GOAL"
        print(
            f"   add_{name:<8} {ours:>10,.0f}   bare executemany {bare:>10,.0f}   "
            f"ratio {ours / bare:.2f} (goal >= {INGEST_GOAL})  {verdict}"
        )


def _json(value: dict[str, float]) -> str:
    return json.dumps(value, separators=(",", ":"))


# ------------------------------------------------------------------------------------- query


def build(path: Path, rows: int) -> int:
    """A store of ``rows`` samples: SPAN one-second scrapes of rows // SPAN series, and their
    per-minute rollups. Returns the number of series."""
    series = max(1, rows // SPAN)
    MetricStore.open(path).close()
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA synchronous = OFF")
    conn.execute("PRAGMA cache_size = -262144")
    conn.execute("CREATE TEMP TABLE bench_series (service TEXT, env TEXT, rate INTEGER)")
    conn.executemany(
        "INSERT INTO bench_series VALUES (?, ?, ?)",
        [(f"svc{s // 3:03d}", ("dev", "staging", "prod")[s % 3], 13 + s % 20)
         for s in range(series)],
    )  # fmt: skip
    buckets = ", ".join(
        f"'{le}', CAST(CAST(r * {share} AS INTEGER) AS REAL)"
        for le, share in zip(LES[:-1], SHARES, strict=False)
    )
    insert = (
        "WITH RECURSIVE ticks(n) AS (SELECT ?1 UNION ALL SELECT n + 1 FROM ticks WHERE n + 1 < ?2),"
        " samples AS (SELECT s.service, s.env, ticks.n, "
        "  CAST(ticks.n * s.rate + (ticks.n * 7919 + s.rate) % 13 AS REAL) AS r "
        "  FROM ticks CROSS JOIN bench_series AS s)"  # time-major, like the collector
        " INSERT INTO scrapes (service, env, t, release, requests, errors, in_progress, buckets)"
        f" SELECT service, env, ?3 + n, 'r1', r, CAST(CAST(r / 50 AS INTEGER) AS REAL), n % 7,"
        f"  json_object({buckets}, '+Inf', r) FROM samples"
    )
    chunk = max(1, 500_000 // series)
    for first in range(0, SPAN, chunk):
        conn.execute("BEGIN")
        conn.execute(insert, (first, min(SPAN, first + chunk), START))
        conn.execute("COMMIT")
    conn.execute("BEGIN")
    conn.execute(
        "WITH RECURSIVE minutes(m) AS (SELECT 0 UNION ALL SELECT m + 1 FROM minutes "
        "WHERE m + 1 < ?1) INSERT INTO rollups SELECT s.service, s.env, ?2 + 60 * m, 'r1', "
        "60.0 * s.rate, 0.6 * s.rate, s.rate, 0.01, 40.0, 90.0, 240.0, 3.0 "
        "FROM minutes CROSS JOIN bench_series AS s",
        (SPAN // 60, START),
    )
    conn.execute("COMMIT")
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    conn.close()
    return series


def naive(store: MetricStore, service: str, env: str, since: int) -> list[Rollup]:
    """The same rollups, every histogram decoded: scrapes() + rollup() minute by minute."""
    previous = store.last_scrape(service, env, before=since)
    out = []
    scrapes = store.scrapes(service, env, since, since + 3600)
    for minute in range(since, since + 3600, 60):
        mine = [s for s in scrapes if minute <= s.t < minute + 60]
        result = rollup(previous, mine, minute)
        if result is not None:
            out.append(result)
        previous = mine[-1] if mine else previous
    return out


def timed(action: Callable[[], object]) -> float:
    started = time.perf_counter()
    action()
    return (time.perf_counter() - started) * 1000


def query(path: Path, series: int, queries: int) -> dict[str, tuple[float, float]]:
    rng = random.Random(7)
    keys = [(f"svc{s // 3:03d}", ("dev", "staging", "prod")[s % 3]) for s in range(series)]
    picks = [
        (*rng.choice(keys), START + 60 * rng.randrange(1, SPAN // 60 - 60)) for _ in range(queries)
    ]
    times: dict[str, list[float]] = {"raw": [], "naive": [], "series": []}
    with MetricStore.open(path, readonly=True) as store:
        service, env, since = picks[0]
        check = store.rollups_from_scrapes(service, env, since, since + 3600)
        assert len(check) == 60 and check == naive(store, service, env, since)
        assert check[0].p99_ms is not None
        for service, env, since in picks:
            times["raw"].append(
                timed(lambda: store.rollups_from_scrapes(service, env, since, since + 3600))  # noqa: B023
            )
            times["naive"].append(timed(lambda: naive(store, service, env, since)))  # noqa: B023
            times["series"].append(
                timed(lambda: store.series(service, env, since, since + 3600))  # noqa: B023
            )
    return {
        name: (statistics.median(values), statistics.quantiles(values, n=20)[-1])
        for name, values in times.items()
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--rows", type=int, default=10_000_000, help="samples of the big store")
    parser.add_argument("--queries", type=int, default=50)
    parser.add_argument("--ingest-rows", type=int, default=200_000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="relman-bench-") as name:
        folder = Path(name)
        for batch in (1000, 50):
            ingest(folder, args.ingest_rows, batch)
        sizes = (args.rows // 10, args.rows)
        medians = []
        print("2. 1-hour per-minute p50/p95/p99 of one series (median / p95 of "
              f"{args.queries} queries, ms)")  # fmt: skip
        for rows in sizes:
            path = folder / f"query-{rows}.db"
            started = time.perf_counter()
            series = build(path, rows)
            built = time.perf_counter() - started
            stored = series * SPAN
            size_gb = path.stat().st_size / 1e9
            result = query(path, series, args.queries)
            medians.append(result["raw"][0])
            verdict = "ok" if result["raw"][0] <= QUERY_GOAL_MS else "OVER GOAL"
            print(
                f"   {stored:>11,} samples ({series} series, {size_gb:.1f} GB, built in "
                f"{built:.0f} s): from raw {result['raw'][0]:6.2f} / {result['raw'][1]:6.2f}"
                f"  {verdict}   [every histogram decoded {result['naive'][0]:6.2f}; "
                f"stored rollups {result['series'][0]:5.2f}]"
            )
            path.unlink()
        growth = medians[1] / medians[0]
        verdict = "ok" if growth < GROWTH_GOAL else "OVER GOAL"
        print(f"   growth {sizes[0]:,} -> {sizes[1]:,}: {growth:.2f}x (goal < {GROWTH_GOAL})"
              f"  {verdict}")  # fmt: skip


if __name__ == "__main__":
    main()
