"""A short list to choose from, for an action or a view that needs a subject the screen
does not give (a service, an environment, the other side of a diff). Dismissed with the
chosen value, or None (escape)."""

from __future__ import annotations

from collections.abc import Sequence

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import OptionList, Static
from textual.widgets.option_list import Option


class Picker(ModalScreen[str | None]):
    """``Roll back which environment?`` and the choices, the likeliest one highlighted."""

    CSS_PATH = "picker.tcss"
    BINDING_GROUP_TITLE = "Choose"
    BINDINGS = [Binding("escape", "cancel", "Cancel", tooltip="Choose nothing")]

    def __init__(
        self, question: str, choices: Sequence[tuple[str, str]], *, highlighted: str | None = None
    ) -> None:
        """``choices``: (value, what the list shows) pairs."""
        super().__init__()
        self.question = question
        self.choices = list(choices)
        values = [value for value, _label in self.choices]
        self.highlighted = values.index(highlighted) if highlighted in values else 0

    def compose(self) -> ComposeResult:
        with Vertical(id="picker-dialog"):
            yield Static(self.question, id="picker-question", markup=False)
            yield OptionList(
                *(Option(label, id=value) for value, label in self.choices), id="picker-choices"
            )
            yield Static("enter: choose · escape: cancel", id="picker-hint")

    def on_mount(self) -> None:
        choices = self.query_one(OptionList)
        choices.highlighted = self.highlighted
        choices.focus()

    def on_option_list_option_selected(self, message: OptionList.OptionSelected) -> None:
        message.stop()
        self.dismiss(message.option.id)

    def action_cancel(self) -> None:
        self.dismiss(None)
