"""The alerts screen against a real Alertmanager (Debian's prometheus-alertmanager) and a real
metric store: a silence made there for service=iris env=dev shows iris/dev's firing alert as
``silenced``, after the alerts that still fire, with who silenced it, until when and why;
the summary counts it apart and stays red only for what still fires."""

from __future__ import annotations

from pathlib import Path

import pytest
from textual.widgets import Static

from screens.alerts import AlertsScreen, AlertTable
from tests.core.test_alert_silences import firing_project, matcher, silence
from tests.prom_stack import needs_prometheus, running_alertmanager
from tests.tui.conftest import WaitForWorkers, wait_until
from tui.app import RelmanApp

pytestmark = needs_prometheus

SIZE = (80, 24)


def table_rows(app: RelmanApp) -> list[list[str]]:
    table = app.screen.query_one(AlertTable)
    return [[str(cell) for cell in table.get_row(row.key)] for row in table.ordered_rows]


def shown(app: RelmanApp, selector: str) -> str:
    return str(app.screen.query_one(selector, Static).render())


async def test_an_alert_silenced_in_alertmanager_shows_silenced_with_who_and_why(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, wait_for_workers: WaitForWorkers
) -> None:
    with running_alertmanager(tmp_path / "am") as manager:
        root = firing_project(tmp_path / "shop", manager.url)
        monkeypatch.chdir(root)
        silence(manager, matcher("service", "iris"), matcher("env", "dev"), by="ada")
        app = RelmanApp(project_dir=root)
        async with app.run_test(size=SIZE) as pilot:
            await wait_for_workers(pilot)
            await pilot.press("exclamation_mark")
            assert isinstance(app.screen, AlertsScreen)
            await wait_until(pilot, lambda: table_rows(app), "the alerts read")
            rows = table_rows(app)
            assert [row[0] for row in rows] == ["firing", "silenced", "resolved"]
            assert [(row[2], row[3]) for row in rows] == [
                ("prod", "latency_p99"),
                ("dev", "error_rate"),
                ("dev", "latency_p99"),
            ]
            assert shown(app, "#alerts-summary") == (
                "1 firing · 1 silenced · 1 resolved · the collector is not running"
            )
            await pilot.press("down")  # the silenced one
            detail = shown(app, "#alert-detail").splitlines()
            assert detail[0].startswith("silenced since ")
            assert detail[1] == "error rate 50.0% > 5.0% for 1 min"
            assert detail[2].startswith("silenced in Alertmanager by ada until ")
            assert detail[2].endswith(": rolling out the fix")
