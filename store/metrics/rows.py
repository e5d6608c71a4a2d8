"""The metric store's rows (frozen dataclasses) and the rollup arithmetic: consecutive
cumulative scrapes turned into one minute's rates and latency percentiles (Prometheus'
``histogram_quantile``); a rollup says where its percentiles came from (the proxy's exact
latencies are :mod:`store.metrics.latency`'s). Pure: the collector, the store, the
benchmark and the tests share it.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import lru_cache
from itertools import pairwise
from typing import Any, Literal, NotRequired, TypedDict

_QUANTILES = (0.5, 0.95, 0.99)
_encode = json.JSONEncoder(separators=(",", ":"), check_circular=False).encode
_decode = json.JSONDecoder().decode
_BUCKET_TEMPLATES: dict[tuple[str, ...], str] = {}


# ------------------------------------------------------------------------------------- rows

# Where a minute's p50/p95/p99 come from: the proxy's per-request latencies (a
# LogHistogram), or BentoML's histogram buckets in the scrapes.
LatencySource = Literal["proxy", "histogram"]


@dataclass(frozen=True, slots=True)
class ScrapeRow:
    """One scrape of one environment: cumulative counters as scraped at ``t``."""

    service: str
    env: str
    t: int
    release: str | None
    requests: float
    errors: float
    in_progress: float
    # Cumulative request counts by histogram upper bound, as BentoML names it: "0.005", "+Inf".
    buckets: dict[str, float]


@dataclass(frozen=True, slots=True)
class Rollup:
    """One minute of one environment (``minute`` = its first second), from scrape deltas."""

    service: str
    env: str
    minute: int
    release: str | None
    requests: float
    errors: float
    rps: float
    error_rate: float
    p50_ms: float | None
    p95_ms: float | None
    p99_ms: float | None
    in_progress: float
    latency_source: LatencySource = "histogram"

    def point(self) -> Point:
        return Point(
            self.minute, self.rps, self.error_rate, self.p50_ms, self.p95_ms, self.p99_ms,
            self.latency_source,
        )  # fmt: skip


class PointDocument(TypedDict):
    """A point of ``relman metrics --json``. The store imports nothing of core: mypy checks
    that this type is core.documents.MetricsPoint, the one the schema is generated from."""

    t: str
    rps: float
    error_rate: float
    p50_ms: float | None
    p95_ms: float | None
    p99_ms: float | None
    latency_source: NotRequired[LatencySource]


@dataclass(frozen=True, slots=True)
class Point:
    """A point of the per-minute series: the ``metrics`` point of docs/json.md."""

    t: int
    rps: float
    error_rate: float
    p50_ms: float | None
    p95_ms: float | None
    p99_ms: float | None
    latency_source: LatencySource = "histogram"

    def to_dict(self) -> PointDocument:
        return {
            "t": _iso(self.t),
            "rps": round(self.rps, 6),
            "error_rate": round(self.error_rate, 6),
            "p50_ms": _round_ms(self.p50_ms),
            "p95_ms": _round_ms(self.p95_ms),
            "p99_ms": _round_ms(self.p99_ms),
            "latency_source": self.latency_source,
        }


@dataclass(frozen=True, slots=True)
class Record:
    """One predicted row of a monitor log."""

    service: str
    env: str
    t: int
    release: str | None
    request_id: str | None
    features: dict[str, float]
    prediction: str | None
    target: str | None


@dataclass(frozen=True, slots=True)
class Feedback:
    """The true label of a request, arriving after its prediction."""

    service: str
    env: str
    request_id: str
    label: str
    t: int


@dataclass(frozen=True, slots=True)
class AlertRow:
    """An alert; ``since`` is when its current state began, ``updated`` its last change."""

    id: int
    rule: str
    kind: str
    service: str
    env: str
    state: str
    since: int
    updated: int
    value: float | None
    detail: str
    release: str | None
    rollback: str | None
    grouped_with: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """The ``alerts`` entry of docs/json.md (``name`` is the rule), plus id, value and
        updated (and ``grouped_with`` when set)."""
        grouped = {"grouped_with": self.grouped_with} if self.grouped_with else {}
        return {
            "id": self.id,
            "name": self.rule,
            "kind": self.kind,
            "service": self.service,
            "env": self.env,
            "state": self.state,
            "since": _iso(self.since),
            "updated": _iso(self.updated),
            "value": self.value,
            "detail": self.detail,
            "release": self.release,
            "rollback": self.rollback,
            **grouped,
        }


@dataclass(frozen=True, slots=True)
class AlertEvent:
    """A state an alert entered, and when."""

    id: int
    alert_id: int
    t: int
    state: str
    detail: str

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "alert_id": self.alert_id,
            "t": _iso(self.t),
            "state": self.state,
            "detail": self.detail,
        }


@dataclass(frozen=True, slots=True)
class CollectorRow:
    """The project's collector: who runs it, since when, when it last said so."""

    pid: int
    host: str
    started: int
    heartbeat: int


