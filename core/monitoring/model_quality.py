"""Model quality in the collector: drift and live accuracy of the release live in one
(service, environment), measured for the newest minute of each pass.

- **Drift**: PSI per feature, and of the prediction class mix (``prediction``), of the
  records of the last ``drift_window_minutes`` against the live release's training data
  (read from the DVC cache once per release), as core.drift.stats's
  :func:`~core.drift.stats.live_report`
  measures it (the monitor screen shows the same), once ``drift_min_records`` are logged.
- **Live accuracy**: the share of the predictions over the same window that the feedback
  joined to them confirms, against the release's offline accuracy.

What cannot be measured is None, and said once: the other rules go on.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from core.errors import REPORTED


class Visit(Protocol):
    """What a measure needs of the collector's visit of one (service, environment)
    (core.monitoring.collector_state.Visit is one)."""

    service: str
    env: str
    release: str | None
    policy: dict[str, Any]
    now: int

    def once(self, line: str) -> None: ...


# A training-data reference that could not be read is looked for again after this long.
REFERENCE_RETRY = 600


@dataclass
class ModelQuality:
    """The drift and live-accuracy measures of one (service, env) of the project at
    ``root``; keeps the live release's training data between passes."""

    root: Path
    # The column of the training data the model predicts ([services.NAME] label).
    label: str | None = None
    # (release, training data, when it was read); no data when it could not be read.
    reference: tuple[str, dict[str, list[Any]], int] | None = None

    def drift(self, store: Any, ledger: Any, visit: Visit) -> dict[str, float] | None:
        """PSI per feature (and ``prediction`` for the class mix) over the drift window,
        against the training data of the live release; None until enough records, or when
        it cannot be measured (said once: the other rules go on)."""
        if visit.release is None:
            return None
        window = int(visit.policy["drift_window_minutes"]) * 60
        now = visit.now
        records = store.records(visit.service, visit.env, now - window, now, release=visit.release)
        if len(records) < int(visit.policy["drift_min_records"]):
            return None
        try:
            reference = self._reference(ledger, visit.release, now)
            return _psi_of(reference, records, self.label) if reference else None
        except Exception as exc:  # not in the DVC cache, a damaged table, ...
            reason = str(exc) if isinstance(exc, REPORTED) else f"{type(exc).__name__}: {exc}"
            visit.once(f"drift not measured: {reason}")
            return None

    def _reference(self, ledger: Any, release: str, now: int) -> dict[str, Any]:
        """The live release's training data, read once per release (looked for again every
        REFERENCE_RETRY seconds while it cannot be read: `dvc pull` may bring it)."""
        from core.drift.reference import reference_frame

        known = self.reference
        fresh = known is not None and (bool(known[1]) or now - known[2] < REFERENCE_RETRY)
        if known is not None and known[0] == release and fresh:
            return known[1]
        self.reference = (release, {}, now)
        datasets = [a for a in ledger.artifacts(release) if a.kind == "dataset"]
        if not datasets:
            return {}
        frame = reference_frame(self.root, datasets[0].md5, datasets[0].path)
        self.reference = (release, frame, now)
        return frame

    def accuracy(self, store: Any, ledger: Any, visit: Visit) -> tuple[float, float] | None:
        """(live accuracy over the drift window, the release's offline accuracy)."""
        if visit.release is None:
            return None
        window = int(visit.policy["drift_window_minutes"]) * 60
        pairs = store.feedback_join(visit.service, visit.env, visit.now - window, visit.now)
        if len(pairs) < int(visit.policy["drift_min_records"]):
            return None
        from core.lineage.metrics_file import flatten_metrics
        from store import ReleaseNotFound

        try:
            metrics = ledger.get_release(visit.release).metrics
            flat = _flat(flatten_metrics, metrics)
            offline = [v for k, v in flat.items() if k.endswith("accuracy")]
            if not offline:
                return None
            live = sum(1 for prediction, label in pairs if prediction == label) / len(pairs)
            return live, float(offline[0])
        except ReleaseNotFound:
            return None
        except Exception as exc:  # a metrics file of an odd shape: the other rules go on
            visit.once(f"live accuracy not measured: {type(exc).__name__}: {exc}")
            return None


def _psi_of(
    reference: dict[str, list[Any]], records: list[Any], label: str | None
) -> dict[str, float]:
    """PSI per feature of the stored records against the reference, and the distance of
    the prediction mix (``prediction``) against its label column."""
    from core.drift.stats import live_report
    from core.targets.monitor_log import MonitorRow

    rows = [MonitorRow(r.t, r.request_id, r.features, r.prediction, r.target) for r in records]
    report = live_report(reference, rows, label=label)
    found = {f.name: f.psi for f in report.features if f.psi is not None}
    if report.predictions is not None and report.predictions.distance is not None:
        found["prediction"] = report.predictions.distance
    return found


def _flat(flatten: Callable[[Any], dict[str, Any]], metrics: dict[str, Any]) -> dict[str, Any]:
    flat: dict[str, Any] = {}
    for values in metrics.values():
        if isinstance(values, dict):
            flat.update(flatten(values))
    return flat
