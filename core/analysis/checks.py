"""The five checks of an analysis, each from the data of one window to one
:class:`~core.analysis.results.CheckResult` line (pure: the benchmark calls them as
:func:`core.analysis.measurement.measure` does).

- error-rate: the sequential test of :mod:`core.analysis.stats`, at ``1 - confidence``.
- latency, prediction-mix, shadow-agreement, accuracy: a limit from relman.toml. Within it:
  pass. Beyond it by more than the sampling noise, at ``(1 - confidence) / count`` per
  measurement (so an analysis step's ``count`` looks together stay under ``1 - confidence``):
  fail. Beyond it but within the noise: inconclusive, the step's ``inconclusive`` setting
  decides (measure on, pause, abort).

Every check is inconclusive while either side has fewer than ``min_requests`` requests (or
records, or labels) in the window.
"""

from __future__ import annotations

import math
from bisect import bisect_right
from collections import Counter
from collections.abc import Sequence

from core.analysis.access import Requests
from core.analysis.results import CheckResult, Verdict
from core.analysis.stats import (
    binomial_sf,
    contingency_p,
    error_buckets,
    normal_sf,
    quantile,
    quantile_upper_index,
    sequential_p,
)
from core.config.model import AnalysisConfig

__all__ = ["accuracy", "error_rate", "latency", "prediction_mix", "shadow_agreement"]

QUANTILES = {"p50": 0.50, "p95": 0.95, "p99": 0.99}
# Predictions with more distinct numeric values than this are binned (a regression), else
# each value is a class.
MAX_CLASSES = 20
BINS = 10


def look_alpha(analysis: AnalysisConfig) -> float:
    """The significance level of one measurement of a limit check."""
    return (1.0 - analysis.confidence) / analysis.count


# ------------------------------------------------------------------------------ error rate


def error_rate(
    stable: Requests, canary: Requests, analysis: AnalysisConfig, *, since: float
) -> CheckResult:
    """Does the new release fail (5xx) more often than the stable one? The requests of
    [since, until) of each side; ``since`` anchors the minutes the test is cut into."""
    stable_figure = _rate(stable.errors, stable.count)
    canary_figure = _rate(canary.errors, canary.count)
    head = f"5xx {canary_figure} vs stable {stable_figure}"
    few = _too_few(stable.count, canary.count, analysis.min_requests, "requests")
    if few:
        return _result(
            "error-rate", stable_figure, canary_figure, "inconclusive", f"{head} ({few})"
        )
    alpha = 1.0 - analysis.confidence
    buckets = error_buckets(stable.times, stable.failed, canary.times, canary.failed, since)
    p = sequential_p(buckets)
    ratio = _ratio_text(canary.errors / canary.count, stable.errors / stable.count)
    if p < alpha:
        return _result(
            "error-rate",
            stable_figure,
            canary_figure,
            "fail",
            f"{head} ({ratio}; always-valid p {p:.2g} < {alpha:g})",
        )
    return _result(
        "error-rate",
        stable_figure,
        canary_figure,
        "pass",
        f"{head} ({ratio}; always-valid p {p:.2g} >= {alpha:g})",
    )


def _ratio_text(canary: float, stable: float) -> str:
    if stable > 0:
        ratio = canary / stable
        return f"x{ratio:.1f}" if ratio < 10 else f"x{ratio:.0f}"
    return "none on the stable" if canary > 0 else "none on either"


# ------------------------------------------------------------------------------- latency


