"""Data drift: the live inputs and predictions of a release against its training data.

The reference is the dataset the live release was built from, read from the local DVC cache
(:mod:`core.drift.reference`). The measures:

- **PSI** (population stability index) per feature, on ``bins`` bins cut at the reference's
  quantiles (so each holds ~1/bins of the reference; tied quantiles merge bins)::

      PSI = sum_i (q_i - p_i) * ln(q_i / p_i)

  with ``p_i`` the reference share and ``q_i`` the live share of bin ``i``, each floored at
  ``EPSILON`` (1e-4) so that an empty bin counts as a large but finite shift. Bins are
  right-closed, the first and last open-ended. Customary reading: < 0.1 stable, 0.1-0.25 a
  moderate shift, > 0.25 a major one.
- **KS**: the two-sample Kolmogorov-Smirnov statistic, the largest distance between the two
  empirical distribution functions (0 same, 1 disjoint); scipy's ``ks_2samp`` statistic.
- **Prediction shares**: the share of each class among live predictions against the label
  shares of the reference, compared by the same PSI over the classes (:func:`share_distance`),
  so one threshold scale serves features and predictions.

:func:`drift_report` takes them per feature and for the predictions; :func:`live_report` is
how the collector and the monitor screen (:mod:`core.monitoring.drift_live`) call it on logged rows.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from core.targets.monitor_log import MonitorRow, label_text

if TYPE_CHECKING:
    from core.drift.reference import Column

__all__ = [
    "EPSILON",
    "MIN_LIVE",
    "DriftReport",
    "FeatureDrift",
    "ShareDrift",
    "class_shares",
    "drift_report",
    "ks",
    "live_report",
    "psi",
    "share_distance",
]

EPSILON = 1e-4
# Live values below which a drift measure is not taken.
MIN_LIVE = 30


# ---------------------------------------------------------------------------- measures


def psi(reference: Sequence[float], live: Sequence[float], bins: int = 10) -> float:
    """Population stability index of ``live`` against ``reference`` (see the module doc).

    NaNs are left out; ValueError when either side has no value left or ``bins`` < 2.
    """
    import numpy as np

    if bins < 2:
        raise ValueError("psi needs at least 2 bins")
    ref = _finite(reference)
    cur = _finite(live)
    edges = np.unique(np.quantile(ref, np.linspace(0.0, 1.0, bins + 1)[1:-1]))
    # searchsorted(side="left") puts a value equal to an edge in the bin below: (e_i-1, e_i].
    p = np.bincount(np.searchsorted(edges, ref, side="left"), minlength=len(edges) + 1)
    q = np.bincount(np.searchsorted(edges, cur, side="left"), minlength=len(edges) + 1)
    return _psi_of_shares(p / len(ref), q / len(cur))


def ks(reference: Sequence[float], live: Sequence[float]) -> float:
    """The two-sample Kolmogorov-Smirnov statistic: max |F_reference(x) - F_live(x)|."""
    import numpy as np

    ref = np.sort(_finite(reference))
    cur = np.sort(_finite(live))
    points = np.concatenate([ref, cur])
    f_ref = np.searchsorted(ref, points, side="right") / len(ref)
    f_cur = np.searchsorted(cur, points, side="right") / len(cur)
    return float(np.max(np.abs(f_ref - f_cur)))


def class_shares(labels: Iterable[object]) -> dict[str, float]:
    """``{class: share}`` of the labels (None left out), classes sorted; {} for none."""
    counts = Counter(label_text(label) for label in labels if not _missing(label))
    total = sum(counts.values())
    return {label: counts[label] / total for label in sorted(counts)} if total else {}


def share_distance(reference: Mapping[str, float], live: Mapping[str, float]) -> float:
    """PSI over the union of classes (a class absent on one side counts as EPSILON)."""
    import numpy as np

    classes = sorted(set(reference) | set(live))
    if not classes:
        raise ValueError("share_distance needs at least one class")
    p = np.array([reference.get(c, 0.0) for c in classes], dtype=float)
    q = np.array([live.get(c, 0.0) for c in classes], dtype=float)
    return _psi_of_shares(p, q)


def _psi_of_shares(p: Any, q: Any) -> float:
    import numpy as np

    p = np.maximum(p, EPSILON)
    q = np.maximum(q, EPSILON)
    return float(np.sum((q - p) * np.log(q / p)))


def _finite(values: Sequence[float]) -> Any:
    import numpy as np

    array = np.asarray(values, dtype=float)
    array = array[np.isfinite(array)]
    if array.size == 0:
        raise ValueError("no finite value to compare")
    return array


def _missing(value: object) -> bool:
    return value is None or value == "" or (isinstance(value, float) and math.isnan(value))


# ---------------------------------------------------------------------------- report


@dataclass(frozen=True)
class FeatureDrift:
    name: str
    psi: float | None
    ks: float | None
    reference_n: int
    live_n: int
    detail: str
    # Means of the values compared (None when a side has none).
    live_mean: float | None = None
    reference_mean: float | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "psi": self.psi,
            "ks": self.ks,
            "reference_n": self.reference_n,
            "live_n": self.live_n,
            "live_mean": self.live_mean,
            "reference_mean": self.reference_mean,
            "detail": self.detail,
        }


@dataclass(frozen=True)
class ShareDrift:
    """Live prediction shares against the reference label shares."""

    distance: float | None  # PSI over the classes
    reference: dict[str, float]
    live: dict[str, float]
    live_n: int
    detail: str

    def to_dict(self) -> dict[str, Any]:
        return {
            "distance": self.distance,
            "reference": dict(self.reference),
            "live": dict(self.live),
            "live_n": self.live_n,
            "detail": self.detail,
        }


@dataclass(frozen=True)
class DriftReport:
    features: list[FeatureDrift]
    predictions: ShareDrift | None
    reference_rows: int
    live_rows: int
    problems: list[str] = field(default_factory=list)

    @property
    def max_psi(self) -> float | None:
        values = [f.psi for f in self.features if f.psi is not None]
        return max(values) if values else None

    def to_dict(self) -> dict[str, Any]:
        return {
            "features": [f.to_dict() for f in self.features],
            "predictions": self.predictions.to_dict() if self.predictions else None,
            "reference_rows": self.reference_rows,
            "live_rows": self.live_rows,
            "max_psi": self.max_psi,
            "problems": list(self.problems),
        }


def drift_report(
    reference: Mapping[str, Sequence[float | str]],
    live_rows: Sequence[MonitorRow],
    *,
    features: Sequence[str],
    label_column: str | None,
    bins: int = 10,
    min_live: int = MIN_LIVE,
) -> DriftReport:
    """PSI and KS per feature, and prediction shares against the reference's labels.

    A measure over fewer than ``min_live`` live values is not taken (None, and the detail
    says so): PSI on a handful of rows is noise, several units large.
    """
    problems: list[str] = []
    reference_rows = max((len(column) for column in reference.values()), default=0)
    results = [
        _feature_drift(name, reference.get(name), live_rows, bins, min_live, problems)
        for name in features
    ]
    predictions = None
    if label_column is not None:
        column = reference.get(label_column)
        predictions = _share_drift(column, label_column, live_rows, min_live, problems)
    return DriftReport(results, predictions, reference_rows, len(live_rows), problems)


def _feature_drift(
    name: str,
    column: Sequence[float | str] | None,
    live_rows: Sequence[MonitorRow],
    bins: int,
    min_live: int,
    problems: list[str],
) -> FeatureDrift:
    live = [v for row in live_rows if (v := row.features.get(name)) is not None]
    live = [v for v in live if math.isfinite(v)]
    if column is None:
        problems.append(f"{name}: not a column of the reference data")
        return FeatureDrift(name, None, None, 0, len(live), f"{name}: not in the reference data")
    ref = [v for v in column if isinstance(v, float) and math.isfinite(v)]
    if not ref:
        problems.append(f"{name}: no numbers in the reference data")
        return FeatureDrift(name, None, None, 0, len(live), f"{name}: not numeric in the reference")
    live_mean = _mean(live) if live else None
    if not live or len(live) < min_live:
        detail = f"{name}: {_too_few(live, min_live)}"
        return FeatureDrift(name, None, None, len(ref), len(live), detail, live_mean, _mean(ref))
    value = psi(ref, live, bins)
    distance = ks(ref, live)
    detail = (
        f"{name}: PSI {value:.3f}, KS {distance:.3f}; mean {_mean(live):.4g} live vs "
        f"{_mean(ref):.4g} reference (n={len(live)} vs {len(ref)})"
    )
    return FeatureDrift(name, value, distance, len(ref), len(live), detail, live_mean, _mean(ref))


def _share_drift(
    column: Sequence[float | str] | None,
    label_column: str,
    live_rows: Sequence[MonitorRow],
    min_live: int,
    problems: list[str],
) -> ShareDrift | None:
    if column is None:
        problems.append(f"{label_column}: the label column is not in the reference data")
        return None
    reference = class_shares(column)
    predictions = [row.prediction for row in live_rows if row.prediction is not None]
    live = class_shares(predictions)
    if not reference:
        problems.append(f"{label_column}: no labels in the reference data")
        return None
    if not live or len(predictions) < min_live:
        detail = f"predictions: {_too_few(predictions, min_live)}"
        return ShareDrift(None, reference, live, len(predictions), detail)
    distance = share_distance(reference, live)
    classes = set(reference) | set(live)
    moved = max(sorted(classes), key=lambda c: abs(live.get(c, 0.0) - reference.get(c, 0.0)))
    total_variation = sum(abs(live.get(c, 0.0) - reference.get(c, 0.0)) for c in classes) / 2
    detail = (
        f"predictions: PSI {distance:.3f} over {len(classes)} classes (total variation "
        f"{total_variation:.2f}); most moved: {moved} {live.get(moved, 0.0):.0%} live vs "
        f"{reference.get(moved, 0.0):.0%} reference (n={len(predictions)})"
    )
    return ShareDrift(distance, reference, live, len(predictions), detail)


def _too_few(values: Sequence[object], min_live: int) -> str:
    if not values:
        return "no live values yet"
    return f"only {len(values)} live values, fewer than {min_live}: not measured"


def _mean(values: Sequence[float]) -> float:
    return math.fsum(values) / len(values)


# ---------------------------------------------------------------------------- on logged rows


def live_report(
    reference: Mapping[str, Column], rows: Sequence[MonitorRow], *, label: str | None = None
) -> DriftReport:
    """The drift of logged ``rows`` against a reference frame, as the collector measures it:
    every numeric column the rows log is a feature, except ``label``, the column the model
    predicts (``label`` in the service's relman.toml table), which the predictions are
    compared with; without it, the first text column the rows do not log is taken for it."""
    numeric = [
        name
        for name, column in reference.items()
        if column and all(isinstance(v, int | float) for v in column[:20])
    ]
    logged = {name for row in rows for name in row.features}
    if label is None:
        label = next((n for n in reference if n not in numeric and n not in logged), None)
    features = [name for name in numeric if name in logged and name != label]
    return drift_report(reference, rows, features=features, label_column=label)
