"""Baselines that know the past: what a metric did at this time of day, or of the week,
before now, from the environment's own history; or, without such history, in the hour
before the release went live. docs/monitoring.md ("Baselines and seasons") says how a
person reads them.

An :class:`Expectation` is a level and a spread in the metric's own unit, so the rules built
on it (core.alerts.regression, and the leak CUSUM of core.alerts.detect) are relative to
the series: they work the same on milliseconds, a CPU percentage or request counts.

How the level is found, for a point at time ``t``:

- **daily**: the same time on each of the last ``max_days`` days, ``t - k days``; **weekly**:
  the same time of the week on each of the last ``max_weeks`` weeks (3: the default
  retention of rollups, 28 days, holds them whole). Each earlier day
  contributes the median of its values within ``+-half_window`` of that time (a robust local
  level: one odd minute yesterday does not move it), and the expectation is the median of
  those per-day levels. A release's leak yesterday, rolled back, is one day in seven.
  One expectation holds for the ``GRID`` (5 minutes) that holds ``t``: the windows are 10
  minutes wide, so it moves little within that.
- ``season = "auto"`` (the default) picks, every twelve hours, the season that predicted the
  last day of history best (the smaller median absolute error, relative to the level):
  weekly where the weekends differ, daily where one day is like another; weekly only with
  two earlier weeks at least (``MIN_LAGS``: one earlier week alone, an outage, would be
  the whole baseline); with less than a day of history, neither exists.
- **before the release**: with no earlier day at this time, the median of the
  ``before_minutes`` before the current release started, when those are in the history
  ("what the environment did before it").
- **recent**: for the regression rules only (``expect(recent=True)``; a leak rule's
  baseline must not follow the leak), where nothing above serves, or throughout with
  ``season = "recent"``: the median of the ``RECENT`` seconds (3 hours) before ``t``.

The spread combines how much the metric wanders within a few minutes (the median of the
per-day windows' MAD-sigmas) and how much the per-day levels disagree (their MAD-sigma, once
there are three): ``sqrt(within^2 + between^2)``; with fewer than three earlier days the
within part is widened by half, for the day-to-day variation it cannot see.

The usual peak and low: the medians, over the same earlier days, of the highest and lowest
value within ``PEAK_HALF`` (half an hour) of that time (of each hour, for the recent level).
A robust spread says nothing of how far a bursty series goes: its sides do
(:func:`with_range`). The highest of ``n`` normal points lies, as a median, ``c_n =
Phi^-1(2^(-1/n))`` sigmas above their mean (1.63 for the 13 five-minute points of an hour,
2.28 for 61 minutes), so ``(peak - level) / c_n`` is the spread above the level that peak
implies; the upper spread is the larger of it and the robust one (equal for normal noise,
far wider for bursts), and the lower spread likewise from the usual low.

The usual daily rise (:meth:`Seasonal._usual_days`, :func:`with_days`): the median, over
the earlier days, of each day's largest rise of a span of ``BLOCK_POINTS`` points above its
median (at its second-highest value), times ``DAY_MARGIN``, and the spread it implies: what
a series does every day, at any hour (bursts), which the usual peak at this hour misses.
Every expectation carries it once a day of history exists.

Pure: the history is read through :class:`History` (the metric store's rollups in the
collector, the replayed series in ``relman policy backtest``); the per-day window levels
are cached, so a replay of 30 days of minutes reads each past window once.
"""

from __future__ import annotations

import bisect
import dataclasses
import functools
import math
import statistics
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from statistics import NormalDist
from typing import Literal, Protocol, TypeVar

