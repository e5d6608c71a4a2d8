"""The relman Textual app: the header, the keys every screen shares, the command palette.

The app holds no data of its own beyond the loaded project; screens read the engine through
core.api in workers and post what they found (tui.messages), which bubbles up here.
"""

from __future__ import annotations

from collections.abc import Iterable
from functools import partial
from pathlib import Path

from textual.app import App, SystemCommand
from textual.binding import Binding
from textual.screen import Screen

from core.api import Project
from screens.help import HelpScreen
from screens.overview import OverviewScreen
from tui.messages import ProjectLoaded

READ_ONLY = "READ-ONLY"


class RelmanApp(App[None]):
    """relman in a terminal: what is live where, and the release actions on it."""

    TITLE = "relman"
    # The screens' styles are listed here rather than in each Screen.CSS_PATH: Textual 8 does
    # not load the CSS_PATH of the default screen (get_default_screen), only of pushed ones.
    CSS_PATH = ["app.tcss", "../screens/overview.tcss"]
    BINDING_GROUP_TITLE = "App"
    BINDINGS = [
        Binding("q", "quit", "Quit", tooltip="Leave relman"),
        Binding(
            "question_mark",
            "help",
            "Keys",
            key_display="?",
            tooltip="Every key of this screen",
        ),
    ]

    def __init__(self, project_dir: Path | None = None, *, read_only: bool = False) -> None:
        super().__init__()
        self.project_dir = project_dir
        self.read_only = read_only
        # Set once a screen has loaded the project (ProjectLoaded bubbles up to the app).
        self.project: Project | None = None
        self.sub_title = self.compose_sub_title(None)
        self.set_class(read_only, "-read-only")

    def compose_sub_title(self, project_name: str | None) -> str:
        """The header's sub-title: the project's name, and READ-ONLY when it is."""
        parts = [part for part in (project_name, READ_ONLY if self.read_only else None) if part]
        return " · ".join(parts)

    def get_default_screen(self) -> Screen[None]:
        return OverviewScreen(self.project_dir, read_only=self.read_only)

    def on_project_loaded(self, message: ProjectLoaded) -> None:
        self.project = message.project
        self.sub_title = self.compose_sub_title(message.project.config.project.name)

    def action_help(self) -> None:
        """Show every key of the current screen (and of the app)."""
        if isinstance(self.screen, HelpScreen):
            return
        self.push_screen(HelpScreen(self.screen))

    def get_system_commands(self, screen: Screen[object]) -> Iterable[SystemCommand]:
        """Textual's own commands, Help, and every described key of the current screen
        (Refresh on the overview), so the palette offers what the keys do."""
        yield from super().get_system_commands(screen)
        yield SystemCommand("Help", "Every key of this screen", self.action_help)
        for node, binding, enabled, tooltip in screen.active_bindings.values():
            if node is screen and enabled and binding.description and not binding.system:
                yield SystemCommand(
                    binding.description,
                    tooltip or binding.description,
                    partial(screen.run_action, binding.action),
                )
