"""relman's SQLite persistence (sqlite-utils): the release ledger. Imports neither textual nor
rich, and nothing of core but :mod:`core.errors`.

The names below load on first use (PEP 562), so that importing one light module, e.g.
:mod:`store.snapshot` for the status line, does not load sqlite-utils and the whole ledger.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from store.audit import AuditEvent, ChainReport
    from store.base import AmbiguousRelease, LedgerConflict, ReleaseNotFound
    from store.deployments import PromotionOpen
    from store.history import HistoryEntry, HistoryPage
    from store.ledger import Ledger
    from store.metrics import (
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

_WHERE = {
    "SCHEMA_VERSION": "store.migrations",
    "AlertEvent": "store.metrics",
    "AlertRow": "store.metrics",
    "AmbiguousRelease": "store.base",
    "ApprovalRecord": "store.records",
    "ArtifactRecord": "store.records",
    "AuditEvent": "store.audit",
    "ChainReport": "store.audit",
    "CollectorRow": "store.metrics",
    "EnvState": "store.records",
    "Feedback": "store.metrics",
    "HistoryEntry": "store.history",
    "HistoryPage": "store.history",
    "Ledger": "store.ledger",
    "LedgerConflict": "store.base",
    "MetricStore": "store.metrics",
    "Point": "store.metrics",
    "PromotionOpen": "store.deployments",
    "PromotionRecord": "store.records",
    "Record": "store.metrics",
    "ReleaseNotFound": "store.base",
    "ReleaseRecord": "store.records",
    "Rollup": "store.metrics",
    "RunRecord": "store.records",
    "ScrapeRow": "store.metrics",
    "StepRecord": "store.records",
    "TestResultRecord": "store.records",
    "bump_version": "store.releases",
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
