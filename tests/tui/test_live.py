"""What each overview poll reads: the environments every time; the alerts every
ALERTS_SECONDS, the series every METRICS_SECONDS, the candidate every STATUS_SECONDS;
relman.toml only once it changed. Cheap polls are what keep an idle overview under 2% of a
core at a 1 s refresh (benchmarks/bench_tui.py). And how a broken relman.toml is followed."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

from core import api
from screens.overview import EnvironmentTable, OverviewScreen
from tests.tui import canned, canned_live
from tests.tui.conftest import WaitForWorkers, wait_until
from tui.app import RelmanApp

SIZE = (80, 24)


class Calls:
    """Counts the engine reads of a poll, answering canned documents."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.counts: dict[str, int] = {}
        for name in ("overview", "status"):
            monkeypatch.setattr(api, name, self.counting(name, getattr(canned, name)))
        for name in ("alerts", "metrics"):
            monkeypatch.setattr(api, name, self.counting(name, getattr(canned_live, name)))
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
    monkeypatch.setattr(OverviewScreen, "ALERTS_SECONDS", 3600)
    monkeypatch.setattr(OverviewScreen, "METRICS_SECONDS", 3600)
    monkeypatch.setattr(OverviewScreen, "STATUS_SECONDS", 3600)
    app = RelmanApp(project_dir=canned_project)
    async with app.run_test(size=SIZE) as pilot:
        await wait_until(pilot, lambda: calls["overview"] >= 6, "six polls")
        # Every poll reads the environments (what really serves); once, so far: the alerts,
        # the series of the three live environments, the candidate, relman.toml.
        assert (calls["alerts"], calls["metrics"], calls["status"]) == (1, 3, 1)
        assert calls["load_project"] == 1
        # The figures made again at each poll keep the alerts read before.
        screen = app.screen
        assert isinstance(screen, OverviewScreen) and screen.live.of("shop/prod").firing == 1
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
        assert (calls["alerts"], calls["metrics"]) == (2, 6)
        # Each at its own pace: the alerts every ALERTS_SECONDS.
        monkeypatch.setattr(OverviewScreen, "ALERTS_SECONDS", 0)
        polls = calls["overview"]
        await wait_until(pilot, lambda: calls["overview"] >= polls + 3, "three more polls")
        assert calls["alerts"] >= 4 and calls["metrics"] == 6


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


async def test_exit_on_load_error_leaves_with_the_one_line_and_its_code(
    broken_project_dir: Path,
) -> None:
    """For a command line that opens the app without validating relman.toml first: the app
    leaves, and hands over the line to print and the exit code (2, a configuration error)."""
    app = RelmanApp(project_dir=broken_project_dir, exit_on_load_error=True)
    async with app.run_test(size=SIZE) as pilot:
        await wait_until(pilot, lambda: not app.is_running, "the app to leave")
    assert app.return_code == 2
    assert app.load_error is not None
    assert app.load_error.endswith("unknown key 'bogus_setting' in [environments.prod]")


async def test_exit_on_load_error_stays_once_loaded(
    canned_project: Path, wait_for_workers: WaitForWorkers, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Once the project has loaded, a later failure is shown, not a reason to leave."""
    monkeypatch.setattr(OverviewScreen, "REFRESH_SECONDS", 0.01)
    app = RelmanApp(project_dir=canned_project, exit_on_load_error=True)
    async with app.run_test(size=SIZE) as pilot:
        await wait_for_workers(pilot)
        config = canned_project / "relman.toml"
        config.write_text(config.read_text(encoding="utf-8") + "bogus = 1\n", encoding="utf-8")
        status = app.screen.query_one("#status")
        await wait_until(pilot, lambda: status.has_class("-error"), "the broken relman.toml")
        assert app.is_running and app.load_error is None
