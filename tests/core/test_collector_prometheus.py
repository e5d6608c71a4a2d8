"""The collector with ``[monitoring] source = "prometheus"`` (core/monitoring/prom_feed.py and
its part of core/monitoring/collector.py), one pass at a time on a fake clock, against the
fake Prometheus of tests/fake_prometheus.py holding the scrapes of test_collector.py's
fake Bento: the same rollups as the scraping collector from the same counters; Prometheus
down, slow, or with several series where one is expected, each said once and nothing
stored wrong, then caught up; a gap that no minute bridges; a target Prometheus cannot
scrape is down; a canary's series left out."""

from __future__ import annotations

import dataclasses
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from core.monitoring.collector import Collector
from store.metrics.store import MetricStore
from tests.core.test_collector import RELEASE, T0, FakeBento, World, make_world
from tests.core.test_collector import TOML as BASE_TOML
from tests.fake_prometheus import FakePrometheus

TOML = BASE_TOML + 'source = "prometheus"\nprometheus_url = "{url}"\n'
TARGET = {"service": "iris", "env": "dev", "service_version": RELEASE}


@dataclasses.dataclass
class PromWorld:
    world: World
    prom: FakePrometheus

    def passes(
        self, collector: Collector, first: int, last: int, *, scraped: bool = True, **target: Any
    ) -> list[Any]:
        """Passes at :00, :20 and :40 of minutes ``first`` .. ``last`` (from T0), 6 requests
        of 10 ms before each, which Prometheus scrapes at that very second (unless not
        ``scraped``); the reports."""
        reports = []
        for minute in range(first, last + 1):
            for second in (0, 20, 40):
                now = self.world.now[0] = T0 + minute * 60 + second
                self.world.bento.serve(6, 0.01)
                if scraped:
                    self.prom.scrape(now, self.world.bento.text(), **{**TARGET, **target})
                reports.append(collector.run_pass())
        return reports

    def rollups(self, path: Path | None = None) -> dict[int, Any]:
        from core.monitoring.collector_process import metrics_path

        with MetricStore.open(path or metrics_path(self.world.project), readonly=True) as store:
            return {r.minute: r for r in store.rollups("iris", "dev", 0, T0 + 86400)}

    def said(self, text: str) -> list[str]:
        return [line for line in self.world.lines if text in line]


