"""The metric store: ``<project>/.relman/metrics.db``, the collector's samples and alerts.

A database of its own, so that the collector's steady writes never wait on (nor block) the
ledger. Opening follows the ledger's rules (:mod:`store.ledger.db`): a file that is not SQLite, is
damaged, holds another program's tables or was written by a newer relman is refused with one
:class:`~store.errors.StoreFailure` line before anything writes to it; a read-only open never
creates, migrates or writes (a missing file reads as an empty store); write opens switch the
file to WAL and apply the versioned migrations of :mod:`store.metrics.schema`.

The ingest and query paths use the standard library's sqlite3 directly (``executemany``,
tuples). A write open goes through :func:`store.ledger.db.connect` (a sqlite-utils wrapper, for
``migrate`` and ``write_transaction``); a read-only open of an existing file uses sqlite3
alone, sparing the panes and ``relman metrics`` the import of sqlite-utils. Every
write is one BEGIN IMMEDIATE transaction per batch; a locked file is waited for (SQLite's own
busy handler, then retries with backoff, until ``busy_timeout``): no row is dropped, and past
the timeout the batch fails whole with the busy line (:class:`MetricStoreBusy`: the caller
keeps the batch and tries again later). A full disk fails it whole too
(:class:`MetricStoreFull`: nothing retries that). Times are integer Unix seconds (UTC).

The store is also the collector's record of what it consumed: the monitor-log readers'
offsets are written by the batch that stores their rows (:meth:`MetricStore.add_batch`),
the access-log reader's by the batch that merges the latencies it read into their
minutes' histograms (store.metrics.sketch), and the webhook posts by the minute whose
alert changes they announce (:meth:`MetricStore.record_minute`), so a collector killed
between a commit and the end of its pass reads nothing twice and loses no post.

This module opens the file, writes the samples and prunes them. The rows and the rollup
arithmetic live in :mod:`store.metrics.rows`, the proxy's latencies in
:mod:`store.metrics.latency` (both re-exported here); the rest of
:class:`MetricStore` comes from its parts: the connection and the write transaction
(:mod:`store.metrics.base`), the alerts and the webhook outbox (:mod:`store.metrics.alerts`),
the collector's claim, heartbeat and reader offsets (:mod:`store.metrics.collector`), the
queries (:mod:`store.metrics.reads`).
"""

from __future__ import annotations

import contextlib
import json
import operator
import sqlite3
from collections.abc import Callable, Iterable, Mapping, Sequence
from functools import partial
from pathlib import Path
from types import TracebackType
from typing import Any

from store.errors import MetricStoreBusy, MetricStoreFull, SchemaTooNew, SchemaTooOld
from store.ledger.db import (
    DEFAULT_BUSY_TIMEOUT,
    connect,
    connect_memory,
    corrupt_error,
    display_path,
    inspect_file,
    reading_file,
    readonly_uri,
    translate_errors,
)
from store.ledger.migrations import migrate
from store.metrics.alerts import AlertChange, MetricAlerts, WebhookPost, apply_change, queue_posts
from store.metrics.collector import UPSERT_OFFSET, MetricCollector, ReaderOffset, offset_params
from store.metrics.latency import (
    AccessOffset,
    LatencyMinute,
    LatencyRow,
    SubBin,
    decode_sub,
    encode_sub,
    merge_sub,
    with_latency,
)
from store.metrics.reads import MetricReads
from store.metrics.rows import (
    RECORD_COLUMNS,
    ROLLUP_COLUMNS,
    SCRAPE_COLUMNS,
    AlertEvent,
    AlertRow,
    CollectorRow,
    Feedback,
    Point,
    Record,
    Rollup,
    ScrapeRow,
    encode_buckets,
    histogram_quantile,
    rollup,
)
from store.metrics.schema import MIGRATIONS, READERS_READ_FROM, SCHEMA_VERSION
from store.metrics.sketch import LogHistogram

