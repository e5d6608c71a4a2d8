"""relman's SQLite persistence (sqlite-utils): the release ledger and the metric store. Imports
neither textual nor rich, and nothing of core: its errors are its own (:mod:`store.errors`, no
exit codes), which core.errors maps to the ReleaseError a user sees.

The names below load on first use (PEP 562), so that importing one light module, e.g.
:mod:`store.ledger.snapshot` for the status line, does not load sqlite-utils and the whole ledger.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from store.errors import AmbiguousRelease, LedgerConflict, PromotionOpen, ReleaseNotFound
    from store.ledger.audit import AuditEvent, ChainReport
    from store.ledger.history import HistoryEntry, HistoryPage
    from store.ledger.ledger import Ledger
    from store.ledger.migrations import SCHEMA_VERSION
    from store.ledger.records import (
        ApprovalRecord,
        ArtifactRecord,
        EnvState,
        PromotionRecord,
        ReleaseRecord,
        RolloutPhase,
        RolloutRecord,
        RolloutRequest,
        RolloutStrategy,
        RunRecord,
        StepRecord,
        TestResultRecord,
    )
    from store.ledger.releases import bump_version
    from store.metrics.store import (
        AlertEvent,
        AlertRow,
        CollectorRow,
        Feedback,
        MetricStore,
        Point,
        Record,
        Rollup,
        ScrapeRow,
    )

_WHERE = {
    "SCHEMA_VERSION": "store.ledger.migrations",
    "AlertEvent": "store.metrics.store",
    "AlertRow": "store.metrics.store",
    "AmbiguousRelease": "store.errors",
    "ApprovalRecord": "store.ledger.records",
    "ArtifactRecord": "store.ledger.records",
    "AuditEvent": "store.ledger.audit",
    "ChainReport": "store.ledger.audit",
    "CollectorRow": "store.metrics.store",
    "EnvState": "store.ledger.records",
    "Feedback": "store.metrics.store",
    "HistoryEntry": "store.ledger.history",
    "HistoryPage": "store.ledger.history",
    "Ledger": "store.ledger.ledger",
    "LedgerConflict": "store.errors",
    "MetricStore": "store.metrics.store",
    "Point": "store.metrics.store",
    "PromotionOpen": "store.errors",
    "PromotionRecord": "store.ledger.records",
    "Record": "store.metrics.store",
    "ReleaseNotFound": "store.errors",
    "ReleaseRecord": "store.ledger.records",
    "RolloutPhase": "store.ledger.records",
    "RolloutRecord": "store.ledger.records",
    "RolloutRequest": "store.ledger.records",
    "RolloutStrategy": "store.ledger.records",
    "Rollup": "store.metrics.store",
    "RunRecord": "store.ledger.records",
    "ScrapeRow": "store.metrics.store",
    "StepRecord": "store.ledger.records",
    "TestResultRecord": "store.ledger.records",
    "bump_version": "store.ledger.releases",
}

__all__ = [
    "SCHEMA_VERSION",
    "AlertEvent",
    "AlertRow",
    "AmbiguousRelease",
    "ApprovalRecord",
    "ArtifactRecord",
    "AuditEvent",
    "ChainReport",
    "CollectorRow",
    "EnvState",
    "Feedback",
    "HistoryEntry",
    "HistoryPage",
    "Ledger",
    "LedgerConflict",
    "MetricStore",
    "Point",
    "PromotionOpen",
    "PromotionRecord",
    "Record",
    "ReleaseNotFound",
    "ReleaseRecord",
    "RolloutPhase",
    "RolloutRecord",
    "RolloutRequest",
    "RolloutStrategy",
    "Rollup",
    "RunRecord",
    "ScrapeRow",
    "StepRecord",
    "TestResultRecord",
    "bump_version",
]


def __getattr__(name: str) -> Any:
    module = _WHERE.get(name)
    if module is None:
        raise AttributeError(f"module 'store' has no attribute {name!r}")
    value = getattr(import_module(module), name)
    globals()[name] = value
    return value
