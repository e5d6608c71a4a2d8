"""``:``: jump to a view by name, as in k9s. A one-line prompt at the bottom completes the
views' names as you type (tab or → takes the completion), lists what matches above it (↑ ↓
to choose), enter goes there, escape stays. Dismissed with the line to open, or None; the
app opens it (screens/views.py)."""

from __future__ import annotations

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.suggester import SuggestFromList
from textual.widgets import Input, OptionList, Static
from textual.widgets.option_list import Option

from screens.views import VIEWS


class JumpScreen(ModalScreen[str | None]):
    """``:monitor prod``: the prompt and the views that match what is typed."""

    CSS_PATH = "jump.tcss"
    BINDING_GROUP_TITLE = "Jump"
    BINDINGS = [
        Binding("escape", "cancel", "Cancel", tooltip="Stay where you are"),
        Binding("tab", "complete", "Complete", tooltip="Take the highlighted name"),
        Binding("down", "move(1)", "Next", show=False),
        Binding("up", "move(-1)", "Previous", show=False),
    ]

    def __init__(self, names: list[str]) -> None:
        """``names``: what may be typed (``monitor``, ``monitor prod``...), likeliest first."""
        super().__init__()
        self.names = names
        self.helps = {view.name: view.help for view in VIEWS}

    def compose(self) -> ComposeResult:
        with Vertical(id="jump-bar"):
            yield OptionList(id="jump-matches")
            with Horizontal(id="jump-line"):
                yield Static(":", id="jump-colon")
                yield Input(
                    placeholder="a view: " + ", ".join(view.name for view in VIEWS),
                    suggester=SuggestFromList(self.names, case_sensitive=False),
                    id="jump-input",
                )

    def on_mount(self) -> None:
        self.show_matches("")
        self.query_one(Input).focus()

    def matches(self, typed: str) -> list[str]:
        """The names that begin with what is typed (the views alone until a space)."""
        typed = typed.strip().lower()
        names = self.names if " " in typed else [view.name for view in VIEWS]
        return [name for name in names if name.startswith(typed)] or [
            name for name in names if typed in name
        ]

    def show_matches(self, typed: str) -> None:
        matches = self.query_one(OptionList)
        found = self.matches(typed)
        matches.set_options(
            Option(f"{name:<16} {self.helps.get(name, '')}", id=name) for name in found
        )
        matches.display = bool(found)
        if found:
            matches.highlighted = 0

    @on(Input.Changed, "#jump-input")
    def typed(self, message: Input.Changed) -> None:
        self.show_matches(message.value)

    @on(Input.Submitted, "#jump-input")
    def submitted(self, message: Input.Submitted) -> None:
        typed = message.value.strip()
        known = [name.lower() for name in self.names]
        option = self.query_one(OptionList).highlighted_option
        if typed.lower() in known or option is None:
            # A name, or words the view checks (``logs iris/prod``), or none: it says why.
            self.dismiss(typed or None)
        else:
            self.dismiss(option.id)  # what the list highlights: ``mon`` is the monitor

    @on(OptionList.OptionSelected, "#jump-matches")
    def clicked(self, message: OptionList.OptionSelected) -> None:
        self.dismiss(message.option.id)

    def action_complete(self) -> None:
        option = self.query_one(OptionList).highlighted_option
        if option is not None and option.id:
            prompt = self.query_one(Input)
            prompt.value = option.id
            prompt.cursor_position = len(prompt.value)

    def action_move(self, step: int) -> None:
        matches = self.query_one(OptionList)
        if matches.option_count:
            current = matches.highlighted or 0
            matches.highlighted = (current + step) % matches.option_count

    def action_cancel(self) -> None:
        self.dismiss(None)
