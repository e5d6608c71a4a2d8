"""core/analysis checks and statistics: each check's pass, fail and inconclusive, its edge
cases, and the error-rate test's false positives under repeated looks."""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import replace

import pytest

from core.analysis import checks
from core.analysis.access import Requests
from core.analysis.results import CheckResult, verdict
from core.analysis.stats import binomial_sf, chi2_sf, error_buckets, quantile, sequential_p
from core.config.model import AnalysisConfig

ANALYSIS = AnalysisConfig(count=2, min_requests=100, confidence=0.99)


def traffic(
    rng: random.Random, n: int, error_rate: float, *, start: float = 0.0, seconds: float = 600.0,
    median_ms: float = 30.0, status: int = 503,
) -> Requests:  # fmt: skip
    """``n`` requests spread over ``seconds`` from ``start``; lognormal durations."""
    requests = Requests()
    for t in sorted(start + rng.random() * seconds for _ in range(n)):
        failed = rng.random() < error_rate
        requests.add(t, status if failed else 200, median_ms * rng.lognormvariate(0.0, 0.5))
    return requests


def fixed(times_and_failures: list[tuple[float, bool]], ms: float = 20.0) -> Requests:
    requests = Requests()
    for t, failed in times_and_failures:
        requests.add(t, 500 if failed else 200, ms)
    return requests


# ------------------------------------------------------------------------------ error rate


def test_error_rate_passes_equal_rates_and_fails_a_worse_release() -> None:
    rng = random.Random(1)
    stable = traffic(rng, 3000, 0.01)
    same = checks.error_rate(stable, traffic(rng, 3000, 0.01), ANALYSIS, since=0.0)
    assert same.verdict == "pass"
    worse = checks.error_rate(stable, traffic(rng, 3000, 0.08), ANALYSIS, since=0.0)
    assert worse.verdict == "fail"
    assert worse.check == "error-rate"
    assert worse.detail.startswith("5xx 8.")
    assert worse.detail.endswith(": fail")
    assert worse.stable.endswith("of 3000") and worse.canary.endswith("of 3000")


def test_error_rate_counts_5xx_only() -> None:
    """4xx are the client's: a release answering 404 to half its requests does not err."""
    rng = random.Random(2)
    stable = traffic(rng, 2000, 0.01)
    clients = traffic(rng, 2000, 0.5, status=404)
    result = checks.error_rate(stable, clients, ANALYSIS, since=0.0)
    assert result.verdict == "pass"
    assert result.canary == "0.0% of 2000"


def test_error_rate_is_inconclusive_below_min_requests_on_either_side() -> None:
    rng = random.Random(3)
    plenty, few = traffic(rng, 500, 0.5), traffic(rng, 99, 0.9)
    for stable, canary, side in ((plenty, few, "new release"), (few, plenty, "stable")):
        result = checks.error_rate(stable, canary, ANALYSIS, since=0.0)
        assert result.verdict == "inconclusive"
        assert f"fewer than 100 requests on the {side}" in result.detail


def test_error_rate_with_no_records_or_one_side_only() -> None:
    empty = Requests()
    assert checks.error_rate(empty, empty, ANALYSIS, since=0.0).verdict == "inconclusive"
    only_stable = checks.error_rate(traffic(random.Random(4), 500, 0.01), empty, ANALYSIS, since=0)
    assert only_stable.verdict == "inconclusive"
    assert only_stable.canary == "- of 0"


def test_error_rate_follows_the_weight_minute_by_minute() -> None:
    """Equal rates, but more errors in the minute the new release took 90% of the requests:
    pooled over the window it would look 5x worse; per minute it errs as the stable does."""
    stable = fixed(
        [(i * 0.06, i < 9) for i in range(900)] + [(60 + i * 0.5, i < 10) for i in range(100)]
    )
    canary = fixed(
        [(i * 0.5, i < 1) for i in range(100)] + [(60 + i * 0.06, i < 90) for i in range(900)]
    )
    result = checks.error_rate(stable, canary, ANALYSIS, since=0.0)
    assert "x4.8" in result.detail  # what the pooled shares say
    assert result.verdict == "pass"


