"""What `relman metrics`, `relman alerts`, `relman feedback` and `relman policy backtest`
answer, from the metric store (read-only, except feedback) and the effective policies."""

from __future__ import annotations

import csv
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from core.config.model import Project
from core.errors import ReadOnlyError, UsageError

if TYPE_CHECKING:
    from core.documents import AlertsDocument, MetricsDocument

RANGES = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def parse_range(text: str) -> int:
    """``5m``, ``1h``, ``24h``, ``7d`` -> seconds; UsageError for anything else."""
    text = text.strip().lower()
    if len(text) < 2 or text[-1] not in RANGES or not text[:-1].isdigit() or int(text[:-1]) == 0:
        raise UsageError(f"--range {text!r}: give a number and a unit, e.g. 5m, 1h, 24h or 7d")
    return int(text[:-1]) * RANGES[text[-1]]


def metrics(project: Project, service: str, env: str, range_: str = "1h") -> MetricsDocument:
    """The ``metrics`` document (docs/json.md): one point a minute over the range."""
    from core.monitoring.collector_process import metrics_path, running_collector
    from core.monitoring.collector_state import source_problem
    from store.metrics.store import MetricStore

    project.config.check_names(service=service, env=env)
    seconds = parse_range(range_)
    now = int(time.time())
    with MetricStore.open(metrics_path(project), readonly=True) as store:
        points = store.series(service, env, now - seconds, now)
        claim = store.collector()
    # What the collector said of its source, while it runs (stopped, it is said so).
    running = claim is not None and running_collector(project, claim) is not None
    problem = source_problem(project.state_dir, service, env) if running else None
    return {
        "ok": True,
        "service": service,
        "env": env,
        "range": range_,
        "points": [point.to_dict() for point in points],
        "source": {"name": project.config.monitoring.source, "problem": problem},
    }


def alerts(project: Project, *, state: str | None = None, limit: int = 100) -> AlertsDocument:
    """The ``alerts`` document (docs/json.md): open ones first, then the past ones. With
    ``[monitoring] alertmanager_url``, the open ones its silences cover carry their
    ``silence``, and a silenced firing alert is not counted as firing."""
    from core.alerts.alert_state import alert_document
    from core.monitoring.collector_process import metrics_path, running_collector
    from store.metrics.store import MetricStore

    with MetricStore.open(metrics_path(project), readonly=True) as store:
        rows = store.alerts(state=state, limit=limit)
        claim = store.collector()
    documents = [alert_document(row.to_dict()) for row in rows]
    document: AlertsDocument = {
        "ok": True,
        "alerts": documents,
        "firing": 0,
        "collector": running_collector(project, claim),
    }
    _silences(project, document)
    # Firing first (the silenced ones after the others), then pending, then resolved.
    order = {"firing": 0, "pending": 2, "resolved": 4}
    documents.sort(key=lambda a: (order.get(a["state"], 5) + ("silence" in a), a["since"] or ""))
    firing = [a for a in documents if a["state"] == "firing" and "silence" not in a]
    document["ok"], document["firing"] = not firing, len(firing)
    document["silenced"] = sum(a["state"] == "firing" and "silence" in a for a in documents)
    return document


def _silences(project: Project, document: AlertsDocument) -> None:
    """The silences of the project's Alertmanager on the open alerts they cover, and what
    was read there (``alertmanager``); nothing without one. Waits at most a couple of
    seconds (core.alerts.alertmanager.SILENCES_TIMEOUT)."""
    from core.alerts.alertmanager import Alertmanager
    from core.alerts.silences import covering

    manager = Alertmanager.of(project)
    if manager is None:
        return
    read = manager.silences()
    document["alertmanager"] = {
        "url": manager.url,
        "silences": None
        if read.silences is None
        else sum(silence.state == "active" for silence in read.silences),
        "problem": None if read.problem is None else f"silences unknown: {read.problem}",
    }
    for alert in document["alerts"]:
        if read.silences is None or alert["state"] == "resolved":
            continue
        silence = covering(manager.labels(alert), read.silences)
        if silence is not None:
            alert["silence"] = silence.entry()


def feedback(
    project: Project, service: str, env: str, path: Path, *, read_only: bool = False
) -> dict[str, Any]:
    """Ground truth arriving late: ``request_id,label`` rows, stored to join predictions."""
    from core.monitoring.collector_process import metrics_path
    from store.metrics.store import Feedback, MetricStore

    project.config.check_names(service=service, env=env)
    if read_only:
        raise ReadOnlyError("read-only mode: feedback refused")
    rows = _feedback_rows(path)
    now = int(time.time())
    with MetricStore.open(metrics_path(project)) as store:
        stored = store.add_feedback(
            Feedback(service, env, request_id, label, now) for request_id, label in rows
        )
    return {"ok": True, "service": service, "env": env, "rows": stored}


def _feedback_rows(path: Path) -> list[tuple[str, str]]:
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise UsageError(f"{path}: cannot read it ({exc.strerror})") from exc
    rows: list[tuple[str, str]] = []
    bad: list[str] = []
    for number, row in enumerate(csv.reader(text.splitlines()), start=1):
        if not row or (number == 1 and [c.strip().lower() for c in row] == ["request_id", "label"]):
            continue
        if len(row) != 2 or not row[0].strip() or not row[1].strip():
            bad.append(f"{path}:{number}: expected request_id,label, got {','.join(row)!r}")
            if len(bad) == 3:
                break
            continue
        rows.append((row[0].strip(), row[1].strip()))
    if bad:
        raise UsageError("; ".join(bad))
    if not rows:
        raise UsageError(f"{path}: no request_id,label rows")
    return rows


def backtest(project: Project, service: str, env: str, series: Path, metric: str) -> dict[str, Any]:
    """Replay a recorded ``timestamp,value`` series through the effective policy."""
    from core.alerts.backtest import backtest as _backtest
    from core.alerts.backtest import (
        backtest_document,
        infer_interval,
        read_series_csv,
        rules_reading,
    )
    from core.alerts.policies import effective_policy

    project.config.check_names(service=service, env=env)
    policy = effective_policy(project, service, env).values
    rows = read_series_csv(series)
    interval = infer_interval(t for t, _ in rows)
    found = _backtest(rows, metric, policy, service=service, env=env, interval=interval)
    return backtest_document(
        found,
        service=service,
        env=env,
        metric=metric,
        rules=rules_reading(metric, policy),
        interval=interval,
        points=len({t for t, _ in rows}),
    )
