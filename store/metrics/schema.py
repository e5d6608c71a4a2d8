"""Versioned schema migrations of the metric store (``.relman/metrics.db``).

Same rules as the ledger's (:mod:`store.ledger.migrations`, whose ``migrate`` applies these): the
version lives in ``PRAGMA user_version``, migration N moves a file from N-1 to N in its own
BEGIN IMMEDIATE transaction, and a released migration is frozen plain SQL. Append; never edit.

Times are integer Unix seconds (UTC). The hot tables (scrapes, rollups) are WITHOUT ROWID
with the design's primary keys, so a series' window is one contiguous primary-key range and
pruning deletes ranges, never scans. Records have no natural key (a batch request logs
several rows under one request id), so they keep a rowid and an index by time.

What the collector consumed lives here too, next to what it stored (version 2): the
monitor-log readers' offsets, written in the transaction that stores the rows they cover,
and the webhook posts not delivered yet, written in the transaction of the alert changes
that make them. A crash between a commit and anything after it can then neither read a
row twice nor lose a post (docs/monitoring.md, "The metric store"). Version 3 keeps the
proxy's per-request latencies per minute, with the access-log reader's offsets, on the same
terms (docs/monitoring.md, "Exact latencies").
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from sqlite_utils import Database

    from store.ledger.migrations import Migration


def _v1_metric_tables(db: Database) -> None:
    """Scrapes, per-minute rollups, monitor-log records, feedback, alerts and their events,
    and the collector's heartbeat row (docs/monitoring.md, "The metric store")."""
    for statement in _V1_SQL:
        db.execute(statement)


_V1_SQL = [
    # One row per scrape: cumulative counters as scraped; buckets is {le: cumulative count}.
    """CREATE TABLE scrapes (
        service TEXT NOT NULL,
        env TEXT NOT NULL,
        t INTEGER NOT NULL,
        release TEXT,
        requests REAL NOT NULL,
        errors REAL NOT NULL,
        in_progress REAL NOT NULL,
        buckets TEXT NOT NULL,
        PRIMARY KEY (service, env, t)
    ) STRICT, WITHOUT ROWID""",
    # One row per minute (minute = its first second), from the deltas of the scrapes.
    """CREATE TABLE rollups (
        service TEXT NOT NULL,
        env TEXT NOT NULL,
        minute INTEGER NOT NULL,
        release TEXT,
        requests REAL NOT NULL,
        errors REAL NOT NULL,
        rps REAL NOT NULL,
        error_rate REAL NOT NULL,
        p50_ms REAL,
        p95_ms REAL,
        p99_ms REAL,
        in_progress REAL NOT NULL,
        PRIMARY KEY (service, env, minute)
    ) STRICT, WITHOUT ROWID""",
    """CREATE TABLE records (
        id INTEGER PRIMARY KEY,
        service TEXT NOT NULL,
        env TEXT NOT NULL,
        t INTEGER NOT NULL,
        release TEXT,
        request_id TEXT,
        features TEXT NOT NULL,
        prediction TEXT,
        target TEXT
    ) STRICT""",
    "CREATE INDEX records_by_time ON records (service, env, t)",
    """CREATE INDEX records_by_request ON records (service, env, request_id)
        WHERE request_id IS NOT NULL""",
    # A request's label: a later import of the same request id replaces it.
    """CREATE TABLE feedback (
        service TEXT NOT NULL,
        env TEXT NOT NULL,
        request_id TEXT NOT NULL,
        label TEXT NOT NULL,
        t INTEGER NOT NULL,
        PRIMARY KEY (service, env, request_id)
    ) STRICT, WITHOUT ROWID""",
    "CREATE INDEX feedback_by_time ON feedback (service, env, t)",
    # since: when the current state began; updated: the last evaluation that touched it.
    """CREATE TABLE alerts (
        id INTEGER PRIMARY KEY,
        rule TEXT NOT NULL,
        kind TEXT NOT NULL,
        service TEXT NOT NULL,
        env TEXT NOT NULL,
        state TEXT NOT NULL CHECK (state IN ('pending', 'firing', 'resolved')),
        since INTEGER NOT NULL,
        updated INTEGER NOT NULL,
        value REAL,
        detail TEXT NOT NULL DEFAULT '',
        release TEXT,
        rollback TEXT
    ) STRICT""",
    # Dedupe: at most one open (pending or firing) alert per rule, service and environment.
    """CREATE UNIQUE INDEX alerts_open ON alerts (rule, service, env)
        WHERE state != 'resolved'""",
    "CREATE INDEX alerts_by_time ON alerts (updated, id)",
    """CREATE TABLE alert_events (
        id INTEGER PRIMARY KEY,
        alert_id INTEGER NOT NULL REFERENCES alerts (id),
        t INTEGER NOT NULL,
        state TEXT NOT NULL CHECK (state IN ('pending', 'firing', 'resolved')),
        detail TEXT NOT NULL DEFAULT ''
    ) STRICT""",
    "CREATE INDEX alert_events_by_alert ON alert_events (alert_id, id)",
    # At most one row (kept so by MetricStore.claim_collector, in one transaction).
    """CREATE TABLE collector (
        pid INTEGER NOT NULL,
        host TEXT NOT NULL,
        started INTEGER NOT NULL,
        heartbeat INTEGER NOT NULL
    ) STRICT""",
]


