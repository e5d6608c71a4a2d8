"""One step of a pipeline run in full (``o`` on the pipeline view, screens/pipelines.py):
its whole detail and its output lines as the engine recorded them, in a dialog that
scrolls; escape, o or q closes it."""

from __future__ import annotations

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical, VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Static


class StepOutputScreen(ModalScreen[None]):
    """One step's whole detail and its output lines; escape, o or q closes it."""

    CSS_PATH = "pipelines.tcss"
    BINDING_GROUP_TITLE = "Output"
    BINDINGS = [
        Binding("escape", "dismiss", "Close"),
        Binding("o", "dismiss", "Close", show=False),
        Binding("q", "dismiss", "Close", show=False),
    ]

    def __init__(self, title: str, lines: list[str]) -> None:
        super().__init__()
        self.title_line = title
        self.lines = lines

    def compose(self) -> ComposeResult:
        with Vertical(id="output-dialog") as dialog:
            dialog.border_subtitle = "escape, o or q to close"
            yield Static(self.title_line, id="output-title", markup=False)
            with VerticalScroll(id="output-scroll"):
                yield Static(Text("\n".join(self.lines)), id="output-lines", markup=False)

    def on_mount(self) -> None:
        scroll = self.query_one("#output-scroll", VerticalScroll)
        scroll.focus()
        # The last lines say how a step ended: start there.
        self.call_after_refresh(scroll.scroll_end, animate=False)
