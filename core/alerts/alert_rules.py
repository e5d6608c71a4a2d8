"""What each alert rule watches, and how it reads a minute.

The rules a checked policy makes (:func:`standard_rules`), in order:

- ``latency_p99`` and ``error_rate`` (``sudden``): a threshold sustained ``for`` minutes,
  the absolute limits (SLOs) a person sets;
- ``latency_regression`` (``regression``, on ``leak_metric``): far above what the
  environment did at this time before (core.alerts.regression, core.alerts.seasonal), by a
  ratio and in spreads, whatever the unit, for a few minutes, or at once when extreme;
- ``latency_drop`` (``regression``): the median of a window far below it;
- ``latency_trend`` (``trend``): rising significantly since the release, or over the last
  ``trend_window_minutes`` (core.alerts.trend), for a release worse from its first request;
- ``latency_leak`` and ``error_leak`` (``leak``): the CUSUM of core.alerts.detect, against
  the environment's past where there is one, else the release's first minutes;
- ``down`` (the scrape failed or /readyz was not 200); ``performance`` (live accuracy more
  than ``accuracy_max_drop`` below the release's offline metric); and ``drift:FEATURE``
  (:func:`drift_rule`; PSI of one feature above ``drift_psi_max``).

Durations in minutes become points of the series (:func:`points`): a backtest of 5-minute
data holds a 3-minute ``for`` for one point. :meth:`Rule.verdict` feeds the rule's detector
the minute's value and words its detail line; the verdict moves the rule's alert
(core.alerts.alert_state) on. Rules watching one cause share a :attr:`Rule.group`.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from core.alerts.alert_state import AlertState
from core.alerts.detect import (
    METRIC_LABELS,
    METRIC_UNITS,
    Cusum,
    Detector,
    Threshold,
    Verdict,
    format_value,
)
from core.alerts.regression import Regression
from core.alerts.seasonal import Expectation
from core.alerts.trend import Trend

# The detectors judged against an expectation, with quiet verdicts (Rule.verdict).
_AGAINST_THE_PAST = (Regression, Cusum)
Kind = Literal["sudden", "regression", "trend", "leak", "drift", "performance", "down"]
# The ``severity`` label an alert of each kind carries beyond relman (Prometheus rules,
# Alertmanager): a broken limit a person set, or an environment down, is critical; a move
# away from the past, a trend, a leak, a drift or a drop of accuracy warns.
SEVERITY: dict[Kind, str] = {
    "sudden": "critical",
    "down": "critical",
    "regression": "warning",
    "trend": "warning",
    "leak": "warning",
    "drift": "warning",
    "performance": "warning",
}
# Floor of the error-rate baseline's spread: a healthy service often has exactly 0 errors,
# and one failed request among a few dozen must not read as many sigmas.
ERROR_RATE_MIN_SIGMA = 0.005


@dataclass(slots=True)
class Rule:
    """One alert rule: what it reads (``metric``, the per-minute series; None for down,
    drift, performance), its detector, and its alert."""

    name: str
    kind: Kind
    metric: str | None
    detector: Detector
    alert: AlertState = field(default_factory=AlertState)

    @property
    def group(self) -> str:
        """The cause the rule watches (rules of one group page once: core.alerts.alerting):
        ``latency``, ``errors``, ``drift``, or the rule's own name."""
        if self.name.startswith("drift:"):
            return "drift"
        if self.metric in ("p50_ms", "p95_ms", "p99_ms"):
            return "latency"
        if self.metric == "error_rate":
            return "errors"
        return self.name

    def verdict(
        self,
        minute: int,
        point: Mapping[str, float | None],
        release: str | None,
        *,
        up: bool,
        drift: Mapping[str, float] | None,
        accuracy: tuple[float, float] | None,
        policy: Mapping[str, Any],
        expected: Expectation | None = None,
        samples: Sequence[float | None] | None = None,
    ) -> Verdict:
        """The rule's verdict of one minute (the arguments of core.alerts.alerting's
        ``Rules.evaluate``; ``policy``: the checked parameters; ``expected``: the metric's
        expectation from the environment's past; ``samples``: its values finer than the
        minute, for the trend)."""
        if self.metric is not None:
            value = point.get(self.metric)
            detector = self.detector
            if isinstance(detector, _AGAINST_THE_PAST):
                # With no open alert a verdict that does not breach is never read: its line
                # need not be worded (a month of minutes replays faster).
                quiet = self.alert.status not in ("pending", "firing")
                return detector.update(minute, value, release, expected, quiet=quiet)
            if isinstance(detector, Trend):
                level = expected.level if expected is not None else None
                quiet = self.alert.status not in ("pending", "firing")
                verdict = detector.update(minute, value, release, samples, level, quiet=quiet)
                if expected is None or value is None or not verdict.breaching:
                    return verdict
                usual = max(expected.level + 3 * expected.spread, 1.1 * expected.level)
                if value > usual:
                    return verdict
                # Rising, but back to what this hour usually is (a dip that ends).
                shown = format_value(expected.level, METRIC_UNITS[self.metric])
                detail = f"{verdict.detail.split(',')[0]}, rising back to the usual {shown}"
                return Verdict(
                    False, value, verdict.threshold, expected.level, detail, unit=verdict.unit
                )
            return detector.update(minute, value, release)
        if self.kind == "down":
            verdict = self.detector.update(minute, 0.0 if up else 1.0)
            if verdict.breaching:
                streak = getattr(self.detector, "streak", 1)
                detail = f"down for {streak} min: scrape failed or /readyz not 200"
            else:
                detail = "up: scrape and /readyz answer"
            return _with(verdict, detail, value=1.0 if not up else 0.0)
        if self.kind == "drift":
            feature = self.name.removeprefix("drift:")
            psi = drift.get(feature) if drift else None
            verdict = self.detector.update(minute, psi)
            if psi is None:
                return verdict
            window = int(policy["drift_window_minutes"])
            limit = float(policy["drift_psi_max"])
            op = ">" if verdict.breaching else "<="
            detail = f"{feature} PSI {psi:.2f} {op} {limit:.2f} over the last {window} min"
            return _with(verdict, detail)
        # performance: the drop of live accuracy below the offline metric
        if accuracy is None:
            return self.detector.update(minute, None)
        live, offline = accuracy
        drop = offline - live
        verdict = self.detector.update(minute, drop)
        max_drop = float(policy["accuracy_max_drop"])
        if verdict.breaching:
            detail = (
                f"live accuracy {live:.3f}, {drop:.3f} below offline {offline:.3f}"
                f" (max drop {max_drop:.3f})"
            )
        else:
            detail = f"live accuracy {live:.3f}, offline {offline:.3f} (max drop {max_drop:.3f})"
        return _with(verdict, detail, baseline=offline)


