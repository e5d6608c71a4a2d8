"""Pilot tests of the alerts screen: firing first, each with its one line and the exact
rollback command; rolling back from an alert through the confirmation (its reason offered),
and in read-only mode the engine's refusal with the command to run elsewhere."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from textual.widgets import Input, Static

from core import api
from screens.alerts import AlertsScreen, AlertTable
from screens.confirm import ConfirmScreen
from screens.live import NO_DATA
from screens.monitor import MonitorScreen
from screens.overview import OverviewScreen
from screens.run import RunScreen
from tests.tui import canned, canned_live
from tests.tui.conftest import WaitForWorkers, wait_until
from tests.tui.test_monitor import no_traffic
from tui.app import READ_ONLY, RelmanApp

SIZE = (80, 24)
# The reason of the alert's own rollback command (the line of the minute it opened).
PROD_REASON = "latency_p99: p99 540 ms > 500 ms for 2 min"


def table_rows(app: RelmanApp) -> list[list[str]]:
    table = app.screen.query_one(AlertTable)
    return [[str(cell) for cell in table.get_row(row.key)] for row in table.ordered_rows]


def shown(app: RelmanApp, selector: str) -> str:
    return str(app.screen.query_one(selector, Static).render())


async def open_alerts(pilot: Any, wait: WaitForWorkers) -> None:
    await wait(pilot)
    await pilot.press("exclamation_mark")
    await wait(pilot)
    assert isinstance(pilot.app.screen, AlertsScreen)


async def test_alerts_firing_first_with_their_line_and_rollback_command(
    canned_project: Path, wait_for_workers: WaitForWorkers
) -> None:
    app = RelmanApp(project_dir=canned_project)
    async with app.run_test(size=SIZE) as pilot:
        await open_alerts(pilot, wait_for_workers)
        assert shown(app, "#alerts-summary") == (
            "1 firing · 1 pending · 1 resolved · collector pid 4242"
        )
        rows = table_rows(app)
        assert [row[:4] for row in rows] == [
            ["firing", "9m", "prod", "latency_p99"],
            ["pending", "2m", "prod", "drift:petal_length"],
            ["resolved", "2h", "staging", "error_rate"],
        ]
        # Clipped to 80 columns; the lines under the table have the whole of the selected one.
        assert rows[0][4] == "p99 870 ms > 500 ms for 11 min"
        detail = shown(app, "#alert-detail")
        assert detail.splitlines()[1] == "p99 870 ms > 500 ms for 11 min"
        assert detail.splitlines()[2] == (
            f"rollback: {canned_live.ROLLBACK_PROD}  (b: run it, after a confirmation)"
        )
        await pilot.press("down", "down")
        assert "shop in staging" in shown(app, "#alert-detail")
        await pilot.press("m")  # the monitor of its environment
        await wait_for_workers(pilot)
        assert isinstance(app.screen, MonitorScreen) and app.screen.env == "staging"
        await pilot.press("escape", "escape")
        assert isinstance(app.screen, OverviewScreen)


async def test_rollback_from_an_alert_asks_with_its_reason_then_runs(
    canned_project: Path, wait_for_workers: WaitForWorkers, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: list[dict[str, Any]] = []

    def rollback(project: api.Project, service: str, env: str, **kwargs: Any) -> Any:
        calls.append({"service": service, "env": env, **kwargs})
        return canned.deploy_document("rollback", env, canned.OLDER, "v1.3.1")

    monkeypatch.setattr(api, "rollback", rollback)
    app = RelmanApp(project_dir=canned_project)
    async with app.run_test(size=SIZE) as pilot:
        await open_alerts(pilot, wait_for_workers)
        await pilot.press("b")
        await wait_until(pilot, lambda: isinstance(app.screen, ConfirmScreen), "the dialog")
        assert shown(app, "#confirm-text").startswith(
            f"roll back shop in prod from v1.3.2 (0f9e8d7) to v1.3.1 ({canned.OLDER[:7]})"
        )
        reason = app.screen.query_one("#confirm-reason", Input)
        assert reason.value == PROD_REASON
        # The command the dialog shows is the alert's own, to the letter.
        assert shown(app, "#confirm-command") == canned_live.ROLLBACK_PROD
        await pilot.press("enter")
        await wait_until(pilot, lambda: calls and not app.busy, "the rollback")
        assert isinstance(app.screen, RunScreen)
        assert calls[0]["service"] == "shop" and calls[0]["env"] == "prod"
        assert calls[0]["reason"] == PROD_REASON and calls[0]["read_only"] is False


async def test_read_only_rollback_from_an_alert_gives_the_command(
    canned_project: Path, wait_for_workers: WaitForWorkers
) -> None:
    app = RelmanApp(project_dir=canned_project, read_only=True)
    async with app.run_test(size=SIZE) as pilot:
        await open_alerts(pilot, wait_for_workers)
        assert "(read-only: run it from a session that may act)" in shown(app, "#alert-detail")
        assert app.screen.check_action("rollback", ()) is None  # dimmed
        await pilot.press("enter")  # the engine refuses (the real core.api)

        def warnings() -> list[tuple[str, str]]:
            return [(n.title, n.message) for n in app._notifications if n.severity == "warning"]

        await wait_until(pilot, warnings, "the refusal")
        assert warnings() == [
            (
                READ_ONLY,
                "read-only mode: rollback of shop in prod refused. From a session that may "
                f"act, run:\n{canned_live.ROLLBACK_PROD}",
            )
        ]
        assert isinstance(app.screen, AlertsScreen) and app.current_run is None


async def test_no_alerts_and_no_collector_says_how_to_start_one(
    canned_project: Path, wait_for_workers: WaitForWorkers, monkeypatch: pytest.MonkeyPatch
) -> None:
    no_traffic(monkeypatch)
    app = RelmanApp(project_dir=canned_project)
    async with app.run_test(size=SIZE) as pilot:
        await open_alerts(pilot, wait_for_workers)
        assert shown(app, "#alerts-summary") == f"No alerts: {NO_DATA}"
        assert table_rows(app) == []
        assert not app.screen.query_one("#alert-detail").display
        await pilot.press("b")
        await pilot.pause()
        assert isinstance(app.screen, AlertsScreen)  # nothing to roll back: no dialog


async def test_the_selected_alert_stays_selected_whatever_order_the_engine_gives(
    canned_project: Path, wait_for_workers: WaitForWorkers, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The engine lists alerts by their last update, which moves at each collector pass; a
    new alert adds a row. The cursor stays on the alert it was on."""
    polls = 0

    def shuffled(project: api.Project) -> dict[str, Any]:
        nonlocal polls
        polls += 1
        document = canned_live.alerts(project)
        alerts = list(reversed(document["alerts"])) if polls % 2 else document["alerts"]
        if polls > 3:  # a new one, firing since a minute ago: first row
            new = {**canned_live.ALERTS[0], "env": "dev", "since": "2026-11-27T11:59:00+00:00"}
            alerts = [*alerts, new]
        return {**document, "alerts": alerts}

    monkeypatch.setattr(api, "alerts", shuffled)
    monkeypatch.setattr(AlertsScreen, "REFRESH_SECONDS", 0.01)
    app = RelmanApp(project_dir=canned_project, read_only=True)
    async with app.run_test(size=SIZE) as pilot:
        await open_alerts(pilot, wait_for_workers)
        await pilot.press("down")  # the pending drift alert
        await wait_until(pilot, lambda: polls >= 6, "six polls")
        rows = table_rows(app)
        assert [row[2:4] for row in rows] == [
            ["dev", "latency_p99"],
            ["prod", "latency_p99"],
            ["prod", "drift:petal_length"],
            ["staging", "error_rate"],
        ]
        screen = app.screen
        assert isinstance(screen, AlertsScreen)
        assert screen.table.cursor_row == 2
        assert "petal_length PSI" in shown(app, "#alert-detail")
