"""Detectors over per-minute series: a Prometheus-style threshold and a slow-leak CUSUM.

Both are small stateful objects fed one minute at a time::

    verdict = detector.update(minute, value)      # value None: no data that minute

and answer a :class:`Verdict` whose ``detail`` is the one line a person reads. Their state is
plain JSON (``to_dict`` / ``load_state``) so that the collector can persist it and resume
after a restart. Pure: no storage, no clock, no I/O.

Minutes are the start of the minute in Unix seconds (UTC), as in the metric store's rollups;
the detectors only count the minutes they are fed, so any increasing integer works.

Why a one-sided CUSUM for slow leaks
------------------------------------

The leak rule asks: has this release's latency (or error rate) moved *up* from where it
started, even though no single minute looks alarming? The three usual candidates:

- **Page-Hinkley** (Page 1954; Hinkley 1971, popular in stream mining, Gama et al. 2014)
  is a CUSUM whose reference is the running mean of *all observations so far*. A leak that
  starts with the release (the common case: the new build leaks from its first request)
  drags that running mean up with it, so the reference chases the creep and detection is
  late. We have a natural fixed reference, the release's own first minutes, so the plain
  CUSUM against it is the better-posed test.
- **EWMA** (Roberts 1959; Lucas & Saccucci 1990) has run-length properties comparable to
  the CUSUM for small persistent shifts, but its statistic forgets old evidence
  geometrically, while a creep keeps adding evidence; and its limit is in units of the
  smoothed mean, harder to explain in one line.
- **One-sided tabular CUSUM** (Page 1954; Montgomery, *Introduction to Statistical Quality
  Control*, ch. 9; Hawkins & Olwell 1998): ``S_t = max(0, S_{t-1} + z_t - k)`` with
  ``z_t = (x_t - mu0) / sigma0``, alarm when ``S_t > h``. It is the optimal detector of a
  persistent shift of size ``2k`` sigma (Lorden 1971; Moustakides 1986): the shortest
  worst-case detection delay for a given false-alarm rate. Each minute adds ``z_t - k``:
  pure noise (``E z = 0``) drifts the sum down and the floor at 0 forgets it, while any
  mean above ``mu0 + k sigma`` accumulates *linearly*. A ramp of ``d`` sigma per minute
  adds ``d t - k`` at minute ``t``, so the sum grows quadratically and crosses ``h`` at
  ``t ~ (k + sqrt(k^2 + 2 d h)) / d`` -- at +1 %/minute with 5 % noise (d = 0.2) that is
  a quarter of an hour, when the latency is up ~15-20 %, long before a static limit set
  with enough margin to stay quiet on noise (+50 %) would trip. ``S_t`` reads directly as
  "accumulated evidence, in sigmas", which is what the detail line prints.

We implement the CUSUM, with three adjustments for the way it is used here:

1. **Estimated mean.** ``mu0`` comes from only ``baseline_minutes`` (default 10) minutes,
   and a CUSUM with estimated parameters alarms far more often than its tables say (Jones,
   Champ & Rigdon 2004, J. Quality Technology 36(1)): a mean under-estimated by half a
   sigma, with k = 0.5, turns pure noise into a driftless random walk that reaches ``h``
   within the hour. So the allowance is widened by 2.5 standard errors of that mean,
   ``k_eff = k + 2.5 / sqrt(n)`` sigma (1.29 for n = 10), shrinking as
   ``baseline_minutes`` grows. ``mu0`` is the mean of the baseline minutes, leaving out
   the worst one beyond 3.5 MAD-sigmas of the median (at most one minute in ten: a cold
   start right after promotion).
2. **Robust, self-updating spread.** A spread estimated from 10 minutes is off by a third
   or more one time in twenty, and an under-estimated sigma inflates every ``z``. But
   unlike the mean, the spread can keep learning after the baseline without absorbing the
   leak: it is estimated from *moving ranges*, ``|x_t - x_{t-1}|`` -- the classical
   sigma of individuals charts (Montgomery, ch. 6) -- which a step moves once and a slow
   creep hardly at all. ``sigma = median moving range / 0.954`` (robust to spikes; 0.954
   is the median of ``|N(0, 2)|``) over the last 240 minutes of the release, floored at
   ``min_sigma`` so that a very quiet series (an error rate of exactly 0, a latency flat
   to the millisecond) does not turn every wiggle into many sigmas, and widened by
   ``1 + 1 / sqrt(m)`` for its own estimation error (m ranges). Simulated on pure noise
   with a new 10-minute baseline a day (k = 0.5, h = 8): the naive chart false-alarms
   ~5 times a day; with both margins but a spread fixed from the baseline (MAD or SD),
   ~0.2 a day (2-3 % of releases); with the moving-range spread, 0.01-0.03 a day (about
   0.5 % of releases) -- for a +1 %/min ramp caught in ~16 min instead of ~11.
3. **Winsorised increments** (Lucas & Crosier 1982, "Robust CUSUM"): ``z_t`` is clipped
   to ``+-clip`` (default ``h / 2``), so one minute, or two in a row, can never cross
   ``h`` alone: a single spike is the sudden rules' business, not a leak. ``S`` is also
   capped at ``2 h`` so that once the values are back to normal the alarm clears within
   ``h / k_eff`` minutes instead of paying back an unbounded debt.

Against the past
----------------

Where the environment has history at this time of day (core.alerts.seasonal), the first
minutes of a release are a poor reference twice over: a release that leaks from its first
request has already moved them, and a daily peak later reads as a leak. So when
:meth:`Cusum.update` is given an expectation, ``z_t = (x_t - level_t) / sigma_t`` runs
against that moving level instead, ``sigma_t`` the largest of the expectation's spread
(which includes how much one day differs from another), the spread its usual daily rise
implies (``Expectation.day_upper``: a series that bursts at any hour every day has a wide
one, so its everyday bursts add little evidence) and the moving-range spread, and the
allowance is ``k + PAST_MARGIN``. When the history runs out the sum starts again from
the release's own baseline.

Missing minutes (no traffic, no scrape) are skipped, never taken as zero. The detector
resets (learns a new baseline) when the release changes. ``benchmarks/bench_detectors.py``
measures delay and false alarms on step, ramp, spike and noise-only series.
"""

