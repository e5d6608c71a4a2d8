"""`relman policy backtest`: replay a recorded ``timestamp,value`` series through the rules of
an effective policy that read that metric, and list every alert state change with its time.

Samples of any cadence are averaged per minute (the collector's rollups are per minute too);
minutes without samples are skipped, as the rules skip minutes without data. The series is
one release: the leak baseline is learned from its first minutes. Pure apart from reading
the CSV.
"""

from __future__ import annotations

import csv
import math
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from core.alerts.alert_state import iso_minute
from core.alerts.alerting import METRICS, Policy, Rules
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


def per_minute(series: Iterable[tuple[int | float, float]]) -> list[tuple[int, float]]:
    """Mean of the finite values of each minute (minute start, Unix seconds), in order."""
    sums: dict[int, list[float]] = {}
    for t, value in series:
        if value is None or not math.isfinite(value):
            continue
        minute = int(t) - int(t) % 60
        acc = sums.setdefault(minute, [0.0, 0.0])
        acc[0] += value
        acc[1] += 1
    return [(minute, total / count) for minute, (total, count) in sorted(sums.items())]


def backtest(
    series: list[tuple[int, float]],
    metric: str,
    policy: Policy,
    *,
    service: str,
    env: str,
) -> list[BacktestAlert]:
    """Every alert state change the rules reading ``metric`` would have made on ``series``
    (``(unix seconds, value)``, any order and cadence). Raises UsageError for an unknown
    metric or one that no rule of the policy reads."""
    names = rules_reading(metric, policy)
    if not names:
        raise UsageError(
            f"no alert rule reads {metric}; rules read p99_ms, error_rate and the "
            "policy's leak_metric"
        )
    rules = Rules(policy, service=service, env=env, only=names)
    out: list[BacktestAlert] = []
    for minute, value in per_minute(series):
        point: dict[str, float | None] = dict.fromkeys(METRICS)
        point[metric] = value
        for tr in rules.evaluate(minute, point, release=None, up=True):
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
    alerts: list[BacktestAlert], *, service: str, env: str, metric: str, rules: list[str]
) -> dict[str, Any]:
    """The ``--json`` answer of `relman policy backtest`."""
    return {
        "ok": True,
        "service": service,
        "env": env,
        "metric": metric,
        "rules": rules,
        "alerts": [a.to_dict() for a in alerts],
    }


def summarize(alerts: list[BacktestAlert]) -> Mapping[str, int]:
    """How many alerts of each rule fired during the replay."""
    counts: dict[str, int] = {}
    for alert in alerts:
        if alert.state == "firing":
            counts[alert.rule] = counts.get(alert.rule, 0) + 1
    return counts
