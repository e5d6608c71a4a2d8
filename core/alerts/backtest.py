"""`relman policy backtest`: replay a recorded ``timestamp,value`` series through the rules of
an effective policy that read that metric, and list every alert state change with its time.

The series' interval is inferred (:func:`infer_interval`: the median gap between
timestamps) and said. Samples finer than a minute are averaged per minute, as the
collector's rollups are, and handed to the trend test as that minute's samples; a series
at a minute or coarser (5-minute data) is replayed point by point, the rules' durations in
minutes turned into points of that interval. The series is its own history: each point is
compared with the points before it at the same time of earlier days or weeks
(core.alerts.seasonal), as the collector compares with the metric store. The series is one
release: without an earlier day, the leak baseline is learned from its first points. Pure
apart from reading the CSV.
"""

from __future__ import annotations

import csv
import itertools
import math
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from statistics import fmean
from typing import Any

from core.alerts.alert_state import iso_minute
from core.alerts.alerting import METRICS, Policy, Rules
from core.alerts.seasonal import SeriesHistory
from core.errors import UsageError

MAX_BAD_LINES = 3


@dataclass(frozen=True, slots=True)
class BacktestAlert:
    """One state change of one alert during the replay, at minute ``t`` (Unix seconds)."""

    t: int
    rule: str
    kind: str
    state: str
    detail: str
    value: float | None
    threshold: float | None
    baseline: float | None
    grouped_with: str | None = None
    reopened: bool = False

    @property
    def pages(self) -> bool:
        """Whether on-call is paged: it starts firing (a re-opening within the cooldown
        included: the webhook posts it again) without joining an incident of its cause."""
        return self.state == "firing" and not self.grouped_with

    @property
    def at(self) -> str:
        return iso_minute(self.t)

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "at": self.at}


def rules_reading(metric: str, policy: Policy) -> list[str]:
    """The names of the rules of ``policy`` that read ``metric`` (maybe none, e.g. rps)."""
    if metric not in METRICS:
        raise UsageError(f"unknown metric {metric!r}; one of {', '.join(METRICS)}")
    rules = Rules(policy, service="-", env="-")
    return [name for name in rules.names if rules.rule_metric(name) == metric]


