"""The latency histogram (store/metrics/sketch.py): every quantile within 1 % of the exact
quantile of the values added, merging two histograms the same as adding all their values
to one, and the stored text read back as it was written (docs/monitoring.md, "Exact
latencies")."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from store.metrics.sketch import MIN_MS, RELATIVE_ACCURACY, LogHistogram, exact_quantile

# Latencies from a microsecond to a day, in ms.
LATENCIES = st.floats(min_value=MIN_MS, max_value=86_400_000.0, allow_nan=False)
QUANTILES = st.floats(min_value=0.0, max_value=1.0)
# The accuracy promised, and the rounding of the float arithmetic on top of it.
TOLERANCE = RELATIVE_ACCURACY * (1 + 1e-9)


def sketch_of(values: list[float]) -> LogHistogram:
    histogram = LogHistogram()
    histogram.add_all(values)
    return histogram


@settings(max_examples=300, deadline=None)
@given(st.lists(LATENCIES, min_size=1, max_size=400), st.lists(QUANTILES, min_size=1, max_size=5))
def test_every_quantile_is_within_the_relative_accuracy_of_the_exact_one(
    values: list[float], qs: list[float]
) -> None:
    histogram = sketch_of(values)
    assert histogram.count == len(values)
    for q, estimate in zip(qs, histogram.quantiles(qs), strict=True):
        exact = exact_quantile(values, q)
        assert estimate is not None and exact is not None
        assert abs(estimate - exact) <= TOLERANCE * exact, (q, estimate, exact)
        assert histogram.quantile(q) == estimate


@settings(max_examples=200, deadline=None)
@given(
    st.lists(st.floats(min_value=0.0, max_value=5000.0, allow_nan=False), min_size=1),
    QUANTILES,
)
def test_values_below_the_floor_count_as_zero_and_stay_within_it(
    values: list[float], q: float
) -> None:
    """The zero bucket: the error there is absolute, under MIN_MS."""
    estimate = sketch_of(values).quantile(q)
    exact = exact_quantile(values, q)
    assert estimate is not None and exact is not None
    assert abs(estimate - exact) <= TOLERANCE * exact + MIN_MS


@settings(max_examples=200, deadline=None)
@given(st.lists(st.lists(LATENCIES, max_size=60), min_size=1, max_size=6))
def test_merging_is_adding_all_the_values_to_one(parts: list[list[float]]) -> None:
    merged = LogHistogram.merged(sketch_of(part) for part in parts)
    everything = sketch_of([value for part in parts for value in part])
    assert merged == everything
    assert merged.count == sum(map(len, parts))
    backwards = LogHistogram.merged(sketch_of(part) for part in reversed(parts))
    assert backwards == merged
    one = sketch_of(parts[0])
    for part in parts[1:]:
        one.merge(sketch_of(part))
    assert one == everything


@settings(max_examples=200, deadline=None)
@given(st.lists(st.one_of(LATENCIES, st.just(0.0)), max_size=200))
def test_the_stored_text_reads_back_as_written(values: list[float]) -> None:
    histogram = sketch_of(values)
    text = histogram.encode()
    assert json.loads(text) == histogram.to_dict()
    assert " " not in text  # compact
    again = LogHistogram.decode(text)
    assert again == histogram
    assert again.quantiles((0.5, 0.95, 0.99)) == histogram.quantiles((0.5, 0.95, 0.99))


def test_exact_quantile_is_numpys_default() -> None:
    rng = np.random.default_rng(18)
    values = list(rng.lognormal(math.log(38), 0.4, size=1001))
    for q in (0.0, 0.25, 0.5, 0.95, 0.99, 0.999, 1.0):
        assert exact_quantile(values, q) == pytest.approx(float(np.quantile(values, q)))


def test_a_38_ms_service_reads_its_p95_to_one_percent_where_buckets_say_50() -> None:
    """What the histogram was for: BentoML's buckets put this p95 somewhere in 25-50 ms."""
    rng = np.random.default_rng(4)
    values = [float(v) for v in rng.lognormal(math.log(38), 0.15, size=3000)]
    histogram = sketch_of(values)
    exact = exact_quantile(values, 0.95)
    estimate = histogram.quantile(0.95)
    assert exact is not None and estimate is not None
    assert abs(estimate - exact) <= RELATIVE_ACCURACY * exact
    assert len(histogram.buckets) < 60  # sparse: the buckets the values fall in only


def test_neighbouring_buckets_are_stored_as_runs() -> None:
    histogram = LogHistogram({-2: 1, 0: 4, 1: 2, 5: 1, 10: 3}, zeros=2)
    assert histogram.encode() == '{"a":0.01,"z":2,"b":[[-2,1,0,4,2,0,0,0,1],[10,3]]}'
    assert LogHistogram.decode(histogram.encode()) == histogram


def test_an_empty_histogram_has_no_quantiles() -> None:
    empty = LogHistogram()
    assert not empty and empty.count == 0
    assert empty.quantile(0.5) is None
    assert empty.quantiles((0.5, 0.99)) == [None, None]
    assert LogHistogram.decode(empty.encode()) == empty


def test_counts_at_once_and_one_by_one_agree() -> None:
    one = LogHistogram()
    one.add(12.5, count=3)
    one.add(0.0)
    other = sketch_of([12.5, 12.5, 12.5, 0.0])
    assert one == other and one.count == 4 and one.zeros == 1


@pytest.mark.parametrize("bad", [-1.0, math.nan, math.inf, -math.inf])
def test_a_latency_that_is_no_duration_is_refused(bad: float) -> None:
    with pytest.raises(ValueError, match="not a finite number >= 0"):
        LogHistogram().add(bad)
    histogram = LogHistogram()
    with pytest.raises(ValueError, match="not a finite number >= 0"):
        histogram.add_all([1.0, 0.0, bad])
    assert histogram.count == 2  # what came before it is counted


@pytest.mark.parametrize("q", [-0.01, 1.01, math.nan])
def test_a_quantile_outside_zero_to_one_is_refused(q: float) -> None:
    with pytest.raises(ValueError, match="is not between 0 and 1"):
        sketch_of([1.0]).quantile(q)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('{"a":0.02,"z":0,"b":{}}', "accuracy 0.01"),  # another accuracy: buckets differ
        ('{"z":0,"b":{}}', "accuracy 0.01"),
        ("[1, 2]", "accuracy 0.01"),
        ('{"a":0.01,"z":-1,"b":{}}', "count of zeros"),
        ('{"a":0.01,"z":true,"b":{}}', "count of zeros"),
        ('{"a":0.01,"z":0,"b":{"3":1}}', "its runs of buckets"),
        ('{"a":0.01,"z":0,"b":[["x",1]]}', "is not an index and counts"),
        ('{"a":0.01,"z":0,"b":[[3]]}', "is not an index and counts"),
        ('{"a":0.01,"z":0,"b":[[3,1,-1]]}', "bucket 4 holds -1"),
        ('{"a":0.01,"z":0,"b":[[-3,1.5]]}', "bucket -3 holds 1.5"),
    ],
)
def test_text_that_is_no_histogram_is_refused(text: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        LogHistogram.decode(text)
