"""The proxy's exact latencies as the metric store keeps them: per minute, release and
10-second bin a log-linear histogram (:mod:`store.metrics.sketch`); what the collector adds
(:class:`LatencyRow`), what a minute reads back (:class:`LatencyMinute`), the stored text
of a minute's bins, and a rollup's percentiles taken from them (:func:`with_latency`).
Pure (docs/monitoring.md, "Exact latencies").
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any, NamedTuple

from store.metrics.rows import Rollup
from store.metrics.sketch import LogHistogram

__all__ = [
    "SUB_BINS",
    "SUB_SECONDS",
    "AccessOffset",
    "LatencyMinute",
    "LatencyRow",
    "SubBin",
    "decode_sub",
    "encode_sub",
    "merge_sub",
    "with_latency",
]

_QUANTILES = (0.5, 0.95, 0.99)
_decode = json.JSONDecoder().decode

# A minute's sub-bins: SUB_BINS of SUB_SECONDS each, the points finer than a minute.
SUB_SECONDS = 10
SUB_BINS = 60 // SUB_SECONDS


class SubBin(NamedTuple):
    """The requests of one 10-second bin of a minute: how many (``[0]``; ``count`` is the
    tuple's method), and their percentiles (ms)."""

    requests: int
    p50: float
    p95: float
    p99: float


@dataclass(frozen=True, slots=True)
class LatencyRow:
    """Latencies the proxy logged for one minute of one release (role stable, not failed),
    by 10-second bin: what the collector adds to the store's row of that minute (merged
    into what it holds). ``release`` None: the lines named none."""

    service: str
    env: str
    minute: int
    release: str | None
    sub: list[LogHistogram | None]  # SUB_BINS of them; None: no request in that bin

    @property
    def count(self) -> int:
        return sum(h.count for h in self.sub if h is not None)


@dataclass(frozen=True, slots=True)
class AccessOffset:
    """How far the access log of (service, env) is stored: ``state`` is the reader's own
    JSON (core.monitoring.latency_log.AccessLatencyReader.state)."""

    service: str
    env: str
    state: Mapping[str, Any]


@dataclass(frozen=True, slots=True)
class LatencyMinute:
    """The proxy's latencies of one minute of an environment, its releases merged:
    ``release`` the one that served most of them, ``sketch`` all of them, ``sub`` the
    minute's SUB_BINS 10-second bins (None where empty)."""

    minute: int
    release: str | None
    count: int
    sketch: LogHistogram
    sub: list[SubBin | None]

    @classmethod
    def of(
        cls, minute: int, rows: list[tuple[str | None, list[LogHistogram | None]]]
    ) -> LatencyMinute:
        """The minute of its stored rows: (release, bins) each."""
        bins: list[LogHistogram | None] = [None] * SUB_BINS
        counts: dict[str | None, int] = {}
        for release, sub in rows:
            for i, histogram in enumerate(sub):
                if histogram:
                    bins[i] = (bins[i] or LogHistogram()).merge(histogram)
                    counts[release] = counts.get(release, 0) + histogram.count
        sketch = LogHistogram.merged(bins)
        release = max(counts, key=lambda r: counts[r]) if counts else None
        return cls(minute, release, sketch.count, sketch, [_sub_bin(h) for h in bins])

    def quantiles_ms(self) -> tuple[float | None, float | None, float | None]:
        """p50, p95, p99 of the minute (None when it has no request)."""
        p50, p95, p99 = self.sketch.quantiles(_QUANTILES)
        return p50, p95, p99


def _sub_bin(histogram: LogHistogram | None) -> SubBin | None:
    if not histogram:
        return None
    p50, p95, p99 = histogram.quantiles(_QUANTILES)
    assert p50 is not None and p95 is not None and p99 is not None
    return SubBin(histogram.count, p50, p95, p99)


def encode_sub(sub: list[LogHistogram | None]) -> str:
    """A minute's bins as the store keeps them: a JSON array of SUB_BINS histograms (null:
    an empty bin)."""
    return "[" + ",".join(h.encode() if h else "null" for h in sub) + "]"


def decode_sub(text: str) -> list[LogHistogram | None]:
    """What :func:`encode_sub` wrote; ValueError for anything else."""
    items = _decode(text)
    if not isinstance(items, list) or len(items) != SUB_BINS:
        raise ValueError(f"a minute's latencies are {SUB_BINS} bins, not {text[:40]!r}")
    return [None if item is None else LogHistogram.from_dict(item) for item in items]


def merge_sub(
    held: list[LogHistogram | None], more: list[LogHistogram | None]
) -> list[LogHistogram | None]:
    """Bins ``held`` with ``more`` added, bin by bin (new histograms: neither is changed)."""
    return [
        None if not a and not b else LogHistogram.merged((a, b))
        for a, b in zip(held, more, strict=True)
    ]


def with_latency(rolled: Rollup, latency: LatencyMinute | None) -> Rollup:
    """``rolled`` with its p50/p95/p99 from the proxy's latencies of the minute when it has
    any (``latency_source`` "proxy"), else as the histogram gave them."""
    if latency is None or latency.count < 1:
        return rolled
    p50, p95, p99 = latency.quantiles_ms()
    return replace(rolled, p50_ms=p50, p95_ms=p95, p99_ms=p99, latency_source="proxy")
