"""The metric store's queries: per-minute points and rollups, scrapes, rollups computed from
the scrapes of a window, monitor-log records and their join with the feedback, the proxy's
latencies per minute. Each reads one series (service, env) over a window [since, until) of
Unix seconds, oldest first; the feedback labels of given request ids are read by id.

A file of schema 2 (a collector of the previous relman still runs; it upgrades the file
when it restarts) is read as it is: its rollups' percentiles are the histogram's, and it
holds no latencies.

:class:`MetricReads` is a part of :class:`store.metrics.store.MetricStore` (its reads are
:class:`store.metrics.base.MetricStoreBase`'s: one statement at a time, errors translated to
the store's one line). The alerts are read in
:mod:`store.metrics.alerts`, the collector's rows in :mod:`store.metrics.collector`.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from typing import Any

from store.metrics.base import MetricStoreBase
from store.metrics.latency import LatencyMinute, decode_sub
from store.metrics.rows import (
    RECORD_COLUMNS,
    ROLLUP_COLUMNS,
    SCRAPE_COLUMNS,
    Point,
    Record,
    Rollup,
    ScrapeRow,
    WindowRow,
    window_rollups,
)
from store.metrics.sketch import LogHistogram

__all__ = ["MetricReads"]

# A time after every stored one (SQLite integers are 64-bit).
_END = 2**62
_decode = json.JSONDecoder().decode
# Request ids per feedback query (an SQLite older than 3.32 takes at most 999 variables).
IDS_PER_QUERY = 900
# The schema that added the latencies and rollups.latency_source (store.metrics.schema).
_LATENCY_SCHEMA = 3
# What a file older than that says of its rollups' percentiles.
_HISTOGRAM = "'histogram' AS latency_source"


class MetricReads(MetricStoreBase):
    """The samples, rollups and records of a window."""

    def series(self, service: str, env: str, since: int, until: int) -> list[Point]:
        """The per-minute points of minutes in [since, until), oldest first (from the
        rollups; a minute without one is absent)."""
        source = "latency_source" if self._keeps_latency() else _HISTOGRAM
        rows = self._all(
            f"SELECT minute, rps, error_rate, p50_ms, p95_ms, p99_ms, {source} FROM rollups "
            "WHERE service = ? AND env = ? AND minute >= ? AND minute < ? ORDER BY minute",
            (service, env, since, until),
        )
        return [Point(*row) for row in rows]

    def rollups(self, service: str, env: str, since: int, until: int) -> list[Rollup]:
        """The stored rollups of minutes in [since, until), oldest first."""
        columns = ROLLUP_COLUMNS
        if not self._keeps_latency():
            columns = columns.replace("latency_source", _HISTOGRAM)
        rows = self._all(
            f"SELECT {columns} FROM rollups "
            "WHERE service = ? AND env = ? AND minute >= ? AND minute < ? ORDER BY minute",
            (service, env, since, until),
        )
        return [Rollup(*row) for row in rows]

    def last_scrape(self, service: str, env: str, *, before: int | None = None) -> ScrapeRow | None:
        """The newest scrape (before ``before`` when given): the base of the next rollup."""
        rows = self._all(
            f"SELECT {SCRAPE_COLUMNS} FROM scrapes WHERE service = ? AND env = ? AND t < ? "
            "ORDER BY t DESC LIMIT 1",
            (service, env, _END if before is None else before),
        )
        return _scrape(rows[0]) if rows else None

    def scrapes(self, service: str, env: str, since: int, until: int) -> list[ScrapeRow]:
        """The scrapes of [since, until), oldest first."""
        rows = self._all(
            f"SELECT {SCRAPE_COLUMNS} FROM scrapes WHERE service = ? AND env = ? "
            "AND t >= ? AND t < ? ORDER BY t",
            (service, env, since, until),
        )
        return [_scrape(row) for row in rows]

    def rollups_from_scrapes(self, service: str, env: str, since: int, until: int) -> list[Rollup]:
        """The rollup of every minute of [since, until) that has scrapes, computed from the
        raw scrapes (``since`` is rounded down to its minute): what
        :func:`store.metrics.rows.rollup` gives for each minute, its base the last scrape
        before it.

        Fast on long windows: a minute whose request and error counters only grew and whose
        release did not change telescopes (its deltas are its last scrape minus its base),
        so only one histogram per minute is decoded; any other minute goes through
        :func:`store.metrics.rows.rollup` whole. (The two differ only if a bucket fell and
        rose again within a minute while neither counter fell: a restart no counter shows,
        which no counter arithmetic can see either.)
        """
        start = since - since % 60
        with self._reading() as conn:
            base: WindowRow | None = conn.execute(
                "SELECT t, release, requests, errors, in_progress, buckets FROM scrapes "
                "WHERE service = ? AND env = ? AND t < ? ORDER BY t DESC LIMIT 1",
                (service, env, start),
            ).fetchone()
            rows: list[WindowRow] = conn.execute(
                "SELECT t, release, requests, errors, in_progress, buckets FROM scrapes "
                "WHERE service = ? AND env = ? AND t >= ? AND t < ? ORDER BY t",
                (service, env, start, until),
            ).fetchall()
        return window_rollups(service, env, base, rows)

    def records(
        self, service: str, env: str, since: int, until: int, release: str | None = None
    ) -> list[Record]:
        """The monitor-log records of [since, until) (of one release when given), oldest
        first."""
        sql = (
            f"SELECT {RECORD_COLUMNS} FROM records WHERE service = ? AND env = ? "
            "AND t >= ? AND t < ?"
        )
        params: list[Any] = [service, env, since, until]
        if release is not None:
            sql += " AND release = ?"
            params.append(release)
        rows = self._all(sql + " ORDER BY t, id", params)
        return [
            Record(row[0], row[1], row[2], row[3], row[4], _decode(row[5]), row[6], row[7])
            for row in rows
        ]

    def feedback_join(
        self, service: str, env: str, since: int, until: int
    ) -> list[tuple[str | None, str]]:
        """(prediction, label) of the records of [since, until) whose true label is known:
        from feedback by request id, else the record's own target column."""
        rows = self._all(
            "SELECT r.prediction, coalesce(f.label, r.target) AS label FROM records AS r "
            "LEFT JOIN feedback AS f "
            "ON f.service = r.service AND f.env = r.env AND f.request_id = r.request_id "
            "WHERE r.service = ? AND r.env = ? AND r.t >= ? AND r.t < ? AND label IS NOT NULL "
            "ORDER BY r.t, r.id",
            (service, env, since, until),
        )
        return [(row[0], row[1]) for row in rows]

    def feedback_labels(self, service: str, env: str, request_ids: Iterable[str]) -> dict[str, str]:
        """``{request id: label}`` of the feedback of (service, env), for those of
        ``request_ids`` that have one (a primary-key lookup each, IDS_PER_QUERY ids per
        query)."""
        ids = list(dict.fromkeys(request_ids))
        labels: dict[str, str] = {}
        with self._reading() as conn:
            for first in range(0, len(ids), IDS_PER_QUERY):
                chunk = ids[first : first + IDS_PER_QUERY]
                marks = ", ".join("?" * len(chunk))
                labels.update(
                    conn.execute(
                        "SELECT request_id, label FROM feedback WHERE service = ? AND env = ? "
                        f"AND request_id IN ({marks})",
                        [service, env, *chunk],
                    ).fetchall()
                )
        return labels

    # --------------------------------------------------------------- exact latencies

    def latency_minute(self, service: str, env: str, minute: int) -> LatencyMinute | None:
        """The proxy's latencies of ``minute`` (its first second), its releases merged;
        None when the access log gave none."""
        found = self.latency_minutes(service, env, minute, minute + 1)
        return found[0] if found else None

    def latency_minutes(
        self, service: str, env: str, since: int, until: int
    ) -> list[LatencyMinute]:
        """The proxy's latencies of each minute in [since, until) that has any, oldest
        first."""
        if not self._keeps_latency():
            return []
        rows = self._all(
            "SELECT minute, release, sub FROM latency WHERE service = ? AND env = ? "
            "AND minute >= ? AND minute < ? ORDER BY minute, release",
            (service, env, since, until),
        )
        by_minute: dict[int, list[tuple[str | None, list[LogHistogram | None]]]] = {}
        for minute, release, sub in rows:
            by_minute.setdefault(minute, []).append((release or None, decode_sub(sub)))
        return [LatencyMinute.of(minute, found) for minute, found in by_minute.items()]

    def latency_sketch(
        self, service: str, env: str, since: int, until: int, release: str | None = None
    ) -> LogHistogram:
        """The proxy's latencies of the minutes in [since, until) in one histogram (of one
        ``release`` when given); empty when there are none."""
        if not self._keeps_latency():
            return LogHistogram()
        sql = "SELECT sub FROM latency WHERE service = ? AND env = ? AND minute >= ? AND minute < ?"
        params: list[Any] = [service, env, since, until]
        if release is not None:
            sql += " AND release = ?"
            params.append(release)
        merged = LogHistogram()
        for (sub,) in self._all(sql, params):
            for histogram in decode_sub(sub):
                if histogram is not None:
                    merged.merge(histogram)
        return merged

    def access_offsets(self) -> dict[tuple[str, str], dict[str, Any]]:
        """The stored access-log reader states: ``{(service, env): state}``."""
        if not self._keeps_latency():
            return {}
        rows = self._all("SELECT service, env, state FROM access_offsets", [])
        return {(service, env): _decode(state) for service, env, state in rows}

    def _keeps_latency(self) -> bool:
        """Whether the file has the latency tables (schema 3 on): a reader may face a file
        the collector of the previous relman still writes."""
        with self._reading() as conn:
            return int(conn.execute("PRAGMA user_version").fetchone()[0]) >= _LATENCY_SCHEMA


def _scrape(row: Sequence[Any]) -> ScrapeRow:
    return ScrapeRow(row[0], row[1], row[2], row[3], row[4], row[5], row[6], _decode(row[7]))