def points(minutes: float, interval: int) -> int:
    """How many points of a series at ``interval`` seconds span ``minutes`` (at least 1)."""
    return max(1, math.ceil(minutes * 60 / interval))


def standard_rules(policy: Mapping[str, Any], interval: int = 60) -> list[Rule]:
    """Every rule but the drift ones, in order, from the checked parameters, for a series
    of one point every ``interval`` seconds (the collector's minutes; a backtest's own)."""
    p = policy
    leak_metric = str(p["leak_metric"])
    label, unit = METRIC_LABELS[leak_metric], METRIC_UNITS[leak_metric]
    return [
        Rule(
            "latency_p99",
            "sudden",
            "p99_ms",
            Threshold(
                float(p["latency_p99_ms"]),
                points(int(p["latency_for_minutes"]), interval),
                label="p99",
                unit="ms",
            ),
        ),
        Rule(
            "error_rate",
            "sudden",
            "error_rate",
            Threshold(
                float(p["error_rate_max"]),
                points(int(p["error_for_minutes"]), interval),
                label="error rate",
                unit="%",
            ),
        ),
        _regression(
            "latency_regression",
            p,
            interval,
            ratio=float(p["regression_ratio"]),
            # Two points at least: one odd 5-minute point is an outlier, not a regression.
            for_points=max(2, points(int(p["regression_for_minutes"]), interval)),
            severe_ratio=float(p["regression_severe_ratio"]),
            severe_z=float(p["regression_severe_z"]),
            severe_points=points(int(p["regression_severe_for_minutes"]), interval),
        ),
        _regression(
            "latency_drop",
            p,
            interval,
            ratio=float(p["drop_ratio"]),
            # Only the median of the window judges: a drop is a level, not a point.
            for_points=0,
            window_points=max(2, points(int(p["drop_for_minutes"]), interval)),
            direction="below",
        ),
        Rule(
            "latency_trend",
            "trend",
            leak_metric,
            Trend(
                # Room for the test's 8 points at least, whatever the interval.
                window_minutes=max(int(p["trend_window_minutes"]), 8 * interval // 60),
                min_slope=float(p["trend_min_slope"]),
                p_max=float(p["trend_p_max"]),
                label=label,
                unit=unit,
            ),
        ),
        Rule(
            "latency_leak",
            "leak",
            leak_metric,
            _cusum(p, float(p["leak_min_sigma_ms"]), leak_metric, interval),
        ),
        Rule(
            "error_leak",
            "leak",
            "error_rate",
            _cusum(p, ERROR_RATE_MIN_SIGMA, "error_rate", interval),
        ),
        Rule(
            "down",
            "down",
            None,
            Threshold(0.5, points(int(p["down_for_minutes"]), interval), label="down"),
        ),
        Rule(
            "performance",
            "performance",
            None,
            Threshold(float(p["accuracy_max_drop"]), 1, label="accuracy drop"),
        ),
    ]


def _regression(name: str, policy: Mapping[str, Any], interval: int, **tiers: Any) -> Rule:
    """A rule of kind ``regression`` on ``leak_metric``, its tiers given."""
    metric = str(policy["leak_metric"])
    detector = Regression(
        z=float(policy["regression_z"]),
        label=METRIC_LABELS[metric],
        unit=METRIC_UNITS[metric],
        minutes_per_point=interval / 60,
        **tiers,
    )
    return Rule(name, "regression", metric, detector)


def drift_rule(feature: str, policy: Mapping[str, Any]) -> Rule:
    """The drift rule of one feature: its PSI above ``drift_psi_max``."""
    limit = float(policy["drift_psi_max"])
    return Rule(f"drift:{feature}", "drift", None, Threshold(limit, 1, label=f"{feature} PSI"))


def _cusum(policy: Mapping[str, Any], min_sigma: float, metric: str, interval: int) -> Cusum:
    p = policy
    return Cusum(
        baseline_minutes=max(2, points(int(p["leak_baseline_minutes"]), interval)),
        k=float(p["leak_k"]),
        h=float(p["leak_h"]),
        min_sigma=min_sigma,
        label=METRIC_LABELS[metric],
        unit=METRIC_UNITS[metric],
    )


def _with(
    verdict: Verdict,
    detail: str,
    *,
    value: float | None = None,
    baseline: float | None = None,
) -> Verdict:
    return Verdict(
        verdict.breaching,
        verdict.value if value is None else value,
        verdict.threshold,
        verdict.baseline if baseline is None else baseline,
        detail,
        sustained=verdict.sustained,
        score=verdict.score,
    )
