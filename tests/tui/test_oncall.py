"""What on-call sees first at 80x24 (canned shop project, tests/tui/canned.py): the header
counts the alerts firing and the environments left interrupted on every screen; the line
above the table names them, and gives the command that takes an interrupted environment
over, whole; the overview has an error-rate column; the monitor shows its alerts above the
charts; ``p`` in read-only mode says read-only; the overview uses the height the table
leaves for what happened lately; sizes are written alike everywhere."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import pytest
from rich.text import Text
from textual.widgets import Static

from core import api
from screens.common import size
from screens.monitor import MonitorScreen
from screens.overview import EnvironmentTable
from screens.overview_signals import RecentPanel, SignalsBar
from tests.tui import canned, canned_live
from tests.tui.conftest import WaitForWorkers, wait_until
from tests.tui.test_monitor import text
from tui.app import READ_ONLY, RelmanApp
from tui.commands.lineage import _size

SIZE = (80, 24)
NEXT = f"relman promote shop --to dev --release {canned.CANDIDATE}"
NOTE = (
    f"promote of {canned.CANDIDATE} by alice@example.com (pid 20446) was interrupted; the "
    "next promote, rollback or down finishes or undoes it"
)


def dev_interrupted(monkeypatch: pytest.MonkeyPatch) -> None:
    """dev as a relman killed in the middle of a promotion leaves it (api.overview's view of
    the status document's ``note`` and ``next``)."""

    def overview(project: api.Project) -> list[api.ServiceView]:
        (service,) = canned.overview(project)
        envs = [
            dataclasses.replace(env, state="interrupted", note=NOTE, next_step=NEXT)
            if env.name == "dev"
            else env
            for env in service.environments
        ]
        return [dataclasses.replace(service, environments=envs)]

    monkeypatch.setattr(api, "overview", overview)


def plain(widget: Static) -> str:
    content = widget.render()
    return content.plain if isinstance(content, Text) else str(content)


async def test_the_header_and_the_line_above_the_table_say_what_fires_and_what_to_run(
    canned_project: Path, wait_for_workers: WaitForWorkers, monkeypatch: pytest.MonkeyPatch
) -> None:
    dev_interrupted(monkeypatch)
    app = RelmanApp(project_dir=canned_project)
    async with app.run_test(size=SIZE) as pilot:
        await wait_for_workers(pilot)
        assert app.sub_title == "shop · 1 firing · 1 interrupted"
        bar = app.screen.query_one(SignalsBar)
        lines = plain(bar).splitlines()
        assert lines == [
            "firing latency_p99 in prod: p99 870 ms > 500 ms for 11 min",
            "interrupted in dev: relman was killed mid-way; to finish or undo it, run:",
            f"  {NEXT}",
        ]
        # Each line whole at 80 columns: nothing wraps, nothing is cut, and it is on screen.
        assert all(len(line) <= bar.content_region.width for line in lines)
        assert bar.region.bottom <= SIZE[1] and bar.region.height == len(lines) + 1
        # The selected row (dev) has the whole story under the table, the command again.
        detail = str(app.screen.query_one("#row-detail", Static).render()).splitlines()
        assert detail[2:] == [NOTE, f"next: {NEXT}"]

        # The header says it on the other screens too.
        await pilot.press("exclamation_mark")
        await wait_for_workers(pilot)
        assert app.sub_title == "shop · 1 firing · 1 interrupted"
        await pilot.press("escape")

        # All well again: the line goes, and the header says the project alone.
        monkeypatch.setattr(api, "overview", canned.overview)
        monkeypatch.setattr(
            api, "alerts", lambda project: {"ok": True, "alerts": [], "firing": 0, "collector": 1}
        )
        await pilot.press("r")
        await wait_until(pilot, lambda: not bar.display, "the line to go")
        assert app.sub_title == "shop"


async def test_read_only_and_the_signals_share_the_header(
    canned_project: Path, wait_for_workers: WaitForWorkers
) -> None:
    app = RelmanApp(project_dir=canned_project, read_only=True)
    async with app.run_test(size=SIZE) as pilot:
        await wait_for_workers(pilot)
        assert app.sub_title == f"shop · {READ_ONLY} · 1 firing"


def failing_dev(monkeypatch: pytest.MonkeyPatch, share: float) -> None:
    """dev's requests fail at ``share`` over the last minutes (its rate and p95 as canned)."""

    def metrics(project: api.Project, service: str, env: str, range_: str = "1h") -> Any:
        document = canned_live.metrics(project, service, env, range_)
        if env == "dev":
            for point in document["points"]:
                point["error_rate"] = share
        return document

    monkeypatch.setattr(api, "metrics", metrics)


def rows(app: RelmanApp) -> dict[str, list[Text]]:
    table = app.screen.query_one(EnvironmentTable)
    return {str(row.key.value): list(table.get_row(row.key)) for row in table.ordered_rows}


async def test_the_error_rate_has_its_place_in_the_overview(
    canned_project: Path, wait_for_workers: WaitForWorkers, monkeypatch: pytest.MonkeyPatch
) -> None:
    """5.0/s and a fine p95 while a third of the requests fail: the rate says so."""
    failing_dev(monkeypatch, 0.31)
    app = RelmanApp(project_dir=canned_project)
    async with app.run_test(size=SIZE) as pilot:
        await wait_for_workers(pilot)
        table = app.screen.query_one(EnvironmentTable)
        traffic = rows(app)["shop/dev"][5]
        assert str(traffic) == "0.8/s 31% err 40ms"
        bad = table.get_component_rich_style("status--bad", partial=True)
        assert [str(traffic)[span.start : span.end] for span in traffic.spans] == ["31%"]
        assert traffic.spans[0].style == bad
        detail = str(app.screen.query_one("#row-detail", Static).render()).splitlines()
        assert detail[1] == "now 0.8/s, 31% errors, p95 40ms"
        assert table.virtual_size.width <= table.size.width

        # Wider, a column of its own.
        await pilot.resize_terminal(120, 40)
        await wait_until(pilot, lambda: len(table.ordered_columns) == 9, "the wide layout")
        labels = [str(column.label) for column in table.ordered_columns]
        errors = labels.index("Errors")
        assert str(rows(app)["shop/dev"][errors]) == "31%"
        assert str(rows(app)["shop/prod"][errors]) == "0%"
        assert str(rows(app)["shop/@candidate"][errors]) == "—"


async def test_the_overview_uses_the_room_the_table_leaves(
    canned_project: Path, wait_for_workers: WaitForWorkers
) -> None:
    """At 100x30 the table is as tall as its rows; what happened lately takes the rest."""
    app = RelmanApp(project_dir=canned_project)
    async with app.run_test(size=(100, 30)) as pilot:
        await wait_for_workers(pilot)
        table = app.screen.query_one(EnvironmentTable)
        assert table.size.height == 1 + table.row_count  # the labels and four rows
        recent = app.screen.query_one(RecentPanel)
        assert recent.border_title == "Recent"
        lines = plain(recent).splitlines()
        assert (
            lines[0] == f"  3m  promote {canned.CANDIDATE} (v1.4.0) to dev: done · ada@example.com"
        )
        assert len(lines) == len(canned.HISTORY)
        # Down to the watcher's line, the last above the footer: no row left unused.
        watcher = app.screen.query_one("#watcher")
        assert recent.region.bottom == watcher.region.y
        assert watcher.region.bottom == 30 - 1


async def test_the_monitor_shows_its_alerts_above_the_charts_at_80x24(
    canned_project: Path, wait_for_workers: WaitForWorkers
) -> None:
    app = RelmanApp(project_dir=canned_project)
    async with app.run_test(size=SIZE) as pilot:
        await wait_for_workers(pilot)
        await pilot.press("down", "down", "m")  # prod
        await wait_for_workers(pilot)
        screen = app.screen
        assert isinstance(screen, MonitorScreen)
        alerts = screen.query_one("#monitor-alerts", Static)
        first_chart = screen.query_one("#chart-p50")
        assert alerts.region.bottom <= first_chart.region.y  # above the charts
        assert alerts.region.bottom < SIZE[1] - 1  # on screen, above the footer
        lines = text(app, "#monitor-alerts").splitlines()
        words = " ".join(lines[0].split())  # the grid's columns are padded
        assert words == "firing latency_p99 p99 870 ms > 500 ms for 11 min · 9m ago"
        assert lines[1].startswith("pending  drift:petal_length")


async def test_p_in_read_only_mode_says_read_only(
    canned_project: Path, wait_for_workers: WaitForWorkers
) -> None:
    """On prod's row, where nothing is further to promote to, as on any other: the session's
    mode comes first, as it does for b."""
    app = RelmanApp(project_dir=canned_project, read_only=True)
    async with app.run_test(size=SIZE) as pilot:
        await wait_for_workers(pilot)
        await pilot.press("down", "down", "p")

        def said() -> list[str]:
            return [n.message for n in app._notifications if "promote" in n.message]

        await wait_until(pilot, lambda: [m for m in said() if "read-only" in m], "the answer")
        (message,) = [m for m in said() if not m.startswith("Reading")]
        assert message.startswith("read-only mode: this session may not promote")
        assert app.current_run is None


def test_sizes_are_written_alike_in_the_tui_and_on_the_command_line() -> None:
    assert api.human_size(3891) == "3.8 KiB"
    assert size(3891) == _size(3891) == "3.8 KiB"
    assert size(None) == "—" and _size(None) == "?"
    assert size(512) == "512 B" and size(3 * 1024**3) == "3.0 GiB"