_T = TypeVar("_T")
HOUR = 3600
DAY = 86_400
WEEK = 7 * DAY
Season = Literal["auto", "daily", "weekly", "recent", "none"]
SEASONS: tuple[str, ...] = ("auto", "daily", "weekly", "recent", "none")
# The span of the recent level (the "recent" season): the hours just before now.
RECENT = 3 * 3600
# How often "auto" chooses again, and over how much of the past.
CHOOSE_EVERY = 12 * 3600
CHOOSE_OVER = DAY
CHOOSE_SAMPLES = 24
# Cached window levels (per metric, past times); a month of minutes fits.
CACHE = 50_000
# Seconds over which one expectation holds (module docstring).
GRID = 300
# Earlier periods a season needs to be chosen by "auto": one earlier week alone (an outage,
# a holiday) would be the whole baseline of a week; a day is only the first day's fallback.
MIN_LAGS = {"daily": 1, "weekly": 2}
# Half the span whose highest value is the usual peak "around this time" (an hour wide).
PEAK_HALF = 30 * 60
# The usual daily rise (Seasonal._usual_days) is read a tenth higher than the median of the
# days': a week's median of daily highs moves by about that from one week to the next, and
# a capped series (a CPU at 100 %) reaches its usual high again and again.
DAY_MARGIN = 1.1
# Points of the spans whose rise above their median makes an hour's rise (Seasonal._hour).
BLOCK_POINTS = 12


class History(Protocol):
    """Past values of the series of one (service, environment)."""

    def values(self, metric: str, since: int, until: int) -> Sequence[tuple[int, float]]:
        """``(t, value)`` of ``metric`` with ``since <= t < until``, in time order."""
        ...


class SeriesHistory:
    """A :class:`History` kept in memory, appended to in time order (a replay)."""

    def __init__(self) -> None:
        self._t: dict[str, list[int]] = {}
        self._v: dict[str, list[float]] = {}

    def add(self, metric: str, t: int, value: float | None) -> None:
        if value is None or not math.isfinite(value):
            return
        times = self._t.setdefault(metric, [])
        if times and t <= times[-1]:
            return  # in time order only; a repeated point is already there
        times.append(t)
        self._v.setdefault(metric, []).append(float(value))

    def values(self, metric: str, since: int, until: int) -> Sequence[tuple[int, float]]:
        times = self._t.get(metric)
        if not times:
            return []
        lo = bisect.bisect_left(times, since)
        hi = bisect.bisect_left(times, until)
        return list(zip(times[lo:hi], self._v[metric][lo:hi], strict=True))


@dataclass(frozen=True, slots=True)
class Expectation:
    """What the metric was expected to be: ``level`` +- ``spread`` (a robust sigma), from
    ``season`` ("daily", "weekly" or "release": the hour before the release) over ``lags``
    earlier days or weeks (or the minutes before the release)."""

    level: float
    spread: float
    season: str
    lags: int
    # The level scaled by how today runs against the past (Rules' anchor; 1: not scaled).
    today: float = 1.0
    # The usual peak around this time: the median over the same days of the highest value
    # within PEAK_HALF of it (before the release: the highest of that hour); None: unknown.
    peak: float | None = None
    # The usual low, the same way with the lowest values.
    low: float | None = None
    # The spreads above and below the level, at least ``spread``: how far the usual peak
    # (low) lies from the level, in the sigmas such a peak lies from the mean of normal
    # noise (:func:`with_range`); None: ``spread``.
    upper: float | None = None
    lower: float | None = None
    # The level scaled by how the release live now runs against the past (the drop rule's;
    # 1: not scaled).
    release: float = 1.0
    # How far the series usually rises above its hour's median at its most, once a day: the
    # median over the earlier days of each day's largest rise; and the spread above the
    # level that rise implies (:func:`with_days`). None: not known (no day of history).
    day_rise: float | None = None
    day_upper: float | None = None

    def words(self) -> str:
        """How a detail line names the baseline: ``this hour yesterday``, ``this hour over
        the last 6 days``, ``this hour last week``, ``the hour before the release``, and
        ``, today x1.08`` (``, this release x0.50``) when scaled to today's level (to how
        the release runs)."""
        scaled = f", today x{self.today:.2f}" if round(self.today, 2) != 1.0 else ""
        if round(self.release, 2) != 1.0:
            scaled += f", this release x{self.release:.2f}"
        return self._words() + scaled

    def on_today(self, today: float) -> Expectation:
        """The expectation with its level scaled by how today runs (``today``); its spreads,
        usual peak and low and daily rise as the past had them."""
        return Expectation(
            self.level * today,
            self.spread,
            self.season,
            self.lags,
            today,
            self.peak,
            self.low,
            self.upper,
            self.lower,
            self.release,
            self.day_rise,
            self.day_upper,
        )

    def as_release_runs(self, factor: float) -> Expectation:
        """The expectation of a release that runs at ``factor`` times the past: level,
        spreads, usual peak and low all scaled."""
        return Expectation(
            self.level * factor,
            self.spread * factor,
            self.season,
            self.lags,
            self.today,
            peak=_times(self.peak, factor),
            low=_times(self.low, factor),
            upper=_times(self.upper, factor),
            lower=_times(self.lower, factor),
            release=factor,
            day_rise=_times(self.day_rise, factor),
            day_upper=_times(self.day_upper, factor),
        )

    def _words(self) -> str:
        if self.season == "daily":
            return "this hour yesterday" if self.lags == 1 else f"this hour, last {self.lags} days"
        if self.season == "weekly":
            if self.lags == 1:
                return "this hour last week"
            return f"this hour of the week, last {self.lags} weeks"
        if self.season == "recent":
            return f"over the last {self.lags} hours"
        return "before the release"


