"""What every part of the metric store shares: the connection, its lock (one statement or
transaction at a time), and the one way to write: a BEGIN IMMEDIATE transaction, retried
while another process holds the file, failed whole with :class:`MetricStoreBusy` past the
busy timeout or :class:`MetricStoreFull` on a full disk.

The parts (:mod:`store.metrics.alerts`, :mod:`store.metrics.collector`,
:mod:`store.metrics.reads`) are mixins of :class:`MetricStoreBase`, as the ledger's are of
:class:`store.ledger.base.LedgerBase`; :class:`store.metrics.store.MetricStore` opens the file and
joins
them.
"""

from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from store.errors import MetricStoreBusy, MetricStoreFull, ReadOnlyRefused
from store.ledger.db import busy_error, display_path, is_busy, translate_errors, write_transaction

if TYPE_CHECKING:
    from sqlite_utils import Database

__all__ = ["MetricStoreBase"]

T = TypeVar("T")

_FIRST_BACKOFF = 0.01
_MAX_BACKOFF = 0.25


class MetricStoreBase:
    """The connection and the write discipline; the table-specific parts are mixins."""

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

    @property
    def where(self) -> str:
        """The file, as error messages name it."""
        return display_path(self.path)

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
            raise ReadOnlyRefused(
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


def _is_full(exc: sqlite3.OperationalError) -> bool:
    return getattr(
        exc, "sqlite_errorcode", None
    ) == sqlite3.SQLITE_FULL or "database or disk is full" in str(exc)