__all__ = [
    "AccessOffset",
    "AlertChange",
    "AlertEvent",
    "AlertRow",
    "CollectorRow",
    "Feedback",
    "LatencyMinute",
    "LatencyRow",
    "LogHistogram",
    "MetricStore",
    "MetricStoreBusy",
    "MetricStoreFull",
    "Point",
    "ReaderOffset",
    "Record",
    "Rollup",
    "ScrapeRow",
    "SubBin",
    "WebhookPost",
    "histogram_quantile",
    "rollup",
    "with_latency",
]

# The posts a judged minute queues, given each change's state before it (record_minute).
Announce = Callable[[Sequence[str | None]], Iterable[tuple[str, Mapping[str, Any]]]]


# quick_check reads every page: worth it before writing to a small file, not to a store of
# gigabytes (a damaged page met later fails that write or read with the same line).
_DEEP_CHECK_MAX_BYTES = 64 * 1024 * 1024
_PRUNE_BATCH = 10_000
_encode = json.JSONEncoder(separators=(",", ":"), check_circular=False).encode
_scrape_fields = operator.attrgetter(
    "service", "env", "t", "release", "requests", "errors", "in_progress"
)


# ------------------------------------------------------------------------------- the store

INSERT_SCRAPE = f"INSERT OR REPLACE INTO scrapes ({SCRAPE_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?)"
INSERT_RECORD = f"INSERT INTO records ({RECORD_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?)"
_UPSERT_ROLLUP = (
    f"INSERT INTO rollups ({ROLLUP_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) "
    "ON CONFLICT (service, env, minute) DO UPDATE SET release = excluded.release, "
    "requests = excluded.requests, errors = excluded.errors, rps = excluded.rps, "
    "error_rate = excluded.error_rate, p50_ms = excluded.p50_ms, p95_ms = excluded.p95_ms, "
    "p99_ms = excluded.p99_ms, in_progress = excluded.in_progress, "
    "latency_source = excluded.latency_source"
)
_HELD_LATENCY = (
    "SELECT sub FROM latency WHERE service = ? AND env = ? AND minute = ? AND release = ?"
)
_UPSERT_LATENCY = (
    "INSERT INTO latency (service, env, minute, release, count, sub) VALUES (?, ?, ?, ?, ?, ?) "
    "ON CONFLICT (service, env, minute, release) DO UPDATE SET count = excluded.count, "
    "sub = excluded.sub"
)
_UPSERT_ACCESS_OFFSET = (
    "INSERT INTO access_offsets (service, env, state) VALUES (?, ?, ?) "
    "ON CONFLICT (service, env) DO UPDATE SET state = excluded.state"
)
_UPSERT_FEEDBACK = (
    "INSERT INTO feedback (service, env, request_id, label, t) VALUES (?, ?, ?, ?, ?) "
    "ON CONFLICT (service, env, request_id) DO UPDATE SET label = excluded.label, t = excluded.t"
)


