"""The regression rule: the series well above (or, for a drop, below) what the environment
did before (a seasonal :class:`~core.alerts.seasonal.Expectation`), by a ratio and in
spreads, so that it means the same on any metric in any unit.

Three windows, as multi-window alerting does (Google's SRE Workbook, "Alerting on SLOs":
the shorter the window, the larger the deviation it needs):

- **points** (the usual tier): ``value >= ratio * level`` and ``(value - level) / spread >=
  z`` (the spread floored at ``min_spread`` of the level: a very steady series does not
  turn every wiggle into many sigmas), and, rising, above the usual peak around this time
  (``Expectation.peak``: a daily job, or the bursts of a bursty series, reach it every day);
  sustained after ``for_points`` such points in a row. Hysteresis: once sustained, a point
  still breaches while it is at least half as far from the level, by both measures, so a
  value hovering at the limit opens one alert and resolves once.
- **every day**: rising, neither tier breaches while the value is no further above the level
  than the series rises on a usual day (``Expectation.day_rise``: the median, over the last
  week, of each day's highest rise of an hour above its median, core.alerts.seasonal): a
  series that bursts to 100 % CPU at any hour, every day, does not page at each burst;
  what has happened every day is not an incident.
- **severe**: ``severe_points`` points (one, at five-minute data) at least ``severe_ratio``
  times the level, ``severe_z`` spreads from it and ``ratio`` times the usual peak: a
  deviation that no noise of the series explains fires without waiting.
- **window**: the median of the last ``window_points`` points against the level,
  ``ratio`` times and ``z`` standard errors of such a median away
  (``sqrt(pi / 2) * spread / sqrt(n)``): a level that moved, however the single points
  scatter (the drop rule judges by it alone).

The detail line says what it compared, e.g. ``p95 243 ms vs 41 ms this hour yesterday
(x5.9, 12 sigma)``, ``...: severe, at once`` or ``p95 162 ms, median of the last 60 min,
vs 50 ms this hour, last 4 days (x3.2, 5.1 sigma)``. Without an expectation (no history
yet) it holds no opinion: not breaching, and the line says so. Pure, state in plain JSON
like core.alerts.detect.
"""

from __future__ import annotations

import bisect
import math
from collections import deque
from collections.abc import Mapping
from typing import Any, Literal

from core.alerts.detect import Streak, Verdict, format_value
from core.alerts.seasonal import Expectation

Direction = Literal["above", "below"]
# Standard error of the median of n normal points, in sigmas times sqrt(n).
MEDIAN_SE = math.sqrt(math.pi / 2)


