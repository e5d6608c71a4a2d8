"""What each overview poll reads: the environments and the alerts every time; the series
every METRICS_SECONDS, the candidate every STATUS_SECONDS; relman.toml only once it changed.
Cheap polls are what keep an idle overview under 2% of a core at a 1 s refresh
(benchmarks/bench_tui.py)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

from core import api
from screens.overview import EnvironmentTable, OverviewScreen
from tests.tui import canned
from tests.tui.conftest import WaitForWorkers, wait_until
from tui.app import RelmanApp

SIZE = (80, 24)


class Calls:
    """Counts the engine reads of a poll, answering canned documents."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.counts: dict[str, int] = {}
        for name in ("overview", "alerts", "metrics", "status"):
            monkeypatch.setattr(api, name, self.counting(name, getattr(canned, name)))
        monkeypatch.setattr(api, "load_project", self.counting("load_project", api.load_project))

    def counting(self, name: str, read: Any) -> Any:
        def call(*args: Any, **kwargs: Any) -> Any:
            self.counts[name] = self.counts.get(name, 0) + 1
            return read(*args, **kwargs)

        return call

    def __getitem__(self, name: str) -> int:
        return self.counts.get(name, 0)


async def test_each_poll_reads_what_changes_at_its_own_pace(
    canned_project: Path, wait_for_workers: WaitForWorkers, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls = Calls(monkeypatch)
    monkeypatch.setattr(OverviewScreen, "REFRESH_SECONDS", 0.01)
    monkeypatch.setattr(OverviewScreen, "METRICS_SECONDS", 3600)
    monkeypatch.setattr(OverviewScreen, "STATUS_SECONDS", 3600)
    app = RelmanApp(project_dir=canned_project)
    async with app.run_test(size=SIZE) as pilot:
        await wait_until(pilot, lambda: calls["overview"] >= 6, "six polls")
        # Every poll: the environments (what really serves) and the alerts.
        assert calls["alerts"] >= 5
        # Once: the series of the three live environments, the candidate, relman.toml.
        assert (calls["metrics"], calls["status"], calls["load_project"]) == (3, 1, 1)
        # relman.toml changed: read again (and only then).
        config = canned_project / "relman.toml"
        config.write_text(config.read_text() + "\n", encoding="utf-8")
        os.utime(config, ns=(0, 10**18))
        polls = calls["overview"]
        await wait_until(pilot, lambda: calls["overview"] >= polls + 3, "three more polls")
        assert calls["load_project"] == 2
        # r reads everything now.
        await pilot.press("r")
        await wait_until(pilot, lambda: calls["status"] == 2, "the candidate again")
        await wait_for_workers(pilot)
        assert calls["metrics"] == 6


async def test_the_figures_follow_the_clock_between_reads_of_the_series(
    canned_project: Path, wait_for_workers: WaitForWorkers, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The series read a minute ago still make today's figures: the newest minute moves on,
    and a request rate older than STALE_SECONDS is not shown."""
    from screens import common

    monkeypatch.setattr(OverviewScreen, "METRICS_SECONDS", 3600)
    app = RelmanApp(project_dir=canned_project)
    async with app.run_test(size=SIZE) as pilot:
        await wait_for_workers(pilot)
        screen = app.screen
        assert isinstance(screen, OverviewScreen)
        assert screen.live.of("shop/prod").rps is not None
        monkeypatch.setattr(common, "now", lambda: canned.NOW.replace(minute=10))
        screen.poll_now()
        await wait_for_workers(pilot)
        figures = screen.live.of("shop/prod")
        assert figures.rps is None  # ten minutes without a point: no rate
        assert figures.p95 and figures.p95[-10:] == (None,) * 10  # the gap, at the end
        assert figures.firing == 1


async def test_a_relman_toml_broken_then_mended_is_followed(
    canned_project: Path, wait_for_workers: WaitForWorkers, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(OverviewScreen, "REFRESH_SECONDS", 0.01)
    app = RelmanApp(project_dir=canned_project)
    async with app.run_test(size=SIZE) as pilot:
        await wait_for_workers(pilot)
        status = app.screen.query_one("#status")
        config = canned_project / "relman.toml"
        good = config.read_text(encoding="utf-8")
        config.write_text(good + "bogus_setting = 1\n", encoding="utf-8")
        await wait_until(pilot, lambda: status.has_class("-error"), "the broken relman.toml")
        assert "unknown key 'bogus_setting'" in str(status.render())
        config.write_text(good, encoding="utf-8")
        await wait_until(pilot, lambda: not status.display, "the mended relman.toml")
        assert not status.has_class("-error")
        assert str(app.screen.query_one(EnvironmentTable).get_row("shop/prod")[3]) == (
            "live, 1 firing"
        )
