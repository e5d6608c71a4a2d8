"""core.alerts.detect: the Prometheus-style threshold and the slow-leak CUSUM."""

from __future__ import annotations

import itertools
import json
import random
import re

import pytest

from core.alerts.detect import (
    Cusum,
    Threshold,
    estimate_baseline,
    format_value,
    moving_range_sigma,
)

BASE = 120.0


def _cusum(**kw: float) -> Cusum:
    params: dict[str, float] = {"baseline_minutes": 10, "k": 0.5, "h": 8.0, "min_sigma": 2.0}
    params.update(kw)
    return Cusum(
        baseline_minutes=int(params["baseline_minutes"]),
        k=params["k"],
        h=params["h"],
        min_sigma=params["min_sigma"],
        label="p95",
        unit="ms",
    )


def _noise(rng: random.Random, n: int, rel: float = 0.05) -> list[float]:
    return [BASE + rng.gauss(0, BASE * rel) for _ in range(n)]


def _first_breach(det: Cusum, values: list[float], release: str = "r1") -> int | None:
    for minute, value in enumerate(values):
        if det.update(minute * 60, value, release).breaching:
            return minute
    return None


# -- Threshold ---------------------------------------------------------------------------


def test_threshold_for_semantics_and_details() -> None:
    det = Threshold(500, 2, label="p99", unit="ms")
    v = det.update(0, 740)
    assert (v.breaching, v.fires) == (True, False)
    assert v.detail == "p99 740 ms > 500 ms for 1 of 2 min"
    v = det.update(60, 760)
    assert (v.breaching, v.fires) == (True, True)
    assert v.detail == "p99 760 ms > 500 ms for 2 min"
    assert v.threshold == 500 and v.value == 760
    v = det.update(120, 420)
    assert (v.breaching, v.fires) == (False, False)
    assert v.detail == "p99 420 ms <= 500 ms"
    # the streak starts over after a clear minute
    assert not det.update(180, 900).fires


def test_threshold_missing_minutes_neither_count_nor_break() -> None:
    det = Threshold(500, 3, label="p99", unit="ms")
    det.update(0, 600)
    v = det.update(60, None)
    assert v.value is None and v.breaching and not v.fires
    assert det.update(120, 600).detail.endswith("for 2 of 3 min")
    assert det.update(180, 600).fires


def test_threshold_below_and_for_one() -> None:
    det = Threshold(0.9, 1, "below", label="accuracy")
    v = det.update(0, 0.85)
    assert v.fires and v.detail == "accuracy 0.85 < 0.9 for 1 min"
    assert not det.update(60, 0.95).breaching
    with pytest.raises(ValueError):
        Threshold(1, 0)


def test_threshold_state_round_trip_checks_params() -> None:
    det = Threshold(500, 3)
    det.update(0, 600)
    saved = json.loads(json.dumps(det.to_dict()))
    other = Threshold(500, 3)
    assert other.load_state(saved) and other.streak == 1
    changed = Threshold(400, 3)
    assert not changed.load_state(saved) and changed.streak == 0


def test_format_value() -> None:
    assert format_value(212.4, "ms") == "212 ms"
    assert format_value(3.42, "ms") == "3.4 ms"
    assert format_value(0.134, "ms") == "0.13 ms"
    assert format_value(0.072, "%") == "7.2%"
    assert format_value(0.3149) == "0.315"


# -- Cusum -------------------------------------------------------------------------------


@pytest.mark.parametrize("rel", [0.05, 0.10])
def test_cusum_noise_stays_quiet(rel: float) -> None:
    """Thousands of seeded noise minutes, a fresh baseline every day: no alarm."""
    rng = random.Random(7)
    alarms = 0
    for day in range(12):
        det = _cusum()
        values = _noise(rng, 1440, rel)
        alarms += sum(det.update(m * 60, v, f"r{day}").breaching for m, v in enumerate(values))
    assert alarms == 0


def test_cusum_catches_a_one_percent_per_minute_ramp() -> None:
    for seed in range(10):
        rng = random.Random(seed)
        quiet = _noise(rng, 40)
        ramp = [BASE * (1 + 0.01 * (i + 1)) + rng.gauss(0, BASE * 0.05) for i in range(60)]
        hit = _first_breach(_cusum(), quiet + ramp)
        assert hit is not None and hit >= 40, seed
        assert hit - 40 < 25, (seed, hit - 40)


def test_cusum_catches_a_step_within_minutes() -> None:
    for seed in range(10):
        rng = random.Random(100 + seed)
        values = _noise(rng, 30) + [1.3 * BASE + rng.gauss(0, BASE * 0.05) for _ in range(30)]
        hit = _first_breach(_cusum(), values)
        assert hit is not None and 30 <= hit < 30 + 7, (seed, hit)