def _times(value: float | None, factor: float) -> float | None:
    return value * factor if value is not None else None


@functools.cache
def peak_sigmas(points: int) -> float:
    """How many sigmas above the mean the highest of ``points`` normal values lies, as a
    median: ``P(max <= x) = Phi(x)^n = 1/2``."""
    if points < 2:
        return 0.0
    return NormalDist().inv_cdf(0.5 ** (1 / points))


def with_range(found: Expectation, low: float, peak: float, points: int) -> Expectation:
    """``found`` with its usual low and peak over spans of ``points`` points, and the
    spreads above and below its level they imply (a bursty series peaks many robust spreads
    above its median: its upper spread is read from how high it usually goes)."""
    sigmas = peak_sigmas(points)
    upper = lower = found.spread
    if sigmas > 0:
        upper = max(upper, (peak - found.level) / sigmas)
        lower = max(lower, (found.level - low) / sigmas)
    return Expectation(
        found.level,
        found.spread,
        found.season,
        found.lags,
        found.today,
        peak=peak,
        low=low,
        upper=upper,
        lower=lower,
    )


def with_days(found: Expectation, rise: float, points: int) -> Expectation:
    """``found`` with the usual largest daily rise of the series above its hour's median
    (over days of ``points`` points) and the spread above the level it implies: the highest
    of a day's ``points`` normal values lies ``peak_sigmas(points)`` sigmas above their
    median, so ``rise / peak_sigmas(points)`` (the robust spread for normal noise; far wider
    for a series whose bursts come at any hour: what happens every day is not an
    incident)."""
    sigmas = peak_sigmas(points)
    upper = rise / sigmas if sigmas > 0 else None
    return dataclasses.replace(found, day_rise=rise, day_upper=upper)


@dataclass(frozen=True, slots=True)
class _Level:
    median: float
    sigma: float  # MAD-sigma of the window's values (0 with fewer than 3)


