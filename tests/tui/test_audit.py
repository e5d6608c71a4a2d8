"""Pilot tests of the audit screen (history pages, the filter, the chain check) and of the
command palette's list of the current screen's actions."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from textual.widgets import Input

from core import api
from screens.audit import AuditScreen, HistoryTable
from screens.overview import OverviewScreen
from screens.palette import ScreenActions
from screens.release import ReleaseScreen
from tests.tui import canned
from tests.tui.conftest import WaitForWorkers
from tui.app import RelmanApp

SIZE = (80, 24)


def summaries(app: RelmanApp) -> list[str]:
    table = app.screen.query_one(HistoryTable)
    return [str(table.get_row(row.key)[3]) for row in table.ordered_rows]


async def test_history_filter_and_chain_check(
    canned_project: Path, wait_for_workers: WaitForWorkers, monkeypatch: pytest.MonkeyPatch
) -> None:
    asked: list[dict[str, Any]] = []

    def history(project: api.Project, **kwargs: Any) -> dict[str, Any]:
        asked.append(kwargs)
        return canned.history(project, **kwargs)

    monkeypatch.setattr(api, "history", history)
    app = RelmanApp(project_dir=canned_project)
    async with app.run_test(size=SIZE) as pilot:
        await wait_for_workers(pilot)
        await pilot.press("h")
        await wait_for_workers(pilot)
        assert isinstance(app.screen, AuditScreen)
        chain = str(app.screen.query_one("#audit-chain").render())
        assert chain == "audit chain intact: 12 events checked"
        # Clipped to fit 80 columns; the line under the table has the whole of the selected one.
        shown = summaries(app)
        assert len(shown) == len(canned.HISTORY)
        for line, entry in zip(shown, canned.HISTORY, strict=True):
            assert entry["summary"].startswith(line.removesuffix("…"))
        assert isinstance(app.focused, HistoryTable)  # keys work at once

        await pilot.press("slash")
        assert isinstance(app.focused, Input)
        await pilot.press(*"prod")
        await wait_for_workers(pilot)
        # An environment's name filters in the engine; other words in the summaries.
        assert asked[-1]["env"] == "prod" and asked[-1]["service"] is None
        assert len(summaries(app)) == 2
        await pilot.press(*" v1.3.1")
        await wait_for_workers(pilot)
        assert summaries(app) == [f"promote {canned.OLDER} (v1.3.1) to prod: done"]
        await pilot.press("escape")  # leaves the filter first
        assert isinstance(app.focused, HistoryTable)
        detail = str(app.screen.query_one("#audit-detail").render())
        assert detail == (
            f"2026-11-20T08:00:00+00:00 · ada@example.com · promote {canned.OLDER} (v1.3.1) "
            "to prod: done"
        )
        await pilot.press("escape")
        assert isinstance(app.screen, OverviewScreen)


async def test_a_broken_chain_is_said(
    canned_project: Path, wait_for_workers: WaitForWorkers, monkeypatch: pytest.MonkeyPatch
) -> None:
    line = "audit chain broken at event 7 (promote.done): its hash does not match"
    monkeypatch.setattr(
        api, "audit_verify", lambda project: {"ok": False, "checked": 7, "detail": line}
    )
    app = RelmanApp(project_dir=canned_project)
    async with app.run_test(size=SIZE) as pilot:
        await wait_for_workers(pilot)
        await pilot.press("h")
        await wait_for_workers(pilot)
        widget = app.screen.query_one("#audit-chain")
        assert str(widget.render()) == line
        # Styled as a failure by the stylesheet (StatusStatic > .status--bad).
        bad = widget.get_component_rich_style("status--bad", partial=True)
        assert widget.content.style == bad  # type: ignore[union-attr]


async def test_the_real_chain_of_the_demo(demo_dir: Path, wait_for_workers: WaitForWorkers) -> None:
    app = RelmanApp(project_dir=demo_dir)
    async with app.run_test(size=SIZE) as pilot:
        await wait_for_workers(pilot)
        await pilot.press("h")
        await wait_for_workers(pilot)
        expected = api.audit_verify(api.load_project(demo_dir))["detail"]
        assert str(app.screen.query_one("#audit-chain").render()) == expected
        assert expected.startswith("audit chain intact")


async def test_the_palette_lists_every_action_of_the_screen(
    canned_project: Path, wait_for_workers: WaitForWorkers
) -> None:
    app = RelmanApp(project_dir=canned_project, read_only=True)
    async with app.run_test(size=SIZE) as pilot:
        await wait_for_workers(pilot)
        await pilot.press("enter")
        await wait_for_workers(pilot)
        assert isinstance(app.screen, ReleaseScreen)
        commands = {title: help for title, help, _run in ScreenActions(app.screen).commands()}
        assert {"Promote", "Approve", "Rollback", "Tests", "Build", "History", "Help"} <= set(
            commands
        )
        assert {"Back", "Refresh", "Quit"} <= set(commands)
        # Dimmed ones are offered, and say what will happen.
        assert commands["Promote"].endswith(
            "(dimmed: run from here, it says why it cannot run) · key p"
        )
        assert "dimmed" not in commands["Tests"]
