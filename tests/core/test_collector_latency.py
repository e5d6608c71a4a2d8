"""Exact latencies (docs/monitoring.md, "Exact latencies"): the collector reads the proxy's
access log, written here by the test as the proxy writes it (one JSON line per request, a
few seconds out of order, rotated to access.log.1), and keeps each minute's latencies in a
log-linear histogram. A minute's rollup takes its p50/p95/p99 from them, within 1 % of the
exact percentiles of the requests the stable side served, once every line of it is read;
a rotation, a restart, a kill at either side of the commit and a locked store lose no line
and count none twice. The harness (fake clock, fake Bento, real ledger and store) is
test_collector's.
"""

from __future__ import annotations

import errno
import json
import os
import random
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from core.monitoring.collector import Collector
from store.metrics.sketch import RELATIVE_ACCURACY, LogHistogram, exact_quantile
from tests.core.test_collector import (
    RELEASE,
    T0,
    FakeTarget,
    Killed,
    World,
    hold_write_lock,
    kill_after,
    make_world,
)

RATE = 20  # requests a second
DISORDER = 4.0  # seconds a line is written after its time, at most (the proxy's bound is 5)


@dataclass
class LoggedTarget(FakeTarget):
    """test_collector's target, with the proxy's access log in front of it."""

    access_log: Path = Path("access.log")


@dataclass
class Proxy:
    """The requests the proxy answers, each written to its access log a little after its
    time (so lines come out of order), and what the collector should find: by minute, the
    latencies of the requests the stable side served without failing."""

    path: Path
    rng: random.Random = field(default_factory=lambda: random.Random(18))
    unwritten: list[tuple[float, dict[str, Any]]] = field(default_factory=list)
    truth: dict[int, list[float]] = field(default_factory=dict)

    def serve(self, start: float, end: float, *, median_ms: float = 38.0) -> None:
        """RATE requests a second over [start, end): most to the stable side, some failed,
        some to a canary or mirrored to a shadow (none of which count)."""
        for _ in range(int((end - start) * RATE)):
            t = round(self.rng.uniform(start, end), 6)
            ms = round(self.rng.lognormvariate(0, 0.35) * median_ms, 3)
            draw = self.rng.random()
            role, release, status = "stable", RELEASE, 200
            if draw < 0.04:
                status, ms = 503, round(ms * 30, 3)  # failed: the error rate's, not latency's
            elif draw < 0.06:
                status = 404  # the client's error: served, counted
            elif draw < 0.14:
                role, release, ms = "canary", "c0ffee", ms * 3
            elif draw < 0.18:
                role, release, ms = "shadow", "c0ffee", ms * 5
            record = {"t": t, "path": "/predict", "status": status, "ms": ms, "bytes": 40,
                      "role": role, "release": release}  # fmt: skip
            self.unwritten.append((t + self.rng.uniform(0, DISORDER), record))
            if role == "stable" and status < 500:
                self.truth.setdefault(int(t - t % 60), []).append(ms)

    def flush(self, now: float) -> None:
        """Write the lines due by ``now``, in the order they were written."""
        due = sorted((w, r) for w, r in self.unwritten if w <= now)
        self.unwritten = [(w, r) for w, r in self.unwritten if w > now]
        if not due:
            return
        with self.path.open("a") as handle:
            handle.writelines(json.dumps(record) + "\n" for _, record in due)

    def rotate(self) -> None:
        os.replace(self.path, self.path.with_name(self.path.name + ".1"))
        self.path.touch()


