"""relman's SQLite persistence (sqlite-utils): the release ledger. Imports neither textual nor
rich, and nothing of core but :mod:`core.errors`."""

from store.audit import AuditEvent, ChainReport
from store.base import AmbiguousRelease, LedgerConflict, ReleaseNotFound
from store.history import HistoryEntry, HistoryPage
from store.ledger import Ledger
from store.migrations import SCHEMA_VERSION
from store.records import (
    ApprovalRecord,
    ArtifactRecord,
    EnvState,
    PromotionRecord,
    ReleaseRecord,
    RunRecord,
    StepRecord,
    TestResultRecord,
)
from store.releases import bump_version

__all__ = [
    "SCHEMA_VERSION",
    "AmbiguousRelease",
    "ApprovalRecord",
    "ArtifactRecord",
    "AuditEvent",
    "ChainReport",
    "EnvState",
    "HistoryEntry",
    "HistoryPage",
    "Ledger",
    "LedgerConflict",
    "PromotionRecord",
    "ReleaseNotFound",
    "ReleaseRecord",
    "RunRecord",
    "StepRecord",
    "TestResultRecord",
    "bump_version",
]
