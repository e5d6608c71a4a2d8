"""Opening a relman SQLite file safely: checks before writing, WAL, busy timeout, transactions.

Every way SQLite can fail a user (a locked file, a damaged file, a file that is not a
database at all) is turned here into one :mod:`store.errors` line that names the file and
says what to do. Nothing in this module writes to a file it has not first checked.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import quote

from store.errors import (
    ReadOnlyRefused,
    StoreBusy,
    StoreCorrupt,
    StoreFailure,
    StoreInaccessible,
)

if TYPE_CHECKING:  # sqlite-utils (store/ledger/sqlite.py) only when a Database is opened
    from store.ledger.sqlite import Database

DEFAULT_BUSY_TIMEOUT = 5.0
_SQLITE_HEADER = b"SQLite format 3\x00"


def display_path(path: Path) -> str:
    """The path as a user would type it: relative to the working directory when inside it."""
    try:
        return str(path.resolve().relative_to(Path.cwd().resolve()))
    except ValueError:
        return str(path)


def iso(moment: datetime) -> str:
    """A timezone-aware moment as a fixed-width UTC ISO-8601 string.

    Fixed width (always microseconds, always +00:00) so that comparing the strings in SQL
    orders them in time: history, live_at and their indexes rely on it.
    """
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise ValueError(f"naive datetime {moment!r}: relman stores timezone-aware UTC times")
    return moment.astimezone(UTC).isoformat(timespec="microseconds")


def utc_now() -> datetime:
    return datetime.now(UTC)


def corrupt_error(path: Path, why: str) -> StoreCorrupt:
    return StoreCorrupt(
        f"{display_path(path)}: not a readable relman database ({why}); move it aside "
        f"(e.g. rename it to {path.name}.broken) to start a new one, or restore it from a backup"
    )


def busy_error(path: Path, timeout: float) -> StoreBusy:
    return StoreBusy(
        f"{display_path(path)}: busy, another relman process held its write lock for more than "
        f"{timeout:g} s; wait for it to finish, then retry"
    )


def inspect_file(
    path: Path, busy_timeout: float = DEFAULT_BUSY_TIMEOUT, *, deep: bool = True
) -> int | None:
    """The schema version (``PRAGMA user_version``) of an existing database file.

    None when there is no file yet (or an empty one, which SQLite treats the same). Reads
    through a read-only connection, so a damaged or foreign file is never modified.
    Raises StoreCorrupt when the file is not SQLite or, with ``deep``, fails ``PRAGMA
    quick_check`` (which reads every page: worth it before a write, not before a read, whose
    own queries meet any damaged page and are translated into the same error).
    """
    if path.is_dir():
        raise StoreInaccessible(
            f"{display_path(path)}: is a directory, not a database file; remove it"
        )
    try:
        with path.open("rb") as handle:
            header = handle.read(len(_SQLITE_HEADER))
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise StoreInaccessible(
            f"{display_path(path)}: cannot be read ({exc.strerror}); check its permissions"
        ) from exc
    if not header:
        return None
    # Checked before SQLite sees the file: connecting read-write to a foreign file and
    # running any write (WAL, migrations) would modify it.
    if header != _SQLITE_HEADER:
        raise corrupt_error(path, "not an SQLite file")
    with reading_file(path, busy_timeout) as conn:
        version = int(conn.execute("PRAGMA user_version").fetchone()[0])
        problems = [row[0] for row in conn.execute("PRAGMA quick_check")] if deep else ["ok"]
    if problems != ["ok"]:
        raise corrupt_error(path, f"quick_check: {problems[0]}")
    return version


@contextmanager
def reading_file(path: Path, busy_timeout: float) -> Iterator[sqlite3.Connection]:
    """A plain read-only connection, closed after; SQLite's failures become store.errors lines
    (busy: a writer mid-checkpoint, the file is fine and only cannot be read now)."""
    conn = sqlite3.connect(readonly_uri(path), uri=True, timeout=busy_timeout, isolation_level=None)
    conn.row_factory = sqlite3.Row
    try:
        yield conn
    except sqlite3.OperationalError as exc:
        if is_busy(exc):
            raise busy_error(path, busy_timeout) from exc
        raise corrupt_error(path, str(exc)) from exc
    except sqlite3.DatabaseError as exc:
        raise corrupt_error(path, str(exc)) from exc
    finally:
        conn.close()


def connect(path: Path, *, readonly: bool, busy_timeout: float) -> Database:
    """A sqlite-utils Database on ``path``; read-write connections create the parent folder
    and switch the file to WAL so readers (the TUI, --read-only) never block the writer."""
    from store.ledger.sqlite import Database

    try:
        if readonly:
            conn = sqlite3.connect(
                readonly_uri(path),
                uri=True,
                timeout=busy_timeout,
                isolation_level=None,
                check_same_thread=False,
            )
        else:
            path.parent.mkdir(parents=True, exist_ok=True)
            conn = sqlite3.connect(
                str(path), timeout=busy_timeout, isolation_level=None, check_same_thread=False
            )
    except OSError as exc:
        raise StoreInaccessible(
            f"{display_path(path)}: cannot create its folder ({exc.strerror}); "
            "check the permissions of the project folder"
        ) from exc
    except sqlite3.Error as exc:
        raise StoreInaccessible(
            f"{display_path(path)}: cannot be opened ({exc}); check the file and its folder"
        ) from exc
    # isolation_level=None: the driver never opens transactions behind our back; every
    # write goes through write_transaction() below, so its boundaries are explicit.
    # check_same_thread=False: the TUI's thread workers share one Ledger, which serialises
    # their use of the connection with a lock (store.ledger.base).
    db = Database(conn, execute_plugins=False)
    with translate_errors(path, busy_timeout):
        db.execute("PRAGMA foreign_keys = ON")
        if not readonly:
            db.enable_wal()
    return db


def connect_memory() -> Database:
    """An empty in-memory database: what a read-only open of a missing ledger reads from."""
    from store.ledger.sqlite import Database

    conn = sqlite3.connect(":memory:", isolation_level=None, check_same_thread=False)
    db = Database(conn, execute_plugins=False)
    db.execute("PRAGMA foreign_keys = ON")
    return db


@contextmanager
def translate_errors(path: Path, busy_timeout: float) -> Iterator[None]:
    """Turn sqlite3 failures into one-line store errors naming the file."""
    try:
        yield
    except sqlite3.OperationalError as exc:
        if is_busy(exc):
            raise busy_error(path, busy_timeout) from exc
        if "readonly database" in str(exc):
            raise ReadOnlyRefused(
                f"{display_path(path)}: opened read-only; run relman without --read-only to "
                "change it"
            ) from exc
        raise StoreFailure(
            f"{display_path(path)}: SQLite failed ({exc}); retry, or report it"
        ) from exc
    except sqlite3.IntegrityError:
        raise  # a broken constraint is a bug in the caller, not a state of the file
    except sqlite3.DatabaseError as exc:
        raise corrupt_error(path, str(exc)) from exc


@contextmanager
def write_transaction(db: Database) -> Iterator[Database]:
    """One write transaction, taken with BEGIN IMMEDIATE.

    IMMEDIATE takes the write lock up front, so what a transaction reads (the previous
    audit hash, the last version number) cannot change before it writes; a second writer
    waits for the busy timeout instead of failing half-way with SQLITE_BUSY on upgrade.
    """
    db.conn.execute("BEGIN IMMEDIATE")
    try:
        yield db
    except BaseException:
        if db.conn.in_transaction:
            db.conn.execute("ROLLBACK")
        raise
    else:
        try:
            db.conn.execute("COMMIT")
        except BaseException:
            if db.conn.in_transaction:
                db.conn.execute("ROLLBACK")
            raise


def readonly_uri(path: Path) -> str:
    return f"file:{quote(str(path.resolve()))}?mode=ro"


def is_busy(exc: sqlite3.OperationalError) -> bool:
    text = str(exc)
    return "database is locked" in text or "database is busy" in text
