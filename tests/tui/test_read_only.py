"""Read-only mode: the header says so, mutating keys are dimmed, and when an action is run
anyway (from the command palette) the engine itself refuses and the app shows the command
to run from a session that may act. The refusals here come from the real core.api."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from textual.widgets import Static

from core import api
from screens.confirm import ConfirmScreen
from screens.overview import OverviewScreen
from screens.release import ReleaseScreen
from tests.tui.conftest import WaitForWorkers, wait_until
from tests.tui.test_app import run_from_palette
from tui.app import READ_ONLY, RelmanApp

SIZE = (80, 24)


def warnings(app: RelmanApp) -> list[tuple[str, str]]:
    return [(n.title, n.message) for n in app._notifications if n.severity == "warning"]


async def test_promote_is_dimmed_and_refused_by_the_engine(
    demo_dir: Path, wait_for_workers: WaitForWorkers
) -> None:
    app = RelmanApp(project_dir=demo_dir, read_only=True)
    async with app.run_test(size=SIZE) as pilot:
        await wait_for_workers(pilot)
        await pilot.press("down", "down", "down", "enter")  # the candidate
        await wait_for_workers(pilot)
        screen = app.screen
        assert isinstance(screen, ReleaseScreen)
        shown = {b.binding.key: b.enabled for b in screen.active_bindings.values()}
        assert shown["p"] is False and shown["a"] is False and shown["u"] is False
        assert shown["t"] is True  # tests run unrecorded in read-only mode: not refused
        # The dimmed key still answers: the engine refuses and says what to run elsewhere.
        await pilot.press("p")
        await wait_until(pilot, lambda: warnings(app), "the refusal")
        await wait_for_workers(pilot)
        assert warnings(app) == [
            (
                READ_ONLY,
                "read-only mode: promote of iris to dev refused. From a session that may act, "
                "run:\nrelman promote iris --to dev",
            )
        ]
        # No dialog, no run screen: nothing ran.
        assert app.screen is screen and app.current_run is None
        # The command palette reaches it too, with the same answer.
        app.clear_notifications()
        await run_from_palette(pilot, "Promote")
        await wait_until(pilot, lambda: warnings(app), "the second refusal")
        assert warnings(app)[0][1].startswith("read-only mode: promote of iris to dev refused")


@pytest.mark.parametrize("how", ["key", "palette"])
async def test_rollback_shows_the_command_to_run_elsewhere(
    canned_project: Path, wait_for_workers: WaitForWorkers, how: str
) -> None:
    """On-call's one key: b on the environment's row gives the command to run."""
    app = RelmanApp(project_dir=canned_project, read_only=True)
    async with app.run_test(size=SIZE) as pilot:
        await wait_for_workers(pilot)
        assert "READ-ONLY" in app.sub_title
        await pilot.press("down", "down")  # prod
        assert app.screen.check_action("rollback", ()) is None  # dimmed in the footer
        if how == "key":
            await pilot.press("b")
        else:
            await run_from_palette(pilot, "Rollback")
        await wait_until(pilot, lambda: warnings(app), "the refusal")
        assert warnings(app) == [
            (
                READ_ONLY,
                "read-only mode: rollback of shop in prod refused. From a session that may "
                'act, run:\nrelman rollback shop --env prod --reason "..."',
            )
        ]
        assert isinstance(app.screen, OverviewScreen)


async def test_tests_run_but_are_not_recorded(
    canned_project: Path, wait_for_workers: WaitForWorkers, monkeypatch: pytest.MonkeyPatch
) -> None:
    seen: list[bool] = []

    def run_tests(project: api.Project, suites: Any = None, **kwargs: Any) -> dict[str, Any]:
        seen.append(kwargs["read_only"])
        return {"ok": True, "steps": [], "recorded": False}

    monkeypatch.setattr(api, "run_tests", run_tests)
    app = RelmanApp(project_dir=canned_project, read_only=True)
    async with app.run_test(size=SIZE) as pilot:
        await wait_for_workers(pilot)
        await pilot.press("enter")
        await wait_for_workers(pilot)
        await pilot.press("t")
        await wait_until(pilot, lambda: isinstance(app.screen, ConfirmScreen), "the dialog")
        confirmation = str(app.screen.query_one("#confirm-text", Static).render())
        assert confirmation.endswith("results are not recorded: read-only mode")
        await pilot.press("y")
        await wait_for_workers(pilot)
        assert seen == [True]


async def test_the_release_screen_dims_every_mutating_action_and_gives_the_rollback_command(
    canned_project: Path, wait_for_workers: WaitForWorkers
) -> None:
    """prod's release, opened from its row over SSH: promote, approve, rollback and build
    are dimmed (tests only run unrecorded); b still answers with the exact command."""
    app = RelmanApp(project_dir=canned_project, read_only=True)
    async with app.run_test(size=SIZE) as pilot:
        await wait_for_workers(pilot)
        await pilot.press("down", "down", "enter")  # prod's release
        await wait_for_workers(pilot)
        screen = app.screen
        assert isinstance(screen, ReleaseScreen) and screen.subject.env == "prod"
        for action in ("promote", "approve", "rollback", "build"):
            assert screen.check_action(action, ()) is None, f"{action} is not dimmed"
        await pilot.press("b")
        await wait_until(pilot, lambda: warnings(app), "the refusal")
        await wait_for_workers(pilot)
        assert warnings(app) == [
            (
                READ_ONLY,
                "read-only mode: rollback of shop in prod refused. From a session that may "
                'act, run:\nrelman rollback shop --env prod --reason "..."',
            )
        ]
        # No dialog, no run: the engine refused before anything happened.
        assert app.screen is screen and app.current_run is None
