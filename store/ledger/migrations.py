"""Versioned schema migrations of the release ledger.

The schema version lives in ``PRAGMA user_version``: migration N (1-based) moves a database
from version N-1 to N. Each runs in its own BEGIN IMMEDIATE transaction together with the
version bump, so a crash leaves the file at a version it really has, and two processes
opening a new ledger at once cannot both apply the same step.

Migrations are plain SQL, frozen once released: a later sqlite-utils generating different
DDL must not change what an old migration did. Append new migrations; never edit old ones.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from store.errors import SchemaTooNew, SchemaTooOld
from store.ledger.db import display_path, write_transaction

if TYPE_CHECKING:
    from sqlite_utils import Database

Migration = Callable[["Database"], None]


def _v1_ledger_tables(db: Database) -> None:
    """Releases, their artifacts, runs and their steps and test results, promotions,
    approvals, environment state and the hash-chained audit log, with the indexes the
    ledger's queries use (history by time, per service, per environment; live_at)."""
    for statement in _V1_SQL:
        db.execute(statement)


_V1_SQL = [
    """CREATE TABLE releases (
        id TEXT PRIMARY KEY,
        service TEXT NOT NULL,
        version TEXT,
        git_commit TEXT NOT NULL,
        git_branch TEXT,
        message TEXT NOT NULL DEFAULT '',
        author TEXT NOT NULL DEFAULT '',
        created_at TEXT NOT NULL,
        params TEXT NOT NULL DEFAULT '{}' CHECK (json_valid(params)),
        metrics TEXT NOT NULL DEFAULT '{}' CHECK (json_valid(metrics)),
        UNIQUE (service, version)
    ) STRICT""",
    "CREATE INDEX releases_by_time ON releases (created_at, id)",
    "CREATE INDEX releases_by_service ON releases (service, created_at, id)",
    """CREATE TABLE artifacts (
        release_id TEXT NOT NULL REFERENCES releases (id),
        name TEXT NOT NULL,
        kind TEXT NOT NULL CHECK (kind IN ('model', 'dataset')),
        path TEXT NOT NULL,
        md5 TEXT,
        size INTEGER,
        nfiles INTEGER,
        PRIMARY KEY (release_id, path)
    ) STRICT""",
    """CREATE TABLE runs (
        id INTEGER PRIMARY KEY,
        kind TEXT NOT NULL
            CHECK (kind IN ('test', 'gate', 'build', 'promote', 'rollback', 'release')),
        release_id TEXT REFERENCES releases (id),
        service TEXT,
        env TEXT,
        actor TEXT NOT NULL,
        started_at TEXT NOT NULL,
        finished_at TEXT,
        status TEXT NOT NULL
            CHECK (status IN ('running', 'passed', 'failed', 'error', 'interrupted')),
        reason TEXT NOT NULL DEFAULT '',
        details TEXT NOT NULL DEFAULT '{}' CHECK (json_valid(details))
    ) STRICT""",
    "CREATE INDEX runs_by_time ON runs (started_at, id)",
    "CREATE INDEX runs_by_service ON runs (service, started_at, id)",
    "CREATE INDEX runs_by_env ON runs (env, started_at, id)",
    "CREATE INDEX runs_by_service_env ON runs (service, env, started_at, id)",
    "CREATE INDEX runs_by_release ON runs (release_id, kind, started_at, id)",
    """CREATE TABLE steps (
        run_id INTEGER NOT NULL REFERENCES runs (id),
        seq INTEGER NOT NULL,
        name TEXT NOT NULL,
        status TEXT NOT NULL CHECK (status IN ('passed', 'failed', 'skipped', 'running')),
        seconds REAL NOT NULL DEFAULT 0,
        detail TEXT NOT NULL DEFAULT '',
        PRIMARY KEY (run_id, seq),
        UNIQUE (run_id, name)
    ) STRICT""",
    """CREATE TABLE test_results (
        run_id INTEGER NOT NULL REFERENCES runs (id),
        release_id TEXT REFERENCES releases (id),
        suite TEXT NOT NULL,
        nodeid TEXT NOT NULL,
        outcome TEXT NOT NULL
            CHECK (outcome IN ('passed', 'failed', 'skipped', 'error', 'xfailed', 'xpassed')),
        seconds REAL NOT NULL DEFAULT 0,
        message TEXT NOT NULL DEFAULT '',
        PRIMARY KEY (run_id, suite, nodeid)
    ) STRICT""",
    "CREATE INDEX test_results_by_release ON test_results (release_id, suite, run_id)",
    """CREATE TABLE promotions (
        id INTEGER PRIMARY KEY,
        service TEXT NOT NULL,
        env TEXT NOT NULL,
        release_id TEXT NOT NULL REFERENCES releases (id),
        previous_release_id TEXT REFERENCES releases (id),
        kind TEXT NOT NULL CHECK (kind IN ('promote', 'rollback')),
        actor TEXT NOT NULL,
        started_at TEXT NOT NULL,
        finished_at TEXT,
        status TEXT NOT NULL CHECK (status IN ('intent', 'done', 'failed', 'undone')),
        reason TEXT NOT NULL DEFAULT ''
    ) STRICT""",
    "CREATE INDEX promotions_by_time ON promotions (started_at, id)",
    "CREATE INDEX promotions_by_service ON promotions (service, started_at, id)",
    "CREATE INDEX promotions_by_env ON promotions (env, started_at, id)",
    "CREATE INDEX promotions_by_service_env ON promotions (service, env, started_at, id)",
    # live_at: the last done promotion or rollback of (service, env) before a moment.
    """CREATE INDEX promotions_done ON promotions (service, env, finished_at, id)
        WHERE status = 'done'""",
    # open intents are what crash recovery looks for
    "CREATE INDEX promotions_open ON promotions (service, env) WHERE status = 'intent'",
    """CREATE TABLE approvals (
        id INTEGER PRIMARY KEY,
        release_id TEXT NOT NULL REFERENCES releases (id),
        service TEXT NOT NULL,
        env TEXT NOT NULL,
        actor TEXT NOT NULL,
        at TEXT NOT NULL,
        comment TEXT NOT NULL DEFAULT '',
        UNIQUE (release_id, env, actor)
    ) STRICT""",
    "CREATE INDEX approvals_by_time ON approvals (at, id)",
    "CREATE INDEX approvals_by_service ON approvals (service, at, id)",
    "CREATE INDEX approvals_by_env ON approvals (env, at, id)",
    "CREATE INDEX approvals_by_service_env ON approvals (service, env, at, id)",
    """CREATE TABLE environment_state (
        service TEXT NOT NULL,
        env TEXT NOT NULL,
        release_id TEXT REFERENCES releases (id),
        version TEXT,
        state TEXT NOT NULL,
        url TEXT,
        pid INTEGER,
        since TEXT NOT NULL,
        updated_at TEXT NOT NULL,
        PRIMARY KEY (service, env)
    ) STRICT""",
    # AUTOINCREMENT keeps the highest seq ever used in sqlite_sequence, so deleting the
    # newest events leaves a gap the chain check can see.
    """CREATE TABLE audit_events (
        seq INTEGER PRIMARY KEY AUTOINCREMENT,
        at TEXT NOT NULL,
        actor TEXT NOT NULL,
        action TEXT NOT NULL,
        service TEXT,
        env TEXT,
        release_id TEXT,
        outcome TEXT NOT NULL,
        reason TEXT NOT NULL DEFAULT '',
        details TEXT NOT NULL DEFAULT '{}' CHECK (json_valid(details)),
        prev_hash TEXT NOT NULL,
        hash TEXT NOT NULL
    ) STRICT""",
    # Append-only by construction; the hash chain catches whoever drops these triggers.
    """CREATE TRIGGER audit_events_no_update BEFORE UPDATE ON audit_events
        BEGIN SELECT RAISE(ABORT, 'audit_events is append-only'); END""",
    """CREATE TRIGGER audit_events_no_delete BEFORE DELETE ON audit_events
        BEGIN SELECT RAISE(ABORT, 'audit_events is append-only'); END""",
]