def test_cusum_ignores_a_single_spike_and_two_in_a_row() -> None:
    rng = random.Random(3)
    values = _noise(rng, 60)
    values[30] = values[31] = 10 * BASE
    assert _first_breach(_cusum(), values) is None


def test_cusum_detail_lines() -> None:
    det = _cusum()
    first = det.update(0, 120.0, "r1")
    assert not first.breaching and first.detail == "p95 120 ms, learning baseline (1/10 min)"
    for m in range(1, 10):
        v = det.update(m * 60, 120.0 + (m % 3), "r1")
    assert "baseline 121 ms" in v.detail and v.baseline is not None
    for m in range(10, 40):
        v = det.update(m * 60, 160.0, "r1")
        if v.breaching:
            break
    assert v.breaching
    assert re.fullmatch(
        r"p95 160 ms, creeping up from baseline 121 ms \(CUSUM \d+\.\d > 8\.0 sigma\)",
        v.detail,
    ), v.detail
    assert v.score is not None and v.score > 8
    assert v.threshold is not None and v.baseline is not None and v.threshold > v.baseline


def test_cusum_resets_on_release_change() -> None:
    det = _cusum()
    for m in range(10):
        det.update(m * 60, BASE + (m % 2), "r1")
    hit = next(m for m in range(10, 60) if det.update(m * 60, 1.5 * BASE, "r1").breaching)
    assert hit < 20
    v = det.update(3600, 1.5 * BASE, "r2")
    assert not v.breaching and "learning baseline (1/10 min)" in v.detail
    # the new release's own level is its baseline: steady at 180 ms, no alarm
    assert all(not det.update((61 + m) * 60, 180.0 + (m % 2), "r2").breaching for m in range(60))
    # an unknown release (None) keeps the current one
    assert det.update(10_000, 181.0, None).baseline is not None


def test_cusum_skips_missing_minutes() -> None:
    det = _cusum()
    for m in range(20):
        det.update(m * 60, None if m % 2 else BASE, "r1")
    assert det.baseline is not None and det.baseline.minutes == 10
    det.update(2000, 150.0, "r1")
    score = det.score
    v = det.update(2060, None, "r1")
    assert v.value is None and det.score == score


def test_cusum_quiet_baseline_uses_the_floor() -> None:
    det = _cusum()
    for m in range(10):
        det.update(m * 60, 120.0, "r1")
    assert det.baseline is not None and det.sigma()[0] == 2.0
    wiggles = [121.0, 123.0, 119.0, 122.0, 124.0, 120.0] * 50
    assert all(not det.update((10 + m) * 60, v, "r1").breaching for m, v in enumerate(wiggles))


def test_baseline_leaves_out_a_cold_start_minute() -> None:
    values = [400.0, 120, 121, 119, 122, 118, 120, 121, 119, 120]
    base = estimate_baseline(values, k=0.5, min_sigma=2.0)
    assert 119 < base.mean < 121
    assert base.k_eff == pytest.approx(0.5 + 2.5 / 10**0.5)


def test_spread_from_moving_ranges_ignores_steps_and_spikes() -> None:
    rng = random.Random(5)
    noise = _noise(rng, 200)
    stepped = noise[:100] + [v + 60 for v in noise[100:]]
    stepped[50] += 500
    ranges = [abs(b - a) for a, b in itertools.pairwise(stepped)]
    sigma, sigma_eff = moving_range_sigma(ranges, 2.0)
    assert 5.0 < sigma < 7.5  # the true sigma is 6 ms
    assert sigma_eff == pytest.approx(sigma * (1 + 1 / len(ranges) ** 0.5))
    assert moving_range_sigma([], 2.0)[0] == 2.0


def test_cusum_spread_keeps_learning_after_the_baseline() -> None:
    """A lucky, too-quiet baseline does not make the rest of the day an alarm."""
    rng = random.Random(9)
    det = _cusum()
    for m in range(10):  # half the true spread (3 ms of 6)
        det.update(m * 60, BASE + rng.gauss(0, 3), "r1")
    assert det.sigma()[0] < 4.5
    assert _first_breach(det, _noise(rng, 1440, 0.05)) is None
    assert 5 < det.sigma()[0] < 7


def test_cusum_state_round_trip() -> None:
    rng = random.Random(11)
    values = _noise(rng, 30) + [BASE * (1 + 0.01 * i) for i in range(60)]
    a = _cusum()
    for m, v in enumerate(values[:25]):
        a.update(m * 60, v, "r1")
    b = _cusum()
    assert b.load_state(json.loads(json.dumps(a.to_dict())))
    for m, v in enumerate(values[25:], start=25):
        assert a.update(m * 60, v, "r1") == b.update(m * 60, v, "r1")
    assert not _cusum(h=9.0).load_state(a.to_dict())
