"""store.ledger.snapshot reads the environment state with the standard library alone, with the same
answers and refusals as a read-only Ledger."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from store import SCHEMA_VERSION, Ledger
from store.errors import SchemaTooNew, SchemaTooOld, StoreCorrupt
from store.ledger.snapshot import environment_states
from tests.store import add_release, open_ledger


def test_same_rows_as_the_ledger(tmp_path: Path) -> None:
    with open_ledger(tmp_path) as ledger:
        add_release(ledger, "aaa111")
        ledger.set_environment_state("fraud", "dev", "live", release_id="aaa111", url="http://x")
        ledger.set_environment_state("fraud", "prod", "down")
        expected = ledger.environment_states()
    assert environment_states(tmp_path / ".relman" / "ledger.db") == expected
    assert [(s.env, s.state, s.release_id) for s in expected] == [
        ("dev", "live", "aaa111"),
        ("prod", "down", None),
    ]


def test_missing_ledger_is_empty_and_not_created(tmp_path: Path) -> None:
    path = tmp_path / ".relman" / "ledger.db"
    assert environment_states(path) == []
    assert not path.parent.exists()


def test_newer_schema_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "ledger.db"
    conn = sqlite3.connect(path)
    conn.execute("PRAGMA user_version = 99")
    conn.execute("CREATE TABLE environment_state (x)")
    conn.commit()
    conn.close()
    with pytest.raises(SchemaTooNew, match="written by a newer relman"):
        environment_states(path)


def test_older_schema_asks_for_a_writer(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "ledger.db"
    Ledger.open(path).close()
    monkeypatch.setattr("store.ledger.migrations.SCHEMA_VERSION", SCHEMA_VERSION + 1)
    with pytest.raises(SchemaTooOld, match="without --read-only once"):
        environment_states(path)


def test_foreign_file_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "ledger.db"
    path.write_text("not a database at all, just text\n")
    with pytest.raises(StoreCorrupt, match="not an SQLite file"):
        environment_states(path)
    assert path.read_text() == "not a database at all, just text\n"


def test_does_not_load_sqlite_utils() -> None:
    code = (
        "import sys, store.ledger.snapshot, core.delivery.status\n"
        "print('sqlite_utils' in sys.modules, 'numpy' in sys.modules)"
    )
    found = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert found.stdout.split() == ["False", "False"]


def test_status_upgrades_an_older_ledger_unless_read_only(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """After an upgrade of relman, the first read migrates the ledger (a read-only session
    does not: it says which command does)."""
    from core.config.model import Project
    from core.ledger.upgrade import READ_ONLY_VARIABLE, upgrade_ledger
    from store.ledger.db import connect
    from store.ledger.migrations import MIGRATIONS, migrate

    path = tmp_path / ".relman" / "ledger.db"
    path.parent.mkdir()
    db = connect(path, readonly=False, busy_timeout=1.0)
    migrate(db, path, MIGRATIONS[:1])
    db.close()
    project = Project.__new__(Project)
    object.__setattr__(project, "root", tmp_path)
    monkeypatch.setenv(READ_ONLY_VARIABLE, "1")
    upgrade_ledger(project)
    with pytest.raises(SchemaTooOld, match="without --read-only once"):
        environment_states(path)
    monkeypatch.delenv(READ_ONLY_VARIABLE)
    upgrade_ledger(project)
    assert environment_states(path) == []
