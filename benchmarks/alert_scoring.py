"""Scoring of detections on labelled series, the Numenta Anomaly Benchmark way (Lavin & Ahmad
2015, "standard" profile), and the detectors benchmarks/bench_alert_quality.py compares:
relman's default policy through `policy backtest`, a static mean + 3 sd rule and river's
Page-Hinkley test. A detection is the index of a point; see :func:`score_series`.
"""

from __future__ import annotations

import bisect
import math
import statistics
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from benchmarks.alert_series import PROBATION, WINDOW_FRACTION, LabelledSeries
from core.alerts.backtest import backtest

METRIC = "p95_ms"  # every series is replayed as the latency the leak rule reads


@dataclass(frozen=True, slots=True)
class Weights:
    """NAB's application profile: reward of a true positive, costs of a false positive and
    of a missed window."""

    tp: float = 1.0
    fp: float = 0.11
    fn: float = 1.0


STANDARD = Weights()


def scaled_sigmoid(position: float) -> float:
    """NAB's score of a detection at ``position`` relative to a window: -1 at the window's
    start gives ~0.987, its end 0; after it, positive positions go from 0 to -1 (from 3
    window widths on)."""
    if position > 3.0:
        return -1.0
    return 2.0 / (1.0 + math.exp(5.0 * position)) - 1.0


def windows(
    length: int, labels: Iterable[int], fraction: float = WINDOW_FRACTION
) -> list[tuple[int, int, int]]:
    """``(first, last, label)`` point indexes of NAB's windows: ``fraction`` of the length
    shared among the labels, centred on each; overlapping windows merge (keeping the first
    label)."""
    ordered = sorted(labels)
    if not ordered:
        return []
    half = int(fraction * length / len(ordered)) // 2
    out: list[tuple[int, int, int]] = []
    for label in ordered:
        first, last = max(0, label - half), min(length - 1, label + half)
        if out and first <= out[-1][1]:
            out[-1] = (out[-1][0], last, out[-1][2])
        else:
            out.append((first, last, label))
    return out


@dataclass(frozen=True, slots=True)
class SeriesScore:
    """One detector on one series: NAB's raw score and its null (nothing detected) and
    perfect (each window's first point) scores; windows detected (tp) and missed (fn),
    detections outside every window (fp), each detected window's delay in minutes, and
    the days scored (after the probation)."""

    raw: float
    null: float
    perfect: float
    tp: int
    fp: int
    fn: int
    delays: tuple[float, ...]
    days: float


