"""The metric store: ``<project>/.relman/metrics.db``, the collector's samples and alerts.

A database of its own, so that the collector's steady writes never wait on (nor block) the
ledger. Opening follows the ledger's rules (:mod:`store.db`): a file that is not SQLite, is
damaged, holds another program's tables or was written by a newer relman is refused with one
:class:`~core.errors.StoreError` line before anything writes to it; a read-only open never
creates, migrates or writes (a missing file reads as an empty store); write opens switch the
file to WAL and apply the versioned migrations of :mod:`store.metrics_schema`.

The ingest and query paths use the standard library's sqlite3 directly (``executemany``,
tuples). A write open goes through :func:`store.db.connect` (a sqlite-utils wrapper, for
``migrate`` and ``write_transaction``); a read-only open of an existing file uses sqlite3
alone, sparing the panes and ``relman metrics`` the import of sqlite-utils. Every
write is one BEGIN IMMEDIATE transaction per batch; a locked file is waited for (SQLite's own
busy handler, then retries with backoff, until ``busy_timeout``): no row is dropped, and past
the timeout the batch fails whole with the busy line (:class:`MetricStoreBusy`: the caller
keeps the batch and tries again later). A full disk fails it whole too
(:class:`MetricStoreFull`: nothing retries that). Times are integer Unix seconds (UTC).

The store is also the collector's record of what it consumed: the monitor-log readers'
offsets are written by the batch that stores their rows (:meth:`MetricStore.add_batch`),
and the webhook posts by the minute whose alert changes they announce
(:meth:`MetricStore.record_minute`), so a collector killed between a commit and the end
of its pass reads nothing twice and loses no post.

The rows and the rollup arithmetic live in :mod:`store.metric_rows`, the alerts and the
webhook outbox in :mod:`store.metric_alerts` (both re-exported here).
"""

from __future__ import annotations

import json
import operator
import sqlite3
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any, TypeVar

from core.errors import ReadOnlyError, StoreError
from store.db import (
    DEFAULT_BUSY_TIMEOUT,
    busy_error,
    connect,
    connect_memory,
    corrupt_error,
    display_path,
    inspect_file,
    is_busy,
    reading_file,
    readonly_uri,
    translate_errors,
    write_transaction,
)
from store.metric_alerts import AlertChange, MetricAlerts, WebhookPost, apply_change, queue_posts
from store.metric_rows import (
    AlertEvent,
    AlertRow,
    CollectorRow,
    Feedback,
    Point,
    Record,
    Rollup,
    ScrapeRow,
    WindowRow,
    encode_buckets,
    histogram_quantile,
    rollup,
    window_rollups,
)
from store.metrics_schema import MIGRATIONS, READERS_READ_FROM, SCHEMA_VERSION
from store.migrations import migrate

if TYPE_CHECKING:
    from sqlite_utils import Database

__all__ = [
    "COLLECTOR_STALE_SECONDS",
    "AlertChange",
    "AlertEvent",
    "AlertRow",
    "CollectorRow",
    "Feedback",
    "MetricStore",
    "MetricStoreBusy",
    "MetricStoreFull",
    "Point",
    "ReaderOffset",
    "Record",
    "Rollup",
    "ScrapeRow",
    "WebhookPost",
    "histogram_quantile",
    "rollup",
]

T = TypeVar("T")
# The posts a judged minute queues, given each change's state before it (record_minute).
Announce = Callable[[Sequence[str | None]], Iterable[tuple[str, Mapping[str, Any]]]]


@dataclass(frozen=True, slots=True)
class ReaderOffset:
    """How far the monitor folder ``folder`` of (service, env) is stored: ``state`` is the
    reader's own JSON (core.monitor_log.MonitorReader.state)."""

    service: str
    env: str
    folder: str
    state: Mapping[str, Any]


class MetricStoreBusy(StoreError):
    """Another process held the write lock past the busy timeout: nothing was written."""


