"""Pilot tests of the live figures: the overview's traffic columns and firing marker at 80
and 120 columns, and the monitor screen (charts per range, drift, alerts, the poll). The
metric store answers canned series (tests/tui/canned_live.py): prod's p99 climbs to 870 ms over
its last minutes and fires, one of its features drifts."""

from __future__ import annotations

import io
import threading
import time
from pathlib import Path
from typing import Any

import pytest
from rich.console import Console
from rich.text import Text
from textual.widgets import Sparkline, Static

from core import api
from core.errors import StoreError
from screens.alerts import AlertsScreen
from screens.charts import columns
from screens.live import NO_DATA
from screens.monitor import MonitorScreen
from screens.overview import EnvironmentTable, OverviewScreen
from screens.overview_rows import NARROW, WIDE
from screens.palette import ScreenActions
from tests.tui import canned, canned_live
from tests.tui.conftest import WaitForWorkers, wait_until
from tui.app import RelmanApp

SIZE = (80, 24)


def rows(app: RelmanApp) -> dict[str, list[Any]]:
    table = app.screen.query_one(EnvironmentTable)
    return {str(row.key.value): list(table.get_row(row.key)) for row in table.ordered_rows}


def text(app: RelmanApp, selector: str) -> str:
    """What a Static shows, as plain text (a table drawn 76 cells wide)."""
    content = app.screen.query_one(selector, Static).content
    if isinstance(content, str | Text):
        return str(content)
    console = Console(width=76, file=io.StringIO(), record=True, color_system=None)
    console.print(content)
    return "\n".join(line.rstrip() for line in console.export_text().splitlines())


def no_traffic(monkeypatch: pytest.MonkeyPatch) -> None:
    """A metric store with nothing in it, and no collector running."""
    monkeypatch.setattr(
        api, "metrics", lambda project, service, env, range_="1h": {"ok": True, "points": []}
    )
    monkeypatch.setattr(
        api, "alerts", lambda project: {"ok": True, "alerts": [], "firing": 0, "collector": None}
    )
    monkeypatch.setattr(
        api,
        "drift",
        lambda project, service, env: canned_live.not_measured(service, env, 0),
    )


async def test_overview_shows_traffic_and_firing_alerts_at_80_columns(
    canned_project: Path, wait_for_workers: WaitForWorkers
) -> None:
    app = RelmanApp(project_dir=canned_project)
    async with app.run_test(size=SIZE) as pilot:
        await wait_for_workers(pilot)
        table = app.screen.query_one(EnvironmentTable)
        assert [str(column.label) for column in table.ordered_columns] == [
            label for _key, label in NARROW
        ]
        shown = {key: [str(cell) for cell in cells] for key, cells in rows(app).items()}
        # Request rate, error rate and the newest p95 (an alert firing widens the state:
        # no room for the sparkline nor the word p95).
        assert shown["shop/dev"][5] == "0.8/s 0% err 40ms"
        assert shown["shop/prod"][5] == "12/s 0% err 294ms"
        assert shown["shop/prod"][3] == "live, 1 firing"
        marker = rows(app)["shop/prod"][3]
        bad = table.get_component_rich_style("status--bad", partial=True)
        assert marker.spans[-1].style == bad and str(marker)[marker.spans[-1].start :] == (
            ", 1 firing"
        )
        assert shown["shop/@candidate"][5].startswith("3f9a2c1 Retrain")
        # Nothing scrolls sideways at 80 columns.
        assert table.virtual_size.width <= table.size.width


