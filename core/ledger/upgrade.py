"""Upgrading a ledger written by an older relman before a read, unless the session is
read-only. Light on purpose: `relman status` calls it on every start, and the store (with
sqlite-utils and numpy) is loaded only when there is something to migrate."""

from __future__ import annotations

import os

from core.config.model import Project

# Set (by `relman --read-only`) for a session that must not write anything, migrations too.
READ_ONLY_VARIABLE = "RELMAN_READ_ONLY"


def upgrade_ledger(project: Project) -> None:
    """Bring an older ledger to this relman's schema (a write open migrates), unless the
    session is read-only: then the read itself says which command upgrades it. Without it,
    every read after an upgrade of relman would fail until something wrote."""
    if os.environ.get(READ_ONLY_VARIABLE):
        return
    from store.ledger.db import inspect_file
    from store.ledger.migrations import SCHEMA_VERSION

    version = inspect_file(project.ledger_path, deep=False)
    if version and version < SCHEMA_VERSION:
        from core.ledger.identity import current_user
        from store.ledger.ledger import Ledger

        Ledger.open(project.ledger_path, actor=current_user(project.root)).close()