# Each row's fields, in order, as its table names them: what the store inserts and selects.
SCRAPE_COLUMNS = "service, env, t, release, requests, errors, in_progress, buckets"
ROLLUP_COLUMNS = (
    "service, env, minute, release, requests, errors, rps, error_rate, p50_ms, p95_ms, "
    "p99_ms, in_progress, latency_source"
)
RECORD_COLUMNS = "service, env, t, release, request_id, features, prediction, target"


def encode_buckets(buckets: dict[str, float]) -> str:
    """``buckets`` as compact JSON, as json.dumps writes floats, in two thirds of its time:
    scrapes share their ``le`` keys, so the text around the counts is made once per key set."""
    values = tuple(map(float, buckets.values()))  # and an int is written 5.0, a bool 1.0
    if not math.isfinite(sum(values)):
        return _encode(buckets)  # inf or nan: json's own spelling
    keys = tuple(buckets)
    template = _BUCKET_TEMPLATES.get(keys)
    if template is None:
        if len(_BUCKET_TEMPLATES) >= 64:
            _BUCKET_TEMPLATES.clear()
        parts = (_encode(key).replace("%", "%%") + ":%s" for key in keys)
        template = _BUCKET_TEMPLATES[keys] = "{" + ",".join(parts) + "}"
    # str() of a finite float is its repr, which is what json writes for it.
    return template % values


def _iso(t: int) -> str:
    return datetime.fromtimestamp(t, UTC).isoformat()


def _round_ms(value: float | None) -> float | None:
    return None if value is None else round(value, 3)


# ------------------------------------------------------------------------ rollup arithmetic


def rollup(previous: ScrapeRow | None, scrapes: list[ScrapeRow], minute: int) -> Rollup | None:
    """The rollup of ``minute`` from its scrapes and the last scrape before it.

    Counters are cumulative: the minute's requests, errors and bucket counts are the sums of
    the deltas between consecutive scrapes, starting from ``previous`` (without it, from the
    minute's first scrape). A counter that went down, or a scrape of another release (another
    process), is a restart: that step's delta is the new value. rps divides by the seconds
    covered (last scrape minus the base). Percentiles interpolate linearly inside the
    histogram bucket as Prometheus' ``histogram_quantile`` does, in milliseconds; None when
    the minute had no requests. ``in_progress`` is the mean of the minute's scrapes.
    None when nothing can be measured: no scrapes, or one scrape and no ``previous``.
    """
    chain = sorted(scrapes, key=lambda s: s.t)
    if previous is not None:
        chain.insert(0, previous)
    if len(chain) < 2 or chain[-1].t <= chain[0].t:
        return None
    requests = errors = 0.0
    deltas: dict[str, float] = {}
    before = chain[0]
    for scrape in chain[1:]:
        restart = scrape.release != before.release
        requests += _delta(before.requests, scrape.requests, restart)
        errors += _delta(before.errors, scrape.errors, restart)
        old = before.buckets
        for le, count in scrape.buckets.items():
            deltas[le] = deltas.get(le, 0.0) + _delta(old.get(le, 0.0), count, restart)
        before = scrape
    last = chain[-1]
    mean_in_progress = sum(s.in_progress for s in scrapes) / len(scrapes)
    return make_rollup(
        last.service, last.env, minute, last.release, requests, errors,
        last.t - chain[0].t, deltas, mean_in_progress,
    )  # fmt: skip


def _delta(old: float, new: float, restart: bool) -> float:
    return new if restart or new < old else new - old


def make_rollup(
    service: str,
    env: str,
    minute: int,
    release: str | None,
    requests: float,
    errors: float,
    seconds: int,
    deltas: Mapping[str, float],
    in_progress: float,
) -> Rollup:
    p50, p95, p99 = _quantiles_ms(deltas) if requests > 0 else (None, None, None)
    return Rollup(
        service=service,
        env=env,
        minute=minute,
        release=release,
        requests=requests,
        errors=errors,
        rps=requests / seconds,
        error_rate=errors / requests if requests > 0 else 0.0,
        p50_ms=p50,
        p95_ms=p95,
        p99_ms=p99,
        in_progress=in_progress,
    )


@lru_cache(maxsize=256)
def _upper_bound(le: str) -> float:
    """The bound a bucket's ``le`` label names ("0.005", "+Inf"); NaN when it names none."""
    try:
        return float(le)
    except ValueError:
        return math.nan


