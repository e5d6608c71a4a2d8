"""The past of one (service, environment) as the seasonal baselines read it
(core.alerts.seasonal.History): the metric store's per-minute rollups, kept
``rollup_retention_days``. docs/monitoring.md, "Baselines and seasons"."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from core.alerts.alerting import METRICS


class StoreHistory:
    """Rollups of ``service`` in ``env`` read from ``store`` (store.metrics.store)."""

    def __init__(self, store: Any, service: str, env: str, source: str | None = None) -> None:
        """``source``: where the minute judged took its latencies (``proxy`` or
        ``histogram``); latencies of the other source are no history for it (BentoML's
        buckets read a 57 ms p95 as 81 ms: a week of them would hide a regression, or
        make one up)."""
        self.store = store
        self.service = service
        self.env = env
        self.source = source

    def values(self, metric: str, since: int, until: int) -> Sequence[tuple[int, float]]:
        if metric not in METRICS:
            return []
        points = self.store.series(self.service, self.env, since, until)
        latency = metric in ("p50_ms", "p95_ms", "p99_ms") and self.source is not None
        out: list[tuple[int, float]] = []
        for point in points:
            if latency and point.latency_source != self.source:
                continue
            value = getattr(point, metric)
            if value is not None:
                out.append((int(point.t), float(value)))
        return out
