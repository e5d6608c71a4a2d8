"""The drift of the release live in an environment, as ``relman``'s monitor screen shows it.

:func:`live_drift` answers ``core.api.drift``: the same window, record count and limit as
the collector's drift rule (the effective policy), every feature's PSI and KS and the class
shares (:mod:`core.drift.stats`), read from the ledger and the metric store without writing either,
against the release's training data from the DVC cache (:mod:`core.drift.reference`).
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

from core.drift.reference import cached_reference_frame
from core.drift.stats import FeatureDrift, ShareDrift, live_report
from core.errors import ReleaseError
from core.targets.monitor_log import MonitorRow

if TYPE_CHECKING:
    from core.config.model import Project

__all__ = ["live_drift"]


def live_drift(
    project: Project, service: str, env: str, *, now: float | None = None
) -> dict[str, Any]:
    """Per-feature PSI and KS, and the prediction class shares, of the release live in
    ``env`` over the drift window of the effective policy, against its training data.

    Reads the ledger and the metric store read-only (a store not created yet is no records,
    and is not created). What cannot be measured is said in ``note`` with ``measured``
    false (nothing deployed, too few records, training data not in the DVC cache), never
    raised; an unknown service or environment is a UsageError.
    """
    from core.alerts.policies import effective_policy
    from core.ledger.releases import open_ledger
    from core.monitoring.collector_process import metrics_path

    project.config.check_names(service=service, env=env)
    policy: dict[str, Any] = dict(effective_policy(project, service, env).values)
    window = int(policy["drift_window_minutes"])
    needed = int(policy["drift_min_records"])
    limit = float(policy["drift_psi_max"])
    document: dict[str, Any] = {
        "ok": True,
        "service": service,
        "env": env,
        "release": None,
        "version": None,
        "window_minutes": window,
        "min_records": needed,
        "psi_max": limit,
        "records": 0,
        "reference": None,
        "measured": False,
        "note": "",
        "features": [],
        "predictions": None,
    }
    with open_ledger(project, read_only=True) as ledger:
        state = ledger.environment_state(service, env)
        release = state.release_id if state is not None else None
        datasets = [a for a in ledger.artifacts(release) if a.kind == "dataset"] if release else []
    if release is None or state is None:
        document["note"] = f"nothing is deployed in {env}: no drift to measure"
        return document
    document.update(release=release, version=state.version)
    if not datasets:
        document["note"] = (
            f"release {release} records no dataset: there is no training data to compare "
            f"with; declare the service's data in relman.toml"
        )
        return document
    data = datasets[0]
    document["reference"] = {"path": data.path, "md5": data.md5, "rows": None}
    until = int(now if now is not None else time.time())
    store_path = metrics_path(project)
    records: list[Any] = []
    if store_path.exists():  # no store yet: no records, and no file made for nothing
        from store.metrics.store import MetricStore

        with MetricStore.open(store_path, readonly=True) as store:
            records = store.records(service, env, until - window * 60, until, release=release)
    document["records"] = len(records)
    if len(records) < needed:
        document["note"] = (
            f"{len(records)} records of {release} in the last {window} min; drift is measured "
            f"from {needed} (drift_min_records)"
        )
        return document
    try:
        reference = cached_reference_frame(project.root, data.md5 or "", data.path)
    except ReleaseError as exc:
        document["note"] = f"drift not measured: {exc}"
        return document
    rows = [MonitorRow(r.t, r.request_id, r.features, r.prediction, r.target) for r in records]
    report = live_report(reference, rows, label=project.config.services[service].label)
    document["reference"]["rows"] = report.reference_rows
    document["measured"] = True
    document["features"] = [_feature_entry(f, limit) for f in report.features]
    document["predictions"] = _predictions_entry(report.predictions, limit)
    if not report.features:
        document["note"] = "no logged feature is a numeric column of the training data"
    return document


def _state(value: float | None, limit: float) -> str:
    if value is None:
        return "unmeasured"
    return "drift" if value > limit else "ok"


def _feature_entry(feature: FeatureDrift, limit: float) -> dict[str, Any]:
    return {**feature.to_dict(), "state": _state(feature.psi, limit)}


def _predictions_entry(shares: ShareDrift | None, limit: float) -> dict[str, Any] | None:
    if shares is None:
        return None
    classes = sorted(set(shares.reference) | set(shares.live))
    moved = sorted(
        classes,
        key=lambda c: -abs(shares.live.get(c, 0.0) - shares.reference.get(c, 0.0)),
    )
    return {
        "psi": shares.distance,
        "state": _state(shares.distance, limit),
        "live_n": shares.live_n,
        "classes": [
            {
                "name": name,
                "live": shares.live.get(name, 0.0),
                "reference": shares.reference.get(name, 0.0),
            }
            for name in moved
        ],
        "detail": shares.detail,
    }