def test_a_release_failing_everything_fails_after_a_few_errors() -> None:
    stable = fixed([(i * 0.1, i % 100 == 0) for i in range(1000)])
    canary = fixed([(i * 0.5, True) for i in range(100)])
    result = checks.error_rate(stable, canary, ANALYSIS, since=0.0)
    assert result.verdict == "fail"
    assert "(x100;" in result.detail  # 100% against 1%


def test_error_rate_false_positives_stay_under_alpha_across_repeated_looks() -> None:
    """Equal rates, 200 seeded rollouts of 4 looks each at the growing window: the share
    of rollouts with ANY failed look stays under 1 - confidence (a fixed-sample z test
    looked at 4 times fails a third of them here)."""
    analysis = AnalysisConfig(count=4, min_requests=100, confidence=0.8)
    failed = 0
    for seed in range(200):
        rng = random.Random(seed)
        stable, canary = (
            traffic(rng, 2400, 0.05, seconds=240),
            traffic(rng, 1200, 0.05, seconds=240),
        )
        for look in (60.0, 120.0, 180.0, 240.0):
            result = checks.error_rate(cut(stable, look), cut(canary, look), analysis, since=0.0)
            if result.verdict == "fail":
                failed += 1
                break
    assert failed <= 0.2 * 200


def cut(requests: Requests, until: float) -> Requests:
    n = sum(1 for t in requests.times if t < until)
    kept = Requests()
    for t, bad in zip(requests.times[:n], requests.failed[:n], strict=True):
        kept.add(t, 500 if bad else 200, 10.0)
    return kept


def test_sequential_evidence_grows_with_the_excess() -> None:
    little = sequential_p([(1000, 10, 1000, 15)])
    more = sequential_p([(1000, 10, 1000, 40)])
    assert 1.0 >= little > more > 0.0
    assert sequential_p([(1000, 10, 1000, 5)]) == 1.0  # better than the stable: no evidence
    assert sequential_p([]) == 1.0


def test_error_buckets_cut_the_window_by_minute() -> None:
    buckets = error_buckets([0.5, 61.0, 62.0], [True, False, True], [30.0], [False], 0.0)
    assert buckets == [(1, 1, 1, 0), (2, 1, 0, 0)]


# ------------------------------------------------------------------------------- latency


def test_latency_passes_the_same_and_fails_a_slower_release() -> None:
    rng = random.Random(5)
    stable = traffic(rng, 2000, 0.0)
    assert checks.latency(stable, traffic(rng, 2000, 0.0), ANALYSIS).verdict == "pass"
    slow = checks.latency(stable, traffic(rng, 2000, 0.0, median_ms=90.0), ANALYSIS)
    assert slow.verdict == "fail"
    assert slow.detail.startswith("p95 ")
    assert "> x1.25" in slow.detail


def test_latency_over_the_ratio_within_the_noise_is_inconclusive() -> None:
    """x1.6 over 200 requests each: 7% slower than the bound where 5% are allowed."""
    stable, canary = Requests(), Requests()
    for i in range(1, 201):
        stable.add(float(i), 200, float(i))
        canary.add(float(i), 200, 1.6 * i)
    result = checks.latency(stable, canary, replace(ANALYSIS, latency_max_ratio=1.5))
    assert "x1.6 > x1.5, within the noise" in result.detail
    assert result.verdict == "inconclusive"


def test_latency_ignores_failed_requests_and_needs_min_requests() -> None:
    rng = random.Random(6)
    stable = traffic(rng, 500, 0.0)
    canary = traffic(rng, 500, 0.0)
    for i in range(300):
        canary.add(700.0 + i, 504, 30_000.0)  # timeouts: the error rate's business
    assert checks.latency(stable, canary, ANALYSIS).verdict == "pass"
    few = checks.latency(stable, traffic(rng, 50, 0.0), ANALYSIS)
    assert few.verdict == "inconclusive"
    assert "fewer than 100 answered requests on the new release" in few.detail
    empty = checks.latency(Requests(), Requests(), ANALYSIS)
    assert empty.verdict == "inconclusive" and empty.stable == "no requests"


