"""Pilot tests of the app shell and the overview screen, at the on-call size of 80x24."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest
from textual.command import CommandList
from textual.pilot import Pilot
from textual.widgets import Static
from textual.widgets._header import HeaderTitle

from core import api
from core.api import Project
from screens.help import HelpScreen
from screens.overview import EnvironmentTable, OverviewScreen
from screens.palette import ScreenActions
from tests.tui.conftest import BROKEN_TOML, WaitForWorkers
from tui.app import RelmanApp

SIZE = (80, 24)


def rows(app: RelmanApp) -> list[list[str]]:
    table = app.screen.query_one(EnvironmentTable)
    return [[str(cell) for cell in table.get_row(row.key)] for row in table.ordered_rows]


def row_keys(app: RelmanApp) -> list[str | None]:
    return [row.key.value for row in app.screen.query_one(EnvironmentTable).ordered_rows]


def status_text(app: RelmanApp) -> str:
    return str(app.screen.query_one("#status", Static).render())


def header_text(app: RelmanApp) -> str:
    return str(app.screen.query_one(HeaderTitle).render())


async def test_overview_lists_every_environment_in_promotion_order(
    project_dir: Path, wait_for_workers: WaitForWorkers
) -> None:
    app = RelmanApp(project_dir=project_dir)
    async with app.run_test(size=SIZE) as pilot:
        await wait_for_workers(pilot)
        assert isinstance(app.screen, OverviewScreen)
        shown = rows(app)
        assert [row[:2] for row in shown] == [
            ["shop", "dev"],
            ["shop", "staging"],
            ["shop", "prod"],
            ["shop", "candidate"],
        ]
        assert [row[3] for row in shown[:3]] == ["not deployed"] * 3
        # The scheme is left out to fit 80 columns.
        assert [row[5] for row in shown[:3]] == [f"127.0.0.1:{port}" for port in (3100, 3101, 3102)]
        assert row_keys(app) == ["shop/dev", "shop/staging", "shop/prod", "shop/@candidate"]
        # Not a git repository: the candidate cannot be read, and the row says so.
        assert shown[3][3] == "unknown"
        assert shown[3][5].startswith("not a git reposi")
        assert "Nothing deployed yet" in status_text(app)
        # points at a command that exists (promotion has not landed yet)
        assert "relman release tests, builds and deploys shop to dev" in status_text(app)
        # Keyboard-only: the table has the focus once loaded.
        assert isinstance(app.focused, EnvironmentTable)


async def test_header_shows_the_project_name(
    project_dir: Path, wait_for_workers: WaitForWorkers
) -> None:
    app = RelmanApp(project_dir=project_dir)
    async with app.run_test(size=SIZE) as pilot:
        await wait_for_workers(pilot)
        assert app.title == "relman"
        assert app.sub_title == "shop"
        assert "shop" in header_text(app)
        assert "READ-ONLY" not in header_text(app)
        assert isinstance(app.project, Project)


async def test_read_only_is_shown_in_the_header(
    project_dir: Path, wait_for_workers: WaitForWorkers
) -> None:
    app = RelmanApp(project_dir=project_dir, read_only=True)
    async with app.run_test(size=SIZE) as pilot:
        # Before the project is loaded as well as after.
        assert "READ-ONLY" in app.sub_title
        await wait_for_workers(pilot)
        assert app.sub_title == "shop · READ-ONLY"
        assert "READ-ONLY" in header_text(app)
        assert app.has_class("-read-only")
        # The hint does not suggest a command read-only mode would refuse.
        assert "relman " not in status_text(app)


async def test_the_first_paint_does_not_wait_for_the_project(
    project_dir: Path, wait_for_workers: WaitForWorkers, monkeypatch: pytest.MonkeyPatch
) -> None:
    release = threading.Event()
    real_load = api.load_project

    def slow_load(path: Path | None) -> Project:
        release.wait(timeout=10)
        return real_load(path)

    monkeypatch.setattr(api, "load_project", slow_load)
    app = RelmanApp(project_dir=project_dir)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        table = app.screen.query_one(EnvironmentTable)
        assert table.loading
        assert "Loading" in status_text(app)
        assert table.row_count == 0
        release.set()
        await wait_for_workers(pilot)
        assert not table.loading
        assert table.row_count == 4


async def test_help_lists_the_keys_of_the_app_and_the_screen(
    project_dir: Path, wait_for_workers: WaitForWorkers
) -> None:
    app = RelmanApp(project_dir=project_dir)
    async with app.run_test(size=SIZE) as pilot:
        await wait_for_workers(pilot)
        await pilot.press("?")
        assert isinstance(app.screen, HelpScreen)
        keys = {row.keys: row for row in app.screen.rows}
        assert keys["?"].group == "App"
        assert keys["?"].description.startswith("Help")
        assert keys["h"].description.startswith("History")
        assert keys["b"].description.startswith("Rollback")
        quit_keys = next(k for k, row in keys.items() if row.description.startswith("Quit"))
        assert "q" in quit_keys.split()
        assert keys["r"].group == "Overview"
        assert keys["r"].description.startswith("Refresh")
        assert keys["⏎"].group == "Table" and "↓" not in keys  # the widget's own keys: out
        # What the modal shows is what it lists.
        shown = [str(widget.render()) for widget in app.screen.query(".key")]
        assert shown == [row.keys for row in app.screen.rows]
        await pilot.press("escape")
        assert isinstance(app.screen, OverviewScreen)


@pytest.mark.parametrize("key", ["q", "question_mark"])
async def test_help_closes_with_its_keys_and_the_app_stays(
    project_dir: Path, wait_for_workers: WaitForWorkers, key: str
) -> None:
    app = RelmanApp(project_dir=project_dir)
    async with app.run_test(size=SIZE) as pilot:
        await wait_for_workers(pilot)
        await pilot.press("question_mark")
        assert isinstance(app.screen, HelpScreen)
        await pilot.press(key)
        assert isinstance(app.screen, OverviewScreen)
        assert app.is_running


async def test_q_quits(project_dir: Path, wait_for_workers: WaitForWorkers) -> None:
    app = RelmanApp(project_dir=project_dir)
    async with app.run_test(size=SIZE) as pilot:
        await wait_for_workers(pilot)
        await pilot.press("q")
        await pilot.pause()
        assert not app.is_running
    assert app.return_code == 0


async def test_a_broken_config_shows_its_one_line_and_does_not_crash(
    broken_project_dir: Path, wait_for_workers: WaitForWorkers
) -> None:
    line = BROKEN_TOML.splitlines().index("bogus_setting = 1") + 1
    expected = f"relman.toml:{line}: unknown key 'bogus_setting' in [environments.prod]"
    app = RelmanApp(project_dir=broken_project_dir)
    async with app.run_test(size=SIZE) as pilot:
        await wait_for_workers(pilot)
        assert app.is_running
        assert isinstance(app.screen, OverviewScreen)
        assert status_text(app) == expected
        assert app.screen.query_one("#status").has_class("-error")
        table = app.screen.query_one(EnvironmentTable)
        assert not table.loading
        assert table.row_count == 0
        notes = list(app._notifications)
        assert [(note.message, note.severity) for note in notes] == [(expected, "error")]
        # The keys still work: help opens over the error state.
        await pilot.press("?")
        assert isinstance(app.screen, HelpScreen)


async def test_refresh_updates_rows_in_place(
    project_dir: Path, wait_for_workers: WaitForWorkers
) -> None:
    app = RelmanApp(project_dir=project_dir)
    async with app.run_test(size=SIZE) as pilot:
        await wait_for_workers(pilot)
        keys_before = row_keys(app)
        await pilot.press("down", "down")
        table = app.screen.query_one(EnvironmentTable)
        assert table.cursor_row == 2
        config = project_dir / "relman.toml"
        config.write_text(config.read_text().replace("3102", "3202"), encoding="utf-8")
        await pilot.press("r")
        await wait_for_workers(pilot)
        assert row_keys(app) == keys_before
        assert rows(app)[2][5] == "127.0.0.1:3202"
        # Updated cell by cell, not cleared and refilled: the cursor stayed where it was.
        assert table.cursor_row == 2


async def test_refresh_keeps_the_rows_when_the_config_breaks(
    project_dir: Path, wait_for_workers: WaitForWorkers
) -> None:
    app = RelmanApp(project_dir=project_dir)
    async with app.run_test(size=SIZE) as pilot:
        await wait_for_workers(pilot)
        (project_dir / "relman.toml").write_text(BROKEN_TOML, encoding="utf-8")
        await pilot.press("r")
        await wait_for_workers(pilot)
        assert "unknown key 'bogus_setting'" in status_text(app)
        assert len(rows(app)) == 4


async def run_from_palette(pilot: Pilot[None], title: str) -> None:
    """Open the command palette with ctrl+p, search ``title`` and run the first hit."""
    await pilot.press("ctrl+p")
    await pilot.press(*title)
    # The palette searches in the background: wait for its first hit.
    hits = pilot.app.screen.query_one(CommandList)
    for _ in range(100):
        if hits.option_count:
            break
        await pilot.pause(0.02)
    assert hits.option_count, f"the command palette found nothing for {title!r}"
    await pilot.press("enter")
    await pilot.pause()


async def test_command_palette_offers_help_and_refresh(
    project_dir: Path, wait_for_workers: WaitForWorkers
) -> None:
    app = RelmanApp(project_dir=project_dir)
    async with app.run_test(size=SIZE) as pilot:
        await wait_for_workers(pilot)
        titles = [title for title, _help, _run in ScreenActions(app.screen).commands()]
        assert {"Help", "Refresh", "Quit", "History", "Rollback"} <= set(titles)
        # Textual's own Quit and Keys are left to the screen's provider.
        system = [command.title for command in app.get_system_commands(app.screen)]
        assert "Quit" not in system and "Keys" not in system

        config = project_dir / "relman.toml"
        config.write_text(config.read_text().replace("3100", "3200"), encoding="utf-8")
        await run_from_palette(pilot, "Refresh")
        await wait_for_workers(pilot)
        assert isinstance(app.screen, OverviewScreen)
        assert rows(app)[0][5] == "127.0.0.1:3200"

        await run_from_palette(pilot, "Help")
        assert isinstance(app.screen, HelpScreen)


async def test_a_project_without_a_bentoml_service_is_told_what_to_add(
    project_dir: Path, wait_for_workers: WaitForWorkers
) -> None:
    """Lineage only (no bento =): the line above the table does not offer `relman release`,
    which would refuse; it says what to add."""
    toml = (project_dir / "relman.toml").read_text()
    lines = [line for line in toml.splitlines() if not line.startswith("bento =")]
    (project_dir / "relman.toml").write_text("\n".join(lines) + "\n")
    app = RelmanApp(project_dir=project_dir)
    async with app.run_test(size=SIZE) as pilot:
        await wait_for_workers(pilot)
        said = status_text(app)
        assert "add a BentoML service" in said and "relman release" not in said