from __future__ import annotations

import bisect
import math
import statistics
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal, Protocol

if TYPE_CHECKING:
    from core.alerts.seasonal import Expectation

Direction = Literal["above", "below"]

# Estimation-error margins (module docstring, points 1 and 2): the allowance is widened by
# MEAN_MARGIN / sqrt(baseline minutes) sigmas, the spread by SPREAD_MARGIN / sqrt(ranges).
MEAN_MARGIN = 2.5
SPREAD_MARGIN = 1.0
# How many recent minute-to-minute changes the spread is estimated from (4 hours).
SPREAD_WINDOW = 240
# Allowance added, in sigmas, where the CUSUM runs against the environment's past: that
# expectation has an error of its own (docstring, "Against the past").
PAST_MARGIN = 1.0
# Floor of the spread against the past, as a share of its level (as the regression rule's):
# a day-to-day wander of a few per cent is not a leak however steady the series.
PAST_MIN_SPREAD = 0.05
# Points in a row without an expectation before the CUSUM leaves the past for the release's
# own baseline (a gap of a few minutes in the history holds it).
PAST_GRACE = 10

# How each metric of a per-minute point is named and printed in a detail line.
METRIC_LABELS: dict[str, str] = {
    "rps": "rps",
    "error_rate": "error rate",
    "p50_ms": "p50",
    "p95_ms": "p95",
    "p99_ms": "p99",
}
METRIC_UNITS: dict[str, str] = {
    "rps": "rps",
    "error_rate": "%",
    "p50_ms": "ms",
    "p95_ms": "ms",
    "p99_ms": "ms",
}


def format_value(value: float, unit: str = "") -> str:
    """``212 ms``, ``3.4 ms``, ``0.13 ms``, ``7.2%`` (a fraction), ``12.5 rps``, ``0.31``."""
    if unit == "ms":
        if abs(value) >= 10:
            return f"{value:.0f} ms"
        return f"{value:.1f} ms" if abs(value) >= 1 else f"{value:.2g} ms"
    if unit == "%":
        return f"{value * 100:.1f}%"
    if unit == "rps":
        return f"{value:.1f} rps"
    if unit:
        return f"{value:.3g} {unit}"
    return f"{value:.3g}"


