"""Data drift: the live inputs and predictions of a release against its training data.

The reference is the dataset the live release was built from, read from the local DVC cache
by the md5 the ledger recorded for it (:func:`reference_frame`), so it is the exact data of
that release whatever the working tree holds now. The measures:

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

:func:`live_drift` is what ``relman``'s monitor screen shows (``core.api.drift``): the same
window, record count and limit as the collector's drift rule (the effective policy), every
feature's PSI and KS and the class shares, read from the metric store without writing it.
"""

from __future__ import annotations

import csv
import io
import json
import math
import re
import threading
import time
from collections import Counter, OrderedDict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from core.errors import ConfigError, ReleaseError
from core.monitor_log import MonitorRow, label_text

if TYPE_CHECKING:
    from core.config import Project

__all__ = [
    "EPSILON",
    "MIN_LIVE",
    "DriftReport",
    "FeatureDrift",
    "ShareDrift",
    "cache_object_path",
    "class_shares",
    "drift_report",
    "ks",
    "live_drift",
    "live_report",
    "psi",
    "reference_frame",
    "share_distance",
]

EPSILON = 1e-4
_MD5 = re.compile(r"[0-9a-f]{32}(\.dir)?")
_TABLES = {".csv": ",", ".tsv": "\t"}
# Live values below which a drift measure is not taken.
MIN_LIVE = 30

Column = list[float | str]


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


# ---------------------------------------------------------------------------- reference


def reference_frame(root: Path, md5: str | None, path: str) -> dict[str, Column]:
    """The columns of the dataset ``path`` at ``md5``, read from the local DVC cache.

    ``md5`` is the hash the release recorded (``….dir`` for a directory, whose CSV/TSV files
    are read in order and stacked). A column whose every non-empty cell is a number is a
    column of floats (empty cells NaN), any other a column of text. ConfigError (exit 2)
    when the object is not in the cache (``dvc pull``), or is not a table.
    """
    if not md5 or not _MD5.fullmatch(md5):
        raise ConfigError(
            f"{path}: the release records no usable md5 ({md5!r}), so its training data "
            "cannot be found in the DVC cache"
        )
    cache = _cache_dir(root)
    if md5.endswith(".dir"):
        listing = _read_object(cache, md5, path)
        try:
            entries = json.loads(listing)
            files = sorted(
                (str(e["relpath"]), str(e["md5"]))
                for e in entries
                if Path(str(e["relpath"])).suffix.lower() in _TABLES
            )
        except (ValueError, TypeError, KeyError) as exc:
            raise ConfigError(
                f"{path}: the DVC cache's listing of {md5} is damaged ({exc}); "
                "remove it and run 'dvc pull'"
            ) from exc
        if not files:
            raise ConfigError(f"{path}: the directory holds no .csv or .tsv file to compare with")
        tables = [
            _parse_table(_read_object(cache, oid, f"{path}/{rel}"), f"{path}/{rel}")
            for rel, oid in files
        ]
    else:
        if Path(path).suffix.lower() not in _TABLES:
            raise ConfigError(
                f"{path}: drift is measured against CSV or TSV training data; "
                "point the service's dataset at a .csv file"
            )
        tables = [_parse_table(_read_object(cache, md5, path), path)]
    return _columns(tables)


def cache_object_path(root: Path, md5: str) -> Path:
    """Where DVC 3 keeps the object ``md5`` of the project at ``root``."""
    return _cache_dir(root) / "files" / "md5" / md5[:2] / md5[2:]


def _read_object(cache: Path, md5: str, path: str) -> str:
    # DVC 3's layout first, then DVC 2's (objects not yet migrated).
    for candidate in (cache / "files" / "md5" / md5[:2] / md5[2:], cache / md5[:2] / md5[2:]):
        try:
            raw = candidate.read_bytes()
        except (FileNotFoundError, NotADirectoryError):
            continue
        except OSError as exc:
            raise ConfigError(f"{path}: cannot read {candidate}: {exc.strerror}") from exc
        return raw.decode("utf-8-sig", errors="replace")
    raise ConfigError(
        f"{path} (md5 {md5}) is not in the local DVC cache {cache}; "
        "run 'dvc pull' at the release's commit to fetch its training data"
    )


def _cache_dir(root: Path) -> Path:
    """``.dvc/cache``, or the ``[cache] dir`` of .dvc/config.local or .dvc/config."""
    dvc = root / ".dvc"
    for name in ("config.local", "config"):
        folder = _config_value(dvc / name, "cache", "dir")
        if folder:
            given = Path(folder).expanduser()
            return given if given.is_absolute() else (dvc / given).resolve()
    return dvc / "cache"


def _config_value(path: Path, section: str, key: str) -> str | None:
    """A value of DVC's INI-like config (sections ``[cache]``, keys indented or not)."""
    try:
        lines = path.read_text().splitlines()
    except OSError:
        return None
    current = None
    for line in lines:
        stripped = line.strip()
        if stripped.startswith("[") and stripped.endswith("]"):
            current = stripped[1:-1].strip().strip("'\"")
        elif current == section and "=" in stripped and not stripped.startswith(("#", ";")):
            name, _, value = stripped.partition("=")
            if name.strip() == key:
                return value.strip().strip("'\"") or None
    return None


def _parse_table(text: str, path: str) -> list[dict[str, str]]:
    delimiter = _TABLES.get(Path(path).suffix.lower(), ",")
    reader = csv.DictReader(io.StringIO(text), delimiter=delimiter)
    try:
        rows = [dict(row) for row in reader]
    except csv.Error as exc:
        raise ConfigError(f"{path}:{reader.line_num}: not valid CSV: {exc}") from exc
    if not reader.fieldnames:
        raise ConfigError(f"{path}: empty, no header line")
    return rows


def _columns(tables: list[list[dict[str, str]]]) -> dict[str, Column]:
    names: dict[str, None] = {}
    for table in tables:
        for row in table:
            names.update((name, None) for name in row if name is not None)
    cells = {name: [row.get(name) or "" for t in tables for row in t] for name in names}
    return {name: _typed(values) for name, values in cells.items()}


def _typed(cells: list[str]) -> Column:
    numbers: list[float | str] = []
    for cell in cells:
        text = cell.strip()
        if not text:
            numbers.append(math.nan)
            continue
        try:
            numbers.append(float(text))
        except ValueError:
            return [str(c) for c in cells]
    return numbers


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


# ---------------------------------------------------------------------------- live drift


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


# Reference frames by (cache folder, md5, path): an md5 names immutable content, so a frame
# read once serves every later poll; the two newest are kept (a promotion brings a second).
_FRAMES: OrderedDict[tuple[str, str, str], dict[str, Column]] = OrderedDict()
_FRAMES_LOCK = threading.Lock()
_FRAMES_KEPT = 2


def _cached_frame(root: Path, md5: str, path: str) -> dict[str, Column]:
    key = (str(_cache_dir(root)), md5, path)
    with _FRAMES_LOCK:
        if key in _FRAMES:
            _FRAMES.move_to_end(key)
            return _FRAMES[key]
    frame = reference_frame(root, md5, path)
    with _FRAMES_LOCK:
        _FRAMES[key] = frame
        while len(_FRAMES) > _FRAMES_KEPT:
            _FRAMES.popitem(last=False)
    return frame


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
    from core.collector_process import metrics_path
    from core.policies import effective_policy
    from core.releases import open_ledger

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
        from store.metrics import MetricStore

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
        reference = _cached_frame(project.root, data.md5 or "", data.path)
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
