"""The audit screen: what happened (``api.history``, page by page, newest first), filtered by
service and environment, and whether the audit log's hash chain holds (``api.audit_verify``)."""

from __future__ import annotations

from typing import Any

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.screen import Screen
from textual.widgets import DataTable, Footer, Header, Input, Static

from core import api
from core.errors import ReleaseError
from screens.common import (
    NONE,
    StatusStatic,
    StatusTable,
    fit_last_column,
    status_text,
    sync_rows,
    when,
)
from screens.messages import AuditLoaded, EngineFailed

COLUMNS = (("at", "When"), ("env", "Env"), ("status", "Status"), ("summary", "What"))
PAGE = 100


def parse_filter(
    text: str, services: list[str], envs: list[str]
) -> tuple[str | None, str | None, list[str]]:
    """``iris prod`` -> (service, env, other words); other words filter the summaries."""
    service = env = None
    words = []
    for word in text.split():
        if word in services and service is None:
            service = word
        elif word in envs and env is None:
            env = word
        else:
            words.append(word.lower())
    return service, env, words


class HistoryTable(StatusTable):
    BINDING_GROUP_TITLE = "History"


class AuditScreen(Screen[None]):
    """The history and the audit chain; ``/`` filters, ``m`` reads older entries."""

    CSS_PATH = "audit.tcss"
    # The table takes the focus once loaded: a focused filter would swallow the keys.
    AUTO_FOCUS = ""
    BINDING_GROUP_TITLE = "Audit"
    BINDINGS = [
        Binding("escape", "back", "Back", tooltip="Back to the screen before"),
        Binding(
            "slash", "filter", "Filter", key_display="/", tooltip="Filter by service, env, words"
        ),
        Binding("m", "more", "Older", tooltip="Read the next page of older entries"),
        Binding("r", "refresh", "Refresh", tooltip="Read the history and check the chain again"),
    ]

    def __init__(self) -> None:
        super().__init__()
        self.entries: list[dict[str, Any]] = []
        self.shown: list[dict[str, Any]] = []
        self.next_cursor: str | None = None

    def compose(self) -> ComposeResult:
        yield Header()
        yield StatusStatic("Checking the audit chain…", id="audit-chain")
        yield Input(
            placeholder="filter: service, environment or words (e.g. iris prod)", id="audit-filter"
        )
        table = HistoryTable(id="audit-log", cursor_type="row")
        for key, label in COLUMNS:
            table.add_column(label, key=key)
        table.loading = True
        yield table
        yield Static("", id="audit-detail", markup=False)
        yield Footer(compact=True)

    def on_mount(self) -> None:
        self.load(verify=True)

    @property
    def filter_text(self) -> str:
        return self.query_one("#audit-filter", Input).value

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action == "more":
            return self.next_cursor is not None or None
        return True

    def action_back(self) -> None:
        if isinstance(self.focused, Input):
            self.query_one(HistoryTable).focus()  # escape leaves the filter first
        else:
            self.dismiss()

    def action_filter(self) -> None:
        self.query_one("#audit-filter", Input).focus()

    def action_refresh(self) -> None:
        self.load(verify=True)

    def action_more(self) -> None:
        if self.next_cursor is not None:
            self.load(before=self.next_cursor)

    @on(Input.Changed, "#audit-filter")
    def filter_changed(self) -> None:
        self.load()

    @on(Input.Submitted, "#audit-filter")
    def filter_submitted(self) -> None:
        self.query_one(HistoryTable).focus()

    @work(thread=True, exclusive=True, exit_on_error=False, group="audit")
    def load(self, *, verify: bool = False, before: str | None = None) -> None:
        project = getattr(self.app, "project", None)
        try:
            if project is None:
                project = api.load_project(None)
            config = project.config
            service, env, _words = parse_filter(
                self.filter_text, list(config.services), list(config.environments)
            )
            page = api.history(project, service=service, env=env, limit=PAGE, before=before)
            checked = api.audit_verify(project) if verify else None
        except ReleaseError as error:
            self.post_message(EngineFailed("Cannot read the history", error.message))
        except Exception as error:
            self.post_message(
                EngineFailed("Cannot read the history", f"{type(error).__name__}: {error}")
            )
        else:
            self.post_message(AuditLoaded(page, checked, more=before is not None))

    def on_audit_loaded(self, message: AuditLoaded) -> None:
        table = self.query_one(HistoryTable)
        table.loading = False
        if self.focused is None:
            table.focus()
        if message.verify is not None:
            chain = self.query_one("#audit-chain", StatusStatic)
            state = "passed" if message.verify["ok"] else "failed"
            chain.update(status_text(chain, state, str(message.verify["detail"])))
        entries = list(message.page["entries"])
        self.entries = [*self.entries, *entries] if message.more else entries
        self.next_cursor = message.page.get("next_cursor")
        words = [word.lower() for word in self.filter_text.split()]
        project = getattr(self.app, "project", None)
        if project is not None:
            config = project.config
            _s, _e, words = parse_filter(
                self.filter_text, list(config.services), list(config.environments)
            )
        self.shown = [e for e in self.entries if all(w in e["summary"].lower() for w in words)]
        self.show_rows()
        self.refresh_bindings()

    def on_resize(self) -> None:
        self.show_rows()

    def show_rows(self) -> None:
        """The entries that pass the filter, the summaries clipped to the width (the line
        under the table has the whole of the selected one)."""
        table = self.query_one(HistoryTable)
        rows = {
            f"{index}": (
                Text(when(entry["at"])),
                Text(entry.get("env") or NONE),
                status_text(table, entry["status"]),
                Text(entry["summary"]),
            )
            for index, entry in enumerate(self.shown)
        }
        sync_rows(
            table,
            [key for key, _label in COLUMNS],
            fit_last_column(rows, self.size.width, [label for _key, label in COLUMNS]),
        )
        self.show_detail()

    def on_engine_failed(self, message: EngineFailed) -> None:
        self.query_one(HistoryTable).loading = False
        if self.focused is None:
            self.query_one(HistoryTable).focus()
        self.notify(message.error, title=message.title, severity="error", timeout=10)

    def on_data_table_row_highlighted(self, message: DataTable.RowHighlighted) -> None:
        self.show_detail()

    def show_detail(self) -> None:
        table = self.query_one(HistoryTable)
        line = ""
        if table.row_count and table.cursor_row < len(self.shown):
            entry = self.shown[table.cursor_row]
            line = f"{entry['at']} · {entry['actor']} · {entry['summary']}"
        self.query_one("#audit-detail", Static).update(line)