async def test_wider_the_p95_sparkline_and_the_url_have_columns(
    canned_project: Path, wait_for_workers: WaitForWorkers
) -> None:
    app = RelmanApp(project_dir=canned_project)
    async with app.run_test(size=(120, 40)) as pilot:
        await wait_for_workers(pilot)
        table = app.screen.query_one(EnvironmentTable)
        assert [str(c.label) for c in table.ordered_columns] == [label for _k, label in WIDE]
        prod = [str(cell) for cell in rows(app)["shop/prod"]]
        assert prod[5:] == ["12/s", "0%", "▁▂▂▃▃▄▄▅▅▆▆▇▇██ 294ms", "127.0.0.1:3102"]
        # dev was idle two minutes of the last fifteen: blanks, not zeros.
        dev_p95 = str(rows(app)["shop/dev"][7])
        assert dev_p95.count(" ") == 3 and dev_p95.endswith(" 40ms")
        assert table.virtual_size.width <= table.size.width
        # Narrower again: the other layout, the cursor where it was.
        await pilot.press("down")
        await pilot.resize_terminal(80, 24)
        await pilot.pause()
        assert [str(c.label) for c in table.ordered_columns] == [label for _k, label in NARROW]
        await pilot.pause()
        assert table.cursor_row == 1


async def test_without_a_metric_store_the_traffic_is_a_dash(
    canned_project: Path, wait_for_workers: WaitForWorkers, monkeypatch: pytest.MonkeyPatch
) -> None:
    no_traffic(monkeypatch)
    app = RelmanApp(project_dir=canned_project)
    async with app.run_test(size=SIZE) as pilot:
        await wait_for_workers(pilot)
        shown = {key: [str(cell) for cell in cells] for key, cells in rows(app).items()}
        assert [shown[f"shop/{env}"][3:] for env in ("dev", "staging", "prod")] == [
            ["live", "3m", "—"],
            ["live", "2h", "—"],
            ["live", "3d", "—"],
        ]


async def test_a_metric_store_that_cannot_be_read_is_said_once(
    canned_project: Path, wait_for_workers: WaitForWorkers, monkeypatch: pytest.MonkeyPatch
) -> None:
    line = ".relman/metrics.db: not a relman metric store: it holds other tables"

    def broken(*args: object, **kwargs: object) -> dict[str, Any]:
        raise StoreError(line)

    monkeypatch.setattr(api, "alerts", broken)
    monkeypatch.setattr(OverviewScreen, "REFRESH_SECONDS", 0.02)
    calls = 0

    def counting(project: api.Project) -> Any:
        nonlocal calls
        calls += 1
        return canned.overview(project)

    monkeypatch.setattr(api, "overview", counting)
    app = RelmanApp(project_dir=canned_project)
    async with app.run_test(size=SIZE) as pilot:
        await wait_until(pilot, lambda: calls >= 3, "three polls")
        errors = [n for n in app._notifications if n.severity == "error"]
        assert [(n.title, n.message) for n in errors] == [("Cannot read the metric store", line)]
        assert str(rows(app)["shop/prod"][5]) == "—"
        assert str(rows(app)["shop/prod"][3]) == "live"  # the table still shows the rest


