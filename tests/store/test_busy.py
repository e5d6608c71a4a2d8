"""A ledger locked by another writer past the busy timeout: one StoreBusy line, no hang."""

from __future__ import annotations

import re
import sqlite3
import time
from pathlib import Path

import pytest

from core.errors import release_error
from store import Ledger
from store.errors import StoreBusy
from tests.store import add_release


def test_write_lock_held_past_the_timeout(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    path = tmp_path / ".relman" / "ledger.db"
    with Ledger.open(path) as ledger:
        add_release(ledger, "aaaaaaaaaaaa")
    holder = sqlite3.connect(path, isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")  # another relman, mid-transaction
    try:
        with Ledger.open(path, busy_timeout=0.2) as ledger:
            # Opening a current ledger only reads, so it does not wait for the writer...
            assert ledger.get_release("aaaaaaaaaaaa").service == "fraud"
            started = time.monotonic()
            with pytest.raises(StoreBusy) as caught:
                ledger.approve("aaaaaaaaaaaa", "prod")
            waited = time.monotonic() - started
            # ...and the lock does not block readers (WAL).
            assert ledger.approvals("aaaaaaaaaaaa") == []
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    assert re.fullmatch(
        r"\.relman/ledger\.db: busy, another relman process held its write lock for more "
        r"than 0\.2 s; wait for it to finish, then retry",
        str(caught.value),
    )
    assert release_error(caught.value).exit_code == 3
    assert 0.15 < waited < 3
    # Once the lock is gone the same write goes through.
    with Ledger.open(path) as ledger:
        ledger.approve("aaaaaaaaaaaa", "prod")
        assert ledger.verify_chain().ok
