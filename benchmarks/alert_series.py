"""Labelled series for benchmarks/bench_alert_quality.py: seeded synthetic metrics with daily
and weekly cycles, heavy-tailed noise and injected anomalies whose starts are the labels, and
per-minute p95 latencies computed from simulated requests (a release that leaks, a creep,
noise). The same arguments always give the same series.

Synthetic series (:func:`generate`) are in any unit (latency ms, CPU %, requests per minute)
at any interval; anomalies are multiplicative: ``step`` (a level shift for hours), ``ramp``
(a slow leak over hours, then fixed), ``spike`` (a burst of minutes), ``release_leak``
(growing from a release on, rolled back after one to three hours).
"""

from __future__ import annotations

import bisect
import math
import random
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

DAY = 86_400
START = 1_704_067_200  # Monday 2024-01-01 00:00 UTC: weekdays and hours are easy to place
KINDS = ("step", "ramp", "spike", "release_leak")
PROBATION = 0.15  # the first 15 % hold no anomaly (NAB's probationary period)
WINDOW_FRACTION = 0.10  # NAB: windows share 10 % of the series length
OUTLIER_RATE = 0.002  # single-point heavy-tailed outliers per point (unlabelled noise)
DAY_TO_DAY = 0.05  # lognormal sigma of each day's level (unlabelled, as real days differ)


@dataclass(frozen=True, slots=True)
class Unit:
    """What a series measures: its level, per-minute noise (lognormal sigma), the daily
    swing (relative amplitude), the weekend level (relative) and an upper bound (CPU)."""

    name: str
    symbol: str
    level: float
    noise: float
    daily: float
    weekend: float
    cap: float | None = None


UNITS: dict[str, Unit] = {
    "latency": Unit("latency", "ms", 40.0, 0.08, 0.20, 0.95),
    "cpu": Unit("cpu", "%", 30.0, 0.06, 0.35, 0.80, cap=100.0),
    "requests": Unit("requests", "req/min", 500.0, 0.05, 0.50, 0.70),
}


@dataclass(frozen=True, slots=True)
class Anomaly:
    """One injected anomaly: points ``start`` (the label) to ``end`` (exclusive)."""

    kind: str
    start: int
    end: int
    size: float  # step/spike: the factor; ramp/release_leak: the growth per minute


@dataclass(frozen=True, slots=True)
class LabelledSeries:
    """A regular series (``values[i]`` at ``start + i * interval``) and its anomalies."""

    name: str
    family: str
    unit: str
    interval: int  # seconds
    start: int  # Unix seconds
    values: tuple[float, ...]
    anomalies: tuple[Anomaly, ...]
    # A recorded series (benchmarks/nab_series.py): each point's own time (gaps kept), and
    # its labelled windows as (first, last) point indexes, scored as they are.
    times: tuple[int, ...] | None = None
    windows: tuple[tuple[int, int], ...] | None = None

    @property
    def labels(self) -> list[int]:
        """The point index of each anomaly's start."""
        return [a.start for a in self.anomalies]

    @property
    def days(self) -> float:
        return len(self.values) * self.interval / DAY

    def points(self) -> list[tuple[int, float]]:
        """``(unix seconds, value)`` rows, as `relman policy backtest` reads them."""
        if self.times is not None:
            return list(zip(self.times, self.values, strict=True))
        return [(self.start + i * self.interval, v) for i, v in enumerate(self.values)]

    def index(self, t: int) -> int:
        """The point index that holds time ``t`` (Unix seconds)."""
        if self.times is not None:
            return max(0, bisect.bisect_right(self.times, t) - 1)
        return (t - self.start) // self.interval


