"""A ledger written by a newer relman is refused, read-write and read-only, untouched."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from core.errors import release_error
from store import SCHEMA_VERSION, Ledger
from store.errors import SchemaTooNew, SchemaTooOld


def _newer_ledger(path: Path) -> bytes:
    path.parent.mkdir(parents=True)
    conn = sqlite3.connect(path)
    conn.execute("CREATE TABLE releases (id TEXT PRIMARY KEY, future TEXT)")
    conn.execute("PRAGMA user_version = 7")
    conn.commit()
    conn.close()
    return path.read_bytes()


@pytest.mark.parametrize("readonly", [False, True])
def test_newer_schema_is_refused_without_writing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, readonly: bool
) -> None:
    monkeypatch.chdir(tmp_path)
    path = tmp_path / ".relman" / "ledger.db"
    before = _newer_ledger(path)
    with pytest.raises(SchemaTooNew) as caught:
        Ledger.open(path, readonly=readonly)
    assert str(caught.value) == (
        f".relman/ledger.db: written by a newer relman (schema 7, this one knows "
        f"{SCHEMA_VERSION}); upgrade relman, or move the file aside to start a new ledger"
    )
    assert release_error(caught.value).exit_code == 3
    assert path.read_bytes() == before
    assert sorted(p.name for p in path.parent.iterdir()) == ["ledger.db"]


def test_read_only_open_of_an_older_schema_asks_for_a_writer(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "ledger.db"
    Ledger.open(path).close()
    before = path.read_bytes()
    # This relman knowing one more migration than the file has: read-only cannot migrate.
    monkeypatch.setattr("store.ledger.migrations.SCHEMA_VERSION", SCHEMA_VERSION + 1)
    with pytest.raises(SchemaTooOld, match="run any relman command without --read-only once"):
        Ledger.open(path, readonly=True)
    assert path.read_bytes() == before
