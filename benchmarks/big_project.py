"""A demo project made big, for the benchmarks of what reads it whole (bench_tui.py): 10,000
releases of iris in its ledger (``Ledger.record_release`` in a loop, one process, recorded as
of two hours ago), iris live in dev, staging and prod, and a metric store of 10M samples: six
hours of one-second scrapes of 462 series (iris in each environment, ending now, and 459
others), with their per-minute rollups, written with SQL in big transactions as
bench_metric_store.py does."""

from __future__ import annotations

import hashlib
import sqlite3
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

RELEASES = 10_000
SPAN = 6 * 3600  # seconds of one-second scrapes per series
ENVS = ("dev", "staging", "prod")


def release_id(n: int) -> str:
    """Twelve hex digits that differ from the first ones on, as real release ids do."""
    return hashlib.sha256(str(n).encode()).hexdigest()[:12]


def fill_ledger(project_root: Path) -> float:
    """10,000 releases of iris (the newest live in every environment); the seconds it took."""
    from core.api import load_project
    from store import Ledger

    project = load_project(project_root)
    started = time.perf_counter()
    # Recorded as of two hours ago: the ages on the overview are past their seconds, as on
    # a project in use (they would redraw the table every second for the first minute).
    ago = datetime.now(UTC) - timedelta(hours=2)
    ledger = Ledger.open(project.ledger_path, actor="bench", clock=lambda: ago)
    try:
        for n in range(RELEASES):
            ledger.record_release(
                release_id(n),
                service="iris",
                git_commit=f"{n:040x}",
                git_branch="main",
                message=f"release {n}",
                author="bench",
                params={"train": {"C": n}},
                metrics={"accuracy": 0.95},
                version=f"v0.{n}.0",
            )
        for offset, env in enumerate(ENVS):
            url = f"http://127.0.0.1:{project.config.environments[env].port}"
            release = release_id(RELEASES - 1 - offset)
            ledger.set_environment_state("iris", env, "live", release_id=release, url=url)
    finally:
        ledger.close()
    return time.perf_counter() - started


def fill_metric_store(path: Path, rows: int) -> tuple[int, float]:
    """``rows`` samples (SPAN one-second scrapes per series) ending now, and their rollups;
    the series count and the seconds it took."""
    from benchmarks.bench_metric_store import LES, SHARES
    from store.metrics.store import MetricStore

    started = time.perf_counter()
    series = max(len(ENVS), rows // SPAN)
    end = int(time.time()) // 60 * 60
    start = end - SPAN
    MetricStore.open(path).close()
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA synchronous = OFF")
    conn.execute("PRAGMA cache_size = -262144")
    conn.execute("CREATE TEMP TABLE bench_series (service TEXT, env TEXT, rate INTEGER)")
    names = [("iris", env) for env in ENVS] + [
        (f"svc{s // 3:03d}", ENVS[s % 3]) for s in range(series - len(ENVS))
    ]
    conn.executemany(
        "INSERT INTO bench_series VALUES (?, ?, ?)",
        [(service, env, 3 + s % 20) for s, (service, env) in enumerate(names)],
    )
    buckets = ", ".join(
        f"'{le}', CAST(CAST(r * {share} AS INTEGER) AS REAL)"
        for le, share in zip(LES[:-1], SHARES, strict=False)
    )
    insert = (
        "WITH RECURSIVE ticks(n) AS (SELECT ?1 UNION ALL SELECT n + 1 FROM ticks WHERE n + 1 < ?2),"
        " samples AS (SELECT s.service, s.env, ticks.n, CAST(ticks.n * s.rate AS REAL) AS r"
        "  FROM ticks CROSS JOIN bench_series AS s)"  # time-major, like the collector
        " INSERT INTO scrapes (service, env, t, release, requests, errors, in_progress, buckets)"
        " SELECT service, env, ?3 + n, 'r1', r, CAST(CAST(r / 50 AS INTEGER) AS REAL), n % 7,"
        f"  json_object({buckets}, '+Inf', r) FROM samples"
    )
    chunk = max(1, 500_000 // series)
    for first in range(0, SPAN, chunk):
        conn.execute("BEGIN")
        conn.execute(insert, (first, min(SPAN, first + chunk), start))
        conn.execute("COMMIT")
    conn.execute("BEGIN")
    conn.execute(
        "WITH RECURSIVE minutes(m) AS (SELECT 0 UNION ALL SELECT m + 1 FROM minutes "
        "WHERE m + 1 < ?1) INSERT INTO rollups SELECT s.service, s.env, ?2 + 60 * m, 'r1', "
        "60.0 * s.rate, 0.6 * s.rate, s.rate, 0.01, 40.0 + m % 7, 90.0 + m % 13, 240.0, 3.0 "
        "FROM minutes CROSS JOIN bench_series AS s",
        (SPAN // 60, start),
    )
    conn.execute("COMMIT")
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    conn.close()
    return series, time.perf_counter() - started