class MetricStoreFull(StoreError):
    """The disk (or the file's size limit) is full: nothing was written."""


# A collector whose heartbeat is older than this is taken for dead (claim_collector).
COLLECTOR_STALE_SECONDS = 60
# quick_check reads every page: worth it before writing to a small file, not to a store of
# gigabytes (a damaged page met later fails that write or read with the same line).
_DEEP_CHECK_MAX_BYTES = 64 * 1024 * 1024
_PRUNE_BATCH = 10_000
_FIRST_BACKOFF = 0.01
_MAX_BACKOFF = 0.25
_encode = json.JSONEncoder(separators=(",", ":"), check_circular=False).encode
_decode = json.JSONDecoder().decode
_scrape_fields = operator.attrgetter(
    "service", "env", "t", "release", "requests", "errors", "in_progress"
)


# ------------------------------------------------------------------------------- the store

_SCRAPE_COLUMNS = "service, env, t, release, requests, errors, in_progress, buckets"
_ROLLUP_COLUMNS = (
    "service, env, minute, release, requests, errors, rps, error_rate, p50_ms, p95_ms, "
    "p99_ms, in_progress"
)
_RECORD_COLUMNS = "service, env, t, release, request_id, features, prediction, target"
INSERT_SCRAPE = (
    f"INSERT OR REPLACE INTO scrapes ({_SCRAPE_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?)"
)
INSERT_RECORD = f"INSERT INTO records ({_RECORD_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?)"
_UPSERT_ROLLUP = (
    f"INSERT INTO rollups ({_ROLLUP_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) "
    "ON CONFLICT (service, env, minute) DO UPDATE SET release = excluded.release, "
    "requests = excluded.requests, errors = excluded.errors, rps = excluded.rps, "
    "error_rate = excluded.error_rate, p50_ms = excluded.p50_ms, p95_ms = excluded.p95_ms, "
    "p99_ms = excluded.p99_ms, in_progress = excluded.in_progress"
)
_UPSERT_OFFSET = (
    "INSERT INTO monitor_offsets (service, env, folder, state) VALUES (?, ?, ?, ?) "
    "ON CONFLICT (service, env, folder) DO UPDATE SET state = excluded.state"
)
_UPSERT_FEEDBACK = (
    "INSERT INTO feedback (service, env, request_id, label, t) VALUES (?, ?, ?, ?, ?) "
    "ON CONFLICT (service, env, request_id) DO UPDATE SET label = excluded.label, t = excluded.t"
)