async def test_monitor_charts_the_selected_environment_over_each_range(
    canned_project: Path, wait_for_workers: WaitForWorkers, monkeypatch: pytest.MonkeyPatch
) -> None:
    asked: list[tuple[str, str]] = []

    def metrics(project: api.Project, service: str, env: str, range_: str = "1h") -> Any:
        asked.append((env, range_))
        return canned_live.metrics(project, service, env, range_)

    monkeypatch.setattr(api, "metrics", metrics)
    app = RelmanApp(project_dir=canned_project)
    async with app.run_test(size=SIZE) as pilot:
        await wait_for_workers(pilot)
        await pilot.press("down", "down", "m")  # prod
        await wait_for_workers(pilot)
        screen = app.screen
        assert isinstance(screen, MonitorScreen)
        assert asked[-1] == ("prod", "1h")
        assert text(app, "#monitor-title") == (
            "shop in prod · v1.3.2 (0f9e8d7) for 3d · last 1 h: 60 of 60 min with data"
        )
        p99 = screen.query_one("#chart-p99")
        data = list(p99.query_one(Sparkline).data or [])
        assert len(data) == 60 and data[-1] == 870.0
        assert str(p99.query_one(".chart-stats", Static).render()) == (
            "last 870ms\nmin 99ms max 870ms"
        )
        errors = screen.query_one("#chart-errors")
        assert str(errors.query_one(".chart-stats", Static).render()) == "last 0%\nmin 0% max 0%"
        # Drift per feature, each on one line within 80 columns; petal_length's drift rule
        # has a pending alert, which its row shows.
        drift = text(app, "#monitor-drift").splitlines()
        assert drift[:7] == [
            "last 15 min vs data/orders.csv · 812 records · PSI > 0.20 is drift",
            "feature         PSI     KS  mean live/ref  state",
            "sepal_length  0.031  0.052    5.86 / 5.84  ok",
            "sepal_width   0.018  0.041    3.05 / 3.06  ok",
            "petal_length  0.274  0.212    4.21 / 3.76  pending",
            "petal_width   0.142  0.118     1.31 / 1.2  ok",
            "predictions   0.061      —          n=812  ok",
        ]
        assert " ".join(drift[7:]) == (
            "classes live (ref): virginica 41% (33%) · setosa 26% (33%) · versicolor 33% (33%)"
        )
        alerts = text(app, "#monitor-alerts")
        assert alerts.index("firing") < alerts.index("pending")  # firing first
        assert "p99 870 ms > 500 ms for 11 min" in alerts
        assert not screen.query_one("#monitor-note").display  # nothing to warn about

        await pilot.press("1")
        await wait_for_workers(pilot)
        assert asked[-1] == ("prod", "5m")
        assert text(app, "#monitor-title").endswith("last 5 min: 5 of 5 min with data")
        assert len(p99.query_one(Sparkline).data or []) == 5
        await pilot.press("3")
        await wait_for_workers(pilot)
        assert text(app, "#monitor-title").endswith("last 24 h: 1440 of 1440 min with data")
        await pilot.press("n")  # prod is the last environment: back to dev
        await wait_for_workers(pilot)
        assert asked[-1] == ("dev", "24h")
        assert text(app, "#monitor-title").startswith("shop in dev · v1.4.0 (a1b2c3d)")
        assert text(app, "#monitor-alerts") == "no alert open in dev"
        assert " ".join(text(app, "#monitor-drift").splitlines()) == (
            f"14 records of {canned.CANDIDATE} in the last 15 min; drift is measured from 200 "
            "(drift_min_records)"
        )
        await pilot.press("escape")
        assert isinstance(app.screen, OverviewScreen)


async def test_monitor_without_data_says_how_to_get_some(
    canned_project: Path, wait_for_workers: WaitForWorkers, monkeypatch: pytest.MonkeyPatch
) -> None:
    no_traffic(monkeypatch)
    app = RelmanApp(project_dir=canned_project)
    async with app.run_test(size=SIZE) as pilot:
        await wait_for_workers(pilot)
        await pilot.press("m")
        await wait_for_workers(pilot)
        assert isinstance(app.screen, MonitorScreen)
        note = app.screen.query_one("#monitor-note", Static)
        assert note.display and str(note.render()) == NO_DATA
        assert text(app, "#monitor-drift").startswith("0 records of ")
        stats = [str(s.render()) for s in app.screen.query(".chart-stats").results(Static)]
        assert stats == ["no data"] * 5


async def test_monitor_says_what_is_wrong_with_the_collectors_source(
    canned_project: Path, wait_for_workers: WaitForWorkers, monkeypatch: pytest.MonkeyPatch
) -> None:
    line = "Prometheus at http://127.0.0.1:9090 cannot be reached: [Errno 111] Connection refused"

    def metrics(project: api.Project, service: str, env: str, range_: str = "1h") -> Any:
        document = canned_live.metrics(project, service, env, range_)
        return {**document, "source": {"name": "prometheus", "problem": line}}

    monkeypatch.setattr(api, "metrics", metrics)
    async with RelmanApp(project_dir=canned_project).run_test(size=SIZE) as pilot:
        await wait_for_workers(pilot)
        await pilot.press("m")  # dev, which has data: the line says why it may stop
        await wait_for_workers(pilot)
        note = pilot.app.screen.query_one("#monitor-note", Static)
        assert note.display and str(note.render()) == f"the collector's source: {line}"


