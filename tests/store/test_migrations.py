"""Schema migrations: from nothing to the current schema, idempotent re-opens, order; the
ledger's and the metric store's older files upgraded with their rows."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
from sqlite_utils import Database

from store import SCHEMA_VERSION, Ledger
from store.ledger.db import connect
from store.ledger.migrations import migrate, schema_version
from tests.store import add_release

TABLES = {
    "releases",
    "artifacts",
    "runs",
    "steps",
    "test_results",
    "promotions",
    "approvals",
    "environment_state",
    "audit_events",
}


def test_open_creates_folder_and_current_schema_in_wal(tmp_path: Path) -> None:
    path = tmp_path / "project" / ".relman" / "ledger.db"
    with Ledger.open(path) as ledger:
        assert ledger.schema_version == SCHEMA_VERSION
    conn = sqlite3.connect(path)
    tables = {row[0] for row in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    assert tables >= TABLES
    assert conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    conn.close()


def test_reopen_is_idempotent_and_keeps_data(tmp_path: Path) -> None:
    path = tmp_path / "ledger.db"
    with Ledger.open(path) as ledger:
        add_release(ledger, "aaaaaaaaaaaa")
    schema = sqlite3.connect(path).execute("SELECT sql FROM sqlite_master ORDER BY name").fetchall()
    for _ in range(2):
        with Ledger.open(path) as ledger:
            assert ledger.schema_version == SCHEMA_VERSION
            assert [r.id for r in ledger.releases("fraud")] == ["aaaaaaaaaaaa"]
    again = sqlite3.connect(path).execute("SELECT sql FROM sqlite_master ORDER BY name").fetchall()
    assert again == schema


def _one(db: Database) -> None:
    db.execute("CREATE TABLE one (x INTEGER)")


def _two(db: Database) -> None:
    db.execute("ALTER TABLE one ADD COLUMN y TEXT")


def _broken(db: Database) -> None:
    db.execute("CREATE TABLE three (z INTEGER)")
    raise RuntimeError("migration bug")


def test_migrations_apply_in_order_and_only_once(tmp_path: Path) -> None:
    path = tmp_path / "x.db"
    db = connect(path, readonly=False, busy_timeout=1)
    assert migrate(db, path, [_one]) == 1
    # A later relman adds a second migration: only that one runs on the old file.
    assert migrate(db, path, [_one, _two]) == 2
    assert migrate(db, path, [_one, _two]) == 2
    assert [c.name for c in db.table("one").columns] == ["x", "y"]
    db.close()


def test_a_failing_migration_rolls_back_with_its_version(tmp_path: Path) -> None:
    path = tmp_path / "x.db"
    db = connect(path, readonly=False, busy_timeout=1)
    with pytest.raises(RuntimeError):
        migrate(db, path, [_one, _broken])
    # The first migration committed; the broken one left neither its table nor its version.
    assert schema_version(db) == 1
    assert "three" not in db.table_names()
    db.close()


def test_read_only_open_of_a_missing_ledger_creates_nothing(tmp_path: Path) -> None:
    path = tmp_path / ".relman" / "ledger.db"
    with Ledger.open(path, readonly=True) as ledger:
        assert ledger.history().entries == ()
        assert ledger.environment_state("fraud", "prod") is None
    assert not path.parent.exists()


def test_a_version_1_ledger_is_upgraded_keeping_its_promotions(tmp_path: Path) -> None:
    """Schema 2 adds who holds a promotion (pid, host); rows written before read as None."""
    from store.ledger.db import connect
    from store.ledger.migrations import MIGRATIONS, migrate

    path = tmp_path / "ledger.db"
    db = connect(path, readonly=False, busy_timeout=1.0)
    migrate(db, path, MIGRATIONS[:1])
    db.execute(
        "INSERT INTO releases (id, service, git_commit, created_at) VALUES ('r1', 's', 'c', 't')"
    )
    db.execute(
        "INSERT INTO promotions (service, env, release_id, kind, actor, started_at, status)"
        " VALUES ('s', 'dev', 'r1', 'promote', 'bob', 't', 'intent')"
    )
    db.close()
    with Ledger.open(path) as ledger:
        assert ledger.schema_version == SCHEMA_VERSION >= 2
        [open_one] = ledger.open_promotions()
        assert (open_one.actor, open_one.pid, open_one.host) == ("bob", None, None)


def test_a_version_1_metric_store_is_upgraded_keeping_its_rows(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Metric store schema 2 keeps what the collector consumed (reader offsets, webhook
    outbox); a file of schema 1 keeps its rows and gains the tables, empty; a read-only
    open reads it and leaves it as it is."""
    from store.metrics import schema as metrics_schema
    from store.metrics.collector import ReaderOffset
    from store.metrics.store import MetricStore

    monkeypatch.chdir(tmp_path)
    path = tmp_path / "metrics.db"
    db = connect(path, readonly=False, busy_timeout=1.0)
    migrate(db, path, metrics_schema.MIGRATIONS[:1])
    db.execute(
        "INSERT INTO scrapes (service, env, t, release, requests, errors, in_progress, buckets)"
        " VALUES ('iris', 'prod', 60, 'r1', 6, 0, 0, '{}')"
    )
    db.execute(
        "INSERT INTO records (service, env, t, release, request_id, features, prediction)"
        " VALUES ('iris', 'prod', 61, 'r1', 'q1', '{\"x\": 1.0}', 'a')"
    )
    db.execute(
        "INSERT INTO alerts (rule, kind, service, env, state, since, updated)"
        " VALUES ('p99', 'sudden', 'iris', 'prod', 'firing', 60, 60)"
    )
    db.close()
    before = path.read_bytes()
    # Readers read it as it is (a collector of the previous relman may still be running):
    with MetricStore.open(path, readonly=True) as reading:
        assert [s.t for s in reading.scrapes("iris", "prod", 0, 120)] == [60]
        assert [(a.rule, a.state) for a in reading.alerts()] == [("p99", "firing")]
    assert path.read_bytes() == before  # untouched
    with MetricStore.open(path) as store:
        assert store.schema_version == metrics_schema.SCHEMA_VERSION == 3
        assert [s.t for s in store.scrapes("iris", "prod", 0, 120)] == [60]
        assert [r.request_id for r in store.records("iris", "prod", 0, 120)] == ["q1"]
        assert [(a.rule, a.state, a.grouped_with) for a in store.alerts()] == [
            ("p99", "firing", None)
        ]
        assert store.reader_offsets() == {} and store.webhook_posts() == []
        offset = ReaderOffset("iris", "prod", "/m/iris", {"data.1.log": {}})
        store.add_batch(offsets=[offset])
        assert store.reader_offsets() == {("iris", "prod"): {"/m/iris": {"data.1.log": {}}}}
    conn = sqlite3.connect(path)
    tables = {row[0] for row in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    conn.close()
    assert tables == metrics_schema.TABLES