class MetricStore(MetricAlerts):
    """Samples, rollups, monitor records, feedback, alerts and the collector heartbeat of one
    project. Safe to share between threads (one statement or transaction at a time)."""

    def __init__(
        self,
        conn: sqlite3.Connection,
        db: Database | None,
        path: Path,
        *,
        readonly: bool,
        busy_timeout: float,
    ) -> None:
        self._conn = conn
        self._db = db  # the sqlite-utils wrapper of conn, for write transactions
        self.path = path
        self.readonly = readonly
        self.busy_timeout = busy_timeout
        self._lock = threading.RLock()

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
    def where(self) -> str:
        """The file, as error messages name it."""
        return display_path(self.path)

    @property
    def schema_version(self) -> int:
        with self._reading() as conn:
            return int(conn.execute("PRAGMA user_version").fetchone()[0])

    # ----------------------------------------------------------------- transactions, reads

    def _write(self, what: str, work: Callable[[sqlite3.Connection], T]) -> T:
        """Run ``work`` in one BEGIN IMMEDIATE transaction, retried while the file is locked
        (SQLite waits inside each attempt; a busy answered at once is retried with backoff)
        until ``busy_timeout``; then the busy line, nothing written."""
        self._check_writable(what)
        assert self._db is not None  # a read-write open keeps its sqlite-utils wrapper
        deadline = time.monotonic() + self.busy_timeout
        backoff = _FIRST_BACKOFF
        with self._lock, translate_errors(self.path, self.busy_timeout):
            while True:
                try:
                    with write_transaction(self._db):
                        return work(self._conn)
                except sqlite3.OperationalError as exc:
                    if _is_full(exc):
                        raise MetricStoreFull(
                            f"{self.where}: disk full; free space, the collector stops"
                        ) from exc
                    remaining = deadline - time.monotonic()
                    if not is_busy(exc):
                        raise
                    if remaining <= 0:
                        busy = busy_error(self.path, self.busy_timeout)
                        raise MetricStoreBusy(busy.message) from exc
                    time.sleep(min(backoff, remaining))
                    backoff = min(backoff * 2, _MAX_BACKOFF)

    def _check_writable(self, what: str) -> None:
        if self.readonly:
            raise ReadOnlyError(
                f"{self.where}: opened read-only, so {what} is refused; run relman without "
                "--read-only to change the metric store"
            )

    @contextmanager
    def _reading(self) -> Iterator[sqlite3.Connection]:
        """Reads must materialise their rows inside this block, so errors are translated."""
        with self._lock, translate_errors(self.path, self.busy_timeout):
            yield self._conn

    def _all(self, sql: str, params: Sequence[Any]) -> list[Any]:
        with self._reading() as conn:
            return conn.execute(sql, params).fetchall()

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
        params = [
            (r.service, r.env, r.t, r.release, r.request_id, _encode(r.features), r.prediction,
             r.target)
            for r in rows
        ]  # fmt: skip
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
    ) -> tuple[int, int, int]:
        """Store scrapes, records and feedback in one transaction: all of them, or none (so a
        caller that keeps a failed batch and offers it again never stores a row twice),
        with ``offsets``, the reader states the records were read up to (replacing those
        of the same folders): a caller that dies just after the commit resumes from them.
        The counts stored, in that order."""
        self._check_writable("storing a batch")
        offset_params = [(o.service, o.env, o.folder, _encode(o.state)) for o in offsets]
        scrape_params = [(*_scrape_fields(r), encode_buckets(r.buckets)) for r in scrapes]
        record_params = [
            (r.service, r.env, r.t, r.release, r.request_id, _encode(r.features), r.prediction,
             r.target)
            for r in records
        ]  # fmt: skip
        feedback_params = [(r.service, r.env, r.request_id, r.label, r.t) for r in feedback]

        def work(conn: sqlite3.Connection) -> None:
            conn.executemany(INSERT_SCRAPE, scrape_params)
            conn.executemany(INSERT_RECORD, record_params)
            conn.executemany(_UPSERT_FEEDBACK, feedback_params)
            conn.executemany(_UPSERT_OFFSET, offset_params)

        if scrape_params or record_params or feedback_params or offset_params:
            self._write("storing a batch", work)
        return len(scrape_params), len(record_params), len(feedback_params)

    def record_minute(
        self,
        rollups: Iterable[Rollup],
        changes: Iterable[AlertChange],
        announce: Announce | None = None,
    ) -> list[str | None]:
        """A judged minute in one transaction: its rollups (replacing those of the same
        minutes), its alert changes in order (:func:`store.metric_alerts.apply_change`) and
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
        """Delete scrapes, records and feedback older than ``raw_hours`` and rollups older
        than ``rollup_days``; return how many rows went. Each series is cut by primary-key
        (or index) range, ``batch`` rows per transaction, so the collector's writes and the
        readers interleave. Alerts and their events stay: they are the history."""
        self._check_writable("pruning")
        raw_cutoff = now - int(raw_hours * 3600)
        rollup_cutoff = now - int(rollup_days * 86400)
        plans = (
            ("scrapes", raw_cutoff, _PRUNE_RANGE.format(table="scrapes", key="t")),
            ("rollups", rollup_cutoff, _PRUNE_RANGE.format(table="rollups", key="minute")),
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

    # -------------------------------------------------------------------------- collector

    def claim_collector(
        self,
        pid: int,
        host: str,
        now: int,
        *,
        stale_after: int = COLLECTOR_STALE_SECONDS,
        replacing: int | None = None,
    ) -> bool:
        """Become the project's one collector: yes when there is none, when it is this
        process (same pid and host) already, when its heartbeat is older than
        ``stale_after`` seconds (a dead collector), or when it is still ``replacing`` on
        ``host`` (a holder the caller found dead; whoever took over since is kept); no
        while another one beats."""

        def work(conn: sqlite3.Connection) -> bool:
            row = conn.execute("SELECT pid, host, started, heartbeat FROM collector").fetchone()
            started = now
            if row is not None:
                holder = CollectorRow(*row)
                if holder.pid == pid and holder.host == host:
                    started = holder.started
                elif (holder.pid, holder.host) == (replacing, host):
                    pass  # the dead holder the caller names: taken over
                elif now - holder.heartbeat <= stale_after:
                    return False
            conn.execute("DELETE FROM collector")
            conn.execute(
                "INSERT INTO collector (pid, host, started, heartbeat) VALUES (?, ?, ?, ?)",
                (pid, host, started, now),
            )
            return True

        return self._write("claiming the collector", work)

    def heartbeat(self, pid: int, now: int) -> bool:
        """Say the collector ``pid`` is alive; False when it is no longer the collector
        (another took over after it went stale): it should stop."""

        def work(conn: sqlite3.Connection) -> bool:
            sql = "UPDATE collector SET heartbeat = ? WHERE pid = ?"
            return conn.execute(sql, (now, pid)).rowcount > 0

        return self._write("a collector heartbeat", work)

    def release_collector(self, pid: int) -> None:
        """Step down (on exit); nothing when ``pid`` is not the collector."""
        self._write(
            "releasing the collector",
            lambda conn: conn.execute("DELETE FROM collector WHERE pid = ?", (pid,)),
        )

    def collector(self) -> CollectorRow | None:
        rows = self._all("SELECT pid, host, started, heartbeat FROM collector", [])
        return CollectorRow(*rows[0]) if rows else None

    def reader_offsets(self) -> dict[tuple[str, str], dict[str, dict[str, Any]]]:
        """The stored reader states: ``{(service, env): {folder: state}}``."""
        found: dict[tuple[str, str], dict[str, dict[str, Any]]] = {}
        for service, env, folder, state in self._all(
            "SELECT service, env, folder, state FROM monitor_offsets", []
        ):
            found.setdefault((service, env), {})[folder] = _decode(state)
        return found

    def take_over_progress(
        self, offsets: Iterable[ReaderOffset], posts: Iterable[tuple[str, Mapping[str, Any]]]
    ) -> tuple[bool, bool]:
        """Adopt what an older collector kept outside the store (collector.json), in one
        transaction: ``offsets`` when the store holds none, ``posts`` when its outbox is
        empty (so a second call, or one after this relman collected, adds nothing). Whether
        each was taken."""
        self._check_writable("taking over the collector's state")
        offset_params = [(o.service, o.env, o.folder, _encode(o.state)) for o in offsets]
        queued = list(posts)

        def work(conn: sqlite3.Connection) -> tuple[bool, bool]:
            taken = (
                bool(offset_params) and _empty(conn, "monitor_offsets"),
                bool(queued) and _empty(conn, "webhook_outbox"),
            )
            if taken[0]:
                conn.executemany(_UPSERT_OFFSET, offset_params)
            if taken[1]:
                queue_posts(conn, queued)
            return taken

        if not offset_params and not queued:
            return False, False
        return self._write("taking over the collector's state", work)

    # ------------------------------------------------------------------------------ reads

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
            f"SELECT {_ROLLUP_COLUMNS} FROM rollups "
            "WHERE service = ? AND env = ? AND minute >= ? AND minute < ? ORDER BY minute",
            (service, env, since, until),
        )
        return [Rollup(*row) for row in rows]

    def last_scrape(self, service: str, env: str, *, before: int | None = None) -> ScrapeRow | None:
        """The newest scrape (before ``before`` when given): the base of the next rollup."""
        rows = self._all(
            f"SELECT {_SCRAPE_COLUMNS} FROM scrapes WHERE service = ? AND env = ? AND t < ? "
            "ORDER BY t DESC LIMIT 1",
            (service, env, _END if before is None else before),
        )
        return _scrape(rows[0]) if rows else None

    def scrapes(self, service: str, env: str, since: int, until: int) -> list[ScrapeRow]:
        """The scrapes of [since, until), oldest first."""
        rows = self._all(
            f"SELECT {_SCRAPE_COLUMNS} FROM scrapes WHERE service = ? AND env = ? "
            "AND t >= ? AND t < ? ORDER BY t",
            (service, env, since, until),
        )
        return [_scrape(row) for row in rows]

    def rollups_from_scrapes(self, service: str, env: str, since: int, until: int) -> list[Rollup]:
        """The rollup of every minute of [since, until) that has scrapes, computed from the
        raw scrapes (``since`` is rounded down to its minute): what :func:`rollup` gives for
        each minute, its base the last scrape before it.

        Fast on long windows: a minute whose request and error counters only grew and whose
        release did not change telescopes (its deltas are its last scrape minus its base),
        so only one histogram per minute is decoded; any other minute goes through
        :func:`rollup` whole. (The two differ only if a bucket fell and rose again within a
        minute while neither counter fell: a restart no counter shows, which no counter
        arithmetic can see either.)
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
            f"SELECT {_RECORD_COLUMNS} FROM records WHERE service = ? AND env = ? "
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