@pytest.fixture
def pw(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[PromWorld]:
    prom = FakePrometheus().start()
    try:
        with make_world(tmp_path, monkeypatch, TOML.replace("{url}", prom.url)) as world:
            yield PromWorld(world, prom)
    finally:
        if prom.hold is not None:
            prom.hold.set()
        prom.stop()


def _minutes(rollups: dict[int, Any]) -> list[int]:
    return [(minute - T0) // 60 for minute in sorted(rollups)]


def test_the_rollups_are_those_the_scraping_collector_stores_from_the_same_counters(
    pw: PromWorld, tmp_path: Path
) -> None:
    project = pw.world.project
    monitoring = dataclasses.replace(project.config.monitoring, source="scrape")
    scraping = Collector(
        dataclasses.replace(
            project, config=dataclasses.replace(project.config, monitoring=monitoring)
        ),
        clock=lambda: pw.world.now[0],
        state_dir=tmp_path / "scraping",
        store_path=tmp_path / "scraping" / "metrics.db",
    )
    (tmp_path / "scraping").mkdir()
    collector = pw.world.collector()
    for minute in range(4):
        for second in (0, 20, 40):
            now = pw.world.now[0] = T0 + minute * 60 + second
            pw.world.bento.serve(6 + minute * 3, 0.01 if second else 0.2)
            pw.prom.scrape(now, pw.world.bento.text(), **TARGET)
            collector.run_pass()
            scraping.run_pass()

    from_prometheus = pw.rollups()
    from_scrapes = pw.rollups(tmp_path / "scraping" / "metrics.db")
    assert _minutes(from_prometheus) == [0, 1, 2]  # the minute in progress is not judged
    assert from_prometheus == from_scrapes
    assert from_prometheus[T0 + 60].rps == pytest.approx(27 / 60)
    assert 5 < from_prometheus[T0 + 60].p50_ms <= 10
    assert pw.prom.queries and not pw.said("Prometheus")


def test_prometheus_down_is_said_once_judges_nothing_and_is_caught_up(pw: PromWorld) -> None:
    collector = pw.world.collector()
    pw.passes(collector, 0, 1)
    pw.prom.stop()  # unreachable; it goes on scraping all the same
    pw.passes(collector, 2, 4)
    down = pw.said("cannot be reached")
    assert len(down) == 1 and down[0].startswith(f"Prometheus at {pw.prom.url} cannot be ")
    assert "no minute is judged until it answers" in down[0]
    assert _minutes(pw.rollups()) == [0]  # minute 1 was judged at 2:00, unanswered
    with MetricStore.open(pw.world.project.metrics_path, readonly=True) as store:
        assert store.alerts(service="iris", env="dev") == []  # no "down" alert

    pw.prom.start()  # back on its port
    pw.passes(collector, 5, 5)
    assert len(pw.said("answers again; the minutes missed are caught up")) == 1
    rollups = pw.rollups()
    assert _minutes(rollups) == [0, 1, 2, 3, 4]
    assert all(r.rps == pytest.approx(18 / 60) for r in rollups.values())


def test_a_slow_prometheus_is_said_once_and_caught_up(
    pw: PromWorld, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("core.monitoring.prom_source.TIMEOUT", 0.2)
    collector = pw.world.collector()
    pw.passes(collector, 0, 0)
    pw.prom.hold = threading.Event()  # answers only once released
    pw.passes(collector, 1, 2)
    assert pw.said("did not answer within 0.2 s") == [
        f"Prometheus at {pw.prom.url} did not answer within 0.2 s; no minute is judged until "
        "it answers, then the minutes missed are caught up (at most an hour)"
    ]
    assert _minutes(pw.rollups()) == []
    pw.prom.hold.set()
    pw.passes(collector, 3, 3)
    assert _minutes(pw.rollups()) == [0, 1, 2]


def test_several_series_where_one_is_expected_are_said_once_and_not_stored(
    pw: PromWorld,
) -> None:
    collector = pw.world.collector()
    pw.passes(collector, 0, 0)
    twin = FakeBento()
    for minute in (1, 2):  # a second target with the same labels: which one is it?
        for second in (0, 20, 40):
            now = pw.world.now[0] = T0 + minute * 60 + second
            pw.world.bento.serve(6, 0.01)
            pw.prom.scrape(now, pw.world.bento.text(), **TARGET)
            twin.serve(100, 0.01)
            pw.prom.scrape(now, twin.text(), instance="127.0.0.1:8888", **TARGET)
            collector.run_pass()
    several = pw.said("series of iris/dev")
    assert len(several) == 1
    assert "2 series of iris/dev release a1b2c3d4e5f6" in several[0]
    assert "instance=127.0.0.1:8888, job=relman; instance=127.0.0.1:9999" in several[0]
    assert list(_minutes(pw.rollups())) == [0]  # nothing summed from the two
    pw.passes(collector, 3, 4)  # the twin is gone
    rollups = pw.rollups()
    assert _minutes(rollups) == [0, 3]  # minute 3 from its own scrapes: no bridge over 1-2
    assert rollups[T0 + 180].rps == pytest.approx(12 / 40)


def test_a_gap_in_the_samples_is_one_line_and_no_minute_bridges_it(pw: PromWorld) -> None:
    collector = pw.world.collector()
    pw.passes(collector, 0, 1)
    pw.world.bento.serve(6000, 0.01)  # heavy traffic Prometheus never saw
    pw.passes(collector, 2, 4, scraped=False)
    pw.passes(collector, 5, 6)
    assert pw.said("no samples of iris/dev in Prometheus") == [
        "iris/dev: no samples of iris/dev in Prometheus from 14:01:40 UTC to 14:05:00 UTC "
        "(200 s): minutes without one get no rollup"
    ]
    rollups = pw.rollups()
    assert _minutes(rollups) == [0, 1, 5]
    assert rollups[T0 + 300].rps == pytest.approx(12 / 40)  # not the gap's 6000 requests


def test_a_target_prometheus_cannot_scrape_is_down(pw: PromWorld) -> None:
    collector = pw.world.collector()
    pw.passes(collector, 0, 0)
    pw.passes(collector, 1, 2, up=0.0)  # up 0: its scrapes fail
    pw.passes(collector, 3, 3, up=0.0)
    with MetricStore.open(pw.world.project.metrics_path, readonly=True) as store:
        found = store.alerts(service="iris", env="dev")
    assert [(a.rule, a.state) for a in found] == [("down", "firing")]


def test_a_canarys_series_are_left_out_and_no_warning(pw: PromWorld) -> None:
    collector = pw.world.collector()
    canary = FakeBento(release="c0ffee000000")
    for minute in (0, 1, 2):
        for second in (0, 20, 40):
            now = pw.world.now[0] = T0 + minute * 60 + second
            pw.world.bento.serve(6, 0.01)
            pw.prom.scrape(now, pw.world.bento.text(), **TARGET)
            canary.serve(60, 0.5)
            labels = {**TARGET, "service_version": canary.release}
            pw.prom.scrape(now, canary.text(), instance="127.0.0.1:8888", **labels)
            collector.run_pass()
    rollups = pw.rollups()
    assert _minutes(rollups) == [0, 1]
    assert all(r.rps == pytest.approx(18 / 60) and r.p95_ms <= 10 for r in rollups.values())
    assert pw.world.lines == []


def test_what_is_wrong_with_the_source_is_in_the_metrics_document(pw: PromWorld) -> None:
    from core.monitoring.collector_state import source_problem

    collector = pw.world.collector()
    pw.passes(collector, 0, 0)
    state_dir = pw.world.project.state_dir
    assert source_problem(state_dir, "iris", "dev") is None
    pw.prom.stop()
    pw.passes(collector, 1, 1)
    line = source_problem(state_dir, "iris", "dev")
    assert line is not None and line.startswith(f"Prometheus at {pw.prom.url} cannot be reached")
    pw.prom.start()
    pw.passes(collector, 2, 2)
    assert source_problem(state_dir, "iris", "dev") is None


def test_a_catch_up_across_a_promotion_reads_the_release_live_at_each_time() -> None:
    from datetime import UTC, datetime
    from types import SimpleNamespace

    from core.monitoring.prom_feed import release_at

    def iso(t: int) -> str:
        return datetime.fromtimestamp(t, UTC).isoformat()

    done = [  # newest first, as the ledger gives them
        SimpleNamespace(release_id="new", finished_at=iso(T0 + 300)),
        SimpleNamespace(release_id="old", finished_at=iso(T0)),
    ]
    asked: list[tuple[str, str]] = []

    class Ledger:
        def done_promotions(self, service: str, env: str) -> list[SimpleNamespace]:
            asked.append((service, env))
            return done

    at = release_at(Ledger(), "iris", "dev", "new", iso(T0 + 300))
    assert at(T0 + 400) == "new" and asked == []  # since the state: no ledger read
    assert [at(T0 + 10), at(T0 + 299), at(T0 + 300)] == ["old", "old", "new"]
    assert asked == [("iris", "dev")]  # read once