@dataclass(frozen=True, slots=True)
class Verdict:
    """What a detector says about the current minute.

    ``breaching``: the condition holds now. ``sustained``: it has held long enough to fire
    (a threshold's ``for``); None for detectors without a ``for``, where breaching is
    enough. ``value`` None means no data this minute: the alert state holds, neither
    advancing nor clearing. ``threshold`` and ``baseline`` are in the metric's unit;
    ``score`` is a detector's own statistic (the CUSUM, in sigmas). ``unit``: how ``detail``
    prints ``value`` (:func:`format_value`), so that an open alert can show its worst value
    beside it; None when the line has no such value (a worded detail, or a limit below
    which it is worse).
    """

    breaching: bool
    value: float | None
    threshold: float | None
    baseline: float | None
    detail: str
    sustained: bool | None = None
    score: float | None = None
    unit: str | None = None

    @property
    def fires(self) -> bool:
        """Whether the condition has held long enough for the alert to fire."""
        return self.breaching if self.sustained is None else self.sustained


class Detector(Protocol):
    """The shape the alert rules drive."""

    def update(self, minute: int, value: float | None, release: str | None = None) -> Verdict:
        """Feed one minute and say what it means."""
        ...

    def reset(self) -> None:
        """Forget all history (a new release)."""
        ...

    def params(self) -> dict[str, Any]:
        """The construction parameters (JSON)."""
        ...

    def to_dict(self) -> dict[str, Any]:
        """Parameters and state (JSON), for :meth:`load_state`."""
        ...

    def load_state(self, data: Mapping[str, Any]) -> bool:
        """Resume from :meth:`to_dict`; False (state untouched) if the parameters differ."""
        ...


class Streak:
    """The state of a detector that counts breaching points in a row (``streak``): reset,
    saved and resumed alike (a subclass has ``kind`` and ``params()``)."""

    kind = "streak"
    streak = 0

    def params(self) -> dict[str, Any]:
        raise NotImplementedError

    def reset(self) -> None:
        self.streak = 0

    def to_dict(self) -> dict[str, Any]:
        return {"type": self.kind, "params": self.params(), "state": {"streak": self.streak}}

    def load_state(self, data: Mapping[str, Any]) -> bool:
        if data.get("type") != self.kind or data.get("params") != self.params():
            return False
        self.streak = int(data.get("state", {}).get("streak", 0))
        return True


class Threshold(Streak):
    """``value > threshold`` (or ``<`` with ``direction="below"``) for ``for_minutes``
    consecutive minutes, Prometheus' ``for``: ``breaching`` from the first such minute,
    ``sustained`` from the ``for_minutes``-th. A minute without data neither counts toward
    nor breaks the streak. ``for_minutes=1`` fires on the first breaching minute."""

    kind = "threshold"

    def __init__(
        self,
        threshold: float,
        for_minutes: int,
        direction: Direction = "above",
        *,
        label: str = "value",
        unit: str = "",
    ) -> None:
        if direction not in ("above", "below"):
            raise ValueError(f"direction must be 'above' or 'below', not {direction!r}")
        if for_minutes < 1:
            raise ValueError(f"for_minutes must be at least 1, not {for_minutes}")
        self.threshold = float(threshold)
        self.for_minutes = int(for_minutes)
        self.direction: Direction = direction
        self.label = label
        self.unit = unit
        self.streak = 0

    def _beyond(self, value: float) -> bool:
        if self.direction == "above":
            return value > self.threshold
        return value < self.threshold

    def update(self, minute: int, value: float | None, release: str | None = None) -> Verdict:
        del minute, release  # a threshold does not care when, nor which release
        if value is None or math.isnan(value):
            return Verdict(
                self.streak > 0,
                None,
                self.threshold,
                None,
                f"{self.label}: no data this minute",
                sustained=self.streak >= self.for_minutes,
            )
        shown = format_value(value, self.unit)
        limit = format_value(self.threshold, self.unit)
        if self._beyond(value):
            self.streak += 1
            op = ">" if self.direction == "above" else "<"
            sustained = self.streak >= self.for_minutes
            span = (
                f"for {self.streak} min"
                if sustained
                else f"for {self.streak} of {self.for_minutes} min"
            )
            detail = f"{self.label} {shown} {op} {limit} {span}"
            return Verdict(
                True, value, self.threshold, None, detail, sustained=sustained, unit=self._worst
            )
        self.streak = 0
        op = "<=" if self.direction == "above" else ">="
        detail = f"{self.label} {shown} {op} {limit}"
        return Verdict(
            False, value, self.threshold, None, detail, sustained=False, unit=self._worst
        )

    @property
    def _worst(self) -> str | None:
        """The unit of the value in the detail line, when a higher value is the worse one."""
        return self.unit if self.direction == "above" else None

    def params(self) -> dict[str, Any]:
        return {
            "threshold": self.threshold,
            "for_minutes": self.for_minutes,
            "direction": self.direction,
        }


