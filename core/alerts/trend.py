"""The trend rule: a release whose latency rises significantly from its start.

The CUSUM of core.alerts.detect learns its baseline from a release's first minutes, so a
release that leaks from its first request (p95 38 -> 96 -> 240 ms in three minutes) is its
own baseline and is never caught. This test needs no baseline: over the last
``window_minutes`` of the release it asks whether the series rises, and how fast.

- **Significance**: the Mann-Kendall test (Mann 1945, *Econometrica* 13; Kendall 1975,
  *Rank Correlation Methods*, 4th ed.), ``S = sum_{i<j} sign(x_j - x_i)``, one-sided
  p-value of an increasing series. Rank-based, so one cold-start spike does not make it.
- **Size**: the Theil-Sen slope (Theil 1950; Sen 1968, *JASA* 63), the median of the
  pairwise slopes, robust to outliers (breakdown point 29 %), relative to the level the
  line fits at the window's first point. Breaching when it rises by at least
  ``min_slope`` of that level per minute *and* ``p < p_max``. The two need each other: a
  fast but noisy rise is not significant; a significant but slow creep (a daily cycle,
  +0.2 %/min at its steepest) is the seasonal baselines' and the CUSUM's job.

Points: a minute's ``samples`` (values finer than the minute, in time order, spread evenly
over it) or its one value at the half minute. Minutes are Unix seconds (as the rollups);
slopes are per minute. No ``for``: the statistic already is accumulated evidence.

Both statistics live in core.alerts.trend_stats (re-exported here); Mann-Kendall's
p-value is exact (the Mahonian numbers) up to 40 points without ties.

Speed (the backtest replays 43,200 minutes of every rule in < 2 s): ``S`` is kept
incrementally (a point in or out changes it by a count two bisections give, the ties'
correction by a counter), so the exact p-value costs O(log n) a minute. The O(n^2)
Theil-Sen runs only where it can breach: ``p < p_max``, and at least half of the pairwise
slopes reach ``c * median(y) / (1 + c * span)`` (c = min_slope), a bound every breach
meets (:meth:`Trend._can_breach`, checked in O(1) against the range of the values, then
counted in O(n log n)). The other minutes print a least-squares slope kept from running
sums. ``benchmarks/bench_trend.py`` measures speed, delays and false alarms: ~5 us a
minute on 1-minute points; the issue's leak (60 ms/min on 38 ms) breaches at the end of
minute 2 with 10-second samples, after ``min_points`` minutes with one value a minute.
"""

from __future__ import annotations

import bisect
import math
from collections import deque
from collections.abc import Mapping, Sequence
from dataclasses import replace
from typing import Any

from core.alerts.detect import Verdict, format_value
from core.alerts.trend_stats import (
    mann_kendall,
    median_sorted,
    p_increasing,
    p_increasing_normal,
    theil_sen,
    tie_weight,
)

__all__ = ["Trend", "mann_kendall", "p_increasing", "p_increasing_normal", "theil_sen"]

# Running least-squares sums are rebuilt from the points after this many removals, so that
# rounding never accumulates and the time origin stays near the window.
_REBUILD_EVERY = 1024


def _p_text(p: float) -> str:
    return "p < 0.001" if p < 0.001 else f"p {p:.2g}"