class Regression(Streak):
    """The series far from its expectation: for ``for_points`` points, for ``severe_points``
    extreme ones, or in the median of ``window_points`` (see the module doc)."""

    kind = "regression"

    def __init__(
        self,
        *,
        ratio: float = 1.5,
        z: float = 4.0,
        for_points: int = 2,
        severe_ratio: float = math.inf,
        severe_z: float = math.inf,
        severe_points: int = 1,
        window_points: int = 0,
        min_spread: float = 0.05,
        min_sigma: float = 0.0,
        direction: Direction = "above",
        label: str = "value",
        unit: str = "",
        minutes_per_point: float = 1.0,
    ) -> None:
        if ratio <= 1 or z <= 0 or for_points < 0 or severe_points < 1 or window_points < 0:
            raise ValueError(
                "regression needs ratio > 1, z > 0, for_points >= 0, severe_points >= 1 "
                "and window_points >= 0"
            )
        self.ratio = float(ratio)
        self.z = float(z)
        self.for_points = int(for_points)
        self.severe_ratio = float(severe_ratio)
        self.severe_z = float(severe_z)
        self.severe_points = int(severe_points)
        self.window_points = int(window_points)
        self.min_spread = float(min_spread)
        self.min_sigma = float(min_sigma)
        self.direction: Direction = direction
        self.label = label
        self.unit = unit
        self.minutes_per_point = float(minutes_per_point)
        sign = "x" if direction == "above" else "/"
        # The line of a quiet verdict that does not breach (update's ``quiet``).
        self.calm = f"{label} within {sign}{self.ratio:g} of the baseline"
        self.streak = 0
        self.severe_streak = 0
        self.release: str | None = None
        # The last window_points values, in time order and sorted, for the shift tier.
        self.recent: deque[float] = deque()
        self._ordered: list[float] = []

    @property
    def _sustained(self) -> bool:
        points = self.for_points and self.streak >= self.for_points
        return bool(points) or self.severe_streak >= self.severe_points

    def update(
        self,
        minute: int,
        value: float | None,
        release: str | None = None,
        expected: Expectation | None = None,
        *,
        quiet: bool = False,
    ) -> Verdict:
        """Feed one point; ``expected``: the baseline. ``quiet``: nobody reads the line of a
        verdict that does not breach (no open alert), so it is left unworded (``calm``)."""
        del minute  # the expectation carries the past
        if release is not None and release != self.release:
            if self.release is not None:
                self.reset()  # a window of another release's points says nothing of this one
            self.release = release
        if value is None or math.isnan(value):
            return Verdict(
                self.streak > 0 or self.severe_streak > 0,
                None,
                None,
                expected.level if expected else None,
                f"{self.label}: no data this minute",
                sustained=self._sustained,
            )
        if expected is None or expected.level <= 0:
            self.reset()
            shown = format_value(value, self.unit)
            detail = f"{self.label} {shown}: no earlier history to compare with yet"
            return Verdict(False, value, None, None, detail, sustained=False)
        level = expected.level
        spread = self._side_spread(expected)
        above = self.direction == "above"
        limit = level * self.ratio if above else level / self.ratio
        unit = self.unit if above else None
        if self.for_points == 0:
            # Judged by its window alone: its line says the window's median.
            shift = self._shift(value, level, spread)
            if shift is None:
                if quiet:
                    return Verdict(False, value, limit, level, self.calm, sustained=False)
                line = f"{self.label} {format_value(value, self.unit)}, {self._window_words()}"
                return Verdict(False, value, limit, level, line, sustained=False, unit=unit)
            median, ratio, z = shift
            line = self._line(self._median_words(median), level, ratio, z, expected)
            return Verdict(True, value, limit, level, line, sustained=True, score=z, unit=unit)
        if above:
            ratio, z = value / level, (value - level) / spread
        else:
            ratio, z = self._measure(value, level, spread)
        # No further above the level than the series rises every day: not a breach.
        everyday = above and expected.day_rise is not None and value - level <= expected.day_rise
        was_sustained = self._sustained
        if was_sustained:
            # Hysteresis once sustained: half the way back is still the same breach.
            breaching = ratio >= 1 + (self.ratio - 1) / 2 and z >= self.z / 2
        else:
            breaching = ratio >= self.ratio and z >= self.z and not everyday
        self.streak = self.streak + 1 if breaching else 0
        if ratio >= self.severe_ratio and z >= self.severe_z and not everyday:
            self.severe_streak += 1
        else:
            self.severe_streak = 0
        severe = self.severe_streak >= self.severe_points
        shift = self._shift(value, level, spread)
        sustained = (breaching and self.streak >= self.for_points) or severe or shift is not None
        if quiet and not (breaching or severe or shift is not None):
            return Verdict(False, value, limit, level, self.calm, sustained=False, score=z)
        if shift is not None and not breaching and not severe:
            median, ratio, z = shift
            detail = self._line(self._median_words(median), level, ratio, z, expected)
        else:
            detail = self._line(format_value(value, self.unit), level, ratio, z, expected)
            if severe and self.streak < self.for_points and not was_sustained:
                detail += ": severe, at once" if self.severe_points == 1 else ": severe"
            elif breaching and not sustained:
                detail += f" for {self.streak} of {self.for_points} points"
            elif everyday and not breaching and not severe:
                rise = format_value(expected.day_rise or 0.0, self.unit)
                detail += f": no higher than it rises every day (+{rise})"
        return Verdict(
            breaching or severe or shift is not None,
            value,
            limit,
            level,
            detail,
            sustained=sustained,
            score=z,
            unit=unit,
        )

    def _median_words(self, median: float) -> str:
        return f"{format_value(median, self.unit)}, median of the last {self._minutes()} min,"

    def _window_words(self) -> str:
        if len(self.recent) < self.window_points:
            return f"{len(self.recent)} of the {self._minutes()} min of its window so far"
        sign = "x" if self.direction == "above" else "/"
        return (
            f"median of the last {self._minutes()} min within {sign}{self.ratio:g} of the baseline"
        )

    def _minutes(self) -> str:
        return f"{self.window_points * self.minutes_per_point:g}"

    def _side_spread(self, expected: Expectation) -> float:
        """The expectation's spread on this rule's side (wider where the series usually
        peaks, or dips, far from its level), floored."""
        side = expected.upper if self.direction == "above" else expected.lower
        return self._spread(expected.level, side if side is not None else expected.spread)

    def _line(self, shown: str, level: float, ratio: float, z: float, expected: Expectation) -> str:
        """``p95 243 ms vs 41 ms this hour yesterday (x5.9, 12.3 sigma)``, naming the usual
        peak (low) where it widened the spread."""
        base = f"{format_value(level, self.unit)} {expected.words()}"
        extent = f"{self._factor(ratio)}, {z:.1f} sigma"
        side = expected.upper if self.direction == "above" else expected.lower
        bound = expected.peak if self.direction == "above" else expected.low
        if side is not None and bound is not None and side > expected.spread:
            name = "peak" if self.direction == "above" else "low"
            extent += f", usual {name} {format_value(bound, self.unit)}"
        return f"{self.label} {shown} vs {base} ({extent})"

    def _spread(self, level: float, spread: float) -> float:
        return max(spread, self.min_spread * level, self.min_sigma)

    def _measure(self, value: float, level: float, spread: float) -> tuple[float, float]:
        """(ratio, z) of ``value`` away from ``level`` in this rule's direction."""
        if self.direction == "above":
            return value / level, (value - level) / spread
        ratio = level / value if value > 0 else math.inf
        return ratio, (level - value) / spread

    def _factor(self, ratio: float) -> str:
        sign = "x" if self.direction == "above" else "/"
        return f"{sign}{ratio:.1f}" if ratio < 100 else f"{sign}{ratio:.0f}"

    def _shift(
        self, value: float, level: float, spread: float
    ) -> tuple[float, float, float] | None:
        """(median, ratio, z) when the median of the last ``window_points`` points is
        ``ratio`` times and ``z`` standard errors of such a median away from the level;
        else None."""
        if self.window_points < 2:
            return None
        if len(self.recent) == self.window_points:
            del self._ordered[bisect.bisect_left(self._ordered, self.recent.popleft())]
        self.recent.append(value)
        bisect.insort(self._ordered, value)
        n = len(self._ordered)
        if n < self.window_points:
            return None
        mid = n // 2
        median = self._ordered[mid] if n % 2 else (self._ordered[mid - 1] + self._ordered[mid]) / 2
        ratio, z = self._measure(median, level, MEDIAN_SE * spread / math.sqrt(n))
        if ratio < self.ratio or z < self.z:
            return None
        return median, ratio, z

    def reset(self) -> None:
        self.streak = 0
        self.severe_streak = 0
        self.recent.clear()
        self._ordered = []

    def to_dict(self) -> dict[str, Any]:
        saved = super().to_dict()
        saved["state"]["severe_streak"] = self.severe_streak
        saved["state"]["recent"] = list(self.recent)
        saved["state"]["release"] = self.release
        return saved

    def load_state(self, data: Mapping[str, Any]) -> bool:
        if not super().load_state(data):
            return False
        state = data.get("state", {})
        self.severe_streak = int(state.get("severe_streak", 0))
        release = state.get("release")
        self.release = str(release) if release is not None else None
        kept = state.get("recent", [])[-self.window_points :] if self.window_points else []
        self.recent = deque(float(v) for v in kept)
        self._ordered = sorted(self.recent)
        return True

    def params(self) -> dict[str, Any]:
        return {
            "ratio": self.ratio,
            "z": self.z,
            "for_points": self.for_points,
            "severe_ratio": self.severe_ratio,
            "severe_z": self.severe_z,
            "severe_points": self.severe_points,
            "window_points": self.window_points,
            "min_spread": self.min_spread,
            "min_sigma": self.min_sigma,
            "direction": self.direction,
        }