@dataclass(frozen=True, slots=True)
class Baseline:
    """A release's reference level: the (trimmed) mean of its first ``minutes`` minutes,
    and the CUSUM allowance widened for the estimation error of that mean."""

    mean: float
    minutes: int
    k_eff: float

    def to_dict(self) -> dict[str, float]:
        return {"mean": self.mean, "minutes": self.minutes, "k_eff": self.k_eff}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Baseline:
        return cls(float(data["mean"]), int(data["minutes"]), float(data["k_eff"]))


def estimate_baseline(values: list[float], *, k: float, min_sigma: float) -> Baseline:
    """The reference level of ``values`` (module docstring, points 1 and 2)."""
    n = len(values)
    if n < 2:
        raise ValueError("a baseline needs at least 2 minutes")
    median = statistics.median(values)
    mad_sigma = 1.4826 * statistics.median(abs(v - median) for v in values)
    screen = 3.5 * max(mad_sigma, min_sigma)
    kept = list(values)
    # At most one minute in ten left out: a cold start, not half of the baseline.
    for _ in range(n // 10):
        worst = max(kept, key=lambda v: abs(v - median))
        if abs(worst - median) <= screen:
            break
        kept.remove(worst)
    return Baseline(statistics.fmean(kept), n, k + MEAN_MARGIN / math.sqrt(n))


def moving_range_sigma(ranges: list[float], min_sigma: float) -> tuple[float, float]:
    """(sigma, sigma used by the CUSUM) from minute-to-minute absolute changes, in any
    order: median moving range / 0.954 (the median of ``|N(0, 2 sigma^2)|``), floored at
    ``min_sigma``, then widened by ``1 + SPREAD_MARGIN / sqrt(len(ranges))``."""
    return _spread(sorted(ranges), min_sigma)


def _spread(ordered: list[float], min_sigma: float) -> tuple[float, float]:
    n = len(ordered)
    if n == 0:
        median = 0.0
    elif n % 2:
        median = ordered[n // 2]
    else:
        median = (ordered[n // 2 - 1] + ordered[n // 2]) / 2
    sigma = max(median / 0.954, min_sigma)
    if sigma <= 0:
        sigma = 1e-9  # a perfectly flat series and no floor: any change is a big change
    return sigma, sigma * (1.0 + SPREAD_MARGIN / math.sqrt(max(n, 1)))


class Cusum:
    """One-sided (upward) CUSUM of a per-minute series against the release's own baseline.

    ``k`` (allowance) and ``h`` (decision threshold) are in sigmas; the baseline mean is
    learned from the first ``baseline_minutes`` minutes with data after a release change
    (or the first minute fed), the spread from the moving ranges of the last
    ``SPREAD_WINDOW`` minutes. ``min_sigma`` floors the spread, in the metric's unit.
    ``clip`` bounds one minute's contribution (default ``h / 2``). ``breaching`` while the
    sum exceeds ``h``; no ``for``: the sum already is accumulated evidence.
    """

    kind = "cusum"

    def __init__(
        self,
        *,
        baseline_minutes: int = 10,
        k: float = 0.5,
        h: float = 8.0,
        min_sigma: float = 0.0,
        clip: float | None = None,
        label: str = "value",
        unit: str = "",
    ) -> None:
        if baseline_minutes < 2:
            raise ValueError(f"baseline_minutes must be at least 2, not {baseline_minutes}")
        if h <= 0 or k < 0 or min_sigma < 0:
            raise ValueError("CUSUM needs h > 0, k >= 0 and min_sigma >= 0")
        self.baseline_minutes = int(baseline_minutes)
        self.k = float(k)
        self.h = float(h)
        self.min_sigma = float(min_sigma)
        self.clip = float(clip) if clip is not None else self.h / 2
        self.label = label
        self.unit = unit
        self.release: str | None = None
        self.learning: list[float] = []
        self.baseline: Baseline | None = None
        self.ranges: deque[float] = deque()
        self._sorted: list[float] = []  # the same ranges, in order, for the median
        self.last: float | None = None
        self.score = 0.0
        self.against_past = False
        self.without_past = 0

    def reset(self) -> None:
        self.learning = []
        self.baseline = None
        self.ranges.clear()
        self._sorted = []
        self.last = None
        self.score = 0.0
        self.against_past = False
        self.without_past = 0

    def sigma(self) -> tuple[float, float]:
        """(current spread, spread used by the CUSUM), in the metric's unit."""
        return _spread(self._sorted, self.min_sigma)

    def _observe(self, value: float) -> None:
        if self.last is not None:
            change = abs(value - self.last)
            self.ranges.append(change)
            bisect.insort(self._sorted, change)
            if len(self.ranges) > SPREAD_WINDOW:
                old = self.ranges.popleft()
                del self._sorted[bisect.bisect_left(self._sorted, old)]
        self.last = value

    def update(
        self,
        minute: int,
        value: float | None,
        release: str | None = None,
        expected: Expectation | None = None,
        *,
        quiet: bool = False,
    ) -> Verdict:
        """Feed one minute. ``expected``: what the environment did at this time before
        (core.alerts.seasonal); where there is one, the sum runs against it instead of the
        release's first minutes (module docstring, "Against the past"). ``quiet``: nobody
        reads the line of a verdict against the past that does not breach (no open alert),
        so it is left unworded."""
        del minute  # only the order of the minutes matters; gaps are skipped
        if release is not None and release != self.release:
            if self.release is not None:
                self.reset()
            self.release = release
        valid = value is not None and not math.isnan(value)
        if expected is not None and valid:
            self.without_past = 0
            return self._against(float(value), expected, quiet)  # type: ignore[arg-type]
        if self.against_past:
            if not valid:
                return Verdict(
                    self.score > self.h, None, None, None, f"{self.label}: no data this minute"
                )
            # A gap in the history holds the sum; a past gone for PAST_GRACE points in a
            # row starts over from the release's own baseline.
            self.without_past += 1
            if self.without_past < PAST_GRACE:
                return Verdict(
                    self.score > self.h,
                    None,
                    None,
                    None,
                    f"{self.label}: no earlier history at this time; holding",
                )
            self.against_past = False
            self.score = 0.0
        base = self.baseline
        if value is None or math.isnan(value):
            return Verdict(
                base is not None and self.score > self.h,
                None,
                self._level(base),
                base.mean if base else None,
                f"{self.label}: no data this minute",
                score=self.score if base else None,
            )
        value = float(value)
        shown = format_value(value, self.unit)
        if base is None:
            self.learning.append(value)
            self._observe(value)
            got, need = len(self.learning), self.baseline_minutes
            if got < need:
                detail = f"{self.label} {shown}, learning baseline ({got}/{need} min)"
                return Verdict(False, value, None, None, detail)
            base = self.baseline = estimate_baseline(
                self.learning, k=self.k, min_sigma=self.min_sigma
            )
            self.learning = []
            detail = (
                f"{self.label} {shown}, baseline {format_value(base.mean, self.unit)}"
                f" +- {format_value(self.sigma()[0], self.unit)} learned over {need} min"
            )
            return Verdict(False, value, self._level(base), base.mean, detail, score=0.0)
        # The spread known *before* this minute: a jump does not widen its own yardstick.
        _, sigma_eff = self.sigma()
        self._observe(value)
        z = (value - base.mean) / sigma_eff
        z = max(-self.clip, min(self.clip, z))
        self.score = min(max(0.0, self.score + z - base.k_eff), 2 * self.h)
        mean = format_value(base.mean, self.unit)
        if self.score > self.h:
            detail = (
                f"{self.label} {shown}, creeping up from baseline {mean}"
                f" (CUSUM {self.score:.1f} > {self.h:.1f} sigma)"
            )
            return Verdict(
                True, value, self._level(base), base.mean, detail, score=self.score, unit=self.unit
            )
        detail = f"{self.label} {shown}, baseline {mean} (CUSUM {self.score:.1f} <= {self.h:.1f})"
        return Verdict(
            False, value, self._level(base), base.mean, detail, score=self.score, unit=self.unit
        )

    def _against(self, value: float, expected: Expectation, quiet: bool = False) -> Verdict:
        """One minute against the environment's past at this time: ``z`` in the largest of
        the expectation's spread, the spread its usual daily rise implies and the series'
        own moving-range spread, allowance widened by ``PAST_MARGIN`` for the error of the
        expectation itself."""
        if not self.against_past:
            self.against_past = True
            self.score = 0.0
        _, sigma_eff = self.sigma()
        self._observe(value)
        sigma = max(
            expected.spread,
            expected.day_upper or 0.0,
            sigma_eff,
            self.min_sigma,
            PAST_MIN_SPREAD * expected.level,
            1e-9,
        )
        z = max(-self.clip, min(self.clip, (value - expected.level) / sigma))
        k_eff = self.k + PAST_MARGIN
        self.score = min(max(0.0, self.score + z - k_eff), 2 * self.h)
        level = expected.level + k_eff * sigma
        if quiet and self.score <= self.h:
            detail = f"{self.label}: CUSUM against the past within {self.h:.1f} sigma"
            return Verdict(False, value, level, expected.level, detail, score=self.score)
        shown = format_value(value, self.unit)
        base = f"{format_value(expected.level, self.unit)} {expected.words()}"
        if self.score > self.h:
            detail = (
                f"{self.label} {shown}, creeping up from {base}"
                f" (CUSUM {self.score:.1f} > {self.h:.1f} sigma)"
            )
            return Verdict(
                True, value, level, expected.level, detail, score=self.score, unit=self.unit
            )
        detail = f"{self.label} {shown} vs {base} (CUSUM {self.score:.1f} <= {self.h:.1f})"
        return Verdict(
            False, value, level, expected.level, detail, score=self.score, unit=self.unit
        )

    def _level(self, base: Baseline | None) -> float | None:
        """The value above which a minute adds evidence: ``mean + k_eff * sigma_eff``."""
        if base is None:
            return None
        return base.mean + base.k_eff * self.sigma()[1]

    def params(self) -> dict[str, Any]:
        return {
            "baseline_minutes": self.baseline_minutes,
            "k": self.k,
            "h": self.h,
            "min_sigma": self.min_sigma,
            "clip": self.clip,
        }

    def to_dict(self) -> dict[str, Any]:
        return {
            "type": self.kind,
            "params": self.params(),
            "state": {
                "release": self.release,
                "learning": list(self.learning),
                "baseline": self.baseline.to_dict() if self.baseline else None,
                "ranges": list(self.ranges),
                "last": self.last,
                "score": self.score,
                "against_past": self.against_past,
                "without_past": self.without_past,
            },
        }

    def load_state(self, data: Mapping[str, Any]) -> bool:
        if data.get("type") != self.kind or data.get("params") != self.params():
            return False
        state = data.get("state", {})
        release = state.get("release")
        self.release = str(release) if release is not None else None
        self.learning = [float(v) for v in state.get("learning", [])]
        base = state.get("baseline")
        self.baseline = Baseline.from_dict(base) if base else None
        self.ranges = deque(float(v) for v in state.get("ranges", [])[-SPREAD_WINDOW:])
        self._sorted = sorted(self.ranges)
        last = state.get("last")
        self.last = float(last) if last is not None else None
        self.score = float(state.get("score", 0.0))
        self.against_past = bool(state.get("against_past", False))
        self.without_past = int(state.get("without_past", 0))
        return True