class MetricStore(MetricAlerts, MetricCollector, MetricReads):
    """Samples, rollups, monitor records, feedback, alerts and the collector heartbeat of one
    project. Safe to share between threads (one statement or transaction at a time)."""

    # --------------------------------------------------------------------- opening, closing

    @classmethod
    def open(
        cls, path: Path, *, readonly: bool = False, busy_timeout: float = DEFAULT_BUSY_TIMEOUT
    ) -> MetricStore:
        """Open (and for writers create and migrate) the metric store at ``path``."""
        version = _inspect(path, busy_timeout, readonly=readonly)
        if readonly:
            if not version:
                # Nothing collected yet: answer from an empty store rather than create one.
                db = connect_memory()
                migrate(db, path, MIGRATIONS)
                return cls(db.conn, None, path, readonly=True, busy_timeout=busy_timeout)
            with translate_errors(path, busy_timeout):
                conn = sqlite3.connect(
                    readonly_uri(path),
                    uri=True,
                    timeout=busy_timeout,
                    isolation_level=None,
                    check_same_thread=False,
                )
            return cls(conn, None, path, readonly=True, busy_timeout=busy_timeout)
        db = connect(path, readonly=False, busy_timeout=busy_timeout)
        try:
            with translate_errors(path, busy_timeout):
                # WAL: a crash loses at most the last commits, never consistency; metrics
                # are worth the fsync saved on every batch.
                db.conn.execute("PRAGMA synchronous = NORMAL")
                migrate(db, path, MIGRATIONS)
        except BaseException:
            db.close()
            raise
        return cls(db.conn, db, path, readonly=False, busy_timeout=busy_timeout)

    def close(self) -> None:
        with self._lock:
            self._conn.close()

    def __enter__(self) -> MetricStore:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    @property
    def schema_version(self) -> int:
        with self._reading() as conn:
            return int(conn.execute("PRAGMA user_version").fetchone()[0])

    # ------------------------------------------------------------------------------ writes

    def add_scrapes(self, rows: Iterable[ScrapeRow]) -> int:
        """Store scrapes (a second scrape of the same second replaces the first)."""
        self._check_writable("storing scrapes")
        params = [(*_scrape_fields(r), encode_buckets(r.buckets)) for r in rows]
        if params:
            self._write("storing scrapes", lambda conn: conn.executemany(INSERT_SCRAPE, params))
        return len(params)

    def put_rollups(self, rows: Iterable[Rollup]) -> int:
        """Store per-minute rollups, replacing those of the same minutes."""
        self._check_writable("storing rollups")
        params = [_rollup_params(r) for r in rows]
        if params:
            self._write("storing rollups", lambda conn: conn.executemany(_UPSERT_ROLLUP, params))
        return len(params)

    def add_records(self, rows: Iterable[Record]) -> int:
        """Store monitor-log records."""
        self._check_writable("storing records")
        params = _record_params(rows)
        if params:
            self._write("storing records", lambda conn: conn.executemany(INSERT_RECORD, params))
        return len(params)

    def add_feedback(self, rows: Iterable[Feedback]) -> int:
        """Store labels; a request labelled again takes the new label."""
        self._check_writable("storing feedback")
        params = [(r.service, r.env, r.request_id, r.label, r.t) for r in rows]
        if params:
            self._write("storing feedback", lambda conn: conn.executemany(_UPSERT_FEEDBACK, params))
        return len(params)

    def add_batch(
        self,
        scrapes: Iterable[ScrapeRow] = (),
        records: Iterable[Record] = (),
        feedback: Iterable[Feedback] = (),
        offsets: Iterable[ReaderOffset] = (),
        latency: Iterable[LatencyRow] = (),
        access: Iterable[AccessOffset] = (),
    ) -> tuple[int, int, int]:
        """Store scrapes, records and feedback in one transaction: all of them, or none (so a
        caller that keeps a failed batch and offers it again never stores a row twice),
        with ``offsets``, the reader states the records were read up to (replacing those
        of the same folders): a caller that dies just after the commit resumes from them.
        ``latency`` (the proxy's latencies read since, by minute and release) is merged
        into the minutes' stored histograms in the same transaction, with ``access``, the
        access-log reader states they were read up to. The counts stored, in the order of
        the first three."""
        self._check_writable("storing a batch")
        upsert_offsets = offset_params(offsets)
        scrape_params = [(*_scrape_fields(r), encode_buckets(r.buckets)) for r in scrapes]
        record_params = _record_params(records)
        feedback_params = [(r.service, r.env, r.request_id, r.label, r.t) for r in feedback]
        latencies = _latency_by_key(latency)
        access_params = [(a.service, a.env, _encode(a.state)) for a in access]

        def work(conn: sqlite3.Connection) -> None:
            conn.executemany(INSERT_SCRAPE, scrape_params)
            conn.executemany(INSERT_RECORD, record_params)
            conn.executemany(_UPSERT_FEEDBACK, feedback_params)
            conn.executemany(UPSERT_OFFSET, upsert_offsets)
            _merge_latency(conn, latencies)
            conn.executemany(_UPSERT_ACCESS_OFFSET, access_params)

        if (
            scrape_params or record_params or feedback_params or upsert_offsets
            or latencies or access_params
        ):  # fmt: skip
            self._write("storing a batch", work)
        return len(scrape_params), len(record_params), len(feedback_params)

    def record_minute(
        self,
        rollups: Iterable[Rollup],
        changes: Iterable[AlertChange],
        announce: Announce | None = None,
    ) -> list[str | None]:
        """A judged minute in one transaction: its rollups (replacing those of the same
        minutes), its alert changes in order (:func:`store.metrics.alerts.apply_change`) and
        the webhook posts ``announce`` makes of them (given what each change found: a
        change the store had already taken, the same minute judged again after a crash,
        finds its own state and is announced by nobody twice). For each change, the state
        of its rule's open alert before it (None: none open)."""
        self._check_writable("storing a minute")
        params = [_rollup_params(r) for r in rollups]
        ordered = list(changes)

        def work(conn: sqlite3.Connection) -> list[str | None]:
            conn.executemany(_UPSERT_ROLLUP, params)
            before = [apply_change(conn, change) for change in ordered]
            if announce is not None:
                queue_posts(conn, announce(before))
            return before

        return self._write("storing a minute", work) if params or ordered else []

    def prune(
        self, now: int, raw_hours: float, rollup_days: float, *, batch: int = _PRUNE_BATCH
    ) -> int:
        """Delete scrapes, records and feedback older than ``raw_hours`` and rollups (and
        the proxy's latencies of their minutes) older than ``rollup_days``; return how many
        rows went. Each series is cut by primary-key (or index) range, ``batch`` rows per
        transaction, so the collector's writes and the readers interleave. Alerts and their
        events stay: they are the history."""
        self._check_writable("pruning")
        raw_cutoff = now - int(raw_hours * 3600)
        rollup_cutoff = now - int(rollup_days * 86400)
        plans = (
            ("scrapes", raw_cutoff, _PRUNE_RANGE.format(table="scrapes", key="t")),
            ("rollups", rollup_cutoff, _PRUNE_RANGE.format(table="rollups", key="minute")),
            ("latency", rollup_cutoff, _PRUNE_LATENCY),
            ("records", raw_cutoff, _PRUNE_RECORDS),
            ("feedback", raw_cutoff, _PRUNE_FEEDBACK),
        )
        deleted = 0
        for table, cutoff, sql in plans:
            for service, env in self._series_of(table):
                params = (service, env, cutoff, batch)
                while True:
                    count = self._write("pruning", partial(_rowcount, sql, params))
                    deleted += count
                    if count < batch:
                        break
        return deleted

    def _series_of(self, table: str) -> list[tuple[str, str]]:
        """The (service, env) pairs of a table, one index seek each (no scan)."""
        out: list[tuple[str, str]] = []
        sql = (
            f"SELECT service, env FROM {table} WHERE (service, env) > (?, ?) "
            "ORDER BY service, env LIMIT 1"
        )
        key = ("", "")
        with self._reading() as conn:
            while (row := conn.execute(sql, key).fetchone()) is not None:
                key = (row[0], row[1])
                out.append(key)
        return out