def infer_interval(times: Iterable[int | float]) -> int:
    """Seconds between two points of a series: the median gap between its distinct
    timestamps, rounded to a whole second (and to whole minutes from a minute up); 60 when
    there are fewer than two."""
    ordered = sorted({int(t) for t in times})
    gaps = sorted(b - a for a, b in itertools.pairwise(ordered))
    if not gaps:
        return 60
    gap = gaps[len(gaps) // 2]
    if gap >= 60:
        return max(60, round(gap / 60) * 60)
    return max(1, gap)


def describe_interval(seconds: int) -> str:
    """``5 s``, ``1 min``, ``5 min``, ``1 h``."""
    if seconds < 60:
        return f"{seconds} s"
    if seconds % 3600 == 0:
        return f"{seconds // 3600} h"
    if seconds % 60 == 0:
        return f"{seconds // 60} min"
    return f"{seconds} s"


def per_minute(series: Iterable[tuple[int | float, float]]) -> list[tuple[int, float]]:
    """Mean of the finite values of each minute (minute start, Unix seconds), in order."""
    return [(minute, fmean(values)) for minute, values in _minutes(series)]


def _minutes(series: Iterable[tuple[int | float, float]]) -> list[tuple[int, list[float]]]:
    """The finite values of each minute, in time order, by minute."""
    found: dict[int, list[tuple[float, float]]] = {}
    for t, value in series:
        if value is None or not math.isfinite(value):
            continue
        minute = int(t) - int(t) % 60
        found.setdefault(minute, []).append((float(t), float(value)))
    return [(minute, [v for _, v in sorted(found[minute])]) for minute in sorted(found)]


def _points(
    series: list[tuple[int, float]], interval: int
) -> list[tuple[int, float, list[float] | None]]:
    """(t, value, samples) to replay: per minute below a minute's interval (the samples
    are the minute's values), else each point as it is (the last value of a repeated
    timestamp)."""
    if interval < 60:
        return [(minute, fmean(values), values) for minute, values in _minutes(series)]
    last: dict[int, float] = {}
    for t, value in series:
        if value is not None and math.isfinite(value):
            last[int(t)] = float(value)
    return [(t, last[t], None) for t in sorted(last)]


def backtest(
    series: list[tuple[int, float]],
    metric: str,
    policy: Policy,
    *,
    service: str,
    env: str,
    interval: int | None = None,
) -> list[BacktestAlert]:
    """Every alert state change the rules reading ``metric`` would have made on ``series``
    (``(unix seconds, value)``, any order, at any regular ``interval``: inferred when
    None). Raises UsageError for an unknown metric or one that no rule of the policy reads."""
    names = rules_reading(metric, policy)
    if not names:
        raise UsageError(
            f"no alert rule reads {metric}; rules read p99_ms, error_rate and the "
            "policy's leak_metric"
        )
    step = interval if interval is not None else infer_interval(t for t, _ in series)
    rules = Rules(policy, service=service, env=env, only=names, interval=max(step, 60))
    history = SeriesHistory()
    out: list[BacktestAlert] = []
    for t, value, samples in _points(series, step):
        point: dict[str, float | None] = dict.fromkeys(METRICS)
        point[metric] = value
        found = rules.evaluate(
            t,
            point,
            release=None,
            up=True,
            samples={metric: samples} if samples else None,
            history=history,
        )
        history.add(metric, t, value)
        for tr in found:
            out.append(
                BacktestAlert(
                    tr.since_minute,
                    tr.rule,
                    tr.kind,
                    tr.state,
                    tr.detail,
                    tr.value,
                    tr.threshold,
                    tr.baseline,
                    tr.grouped_with,
                    tr.reopened,
                )
            )
    return out


def _timestamp(text: str) -> float | None:
    try:
        value = float(text)
    except ValueError:
        pass
    else:
        return value if math.isfinite(value) else None
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.timestamp()


def read_series_csv(path: str | Path) -> list[tuple[int, float]]:
    """``timestamp,value`` rows (a header row of those names is optional); timestamps in
    Unix seconds or ISO-8601 (UTC unless an offset is given). An empty value is a missing
    sample. Bad rows raise UsageError naming the file and line (``series.csv:14: 'abc' is
    not a number``), up to three of them."""
    name = str(path)
    try:
        text = Path(path).read_text(encoding="utf-8-sig")
    except UnicodeDecodeError:
        raise UsageError(f"{name}: not UTF-8 text; expected rows of timestamp,value") from None
    except OSError as exc:
        raise UsageError(f"{name}: cannot read the series ({exc.strerror or exc})") from None
    rows: list[tuple[int, float]] = []
    bad: list[str] = []
    first = True
    reader = csv.reader(text.splitlines())
    try:
        for row in reader:
            line = reader.line_num
            cells = [cell.strip() for cell in row]
            if not cells or all(not cell for cell in cells):
                continue
            header = first and [c.lower() for c in cells] == ["timestamp", "value"]
            first = False
            if header:
                continue
            problem = _bad_cells(cells)
            if problem:
                bad.append(f"{name}:{line}: {problem}")
                if len(bad) >= MAX_BAD_LINES:
                    break
                continue
            t = _timestamp(cells[0])
            assert t is not None  # checked by _bad_cells
            if cells[1] and cells[1].lower() != "nan":
                rows.append((int(t), float(cells[1])))
    except csv.Error as exc:
        bad.append(f"{name}:{reader.line_num}: {exc}")
    if bad:
        more = " (stopped there)" if len(bad) >= MAX_BAD_LINES else ""
        raise UsageError("; ".join(bad) + more + "; expected rows of timestamp,value")
    if not rows:
        raise UsageError(f"{name}: no timestamp,value rows")
    return rows


def _bad_cells(cells: list[str]) -> str | None:
    if len(cells) != 2:
        return f"expected 2 columns (timestamp,value), got {len(cells)}"
    stamp, value = cells
    if _timestamp(stamp) is None:
        return f"{stamp!r} is not a timestamp (Unix seconds or ISO-8601)"
    if value and value.lower() != "nan":
        try:
            number = float(value)
        except ValueError:
            return f"{value!r} is not a number"
        if not math.isfinite(number):
            return f"{value!r} is not a finite number"
    return None


def backtest_document(
    alerts: list[BacktestAlert],
    *,
    service: str,
    env: str,
    metric: str,
    rules: list[str],
    interval: int | None = None,
    points: int | None = None,
) -> dict[str, Any]:
    """The ``--json`` answer of `relman policy backtest` (docs/json.md)."""
    document: dict[str, Any] = {
        "ok": True,
        "service": service,
        "env": env,
        "metric": metric,
        "rules": rules,
        "alerts": [a.to_dict() for a in alerts],
        "pages": sum(1 for a in alerts if a.pages),
    }
    if interval is not None:
        document["interval_seconds"] = interval
        document["interval"] = describe_interval(interval)
    if points is not None:
        document["points"] = points
    return document


def summarize(alerts: list[BacktestAlert]) -> Mapping[str, int]:
    """How many alerts of each rule fired during the replay."""
    counts: dict[str, int] = {}
    for alert in alerts:
        if alert.state == "firing":
            counts[alert.rule] = counts.get(alert.rule, 0) + 1
    return counts