def _cumulative(buckets: Mapping[str, float]) -> list[tuple[float, float]]:
    """(upper bound, count) sorted by bound, buckets of one bound merged, counts made
    monotonic (as Prometheus does: deltas from a reset can break it)."""
    merged: dict[float, float] = {}
    for le, count in buckets.items():
        bound = _upper_bound(le)
        if not math.isnan(bound):
            merged[bound] = merged.get(bound, 0.0) + count
    out: list[tuple[float, float]] = []
    highest = 0.0
    for bound in sorted(merged):
        highest = max(highest, merged[bound])
        out.append((bound, highest))
    return out


def _quantile(q: float, cumulative: list[tuple[float, float]]) -> float | None:
    """Prometheus' bucketQuantile on prepared buckets; None where it answers NaN."""
    if len(cumulative) < 2 or not math.isinf(cumulative[-1][0]):
        return None
    total = cumulative[-1][1]
    if total <= 0:
        return None
    rank = q * total
    index = len(cumulative) - 1
    for i in range(len(cumulative) - 1):
        if cumulative[i][1] >= rank:
            index = i
            break
    if index == len(cumulative) - 1:
        return cumulative[-2][0]  # in the +Inf bucket: the highest finite bound
    bound, count = cumulative[index]
    if index == 0:
        if bound <= 0:
            return bound
        start, below = 0.0, 0.0
    else:
        start, below = cumulative[index - 1]
    return start + (bound - start) * (rank - below) / (count - below)


def histogram_quantile(q: float, buckets: Mapping[str, float]) -> float | None:
    """The ``q`` quantile (0..1), in the buckets' unit, of cumulative counts by ``le`` label;
    None when there are no observations or no +Inf bucket (Prometheus' NaN)."""
    if not 0 <= q <= 1:
        raise ValueError(f"quantile {q} is not between 0 and 1")
    return _quantile(q, _cumulative(buckets))


def _quantiles_ms(deltas: Mapping[str, float]) -> tuple[float | None, float | None, float | None]:
    cumulative = _cumulative(deltas)
    p50, p95, p99 = (_quantile(q, cumulative) for q in _QUANTILES)
    return _ms(p50), _ms(p95), _ms(p99)


def _ms(seconds: float | None) -> float | None:
    return None if seconds is None else seconds * 1000.0


# ------------------------------------------------------------- rollups of a stored window

# One stored scrape, as a window query returns it: (t, release, requests, errors,
# in_progress, buckets JSON).
WindowRow = tuple[int, str | None, float, float, float, str]


def window_rollups(
    service: str, env: str, base: WindowRow | None, rows: list[WindowRow]
) -> list[Rollup]:
    """:func:`rollup` of each minute of ``rows`` (ordered by t), ``base`` the scrape before
    them: what the store's ``rollups_from_scrapes`` answers (it explains the fast path)."""
    out: list[Rollup] = []
    decoded: dict[int, dict[str, float]] = {}  # buckets by t: a minute's last is the next's base
    i, n = 0, len(rows)
    while i < n:
        minute = rows[i][0] - rows[i][0] % 60
        j = i + 1
        while j < n and rows[j][0] < minute + 60:
            j += 1
        group = rows[i:j]
        result = _minute_rollup(service, env, minute, base, group, decoded)
        if result is not None:
            out.append(result)
        base, i = group[-1], j
    return out


def _minute_rollup(
    service: str,
    env: str,
    minute: int,
    base: WindowRow | None,
    group: list[WindowRow],
    decoded: dict[int, dict[str, float]],
) -> Rollup | None:
    chain = group if base is None else [base, *group]
    first, last = chain[0], chain[-1]
    if len(chain) < 2 or last[0] <= first[0]:
        return None
    smooth = all(
        row[1] == before[1] and row[2] >= before[2] and row[3] >= before[3]
        for before, row in pairwise(chain)
    )
    if smooth:
        old = decoded.pop(first[0], None)
        if old is None:
            old = _decode(first[5])
        new: dict[str, float] = _decode(last[5])
        decoded[last[0]] = new
        deltas = {le: count - old.get(le, 0.0) for le, count in new.items()}
        if min(deltas.values(), default=0.0) >= 0:
            return make_rollup(
                service, env, minute, last[1], last[2] - first[2], last[3] - first[3],
                last[0] - first[0], deltas, sum(row[4] for row in group) / len(group),
            )  # fmt: skip
    # A restart (or a release change) within the minute: the step-by-step arithmetic.
    previous = None if base is None else ScrapeRow(service, env, *base[:5], _decode(base[5]))
    scrapes = [ScrapeRow(service, env, *row[:5], _decode(row[5])) for row in group]
    return rollup(previous, scrapes, minute)
