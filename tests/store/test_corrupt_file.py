"""A file that is not a healthy SQLite database is refused and left exactly as it was."""

from __future__ import annotations

import os
import sqlite3
from pathlib import Path

import pytest

from store import Ledger
from store.errors import StoreCorrupt
from tests.store import add_release


@pytest.mark.parametrize("readonly", [False, True])
def test_garbage_bytes_are_refused_untouched(tmp_path: Path, readonly: bool) -> None:
    path = tmp_path / ".relman" / "ledger.db"
    path.parent.mkdir()
    garbage = os.urandom(8192)
    path.write_bytes(garbage)
    with pytest.raises(StoreCorrupt) as caught:
        Ledger.open(path, readonly=readonly)
    message = str(caught.value)
    assert "ledger.db: not a readable relman database (not an SQLite file)" in message
    assert "move it aside" in message
    assert "\n" not in message
    assert path.read_bytes() == garbage
    assert sorted(p.name for p in path.parent.iterdir()) == ["ledger.db"]


def test_damaged_pages_fail_quick_check_and_are_left_alone(tmp_path: Path) -> None:
    path = tmp_path / "ledger.db"
    with Ledger.open(path) as ledger:
        for n in range(300):
            add_release(ledger, f"{n:012d}")
    conn = sqlite3.connect(path)
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    page_size = conn.execute("PRAGMA page_size").fetchone()[0]
    conn.close()
    data = bytearray(path.read_bytes())
    # Keep the header page (so it still looks like SQLite) and scramble the b-tree pages.
    for page in range(2, len(data) // page_size, 2):
        data[page * page_size : page * page_size + 64] = b"\xff" * 64
    path.write_bytes(bytes(data))
    with pytest.raises(StoreCorrupt, match="not a readable relman database") as caught:
        Ledger.open(path)
    assert "restore it from a backup" in str(caught.value)
    assert path.read_bytes() == bytes(data)