def score_series(
    length: int,
    labels: Iterable[int],
    detections: Iterable[int],
    *,
    interval: int = 60,
    probation: float = PROBATION,
    weights: Weights = STANDARD,
    labelled_windows: Sequence[tuple[int, int]] | None = None,
) -> SeriesScore:
    """Score ``detections`` (point indexes) on a series of ``length`` points whose anomalies
    start at ``labels``. Detections in the first ``probation`` of the series are ignored (NAB's
    probationary period, uncapped). In a window, only the first detection counts, worth
    ``weights.tp * scaled_sigmoid(position)`` (early ~1, at the window's end 0); outside,
    each costs ``weights.fp`` scaled by the sigmoid of its distance past the previous window
    (a full 0.11 before the first window or 3 widths past one); each window without a
    detection costs ``weights.fn``. A delay is minutes from the anomaly's start (the label)
    to the window's first detection, 0 if that came before the start. ``labelled_windows``:
    a recorded series' own windows (NAB's), each label its window's centre."""
    wins = (
        [(first, last, (first + last) // 2) for first, last in labelled_windows]
        if labelled_windows is not None
        else windows(length, labels)
    )
    lasts = [w[1] for w in wins]
    skip = int(probation * length)
    hit: list[int | None] = [None] * len(wins)
    raw = 0.0
    fp = 0
    for d in sorted({d for d in detections if skip <= d < length}):
        i = bisect.bisect_left(lasts, d)  # the first window ending at or after d
        if i < len(wins) and wins[i][0] <= d:
            if hit[i] is None:
                first, last, _ = wins[i]
                raw += weights.tp * scaled_sigmoid(-(last - d + 1) / (last - first + 1))
                hit[i] = d
            continue
        fp += 1
        if i == 0:
            raw -= weights.fp
        else:
            first, last, _ = wins[i - 1]
            raw += weights.fp * scaled_sigmoid((d - last) / max(1, last - first))
    missed = sum(h is None for h in hit)
    raw -= weights.fn * missed
    delays = tuple(
        max(0, d - label) * interval / 60
        for (_, _, label), d in zip(wins, hit, strict=True)
        if d is not None
    )
    return SeriesScore(
        raw=raw,
        null=-weights.fn * len(wins),
        perfect=weights.tp * scaled_sigmoid(-1.0) * len(wins),
        tp=len(wins) - missed,
        fp=fp,
        fn=missed,
        delays=delays,
        days=(length - skip) * interval / 86_400,
    )


@dataclass(frozen=True, slots=True)
class Summary:
    """Scores of one detector over several series, summed before normalising (as NAB does
    over a corpus): the normalised score (100 perfect, 0 nothing detected), precision
    (windows detected over them plus false positives), recall (windows detected), mean
    delay (minutes) and false alarms per scored day. None where undefined."""

    score: float | None
    precision: float | None
    recall: float | None
    delay: float | None
    false_alarms_per_day: float
    tp: int
    fp: int
    fn: int
    series: int

    def to_dict(self) -> dict[str, Any]:
        return {
            "score": self.score,
            "precision": self.precision,
            "recall": self.recall,
            "delay_minutes": self.delay,
            "false_alarms_per_day": self.false_alarms_per_day,
            "tp": self.tp,
            "fp": self.fp,
            "fn": self.fn,
            "series": self.series,
        }


def normalised(raw: float, null: float, perfect: float) -> float | None:
    """NAB's ``100 * (raw - null) / (perfect - null)``; None when nothing was to be found."""
    if perfect == null:
        return None
    return 100.0 * (raw - null) / (perfect - null)


def summarise(scores: Sequence[SeriesScore]) -> Summary:
    """The corpus score of ``scores`` (one detector's)."""
    tp = sum(s.tp for s in scores)
    fp = sum(s.fp for s in scores)
    fn = sum(s.fn for s in scores)
    delays = [d for s in scores for d in s.delays]
    days = sum(s.days for s in scores)
    return Summary(
        score=normalised(
            sum(s.raw for s in scores), sum(s.null for s in scores), sum(s.perfect for s in scores)
        ),
        precision=tp / (tp + fp) if tp + fp else None,
        recall=tp / (tp + fn) if tp + fn else None,
        delay=statistics.fmean(delays) if delays else None,
        false_alarms_per_day=fp / days if days else 0.0,
        tp=tp,
        fp=fp,
        fn=fn,
        series=len(scores),
    )


# -- detectors: a labelled series -> the indexes of its detections ---------------------

Detector = Callable[[LabelledSeries], list[int]]


def mean_3sd(
    values: Sequence[float], *, train: float = PROBATION, k: float = 3.0, hold: int = 3
) -> list[int]:
    """A static rule: mean + ``k`` population sd of the first ``train`` of the series; a
    detection where ``hold`` consecutive points exceed it (at the ``hold``-th), re-armed by
    a point at or below it."""
    n = max(2, int(train * len(values)))
    limit = statistics.fmean(values[:n]) + k * statistics.pstdev(values[:n])
    out, run = [], 0
    for i, value in enumerate(values):
        run = run + 1 if value > limit else 0
        if run == hold:
            out.append(i)
    return out


def river_available() -> bool:
    try:
        import river.drift  # noqa: F401
    except ImportError:
        return False
    return True


def page_hinkley(values: Sequence[float]) -> list[int]:
    """river's ``drift.PageHinkley`` with its default parameters fed each value; a fresh
    one after each detection."""
    from river.drift import PageHinkley

    detector = PageHinkley()
    out = []
    for i, value in enumerate(values):
        detector.update(value)  # type: ignore[no-untyped-call]
        if detector.drift_detected:
            out.append(i)
            detector = PageHinkley()
    return out


class Relman:
    """relman's detections on a series replayed as :data:`METRIC` through `policy backtest`
    with ``policy`` (``{}``: the built-in defaults): the points where an alert goes
    ``firing`` (:meth:`firing`), or only those that page on-call as a new incident
    (:meth:`pages`: not grouped with another rule's incident; every firing where backtest
    does not say). The last series' replay is kept,
    so that both read one replay."""

    def __init__(self, policy: Mapping[str, Any] | None = None) -> None:
        self.policy = dict(policy or {})
        self._last: tuple[LabelledSeries, list[Any]] | None = None
        # Series name -> (point index, rule) of every firing of its replay.
        self.by_rule: dict[str, list[tuple[int, str]]] = {}

    def replay(self, series: LabelledSeries) -> list[Any]:
        if self._last is None or self._last[0] is not series:
            found = backtest(series.points(), METRIC, self.policy, service="bench", env="bench")
            self._last = (series, list(found))
            self.by_rule[series.name] = [
                (series.index(a.t), a.rule) for a in found if a.state == "firing"
            ]
        return self._last[1]

    def firing(self, series: LabelledSeries) -> list[int]:
        return sorted({series.index(a.t) for a in self.replay(series) if a.state == "firing"})

    def pages(self, series: LabelledSeries) -> list[int]:
        return sorted(
            {
                series.index(a.t)
                for a in self.replay(series)
                if a.state == "firing" and getattr(a, "pages", True)
            }
        )


@dataclass(frozen=True, slots=True)
class Result:
    """One detector's score on one series."""

    series: LabelledSeries
    detector: str
    score: SeriesScore


def run(series: Iterable[LabelledSeries], detectors: Mapping[str, Detector]) -> list[Result]:
    """Every detector on every series, scored."""
    out = []
    for s in series:
        for name, detect in detectors.items():
            found = detect(s)
            score = score_series(
                len(s.values), s.labels, found, interval=s.interval, labelled_windows=s.windows
            )
            out.append(Result(s, name, score))
    return out


def grouped(
    results: Iterable[Result], key: Callable[[LabelledSeries], str] = lambda s: "overall"
) -> dict[str, dict[str, Summary]]:
    """group (``key`` of a series: its family, its unit; one group by default) -> detector
    -> the summary of its series, in the order first seen."""
    scores: dict[str, dict[str, list[SeriesScore]]] = {}
    for r in results:
        scores.setdefault(key(r.series), {}).setdefault(r.detector, []).append(r.score)
    return {
        group: {name: summarise(s) for name, s in detectors.items()}
        for group, detectors in scores.items()
    }


def false_positives_by_rule(
    series: Iterable[LabelledSeries], firings: Mapping[str, list[tuple[int, str]]]
) -> dict[str, int]:
    """rule -> its firings scored as false positives (after the probation, outside every
    window; each rule's own, so a point where two rules fire counts for both)."""
    out: dict[str, int] = {}
    for s in series:
        wins = (
            s.windows
            if s.windows is not None
            else [(a, b) for a, b, _ in windows(len(s.values), s.labels)]
        )
        skip = int(PROBATION * len(s.values))
        for index, rule in firings.get(s.name, []):
            if index >= skip and not any(a <= index <= b for a, b in wins):
                out[rule] = out.get(rule, 0) + 1
    return dict(sorted(out.items(), key=lambda kv: (-kv[1], kv[0])))
