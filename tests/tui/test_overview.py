"""Pilot tests of the overview on the canned shop project: states and ages, the candidate
line, opening a release, and the live refresh that never overlaps itself."""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any

import pytest
from textual.widgets import Static

from core import api
from screens.confirm import ConfirmScreen
from screens.overview import EnvironmentTable, OverviewScreen
from screens.release import ReleaseScreen
from tests.tui import canned
from tests.tui.conftest import WaitForWorkers, wait_until
from tui.app import RelmanApp

SIZE = (80, 24)


def cells(app: RelmanApp) -> dict[str, list[Any]]:
    table = app.screen.query_one(EnvironmentTable)
    return {str(row.key.value): list(table.get_row(row.key)) for row in table.ordered_rows}


async def test_rows_show_state_age_and_the_candidate(
    canned_project: Path, wait_for_workers: WaitForWorkers
) -> None:
    app = RelmanApp(project_dir=canned_project)
    async with app.run_test(size=SIZE) as pilot:
        await wait_for_workers(pilot)
        rows = {key: [str(cell) for cell in row] for key, row in cells(app).items()}
        assert rows["shop/dev"][:5] == ["shop", "dev", "a1b2c3d v1.4.0", "live", "3m"]
        assert rows["shop/staging"][4] == "2h"
        assert rows["shop/prod"][2:5] == ["0f9e8d7 v1.3.2", "live, 1 firing", "3d"]
        assert rows["shop/@candidate"][:5] == ["shop", "candidate", "a1b2c3d", "clean", "3h"]
        assert rows["shop/@candidate"][5].startswith("3f9a2c1 Retrain")
        # The state takes its style from the stylesheet (StatusTable > .status--good).
        table = app.screen.query_one(EnvironmentTable)
        live = cells(app)["shop/dev"][3]
        assert live.style == table.get_component_rich_style("status--good", partial=True)
        # The whole story of the selected row is under the table, one fact a line.
        detail = str(app.screen.query_one("#row-detail").render())
        assert detail.splitlines() == [
            f"shop in dev: live at 127.0.0.1:3100 · release {canned.CANDIDATE} (v1.4.0)",
            "now 0.8/s, 0% errors, p95 40ms",
        ]


@pytest.mark.parametrize(
    ("changes", "state", "why"),
    [
        (
            {
                "git": {**canned.candidate()["git"], "dirty": True},
                "release": "a1b2c3d-dirty",
                "problems": ["working tree: 1 uncommitted change(s) (params.yaml)"],
            },
            "dirty",
            "working tree: 1 uncommitted change(s) (params.yaml)",
        ),
        (
            {"problems": ["train: dependency params.yaml changed (train modified)"]},
            "stale",
            "train: dependency params.yaml changed (train modified)",
        ),
    ],
)
async def test_the_candidate_line_says_dirty_or_stale_and_why(
    canned_project: Path,
    wait_for_workers: WaitForWorkers,
    monkeypatch: pytest.MonkeyPatch,
    changes: dict[str, Any],
    state: str,
    why: str,
) -> None:
    def status(project: api.Project) -> dict[str, Any]:
        document = canned.status(project)
        document["services"][0]["candidate"] = canned.candidate(**changes)
        return document

    monkeypatch.setattr(api, "status", status)
    app = RelmanApp(project_dir=canned_project)
    async with app.run_test(size=SIZE) as pilot:
        await wait_for_workers(pilot)
        row = [str(cell) for cell in cells(app)["shop/@candidate"]]
        assert row[3] == state
        assert why.startswith(row[5].rstrip("…"))  # clipped to fit 80 columns
        await pilot.press("down", "down", "down")  # the candidate is the last row
        detail = str(app.screen.query_one("#row-detail").render())
        assert detail == f"shop candidate: {state}: {why}"