def _v2_collector_progress(db: Database) -> None:
    """The monitor-log readers' offsets and the webhook outbox, which version 1 left to
    ``.relman/collector.json`` (saved after the pass: a crash before it read rows again
    and lost posts). An older collector.json's are taken over by the collector."""
    # A reader's state (core.targets.monitor_log.MonitorReader.state(): per data file its inode,
    # offset and first-line digest), per monitor folder of an environment's instances.
    db.execute(
        """CREATE TABLE monitor_offsets (
            service TEXT NOT NULL, env TEXT NOT NULL, folder TEXT NOT NULL,
            state TEXT NOT NULL CHECK (json_valid(state)),
            PRIMARY KEY (service, env, folder)
        ) STRICT, WITHOUT ROWID"""
    )
    # Alert posts not delivered yet, oldest first (by id); a delivered one is deleted.
    db.execute(
        """CREATE TABLE webhook_outbox (
            id INTEGER PRIMARY KEY,
            url TEXT NOT NULL,
            document TEXT NOT NULL CHECK (json_valid(document))
        ) STRICT"""
    )


def _v3_exact_latencies(db: Database) -> None:
    """The proxy's per-request latencies, kept per minute in log-linear histograms
    (store.metrics.sketch), the access-log reader's offsets written with them, and which
    of the two sources a rollup's percentiles came from (docs/monitoring.md, "Exact
    latencies"); and which alert an alert was grouped with ("One page per incident")."""
    # One row per minute and release (the lines' "release", '' when they name none): the
    # latencies of requests served by the stable side and not failed, in 6 histograms of
    # 10 seconds each (JSON: store.metrics.latency.encode_sub); a late line merges into it.
    db.execute(
        """CREATE TABLE latency (
            service TEXT NOT NULL,
            env TEXT NOT NULL,
            minute INTEGER NOT NULL,
            release TEXT NOT NULL,
            count INTEGER NOT NULL,
            sub TEXT NOT NULL CHECK (json_valid(sub)),
            PRIMARY KEY (service, env, minute, release)
        ) STRICT, WITHOUT ROWID"""
    )
    # The access-log reader's state (core.monitoring.latency_log.AccessLatencyReader.state():
    # per file its inode, offset and first-line digest, and the newest time read).
    db.execute(
        """CREATE TABLE access_offsets (
            service TEXT NOT NULL,
            env TEXT NOT NULL,
            state TEXT NOT NULL CHECK (json_valid(state)),
            PRIMARY KEY (service, env)
        ) STRICT, WITHOUT ROWID"""
    )
    # Rollups before this version took their percentiles from the histogram.
    db.execute(
        "ALTER TABLE rollups ADD COLUMN latency_source TEXT NOT NULL DEFAULT 'histogram' "
        "CHECK (latency_source IN ('proxy', 'histogram'))"
    )
    # An alert that joined an incident of its cause: the rule already firing, which paged
    # (core.alerts.alerting, "page once"). NULL: it paged itself, or was stored before.
    db.execute("ALTER TABLE alerts ADD COLUMN grouped_with TEXT")


MIGRATIONS: tuple[Migration, ...] = (
    _v1_metric_tables,
    _v2_collector_progress,
    _v3_exact_latencies,
)
SCHEMA_VERSION = len(MIGRATIONS)
# The oldest schema whose files this relman's readers (metrics, alerts, the interface,
# `down`) read as they are: migration 2 only added tables the collector alone uses, and
# the readers of migration 3's ask the file's version first (store.metrics.reads). A
# read-only open of an older file than this is refused; raise it when a migration changes
# what readers query.
READERS_READ_FROM = 1
# Every table of the current schema: a file at our version must hold them all.
TABLES = frozenset(
    {
        "scrapes",
        "rollups",
        "records",
        "feedback",
        "alerts",
        "alert_events",
        "collector",
        "monitor_offsets",
        "webhook_outbox",
        "latency",
        "access_offsets",
    }
)
