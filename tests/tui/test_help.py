"""The help lists relman's keys, and only those (not the widgets' focus next, page left...),
including the ones that cannot act right now (``l`` before anything ran); at 100 columns
every description is whole, and narrower it wraps rather than being cut."""

from __future__ import annotations

from pathlib import Path

import pytest
from textual.widgets import Static

from screens.help import HelpScreen
from tests.tui.conftest import WaitForWorkers
from tui.app import RelmanApp


def drawn(widget: Static) -> str:
    """The text a Static draws, its lines joined."""
    lines = widget.render_lines(widget.region.reset_offset)
    return " ".join(" ".join("".join(seg.text for seg in line).split()) for line in lines).strip()


@pytest.mark.parametrize("size", [(100, 40), (80, 40)], ids=["100", "80"])
async def test_every_description_is_whole(
    canned_project: Path, wait_for_workers: WaitForWorkers, size: tuple[int, int]
) -> None:
    app = RelmanApp(project_dir=canned_project)
    async with app.run_test(size=size) as pilot:
        await wait_for_workers(pilot)
        await pilot.press("question_mark")
        await pilot.pause()
        assert isinstance(app.screen, HelpScreen)
        descriptions = list(app.screen.query(".description").results(Static))
        assert [drawn(widget) for widget in descriptions] == [
            row.description for row in app.screen.rows
        ]
        heights = {widget.size.height for widget in descriptions}
        # One line each at 100 columns; the longest wrap at 80.
        assert heights == ({1} if size[0] == 100 else {1, 2})


async def test_only_relmans_keys_and_all_of_them(
    canned_project: Path, wait_for_workers: WaitForWorkers
) -> None:
    app = RelmanApp(project_dir=canned_project)
    async with app.run_test(size=(100, 40)) as pilot:
        await wait_for_workers(pilot)
        assert app.current_run is None  # l cannot act yet: listed all the same
        await pilot.press("question_mark")
        assert isinstance(app.screen, HelpScreen)
        rows = {row.keys: (row.group, row.description) for row in app.screen.rows}
        assert [keys for keys, (group, _d) in rows.items() if group == "App"] == [
            "q", "?", "h", "l", "w", "!", ":", "/", "o", "^p",
        ]  # fmt: skip
        assert rows["l"][1] == "Last run: The run in progress, or the last one"
        assert rows[":"][1] == "Jump: Go to a view by name"
        assert [keys for keys, (group, _d) in rows.items() if group == "Overview"] == [
            "r", "m", "p", "b", "R",
        ]  # fmt: skip
        assert rows["R"][1] == "Rollout: Steps and checks of the selected env's rollout"
        assert rows["⏎"] == ("Table", "Open: The release of this row")
        descriptions = " ".join(description for _group, description in rows.values())
        for noise in ("Focus Next", "Focus Previous", "Page Left", "Cursor up", "Copy"):
            assert noise not in descriptions


async def test_a_screen_key_hides_the_apps_of_the_same_key(
    canned_project: Path, wait_for_workers: WaitForWorkers
) -> None:
    """The history has its own filter on /: the help lists that one."""
    app = RelmanApp(project_dir=canned_project)
    async with app.run_test(size=(100, 40)) as pilot:
        await wait_for_workers(pilot)
        await pilot.press("h")
        await wait_for_workers(pilot)
        await pilot.press("question_mark")
        assert isinstance(app.screen, HelpScreen)
        slashes = [row for row in app.screen.rows if row.keys == "/"]
        assert [(row.group, row.description) for row in slashes] == [
            ("Audit", "Filter: Filter by service, env, words")
        ]
