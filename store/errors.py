"""The store's own exception family: what can go wrong with a relman database, in one line.

Each error carries a one-line message (what, where, what to do) and no exit code: the store
does not decide how a front end ends. :mod:`core.errors` maps each kind to the ReleaseError
(and so the exit code) the user sees, in one table.

Two branches: a :class:`StoreFailure` is the file or SQLite failing (locked, unreadable,
damaged, of another schema, a full disk): retrying later, or repairing the file, is the way
out. The other kinds are the store refusing a request it understood (read-only, nothing by
that id, a conflict with what is recorded, a promotion already open).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from store.ledger.records import PromotionRecord

__all__ = [
    "AmbiguousRelease",
    "InvalidRequest",
    "LedgerConflict",
    "MetricStoreBusy",
    "MetricStoreFull",
    "PromotionOpen",
    "ReadOnlyRefused",
    "RecordNotFound",
    "ReleaseNotFound",
    "SchemaTooNew",
    "SchemaTooOld",
    "StoreBusy",
    "StoreCorrupt",
    "StoreError",
    "StoreFailure",
    "StoreFull",
    "StoreInaccessible",
]


class StoreError(Exception):
    """Base of every error the store raises on purpose."""

    def __init__(self, message: str) -> None:
        # One line, always: the front ends print it as it is.
        line = " ".join(message.split())
        super().__init__(line)
        self.message = line

    def __str__(self) -> str:
        return self.message


# ------------------------------------------------------------ the file or SQLite failed


class StoreFailure(StoreError):
    """The database itself failed; raised as is for a SQLite failure of no known kind."""


class StoreBusy(StoreFailure):
    """Another process held the write lock past the busy timeout: nothing was written."""


class StoreInaccessible(StoreFailure):
    """The file or its folder cannot be read, opened or created (permissions, a folder in
    the file's place)."""


class StoreCorrupt(StoreFailure):
    """The file is not SQLite, is damaged, or holds another program's tables."""


class SchemaTooNew(StoreFailure):
    """The file was written by a newer relman: its tables may mean things this one ignores."""


class SchemaTooOld(StoreFailure):
    """A read-only open met an older schema it may not upgrade."""


class StoreFull(StoreFailure):
    """The disk (or the file's size limit) is full: nothing was written."""


class MetricStoreBusy(StoreBusy):
    """The metric store's write lock was held past the busy timeout: the batch is kept."""


class MetricStoreFull(StoreFull):
    """The metric store's disk is full: the collector stops."""


# ---------------------------------------------------------- the store refused a request


class ReadOnlyRefused(StoreError):
    """A write was asked of a database opened read-only."""


class InvalidRequest(StoreError):
    """The caller asked for something the store cannot do: a bad argument or state."""


class RecordNotFound(InvalidRequest):
    """No row has this id (a run, an alert)."""


class ReleaseNotFound(RecordNotFound):
    """No recorded release has this id or id prefix."""


class AmbiguousRelease(InvalidRequest):
    """An id prefix matches several releases; the message lists them."""


class LedgerConflict(StoreError):
    """The change contradicts what the store holds: a version already taken, a run already
    finished, a promotion no longer open."""


class PromotionOpen(StoreError):
    """Another promotion of the same service and environment is open; ``promotion`` is it,
    so the engine can tell a live holder from one a crash left behind."""

    def __init__(self, promotion: PromotionRecord) -> None:
        holder = f" (pid {promotion.pid})" if promotion.pid else ""
        super().__init__(
            f"{promotion.env} is being promoted by {promotion.actor}{holder} since "
            f"{promotion.started_at}; wait for it to finish"
        )
        self.promotion = promotion
