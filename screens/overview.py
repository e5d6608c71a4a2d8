"""The overview: every service in every environment, in promotion order, and its candidate.

The project is read in a thread worker after mount (the first paint never waits for it);
the worker posts :class:`~tui.messages.ProjectLoaded` (environments, from the ledger) and then
:class:`~tui.messages.StatusLoaded` (the candidate, from git and DVC), and the handlers update
the table in place, row by (service, environment) key. A timer polls again five seconds after
each poll ends, so polls never overlap; a hidden overview skips its polls and catches up when
it comes back.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any

from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.content import Content
from textual.timer import Timer
from textual.widgets import DataTable, Footer, Header, Static

from core import api
from core.api import ServiceView
from core.errors import ReleaseError
from screens.actions import Subject
from screens.base import ActionScreen
from screens.common import (
    NONE,
    StatusTable,
    age,
    fit_last_column,
    short,
    status_style,
    sync_rows,
)
from tui.messages import PollDone, ProjectLoaded, ProjectLoadFailed, StatusLoaded

# (column key, label), left to right.
COLUMNS: tuple[tuple[str, str], ...] = (
    ("service", "Service"),
    ("env", "Env"),
    ("release", "Release"),
    ("state", "State"),
    ("since", "Since"),
    ("detail", "URL / why"),
)

NOT_DEPLOYED = "not deployed"
CANDIDATE = "@candidate"
_NONE = Text(NONE, style="dim")

Row = tuple[Text, ...]


def row_key(service: str, environment: str) -> str:
    """The key of the table row of ``service`` in ``environment`` (or its CANDIDATE)."""
    return f"{service}/{environment}"


def url_text(url: str) -> str:
    """``127.0.0.1:3100``: the scheme is left out when it is plain http, to fit 80 columns."""
    return url.removeprefix("http://")


class EnvironmentTable(StatusTable):
    """The services x environments table (its own type only to title its keys in the help)."""

    BINDING_GROUP_TITLE = "Table"
    BINDINGS = [
        Binding("enter", "select_cursor", "Open", tooltip="The release of this row"),
    ]


def candidate_state(candidate: dict[str, Any] | None) -> tuple[str, str]:
    """``clean``, ``dirty`` or ``stale``, and the first reason (the commit when clean)."""
    if candidate is None:
        return "loading", "reading git and DVC…"
    if "error" in candidate:
        return "unknown", str(candidate["error"])
    problems = list(candidate.get("problems") or [])
    git = candidate.get("git") or {}
    if git.get("dirty"):
        return "dirty", problems[0] if problems else "uncommitted changes"
    if problems:
        return "stale", problems[0]
    return "clean", f"{git.get('short', '')} {git.get('message', '')}".strip()


def overview_rows(
    table: StatusTable,
    services: Iterable[ServiceView],
    candidates: dict[str, dict[str, Any]] | None = None,
) -> dict[str, Row]:
    """The table's rows, keyed by (service, environment): each service's environments in
    promotion order, then its candidate. Cells are rich Text, never read as markup."""
    rows: dict[str, Row] = {}
    for service in services:
        for env in service.environments:
            if env.release:
                release = Text(short(env.release))
                if env.version:
                    release.append(f" {env.version}", style="dim")
            else:
                release = _NONE
            rows[row_key(service.name, env.name)] = (
                Text(service.name),
                Text(env.name),
                release,
                Text(env.state, style=status_style(table, env.state)),
                Text(age(env.since)) if env.since else _NONE,
                Text(url_text(env.url)),
            )
        candidate = (candidates or {}).get(service.name)
        state, why = candidate_state(candidate)
        release_id = str((candidate or {}).get("release") or "")
        shown = short(release_id) + ("-dirty" if release_id.endswith("-dirty") else "")
        committed = ((candidate or {}).get("git") or {}).get("committed_at")
        rows[row_key(service.name, CANDIDATE)] = (
            Text(service.name),
            Text("candidate", style="italic"),
            Text(shown) if release_id else _NONE,
            Text(state, style=status_style(table, state)),
            Text(age(committed)) if committed else _NONE,
            Text(why),
        )
    return rows


def nothing_deployed(services: Iterable[ServiceView]) -> bool:
    """True while no environment of any service has a release."""
    return not any(env.release for service in services for env in service.environments)


class OverviewScreen(ActionScreen):
    """What is live in each environment: the first screen of the app."""

    REFRESH_SECONDS = 5.0
    BINDING_GROUP_TITLE = "Overview"
    BINDINGS = [
        Binding("r", "refresh", "Refresh", tooltip="Read the project again"),
        Binding("b", "rollback", "Rollback", tooltip="Roll the selected environment back"),
    ]
    ACTIONS = MUTATING = frozenset({"rollback"})

    def __init__(self, project_dir: Path | None = None, *, read_only: bool = False) -> None:
        super().__init__()
        self.project_dir = project_dir
        self.read_only = read_only
        self.services: list[ServiceView] = []
        self.candidates: dict[str, dict[str, Any]] = {}
        # api.status's word on each environment: {service: {env: {..., "note"}}}.
        self.observed: dict[str, dict[str, dict[str, Any]]] = {}
        self.poll_timer: Timer | None = None
        self.missed_poll = False
        self.last_status_error = ""

    def compose(self) -> ComposeResult:
        yield Header()
        yield Static("Loading the project…", id="status")
        table = EnvironmentTable(id="environments", cursor_type="row")
        for key, label in COLUMNS:
            table.add_column(label, key=key)
        table.loading = True
        yield table
        yield Static("", id="row-detail", markup=False)
        yield Footer(compact=True)

    def on_mount(self) -> None:
        self.load()

    @property
    def table(self) -> EnvironmentTable:
        return self.query_one("#environments", EnvironmentTable)

    # ------------------------------------------------------------------ polling

    def action_refresh(self) -> None:
        """Read the project again (the table stays, and is updated in place)."""
        if self.poll_timer is not None:
            self.poll_timer.stop()
            self.poll_timer = None
        self.load()

    @property
    def showing(self) -> bool:
        """On top, or right under a modal dialog (Screen.is_current also counts any screen
        that was ever shown, Textual keeps them as background screens)."""
        stack = self.app.screen_stack
        return stack[-1] is self or (stack[-1].is_modal and len(stack) > 1 and stack[-2] is self)

    def poll(self) -> None:
        self.poll_timer = None
        if self.showing:
            self.load()
        else:
            self.missed_poll = True

    def on_resize(self) -> None:
        if self.services:
            self.show_rows()

    def on_screen_resume(self) -> None:
        if self.missed_poll:
            self.missed_poll = False
            self.load()

    def on_run_ended(self) -> None:
        """A release action ended: what is live may have changed."""
        self.action_refresh()

    @work(thread=True, exclusive=True, exit_on_error=False, group="load")
    def load(self) -> None:
        """Read relman.toml, the environments, then the candidates, off the event loop."""
        try:
            project = api.load_project(self.project_dir)
            services = api.overview(project)
        except ReleaseError as error:
            self.post_message(ProjectLoadFailed(error.message))
            self.post_message(PollDone())
            return
        except Exception as error:  # a bug or an I/O failure: say it, never crash the UI
            self.post_message(ProjectLoadFailed(f"cannot load the project: {error}"))
            self.post_message(PollDone())
            return
        self.post_message(ProjectLoaded(project, services))
        try:
            self.post_message(StatusLoaded(api.status(project)))
        except ReleaseError as error:
            self.post_message(StatusLoaded({"error": error.message}))
        except Exception as error:
            self.post_message(StatusLoaded({"error": f"cannot read the candidate: {error}"}))
        self.post_message(PollDone())

    def on_poll_done(self, message: PollDone) -> None:
        message.stop()
        if self.poll_timer is None:
            self.poll_timer = self.set_timer(self.REFRESH_SECONDS, self.poll)

    # ------------------------------------------------------------------ showing

    def on_project_loaded(self, message: ProjectLoaded) -> None:
        self.services = message.services
        self.show_rows()
        status = self.query_one("#status", Static)
        status.remove_class("-error")
        if nothing_deployed(message.services):
            first = next(iter(message.project.config.environments), "dev")
            service = next(iter(message.project.config.services), "SERVICE")
            if self.read_only:
                status.update("Nothing deployed yet.")
            else:
                status.update(
                    Content.assemble(
                        "Nothing deployed yet — ",
                        ("relman release", "bold"),
                        f" tests, builds and deploys {service} to {first}",
                    )
                )
        else:
            status.update("")
        status.display = bool(status.content)

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
        self.observed = {s["name"]: s["environments"] for s in message.status["services"]}
        self.show_rows()

    def on_project_load_failed(self, message: ProjectLoadFailed) -> None:
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
        """Show the rows, updated in place (see sync_rows)."""
        table = self.table
        rows = fit_last_column(
            overview_rows(table, self.services, self.candidates),
            self.size.width,
            [label for _key, label in COLUMNS],
        )
        with self.app.batch_update():
            self.stop_loading()
            sync_rows(table, [key for key, _label in COLUMNS], rows)
        self.show_detail()

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
                line = f"{service} in {env}: {environment.state} at {environment.url}"
                if environment.release:
                    line += f" · release {environment.release}"
                note = self.observed.get(service, {}).get(env, {}).get("note")
                if note:
                    line += f" · {note}"
        detail = self.query_one("#row-detail", Static)
        detail.update(line)

    def on_data_table_row_selected(self, message: DataTable.RowSelected) -> None:
        self.open_release()

    def open_release(self) -> None:
        from screens.release import ReleaseScreen

        subject = self.subject()
        if subject is not None:
            self.app.push_screen(ReleaseScreen(subject))

    def action_rollback(self) -> None:
        subject = self.subject()
        if subject is None or subject.env in (None, CANDIDATE):
            self.notify("Choose an environment's row to roll back.", severity="warning")
            return
        self.prepare("rollback", subject)

    def applicable(self, action: str) -> bool:
        if action == "rollback":
            subject = self.subject()
            return subject is not None and subject.release is not None
        return True
