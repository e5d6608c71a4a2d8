"""What the screens need of the app they run in (tui/app.py's RelmanApp provides it).

Screens name this Protocol rather than the app class: the app imports the screens, so a
screen importing the app would tie the two layers into one.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from rich.console import RenderableType
    from textual.signal import Signal

    from core.api import Project
    from screens.actions import ActionPlan
    from screens.runs import RunState


class AppHost(Protocol):
    """The loaded project, the session's mode, and the engine call in progress."""

    read_only: bool
    # None until a screen has loaded the project.
    project: Project | None
    # Whether a project that cannot be loaded ends the app, its one line kept in load_error
    # for the command line to print once the terminal is restored.
    exit_on_load_error: bool
    load_error: str | None
    # The run relman quits after, once the user said so.
    quitting: RunState | None
    # Published whenever the run in progress changes (a line, progress, its end).
    run_changed: Signal[RunState]

    @property
    def busy(self) -> bool:
        """Whether an engine call started from the app is still going."""
        ...

    def can_start(self, verb: str) -> bool:
        """Whether ``verb`` may start now; when not, the app has said why."""
        ...

    def start_run(self, plan: ActionPlan, reason: str = "") -> RunState | None:
        """Run ``plan`` in a worker of the app (None: it could not start)."""
        ...

    def cancel_run(self, run: RunState) -> None:
        """Ask the engine to stop ``run``, after the user confirmed it."""
        ...

    def exit(
        self, result: None = None, return_code: int = 0, message: RenderableType | None = None
    ) -> None:
        """Leave relman (Textual's App.exit)."""
        ...