def _v2_promotion_holder(db: Database) -> None:
    """Who holds an open promotion: the process id and host of the relman that started it,
    so that a second promotion can tell a running holder from a dead one (a stale lock)."""
    db.execute("ALTER TABLE promotions ADD COLUMN pid INTEGER")
    db.execute("ALTER TABLE promotions ADD COLUMN host TEXT")


def _v3_rollouts(db: Database) -> None:
    """Canary and shadow rollouts: one row each, its phase, step and weight, the steps it
    runs and the analysis measured so far, a request from another command not acted on yet,
    and the process that drives it. At most one open (progressing or paused) per service
    and environment."""
    for statement in _V3_SQL:
        db.execute(statement)


_V3_SQL = [
    """CREATE TABLE rollouts (
        id INTEGER PRIMARY KEY,
        service TEXT NOT NULL,
        env TEXT NOT NULL,
        promotion_id INTEGER NOT NULL REFERENCES promotions (id),
        run_id INTEGER REFERENCES runs (id),
        strategy TEXT NOT NULL CHECK (strategy IN ('all-at-once', 'canary', 'shadow')),
        stable TEXT REFERENCES releases (id),
        canary TEXT NOT NULL REFERENCES releases (id),
        phase TEXT NOT NULL CHECK (phase IN ('progressing', 'paused', 'promoted', 'aborted')),
        step INTEGER NOT NULL DEFAULT 0 CHECK (step >= 0),
        weight INTEGER NOT NULL DEFAULT 0 CHECK (weight BETWEEN 0 AND 100),
        plan TEXT NOT NULL DEFAULT '[]' CHECK (json_valid(plan)),
        analysis TEXT NOT NULL DEFAULT '[]' CHECK (json_valid(analysis)),
        request TEXT CHECK (request IN ('pause', 'resume', 'abort', 'promote')),
        requested_by TEXT,
        requested_at TEXT,
        detail TEXT NOT NULL DEFAULT '',
        actor TEXT NOT NULL,
        pid INTEGER,
        host TEXT,
        started_at TEXT NOT NULL,
        updated_at TEXT NOT NULL,
        finished_at TEXT
    ) STRICT""",
    "CREATE INDEX rollouts_by_service_env ON rollouts (service, env, id)",
    # The one open rollout of an environment: a second begin fails on this index even if
    # the code's own check were skipped.
    """CREATE UNIQUE INDEX rollouts_open ON rollouts (service, env)
        WHERE phase IN ('progressing', 'paused')""",
]