def test_latency_quantile_is_the_configured_one() -> None:
    stable, canary = Requests(), Requests()
    for i in range(1, 1001):
        stable.add(float(i), 200, 10.0)
        # The same median, a tail 10x slower from the 90th percentile on.
        canary.add(float(i), 200, 10.0 if i <= 900 else 100.0)
    assert (
        checks.latency(stable, canary, replace(ANALYSIS, latency_quantile="p50")).verdict == "pass"
    )
    assert (
        checks.latency(stable, canary, replace(ANALYSIS, latency_quantile="p95")).verdict == "fail"
    )


def durations(values: Sequence[float]) -> Requests:
    requests = Requests()
    for i, ms in enumerate(values):
        requests.add(float(i), 200, ms)
    return requests


def test_latency_far_beyond_fails_on_the_stable_slowest_with_too_few_for_its_bound() -> None:
    """110 stable requests are too few for the order-statistic bound of their p95 (117 at
    this alpha), but not for the slowest of them when the canary is far beyond."""
    stable = durations([40.0 + i / 10 for i in range(110)])  # the slowest: 50.9 ms
    far = checks.latency(stable, durations([350.0] * 100), ANALYSIS)
    assert far.verdict == "fail"
    assert "100.0% of 100 slower than 64 ms (x1.25 the stable's slowest of 110)" in far.detail
    # Beyond the limit, not by much: the slowest as a bound cannot tell.
    near = checks.latency(stable, durations([45.0] * 90 + [64.0] * 10), ANALYSIS)
    assert near.verdict == "inconclusive"
    assert "too few stable requests to bound its p95" in near.detail
    # 100 stable requests: all 100 below their own p95 is too likely (0.95^100 > 0.005).
    fewer = checks.latency(durations([40.0 + i / 10 for i in range(100)]),
                           durations([350.0] * 100), ANALYSIS)  # fmt: skip
    assert fewer.verdict == "inconclusive"


def test_latency_on_the_stable_slowest_fails_a_release_within_the_limit_rarely() -> None:
    """Within the limit, at its edge: 95% of the new release's requests just under x1.25 the
    stable's p95 (uniform: p95 0.95), 5% very slow. It fails only when all the stable's
    requests were below 0.949; without the chance of that counted, it would at 60 to 103
    stable requests (0.949^n: 0.4% to 4%)."""
    analysis = replace(ANALYSIS, min_requests=50)
    rng = random.Random(9)
    runs, failed = 3000, 0
    for _ in range(runs):
        stable = durations([rng.random() for _ in range(rng.randint(60, 116))])
        canary = durations([1.25 * 0.949 if rng.random() < 0.95 else 1e6 for _ in range(200)])
        failed += checks.latency(stable, canary, analysis).verdict == "fail"
    assert failed / runs <= checks.look_alpha(analysis)


# ------------------------------------------------------------------------ prediction mix


def test_prediction_mix_pass_fail_and_too_few() -> None:
    stable = ["setosa", "versicolor", "virginica"] * 100
    assert checks.prediction_mix(stable, list(reversed(stable)), ANALYSIS).verdict == "pass"
    shifted = ["setosa"] * 250 + ["virginica"] * 50
    result = checks.prediction_mix(stable, shifted, ANALYSIS)
    assert result.verdict == "fail"
    assert "most moved: setosa 83.3% vs stable 33.3%" in result.detail
    few = checks.prediction_mix(stable, ["setosa"] * 99 + [None] * 50, ANALYSIS)
    assert few.verdict == "inconclusive" and few.canary == "99 predictions"


def test_prediction_mix_measures_psi_as_core_drift_does() -> None:
    from core.drift.stats import class_shares, share_distance

    stable = ["a"] * 120 + ["b"] * 60 + ["c"] * 20 + [""] * 7
    canary = ["a"] * 90 + ["b"] * 90 + ["d"] * 20 + [""] * 3
    expected = share_distance(class_shares(stable), class_shares(canary))
    result = checks.prediction_mix(stable, canary, ANALYSIS)
    assert f"PSI {expected:.3f}" in result.detail


def test_prediction_mix_over_the_limit_within_the_noise_is_inconclusive() -> None:
    analysis = replace(ANALYSIS, min_requests=20)
    stable = ["a"] * 15 + ["b"] * 15
    canary = ["a"] * 22 + ["b"] * 8
    result = checks.prediction_mix(stable, canary, analysis)
    assert "PSI 0.23" in result.detail and "within the noise" in result.detail
    assert result.verdict == "inconclusive"


