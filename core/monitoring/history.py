"""The past of one (service, environment) as the seasonal baselines read it
(core.alerts.seasonal.History): the metric store's per-minute rollups, kept
``rollup_retention_days``. docs/monitoring.md, "Baselines and seasons"."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from core.alerts.alerting import METRICS


class StoreHistory:
    """Rollups of ``service`` in ``env`` read from ``store`` (store.metrics.store)."""

    def __init__(self, store: Any, service: str, env: str) -> None:
        self.store = store
        self.service = service
        self.env = env

    def values(self, metric: str, since: int, until: int) -> Sequence[tuple[int, float]]:
        if metric not in METRICS:
            return []
        points = self.store.series(self.service, self.env, since, until)
        out: list[tuple[int, float]] = []
        for point in points:
            value = getattr(point, metric)
            if value is not None:
                out.append((int(point.t), float(value)))
        return out
