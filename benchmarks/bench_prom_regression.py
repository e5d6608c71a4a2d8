"""How far the exported latency_regression rule (core/alerts/prom_rules.py, `relman policy
export --format prometheus`) is from relman's own, measured with relman's backtest machinery
(issue 16): the same labelled series replayed through `policy backtest`
(core.alerts.backtest, the ``latency_regression`` firings only) and through the exported
rule as Prometheus evaluates it, scored alike (benchmarks/alert_scoring.py, NAB's standard
profile), plus false alarms a day on noise with a daily cycle (benchmarks/alert_series.py).

The exported rule, emulated point by point of the series (Prometheus at one evaluation per
point): the level is the median, over the last 7 days (``season`` auto or daily; 3 weeks for
weekly), of the median of each day's points within +-5 minutes of this time
(the rule reads a 10-minute median recorded once a minute at an offset of N days less 5
minutes: its window may sit up to a minute earlier than here); it breaches where
``value >= max(regression_ratio, 1 + regression_z * 0.05) * level`` and
``value - level >= regression_z * leak_min_sigma_ms``, and once open (pending or firing)
at half of each (relman's hysteresis, through Prometheus' ALERTS series); it fires once the
breach held ``for`` (``max(2, regression_for_minutes)`` minutes, counted from the first
breaching evaluation) and keeps firing ``resolve_for_minutes`` after the last breach.
relman's rule also needs ``regression_z`` spreads measured from the history, holds one
expectation per 5 minutes, widens the window for data coarser than 5 minutes, and picks
the season (auto) itself.

    python benchmarks/bench_prom_regression.py [--quick] [--seeds 2] [--json]
"""

from __future__ import annotations

import argparse
import json
import sys
import warnings
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.alert_scoring import METRIC, grouped, run
from benchmarks.alert_series import KINDS, LabelledSeries, corpus, noise_p95
from benchmarks.bench_alert_quality import table
from core.alerts.alert_rules import standard_rules
from core.alerts.alerting import check_policy
from core.alerts.backtest import backtest
from core.alerts.prom_rules import HALF_WINDOW_MINUTES, SEASON_LAGS
from core.alerts.regression import Regression

POLICY: dict[str, Any] = {}  # the built-in defaults


def relman_regression(points: list[tuple[int, float]]) -> list[int]:
    """Times relman's latency_regression starts firing on ``points`` (`policy backtest`)."""
    alerts = backtest(points, METRIC, POLICY, service="bench", env="bench")
    return [a.t for a in alerts if a.rule == "latency_regression" and a.state == "firing"]


def exported_regression(times: np.ndarray, values: np.ndarray, interval: int) -> list[int]:
    """Times the exported rule (module docstring) starts firing on a regular series."""
    policy = check_policy(POLICY)
    rule = next(r for r in standard_rules(policy) if r.name == "latency_regression")
    detector = rule.detector
    assert isinstance(detector, Regression)
    season = "weekly" if policy["season"] == "weekly" else "daily"
    lags, period_minutes = SEASON_LAGS[season]
    level = _level(values, interval, lags, period_minutes * 60)
    opening = _breach(values, level, detector.ratio, detector.z, detector)
    # once open (pending or firing, Prometheus' ALERTS series), half the way holds it
    holding = _breach(values, level, 1 + (detector.ratio - 1) / 2, detector.z / 2, detector)
    for_seconds = detector.for_points * 60
    keep_seconds = int(policy["resolve_for_minutes"]) * 60
    out: list[int] = []
    state, since, cleared = "inactive", 0, 0
    for i, t in enumerate(times.tolist()):
        hit = bool(holding[i] if state != "inactive" else opening[i])
        if state == "inactive":
            if hit:
                state, since = "pending", t
        elif state == "pending":
            if not hit:
                state = "inactive"
            elif t - since >= for_seconds:
                state = "firing"
                out.append(t)
        elif hit:
            cleared = 0
        else:
            cleared = cleared or t
            if t - cleared >= keep_seconds:
                state, cleared = "inactive", 0
    return out