def _v4_pipeline_runs(db: Database) -> None:
    """Pipeline runs as recorded state machines: one row per run (its pipeline, service,
    trigger and reason, status, the release it made, the process driving it) and one row per
    step (status, attempts, times, detail, kept output lines, what it produced). At most one
    open (running, waiting or interrupted) run per pipeline and service."""
    for statement in _V4_SQL:
        db.execute(statement)


_V4_SQL = [
    """CREATE TABLE pipeline_runs (
        id INTEGER PRIMARY KEY,
        pipeline TEXT NOT NULL,
        service TEXT NOT NULL,
        status TEXT NOT NULL CHECK (status IN
            ('running', 'waiting', 'passed', 'failed', 'interrupted', 'cancelled')),
        trigger TEXT NOT NULL,
        reason TEXT NOT NULL DEFAULT '',
        release TEXT,
        detail TEXT NOT NULL DEFAULT '',
        context TEXT NOT NULL DEFAULT '{}' CHECK (json_valid(context)),
        actor TEXT NOT NULL,
        pid INTEGER,
        host TEXT,
        started_at TEXT NOT NULL,
        updated_at TEXT NOT NULL,
        finished_at TEXT
    ) STRICT""",
    "CREATE INDEX pipeline_runs_by_pipeline ON pipeline_runs (pipeline, service, id)",
    # history's timeline: by time, and by service and time
    "CREATE INDEX pipeline_runs_by_time ON pipeline_runs (started_at, id)",
    "CREATE INDEX pipeline_runs_by_service ON pipeline_runs (service, started_at, id)",
    """CREATE UNIQUE INDEX pipeline_runs_open ON pipeline_runs (pipeline, service)
        WHERE status IN ('running', 'waiting', 'interrupted')""",
    """CREATE TABLE pipeline_steps (
        run_id INTEGER NOT NULL REFERENCES pipeline_runs (id),
        position INTEGER NOT NULL CHECK (position >= 0),
        name TEXT NOT NULL,
        kind TEXT NOT NULL,
        status TEXT NOT NULL CHECK (status IN
            ('pending', 'running', 'passed', 'failed', 'waiting', 'skipped')),
        attempts INTEGER NOT NULL DEFAULT 0,
        started_at TEXT,
        finished_at TEXT,
        seconds REAL NOT NULL DEFAULT 0,
        detail TEXT NOT NULL DEFAULT '',
        output TEXT NOT NULL DEFAULT '[]' CHECK (json_valid(output)),
        result TEXT NOT NULL DEFAULT '{}' CHECK (json_valid(result)),
        PRIMARY KEY (run_id, position)
    ) STRICT""",
]


MIGRATIONS: tuple[Migration, ...] = (
    _v1_ledger_tables,
    _v2_promotion_holder,
    _v3_rollouts,
    _v4_pipeline_runs,
)
SCHEMA_VERSION = len(MIGRATIONS)


def schema_version(db: Database) -> int:
    return int(db.execute("PRAGMA user_version").fetchone()[0])


def check_not_newer(version: int, path: Path, known: int = SCHEMA_VERSION) -> None:
    """Refuse a database written by a newer relman: its tables may mean things we ignore."""
    if version > known:
        raise SchemaTooNew(
            f"{display_path(path)}: written by a newer relman (schema {version}, this one knows "
            f"{known}); upgrade relman, or move the file aside to start a new ledger"
        )


def check_readable(version: int, path: Path) -> None:
    """Refuse to read, without upgrading, a database of another schema than this relman's."""
    check_not_newer(version, path)
    if version < SCHEMA_VERSION:
        raise SchemaTooOld(
            f"{display_path(path)}: schema {version} is older than this relman's "
            f"{SCHEMA_VERSION} and a read-only open cannot upgrade it; run any relman "
            "command without --read-only once"
        )


def migrate(db: Database, path: Path, migrations: Sequence[Migration] = MIGRATIONS) -> int:
    """Apply the pending migrations in order; return the schema version reached.

    An up-to-date database is only read, so opening it never waits for another writer.
    """
    version = schema_version(db)
    check_not_newer(version, path, len(migrations))
    while version < len(migrations):
        with write_transaction(db):
            # Read inside the transaction: another process may have migrated meanwhile.
            version = schema_version(db)
            check_not_newer(version, path, len(migrations))
            if version == len(migrations):
                break
            migrations[version](db)
            version += 1
            # PRAGMA takes no parameters; the value is our own int.
            db.execute(f"PRAGMA user_version = {version:d}")
    return version
