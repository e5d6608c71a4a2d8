"""The logs of one environment: the output of the ``bentoml serve`` process that serves it
(``serve.log``) and the proxy's access log, their last lines, followed as they grow.

Every REFRESH_SECONDS a thread worker asks the engine for what each log gained since the
last read (``api.serve_log``, ``api.access_log``: whole lines after a position); the panes
append them and keep the newest in view. A new instance (a promotion, a rollback) or a
rotated access log starts its pane over. ``/`` narrows both panes to the lines holding the
words typed (screens/filter.py); ``n`` goes to the service's next environment.
"""

from __future__ import annotations

import json
from collections import deque
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING

from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.message import Message
from textual.widgets import Footer, Header, Log, Static

from core import api
from core.errors import ReleaseError
from screens.filter import narrowed
from screens.live import PolledScreen
from screens.messages import EngineFailed, PollDone

if TYPE_CHECKING:
    from core.api import LogPosition, LogTail

# Lines each pane keeps (older ones are dropped) and asks for when it starts.
KEEP = 2000
FIRST = 200
PANES = ("serve", "access")


class LogsLoaded(Message):
    """What the two logs of (service, env) gained since the last read."""

    def __init__(self, service: str, env: str, tails: dict[str, LogTail]) -> None:
        super().__init__()
        self.service, self.env, self.tails = service, env, tails


def access_line(line: str) -> str:
    """``12:03:04  POST /predict  200  9.2 ms  312 B  -> 127.0.0.1:41234`` of one JSON record
    of the access log (a line that is not one is shown as it is)."""
    try:
        record = json.loads(line)
        moment = datetime.fromtimestamp(float(record["t"])).strftime("%H:%M:%S")
        return (
            f"{moment}  {record.get('method', '')} {record.get('path', '')}  "
            f"{record.get('status', '')}  {float(record.get('ms') or 0):.1f} ms  "
            f"{record.get('bytes', 0)} B  -> {record.get('upstream') or 'no upstream'}"
        )
    except (ValueError, TypeError, KeyError, OverflowError, OSError):
        return line


class LogsScreen(PolledScreen):
    """``serve.log`` above, the access log below, both following what is written."""

    CSS_PATH = "logs.tcss"
    REFRESH_SECONDS = 1.0
    BINDING_GROUP_TITLE = "Logs"
    BINDINGS = [
        Binding("escape", "back", "Back", tooltip="Back to the screen before"),
        Binding("n", "next_env", "Next env", tooltip="The service's next environment"),
        Binding("r", "refresh", "Refresh", tooltip="Read the logs now", show=False),
    ]

    def __init__(self, service: str, env: str, envs: list[str]) -> None:
        super().__init__()
        self.service = service
        self.env = env
        self.envs = envs or [env]
        self.lines: dict[str, deque[str]] = {pane: deque(maxlen=KEEP) for pane in PANES}
        self.positions: dict[str, LogPosition | None] = dict.fromkeys(PANES)

    def compose(self) -> ComposeResult:
        yield Header()
        yield Static(self.heading(), id="logs-title", markup=False)
        with Vertical(id="logs-body", classes="filterable"):
            yield Static("Output · reading…", id="logs-serve-title", classes="heading")
            yield Log(id="logs-serve", max_lines=KEEP)
            yield Static("Access log · reading…", id="logs-access-title", classes="heading")
            yield Log(id="logs-access", max_lines=KEEP)
        yield Footer(compact=True)

    def heading(self) -> str:
        return f"{self.service} in {self.env} · the newest lines, followed as they come"

    def on_mount(self) -> None:
        self.poll_now()

    # ------------------------------------------------------------------ keys

    def action_back(self) -> None:
        self.dismiss()

    def action_refresh(self) -> None:
        self.poll_now()

    def action_next_env(self) -> None:
        index = self.envs.index(self.env) if self.env in self.envs else -1
        self.env = self.envs[(index + 1) % len(self.envs)]
        self.positions = dict.fromkeys(PANES)
        for pane in PANES:
            self.lines[pane].clear()
            self.query_one(f"#logs-{pane}", Log).clear()
        self.query_one("#logs-title", Static).update(self.heading())
        self.poll_now()

    # ------------------------------------------------------------------ reading

    def fetch(self) -> None:
        self.load(self.service, self.env, dict(self.positions))

    @work(thread=True, exclusive=True, exit_on_error=False, group="logs")
    def load(self, service: str, env: str, after: dict[str, LogPosition | None]) -> None:
        try:
            project = getattr(self.app, "project", None) or api.load_project(None)
            tails = {
                "serve": api.serve_log(project, service, env, after=after["serve"], lines=FIRST),
                "access": api.access_log(project, service, env, after=after["access"], lines=FIRST),
            }
            self.post_message(LogsLoaded(service, env, tails))
        except ReleaseError as error:
            self.post_message(EngineFailed("Cannot read the logs", error.message))
        except Exception as error:  # a bug or an I/O failure: say it, never crash the UI
            self.post_message(
                EngineFailed("Cannot read the logs", f"{type(error).__name__}: {error}")
            )
        finally:
            self.post_message(PollDone())

    def on_engine_failed(self, message: EngineFailed) -> None:
        message.stop()
        self.notify(message.error, title=message.title, severity="error", timeout=10)

    # ------------------------------------------------------------------ showing

    def on_logs_loaded(self, message: LogsLoaded) -> None:
        message.stop()
        if (message.service, message.env) != (self.service, self.env):
            return  # read for an environment left since
        project = getattr(self.app, "project", None)
        for pane, tail in message.tails.items():
            self.positions[pane] = tail.position
            where = ""
            if tail.path:
                path = Path(tail.path)
                root = project.root if project is not None else None
                where = (
                    f" · {path.relative_to(root) if root and path.is_relative_to(root) else path}"
                )
            title = "Output" if pane == "serve" else "Access log"
            self.query_one(f"#logs-{pane}-title", Static).update(f"{title} · {tail.title}{where}")
            shown = [access_line(line) for line in tail.lines] if pane == "access" else tail.lines
            log = self.query_one(f"#logs-{pane}", Log)
            if tail.reset:
                self.lines[pane].clear()
                log.clear()
            self.lines[pane].extend(shown)
            kept = narrowed(self, {str(index): line for index, line in enumerate(shown)})
            kept_lines = list(kept.values())
            if kept_lines:
                log.write_lines(kept_lines)

    def show_rows(self) -> None:
        """Both panes again, through the filter (``/``)."""
        for pane in PANES:
            log = self.query_one(f"#logs-{pane}", Log)
            log.clear()
            lines = {str(index): line for index, line in enumerate(self.lines[pane])}
            log.write_lines(list(narrowed(self, lines).values()))