# Delete a series' oldest `batch` rows below the cutoff, by primary-key range: the bound is
# the key of the row after them (keys are unique within a series), else the cutoff.
_PRUNE_RANGE = (
    "DELETE FROM {table} WHERE service = ?1 AND env = ?2 AND {key} < coalesce(("
    "SELECT {key} FROM {table} WHERE service = ?1 AND env = ?2 AND {key} < ?3 "
    "ORDER BY {key} LIMIT 1 OFFSET ?4), ?3)"
)
# Its keys are (minute, release): several rows a minute, so the range is by row value.
_PRUNE_LATENCY = (
    "DELETE FROM latency WHERE service = ?1 AND env = ?2 AND (minute, release) IN ("
    "SELECT minute, release FROM latency WHERE service = ?1 AND env = ?2 AND minute < ?3 "
    "ORDER BY minute, release LIMIT ?4)"
)
_PRUNE_RECORDS = (
    "DELETE FROM records WHERE id IN (SELECT id FROM records "
    "WHERE service = ?1 AND env = ?2 AND t < ?3 ORDER BY t LIMIT ?4)"
)
_PRUNE_FEEDBACK = (
    "DELETE FROM feedback WHERE service = ?1 AND env = ?2 AND request_id IN ("
    "SELECT request_id FROM feedback WHERE service = ?1 AND env = ?2 AND t < ?3 LIMIT ?4)"
)


