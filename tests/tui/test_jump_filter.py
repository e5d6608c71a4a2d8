"""``:`` jumps to a view by name, completed as you type (k9s); ``/`` narrows the list of the
screen as you type, and escape brings every row back."""

from __future__ import annotations

from pathlib import Path

from textual.widgets import DataTable, Input, OptionList

from screens.alerts import AlertsScreen
from screens.filter import ListFilter
from screens.jump import JumpScreen
from screens.monitor import MonitorScreen
from screens.overview import EnvironmentTable, OverviewScreen
from tests.tui.conftest import WaitForWorkers, wait_until
from tui.app import RelmanApp

SIZE = (80, 24)


def row_keys(app: RelmanApp) -> list[str]:
    table = app.screen.query_one(DataTable)
    return [str(row.key.value) for row in table.ordered_rows]


def notes(app: RelmanApp) -> list[str]:
    return [note.message for note in app._notifications]


def matches(app: RelmanApp) -> list[str]:
    found = app.screen.query_one("#jump-matches", OptionList)
    return [str(found.get_option_at_index(i).id) for i in range(found.option_count)]


async def test_colon_completes_a_view_and_goes_there(
    canned_project: Path, wait_for_workers: WaitForWorkers
) -> None:
    app = RelmanApp(project_dir=canned_project)
    async with app.run_test(size=SIZE) as pilot:
        await wait_for_workers(pilot)
        await pilot.press("colon")
        assert isinstance(app.screen, JumpScreen)
        await pilot.press("m", "o")
        assert matches(app) == ["monitor"]
        await pilot.press("tab")  # takes the completion
        prompt = app.screen.query_one("#jump-input", Input)
        assert prompt.value == "monitor"
        await pilot.press("space", "p")
        assert matches(app) == ["monitor prod"]
        await pilot.press("enter")
        await wait_until(pilot, lambda: isinstance(app.screen, MonitorScreen), "the monitor")
        assert isinstance(app.screen, MonitorScreen)
        assert (app.screen.service, app.screen.env) == ("shop", "prod")
        # Another jump replaces the view: escape leads back to the overview.
        await pilot.press("colon", *"alerts", "enter")
        await wait_until(pilot, lambda: isinstance(app.screen, AlertsScreen), "the alerts")
        assert len(app.screen_stack) == 2
        await pilot.press("escape")
        assert isinstance(app.screen, OverviewScreen)


async def test_colon_with_a_prefix_takes_the_highlighted_view(
    canned_project: Path, wait_for_workers: WaitForWorkers
) -> None:
    app = RelmanApp(project_dir=canned_project)
    async with app.run_test(size=SIZE) as pilot:
        await wait_for_workers(pilot)
        await pilot.press("colon", "h", "i", "enter")
        await wait_until(pilot, lambda: app.screen.query("#audit-log"), "the history")


async def test_an_unknown_view_says_which_there_are(
    canned_project: Path, wait_for_workers: WaitForWorkers
) -> None:
    app = RelmanApp(project_dir=canned_project)
    async with app.run_test(size=SIZE) as pilot:
        await wait_for_workers(pilot)
        await pilot.press("colon", *"zz")
        assert matches(app) == []
        await pilot.press("enter")
        assert isinstance(app.screen, OverviewScreen)
        assert notes(app)[-1] == (
            "no view 'zz': views are overview, release, monitor, logs, alerts, history, pipelines, "
            "run, help"
        )
        await pilot.press("colon", "escape")
        assert isinstance(app.screen, OverviewScreen)


async def test_slash_narrows_the_overview_and_escape_clears_it(
    canned_project: Path, wait_for_workers: WaitForWorkers
) -> None:
    app = RelmanApp(project_dir=canned_project)
    async with app.run_test(size=SIZE) as pilot:
        await wait_for_workers(pilot)
        everything = row_keys(app)
        assert len(everything) == 4
        await pilot.press("slash")
        await wait_until(pilot, lambda: isinstance(app.focused, ListFilter), "the filter")
        await pilot.press(*"prod")
        assert row_keys(app) == ["shop/prod"]
        await pilot.press("enter")  # back to the list; the filter stays
        assert isinstance(app.focused, EnvironmentTable)
        await pilot.press("r")  # a poll keeps it
        await wait_for_workers(pilot)
        assert row_keys(app) == ["shop/prod"]
        assert app.screen.query_one(ListFilter).display
        # The action keys act on what the filter left: prod.
        subject = app.screen.subject()  # type: ignore[attr-defined]
        assert subject is not None and subject.env == "prod"
        await pilot.press("slash", "escape")
        assert row_keys(app) == everything
        assert not app.screen.query_one(ListFilter).display
        assert isinstance(app.focused, EnvironmentTable)


async def test_slash_narrows_the_alerts(
    canned_project: Path, wait_for_workers: WaitForWorkers
) -> None:
    app = RelmanApp(project_dir=canned_project)
    async with app.run_test(size=SIZE) as pilot:
        await wait_for_workers(pilot)
        await pilot.press("exclamation_mark")
        await wait_for_workers(pilot)
        assert len(row_keys(app)) == 3
        await pilot.press("slash", *"staging")
        assert [key.split("|")[0] for key in row_keys(app)] == ["error_rate"]
        await pilot.press("escape")
        assert len(row_keys(app)) == 3


async def test_slash_where_there_is_no_list_says_so(
    canned_project: Path, wait_for_workers: WaitForWorkers
) -> None:
    app = RelmanApp(project_dir=canned_project)
    async with app.run_test(size=SIZE) as pilot:
        await wait_for_workers(pilot)
        await pilot.press("m")
        await wait_for_workers(pilot)
        await pilot.press("slash")
        assert notes(app)[-1] == "Nothing to filter on this screen."