# A time after every stored one (SQLite integers are 64-bit).
_END = 2**62

# Delete a series' oldest `batch` rows below the cutoff, by primary-key range: the bound is
# the key of the row after them (keys are unique within a series), else the cutoff.
_PRUNE_RANGE = (
    "DELETE FROM {table} WHERE service = ?1 AND env = ?2 AND {key} < coalesce(("
    "SELECT {key} FROM {table} WHERE service = ?1 AND env = ?2 AND {key} < ?3 "
    "ORDER BY {key} LIMIT 1 OFFSET ?4), ?3)"
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
            r.p50_ms, r.p95_ms, r.p99_ms, r.in_progress)  # fmt: skip


def _scrape(row: Sequence[Any]) -> ScrapeRow:
    return ScrapeRow(row[0], row[1], row[2], row[3], row[4], row[5], row[6], _decode(row[7]))


def _empty(conn: sqlite3.Connection, table: str) -> bool:
    return conn.execute(f"SELECT 1 FROM {table} LIMIT 1").fetchone() is None


def _rowcount(sql: str, params: Sequence[Any], conn: sqlite3.Connection) -> int:
    return conn.execute(sql, params).rowcount


def _inspect(path: Path, busy_timeout: float, *, readonly: bool) -> int | None:
    """The schema version of an existing metric store, None for no file; StoreError for a
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
        raise StoreError(
            f"{display_path(path)}: written by a newer relman (schema {version}, this one "
            f"knows {SCHEMA_VERSION}); upgrade relman, or move the file aside to start a new "
            "metric store"
        )
    if readonly and version and version < READERS_READ_FROM:
        # Tables older readers cannot read; an older file readers can is read as it is (the
        # collector, a writer, upgrades it: a collector of the previous relman may still run).
        raise StoreError(
            f"{display_path(path)}: schema {version} is older than this relman's "
            f"{SCHEMA_VERSION} and a read-only open cannot upgrade it; run `relman monitor` "
            "without --read-only once"
        )
    return version


def _is_full(exc: sqlite3.OperationalError) -> bool:
    return getattr(
        exc, "sqlite_errorcode", None
    ) == sqlite3.SQLITE_FULL or "database or disk is full" in str(exc)