@pytest.fixture
def world(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[World]:
    with make_world(tmp_path, monkeypatch) as made:
        env = made.target.folder.parent.parent
        made.target = LoggedTarget(
            made.target.address, made.target.folder, access_log=env / "access.log"
        )
        monkeypatch.setattr("core.targets.target_for", lambda project, service, env: made.target)
        yield made


@pytest.fixture
def proxy(world: World) -> Proxy:
    assert isinstance(world.target, LoggedTarget)
    return Proxy(world.target.access_log)


def run_until(world: World, proxy: Proxy, collector: Collector, until: int) -> None:
    """Passes every 20 s from the clock's next :00, :20 or :40 up to ``until`` (from T0),
    the lines due written and the Bento's counters moved before each."""
    while world.now[0] < T0 + until:
        world.now[0] += 20 - world.now[0] % 20
        one_pass(world, proxy, collector)


def one_pass(world: World, proxy: Proxy, collector: Collector) -> None:
    proxy.flush(world.now[0])
    world.bento.serve(400, 0.03)
    collector.run_pass()


def stored(world: World, minute: int) -> LogHistogram:
    with world.store() as store:
        return store.latency_sketch("iris", "dev", minute, minute + 1)


def assert_every_line_once(world: World, proxy: Proxy) -> None:
    """Each minute's stored histogram is the histogram of exactly its requests."""
    with world.store() as store:
        kept = {m.minute: m.sketch for m in store.latency_minutes("iris", "dev", 0, 2**40)}
    expected = {
        minute: LogHistogram.merged([histogram(values)]) for minute, values in proxy.truth.items()
    }
    assert sorted(kept) == sorted(expected)
    for minute, sketch in expected.items():
        assert kept[minute] == sketch, f"minute {(minute - T0) // 60}: {kept[minute]} != {sketch}"


def histogram(values: list[float]) -> LogHistogram:
    out = LogHistogram()
    out.add_all(values)
    return out


# ------------------------------------------------------------------------ the percentiles


def test_a_minutes_percentiles_are_the_exact_ones_of_the_proxys_requests(
    world: World, proxy: Proxy
) -> None:
    proxy.serve(T0, T0 + 4 * 60)
    collector = world.collector()
    world.now[0] = T0
    one_pass(world, proxy, collector)
    run_until(world, proxy, collector, 60)
    with world.store() as store:  # minute 0 ended, but its last lines may still come
        assert store.series("iris", "dev", T0, T0 + 60) == []
    run_until(world, proxy, collector, 5 * 60 + 20)

    with world.store() as store:
        points = store.series("iris", "dev", T0, T0 + 6 * 60)
        minutes = store.latency_minutes("iris", "dev", T0, T0 + 6 * 60)
    assert [p.t for p in points] == [T0 + 60 * m for m in range(5)]
    for point, minute in zip(points[:4], minutes, strict=True):
        truth = proxy.truth[point.t]
        assert point.latency_source == "proxy" and minute.count == len(truth)
        for got, q in zip(
            (point.p50_ms, point.p95_ms, point.p99_ms), (0.5, 0.95, 0.99), strict=True
        ):
            exact = exact_quantile(truth, q)
            assert got is not None and exact is not None
            assert abs(got - exact) <= RELATIVE_ACCURACY * exact * (1 + 1e-9), (q, got, exact)
        # The 10-second bins: every one had requests, and their counts make the minute's.
        assert all(b is not None for b in minute.sub)
        assert sum(b.requests for b in minute.sub if b is not None) == len(truth)
    # Minute 4 had scrapes but no request through the proxy: the histogram's buckets.
    assert points[4].latency_source == "histogram" and points[4].p95_ms == pytest.approx(48.75)
    assert points[0].to_dict()["latency_source"] == "proxy"


# ------------------------------------------------------- nothing lost, nothing counted twice


def test_rotation_restarts_and_kills_lose_no_line_and_count_none_twice(
    world: World, proxy: Proxy, monkeypatch: pytest.MonkeyPatch
) -> None:
    proxy.serve(T0, T0 + 6 * 60)
    world.now[0] = T0
    collector = world.collector()
    one_pass(world, proxy, collector)
    run_until(world, proxy, collector, 2 * 60)
    world.now[0] += 20
    proxy.flush(world.now[0])
    proxy.rotate()  # while it runs, lines not read yet in the file rotated
    one_pass(world, proxy, collector)
    run_until(world, proxy, collector, 3 * 60)

    # Killed just after the batch commits (before judging the minute, saving its state).
    with monkeypatch.context() as patch:
        kill_after(patch, "store.metrics.store.MetricStore.add_batch")
        world.now[0] += 20
        with pytest.raises(Killed):
            one_pass(world, proxy, collector)
    world.now[0] += 20
    proxy.flush(world.now[0])
    proxy.rotate()  # while no collector runs: the rest of the old file is in access.log.1
    collector = world.collector()
    run_until(world, proxy, collector, 4 * 60)

    # Killed before its batch is stored: the lines it read are read again.
    with monkeypatch.context() as patch:
        kill_after(patch, "store.metrics.store.MetricStore.add_batch", call=False)
        world.now[0] += 20
        with pytest.raises(Killed):
            one_pass(world, proxy, collector)
    collector = world.collector()
    run_until(world, proxy, collector, 7 * 60)

    assert proxy.unwritten == []
    assert_every_line_once(world, proxy)
    with world.store() as store:
        sources = [p.latency_source for p in store.series("iris", "dev", T0, T0 + 6 * 60)]
    assert sources == ["proxy"] * 6


def test_a_locked_store_reads_the_lines_again_next_pass(world: World, proxy: Proxy) -> None:
    proxy.serve(T0, T0 + 2 * 60)
    world.now[0] = T0
    collector = world.collector(busy_timeout=0.2)
    run_until(world, proxy, collector, 60)
    holder = hold_write_lock(world)
    try:
        world.now[0] += 20
        proxy.flush(world.now[0])
        assert collector.run_pass().busy
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    run_until(world, proxy, collector, 3 * 60)
    assert_every_line_once(world, proxy)


def test_a_first_start_reads_from_the_minute_it_watches_not_the_whole_log(
    world: World, proxy: Proxy
) -> None:
    """The log holds half an hour of requests from before any collector: the first pass
    finds the minute in progress by bisection and counts it whole, none before it."""
    proxy.serve(T0 - 30 * 60, T0 + 2 * 60)
    proxy.flush(T0 + 25)
    size = proxy.path.stat().st_size
    world.now[0] = T0 + 25
    collector = world.collector()
    collector.run_pass()
    reader = collector.watches[("iris", "dev")].access
    assert 0 < reader.bytes < size / 10
    run_until(world, proxy, collector, 3 * 60)
    with world.store() as store:
        assert store.latency_sketch("iris", "dev", 0, T0).count == 0
        minutes = store.latency_minutes("iris", "dev", 0, 2**40)
    assert [m.minute for m in minutes] == [T0, T0 + 60]
    assert [m.sketch for m in minutes] == [
        histogram(proxy.truth[T0]),
        histogram(proxy.truth[T0 + 60]),
    ]


def test_without_an_access_log_minutes_are_judged_on_time_from_the_histogram(
    world: World, proxy: Proxy
) -> None:
    """No proxy in front (no log file): nothing to wait for, and the buckets as before."""
    world.now[0] = T0
    collector = world.collector()
    run_until(world, proxy, collector, 60)
    with world.store() as store:
        [point] = store.series("iris", "dev", T0, T0 + 60)
    assert point.latency_source == "histogram" and not proxy.path.exists()


def test_late_lines_of_a_judged_minute_still_join_its_histogram(world: World, proxy: Proxy) -> None:
    """A line later than the disorder allows is not lost: the minute's histogram takes it
    (its rollup was written without it)."""
    proxy.serve(T0, T0 + 60)
    world.now[0] = T0
    collector = world.collector()
    run_until(world, proxy, collector, 2 * 60)
    assert stored(world, T0).count == len(proxy.truth[T0])
    late = {"t": T0 + 59.5, "status": 200, "ms": 5000.0, "role": "stable", "release": RELEASE}
    with proxy.path.open("a") as handle:
        handle.write(json.dumps(late) + "\n")
    proxy.truth[T0].append(5000.0)
    run_until(world, proxy, collector, 2 * 60 + 20)
    assert stored(world, T0) == histogram(proxy.truth[T0])


def test_what_the_store_offers_the_rules(world: World, proxy: Proxy) -> None:
    """latency_minute and latency_sketch: what the rules read besides the rollup."""
    proxy.serve(T0, T0 + 2 * 60)
    world.now[0] = T0
    run_until(world, proxy, world.collector(), 3 * 60)
    with world.store() as store:
        minute = store.latency_minute("iris", "dev", T0 + 60)
        both = store.latency_sketch("iris", "dev", T0, T0 + 120, release=RELEASE)
        other = store.latency_sketch("iris", "dev", T0, T0 + 120, release="c0ffee")
    assert minute is not None and minute.release == RELEASE
    assert minute.sketch == histogram(proxy.truth[T0 + 60])
    assert both == histogram(proxy.truth[T0] + proxy.truth[T0 + 60])
    assert other.count == 0  # the canary's requests are not the stable side's


def test_an_unreadable_log_is_said_and_holds_no_minute_back(
    world: World, proxy: Proxy, monkeypatch: pytest.MonkeyPatch
) -> None:
    proxy.serve(T0, T0 + 2 * 60)
    world.now[0] = T0
    collector = world.collector()
    run_until(world, proxy, collector, 20)

    def failing(handle: Any) -> str:
        raise OSError(errno.EIO, "Input/output error")

    with monkeypatch.context() as patch:
        patch.setattr("core.monitoring.latency_log._head", failing)
        run_until(world, proxy, collector, 60)
        with world.store() as store:
            assert [p.t for p in store.series("iris", "dev", T0, T0 + 60)] == [T0]
    assert f"iris/dev: {proxy.path}: cannot read it (Input/output error)" in world.lines
    run_until(world, proxy, collector, 3 * 60)  # readable again: nothing lost meanwhile
    assert_every_line_once(world, proxy)


def test_a_garbage_line_is_said_and_a_partial_line_waits_for_its_end(
    world: World, proxy: Proxy
) -> None:
    proxy.serve(T0, T0 + 60)
    world.now[0] = T0
    collector = world.collector()
    run_until(world, proxy, collector, 20)
    line = json.dumps({"t": T0 + 21.0, "status": 200, "ms": 12.0, "role": "stable"})
    with proxy.path.open("a") as handle:
        handle.write("not json\n" + line[:20])  # the proxy's buffer cut mid-line
    proxy.truth[T0].append(12.0)
    world.now[0] += 20
    collector.run_pass()
    assert "iris/dev: access.log: 1 line(s) without a time skipped" in world.lines
    with proxy.path.open("a") as handle:
        handle.write(line[20:] + "\n")
    run_until(world, proxy, collector, 2 * 60)
    assert_every_line_once(world, proxy)
