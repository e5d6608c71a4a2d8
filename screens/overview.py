"""The overview: every service in every environment, in promotion order, and its candidate.

Handed the project by the command line (which read relman.toml already), the screen paints
its rows at once, from relman.toml and the environments as the ledger recorded them
(api.recorded_overview: one SQLite query through the standard library); the candidates say
``loading`` until the first poll. Otherwise (or when the ledger cannot be read that way: an
older schema, busy) the rows wait for the first poll and the table shows it is loading.

The project is read in a thread worker after the first paint (which never waits for git,
DVC or the metric store); the worker posts :class:`~screens.messages.ProjectLoaded`
(environments, from the ledger, and what really serves) and then
:class:`~screens.messages.StatusLoaded` (the candidate, from git and DVC), and the handlers
update the table in place, row by (service, environment) key. Each poll also reads the
traffic of every deployed environment from the metric store (request rate, p95 of the last
minutes, firing alerts: :class:`~screens.messages.LiveLoaded`); the candidate (git and DVC,
the costly part) is read again only every STATUS_SECONDS, or at once after a run or on
``r``. Polls follow screens/live.py: the next is armed when one ends, never overlapping,
skipped while hidden.

Above the table, what on-call must see first: the alerts firing and the environments a
killed relman left interrupted, with the command that takes them over (the header counts
them on every screen); under it, the selected row's whole story and what happened lately.
The table is as tall as its rows, and what happened lately takes the rest; the last line says
whether the watcher (``relman watch``) runs and what it last started.

What a poll reads is in screens/overview_poll.py; the cells, and the columns that fit the
width, are made in screens/overview_rows.py; the lines around the table in
screens/overview_signals.py.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from textual.app import ComposeResult
from textual.binding import Binding
from textual.content import Content
from textual.widgets import DataTable, Footer, Header, Static

from screens.base import ActionScreen
from screens.common import StatusTable, age, sync_rows
from screens.filter import narrowed
from screens.messages import (
    LiveLoaded,
    ProjectLoaded,
    ProjectLoadFailed,
    RecentLoaded,
    SignalsChanged,
    StatusLoaded,
)
from screens.overview_poll import OverviewPolls, WatcherLoaded
from screens.overview_rows import (
    CANDIDATE,
    NARROW,
    OPEN_PHASES,
    Columns,
    candidate_state,
    nothing_deployed,
    overview_rows,
    rollout_of,
    row_key,
)
from screens.overview_signals import RecentPanel, SignalsBar, environment_story, header_summary

if TYPE_CHECKING:
    from core import api
    from core.api import ServiceView
    from screens.actions import Subject


class EnvironmentTable(StatusTable):
    """The services x environments table (its own type only to title its keys in the help)."""

    BINDING_GROUP_TITLE = "Table"
    BINDINGS = [
        Binding("enter", "select_cursor", "Open", tooltip="The release of this row"),
    ]


class OverviewScreen(OverviewPolls, ActionScreen):
    """What is live in each environment: the first screen of the app."""

    BINDING_GROUP_TITLE = "Overview"
    BINDINGS = [
        # Not in the footer (no room at 80 columns): in the help and the command palette.
        Binding("r", "refresh", "Refresh", tooltip="Read the project again", show=False),
        Binding("m", "monitor", "Monitor", tooltip="Charts and alerts of the selected env"),
        Binding("p", "promote", "Promote", tooltip="Deploy the selected release to the next env"),
        Binding("b", "rollback", "Rollback", tooltip="Roll the selected environment back"),
        Binding(
            "R",
            "rollout",
            "Rollout",
            tooltip="Steps and checks of the selected env's rollout",
            show=False,
        ),
    ]
    ACTIONS = MUTATING = frozenset({"promote", "rollback"})

    def __init__(
        self,
        project_dir: Path | None = None,
        *,
        read_only: bool = False,
        project: api.Project | None = None,
        recorded: list[ServiceView] | None = None,
    ) -> None:
        super().__init__(project_dir, project)
        self.read_only = read_only
        # The first paint's rows, when the command line read them with the project.
        self.recorded = recorded
        self.services: list[ServiceView] = []
        self.candidates: dict[str, dict[str, Any]] = {}
        self.columns: Columns = NARROW
        # The environments and their ages as last shown: unchanged, a poll redraws nothing.
        self.shown_key: tuple[object, ...] = ()
        # The width the rows were last made for (their last cell is clipped to fit it).
        self.shown_width = 0
        self.last_status_error = ""
        self.last_live_error = ""
        # What the header was last told (SignalsChanged), to tell it only of a change.
        self.signals_summary = ""

    def compose(self) -> ComposeResult:
        yield Header()
        yield SignalsBar(id="signals")
        yield Static("Loading the project…", id="status")
        table = EnvironmentTable(id="environments", cursor_type="row")
        for key, label in self.columns:
            table.add_column(label, key=key)
        # Painted at once from the ledger's record when the project is at hand (on_mount).
        table.loading = self.loaded is None
        yield table
        yield Static("", id="row-detail", markup=False)
        yield RecentPanel("", id="recent")
        # Whether `relman watch` runs and what it last started (hidden until first read).
        watcher = Static("", id="watcher", markup=False)
        watcher.display = False
        yield watcher
        yield Footer(compact=True)

    def on_mount(self) -> None:
        self.show_recorded()
        # The first poll starts once the screen is painted: its thread (the engine, SQLite,
        # then git and DVC) would otherwise share the interpreter with the first paint.
        self.call_after_refresh(self.poll_now)

    def show_recorded(self) -> None:
        """The rows of the first paint, when the project is at hand: each environment as the
        ledger recorded it (what really serves, the traffic and the candidates follow from
        the first poll), as the command line read it with the project (api.first_screen) or
        read here. A ledger that cannot be read so leaves the table loading."""
        if self.loaded is None:
            return
        from core import api  # loaded already: the command line read relman.toml with it

        project, services = self.loaded[0], self.recorded
        self.recorded = None
        if services is None:
            try:
                services = api.recorded_overview(project)
            except Exception:  # an older schema, a busy or broken file: the first poll says
                self.table.loading = True
                return
        self.show_environments(project, services)

    @property
    def table(self) -> EnvironmentTable:
        return self.query_one("#environments", EnvironmentTable)

    # ------------------------------------------------------------------ polling

    def on_resize(self) -> None:
        # Screens get a resize at mount too: the rows were made for this width already.
        if self.services and self.size.width != self.shown_width:
            self.show_rows()

    def on_run_ended(self) -> None:
        """A release action ended: what is live may have changed."""
        self.action_refresh()

    # ------------------------------------------------------------------ showing

    def on_project_loaded(self, message: ProjectLoaded) -> None:
        self.show_environments(message.project, message.services)

    def show_environments(self, project: api.Project, services: list[ServiceView]) -> None:
        """Show ``services``' environments (and the line above the table), unless they and
        their ages are what is shown already."""
        ages = tuple(age(e.since) for s in services for e in s.environments)
        key = (services, ages)
        if key == self.shown_key:
            return  # the same environments at the same ages: nothing to redraw
        self.shown_key = key
        self.services = services
        self.show_rows()
        status = self.query_one("#status", Static)
        status.remove_class("-error")
        status.update(nothing_deployed(project, services, read_only=self.read_only))
        status.display = bool(status.content)
        self.show_signals()

    def show_signals(self) -> None:
        """The firing alerts and the interrupted environments above the table, and their
        count in the header (told only when it changed)."""
        self.query_one(SignalsBar).show(self.services, self.live.alerts)
        summary = header_summary(self.services, self.live.alerts)
        if summary != self.signals_summary:
            self.signals_summary = summary
            self.post_message(SignalsChanged(summary))

    def on_recent_loaded(self, message: RecentLoaded) -> None:
        message.stop()
        self.query_one(RecentPanel).show(message.entries, message.error)

    def on_watcher_loaded(self, message: WatcherLoaded) -> None:
        """The line under what happened lately: ``watcher: running on main, last started run
        #3 retrain for iris (data)`` or ``watcher: off (relman watch --detach)``."""
        message.stop()
        from screens.pipelines_view import watcher_line

        if message.watcher is None:
            line = f"watcher: {message.error}"
        else:
            line = watcher_line(message.watcher, read_only=self.read_only)
        watcher = self.query_one("#watcher", Static)
        watcher.update(line)
        watcher.display = True

    def on_live_loaded(self, message: LiveLoaded) -> None:
        message.stop()
        error = message.live.error
        if error and error != self.last_live_error:
            self.notify(error, title="Cannot read the metric store", severity="error")
        self.last_live_error = error
        if message.live != self.live:
            self.live = message.live
            self.show_rows()
            self.show_signals()

    def on_status_loaded(self, message: StatusLoaded) -> None:
        message.stop()
        error = message.status.get("error")
        if error:
            if error != self.last_status_error:
                self.notify(str(error), title="Cannot read the candidate", severity="error")
            self.last_status_error = str(error)
            self.candidates = {service.name: {"error": error} for service in self.services}
            self.show_rows()
            return
        self.last_status_error = ""
        self.candidates = {s["name"]: s["candidate"] for s in message.status["services"]}
        self.show_rows()

    def on_project_load_failed(self, message: ProjectLoadFailed) -> None:
        app = self.relman
        if app.exit_on_load_error and app.project is None:
            # Nothing to show yet: leave, and the command line says why (its one line).
            app.load_error = message.error
            app.exit(return_code=message.exit_code)
            return
        self.shown_key = ()  # the next load that works shows everything again
        self.stop_loading()
        status = self.query_one("#status", Static)
        status.update(Content(message.error))
        status.add_class("-error")
        status.display = True
        self.notify(message.error, title="Cannot load the project", severity="error")

    def stop_loading(self) -> None:
        """Drop the loading state; the table takes the focus it could not take while loading."""
        table = self.table
        table.loading = False
        if self.focused is None:
            table.focus()

    def show_rows(self) -> None:
        """Show the rows, updated in place (see sync_rows); the columns change only when the
        width calls for the other layout."""
        table = self.table
        self.shown_width = self.size.width
        columns, rows = overview_rows(
            table, self.services, self.candidates, self.live, self.shown_width
        )
        with self.app.batch_update():
            self.stop_loading()
            if columns != self.columns:
                self.set_columns(table, columns)
            sync_rows(table, [key for key, _label in columns], narrowed(self, rows))
        self.show_detail()

    def set_columns(self, table: EnvironmentTable, columns: Columns) -> None:
        row = table.cursor_row
        table.clear(columns=True)
        for key, label in columns:
            table.add_column(label, key=key)
        self.columns = columns
        self.call_after_refresh(table.move_cursor, row=row)

    # ------------------------------------------------------------------ the selected row

    def selected(self) -> tuple[str, str] | None:
        """(service, environment or CANDIDATE) of the cursor row."""
        table = self.table
        if not table.row_count:
            return None
        key = table.coordinate_to_cell_key(table.cursor_coordinate).row_key.value
        service, _, env = str(key).partition("/")
        return service, env

    def selected_environment(self) -> Any:
        found = self.selected()
        if found is None:
            return None
        service, env = found
        view = next((s for s in self.services if s.name == service), None)
        return next((e for e in view.environments if e.name == env), None) if view else None

    def subject(self) -> Subject | None:
        found = self.selected()
        if found is None:
            return None
        from screens.actions import Subject  # not before the first paint

        service, env = found
        if env == CANDIDATE:
            return Subject(service)
        environment = self.selected_environment()
        release = environment.release if environment is not None else None
        return Subject(service, release, env)

    def on_data_table_row_highlighted(self, message: DataTable.RowHighlighted) -> None:
        self.show_detail()
        self.refresh_bindings()

    def show_detail(self) -> None:
        """The whole story of the selected row, on the line under the table."""
        found = self.selected()
        line = ""
        if found is not None:
            service, env = found
            if env == CANDIDATE:
                state, why = candidate_state(self.candidates.get(service))
                line = f"{service} candidate: {state}: {why}"
            elif (environment := self.selected_environment()) is not None:
                line = environment_story(service, environment, self.live.of(row_key(service, env)))
        self.query_one("#row-detail", Static).update(line)

    def on_data_table_row_selected(self, message: DataTable.RowSelected) -> None:
        self.open_release()

    def open_release(self) -> None:
        from screens.release import ReleaseScreen

        subject = self.subject()
        if subject is not None:
            self.app.push_screen(ReleaseScreen(subject))

    def action_monitor(self) -> None:
        """The monitor of the selected environment (from the candidate's row: the furthest
        environment it is live in, else the first)."""
        from screens.monitor import MonitorScreen

        found = self.selected()
        if found is None:
            return
        service, env = found
        view = next((s for s in self.services if s.name == service), None)
        if view is None:
            return
        envs = [e.name for e in view.environments]
        if env == CANDIDATE:
            live = [e.name for e in view.environments if e.release]
            env = live[-1] if live else envs[0]
        self.app.push_screen(MonitorScreen(service, env, envs))

    def action_rollout(self) -> None:
        """The rollout pane of the selected environment (from the candidate's row: the
        environment where one of its rollouts goes on)."""
        from screens.rollout import RolloutScreen

        found = self.selected()
        if found is None:
            return
        service, env = found
        view = next((s for s in self.services if s.name == service), None)
        if view is None:
            return
        envs = [e.name for e in view.environments]
        if env == CANDIDATE:
            going = [
                e.name
                for e in view.environments
                if (rollout_of(e) or {}).get("phase") in OPEN_PHASES
            ]
            if not going:
                self.notify("Choose an environment's row to see its rollout.", severity="warning")
                return
            env = going[0]
        self.app.push_screen(RolloutScreen(service, env, envs))

    def action_rollback(self) -> None:
        subject = self.subject()
        if subject is None or subject.env in (None, CANDIDATE):
            self.notify("Choose an environment's row to roll back.", severity="warning")
            return
        self.prepare("rollback", subject)

    def action_promote(self) -> None:
        subject = self.subject()
        if subject is None or (subject.env is not None and subject.release is None):
            self.notify(
                "Choose the candidate or a deployed release to promote.", severity="warning"
            )
            return
        self.prepare("promote", subject)

    def applicable(self, action: str) -> bool:
        subject = self.subject()
        if action == "rollback":
            return subject is not None and subject.release is not None
        if action == "promote":
            return subject is not None and (subject.env is None or subject.release is not None)
        return True
