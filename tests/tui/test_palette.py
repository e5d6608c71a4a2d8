"""The command palette offers every action of the app wherever it is opened: typing ``test``
on the overview finds the tests; approve, diff, down, demo traffic and the views are there
too. Actions take the selection or ask (a short list), and the mutating ones go through the
same confirmation, and the same read-only refusal, as their keys."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from textual.command import CommandList, CommandPalette
from textual.pilot import Pilot
from textual.widgets import OptionList, RichLog, Static

from core import api
from core.errors import ReadOnlyError
from screens.confirm import ConfirmScreen
from screens.diff import DiffScreen
from screens.monitor import MonitorScreen
from screens.overview import OverviewScreen
from screens.palette import ScreenActions
from screens.picker import Picker
from screens.run import RunScreen
from tests.tui import canned
from tests.tui.conftest import WaitForWorkers, wait_until
from tui.app import RelmanApp

SIZE = (80, 24)


def text(app: RelmanApp, selector: str) -> str:
    return str(app.screen.query_one(selector, Static).render())


def section(app: RelmanApp, name: str) -> str:
    """A section of the diff as drawn, its blanks collapsed."""
    widget = app.screen.query_one(f"#diff-{name}")
    lines = widget.render_lines(widget.region.reset_offset)
    return " ".join(" ".join("".join(segment.text for segment in line).split()) for line in lines)


def notes(app: RelmanApp) -> list[str]:
    return [note.message for note in app._notifications]


async def search(pilot: Pilot[None], query: str) -> list[str]:
    """Open the palette, type ``query``, and the titles of the hits, best first."""
    await pilot.press("ctrl+p")
    await pilot.press(*query)
    hits = pilot.app.screen.query_one(CommandList)
    await wait_until(pilot, lambda: hits.option_count, f"hits for {query!r}")
    await pilot.pause(0.1)  # every provider has answered
    return [
        str(hits.get_option_at_index(index).prompt).split("\n")[0]
        for index in range(hits.option_count)
    ]


async def choose(pilot: Pilot[None], label: str) -> None:
    """Pick ``label`` in the picker on top."""
    await wait_until(pilot, lambda: isinstance(pilot.app.screen, Picker), "the picker")
    choices = pilot.app.screen.query_one(OptionList)
    labels = [str(choices.get_option_at_index(i).prompt) for i in range(choices.option_count)]
    choices.highlighted = labels.index(label)
    await pilot.press("enter")


async def dialog(pilot: Pilot[None]) -> ConfirmScreen:
    await wait_until(pilot, lambda: isinstance(pilot.app.screen, ConfirmScreen), "the dialog")
    assert isinstance(pilot.app.screen, ConfirmScreen)
    return pilot.app.screen


async def test_typing_test_on_the_overview_finds_the_tests(
    canned_project: Path, wait_for_workers: WaitForWorkers
) -> None:
    app = RelmanApp(project_dir=canned_project)
    async with app.run_test(size=SIZE) as pilot:
        await wait_for_workers(pilot)
        assert isinstance(app.screen, OverviewScreen)
        assert (await search(pilot, "test"))[0] == "Tests"
        await pilot.press("enter")
        await dialog(pilot)
        # What the release screen's t would run: the candidate's suites.
        assert text(app, "#confirm-text") == (
            "run the test suites unit, model against the candidate v1.4.0 (3f9a2c1); results "
            f"are recorded for release {canned.CANDIDATE}"
        )
        assert text(app, "#confirm-command") == "relman test"
        await pilot.press("n")
        assert isinstance(app.screen, OverviewScreen) and app.current_run is None


async def test_every_action_and_view_is_offered_from_the_overview(
    canned_project: Path, wait_for_workers: WaitForWorkers
) -> None:
    app = RelmanApp(project_dir=canned_project)
    async with app.run_test(size=SIZE) as pilot:
        await wait_for_workers(pilot)
        commands = {title: help for title, help, _run in ScreenActions(app.screen).commands()}
        assert {
            "Tests",
            "Build",
            "Promote",
            "Approve",
            "Rollback",
            "Diff",
            "Down",
            "Start traffic",
            "Stop traffic",
            "Go to overview",
            "Go to release",
        } <= set(commands)
        # A key of the screen or the app is offered once, with its key.
        assert commands["Promote"].endswith("· key p")
        assert commands["Logs"].endswith("· key o") and "Go to logs" not in commands
        assert commands["Alerts"].endswith("· key !") and "Go to alerts" not in commands
        assert commands["Go to release"].endswith("· : release")
        # relman's actions only: not the widgets' own keys.
        assert not {"Focus Next", "Focus Previous", "Copy selected text"} & set(commands)
        # Found by other words than their titles.
        assert "Start traffic" in await search(pilot, "load")


async def test_a_view_from_the_palette(
    canned_project: Path, wait_for_workers: WaitForWorkers
) -> None:
    app = RelmanApp(project_dir=canned_project)
    async with app.run_test(size=SIZE) as pilot:
        await wait_for_workers(pilot)
        await pilot.press("down", "down", "enter")  # prod's release
        await wait_for_workers(pilot)
        assert "Go to monitor" in await search(pilot, "go to monitor")
        await pilot.press("enter")
        await wait_until(pilot, lambda: isinstance(app.screen, MonitorScreen), "the monitor")
        assert isinstance(app.screen, MonitorScreen) and app.screen.env == "prod"
        # From the monitor, the palette still has the app's actions, on its environment.
        await search(pilot, "rollback")
        await pilot.press("enter")
        await dialog(pilot)
        assert text(app, "#confirm-text").startswith("roll back shop in prod from v1.3.2")


async def test_down_asks_what_then_confirms(
    canned_project: Path, wait_for_workers: WaitForWorkers, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: list[tuple[str | None, bool]] = []

    def down(project: api.Project, env: str | None = None, **kwargs: Any) -> dict[str, Any]:
        calls.append((env, kwargs["read_only"]))
        kwargs["log"]("stopped shop in staging")
        return {"ok": True, "environments": [{"service": "shop", "env": env, "stopped": True}]}

    monkeypatch.setattr(api, "down", down)
    app = RelmanApp(project_dir=canned_project)
    async with app.run_test(size=SIZE) as pilot:
        await wait_for_workers(pilot)
        await search(pilot, "down")
        await pilot.press("enter")
        await choose(pilot, "staging only")
        await dialog(pilot)
        assert text(app, "#confirm-text") == (
            "stop shop in staging: its proxy and instances; each is recorded down, and the "
            "next promotion serves it again"
        )
        assert text(app, "#confirm-command") == "relman down --env staging"
        await pilot.press("y")
        await wait_until(pilot, lambda: app.current_run and not app.busy, "the run")
        assert calls == [("staging", False)]
        assert isinstance(app.screen, RunScreen)
        assert text(app, "#run-result").startswith("ok: down shop in staging")


async def test_down_in_read_only_mode_is_refused_with_the_command(
    canned_project: Path, wait_for_workers: WaitForWorkers
) -> None:
    """The real engine refuses (nothing is asked first), and the app says what to run."""
    app = RelmanApp(project_dir=canned_project, read_only=True)
    async with app.run_test(size=SIZE) as pilot:
        await wait_for_workers(pilot)
        commands = {title: help for title, help, _run in ScreenActions(app.screen).commands()}
        assert commands["Down"].endswith("(read-only: it says what to run instead)")
        await search(pilot, "down")
        await pilot.press("enter")
        await choose(pilot, "every environment, the collector and the background traffic")
        await wait_until(pilot, lambda: any("down refused" in n for n in notes(app)), "refusal")
        assert notes(app)[-1] == (
            "read-only mode: down refused. From a session that may act, run:\nrelman down"
        )
        assert not isinstance(app.screen, ConfirmScreen) and app.current_run is None


async def test_traffic_starts_on_the_selected_environment_and_stops(
    canned_project: Path, wait_for_workers: WaitForWorkers, monkeypatch: pytest.MonkeyPatch
) -> None:
    started: list[tuple[str, str, dict[str, Any]]] = []
    stopped: list[tuple[str, str, bool]] = []

    def traffic_detached(project: api.Project, service: str, env: str, **kwargs: Any) -> int:
        kwargs.pop("log")("stopped the background traffic already on shop in staging (pid 7)")
        started.append((service, env, kwargs))
        return 4242

    def traffic_stop(project: api.Project, service: str, env: str, *, read_only: bool) -> bool:
        stopped.append((service, env, read_only))
        return True

    monkeypatch.setattr(api, "traffic_detached", traffic_detached)
    monkeypatch.setattr(api, "traffic_stop", traffic_stop)
    app = RelmanApp(project_dir=canned_project)
    async with app.run_test(size=SIZE) as pilot:
        await wait_for_workers(pilot)
        await pilot.press("down")  # staging: no question asked
        await search(pilot, "start traffic")
        await pilot.press("enter")
        await dialog(pilot)
        assert text(app, "#confirm-text").startswith(
            "send demo load to shop in staging in the background: 5 requests a second"
        )
        assert text(app, "#confirm-command") == (
            "relman traffic shop --env staging --duration 0 --detach"
        )
        await pilot.press("y")
        await wait_until(pilot, lambda: app.current_run and not app.busy, "the start")
        assert started == [("shop", "staging", {"rate": 5.0, "duration": 0.0})]
        assert text(app, "#run-result").startswith("ok: demo load on shop in staging")
        # The load it replaced is named.
        log = app.screen.query_one(RichLog)
        assert "stopped the background traffic already on shop in staging (pid 7)" in [
            line.text for line in log.lines
        ]
        await pilot.press("escape")
        await search(pilot, "stop traffic")
        await pilot.press("enter")
        await dialog(pilot)
        assert text(app, "#confirm-command") == "relman traffic shop --env staging --stop"
        await pilot.press("y")
        await wait_until(pilot, lambda: stopped, "the stop")
        assert stopped == [("shop", "staging", False)]


async def test_traffic_in_read_only_mode_is_refused(
    canned_project: Path, wait_for_workers: WaitForWorkers, monkeypatch: pytest.MonkeyPatch
) -> None:
    def traffic_detached(*args: Any, **kwargs: Any) -> int:
        raise AssertionError("no load may start in read-only mode")

    monkeypatch.setattr(api, "traffic_detached", traffic_detached)
    app = RelmanApp(project_dir=canned_project, read_only=True)
    async with app.run_test(size=SIZE) as pilot:
        await wait_for_workers(pilot)
        await search(pilot, "start traffic")
        await pilot.press("enter")
        await wait_until(pilot, lambda: any("refused" in n for n in notes(app)), "refusal")
        assert notes(app)[-1].startswith("read-only mode: traffic refused. From a session")
        assert notes(app)[-1].endswith("relman traffic shop --env dev --duration 0 --detach")


async def test_diff_asks_against_what_and_shows_the_changes(
    canned_project: Path, wait_for_workers: WaitForWorkers, monkeypatch: pytest.MonkeyPatch
) -> None:
    asked: list[tuple[str, str]] = []

    def diff(project: api.Project, a: str, b: str) -> dict[str, Any]:
        asked.append((a, b))
        side = {"service": "shop", "commit": canned.COMMIT, "message": ""}
        return {
            "ok": True,
            "a": side | {"release": canned.PROD, "version": "v1.3.2"},
            "b": side | {"release": canned.CANDIDATE, "version": None},
            "params": [{"key": "train.C", "a": 0.5, "b": 1.0}],
            "metrics": [
                {"key": "accuracy", "a": 0.948, "b": 0.956, "delta": 0.008, "relative": 0.0084}
            ],
            "artifacts": [],
            "commits": ["3f9a2c1d Retrain on the November data"],
        }

    monkeypatch.setattr(api, "diff", diff)
    app = RelmanApp(project_dir=canned_project)
    async with app.run_test(size=SIZE) as pilot:
        await wait_for_workers(pilot)
        await pilot.press("down", "down", "down")  # the candidate
        await search(pilot, "diff")
        await pilot.press("enter")
        await choose(pilot, "v1.3.2 (0f9e8d7), live in prod")
        await wait_until(pilot, lambda: isinstance(app.screen, DiffScreen), "the diff")
        await wait_for_workers(pilot)
        assert asked == [(canned.PROD, "candidate")]
        assert text(app, "#release-title") == (
            f"shop v1.3.2 ({canned.PROD}, 3f9a2c1) -> candidate ({canned.CANDIDATE}, 3f9a2c1)"
        )
        assert section(app, "metrics") == "accuracy 0.948 -> 0.956 +0.008 (+0.8%)"
        assert section(app, "params") == "train.C 0.5 -> 1"
        assert section(app, "commits") == "3f9a2c1d Retrain on the November data"
        await pilot.press("escape")
        assert isinstance(app.screen, OverviewScreen)


async def test_escape_in_the_picker_does_nothing(
    canned_project: Path, wait_for_workers: WaitForWorkers, monkeypatch: pytest.MonkeyPatch
) -> None:
    def down(*args: Any, **kwargs: Any) -> dict[str, Any]:
        raise ReadOnlyError("never called")

    monkeypatch.setattr(api, "down", down)
    app = RelmanApp(project_dir=canned_project)
    async with app.run_test(size=SIZE) as pilot:
        await wait_for_workers(pilot)
        await search(pilot, "down")
        await pilot.press("enter")
        await wait_until(pilot, lambda: isinstance(app.screen, Picker), "the picker")
        await pilot.press("escape")
        await wait_for_workers(pilot)
        assert isinstance(app.screen, OverviewScreen) and app.current_run is None
        assert not CommandPalette.is_open(app)