def _breach(
    values: np.ndarray, level: np.ndarray, ratio: float, z: float, detector: Regression
) -> np.ndarray:
    """The exported test at each point: ``ratio`` times the level and ``z`` spreads at their
    floors above it (False where there is no level)."""
    need = max(ratio, 1 + z * detector.min_spread)
    return (values >= need * level) & (values - level >= z * detector.min_sigma)


def _level(values: np.ndarray, interval: int, lags: int, period: int) -> np.ndarray:
    """The exported baseline at each point: the median over lags of the window medians."""
    half = HALF_WINDOW_MINUTES * 60 // interval  # points each side of the window's centre
    width = 2 * half + 1
    windows = np.lib.stride_tricks.sliding_window_view(values, width)
    centred = np.full(len(values), np.nan)
    centred[half : half + len(windows)] = np.median(windows, axis=1)
    shift = period // interval
    per_lag = np.full((lags, len(values)), np.nan)
    for k in range(1, lags + 1):
        if k * shift < len(values):
            per_lag[k - 1, k * shift :] = centred[: len(values) - k * shift]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN before the first day
        return np.nanmedian(per_lag, axis=0)


def detections(series: LabelledSeries, fired: list[int]) -> list[int]:
    return sorted({series.index(t) for t in fired})


def detectors() -> dict[str, Any]:
    return {
        "relman": lambda s: detections(s, relman_regression(s.points())),
        "exported": lambda s: detections(
            s,
            exported_regression(
                np.array([t for t, _ in s.points()]), np.array(s.values, float), s.interval
            ),
        ),
    }


def noise(seeds: int, days: int) -> dict[str, float]:
    """Firings a day of each rule on ``days`` of per-minute p95 with nothing injected."""
    counts = {"relman": 0, "exported": 0}
    for seed in range(seeds):
        points = noise_p95(seed, days=days)
        counts["relman"] += len(relman_regression(points))
        times = np.array([t for t, _ in points])
        counts["exported"] += len(exported_regression(times, np.array([v for _, v in points]), 60))
    return {name: n / (seeds * days) for name, n in counts.items()}


def measure(seeds: int, quick: bool) -> dict[str, Any]:
    series = corpus(seeds, quick=quick)
    results = run(series, detectors())
    families = grouped(results, lambda s: s.family)
    return {
        "series": len(series),
        "families": {k: families[k] for k in KINDS if k in families},
        "overall": grouped(results)["overall"],
        "noise_days": 3 if quick else 7,
        "noise_seeds": 2 if quick else 5,
        "noise_per_day": noise(2 if quick else 5, 3 if quick else 7),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seeds", type=int, default=2)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    doc = measure(args.seeds, args.quick)
    if args.json:
        plain = {
            g: {d: s.to_dict() for d, s in by.items()}
            for g, by in (doc["families"] | {"overall": doc["overall"]}).items()
        }
        print(json.dumps({**doc, "families": plain, "overall": None}, indent=2, default=str))
        return
    print(
        f"latency_regression, built-in defaults: relman's (policy backtest) vs the exported "
        f"rule, emulated; {doc['series']} labelled series as {METRIC}"
    )
    for line in table(doc["families"] | {"overall": doc["overall"]}):
        print(line)
    per_day = doc["noise_per_day"]
    print(
        f"false alarms a day on noise ({doc['noise_seeds']} seeds x {doc['noise_days']} days "
        f"of per-minute p95 at 20 req/s): relman {per_day['relman']:.2f}, exported "
        f"{per_day['exported']:.2f}"
    )
    r, e = doc["overall"]["relman"], doc["overall"]["exported"]
    delta = None if r.delay is None or e.delay is None else e.delay - r.delay
    print(
        f"difference (exported - relman): recall {(e.recall or 0) - (r.recall or 0):+.2f}, "
        f"precision {(e.precision or 0) - (r.precision or 0):+.2f}, delay "
        f"{'-' if delta is None else f'{delta:+.1f} min'}, false alarms/day "
        f"{e.false_alarms_per_day - r.false_alarms_per_day:+.2f}"
    )


if __name__ == "__main__":
    main()