def latency(stable: Requests, canary: Requests, analysis: AnalysisConfig) -> CheckResult:
    """Is the new release's latency quantile more than ``latency_max_ratio`` times the
    stable's? Durations of the requests that did not fail."""
    name, q, limit = (
        analysis.latency_quantile,
        QUANTILES[analysis.latency_quantile],
        analysis.latency_max_ratio,
    )
    few = _too_few(len(stable.ms), len(canary.ms), analysis.min_requests, "answered requests")
    if few:
        stable_figure = _ms_figure(stable.ms, q)
        canary_figure = _ms_figure(canary.ms, q)
        detail = f"{name} {canary_figure} vs stable {stable_figure} ({few})"
        return _result("latency", stable_figure, canary_figure, "inconclusive", detail)
    ordered_stable, ordered_canary = sorted(stable.ms), sorted(canary.ms)
    stable_q, canary_q = quantile(ordered_stable, q), quantile(ordered_canary, q)
    ratio = canary_q / stable_q if stable_q > 0 else (math.inf if canary_q > 0 else 1.0)
    stable_figure, canary_figure = _ms(stable_q), _ms(canary_q)
    head = f"{name} {canary_figure} vs stable {stable_figure} (x{ratio:.3g}"
    if ratio <= limit:
        return _result("latency", stable_figure, canary_figure, "pass", f"{head} <= x{limit:g})")
    half = look_alpha(analysis) / 2
    rank = quantile_upper_index(len(ordered_stable), q, half)
    if rank is None:  # too few for the order statistic: only a canary far beyond fails
        return _beyond_the_slowest(ordered_stable, ordered_canary, analysis, head, stable_figure,
                                   canary_figure)  # fmt: skip
    threshold = limit * ordered_stable[rank - 1]
    slower = len(ordered_canary) - bisect_right(ordered_canary, threshold)
    p = binomial_sf(slower, len(ordered_canary), 1.0 - q)
    share = f"{_percent(slower / len(ordered_canary))} of {len(ordered_canary)} slower than"
    evidence = f"{share} {_ms(threshold)}, {_percent(1.0 - q)} allowed"
    if p < half:
        detail = f"{head} > x{limit:g}; {evidence})"
        return _result("latency", stable_figure, canary_figure, "fail", detail)
    detail = f"{head} > x{limit:g}, within the noise: {evidence})"
    return _result("latency", stable_figure, canary_figure, "inconclusive", detail)


def _beyond_the_slowest(
    ordered_stable: list[float], ordered_canary: list[float], analysis: AnalysisConfig,
    head: str, stable_figure: str, canary_figure: str,
) -> CheckResult:  # fmt: skip
    """The latency check with the stable's slowest request as the bound of its quantile
    (module doc of core.analysis.stats): for too few stable requests to bound it otherwise."""
    name, q, limit = (
        analysis.latency_quantile,
        QUANTILES[analysis.latency_quantile],
        analysis.latency_max_ratio,
    )
    n, m = len(ordered_stable), len(ordered_canary)
    threshold = limit * ordered_stable[-1]
    slower = m - bisect_right(ordered_canary, threshold)
    uncovered = q**n  # the chance that all n are faster than the stable's quantile
    p = binomial_sf(slower, m, 1.0 - q)
    evidence = (
        f"{_percent(slower / m)} of {m} slower than {_ms(threshold)} (x{limit:g} the stable's "
        f"slowest of {n}), {_percent(1.0 - q)} allowed"
    )
    if uncovered + p < look_alpha(analysis):
        detail = f"{head} > x{limit:g}; {evidence})"
        return _result("latency", stable_figure, canary_figure, "fail", detail)
    detail = f"{head} > x{limit:g}; too few stable requests to bound its {name}: {evidence})"
    return _result("latency", stable_figure, canary_figure, "inconclusive", detail)


def _ms_figure(values: Sequence[float], q: float) -> str:
    return _ms(quantile(sorted(values), q)) if values else "no requests"


def _ms(value: float) -> str:
    return f"{value:.0f} ms" if value >= 10 else f"{value:.1f} ms"


# ------------------------------------------------------------------------ prediction mix


