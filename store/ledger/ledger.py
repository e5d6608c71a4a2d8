"""The release ledger: ``<project>/.relman/ledger.db``.

``Ledger.open`` checks the file before anything writes to it (SQLite header, ``PRAGMA
quick_check``, schema version), then migrates it. A read-only open never writes: not even
migrations. The table-specific methods live in the mixins (releases, runs, deployments,
rollouts); this module holds opening, closing, history and the audit log.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from types import TracebackType

from store.ledger import history as _history
from store.ledger.audit import AuditEvent, ChainReport, audit_events, verify_chain
from store.ledger.base import Clock
from store.ledger.db import DEFAULT_BUSY_TIMEOUT, connect, connect_memory, inspect_file
from store.ledger.deployments import DeploymentsMixin
from store.ledger.migrations import (
    check_not_newer,
    check_readable,
    migrate,
    schema_version,
)
from store.ledger.pipelines import PipelinesMixin
from store.ledger.releases import ReleasesMixin
from store.ledger.rollouts import RolloutsMixin
from store.ledger.runs import RunsMixin


class Ledger(ReleasesMixin, RunsMixin, DeploymentsMixin, RolloutsMixin, PipelinesMixin):
    """Releases, runs, test results, promotions, approvals, rollouts, environment state and
    the hash-chained audit log of one project. Every mutating method writes its change and its
    audit event in one transaction."""

    @classmethod
    def open(
        cls,
        path: Path,
        *,
        readonly: bool = False,
        actor: str | None = None,
        busy_timeout: float = DEFAULT_BUSY_TIMEOUT,
        clock: Clock | None = None,
    ) -> Ledger:
        """Open (and for writers create and migrate) the ledger at ``path``.

        ``actor`` is who the audit log names (default: the OS user); ``clock`` returns the
        current timezone-aware time (tests pass a fixed one).
        """
        version = inspect_file(path, busy_timeout, deep=not readonly)
        if version is not None:
            check_not_newer(version, path)
        if readonly:
            if not version:
                # Nothing recorded yet: answer from an empty ledger rather than create one.
                db = connect_memory()
                migrate(db, path)
            else:
                check_readable(version, path)
                db = connect(path, readonly=True, busy_timeout=busy_timeout)
        else:
            db = connect(path, readonly=False, busy_timeout=busy_timeout)
            try:
                ledger = cls(
                    db, path, readonly=False, actor=actor, busy_timeout=busy_timeout, clock=clock
                )
                with ledger._reading():
                    migrate(db, path)
            except BaseException:
                db.close()
                raise
            return ledger
        return cls(db, path, readonly=True, actor=actor, busy_timeout=busy_timeout, clock=clock)

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def __enter__(self) -> Ledger:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    @property
    def schema_version(self) -> int:
        with self._reading() as db:
            return schema_version(db)

    def history(
        self,
        *,
        service: str | None = None,
        env: str | None = None,
        limit: int = 50,
        before: str | datetime | None = None,
    ) -> _history.HistoryPage:
        """Releases, runs, promotions, rollbacks and approvals, newest first, one page.
        Pass a page's ``next_cursor`` as ``before`` for the next one."""
        with self._reading() as db:
            return _history.history(db, service=service, env=env, limit=limit, before=before)

    def audit_events(
        self,
        *,
        limit: int = 50,
        before_seq: int | None = None,
        service: str | None = None,
        env: str | None = None,
    ) -> list[AuditEvent]:
        """Audit events, newest first; page on with ``before_seq``."""
        with self._reading() as db:
            return audit_events(db, limit=limit, before_seq=before_seq, service=service, env=env)

    def verify_chain(self) -> ChainReport:
        """Check every audit event's hash and link; name the first one that fails."""
        with self._reading() as db:
            return verify_chain(db)
