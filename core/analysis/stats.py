"""The statistics of the analysis, pure (no file, no clock), so that
``benchmarks/bench_analysis.py`` replays them in simulated time.

**Error rate: a sequential test, valid at every look.** Under "the new release errs no more
than the stable one", a 5xx that happens in a minute where the new release answered a share
``w`` of the requests is the new release's with probability at most ``w`` (whatever the
error rate of that minute: it cancels out). Were the new release's rate ``r`` times the
stable's, that probability would be ``q = r w / (r w + 1 - w)``. The evidence is the
likelihood ratio of the errors' sides, mixed over a few ratios ``r`` (:data:`RATIOS`, equal
weights)::

    M = sum_r weight_r * prod_minutes  r^X / (1 + (r - 1) w)^E

(``E`` errors in the minute, ``X`` of them the new release's). Under the null, ``M`` is a
nonnegative (super)martingale in the errors as they come, so by Ville's inequality the chance
that it EVER reaches ``1/alpha`` is at most ``alpha``: the test can be looked at after every
request, and ``1/M`` is an always-valid p-value. An analysis measures the same window
growing (the same ``since``, a later ``until``), so its ``count`` looks -- and the extra ones
``inconclusive = "wait"`` adds -- keep the false-abort rate under ``1 - confidence`` with no
alpha to split. The share ``w`` is taken per minute from the requests themselves, so a
window may span weight changes. The price against a single fixed-size test is about 1.5x
more requests for the same power; the return is that a gross failure (the new release
failing most requests) is caught after a handful of errors.

**Latency: an exceedance test against the allowed ratio.** ``q`` the quantile, ``R`` the
allowed ratio: ``U`` is an upper confidence bound of the stable's quantile (an order
statistic: distribution-free); if the new release's quantile were at most ``R`` times the
stable's, at most a share ``1 - q`` of its requests would be slower than ``R * U``. Counting
more than that, significantly (exact binomial), says it is slower than allowed. Each bound
takes half of the look's alpha. With too few stable requests for that order statistic (``n``
below about 117 for p95 at alpha 0.005), a new release far beyond the limit may still fail:
the stable's slowest request ``M`` is below its quantile only if all ``n`` are, a chance of at
most ``q^n``; outside that chance, at most a share ``1 - q`` of the new release's requests
could be slower than ``R * M``, so the look fails when ``q^n`` plus the binomial p-value of
the requests slower than ``R * M`` is below the look's alpha (about 104 stable requests for
p95, when the new release's are all slower). Which of the two is used depends on ``n``
alone, so each look stays within its alpha.

**Prediction mix** compares class (or bin) counts with Pearson's chi-square, as a guard: a
PSI over the limit that is within the sampling noise of the counts is not yet a failure.
**Accuracy** compares two proportions against the allowed drop (a one-sided z test).
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Sequence
from itertools import compress

__all__ = [
    "RATIOS",
    "binomial_sf",
    "chi2_sf",
    "contingency_p",
    "error_buckets",
    "normal_sf",
    "quantile",
    "quantile_upper_index",
    "sequential_p",
]

# The error-rate ratios (new release / stable) the sequential test mixes over, equal weights.
# From x1.5, the smallest change worth catching in a rollout, to x100 (a release failing most
# requests against a stable one that fails 1%).
RATIOS = (1.5, 2.0, 3.0, 5.0, 10.0, 100.0)
# Width of the slices a window is cut into to know the new release's share of requests.
BUCKET_SECONDS = 60.0

Bucket = tuple[int, int, int, int]  # stable requests, stable errors, new requests, new errors


def error_buckets(
    stable_times: Sequence[float],
    stable_failed: Sequence[bool],
    canary_times: Sequence[float],
    canary_failed: Sequence[bool],
    since: float,
    width: float = BUCKET_SECONDS,
) -> list[Bucket]:
    """Requests and errors of each side per ``width`` seconds from ``since`` (slices with no
    request left out)."""
    if len(stable_failed) != len(stable_times) or len(canary_failed) != len(canary_times):
        raise ValueError("error_buckets: a time and a failure per request")
    tallies: list[Counter[float]] = []
    for times, failed in ((stable_times, stable_failed), (canary_times, canary_failed)):
        tallies.append(Counter([(t - since) // width for t in times]))
        tallies.append(Counter([(t - since) // width for t in compress(times, failed)]))
    slots = sorted(set(tallies[0]) | set(tallies[2]))
    return [(tallies[0][s], tallies[1][s], tallies[2][s], tallies[3][s]) for s in slots]


def sequential_p(buckets: Sequence[Bucket], ratios: Sequence[float] = RATIOS) -> float:
    """The always-valid p-value ``min(1, 1/M)`` that the new release errs more (module doc)."""
    # log of each ratio's likelihood ratio, then log-sum-exp of the equal-weight mixture.
    logs = []
    for r in ratios:
        total = 0.0
        for stable_n, stable_e, canary_n, canary_e in buckets:
            errors = stable_e + canary_e
            if not errors:
                continue
            share = canary_n / (stable_n + canary_n)
            total += canary_e * math.log(r) - errors * math.log1p((r - 1.0) * share)
        logs.append(total)
    top = max(logs)
    log_m = top + math.log(sum(math.exp(v - top) for v in logs) / len(logs))
    return 1.0 if log_m <= 0 else math.exp(-log_m)


# ------------------------------------------------------------------------------- tails


def binomial_sf(k: int, n: int, p: float) -> float:
    """P(X >= k) for X ~ Binomial(n, p), exact (summed from the side of the smaller tail)."""
    if k <= 0:
        return 1.0
    if k > n:
        return 0.0
    if p <= 0.0:
        return 0.0
    if p >= 1.0:
        return 1.0
    if k > n * p:
        return min(1.0, _tail_up(k, n, p))
    return max(0.0, 1.0 - _tail_down(k - 1, n, p))


def _log_pmf(i: int, n: int, p: float) -> float:
    return (
        math.lgamma(n + 1)
        - math.lgamma(i + 1)
        - math.lgamma(n - i + 1)
        + i * math.log(p)
        + (n - i) * math.log1p(-p)
    )


def _tail_up(k: int, n: int, p: float) -> float:
    """sum_{i >= k} pmf(i), k above the mean: terms only shrink, stop when negligible."""
    term = math.exp(_log_pmf(k, n, p))
    total, i = term, k
    odds = p / (1.0 - p)
    while i < n and term > total * 1e-16:
        term *= (n - i) / (i + 1) * odds
        total += term
        i += 1
    return total


def _tail_down(k: int, n: int, p: float) -> float:
    """sum_{i <= k} pmf(i), k at or below the mean."""
    term = math.exp(_log_pmf(k, n, p))
    total, i = term, k
    odds = (1.0 - p) / p
    while i > 0 and term > total * 1e-16:
        term *= i / (n - i + 1) * odds
        total += term
        i -= 1
    return total


def normal_sf(z: float) -> float:
    """P(Z >= z) for a standard normal Z."""
    return 0.5 * math.erfc(z / math.sqrt(2.0))


def chi2_sf(x: float, df: int) -> float:
    """P(X >= x) for X ~ chi-square(df): the regularized upper incomplete gamma Q(df/2, x/2)."""
    if x <= 0:
        return 1.0
    a, y = df / 2.0, x / 2.0
    log_front = a * math.log(y) - y - math.lgamma(a)
    if y < a + 1.0:  # the series of the lower part converges fast here
        term = total = 1.0 / a
        n = a
        while term > total * 1e-15:
            n += 1.0
            term *= y / n
            total += term
        return max(0.0, 1.0 - total * math.exp(log_front))
    # Lentz's continued fraction of the upper part.
    tiny = 1e-300
    b = y + 1.0 - a
    c = 1.0 / tiny
    d = 1.0 / b
    h = d
    for i in range(1, 500):
        an = -i * (i - a)
        b += 2.0
        d = an * d + b
        d = tiny if abs(d) < tiny else d
        c = b + an / c
        c = tiny if abs(c) < tiny else c
        d = 1.0 / d
        step = d * c
        h *= step
        if abs(step - 1.0) < 1e-15:
            break
    return min(1.0, math.exp(log_front) * h)


def contingency_p(stable: Sequence[int], canary: Sequence[int]) -> float:
    """p-value of Pearson's chi-square that two count vectors over the same categories come
    from one distribution (categories empty on both sides left out)."""
    pairs = [(a, b) for a, b in zip(stable, canary, strict=True) if a + b > 0]
    n_stable, n_canary = sum(a for a, _ in pairs), sum(b for _, b in pairs)
    if len(pairs) < 2 or not n_stable or not n_canary:
        return 1.0
    total = n_stable + n_canary
    statistic = 0.0
    for a, b in pairs:
        pooled = (a + b) / total
        for observed, n in ((a, n_stable), (b, n_canary)):
            expected = pooled * n
            statistic += (observed - expected) ** 2 / expected
    return chi2_sf(statistic, len(pairs) - 1)


# ------------------------------------------------------------------------------- quantiles


def quantile(ordered: Sequence[float], q: float) -> float:
    """The ``q`` quantile of sorted values by nearest rank (an observed value)."""
    if not ordered:
        raise ValueError("quantile of no value")
    return ordered[min(len(ordered), max(1, math.ceil(q * len(ordered)))) - 1]


def quantile_upper_index(n: int, q: float, alpha: float) -> int | None:
    """The rank ``k`` (1-based) whose order statistic of ``n`` values is an upper confidence
    bound of the ``q`` quantile at level ``1 - alpha`` (P(X_(k) < quantile) <= alpha), or
    None when ``n`` values are too few for one."""
    # P(X_(k) < xi_q) = P(Binomial(n, q) >= k): the smallest k with that at most alpha.
    start = max(1, math.floor(n * q))
    for k in range(start, n + 1):
        if binomial_sf(k, n, q) <= alpha:
            return k
    return None
