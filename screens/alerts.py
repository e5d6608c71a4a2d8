"""The alerts: firing, pending and past ones (``api.alerts``), each with its one-line
explanation and the exact rollback command, and the Alertmanager silence that covers it (a
firing alert silenced there is shown ``silenced``); the selected one can be rolled back through the
confirmation and the run screen (screens/base.py), or, in read-only mode, the engine refuses
and the app shows the command to run from a session that may act.

Read every REFRESH_SECONDS like the other live screens (screens/live.py).
"""

from __future__ import annotations

import shlex
from typing import Any

from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.widgets import DataTable, Footer, Header

from core import api
from core.errors import ReleaseError
from screens.actions import ActionPlan, Subject
from screens.base import ActionScreen
from screens.common import (
    NONE,
    StatusStatic,
    StatusTable,
    age,
    clock,
    fit_last_column,
    parse_moment,
    status_text,
    sync_rows,
)
from screens.filter import narrowed
from screens.live import NO_DATA, PolledScreen
from screens.messages import AlertsLoaded, EngineFailed, PollDone

COLUMNS = (
    ("state", "State"),
    ("since", "Since"),
    ("where", "Env"),
    ("name", "Alert"),
    ("detail", "Why"),
)


def alert_key(alert: dict[str, Any]) -> str:
    """A row key that stays while the alert does: rule, service, env and when it opened."""
    return f"{alert['name']}|{alert['service']}|{alert['env']}|{alert.get('since') or ''}"


STATES = {"firing": 0, "silenced": 1, "pending": 2, "resolved": 3}


def shown_state(alert: dict[str, Any]) -> str:
    """The alert's state as a person reads it: ``silenced`` for one firing that an
    Alertmanager silence covers."""
    state = str(alert.get("state"))
    return "silenced" if state == "firing" and alert.get("silence") else state


def alert_order(alert: dict[str, Any]) -> tuple[object, ...]:
    """Firing, then silenced, then pending, then past; within a state, the newest first.
    (The engine's order follows each alert's last update, which moves at every pass of the
    collector: rows that swapped places at each poll would be hard to point at.)"""
    moment = parse_moment(alert.get("since"))
    newest_first = -moment.timestamp() if moment else 0.0
    return (STATES.get(shown_state(alert), len(STATES)), newest_first, alert_key(alert))


def command_reason(command: str) -> str:
    """The ``--reason`` of a command line (``relman rollback iris --env prod --reason '…'``)."""
    try:
        words = shlex.split(command)
    except ValueError:
        return ""
    if "--reason" in words[:-1]:
        return words[words.index("--reason") + 1]
    return ""


def summary(document: dict[str, Any]) -> tuple[str, str]:
    """``2 firing · 1 silenced · 1 pending · 4 resolved · collector pid 812``, and its
    status; then, when the Alertmanager's silences could not be read, the line saying so."""
    alerts = document.get("alerts") or []
    collector = document.get("collector")
    problem = (document.get("alertmanager") or {}).get("problem")
    unknown = f"\n{problem}; firing alerts shown firing" if problem else ""
    if not alerts:
        if collector is None:
            return f"No alerts: {NO_DATA}{unknown}", "stale"
        return f"No alerts · the collector (pid {collector}) is watching{unknown}", "passed"
    states = [shown_state(a) for a in alerts]
    counts = [f"{states.count(state)} {state}" for state in STATES if state in states]
    watching = f"collector pid {collector}" if collector else "the collector is not running"
    firing = document.get("firing") or 0
    return " · ".join([*counts, watching]) + unknown, "firing" if firing else "passed"


class AlertTable(StatusTable):
    BINDING_GROUP_TITLE = "Alerts"
    BINDINGS = [
        # Not in the footer, where b says the same.
        Binding(
            "enter", "select_cursor", "Roll back", tooltip="Roll back where it fires", show=False
        ),
    ]


