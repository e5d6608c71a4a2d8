"""A mergeable log-linear histogram of latencies (DDSketch-style): the exact per-request
latencies the proxy logs, kept per minute in the metric store so that p50/p95/p99 are
accurate to 1 % of their value, not to a histogram bucket (docs/monitoring.md, "Exact
latencies"). Pure: the store, the collector, the benchmark and the tests share it.

Bucket ``i`` holds the values in [GAMMA**i, GAMMA**(i + 1)) milliseconds, GAMMA chosen so
that the bucket's representative value is within RELATIVE_ACCURACY of every value in it;
values below MIN_MS count in a zero bucket (read as 0). Counts are kept sparse, by index,
and stored as runs of neighbouring buckets (a latency's buckets cluster: a third of the
text of one entry per bucket).
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

__all__ = ["GAMMA", "MIN_MS", "RELATIVE_ACCURACY", "LogHistogram", "exact_quantile"]

RELATIVE_ACCURACY = 0.01
GAMMA = (1 + RELATIVE_ACCURACY) / (1 - RELATIVE_ACCURACY)
# Below this (a microsecond, under the 3 decimals the proxy writes): the zero bucket.
MIN_MS = 1e-3
_INV_LOG_GAMMA = 1 / math.log(GAMMA)
# A bucket's representative is its lower bound times this: within RELATIVE_ACCURACY of
# both ends, (v - low) / low = (high - v) / high = (GAMMA - 1) / (GAMMA + 1).
_MIDDLE = 2 * GAMMA / (GAMMA + 1)
_decode = json.JSONDecoder().decode
# Empty buckets a stored run spans rather than start a new one ("0," costs less than a run).
_RUN_GAP = 3


class LogHistogram:
    """Counts of latencies (ms) by log-linear bucket; ``add`` values, ``merge`` another,
    read a ``quantile``. Two histograms merged hold exactly what one would have had all
    their values added."""

    __slots__ = ("buckets", "zeros")

    def __init__(self, buckets: Mapping[int, int] | None = None, zeros: int = 0) -> None:
        self.buckets: dict[int, int] = dict(buckets) if buckets else {}
        self.zeros = zeros

    # ----------------------------------------------------------------------- filling

    def add(self, ms: float, count: int = 1) -> None:
        """Count ``ms`` (finite, >= 0) ``count`` times; ValueError for anything else."""
        if count < 1:
            raise ValueError(f"count {count} is not positive")
        if MIN_MS <= ms < math.inf:
            index = math.floor(math.log(ms) * _INV_LOG_GAMMA)
            self.buckets[index] = self.buckets.get(index, 0) + count
        elif 0 <= ms < MIN_MS:
            self.zeros += count
        else:
            raise ValueError(f"latency {ms!r} ms is not a finite number >= 0")

    def add_all(self, values: Iterable[float]) -> None:
        """:meth:`add` each of ``values`` (the collector's hot path)."""
        buckets, get, log, floor = self.buckets, self.buckets.get, math.log, math.floor
        inv, zeros = _INV_LOG_GAMMA, 0
        try:
            for ms in values:
                if MIN_MS <= ms < math.inf:
                    index = floor(log(ms) * inv)
                    buckets[index] = get(index, 0) + 1
                elif 0 <= ms < MIN_MS:
                    zeros += 1
                else:
                    raise ValueError(f"latency {ms!r} ms is not a finite number >= 0")
        finally:
            self.zeros += zeros

    def merge(self, other: LogHistogram) -> LogHistogram:
        """Add ``other``'s counts to this one (in place); this one."""
        buckets, get = self.buckets, self.buckets.get
        for index, count in other.buckets.items():
            buckets[index] = get(index, 0) + count
        self.zeros += other.zeros
        return self

    @classmethod
    def merged(cls, histograms: Iterable[LogHistogram | None]) -> LogHistogram:
        """A new histogram holding the counts of all of ``histograms`` (None: nothing)."""
        out = cls()
        for histogram in histograms:
            if histogram is not None:
                out.merge(histogram)
        return out

    def copy(self) -> LogHistogram:
        return LogHistogram(self.buckets, self.zeros)

    # ------------------------------------------------------------------------ reading

    @property
    def count(self) -> int:
        """How many values were added."""
        return self.zeros + sum(self.buckets.values())

    def __len__(self) -> int:
        return self.count

    def __bool__(self) -> bool:
        return bool(self.zeros or self.buckets)

    def quantile(self, q: float) -> float | None:
        """The ``q`` quantile (0..1) in ms, None when empty: within RELATIVE_ACCURACY of the
        exact quantile of the values added (:func:`exact_quantile`: linear interpolation
        between the two values around rank ``q * (count - 1)``), values below MIN_MS read
        as 0."""
        return self.quantiles((q,))[0]

    def quantiles(self, qs: Sequence[float]) -> list[float | None]:
        """:meth:`quantile` of each of ``qs``, in one walk over the buckets."""
        for q in qs:
            if not 0 <= q <= 1:
                raise ValueError(f"quantile {q} is not between 0 and 1")
        total = self.count
        if total == 0:
            return [None] * len(qs)
        # Ranks (0-based) needed: the one at or below q * (total - 1) and the one above it.
        wanted: set[int] = set()
        for q in qs:
            rank = q * (total - 1)
            low = math.floor(rank)
            wanted.update((low, min(low + 1, total - 1)))
        value_at = self._values_at(sorted(wanted))
        out: list[float | None] = []
        for q in qs:
            rank = q * (total - 1)
            low = math.floor(rank)
            high = min(low + 1, total - 1)
            below, above = value_at[low], value_at[high]
            out.append(below + (rank - low) * (above - below))
        return out

    def _values_at(self, ranks: list[int]) -> dict[int, float]:
        """The representative value of the bucket holding each of ``ranks`` (ascending)."""
        found: dict[int, float] = {}
        i = 0
        seen = self.zeros
        while i < len(ranks) and ranks[i] < seen:
            found[ranks[i]] = 0.0
            i += 1
        if i == len(ranks):
            return found
        buckets = self.buckets
        for index in sorted(buckets):
            seen += buckets[index]
            while i < len(ranks) and ranks[i] < seen:
                found[ranks[i]] = GAMMA**index * _MIDDLE
                i += 1
            if i == len(ranks):
                break
        return found

    # ---------------------------------------------------------------------- encoding

    def encode(self) -> str:
        """Compact JSON: ``{"a":RELATIVE_ACCURACY,"z":ZEROS,"b":[[INDEX,COUNT,...],...]}``:
        runs of buckets by index, each its first index and the counts from there on (a
        run spans up to _RUN_GAP empty buckets, as 0)."""
        runs = ",".join("[" + ",".join(map(str, run)) + "]" for run in self._runs())
        return f'{{"a":{RELATIVE_ACCURACY},"z":{self.zeros},"b":[{runs}]}}'

    def to_dict(self) -> dict[str, Any]:
        """What :meth:`encode` writes, as a JSON object."""
        return {"a": RELATIVE_ACCURACY, "z": self.zeros, "b": self._runs()}

    def _runs(self) -> list[list[int]]:
        runs: list[list[int]] = []
        last = None
        for index in sorted(self.buckets):
            if last is None or index - last > _RUN_GAP + 1:
                runs.append([index])
            else:
                runs[-1].extend([0] * (index - last - 1))
            runs[-1].append(self.buckets[index])
            last = index
        return runs

    @classmethod
    def decode(cls, text: str) -> LogHistogram:
        """The histogram :meth:`encode` wrote; ValueError for any other text."""
        return cls.from_dict(_decode(text))

    @classmethod
    def from_dict(cls, data: Any) -> LogHistogram:
        """The histogram of :meth:`to_dict`'s object; ValueError for anything else (another
        accuracy's buckets included: they would not line up)."""
        if not isinstance(data, dict) or data.get("a") != RELATIVE_ACCURACY:
            raise ValueError(f"not a latency histogram of accuracy {RELATIVE_ACCURACY}")
        zeros, runs = data.get("z"), data.get("b")
        if not isinstance(zeros, int) or not _count(zeros, allow_zero=True):
            raise ValueError("a latency histogram needs a count of zeros")
        if not isinstance(runs, list):
            raise ValueError("a latency histogram needs its runs of buckets")
        buckets: dict[int, int] = {}
        for run in runs:
            if not isinstance(run, list) or len(run) < 2 or not _index(run[0]):
                raise ValueError(f"latency histogram run {run!r} is not an index and counts")
            for index, count in enumerate(run[1:], start=run[0]):
                if not _count(count, allow_zero=True):
                    raise ValueError(f"latency histogram bucket {index} holds {count!r}")
                if count:
                    buckets[index] = buckets.get(index, 0) + count
        return cls(buckets, zeros)

    # ----------------------------------------------------------------------- the rest

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, LogHistogram):
            return NotImplemented
        return self.zeros == other.zeros and self.buckets == other.buckets

    __hash__ = None  # type: ignore[assignment]  # mutable

    def __repr__(self) -> str:
        return f"LogHistogram(count={self.count}, buckets={len(self.buckets)})"


def _index(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _count(value: Any, *, allow_zero: bool) -> bool:
    return (
        isinstance(value, int)
        and not isinstance(value, bool)
        and (value >= 0 if allow_zero else value > 0)
    )


def exact_quantile(values: Sequence[float], q: float) -> float | None:
    """The ``q`` quantile of ``values`` as :meth:`LogHistogram.quantile` approximates it:
    linear interpolation between the values of ranks around ``q * (n - 1)`` (numpy's
    default, Hyndman and Fan's type 7); None for no values."""
    if not values:
        return None
    ordered = sorted(values)
    rank = q * (len(ordered) - 1)
    low = math.floor(rank)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (rank - low) * (ordered[high] - ordered[low])
