"""Baselines that know the past (core.alerts.seasonal), the regression rule on them
(core.alerts.regression), and how the rules and the backtest use them: a daily peak is not
a leak, a release worse than yesterday is, any unit, any interval, one page per cause."""

from __future__ import annotations

import math
import random

import pytest

from core.alerts.alerting import Rules, check_policy
from core.alerts.backtest import backtest, infer_interval
from core.alerts.regression import Regression
from core.alerts.seasonal import DAY, WEEK, Expectation, Seasonal, SeriesHistory
from core.errors import ConfigError

T0 = 1_700_006_400 - 1_700_006_400 % DAY  # a midnight, UTC


def daily(i: int, level: float = 40.0, amplitude: float = 0.5) -> float:
    return level * (1 + amplitude * math.sin(2 * math.pi * i / 1440))


def cycle_rows(days: int, *, seed: int = 1, level: float = 40.0, step: int = 60) -> list:
    rng = random.Random(seed)
    per_day = DAY // step
    return [
        (T0 + i * step, daily(i * step // 60, level) * math.exp(rng.gauss(0, 0.05)))
        for i in range(days * per_day)
    ]


def history_of(rows: list, metric: str = "p95_ms") -> SeriesHistory:
    history = SeriesHistory()
    for t, v in rows:
        history.add(metric, t, v)
    return history


def test_daily_expectation_follows_the_cycle_and_names_its_days() -> None:
    rows = cycle_rows(8)
    history = history_of(rows)
    seasonal = Seasonal("daily")
    peak = T0 + 8 * DAY + 360 * 60  # 06:00, the top of the sine
    trough = T0 + 8 * DAY + 1080 * 60
    high = seasonal.expect(history, "p95_ms", peak)
    low = seasonal.expect(history, "p95_ms", trough)
    assert high is not None and low is not None
    assert high.level == pytest.approx(60, rel=0.05)
    assert low.level == pytest.approx(20, rel=0.05)
    assert high.lags == 7 and high.words() == "this hour, last 7 days"
    assert 0 < high.spread < 0.2 * high.level


def test_auto_picks_weekly_where_weekends_differ() -> None:
    rng = random.Random(3)
    rows = []
    for i in range(22 * 1440):
        weekend = (i // 1440) % 7 in (5, 6)
        rows.append((T0 + i * 60, (15.0 if weekend else 40.0) * math.exp(rng.gauss(0, 0.03))))
    history = history_of(rows)
    monday = T0 + 21 * DAY + 600 * 60  # day 21 is a weekday after a weekend
    found = Seasonal("auto").expect(history, "p95_ms", monday)
    assert found is not None and found.season == "weekly" and found.lags == 3
    assert found.level == pytest.approx(40, rel=0.05)
    # Told daily, the weekend drags the median of the last 7 days down.
    daily_guess = Seasonal("daily").expect(history, "p95_ms", monday)
    assert daily_guess is not None and daily_guess.season == "daily"


def test_auto_never_takes_a_single_earlier_week_for_the_baseline() -> None:
    # Ten flat days; a week ago, at this hour, an outage (a quarter of the level). One
    # earlier week alone would be the whole weekly baseline: auto keeps to the daily one.
    rng = random.Random(5)
    at = T0 + 9 * DAY + 600 * 60
    outage = range(at - WEEK - 3600, at - WEEK + 3600)
    rows = [
        (t, (10.0 if t in outage else 40.0) * math.exp(rng.gauss(0, 0.03)))
        for t in range(T0, at, 60)
    ]
    found = Seasonal("auto").expect(history_of(rows), "p95_ms", at)
    assert found is not None and found.season == "daily"
    assert found.level == pytest.approx(40, rel=0.05)
    weekly = Seasonal("weekly").expect(history_of(rows), "p95_ms", at)
    assert weekly is not None and weekly.level == pytest.approx(10, rel=0.1)


def test_without_an_earlier_day_the_hour_before_the_release_is_the_baseline() -> None:
    rows = [(T0 + i * 60, 40.0 + (i % 3)) for i in range(120)]
    history = history_of(rows)
    seasonal = Seasonal()
    assert seasonal.expect(history, "p95_ms", T0 + 120 * 60) is None
    found = seasonal.expect(history, "p95_ms", T0 + 120 * 60, release_start=T0 + 120 * 60)
    assert found is not None and found.season == "release"
    assert found.level == pytest.approx(41, abs=0.5)
    assert found.words() == "before the release"
    assert Seasonal("none").expect(history, "p95_ms", T0 + 2 * DAY) is None


def test_regression_compares_by_ratio_and_spread_with_hysteresis() -> None:
    rule = Regression(ratio=1.5, z=4, for_points=2, label="p95", unit="ms")
    past = Expectation(41.0, 3.0, "daily", 1)
    calm = rule.update(0, 45.0, None, past)
    assert not calm.breaching and "vs 41 ms this hour yesterday" in calm.detail
    first = rule.update(60, 243.0, None, past)
    assert first.breaching and not first.fires
    second = rule.update(120, 243.0, None, past)
    assert second.fires
    assert second.detail.startswith("p95 243 ms vs 41 ms this hour yesterday (x5.9,")
    # Half-way back still breaches (no flapping at the limit); all the way back clears.
    assert rule.update(180, 52.0, None, past).breaching
    assert not rule.update(240, 44.0, None, past).breaching
    # A noisy series: 1.6x is within 4 spreads, not a regression.
    wide = Expectation(40.0, 20.0, "daily", 7)
    assert not Regression().update(0, 64.0, None, wide).breaching
    # No history: no opinion, said so.
    none = Regression(label="p95", unit="ms").update(0, 500.0, None, None)
    assert not none.breaching and "no earlier history" in none.detail


@pytest.mark.parametrize("level", [0.4, 40.0, 4000.0])
def test_daily_peaks_do_not_page_in_any_unit(level: float) -> None:
    rows = cycle_rows(9, level=level, seed=7)
    alerts = backtest(rows, "p95_ms", {}, service="s", env="e")
    # The first day has no earlier day (its release-start CUSUM may read the morning as a
    # leak); from the second day on, the cycle is expected.
    later = [a for a in alerts if a.pages and a.t >= T0 + DAY]
    assert later == [], [a.detail for a in later]


def test_a_step_a_week_in_is_paged_once_with_what_it_compared() -> None:
    rows = cycle_rows(9, seed=11)
    start = T0 + 8 * DAY + 600 * 60
    rows = [(t, v * 3 if start <= t < start + 30 * 60 else v) for t, v in rows]
    alerts = backtest(rows, "p95_ms", {}, service="s", env="e")
    pages = [a for a in alerts if a.pages and a.t >= T0 + DAY]
    assert len(pages) == 1, [(a.rule, a.detail) for a in alerts if a.t >= T0 + DAY]
    assert start <= pages[0].t <= start + 5 * 60
    assert "this hour" in pages[0].detail
    # Other latency rules that fired joined that incident instead of paging.
    for other in alerts:
        if other.state == "firing" and other.t >= start and other is not pages[0]:
            assert other.grouped_with or other.reopened, other


def test_five_minute_series_replays_point_by_point() -> None:
    rows = cycle_rows(9, seed=5, step=300)
    assert infer_interval(t for t, _ in rows) == 300
    start = T0 + 8 * DAY + 600 * 60
    rows = [(t, v * 3 if start <= t < start + 30 * 60 else v) for t, v in rows]
    alerts = backtest(rows, "p95_ms", {}, service="s", env="e")
    pages = [a for a in alerts if a.pages and a.t >= T0 + DAY]
    assert pages and start <= pages[0].t <= start + 10 * 60, [a.detail for a in pages]


def test_infer_interval() -> None:
    assert infer_interval([0, 5, 10, 15, 21]) == 5
    assert infer_interval([0, 300, 600, 1200, 1500]) == 300
    assert infer_interval([0, 62, 120, 181]) == 60
    assert infer_interval([7]) == 60


def test_policy_checks_the_new_parameters() -> None:
    checked = check_policy({})
    assert checked["season"] == "auto" and checked["regression_ratio"] == 1.5
    with pytest.raises(ConfigError, match="season must be one of"):
        check_policy({"season": "hourly"})
    with pytest.raises(ConfigError, match="regression_ratio must be > 1"):
        check_policy({"regression_ratio": 1.0})
    with pytest.raises(ConfigError, match="trend_p_max must be between 0 and 1"):
        check_policy({"trend_p_max": 1.5})


def test_rules_resume_with_their_interval_and_release_start() -> None:
    rules = Rules({}, service="s", env="e", interval=300)
    rules.evaluate(T0, {"p95_ms": 40.0}, release="r1", up=True)
    # The first release seen has no "before": the collector did not see it start.
    assert rules.release_start is None
    rules.evaluate(T0 + 300, {"p95_ms": 40.0}, release="r2", up=True)
    again = Rules.from_dict(rules.to_dict())
    assert again.interval == 300 and again.release_start == T0 + 300


def test_a_new_release_is_compared_with_the_hour_before_it() -> None:
    rules = Rules({}, service="s", env="e")
    changes = []
    history = SeriesHistory()
    for i in range(90):
        t = T0 + i * 60
        release = "r1" if i < 70 else "r2"
        value = 40.0 + (i % 3) if release == "r1" else 130.0
        changes += rules.evaluate(t, {"p95_ms": value}, release=release, up=True, history=history)
        history.add("p95_ms", t, value)
    fired = [c for c in changes if c.rule == "latency_regression" and c.state == "firing"]
    assert fired and "vs 41 ms before the release (x3.2" in fired[0].detail


def test_history_is_appended_in_time_order() -> None:
    history = SeriesHistory()
    history.add("m", 60, 1.0)
    history.add("m", 60, 2.0)  # a repeat: ignored
    history.add("m", 120, float("nan"))
    history.add("m", 180, 3.0)
    assert list(history.values("m", 0, WEEK)) == [(60, 1.0), (180, 3.0)]
    assert list(history.values("other", 0, WEEK)) == []


def test_a_busier_day_is_not_a_creep_but_a_creep_on_it_is() -> None:
    rows = cycle_rows(8, seed=13)
    busy = T0 + 7 * DAY
    creep = busy + 14 * 3600
    out = []
    for t, v in rows:
        if t >= busy:
            v *= 1.2  # the whole last day runs 20 % above the week before
        if t >= creep:
            v *= 1 + 0.01 * (t - creep) / 60  # then creeps up 1 %/min
        out.append((t, v))
    alerts = backtest(out, "p95_ms", {}, service="s", env="e")
    leak = [a for a in alerts if a.pages and a.rule == "latency_leak" and a.t >= busy + 3 * 3600]
    assert leak, [a.detail for a in alerts if a.t >= busy]
    assert creep <= leak[0].t <= creep + 20 * 60, [a.detail for a in leak]
    assert "today x1.2" in leak[0].detail


def _feed(rules: Rules, minutes: range, value, release: str = "r1", history=None) -> list:
    out = []
    for i in minutes:
        point = {"p95_ms": value(i), "p99_ms": value(i), "error_rate": 0.0, "rps": 5.0}
        out += rules.evaluate(T0 + 60 * i, point, release=release, up=True, history=history)
    return out


def test_the_rule_that_paged_resolves_under_its_own_name() -> None:
    rules = Rules({"latency_p99_ms": 100}, service="s", env="e")

    def value(i: int) -> float:
        return 40.0 if i < 12 else (300.0 if i < 30 else 40.0)

    changes = _feed(rules, range(60), value)
    pages = [c for c in changes if c.state == "firing" and not c.grouped_with]
    assert [c.rule for c in pages] == ["latency_p99"]
    joined = [c for c in changes if c.grouped_with]
    assert joined and all(c.grouped_with == "latency_p99" for c in joined)
    resolved = [c for c in changes if c.rule == "latency_p99" and c.state == "resolved"]
    assert resolved and resolved[0].grouped_with is None


def test_an_old_release_firing_does_not_swallow_a_new_release_page() -> None:
    rules = Rules({"latency_p99_ms": 100}, service="s", env="e")
    _feed(rules, range(20), lambda i: 40.0 if i < 12 else 150.0, release="r1")
    later = _feed(rules, range(20, 60), lambda i: 150.0 + 40 * (i - 20), release="r2")
    pages = [c for c in later if c.state == "firing" and not c.grouped_with]
    assert any(c.release == "r2" for c in pages), [(c.rule, c.release) for c in later]


def test_a_minute_without_data_holds_the_leak_against_the_past() -> None:
    rows = [(T0 + i * 60, 40.0 + (i % 5)) for i in range(2 * 1440)]
    history = history_of(rows)
    rules = Rules({}, service="s", env="e", only=["latency_leak"])
    start = 2 * 1440

    def value(i: int) -> float | None:
        return None if i == start + 40 else 70.0

    changes = _feed(rules, range(start, start + 70), value, history=history)
    firing = [c for c in changes if c.state == "firing"]
    resolved = [c for c in changes if c.state == "resolved"]
    assert len(firing) == 1 and not resolved, [(c.state, c.detail) for c in changes]


def test_how_today_runs_survives_a_restart() -> None:
    rows = cycle_rows(8, seed=17)
    history = SeriesHistory()
    rules = Rules({}, service="s", env="e", only=["latency_leak"])
    today = T0 + 7 * DAY
    changes = []
    for t, v in rows:
        if t >= today:
            v *= 1.3
        if t == today + 6 * 3600:
            rules = Rules.from_dict(rules.to_dict())  # the collector restarts
        point = {"p95_ms": v}
        changes += rules.evaluate(t, point, release=None, up=True, history=history)
        history.add("p95_ms", t, v)
    after = [c for c in changes if c.state == "firing" and c.since_minute >= today + 6 * 3600]
    assert not after, [c.detail for c in after]


def test_the_trend_has_room_on_five_minute_points() -> None:
    rows = [(T0 + i * 300, 40.0 * (1 + 0.03 * max(0, i - 50) * 5)) for i in range(90)]
    alerts = backtest(rows, "p95_ms", {}, service="s", env="e")
    assert any(a.rule == "latency_trend" and a.state == "firing" for a in alerts)


def test_the_trend_places_samples_where_their_seconds_were() -> None:
    """A release whose first minute had requests only in its last 10 s: that sample sits at
    the minute's end, and the steep rise after it is still a trend (it was missed when the
    sample was put in the middle: the fit then started below zero)."""
    from core.alerts.trend import Trend

    trend = Trend(min_slope=0.01)
    start = 29_944_098 * 60
    trend.update(start, 16.4, "r", [None, None, None, None, None, 16.4])
    verdicts = [
        trend.update(start + 60 * k, None, "r", [23.0 + 10 * (i + 6 * (k - 1)) for i in range(6)])
        for k in (1, 2)
    ]
    assert verdicts[-1].breaching, verdicts[-1].detail
    assert "since the release" in verdicts[-1].detail


def test_a_quiet_morning_does_not_make_an_ordinary_afternoon_a_creep() -> None:
    rows = cycle_rows(8, seed=19)
    today = T0 + 7 * DAY
    quiet = [(t, v * 0.7 if today <= t < today + 5 * 3600 else v) for t, v in rows]
    alerts = backtest(quiet, "p95_ms", {}, service="s", env="e")
    pages = [a for a in alerts if a.pages and a.t >= today]
    assert not pages, [a.detail for a in pages]


def test_the_pasts_of_two_latency_sources_are_cached_apart() -> None:
    rows = cycle_rows(3, seed=23)
    proxy = history_of(rows)
    proxy.source = "proxy"  # type: ignore[attr-defined]
    buckets = SeriesHistory()
    buckets.source = "histogram"  # type: ignore[attr-defined]
    seasonal = Seasonal("auto")
    t = T0 + 2 * DAY + 600 * 60
    assert seasonal.expect(buckets, "p95_ms", t) is None
    found = seasonal.expect(proxy, "p95_ms", t + 60)
    assert found is not None and found.season == "daily"


def test_a_grouped_alert_that_comes_back_alone_pages() -> None:
    """An alert grouped with one that paged, which re-opens within the cooldown after that
    one resolved, pages: the incident it joined is over."""
    from dataclasses import replace

    rules = Rules({"latency_p99_ms": 100}, service="s", env="e")
    changes = _feed(rules, range(20), lambda i: 40.0 if i < 12 else 300.0)
    paged = next(c for c in changes if c.state == "firing" and not c.grouped_with)
    joined = next(c for c in changes if c.state == "firing" and c.grouped_with)
    assert joined.grouped_with == paged.rule
    rules._rules[paged.rule].alert.status = "resolved"  # the incident that paged is over
    again = rules._grouped(rules._rules[joined.rule], replace(joined, reopened=True))
    assert again.grouped_with is None


def test_a_new_leak_metric_starts_the_leak_detector_afresh() -> None:
    rules = Rules({}, service="s", env="e", only=["latency_leak"])
    _feed(rules, range(60), lambda i: 50.0 + (i % 3))
    moved = Rules.from_dict(rules.to_dict(), policy={"leak_metric": "p99_ms"})
    changes = []
    for i in range(60, 80):
        point = {"p95_ms": 50.0, "p99_ms": 150.0 + (i % 3)}
        changes += moved.evaluate(T0 + 60 * i, point, release="r1", up=True)
    assert not [c for c in changes if c.state == "firing"], [c.detail for c in changes]
