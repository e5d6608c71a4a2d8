"""The metric store's queries: per-minute points and rollups, scrapes, rollups computed from
the scrapes of a window, monitor-log records and their join with the feedback. Each reads
one series (service, env) over a window [since, until) of Unix seconds, oldest first; the
feedback labels of given request ids are read by id.

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

__all__ = ["MetricReads"]

# A time after every stored one (SQLite integers are 64-bit).
_END = 2**62
_decode = json.JSONDecoder().decode
# Request ids per feedback query (an SQLite older than 3.32 takes at most 999 variables).
IDS_PER_QUERY = 900


class MetricReads(MetricStoreBase):
    """The samples, rollups and records of a window."""

    def series(self, service: str, env: str, since: int, until: int) -> list[Point]:
        """The per-minute points of minutes in [since, until), oldest first (from the
        rollups; a minute without one is absent)."""
        rows = self._all(
            "SELECT minute, rps, error_rate, p50_ms, p95_ms, p99_ms FROM rollups "
            "WHERE service = ? AND env = ? AND minute >= ? AND minute < ? ORDER BY minute",
            (service, env, since, until),
        )
        return [Point(*row) for row in rows]

    def rollups(self, service: str, env: str, since: int, until: int) -> list[Rollup]:
        """The stored rollups of minutes in [since, until), oldest first."""
        rows = self._all(
            f"SELECT {ROLLUP_COLUMNS} FROM rollups "
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


def _scrape(row: Sequence[Any]) -> ScrapeRow:
    return ScrapeRow(row[0], row[1], row[2], row[3], row[4], row[5], row[6], _decode(row[7]))
