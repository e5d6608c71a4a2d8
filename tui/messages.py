"""Messages the TUI's workers post. Workers never touch widgets: they post one of these and
the handler (on the event loop) updates the screen."""

from __future__ import annotations

from textual.message import Message

from core.api import Project, ServiceView


class ProjectLoaded(Message):
    """The project was loaded and its overview read.

    Posted on the screen that ran the load; it bubbles to the app, which keeps the project
    and shows its name in the header.
    """

    def __init__(self, project: Project, services: list[ServiceView]) -> None:
        super().__init__()
        self.project = project
        self.services = services


class ProjectLoadFailed(Message):
    """The project could not be loaded; ``error`` is the engine's one-line explanation."""

    def __init__(self, error: str) -> None:
        super().__init__()
        self.error = error