def test_prediction_mix_bins_numeric_predictions() -> None:
    rng = random.Random(7)
    stable = [f"{rng.gauss(100, 10):.3f}" for _ in range(1000)]
    same = [f"{rng.gauss(100, 10):.3f}" for _ in range(1000)]
    moved = [f"{rng.gauss(110, 10):.3f}" for _ in range(1000)]
    assert checks.prediction_mix(stable, same, ANALYSIS).verdict == "pass"
    result = checks.prediction_mix(stable, moved, ANALYSIS)
    assert result.verdict == "fail"
    assert "bins of the values" in result.detail and result.canary.startswith("median 1")


# ------------------------------------------------------------------------ shadow agreement


def mirrored(agree: Sequence[bool | None]) -> Requests:
    requests = Requests()
    for i, value in enumerate(agree):
        requests.add(float(i), 200, 10.0, value)
    return requests


def test_shadow_agreement() -> None:
    passing = checks.shadow_agreement(mirrored([True] * 490 + [False] * 10), ANALYSIS)
    assert passing.verdict == "pass" and passing.canary == "98.0% agree"
    failing = checks.shadow_agreement(mirrored([True] * 400 + [False] * 100), ANALYSIS)
    assert failing.verdict == "fail"
    assert failing.detail == "80.0% of 500 mirrored answers agree (< 95.0%): fail"
    noisy = checks.shadow_agreement(mirrored([True] * 94 + [False] * 6), ANALYSIS)
    assert noisy.verdict == "inconclusive" and "within the noise" in noisy.detail
    incomparable = checks.shadow_agreement(mirrored([None] * 400 + [True] * 50), ANALYSIS)
    assert incomparable.verdict == "inconclusive"
    assert incomparable.detail.startswith("50 of 450 mirrored answers comparable")


# ------------------------------------------------------------------------------ accuracy


def labelled(right: int, wrong: int) -> list[tuple[str | None, str]]:
    return [("a", "a")] * right + [("a", "b")] * (wrong - 1) + [(None, "b")] * min(wrong, 1)


def test_accuracy() -> None:
    stable = labelled(950, 50)
    assert checks.accuracy(stable, labelled(470, 30), ANALYSIS).verdict == "pass"
    failing = checks.accuracy(stable, labelled(300, 200), ANALYSIS)
    assert failing.verdict == "fail"
    assert failing.detail.startswith("accuracy 60.0% of 500 labelled vs stable 95.0% of 1000")
    noisy = checks.accuracy(stable, labelled(88, 12), ANALYSIS)  # a 7-point drop over 100
    assert noisy.verdict == "inconclusive" and "within the noise" in noisy.detail
    few = checks.accuracy(stable, labelled(40, 10), ANALYSIS)
    assert few.verdict == "inconclusive"
    assert "fewer than 100 labelled requests on the new release" in few.detail
    assert checks.accuracy([], [], ANALYSIS).verdict == "inconclusive"


# ------------------------------------------------------------------------------- verdict


@pytest.mark.parametrize(
    ("verdicts", "expected"),
    [
        (["pass", "inconclusive", "fail"], "fail"),
        (["pass", "inconclusive"], "inconclusive"),
        (["pass", "pass"], "pass"),
        ([], "pass"),
    ],
)
def test_verdict(verdicts: list[str], expected: str) -> None:
    results = [CheckResult("x", "", "", v, "") for v in verdicts]  # type: ignore[arg-type]
    assert verdict(results) == expected


# -------------------------------------------------------------------------------- numbers


def test_tails_and_quantiles() -> None:
    assert binomial_sf(0, 10, 0.5) == 1.0
    assert binomial_sf(10, 10, 0.5) == pytest.approx(1 / 1024)
    assert binomial_sf(3, 10, 0.5) == pytest.approx(1 - 56 / 1024)
    assert chi2_sf(3.841458820694124, 1) == pytest.approx(0.05)
    assert chi2_sf(18.307038053275146, 10) == pytest.approx(0.05)
    assert quantile([1.0, 2.0, 3.0, 4.0], 0.5) == 2.0
    assert quantile([1.0, 2.0, 3.0, 4.0], 0.95) == 4.0