async def test_monitor_polls_never_overlap_and_pause_while_covered(
    canned_project: Path, wait_for_workers: WaitForWorkers, monkeypatch: pytest.MonkeyPatch
) -> None:
    running = overlaps = calls = 0
    lock = threading.Lock()

    def slow_metrics(project: api.Project, service: str, env: str, range_: str = "1h") -> Any:
        nonlocal running, overlaps, calls
        with lock:
            running += 1
            calls += 1
            overlaps += running > 1
        time.sleep(0.03)
        with lock:
            running -= 1
        return canned_live.metrics(project, service, env, range_)

    app = RelmanApp(project_dir=canned_project)
    async with app.run_test(size=SIZE) as pilot:
        await wait_for_workers(pilot)
        await pilot.press("m")
        await wait_for_workers(pilot)
        screen = app.screen
        assert isinstance(screen, MonitorScreen)
        monkeypatch.setattr(api, "metrics", slow_metrics)
        monkeypatch.setattr(MonitorScreen, "REFRESH_SECONDS", 0.01)
        await pilot.press("r")
        await pilot.press("2", "1", "r")  # asked while a read runs: they wait for it
        await wait_until(pilot, lambda: calls >= 5, "five polls")
        await pilot.press("exclamation_mark")  # the alerts cover the monitor
        assert isinstance(app.screen, AlertsScreen)
        await pilot.pause(0.1)
        covered = calls
        await pilot.pause(0.2)
        assert calls <= covered + 1 and screen.missed_poll
        await pilot.press("escape")
        await wait_until(pilot, lambda: calls > covered + 1, "the catch-up poll")
    assert overlaps == 0


async def test_the_palette_offers_the_monitor_and_the_alerts(
    canned_project: Path, wait_for_workers: WaitForWorkers
) -> None:
    app = RelmanApp(project_dir=canned_project)
    async with app.run_test(size=SIZE) as pilot:
        await wait_for_workers(pilot)
        commands = {title: help for title, help, _run in ScreenActions(app.screen).commands()}
        assert commands["Monitor"].endswith("· key m")
        assert commands["Alerts"].endswith("· key !")


async def test_minutes_without_a_point_are_gaps_on_one_time_axis(
    canned_project: Path, wait_for_workers: WaitForWorkers
) -> None:
    """dev was idle one minute in nine: every chart leaves those minutes blank, in place."""
    app = RelmanApp(project_dir=canned_project, read_only=True)
    async with app.run_test(size=SIZE) as pilot:
        await wait_for_workers(pilot)
        await pilot.press("m")  # dev
        await wait_for_workers(pilot)
        screen = app.screen
        assert isinstance(screen, MonitorScreen)
        idle = [m for m in range(60, 0, -1) if m % 9 == 4]  # minutes before NOW
        assert text(app, "#monitor-title").endswith(f"{60 - len(idle)} of 60 min with data")
        for chart in ("p50", "rps"):
            data = list(screen.query_one(f"#chart-{chart}").query_one(Sparkline).data or [])
            assert [60 - i for i, value in enumerate(data) if value is None] == idle
        # Drawn: the columns of idle minutes are blank, the others are not.
        bars = screen.query_one("#chart-p50").query_one(Sparkline)
        data = list(bars.data or [])
        width = bars.size.width
        rows = str(bars.render()).splitlines()
        assert len(rows) == 2 and all(len(row) == width for row in rows)
        gaps = [value is None for value in columns(data, width)]
        assert any(gaps) and [cell == " " for cell in rows[1]] == gaps


def test_an_alert_silenced_in_alertmanager_is_not_counted_as_firing() -> None:
    """The header and the overview's banner count what pages: a silenced alert is listed on
    the alerts screen, not counted as firing (docs/prometheus.md)."""
    from screens.live_data import firing_alerts, firing_counts

    alerts = [
        {"service": "iris", "env": "dev", "name": "error_rate", "state": "firing",
         "silence": {"id": "s1", "by": "ada"}},
        {"service": "iris", "env": "prod", "name": "latency_p99", "state": "firing"},
        {"service": "iris", "env": "staging", "name": "error_rate", "state": "resolved"},
    ]  # fmt: skip
    assert firing_counts(alerts) == {"iris/prod": 1}
    assert [(a.env, a.name) for a in firing_alerts(alerts)] == [("prod", "latency_p99")]