class AlertsScreen(PolledScreen, ActionScreen):
    """Every alert, newest state first; ``b`` or enter rolls back where the selected fires."""

    CSS_PATH = "alerts.tcss"
    BINDING_GROUP_TITLE = "Alerts"
    BINDINGS = [
        Binding("escape", "back", "Back", tooltip="Back to the screen before"),
        Binding("b", "rollback", "Rollback", tooltip="Roll back the selected alert's env"),
        Binding("m", "monitor", "Monitor", tooltip="Charts and alerts of its environment"),
        Binding("r", "refresh", "Refresh", tooltip="Read the alerts now", show=False),
    ]
    ACTIONS = MUTATING = frozenset({"rollback"})

    def __init__(self) -> None:
        super().__init__()
        self.alerts: list[dict[str, Any]] = []
        self.collector: int | None = None
        # The alert whose rollback is being prepared (its line is the suggested reason).
        self.rolling_back: dict[str, Any] | None = None

    def compose(self) -> ComposeResult:
        yield Header()
        yield StatusStatic("Reading the alerts…", id="alerts-summary")
        table = AlertTable(id="alerts-table", cursor_type="row")
        for key, label in COLUMNS:
            table.add_column(label, key=key)
        table.loading = True
        yield table
        yield StatusStatic("", id="alert-detail")
        yield Footer(compact=True)

    def on_mount(self) -> None:
        self.poll_now()

    @property
    def table(self) -> AlertTable:
        return self.query_one(AlertTable)

    # ------------------------------------------------------------------ reading

    def action_back(self) -> None:
        self.dismiss()

    def action_refresh(self) -> None:
        self.poll_now()

    def on_run_ended(self) -> None:
        self.poll_now()

    def fetch(self) -> None:
        self.load()

    @work(thread=True, exclusive=True, exit_on_error=False, group="alerts")
    def load(self) -> None:
        try:
            project = getattr(self.app, "project", None) or api.load_project(None)
            self.post_message(AlertsLoaded(api.alerts(project)))
        except ReleaseError as error:
            self.post_message(EngineFailed("Cannot read the alerts", error.message))
        except Exception as error:  # a bug or an I/O failure: say it, never crash the UI
            line = f"{type(error).__name__}: {error}"
            self.post_message(EngineFailed("Cannot read the alerts", line))
        finally:
            self.post_message(PollDone())

    def on_engine_failed(self, message: EngineFailed) -> None:
        message.stop()
        self.table.loading = False
        self.notify(message.error, title=message.title, severity="error", timeout=10)

    # ------------------------------------------------------------------ showing

    def on_alerts_loaded(self, message: AlertsLoaded) -> None:
        message.stop()
        document = message.document
        self.alerts = sorted(document.get("alerts") or [], key=alert_order)
        self.collector = document.get("collector")
        line, status = summary(document)
        shown = self.query_one("#alerts-summary", StatusStatic)
        shown.update(status_text(shown, status, line))
        self.show_rows()
        self.refresh_bindings()

    def on_resize(self) -> None:
        self.show_rows()

    def show_rows(self) -> None:
        """The alerts, the explanations clipped to the width (the lines under the table have
        the whole of the selected one, and its rollback command)."""
        table = self.table
        # The service is named only when alerts of more than one are listed.
        several = len({alert["service"] for alert in self.alerts}) > 1
        rows = {
            alert_key(alert): (
                status_text(table, shown_state(alert)),
                Text(age(alert.get("since"))),
                Text(f"{alert['service']}/{alert['env']}" if several else str(alert["env"])),
                Text(str(alert["name"])),
                Text(str(alert.get("detail") or "")),
            )
            for alert in self.alerts
        }
        labels = [label for _key, label in COLUMNS]
        with self.app.batch_update():
            table.loading = False
            if self.focused is None:
                table.focus()
            fitted = fit_last_column(narrowed(self, rows), self.size.width, labels)
            sync_rows(table, [key for key, _label in COLUMNS], fitted)
        self.show_detail()

    def selected(self) -> dict[str, Any] | None:
        table = self.table
        if not table.row_count or table.cursor_row >= len(self.alerts):
            return None
        key = table.coordinate_to_cell_key(table.cursor_coordinate).row_key.value
        return next((a for a in self.alerts if alert_key(a) == key), None)

    def on_data_table_row_highlighted(self, message: DataTable.RowHighlighted) -> None:
        self.show_detail()
        self.refresh_bindings()

    def show_detail(self) -> None:
        """The selected alert in full: when, where, why, and the command that rolls back."""
        detail = self.query_one("#alert-detail", StatusStatic)
        alert = self.selected()
        if alert is None:
            detail.update("")
            detail.display = False
            return
        detail.display = True
        since = clock(alert.get("since"))
        release = alert.get("release") or NONE
        lines = Text.assemble(
            status_text(detail, shown_state(alert)),
            f" since {since} · {alert['service']} in {alert['env']} · release {release}\n",
            str(alert.get("detail") or ""),
        )
        silence = alert.get("silence")
        if silence:
            said = f": {silence['comment']}" if silence.get("comment") else ""
            lines.append(
                f"\nsilenced in Alertmanager by {silence.get('by') or 'someone'} until "
                f"{clock(silence.get('until'))}{said}"
            )
        command = alert.get("rollback")
        if command:
            lines.append("\nrollback: ")
            lines.append(str(command), style="bold")
            if self.relman.read_only:
                lines.append("  (read-only: run it from a session that may act)", style="dim")
            else:
                lines.append("  (b: run it, after a confirmation)", style="dim")
        detail.update(lines)

    # ------------------------------------------------------------------ actions

    def applicable(self, action: str) -> bool:
        if action == "rollback":
            alert = self.selected()
            return alert is not None and bool(alert.get("env"))
        return True

    def action_rollback(self) -> None:
        alert = self.selected()
        if alert is None:
            self.notify("Choose an alert to roll back its environment.", severity="warning")
            return
        self.rolling_back = alert
        self.prepare("rollback", Subject(alert["service"], alert.get("release"), alert["env"]))

    def suggested_reason(self, plan: ActionPlan) -> str:
        """The reason the alert's own rollback command gives, so that the command the dialog
        shows is that one, to the letter (else the alert's rule and line)."""
        alert = self.rolling_back
        if alert is None or plan.verb != "rollback":
            return ""
        return command_reason(str(alert.get("rollback") or "")) or (
            f"{alert['name']}: {alert.get('detail') or ''}".strip()
        )

    def on_data_table_row_selected(self, message: DataTable.RowSelected) -> None:
        self.action_rollback()

    def action_monitor(self) -> None:
        from screens.monitor import MonitorScreen

        alert = self.selected()
        if alert is None:
            return
        project = self.relman.project
        envs = list(project.config.environments) if project else [alert["env"]]
        self.app.push_screen(MonitorScreen(alert["service"], alert["env"], envs))
