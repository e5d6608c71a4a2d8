"""What every part of the ledger shares: the connection, the clock, the acting user, and
the one way to write (a BEGIN IMMEDIATE transaction that also appends the audit event)."""

from __future__ import annotations

import getpass
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import Any

from store.errors import ReadOnlyRefused, ReleaseNotFound
from store.ledger.audit import AuditEvent, append_event
from store.ledger.db import display_path, iso, translate_errors, utc_now, write_transaction
from store.ledger.records import ReleaseRecord, release_from_row
from store.ledger.sqlite import Database

Clock = Callable[[], datetime]


class LedgerBase:
    """The connection and the write discipline; the table-specific parts are mixins."""

    def __init__(
        self,
        db: Database,
        path: Path,
        *,
        readonly: bool,
        actor: str | None,
        busy_timeout: float,
        clock: Clock | None,
    ) -> None:
        self._db = db
        self.path = path
        self.readonly = readonly
        self.actor = actor or _os_user()
        self.busy_timeout = busy_timeout
        self._clock: Clock = clock or utc_now
        # One connection, many threads (TUI workers): one transaction or read at a time.
        self._lock = threading.RLock()

    @property
    def where(self) -> str:
        """The file, as error messages name it."""
        return display_path(self.path)

    @contextmanager
    def _writing(self, what: str) -> Iterator[str]:
        """One write transaction; yields its timestamp, shared by the change and its event."""
        if self.readonly:
            raise ReadOnlyRefused(
                f"{self.where}: opened read-only, so {what} is refused; run relman without "
                "--read-only to change the ledger"
            )
        with (
            self._lock,
            translate_errors(self.path, self.busy_timeout),
            write_transaction(self._db),
        ):
            yield iso(self._clock())

    @contextmanager
    def _reading(self) -> Iterator[Database]:
        """Reads must materialise their rows inside this block, so errors are translated."""
        with self._lock, translate_errors(self.path, self.busy_timeout):
            yield self._db

    def _audit(
        self,
        at: str,
        action: str,
        outcome: str,
        *,
        service: str | None = None,
        env: str | None = None,
        release_id: str | None = None,
        reason: str = "",
        details: dict[str, Any] | None = None,
        actor: str | None = None,
    ) -> AuditEvent:
        return append_event(
            self._db,
            at=at,
            actor=actor or self.actor,
            action=action,
            outcome=outcome,
            service=service,
            env=env,
            release_id=release_id,
            reason=reason,
            details=details,
        )

    def _release_row(self, release_id: str) -> ReleaseRecord:
        """The release with exactly this id (callers resolve prefixes with get_release)."""
        row = self._one("SELECT * FROM releases WHERE id = ?", [release_id])
        if row is None:
            raise ReleaseNotFound(
                f"no release {release_id!r} in {self.where}; `relman history` lists the "
                "recorded releases"
            )
        return release_from_row(row)

    def _one(self, sql: str, params: list[Any]) -> dict[str, Any] | None:
        return next(iter(self._db.query(sql, params)), None)

    def log_event(
        self,
        action: str,
        *,
        outcome: str,
        service: str | None = None,
        env: str | None = None,
        release_id: str | None = None,
        reason: str = "",
        details: dict[str, Any] | None = None,
    ) -> AuditEvent:
        """Append an event that goes with no other change: a refusal, a gate decision."""
        with self._writing(f"recording {action}") as at:
            return self._audit(
                at,
                action,
                outcome,
                service=service,
                env=env,
                release_id=release_id,
                reason=reason,
                details=details,
            )


def _os_user() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):  # no passwd entry, e.g. an arbitrary uid in a container
        return "unknown"
