"""The overview: every service in every environment, in promotion order.

The project is read in a thread worker after mount (the first paint never waits for it);
the worker posts :class:`~tui.messages.ProjectLoaded` or :class:`~tui.messages.ProjectLoadFailed`
and the handlers here update the table in place, row by (service, environment) key.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.content import Content
from textual.screen import Screen
from textual.widgets import DataTable, Footer, Header, Static

from core.api import ServiceView, load_project, overview
from core.errors import ReleaseError
from tui.messages import ProjectLoaded, ProjectLoadFailed

# (column key, label), left to right.
COLUMNS: tuple[tuple[str, str], ...] = (
    ("service", "Service"),
    ("env", "Env"),
    ("release", "Release"),
    ("state", "State"),
    ("since", "Since"),
    ("url", "URL"),
)

NOT_DEPLOYED = "not deployed"
_NONE = Text("—", style="dim")

Row = tuple[Text, ...]


def row_key(service: str, environment: str) -> str:
    """The key of the table row of ``service`` in ``environment``."""
    return f"{service}/{environment}"


def overview_rows(services: Iterable[ServiceView]) -> dict[str, Row]:
    """The table's rows, keyed by (service, environment), services x environments in
    promotion order. Cells are rich Text so names are never read as markup."""
    rows: dict[str, Row] = {}
    for service in services:
        for env in service.environments:
            if env.release:
                release = Text(env.release)
                if env.version:
                    release.append(f" {env.version}", style="dim")
            else:
                release = _NONE
            deployed = env.state != NOT_DEPLOYED
            rows[row_key(service.name, env.name)] = (
                Text(service.name),
                Text(env.name),
                release,
                Text(env.state, style="" if deployed else "dim"),
                Text(env.since) if env.since else _NONE,
                Text(env.url),
            )
    return rows


def nothing_deployed(services: Iterable[ServiceView]) -> bool:
    """True while no environment of any service has a release."""
    return not any(env.release for service in services for env in service.environments)


class EnvironmentTable(DataTable[Text]):
    """The services x environments table (its own type only to title its keys in the help)."""

    BINDING_GROUP_TITLE = "Table"


class OverviewScreen(Screen[None]):
    """What is live in each environment: the first screen of the app."""

    BINDING_GROUP_TITLE = "Overview"
    BINDINGS = [
        Binding(
            "r",
            "refresh",
            "Refresh",
            tooltip="Read the project again",
        ),
    ]

    def __init__(self, project_dir: Path | None = None, *, read_only: bool = False) -> None:
        super().__init__()
        self.project_dir = project_dir
        self.read_only = read_only

    def compose(self) -> ComposeResult:
        yield Header()
        yield Static("Loading the project…", id="status")
        table = EnvironmentTable(id="environments", cursor_type="row")
        for key, label in COLUMNS:
            table.add_column(label, key=key)
        table.loading = True
        yield table
        yield Footer()

    def on_mount(self) -> None:
        self.load()

    @property
    def table(self) -> EnvironmentTable:
        return self.query_one("#environments", EnvironmentTable)

    def action_refresh(self) -> None:
        """Read the project again (the table stays, and is updated in place)."""
        self.load()

    @work(thread=True, exclusive=True, exit_on_error=False, group="load")
    def load(self) -> None:
        """Read relman.toml and the overview, off the event loop; post the outcome."""
        try:
            project = load_project(self.project_dir)
            services = overview(project)
        except ReleaseError as error:
            self.post_message(ProjectLoadFailed(error.message))
        except Exception as error:  # a bug or an I/O failure: say it, never crash the UI
            self.post_message(ProjectLoadFailed(f"cannot load the project: {error}"))
        else:
            self.post_message(ProjectLoaded(project, services))

    def on_project_loaded(self, message: ProjectLoaded) -> None:
        self.show_rows(overview_rows(message.services))
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

    def show_rows(self, rows: dict[str, Row]) -> None:
        """Show ``rows``: cells that changed are updated in place, so the cursor and the
        scroll position stay; only a change of shape (services or environments added,
        removed or reordered in relman.toml) rebuilds the table."""
        table = self.table
        with self.app.batch_update():
            self.stop_loading()
            shown = [row.key.value for row in table.ordered_rows]
            if shown != list(rows):
                table.clear()
                for key, cells in rows.items():
                    table.add_row(*cells, key=key)
                return
            for key, cells in rows.items():
                for (column, _label), cell in zip(COLUMNS, cells, strict=True):
                    if table.get_cell(key, column) != cell:
                        table.update_cell(key, column, cell, update_width=True)