class Trend:
    """A significant, fast enough rise over the last ``window_minutes`` (module doc).

    ``min_slope``: the rise per minute, as a fraction of the fitted level at the window's
    first point, that counts (0.02: 2 %/min). ``p_max``: the Mann-Kendall one-sided p-value
    under which the rise is significant. No verdict before ``min_points`` points. The
    verdict's ``baseline`` is that level, its ``threshold`` the value the line would reach
    by now rising at exactly ``min_slope`` (``level * (1 + min_slope * span)``), its
    ``score`` the relative slope per minute (Theil-Sen where the rise is significant, else
    least squares, only shown). A release change resets it, as the CUSUM.
    """

    kind = "trend"

    def __init__(
        self,
        *,
        window_minutes: int = 30,
        min_slope: float = 0.02,
        p_max: float = 0.001,
        min_points: int = 8,
        label: str = "value",
        unit: str = "",
    ) -> None:
        if window_minutes < 1 or min_points < 3:
            raise ValueError("trend needs window_minutes >= 1 and min_points >= 3")
        if not min_slope > 0 or not 0 < p_max < 1:
            raise ValueError("trend needs min_slope > 0 and 0 < p_max < 1")
        self.window_minutes = int(window_minutes)
        self.min_slope = float(min_slope)
        self.p_max = float(p_max)
        self.min_points = int(min_points)
        self.label = label
        self.unit = unit
        self.release: str | None = None
        self.points: deque[tuple[float, float]] = deque()  # (minutes since epoch, value)
        self.first: float | None = None  # time of the release's first point
        self.last_minute: int | None = None
        self.breaching = False
        self.reference: float | None = None  # the first expected level since the reset
        self._clear()

    def _clear(self) -> None:
        self.points.clear()
        self._sorted: list[float] = []
        self._counts: dict[float, int] = {}
        self._s = 0
        self._tie_term = 0
        self._removed = 0
        self._origin = 0.0
        self._sums = [0.0, 0.0, 0.0, 0.0]  # sum of u, y, u*u, u*y; u = t - origin
        self._min_gap = math.inf  # at most the shortest time between consecutive points

    def reset(self) -> None:
        self._clear()
        self.first = None
        self.last_minute = None
        self.breaching = False
        self.reference = None

    # -- the window, with S, the ties and the least-squares sums kept up to date --

    def _add(self, t: float, y: float) -> None:
        ordered = self._sorted
        below = bisect.bisect_left(ordered, y)
        above = len(ordered) - bisect.bisect_right(ordered, y, below)
        self._s += below - above
        ordered.insert(below, y)
        count = self._counts.get(y, 0)
        self._counts[y] = count + 1
        if count:
            self._tie_term += tie_weight(count + 1) - tie_weight(count)
        if self.points:
            self._min_gap = min(self._min_gap, t - self.points[-1][0])
        else:
            self._origin = t
        self.points.append((t, y))
        u = t - self._origin
        sums = self._sums
        sums[0] += u
        sums[1] += y
        sums[2] += u * u
        sums[3] += u * y

    def _drop_oldest(self) -> None:
        t, y = self.points.popleft()
        ordered = self._sorted
        at = bisect.bisect_left(ordered, y)
        del ordered[at]
        # y was the earliest point: it counted +1 for each later value above it.
        above = len(ordered) - bisect.bisect_right(ordered, y, at)
        self._s -= above - at
        count = self._counts[y]
        if count == 1:
            del self._counts[y]
        else:
            self._counts[y] = count - 1
            self._tie_term -= tie_weight(count) - tie_weight(count - 1)
        self._removed += 1
        if self._removed >= _REBUILD_EVERY or not self.points:
            self._rebuild_sums()
            return
        u = t - self._origin
        sums = self._sums
        sums[0] -= u
        sums[1] -= y
        sums[2] -= u * u
        sums[3] -= u * y

    def _rebuild_sums(self) -> None:
        self._removed = 0
        self._origin = self.points[0][0] if self.points else 0.0
        sums = [0.0, 0.0, 0.0, 0.0]
        for t, y in self.points:
            u = t - self._origin
            sums[0] += u
            sums[1] += y
            sums[2] += u * u
            sums[3] += u * y
        self._sums = sums

    def _least_squares(self) -> tuple[float, float]:
        """(slope, fitted value at the first point) of the window, from the running sums."""
        n = len(self.points)
        su, sy, suu, suy = self._sums
        sxx = suu - su * su / n
        slope = (suy - su * sy / n) / sxx if sxx > 0 else 0.0
        u0 = self.points[0][0] - self._origin
        return slope, sy / n + slope * (u0 - su / n)

    # -- the test --

    def _can_breach(self) -> bool:
        """False only when the Theil-Sen slope cannot reach ``min_slope`` of its level.

        With c = min_slope, span the window's length and u the minutes since its first
        point (0 <= u <= span), a breach needs slope b >= c * L(b) > 0 with the level
        L(b) = median(y - b u) >= median(y) - b * span, hence ``b >= beta = c * median(y)
        / (1 + c * span)``, and median(y) > 0. A median of the pairwise slopes that is at
        least beta leaves at least ceil(pairs / 2) slopes at or above it, i.e. pairs i < j
        with ``y_j - beta u_j >= y_i - beta u_i``: counted in O(n log n) by bisection, with
        a tolerance that only ever counts more (rounding cannot hide a breach). Before that,
        in O(1): points at least ``_min_gap`` apart (every consecutive pair of the window
        is), such a pair is at most ``range(y) / beta`` minutes, so d points, apart, and
        there are ``n - k`` pairs k points apart."""
        ordered = self._sorted
        median = median_sorted(ordered)
        if median <= 0:
            return False
        points = self.points
        t0 = points[0][0]
        span = points[-1][0] - t0
        c = self.min_slope
        beta = c * median / (1 + c * span)
        n = len(points)
        pairs = n * (n - 1) // 2
        need = pairs - pairs // 2
        tolerance = 1e-9 * (abs(ordered[0]) + abs(ordered[-1]) + beta * span + 1.0)
        # O(1) first: such a pair rises by beta * (u_j - u_i) <= the range of y, so it is
        # at most (range + tolerance) / beta minutes long, i.e. at most d points apart.
        d = int((ordered[-1] - ordered[0] + tolerance) / (beta * self._min_gap) + 1e-9)
        if d < n - 1 and d * n - d * (d + 1) // 2 < need:
            return False
        seen: list[float] = []
        count = 0
        for k, (t, y) in enumerate(points):
            r = y - beta * (t - t0)
            count += bisect.bisect_right(seen, r + tolerance)
            if count >= need:
                return True
            if count + pairs - k * (k + 1) // 2 < need:
                return False
            bisect.insort(seen, r)
        return False

    def significance(self) -> tuple[int, float]:
        """(S, one-sided p-value) of the Mann-Kendall test over the window's points."""
        n = len(self.points)
        return self._s, p_increasing(self._s, n, self._tie_term)

    def update(
        self,
        minute: int,
        value: float | None,
        release: str | None = None,
        samples: Sequence[float | None] | None = None,
        expected: float | None = None,
        *,
        quiet: bool = False,
    ) -> Verdict:
        """Feed one minute (its ``samples`` when finer). ``expected``: the level the
        environment's past expects now (core.alerts.seasonal); where given, each point is
        scaled by the first such level of the window's life over this one, so that the
        daily or weekly rise the past expects (a Monday morning) is not read as a trend.
        ``quiet``: nobody reads the line of a verdict without a significant rise (no open
        alert), so it is left unworded."""
        if release is not None and release != self.release:
            if self.release is not None:
                self.reset()
            self.release = release
        scale = 1.0
        if expected is not None and expected > 0:
            if self.reference is None:
                self.reference = expected
            scale = self.reference / expected
        if value is not None and math.isnan(value):
            value = None
        if self.last_minute is not None and minute <= self.last_minute:
            # A minute already fed (a replay): its points would not be the latest.
            return Verdict(self.breaching, None, None, None, f"{self.label}: minute already seen")
        self.last_minute = minute
        start = minute / 60.0
        points = self.points
        # Keep the points of the last window_minutes minutes, this one included.
        oldest = start + 1.0 - self.window_minutes
        while points and points[0][0] < oldest:
            self._drop_oldest()
        # Samples are equal parts of the minute, in order; None: a part without data
        # (it keeps the others at their own time: the last 10 s of a minute are not its
        # middle).
        slots = list(samples or ())
        fresh = [
            (i, float(v) * scale)
            for i, v in enumerate(slots)
            if v is not None and not math.isnan(v)
        ]
        latest = points[-1][0] if points else -math.inf
        added = 0
        if fresh:
            step = 1.0 / len(slots)
            for i, v in fresh:
                t = start + (i + 0.5) * step
                if t > latest:  # time must move on (minutes that are not Unix seconds)
                    self._add(t, v)
                    added += 1
        elif value is not None and start + 0.5 > latest:
            self._add(start + 0.5, float(value) * scale)
            added = 1
        if not added:
            return Verdict(self.breaching, None, None, None, f"{self.label}: no data this minute")
        if self.first is None:
            self.first = points[-added][0]
        verdict = self._judge(
            float(value) if value is not None else fresh[-1][1] / scale, quiet=quiet
        )
        self.breaching = verdict.breaching
        if abs(scale - 1.0) > 0.05 and verdict.breaching:
            verdict = replace(verdict, detail=f"{verdict.detail}, against the usual cycle")
        return verdict

    def _judge(self, value: float, *, quiet: bool = False) -> Verdict:
        n = len(self.points)
        shown = f"{self.label} {format_value(value, self.unit)}"
        if n < self.min_points:
            detail = f"{shown}, learning trend ({n}/{self.min_points} points)"
            return Verdict(False, value, None, None, detail)
        p = p_increasing(self._s, n, self._tie_term)
        t0 = self.points[0][0]
        span = self.points[-1][0] - t0
        # A minute after a breaching one most likely breaches too: no need to ask the gate.
        if p >= self.p_max or not (self.breaching or self._can_breach()):
            slope, level = self._least_squares()
            relative = slope / level if level > 0 else None
            if quiet:
                detail = f"{self.label}: no significant rise"
            elif p >= self.p_max:
                rate = f"{relative * 100:.1f} %/min, " if relative is not None else ""
                detail = f"{shown}, no significant rise ({rate}{_p_text(p)})"
            else:
                limit = f"{self.min_slope * 100:g} %/min"
                detail = f"{shown}, rising under {limit} ({_p_text(p)})"
            return self._verdict(False, value, level, span, relative, detail)
        us = [t - t0 for t, _ in self.points]
        slope, level = theil_sen(us, [y for _, y in self.points])
        relative = slope / level if level > 0 else None
        if relative is None or relative < self.min_slope:
            if relative is None:
                detail = f"{shown}, rising from a fitted level <= 0 ({_p_text(p)})"
            else:
                detail = f"{shown}, rising slowly ({relative * 100:.1f} %/min, {_p_text(p)})"
            return self._verdict(False, value, level, span, relative, detail)
        since = self.release is not None and t0 == self.first
        where = "since the release" if since else f"over the last {self.window_minutes} min"
        factor = 1.0 + relative * span
        scale = f"x{factor:.1f} in {max(1, round(span))} min" if since else f"x{factor:.1f}"
        detail = (
            f"{shown}, rising {format_value(slope, self.unit)}/min {where} ({scale}, {_p_text(p)})"
        )
        return self._verdict(True, value, level, span, relative, detail)

    def _verdict(
        self,
        breaching: bool,
        value: float,
        level: float,
        span: float,
        relative: float | None,
        detail: str,
    ) -> Verdict:
        threshold = level * (1.0 + self.min_slope * span) if level > 0 else None
        baseline = level if level > 0 else None
        return Verdict(
            breaching, value, threshold, baseline, detail, score=relative, unit=self.unit
        )

    # -- state --

    def params(self) -> dict[str, Any]:
        return {
            "window_minutes": self.window_minutes,
            "min_slope": self.min_slope,
            "p_max": self.p_max,
            "min_points": self.min_points,
        }

    def to_dict(self) -> dict[str, Any]:
        return {
            "type": self.kind,
            "params": self.params(),
            "state": {
                "release": self.release,
                "points": [[t, y] for t, y in self.points],
                "first": self.first,
                "last_minute": self.last_minute,
                "breaching": self.breaching,
                "reference": self.reference,
            },
        }

    def load_state(self, data: Mapping[str, Any]) -> bool:
        if data.get("type") != self.kind or data.get("params") != self.params():
            return False
        state = data.get("state", {})
        self.reset()
        release = state.get("release")
        self.release = str(release) if release is not None else None
        for t, y in sorted((float(t), float(y)) for t, y in state.get("points", [])):
            self._add(t, y)
        first = state.get("first")
        self.first = float(first) if first is not None else None
        last = state.get("last_minute")
        self.last_minute = int(last) if last is not None else None
        self.breaching = bool(state.get("breaching", False))
        reference = state.get("reference")
        self.reference = float(reference) if reference is not None else None
        return True
