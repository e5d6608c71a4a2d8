"""The regression rules' tiers and baselines for recorded production series (issue 18): the
severe tier that fires at once, the spread read from the usual peak of a bursty series, the
drop rule judged by the median of its window, the recent level where no earlier day exists,
the leak's floor against the past, and the parameters' checks."""

from __future__ import annotations

import math
import random
from dataclasses import replace
from pathlib import Path
from statistics import NormalDist

import pytest

from core.alerts.alerting import Rules, check_policy
from core.alerts.backtest import backtest
from core.alerts.detect import Cusum
from core.alerts.policies import explain, resolve
from core.alerts.regression import Regression
from core.alerts.seasonal import (
    DAY,
    Expectation,
    Seasonal,
    SeriesHistory,
    peak_sigmas,
    with_range,
)
from core.config.model import Project, parse_config
from core.errors import ConfigError

T0 = 1_700_006_400 - 1_700_006_400 % DAY  # a midnight, UTC
FIVE = 300
PAST = Expectation(40.0, 2.0, "daily", 7)


def five_minute_rows(days: int, *, level: float = 40.0, seed: int = 1) -> list[tuple[int, float]]:
    rng = random.Random(seed)
    return [
        (T0 + i * FIVE, level * math.exp(rng.gauss(0, 0.03))) for i in range(days * DAY // FIVE)
    ]


def pages(rows: list[tuple[int, float]], since: int, policy: dict | None = None) -> list:
    return [
        a
        for a in backtest(rows, "p95_ms", policy or {}, service="s", env="e")
        if a.pages and a.t >= since
    ]


# -- the severe tier -------------------------------------------------------------------


def test_an_extreme_point_fires_at_once_where_the_usual_tier_waits() -> None:
    rule = Regression(
        ratio=1.5, z=4, for_points=3, severe_ratio=2, severe_z=5, label="p95", unit="ms"
    )
    large = rule.update(0, 70.0, None, PAST)  # x1.75: the usual tier, 1 of 3 points
    assert large.breaching and not large.fires and large.detail.endswith("for 1 of 3 points")
    rule.reset()
    extreme = rule.update(0, 90.0, None, PAST)  # x2.25, 25 sigma
    assert extreme.fires
    assert (
        extreme.detail
        == "p95 90 ms vs 40 ms this hour, last 7 days (x2.2, 25.0 sigma): severe, at once"
    )
    # Without a severe tier, the same point waits for its three.
    assert not Regression(ratio=1.5, z=4, for_points=3).update(0, 90.0, None, PAST).fires


def test_the_severe_tier_holds_its_points_and_needs_both_measures() -> None:
    rule = Regression(for_points=3, severe_ratio=2, severe_z=5, severe_points=2)
    assert not rule.update(0, 90.0, None, PAST).fires
    assert rule.update(60, 90.0, None, PAST).fires
    # x2.25 but within five spreads of a wide baseline: not severe.
    wide = Expectation(40.0, 12.0, "daily", 7)
    assert (
        not Regression(for_points=3, severe_ratio=2, severe_z=5).update(0, 90.0, None, wide).fires
    )


def test_a_single_extreme_five_minute_point_pages_in_any_unit() -> None:
    for level in (0.13, 45.0):  # a sub-millisecond series has no absolute floor to hide under
        rows = five_minute_rows(9, level=level)
        at = T0 + 8 * DAY + 15 * 3600
        rows = [(t, v * 2.2 if t == at else v) for t, v in rows]
        found = pages(rows, T0 + 2 * DAY)
        assert [a.t for a in found] == [at], [a.detail for a in found]
        assert found[0].rule == "latency_regression" and "severe, at once" in found[0].detail


def test_a_daily_job_is_the_usual_peak_and_a_spike_elsewhere_is_not() -> None:
    # A job at 03:00 (give or take 15 minutes) takes the series to 11x every night; the same
    # height at 15:00 is an incident.
    rng = random.Random(4)
    rows = five_minute_rows(10, level=0.134)
    jobs = {T0 + d * DAY + 3 * 3600 + rng.choice((-3, -1, 0, 2, 3)) * FIVE for d in range(10)}
    spike = T0 + 9 * DAY + 15 * 3600
    rows = [(t, 1.5 if t in jobs or t == spike else v) for t, v in rows]
    found = pages(rows, T0 + 3 * DAY)
    assert [a.t for a in found] == [spike], [(a.t, a.detail) for a in found]


# -- the spread above the level, from the usual peak --------------------------------------


def test_peak_sigmas_is_the_median_of_the_highest_of_n_normal_points() -> None:
    for n in (2, 13, 61):
        assert NormalDist().cdf(peak_sigmas(n)) ** n == pytest.approx(0.5)
    assert peak_sigmas(13) == pytest.approx(1.626, abs=0.001)
    assert peak_sigmas(1) == 0.0


def test_normal_noise_keeps_its_spread_and_bursts_widen_it() -> None:
    usual = with_range(PAST, 40.0 - 1.626 * 2.0, 40.0 + 1.626 * 2.0, 13)
    assert usual.upper == pytest.approx(2.0) and usual.lower == pytest.approx(2.0)
    bursty = with_range(Expectation(50.0, 20.0, "daily", 7), 30.0, 300.0, 13)
    assert bursty.upper == pytest.approx(250 / 1.626, rel=0.001)
    assert bursty.lower == 20.0  # the low is within the robust spread
    # 250 is x5 and 10 robust spreads, but within the usual bursts: no regression.
    plain = Expectation(50.0, 20.0, "daily", 7)
    assert Regression(label="p95", unit="ms").update(0, 250.0, None, plain).breaching
    burst = Regression(label="p95", unit="ms").update(0, 250.0, None, bursty)
    assert not burst.breaching
    # Far beyond them, it is, and the line names the peak that widened the spread.
    far = Regression(label="p95", unit="ms").update(0, 900.0, None, bursty)
    assert far.breaching and "(x18.0, 5.5 sigma, usual peak 300 ms)" in far.detail


def test_the_usual_peak_and_low_are_medians_over_the_earlier_days() -> None:
    rows = five_minute_rows(8)
    at = T0 + 7 * DAY + 12 * 3600
    # One day had a burst to 400 around noon, the others topped out near 42.
    rows = [(t, 400.0 if t == at - 2 * DAY + FIVE else v) for t, v in rows]
    history = SeriesHistory()
    for t, v in rows:
        if t < at:
            history.add("p95_ms", t, v)
    found = Seasonal("daily", interval=FIVE).expect(history, "p95_ms", at)
    assert found is not None and found.peak is not None and found.low is not None
    assert 40 < found.peak < 45 and 35 < found.low < 40


# -- the drop rule -----------------------------------------------------------------------


def test_a_drop_is_the_median_of_its_window_far_below() -> None:
    rule = Regression(
        ratio=2,
        z=4,
        for_points=0,
        window_points=3,
        minutes_per_point=5,
        direction="below",
        label="p95",
        unit="ms",
    )
    # Quick points here and there: the median stays up.
    for i, v in enumerate([12.0, 41.0, 40.0, 11.0, 42.0, 43.0, 12.0]):
        assert not rule.update(i, v, None, PAST).breaching
    rule.reset()
    verdicts = [rule.update(i, 10.0, None, PAST) for i in range(3)]
    assert [v.fires for v in verdicts] == [False, False, True]  # a full window first
    assert verdicts[-1].detail == (
        "p95 10 ms, median of the last 15 min, vs 40 ms this hour, last 7 days (/4.0, 20.7 sigma)"
    )


def test_a_collapse_pages_latency_drop_once() -> None:
    rows = five_minute_rows(9)
    start = T0 + 8 * DAY + 10 * 3600
    rows = [(t, v / 4 if start <= t < start + 3600 else v) for t, v in rows]
    found = pages(rows, T0 + 2 * DAY)
    # Two of the three points of its 15 minutes: the median is down.
    assert [(a.rule, a.t) for a in found] == [("latency_drop", start + FIVE)], [
        a.detail for a in found
    ]
    assert "median of the last 15 min" in found[0].detail and "(/4." in found[0].detail


# -- baselines: the recent level, weekly, the leak's floor ------------------------------


def test_with_no_earlier_day_the_regression_rules_use_the_last_hours() -> None:
    rules = Rules({}, service="s", env="e", interval=60)
    history = SeriesHistory()
    fired = []
    for i in range(5 * 60 + 5):
        t = T0 + i * 60
        value = 40.0 + (i % 3) if i < 5 * 60 else 130.0
        fired += [
            c
            for c in rules.evaluate(t, {"p95_ms": value}, release=None, up=True, history=history)
            if c.state == "firing"
        ]
        history.add("p95_ms", t, value)
    regression = [c for c in fired if c.rule == "latency_regression"]
    assert regression and "vs 41 ms over the last 3 hours (x3.2" in regression[0].detail
    # The leak rule's baseline never follows the series: the release's own first minutes.
    assert all("over the last" not in c.detail for c in fired if c.rule == "latency_leak")


def test_season_recent_serves_the_regression_rules_only() -> None:
    history = SeriesHistory()
    for t, v in five_minute_rows(3):
        history.add("p95_ms", t, v)
    at = T0 + 3 * DAY
    seasonal = Seasonal("recent", interval=FIVE)
    recent = seasonal.expect(history, "p95_ms", at, recent=True)
    assert (
        recent is not None
        and recent.season == "recent"
        and recent.words() == "over the last 3 hours"
    )
    other = seasonal.expect(history, "p95_ms", at)
    assert other is not None and other.season == "daily"


def test_the_leak_against_the_past_ignores_a_wander_of_a_few_per_cent() -> None:
    steady = Expectation(87.0, 0.5, "daily", 7)  # a flat series: a tiny spread
    leak = Cusum(k=0.5, h=8.0)
    assert not any(leak.update(i, 93.0, None, steady).breaching for i in range(120))  # +7 %
    leak = Cusum(k=0.5, h=8.0)
    assert any(leak.update(i, 113.0, None, steady).breaching for i in range(20))  # +30 %


# -- quiet verdicts, state, parameters --------------------------------------------------


def test_quiet_verdicts_decide_the_same_and_word_only_what_is_read() -> None:
    rng = random.Random(9)
    loud = Regression(for_points=3, severe_ratio=2, severe_z=5, window_points=4)
    quiet = Regression(for_points=3, severe_ratio=2, severe_z=5, window_points=4)
    for i in range(500):
        value = 40.0 * math.exp(rng.gauss(0, 0.4))
        a, b = loud.update(i, value, None, PAST), quiet.update(i, value, None, PAST, quiet=True)
        assert (a.breaching, a.fires, a.threshold) == (b.breaching, b.fires, b.threshold)
        if a.breaching:
            assert a.detail == b.detail
        else:
            assert b.detail == "value within x1.5 of the baseline"


def test_a_regression_rule_resumes_its_streaks_and_window() -> None:
    rule = Regression(for_points=3, severe_ratio=2, severe_z=5, severe_points=2, window_points=3)
    rule.update(0, 90.0, None, PAST)
    rule.update(1, 95.0, None, PAST)
    again = Regression(for_points=3, severe_ratio=2, severe_z=5, severe_points=2, window_points=3)
    assert again.load_state(rule.to_dict())
    assert (again.streak, again.severe_streak, list(again.recent)) == (2, 2, [90.0, 95.0])
    assert not Regression(severe_points=3).load_state(rule.to_dict())  # other parameters


def test_the_new_parameters_are_checked_and_cascade() -> None:
    checked = check_policy({"season": "recent", "drop_for_minutes": 30})
    assert checked["season"] == "recent" and checked["drop_for_minutes"] == 30
    assert checked["regression_severe_ratio"] == 2.0 and checked["regression_severe_z"] == 5.0
    for name, bad, says in [
        ("regression_severe_ratio", 1.0, "must be > 1"),
        ("drop_ratio", 0.5, "must be > 1"),
        ("regression_severe_z", 0, "must be > 0"),
        ("regression_severe_for_minutes", 0, "must be a whole number >= 1"),
        ("drop_for_minutes", 2.5, "must be a whole number >= 1"),
    ]:
        with pytest.raises(ConfigError, match=f"{name} {says}"):
            check_policy({name: bad})
    text = (
        '[project]\nname = "shop"\n\n[services.iris]\nbento = "service:Iris"\nmodel = ["m"]\n\n'
        "[environments.prod]\nport = 3102\n\n[monitoring]\nregression_severe_z = 6.0\n\n"
        '[environments.prod.monitoring]\ndrop_ratio = 3.0\nseason = "recent"\n'
    )
    config = parse_config(text, Path("relman.toml"))
    policy = resolve(config, "iris", "prod")
    assert policy.values["regression_severe_z"] == 6.0 and policy.values["drop_ratio"] == 3.0
    assert policy.sources["drop_ratio"] == "[environments.prod.monitoring]"
    project = Project(root=Path("."), config_path=Path("relman.toml"), config=config)
    rows = {row["name"]: row for row in explain(project, "iris", "prod")["parameters"]}
    for name in ("regression_severe_ratio", "regression_severe_for_minutes", "drop_for_minutes"):
        assert rows[name]["source"] == "built-in" and rows[name]["description"]
    assert rows["regression_severe_z"]["source"] == "[monitoring]"
    with pytest.raises(ConfigError, match=r"relman.toml:\d+: .*drop_ratio"):
        parse_config(text.replace("drop_ratio = 3.0", "drop_ratio = 1.0"), Path("relman.toml"))


def test_a_release_that_answers_faster_from_its_start_is_no_drop() -> None:
    # Two days of r1 at 40 ms; r2, twice as fast, from day 2 10:00; an hour later it
    # collapses to a tenth: that, and only that, is a drop, against how r2 runs.
    rng = random.Random(2)
    rules = Rules({}, service="s", env="e")
    history = SeriesHistory()
    start = T0 + 2 * DAY + 10 * 3600
    fired = []
    for t in range(T0, start + 3 * 3600, 60):
        release = "r1" if t < start else "r2"
        value = 40.0 if t < start else 20.0 if t < start + 2 * 3600 else 2.0
        value *= math.exp(rng.gauss(0, 0.03))
        changes = rules.evaluate(t, {"p95_ms": value}, release=release, up=True, history=history)
        fired += [(t, c) for c in changes if c.rule == "latency_drop" and c.state == "firing"]
        history.add("p95_ms", t, value)
    assert [t for t, _ in fired] and all(t >= start + 2 * 3600 for t, _ in fired), fired
    assert "vs 20 ms this hour, last 2 days, this release x0.50 (/9." in fired[0][1].detail
    # Saved and resumed, the rules remember how r2 runs.
    again = Rules.from_dict(rules.to_dict())
    assert again._release_runs == rules._release_runs and rules._release_runs["p95_ms"]


# -- what happens every day (issue 18: bursty production series) -------------------------


def bursty_rows(days: int, *, seed: int = 7) -> list[tuple[int, float]]:
    """A CPU at 0.1 % that bursts to about 95 % for 10-20 minutes at random hours, three to
    six times a day (as NAB's ec2_cpu_utilization_77c1ca does)."""
    rng = random.Random(seed)
    rows = five_minute_rows(days, level=0.1, seed=seed)
    values = [v for _, v in rows]
    per_day = DAY // FIVE
    for day in range(days):
        for _ in range(rng.randint(3, 6)):
            start = day * per_day + rng.randrange(per_day - 4)
            for i in range(start, start + rng.randint(2, 4)):
                values[i] = rng.uniform(90.0, 97.0)
    return [(t, v) for (t, _), v in zip(rows, values, strict=True)]


def test_the_usual_daily_rise_is_read_from_the_second_highest_of_each_hour() -> None:
    rows = bursty_rows(4)
    history = history_of(rows)
    found = Seasonal("daily", interval=FIVE).expect(history, "p95_ms", T0 + 4 * DAY)
    assert found is not None and found.day_rise is not None and found.day_upper is not None
    # The bursts reach ~90-97 every day: that (a tenth more) is the usual daily rise, and
    # the spread it implies is a third of it (the highest of 288 points, ~2.9 sigmas).
    assert 95 < found.day_rise < 110
    assert found.day_upper == pytest.approx(found.day_rise / peak_sigmas(DAY // FIVE))
    # One odd point an hour is an outlier, not what the series does.
    lone = [(t, 50.0 if (t - T0) % 3600 == 0 else v) for t, v in five_minute_rows(4, level=0.1)]
    alone = Seasonal("daily", interval=FIVE).expect(history_of(lone), "p95_ms", T0 + 4 * DAY)
    assert alone is not None and alone.day_rise is not None and alone.day_rise < 0.1
    # Without a whole earlier day there is no usual daily rise.
    young = Seasonal("daily", interval=FIVE).expect(history_of(rows), "p95_ms", T0 + DAY // 2)
    assert young is None or young.day_rise is None


def test_no_higher_than_every_day_breaches_neither_tier_and_says_so() -> None:
    usual = replace(PAST, day_rise=60.0)  # the series rises to ~100 every day
    rule = Regression(
        ratio=1.5, z=4, for_points=2, severe_ratio=2, severe_z=5, label="p95", unit="ms"
    )
    verdicts = [rule.update(i, 95.0, None, usual) for i in range(3)]  # x2.4, 27 sigma
    assert not any(v.breaching for v in verdicts)
    assert verdicts[-1].detail.endswith(": no higher than it rises every day (+60 ms)")
    # Without the daily rise (the same point, no history of days) it fires at once.
    rule.reset()
    assert rule.update(0, 95.0, None, PAST).fires
    # Higher than the series ever rises: an incident.
    assert Regression(for_points=2, severe_ratio=2, severe_z=5).update(0, 150.0, None, usual).fires


def test_the_leak_against_the_past_reads_everyday_bursts_in_the_daily_spread() -> None:
    flat = Expectation(0.1, 0.005, "daily", 7)
    bursts = [95.0, 95.0, 96.0, 94.0, 0.1, 0.1]
    leak = Cusum(k=0.5, h=8.0)
    assert any(leak.update(i, v, None, flat).breaching for i, v in enumerate(bursts))
    leak = Cusum(k=0.5, h=8.0)
    usual = replace(flat, day_rise=100.0, day_upper=34.0)
    assert not any(leak.update(i, v, None, usual).breaching for i, v in enumerate(bursts))
    # A level that stays up for hours is still a leak.
    assert any(leak.update(10 + i, 95.0, None, usual).breaching for i in range(60))


def test_everyday_bursts_at_any_hour_do_not_page_and_a_higher_one_does() -> None:
    rows = bursty_rows(10)
    quiet = pages(rows, T0 + 3 * DAY)
    assert quiet == [], [(a.t, a.rule, a.detail) for a in quiet]
    at = T0 + 9 * DAY + 13 * 3600
    rows = [(t, 400.0 if at <= t < at + 3 * FIVE else v) for t, v in rows]
    found = pages(rows, T0 + 3 * DAY)
    assert [a.t for a in found][:1] == [at], [(a.t, a.rule, a.detail) for a in found]


def history_of(rows: list[tuple[int, float]], metric: str = "p95_ms") -> SeriesHistory:
    history = SeriesHistory()
    for t, v in rows:
        history.add(metric, t, v)
    return history