async def test_enter_opens_the_release_of_the_row(
    canned_project: Path, wait_for_workers: WaitForWorkers
) -> None:
    app = RelmanApp(project_dir=canned_project)
    async with app.run_test(size=SIZE) as pilot:
        await wait_for_workers(pilot)
        await pilot.press("down", "down", "enter")
        assert isinstance(app.screen, ReleaseScreen)
        assert (app.screen.subject.release, app.screen.subject.env) == (canned.PROD, "prod")
        await pilot.press("escape")
        assert isinstance(app.screen, OverviewScreen)
        await pilot.press("down", "down", "down", "enter")
        assert isinstance(app.screen, ReleaseScreen)
        assert app.screen.subject.release is None  # the candidate


async def test_polls_rearm_after_each_poll_and_never_overlap(
    canned_project: Path, wait_for_workers: WaitForWorkers, monkeypatch: pytest.MonkeyPatch
) -> None:
    running = 0
    overlaps = 0
    calls = 0
    lock = threading.Lock()

    def slow_overview(project: api.Project) -> Any:
        nonlocal running, overlaps, calls
        with lock:
            running += 1
            calls += 1
            overlaps += running > 1
        time.sleep(0.05)
        with lock:
            running -= 1
        return canned.overview(project)

    monkeypatch.setattr(api, "overview", slow_overview)
    monkeypatch.setattr(OverviewScreen, "REFRESH_SECONDS", 0.02)
    app = RelmanApp(project_dir=canned_project)
    async with app.run_test(size=SIZE) as pilot:
        await wait_until(pilot, lambda: calls >= 4, "four polls")
        table = app.screen.query_one(EnvironmentTable)
        await pilot.press("down")
        await wait_until(pilot, lambda: calls >= 6, "two more polls")
        # Rows updated in place: the cursor stayed where it was.
        assert table.cursor_row == 1
    assert overlaps == 0


async def test_a_hidden_overview_skips_its_polls_and_catches_up(
    canned_project: Path, wait_for_workers: WaitForWorkers, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls = 0

    def counting(project: api.Project) -> Any:
        nonlocal calls
        calls += 1
        return canned.overview(project)

    monkeypatch.setattr(api, "overview", counting)
    monkeypatch.setattr(OverviewScreen, "REFRESH_SECONDS", 0.02)
    app = RelmanApp(project_dir=canned_project)
    async with app.run_test(size=SIZE) as pilot:
        await wait_for_workers(pilot)
        overview = app.screen
        assert isinstance(overview, OverviewScreen)
        await pilot.press("h")  # the audit screen covers it
        await pilot.pause(0.1)
        hidden = calls
        await pilot.pause(0.2)
        assert calls == hidden
        assert overview.missed_poll
        await pilot.press("escape")
        await wait_until(pilot, lambda: calls > hidden, "the catch-up poll")


async def test_p_promotes_the_selected_release_after_asking(
    canned_project: Path, wait_for_workers: WaitForWorkers
) -> None:
    """The help of the first screen lists promote: from the candidate's row, or an env's."""
    app = RelmanApp(project_dir=canned_project)
    async with app.run_test(size=SIZE) as pilot:
        await wait_for_workers(pilot)
        await pilot.press("down", "down", "down", "p")  # the candidate, live in dev and staging
        await wait_until(pilot, lambda: isinstance(app.screen, ConfirmScreen), "the dialog")
        text = str(app.screen.query_one("#confirm-text", Static).render())
        assert text.startswith("promote shop v1.4.0 (3f9a2c1) to prod, replacing v1.3.2")
        await pilot.press("escape")
        await pilot.press("up")  # prod: nothing further to promote it to
        assert app.screen.check_action("promote", ()) is True
        await pilot.press("p")
        await wait_until(pilot, lambda: app._notifications, "the explanation")
        await wait_for_workers(pilot)
        assert isinstance(app.screen, OverviewScreen)
        notes = [n.message for n in app._notifications if n.severity == "error"]
        assert notes[-1].endswith("there is nothing further to promote it to")


async def test_promote_is_dimmed_in_read_only_mode(
    canned_project: Path, wait_for_workers: WaitForWorkers
) -> None:
    app = RelmanApp(project_dir=canned_project, read_only=True)
    async with app.run_test(size=SIZE) as pilot:
        await wait_for_workers(pilot)
        shown = {b.binding.key: b.enabled for b in app.screen.active_bindings.values()}
        assert shown["p"] is False and shown["b"] is False and shown["m"] is True