def _rollup_params(r: Rollup) -> tuple[Any, ...]:
    return (r.service, r.env, r.minute, r.release, r.requests, r.errors, r.rps, r.error_rate,
            r.p50_ms, r.p95_ms, r.p99_ms, r.in_progress, r.latency_source)  # fmt: skip


_LatencyKey = tuple[str, str, int, str]


def _latency_by_key(rows: Iterable[LatencyRow]) -> dict[_LatencyKey, list[LogHistogram | None]]:
    """``rows`` by their stored key (a release of None is ''), those of one key merged."""
    out: dict[_LatencyKey, list[LogHistogram | None]] = {}
    for row in rows:
        key = (row.service, row.env, row.minute, row.release or "")
        held = out.get(key)
        out[key] = list(row.sub) if held is None else merge_sub(held, row.sub)
    return out


def _merge_latency(
    conn: sqlite3.Connection, rows: Mapping[_LatencyKey, list[LogHistogram | None]]
) -> None:
    """Merge each minute's bins into its stored row (inside the caller's transaction: no
    other writer comes between the read and the write). A stored row this relman cannot
    read (histograms of another accuracy) is replaced."""
    params = []
    for key, sub in rows.items():
        held = conn.execute(_HELD_LATENCY, key).fetchone()
        if held is not None:
            with contextlib.suppress(ValueError):
                sub = merge_sub(decode_sub(held[0]), sub)
        count = sum(h.count for h in sub if h is not None)
        params.append((*key, count, encode_sub(sub)))
    conn.executemany(_UPSERT_LATENCY, params)


def _record_params(rows: Iterable[Record]) -> list[tuple[Any, ...]]:
    return [
        (r.service, r.env, r.t, r.release, r.request_id, _encode(r.features), r.prediction,
         r.target)
        for r in rows
    ]  # fmt: skip


def _rowcount(sql: str, params: Sequence[Any], conn: sqlite3.Connection) -> int:
    return conn.execute(sql, params).rowcount


def _inspect(path: Path, busy_timeout: float, *, readonly: bool) -> int | None:
    """The schema version of an existing metric store, None for no file; StoreFailure for a
    file that is not SQLite, is damaged, holds something else or is of another schema."""
    deep = not readonly and path.is_file() and path.stat().st_size <= _DEEP_CHECK_MAX_BYTES
    version = inspect_file(path, busy_timeout, deep=deep)
    if version is None:
        return None
    with reading_file(path, busy_timeout) as conn:
        tables = {row[0] for row in conn.execute("SELECT name FROM sqlite_master")}
    if tables and "scrapes" not in tables:
        raise corrupt_error(path, "not a relman metric store: it holds other tables")
    if version > SCHEMA_VERSION:
        raise SchemaTooNew(
            f"{display_path(path)}: written by a newer relman (schema {version}, this one "
            f"knows {SCHEMA_VERSION}); upgrade relman, or move the file aside to start a new "
            "metric store"
        )
    if readonly and version and version < READERS_READ_FROM:
        # Tables older readers cannot read; an older file readers can is read as it is (the
        # collector, a writer, upgrades it: a collector of the previous relman may still run).
        raise SchemaTooOld(
            f"{display_path(path)}: schema {version} is older than this relman's "
            f"{SCHEMA_VERSION} and a read-only open cannot upgrade it; run `relman monitor` "
            "without --read-only once"
        )
    return version