def prediction_mix(
    stable: Sequence[str | None], canary: Sequence[str | None], analysis: AnalysisConfig
) -> CheckResult:
    """Does the new release predict a different mix (classes, or bins of numeric values)
    than the stable one over the same minutes? PSI as core.drift measures it."""
    from core.drift.stats import share_distance

    ours = [p for p in stable if p is not None]
    theirs = [p for p in canary if p is not None]
    few = _too_few(len(ours), len(theirs), analysis.min_requests, "predictions")
    if few:
        stable_figure, canary_figure = f"{len(ours)} predictions", f"{len(theirs)} predictions"
        return _result("prediction-mix", stable_figure, canary_figure, "inconclusive", few)
    numbers = _numbers(ours + theirs)
    if numbers is not None:
        value, stable_counts, canary_counts = _binned_psi(
            numbers[: len(ours)], numbers[len(ours) :]
        )
        what = f"{len(stable_counts)} bins of the values"
        stable_figure = f"median {_g(_median(numbers[: len(ours)]))} of {len(ours)}"
        canary_figure = f"median {_g(_median(numbers[len(ours) :]))} of {len(theirs)}"
        moved = ""
    else:
        counted_stable, counted_canary = Counter(ours), Counter(theirs)
        stable_shares, canary_shares = _shares(counted_stable), _shares(counted_canary)
        value = share_distance(stable_shares, canary_shares)
        classes = sorted(set(stable_shares) | set(canary_shares))
        stable_counts = [counted_stable[c] for c in classes]
        canary_counts = [counted_canary[c] for c in classes]
        top = max(classes, key=lambda c: abs(canary_shares.get(c, 0.0) - stable_shares.get(c, 0.0)))
        stable_figure = f"{top} {_percent(stable_shares.get(top, 0.0))} of {len(ours)}"
        canary_figure = f"{top} {_percent(canary_shares.get(top, 0.0))} of {len(theirs)}"
        what = f"{len(classes)} classes"
        moved = (
            f"; most moved: {top} {_percent(canary_shares.get(top, 0.0))} vs stable "
            + _percent(stable_shares.get(top, 0.0))
        )
    limit = analysis.psi_max
    head = f"PSI {value:.3f}"
    if value <= limit:
        detail = f"{head} <= {limit:g} over {what}{moved}"
        return _result("prediction-mix", stable_figure, canary_figure, "pass", detail)
    p = contingency_p(stable_counts, canary_counts)
    if p < look_alpha(analysis):
        detail = f"{head} > {limit:g} over {what}{moved}"
        return _result("prediction-mix", stable_figure, canary_figure, "fail", detail)
    detail = f"{head} > {limit:g} over {what}, within the noise (chi-square p {p:.2g}){moved}"
    return _result("prediction-mix", stable_figure, canary_figure, "inconclusive", detail)


def _shares(counts: Counter[str]) -> dict[str, float]:
    """``{class: share}`` of the counted labels, as core.drift.stats.class_shares gives it for
    text labels (the empty one is missing), without its per-label work."""
    total = counts.total() - counts[""]
    return {c: counts[c] / total for c in sorted(counts) if c != ""} if total else {}


def _numbers(labels: Sequence[str]) -> list[float] | None:
    """The labels as numbers when all are, finite, and more distinct than MAX_CLASSES."""
    try:
        values = [float(label) for label in labels]
    except ValueError:
        return None
    if not all(math.isfinite(v) for v in values) or len(set(values)) <= MAX_CLASSES:
        return None
    return values


def _binned_psi(stable: list[float], canary: list[float]) -> tuple[float, list[int], list[int]]:
    """PSI (core.drift.stats.psi, bins at the stable's deciles) and the counts per bin of
    each side over the same bins, for the noise guard."""
    import numpy as np

    from core.drift.stats import psi

    value = psi(stable, canary, BINS)
    edges = np.unique(np.quantile(stable, np.linspace(0.0, 1.0, BINS + 1)[1:-1]))
    size = len(edges) + 1
    stable_counts = np.bincount(np.searchsorted(edges, stable, side="left"), minlength=size)
    canary_counts = np.bincount(np.searchsorted(edges, canary, side="left"), minlength=size)
    return value, [int(c) for c in stable_counts], [int(c) for c in canary_counts]


def _median(values: Sequence[float]) -> float:
    return quantile(sorted(values), 0.5)


def _g(value: float) -> str:
    return f"{value:.4g}"


# ------------------------------------------------------------------------ shadow agreement