class Seasonal:
    """Expectations of one (service, environment)'s metrics from its history."""

    def __init__(
        self,
        season: str = "auto",
        *,
        interval: int = 60,
        half_window: int = 5 * 60,
        max_days: int = 7,
        max_weeks: int = 3,
        before_minutes: int = 60,
    ) -> None:
        if season not in SEASONS:
            raise ValueError(f"season must be one of {', '.join(SEASONS)}, not {season!r}")
        self.season = season
        self.interval = max(1, int(interval))
        # At least a few points of the series in each window, whatever its interval.
        self.half_window = max(int(half_window), 2 * self.interval)
        self.max_days = max_days
        self.max_weeks = max_weeks
        self.before = before_minutes * 60
        # Cached by the history's ``source`` too (core.monitoring.history: the latencies of
        # the proxy and of BentoML's buckets are two pasts).
        self._source: str | None = None
        self._levels: OrderedDict[tuple[str, str | None, int], _Level | None] = OrderedDict()
        self._ranges: OrderedDict[tuple[str, str | None, int], tuple[float, float] | None] = (
            OrderedDict()
        )
        self._chosen: dict[tuple[str, str | None, int], str | None] = {}
        # Per past hour: how far it rose above its level (_hour).
        self._hours: OrderedDict[tuple[str, str | None, int], float | None] = OrderedDict()
        # Per hour of ``t``: the usual largest daily rise before it.
        self._days: dict[tuple[str, str | None, int], float | None] = {}
        self._expected: dict[tuple[str, str | None, str, int], Expectation | None] = {}

    def __deepcopy__(self, memo: dict[int, object]) -> Seasonal:
        # The cache holds what the past says, which no copy can change: shared, not copied
        # (the collector judges each minute on a deep copy of the rules).
        return self

    def expect(
        self,
        history: History,
        metric: str,
        t: int,
        *,
        release_start: int | None = None,
        recent: bool = False,
    ) -> Expectation | None:
        """The expectation of ``metric`` at ``t`` (None: no history to expect anything from).
        ``release_start``: when the release now live started (for "before the release").
        ``recent``: the level of the last RECENT seconds may serve where no earlier day
        does (first choice with ``season = "recent"``): a regression rule's baseline may
        follow the series, a leak rule's must not follow the leak."""
        self._source = getattr(history, "source", None)
        if recent and self.season == "recent":
            return self._cached(history, metric, t, "recent")
        if self.season != "none":
            # (With season "recent", the trend and leak rules' seasons are chosen as auto's.)
            season = self._season(history, metric, t)
            if season is not None:
                found = self._cached(history, metric, t, season)
                if found is not None:
                    return found
        if release_start is not None:
            before = self._before_release(history, metric, release_start)
            if before is not None:
                return self._with_days(history, metric, release_start, before)
        if recent and self.season == "auto":
            return self._cached(history, metric, t, "recent")
        return None

    def _cached(self, history: History, metric: str, t: int, season: str) -> Expectation | None:
        """The expectation of ``season`` on a grid of GRID seconds: the windows of earlier
        days are +-5 minutes wide, so the expectation moves little within one, and a replay
        of a month of minutes computes a fifth of them."""
        slot = t - t % GRID if self.interval < GRID else t
        key = (metric, self._source, season, slot)
        if key not in self._expected:
            if len(self._expected) > 4096:
                self._expected.clear()
            self._expected[key] = self._expect_at(history, metric, slot, season)
        return self._expected[key]

    def _expect_at(self, history: History, metric: str, t: int, season: str) -> Expectation | None:
        if season == "recent":
            found = self._recent(history, metric, t)
        else:
            found = self._from_lags(history, metric, t, season)
            usual = self._usual_range(history, metric, t, season)
            if found is not None and usual is not None:
                found = with_range(found, *usual, 2 * PEAK_HALF // self.interval + 1)
        return self._with_days(history, metric, t, found)

    def _with_days(
        self, history: History, metric: str, t: int, found: Expectation | None
    ) -> Expectation | None:
        """``found`` with the usual daily rise before ``t``, where a day of history exists."""
        if found is None:
            return None
        rise = self._usual_days(history, metric, t)
        return found if rise is None else with_days(found, rise, max(2, DAY // self.interval))

    # -- seasons ------------------------------------------------------------------------

    def _season(self, history: History, metric: str, t: int) -> str | None:
        if self.season in ("daily", "weekly"):
            return self.season
        slot = t // CHOOSE_EVERY
        key = (metric, self._source, slot)
        if key not in self._chosen:
            if len(self._chosen) > 64:
                self._chosen.clear()
            self._chosen[key] = self._choose(history, metric, slot * CHOOSE_EVERY)
        return self._chosen[key]

    def _choose(self, history: History, metric: str, at: int) -> str | None:
        """The season that predicted the day before ``at`` best; None without a day."""
        step = CHOOSE_OVER // CHOOSE_SAMPLES
        errors: dict[str, list[float]] = {"daily": [], "weekly": []}
        for i in range(CHOOSE_SAMPLES):
            s = at - CHOOSE_OVER + i * step
            actual = self._level(history, metric, s)
            if actual is None or actual.median == 0:
                continue
            for season in errors:
                guess = self._from_lags(history, metric, s, season)
                if guess is not None and guess.lags >= MIN_LAGS[season]:
                    errors[season].append(abs(actual.median - guess.level) / abs(actual.median))
        scored = {s: statistics.median(e) for s, e in errors.items() if len(e) >= 6}
        if not scored:
            # Too little to compare: the daily season with any earlier day at this time.
            return "daily" if self._from_lags(history, metric, at, "daily") else None
        return min(scored, key=lambda s: (scored[s], s != "daily"))

    def _recent(self, history: History, metric: str, t: int) -> Expectation | None:
        """The level of the RECENT seconds before ``t``: their median and MAD-sigma, and
        the medians of each of their hours' lowest and highest values."""
        rows = history.values(metric, t - RECENT, t)
        if len(rows) * self.interval * 3 < 2 * RECENT:
            return None  # a third of it missing
        values = sorted(v for _, v in rows)
        median = _median_sorted(values)
        sigma = 1.4826 * statistics.median(abs(v - median) for v in values)
        found = Expectation(median, sigma, "recent", RECENT // 3600)
        hours: dict[int, list[float]] = {}
        for when, v in rows:
            hours.setdefault((t - when - 1) // 3600, []).append(v)
        lows = [min(h) for h in hours.values()]
        peaks = [max(h) for h in hours.values()]
        return with_range(
            found, statistics.median(lows), statistics.median(peaks), 3600 // self.interval
        )

    def _from_lags(self, history: History, metric: str, t: int, season: str) -> Expectation | None:
        days = self._lags(self._level, history, metric, t, season)
        if not days:
            return None
        medians = [day.median for day in days]
        level = statistics.median(medians)
        within = statistics.median(day.sigma for day in days)
        if len(days) >= 3:
            between = 1.4826 * statistics.median(abs(m - level) for m in medians)
            spread = math.hypot(within, between)
        else:
            spread = 1.5 * within
        return Expectation(level, spread, season, len(days))

    def _usual_range(
        self, history: History, metric: str, t: int, season: str
    ) -> tuple[float, float] | None:
        """(usual low, usual peak): the medians over the earlier days (weeks) of the lowest
        and the highest value within PEAK_HALF of their time ``t``."""
        found = self._lags(self._extremes, history, metric, t, season)
        if not found:
            return None
        return statistics.median(lo for lo, _ in found), statistics.median(hi for _, hi in found)

    def _lags(
        self,
        read: Callable[[History, str, int], _T | None],
        history: History,
        metric: str,
        t: int,
        season: str,
    ) -> list[_T]:
        """What ``read`` finds at time ``t`` of each earlier day (week) of ``season``."""
        period, count = (DAY, self.max_days) if season == "daily" else (WEEK, self.max_weeks)
        return [
            found
            for k in range(1, count + 1)
            if (found := read(history, metric, t - k * period)) is not None
        ]

    def _extremes(self, history: History, metric: str, s: int) -> tuple[float, float] | None:
        """(lowest, highest) value within PEAK_HALF of past time ``s`` (cached); None where
        a third of its points are missing."""
        key = (metric, self._source, s)
        if key in self._ranges:
            return self._ranges[key]
        values = [v for _, v in history.values(metric, s - PEAK_HALF, s + PEAK_HALF + 1)]
        found = None
        if len(values) * self.interval * 3 >= 2 * (2 * PEAK_HALF):
            found = (min(values), max(values))
        self._ranges[key] = found
        if len(self._ranges) > CACHE:
            self._ranges.popitem(last=False)
        return found

    def _usual_days(self, history: History, metric: str, t: int) -> float | None:
        """The usual daily rise: DAY_MARGIN times the median, over the earlier days (the
        24-hour spans before the hour of ``t``, up to ``max_days``), of each day's largest
        rise of an hour above its median (:meth:`_hour`); None without a day two-thirds
        present. Cached per hour."""
        hour = t // HOUR
        key = (metric, self._source, hour)
        if key in self._days:
            return self._days[key]
        rises: list[float] = []
        for k in range(1, self.max_days + 1):
            found = [
                r
                for h in range(hour - 24 * k, hour - 24 * (k - 1))
                if (r := self._hour(history, metric, h)) is not None
            ]
            if len(found) * 3 >= 2 * 24:
                rises.append(max(found))
        usual = DAY_MARGIN * statistics.median(rises) if rises else None
        if len(self._days) > 4096:
            self._days.clear()
        self._days[key] = usual
        return usual

    def _hour(self, history: History, metric: str, hour: int) -> float | None:
        """How far past ``hour`` rose above its level (cached): the largest, over its spans
        of ``BLOCK_POINTS`` points (an hour of five-minute data, 12 minutes of minute data:
        short enough that a daily cycle hardly moves within one), of a span's second-highest
        value above its median (reached twice: one odd point is an outlier, not what the
        series does); None where a third of the hour's points are missing."""
        key = (metric, self._source, hour)
        if key in self._hours:
            return self._hours[key]
        rows = history.values(metric, hour * HOUR, (hour + 1) * HOUR)
        found = None
        if rows and len(rows) * self.interval * 3 >= 2 * HOUR:
            span = min(HOUR, BLOCK_POINTS * self.interval)
            blocks: dict[int, list[float]] = {}
            for t, v in rows:
                blocks.setdefault((t - hour * HOUR) // span, []).append(v)
            rises = [
                ordered[-2] - _median_sorted(ordered)
                for values in blocks.values()
                if len(ordered := sorted(values)) >= 3
            ]
            found = max(rises) if rises else None
        self._hours[key] = found
        if len(self._hours) > CACHE:
            self._hours.popitem(last=False)
        return found

    def _before_release(
        self, history: History, metric: str, release_start: int
    ) -> Expectation | None:
        values = [v for _, v in history.values(metric, release_start - self.before, release_start)]
        if len(values) < max(3, self.before // self.interval // 4):
            return None
        median = statistics.median(values)
        sigma = 1.4826 * statistics.median(abs(v - median) for v in values)
        found = Expectation(median, sigma, "release", len(values))
        return with_range(found, min(values), max(values), len(values))

    def _level(self, history: History, metric: str, s: int) -> _Level | None:
        """The robust level of the window around past time ``s`` (cached)."""
        key = (metric, self._source, s)
        if key in self._levels:
            return self._levels[key]
        values = sorted(
            v for _, v in history.values(metric, s - self.half_window, s + self.half_window + 1)
        )
        found: _Level | None = None
        # A third of the window's points at least: a window mostly missing is no level.
        if values and len(values) * self.interval * 2 >= self.half_window:
            median = _median_sorted(values)
            sigma = 0.0
            if len(values) >= 3:
                sigma = 1.4826 * statistics.median(abs(v - median) for v in values)
            found = _Level(median, sigma)
        self._levels[key] = found
        if len(self._levels) > CACHE:
            self._levels.popitem(last=False)
        return found


def _median_sorted(values: Sequence[float]) -> float:
    n = len(values)
    mid = n // 2
    return values[mid] if n % 2 else (values[mid - 1] + values[mid]) / 2