def seasonal_factor(t: float, unit: Unit, phase_hours: float = 0.0) -> float:
    """The unit's daily (afternoon peak, two harmonics) and weekly (weekend) cycle at ``t``."""
    hours = ((t - START) / 3600 - phase_hours) % 24
    angle = 2 * math.pi * (hours - 8) / 24
    daily = 1 + unit.daily * (0.8 * math.sin(angle) + 0.2 * math.sin(2 * angle))
    weekday = int((t - START) // DAY) % 7
    return daily * (unit.weekend if weekday >= 5 else 1.0)


def _shape(kind: str, rng: random.Random) -> tuple[int, float]:
    """(duration in minutes, size) of one anomaly of ``kind``."""
    if kind == "step":
        return rng.randint(120, 480), 1 + rng.uniform(0.25, 1.0)
    if kind == "ramp":
        minutes = rng.randint(180, 480)
        return minutes, rng.uniform(0.3, 1.5) / minutes  # +30..150 % at its worst
    if kind == "spike":
        return rng.randint(10, 30), rng.uniform(1.5, 3.0)
    if kind == "release_leak":
        return rng.randint(60, 180), rng.uniform(0.003, 0.02)
    raise ValueError(f"unknown anomaly kind {kind!r}; one of {', '.join(KINDS)}")


def _factor(anomaly: Anomaly, i: int, interval: int) -> float:
    """The anomaly's multiplier at point ``i`` (1 outside it)."""
    if not anomaly.start <= i < anomaly.end:
        return 1.0
    if anomaly.kind in ("step", "spike"):
        return anomaly.size
    minutes = (i - anomaly.start + 1) * interval / 60
    return 1 + anomaly.size * minutes


def _place(rng: random.Random, kind: str, length: int, interval: int, count: int) -> list[Anomaly]:
    """``count`` anomalies after the probation, each in its own segment so that their NAB
    windows (10 % of the length shared among them, centred on each start) never overlap
    one another nor the next anomaly."""
    half = int(WINDOW_FRACTION * length / count) // 2
    first = int(PROBATION * length) + half + 1
    segment = (length - half - 1 - first) // count
    out = []
    for n in range(count):
        minutes, size = _shape(kind, rng)
        points = max(1, math.ceil(minutes * 60 / interval))
        room = segment - 2 * half - points
        if room < 0:
            raise ValueError(f"a {kind} of {minutes} min does not fit {count} to a series")
        start = first + n * segment + rng.randint(0, room)
        out.append(Anomaly(kind, start, start + points, size))
    return out


def generate(
    kind: str, unit: str, *, interval: int = 60, days: int = 14, seed: int = 0, inject: bool = True
) -> LabelledSeries:
    """A labelled series of ``days`` at ``interval`` seconds: the unit's level and cycles, a
    slow weekly growth (-3 to +8 %) and day-to-day level changes (both unlabelled, as in
    real series), lognormal noise (minute noise averaged over the interval) with rare
    heavy-tailed single-point outliers, and two or three anomalies of ``kind``. With
    ``inject`` False: the same series and labels without the anomalies' effect."""
    u = UNITS[unit]
    rng = random.Random(f"{kind}/{unit}/{interval}/{days}/{seed}")
    length = days * DAY // interval
    anomalies = _place(rng, kind, length, interval, rng.choice((2, 3)))
    phase = rng.uniform(-2.0, 2.0)
    sigma = u.noise / math.sqrt(interval / 60)
    growth = rng.uniform(-0.03, 0.08)  # per week: traffic grows, machines are replaced
    days_level = [rng.lognormvariate(0.0, DAY_TO_DAY) for _ in range(days + 1)]
    values = []
    for i in range(length):
        t = START + i * interval
        day, into = divmod((t - START) / DAY, 1.0)
        drift = (1 + growth) ** ((t - START) / (7 * DAY))
        drift *= days_level[int(day)] * (1 - into) + days_level[int(day) + 1] * into
        value = u.level * drift * seasonal_factor(t, u, phase)
        value *= rng.lognormvariate(0.0, sigma)
        if rng.random() < OUTLIER_RATE:
            value *= min(rng.paretovariate(2.5), 4.0)
        for anomaly in anomalies if inject else ():
            value *= _factor(anomaly, i, interval)
        values.append(min(value, u.cap) if u.cap is not None else value)
    name = f"{kind}-{unit}-{interval // 60}min-s{seed}"
    return LabelledSeries(name, kind, unit, interval, START, tuple(values), tuple(anomalies))


# (interval seconds, days) of the labelled corpus: minute data for two weeks, five-minute
# data for four (the cloud series the issue replayed were five-minute, weeks long).
CADENCES = ((60, 14), (300, 28))
QUICK_CADENCES = ((60, 5), (300, 14))


def corpus(seeds: int = 3, *, quick: bool = False) -> list[LabelledSeries]:
    """Every family x unit x cadence x seed."""
    cadences = QUICK_CADENCES if quick else CADENCES
    return [
        generate(kind, unit, interval=interval, days=days, seed=seed)
        for kind in KINDS
        for unit in UNITS
        for interval, days in cadences
        for seed in range(seeds)
    ]


# -- per-request simulations (exact per-minute p95) ---------------------------------------

# Lognormal request latency: median 17 ms, p95 38 ms (sigma = ln(38/17) / 1.645).
MEDIAN_MS = 17.0
SIGMA = math.log(38.0 / 17.0) / 1.6449
RATE = 20.0  # requests per second
LATENCY = UNITS["latency"]
# Request latency follows the daily cycle of the latency unit, never a weekend level.
DAILY_ONLY = Unit("latency", "ms", MEDIAN_MS, 0.0, LATENCY.daily, 1.0)

# (minutes since the release: array) -> latency (ms) for those requests, given their base.
Growth = Callable[[np.ndarray, np.ndarray], np.ndarray]
# A minute's request latencies -> its p95 (ms).
Quantile = Callable[[np.ndarray], float]


def exact_p95(latencies: np.ndarray) -> float:
    """The exact p95 (linear interpolation between the ranks around it)."""
    return float(np.quantile(latencies, 0.95))


def leak_ms_per_minute(ms: float) -> Growth:
    """A leak that adds ``ms`` milliseconds per minute since the release's first request."""
    return lambda base, since: base + ms * np.maximum(since, 0.0)


def creep_per_minute(fraction: float) -> Growth:
    """A creep of ``fraction`` of the latency per minute since the release."""
    return lambda base, since: base * (1 + fraction * np.maximum(since, 0.0))


def request_p95(
    seed: int,
    *,
    minutes: int,
    release_minute: int,
    growth: Growth | None = None,
    start: int = START + 10 * 3600,
    daily: float = LATENCY.daily,
    minute_noise: float = 0.05,
    p95: Quantile = exact_p95,
    bins: int = 1,
) -> list[tuple[int, float]]:
    """Per-minute exact p95 (``(minute start, ms)``) of simulated requests: Poisson arrivals
    at :data:`RATE`, lognormal latencies (median 17 ms, p95 38 ms) scaled by a daily cycle of
    relative amplitude ``daily`` and a per-minute lognormal factor ``minute_noise`` (load,
    garbage collection); from ``release_minute`` on each request's latency is ``growth(base,
    minutes since the release's start)``; ``p95`` reads each minute's p95 (exact by
    default, or through a sketch as the collector keeps it). ``bins`` > 1: the p95 of each
    of that many equal parts of every minute instead (``6``: the 10-second p95s the
    collector hands the trend test), as a series finer than a minute."""
    rng = np.random.default_rng(seed)
    unit = Unit("latency", "ms", MEDIAN_MS, 0.0, daily, 1.0)
    out = []
    for m in range(minutes):
        t = start + 60 * m
        n = max(1, int(rng.poisson(RATE * 60)))
        level = MEDIAN_MS * seasonal_factor(t, unit) * math.exp(rng.normal(0.0, minute_noise))
        base = level * rng.lognormal(0.0, SIGMA, n)
        within = np.sort(rng.random(n))  # when in the minute each request came
        if growth is not None and m >= release_minute:
            base = growth(base, (m - release_minute) + within)
        if bins == 1:
            out.append((t, p95(base)))
            continue
        parts = np.minimum((within * bins).astype(int), bins - 1)
        for b in range(bins):
            part = base[parts == b]
            if len(part):
                out.append((t + b * 60 // bins, p95(part)))
    return out


def noise_p95(seed: int, *, days: int) -> list[tuple[int, float]]:
    """``days`` of per-minute exact p95 of requests at 20/s, with the daily cycle and
    nothing injected (vectorised: the same model as :func:`request_p95`, whole days at a
    time, 1,200 requests a minute)."""
    rng = np.random.default_rng(10_000 + seed)
    out: list[tuple[int, float]] = []
    per_minute = int(RATE * 60)
    for day in range(days):
        t0 = START + day * DAY
        times = t0 + 60 * np.arange(1440)
        cycle = np.array([seasonal_factor(float(t), DAILY_ONLY) for t in times])
        level = MEDIAN_MS * cycle * np.exp(rng.normal(0.0, 0.05, 1440))
        samples = rng.lognormal(0.0, SIGMA, (1440, per_minute))
        p95 = level * np.quantile(samples, 0.95, axis=1)
        out.extend(zip(times.tolist(), p95.tolist(), strict=True))
    return out