def shadow_agreement(shadow: Requests, analysis: AnalysisConfig) -> CheckResult:
    """Does the shadow answer mirrored requests as the stable release does? The share of
    comparable mirrored answers (JSON) that are equal."""
    compared = [a for a in shadow.agree if a is not None]
    agreed = sum(compared)
    stable_figure = f"{len(compared)} compared"
    if len(compared) < analysis.min_requests:
        canary_figure = f"{agreed} agree"
        detail = (
            f"{len(compared)} of {shadow.count} mirrored answers comparable, fewer than "
            f"{analysis.min_requests} (min_requests)"
        )
        return _result("shadow-agreement", stable_figure, canary_figure, "inconclusive", detail)
    share = agreed / len(compared)
    limit = analysis.agreement_min
    canary_figure = f"{_percent(share)} agree"
    head = f"{_percent(share)} of {len(compared)} mirrored answers agree"
    if share >= limit:
        return _result(
            "shadow-agreement",
            stable_figure,
            canary_figure,
            "pass",
            f"{head} (>= {_percent(limit)})",
        )
    # As many agreements or fewer, were the true share the limit:
    p = 1.0 - binomial_sf(agreed + 1, len(compared), limit)
    if p < look_alpha(analysis):
        detail = f"{head} (< {_percent(limit)})"
        return _result("shadow-agreement", stable_figure, canary_figure, "fail", detail)
    detail = f"{head} (< {_percent(limit)}, within the noise: p {p:.2g})"
    return _result("shadow-agreement", stable_figure, canary_figure, "inconclusive", detail)


# ------------------------------------------------------------------------------ accuracy


def accuracy(
    stable: Sequence[tuple[str | None, str]],
    canary: Sequence[tuple[str | None, str]],
    analysis: AnalysisConfig,
) -> CheckResult:
    """Is the new release's live accuracy lower than the stable's by more than
    ``accuracy_max_drop``? (prediction, true label) pairs of each side."""
    n_stable, n_canary = len(stable), len(canary)
    right_stable = sum(1 for prediction, label in stable if prediction == label)
    right_canary = sum(1 for prediction, label in canary if prediction == label)
    stable_figure = _rate(right_stable, n_stable, "labelled")
    canary_figure = _rate(right_canary, n_canary, "labelled")
    head = f"accuracy {canary_figure} vs stable {stable_figure}"
    few = _too_few(n_stable, n_canary, analysis.min_requests, "labelled requests")
    if few:
        return _result("accuracy", stable_figure, canary_figure, "inconclusive", f"{head} ({few})")
    acc_stable, acc_canary = right_stable / n_stable, right_canary / n_canary
    drop, limit = acc_stable - acc_canary, analysis.accuracy_max_drop
    points = f"drop {100 * drop:.1f} points"
    if drop <= limit:
        return _result(
            "accuracy",
            stable_figure,
            canary_figure,
            "pass",
            f"{head} ({points} <= {100 * limit:g})",
        )
    spread = math.sqrt(
        acc_stable * (1 - acc_stable) / n_stable + acc_canary * (1 - acc_canary) / n_canary
    )
    p = normal_sf((drop - limit) / spread) if spread > 0 else 0.0
    if p < look_alpha(analysis):
        return _result(
            "accuracy", stable_figure, canary_figure, "fail", f"{head} ({points} > {100 * limit:g})"
        )
    detail = f"{head} ({points} > {100 * limit:g}, within the noise: p {p:.2g})"
    return _result("accuracy", stable_figure, canary_figure, "inconclusive", detail)


# ------------------------------------------------------------------------------- helpers


def _too_few(stable: int, canary: int, needed: int, what: str) -> str:
    """Why a check cannot conclude yet, or ""."""
    if stable >= needed and canary >= needed:
        return ""
    sides = [name for name, n in (("stable", stable), ("new release", canary)) if n < needed]
    return f"fewer than {needed} {what} on the {' and the '.join(sides)} (min_requests)"


def _rate(part: int, whole: int, of: str = "") -> str:
    share = _percent(part / whole) if whole else "-"
    return f"{share} of {whole}{' ' + of if of else ''}"


def _percent(share: float) -> str:
    return f"{100 * share:.1f}%"


def _result(check: str, stable: str, canary: str, verdict: Verdict, detail: str) -> CheckResult:
    return CheckResult(check, stable, canary, verdict, f"{detail}: {verdict}")
