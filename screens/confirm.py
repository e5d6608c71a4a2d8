"""The confirmations: of a release action (exactly what will happen, then yes or no), of
cancelling a run in progress, and of quitting while one goes.

ConfirmScreen is dismissed with the reason typed (``""`` when the action asks none) to go
ahead, or None. A screen may suggest the reason (the alerts screen offers the alert's own
line). CancelRunScreen is dismissed with True to cancel, False to let the run go on.
QuitScreen is dismissed with True to quit (after cancelling the run, or when it is done),
False to stay.
"""

from __future__ import annotations

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Button, Input, Static

from screens.actions import ActionPlan
from screens.runs import RunState


class ConfirmScreen(ModalScreen[str | None]):
    """``promote iris v1.4.0 (3f9a2c1) to prod, replacing v1.3.2; gates: 4 passed``."""

    BINDING_GROUP_TITLE = "Confirm"
    BINDINGS = [
        Binding("escape", "cancel", "Cancel", tooltip="Do nothing"),
        Binding("y", "confirm", "Yes", tooltip="Go ahead"),
        Binding("n", "cancel", "No", show=False),
    ]

    def __init__(self, plan: ActionPlan, *, reason: str = "") -> None:
        super().__init__()
        self.plan = plan
        self.suggested = reason

    def compose(self) -> ComposeResult:
        with Vertical(id="confirm-dialog"):
            yield Static(self.plan.verb.capitalize(), id="confirm-title", markup=False)
            yield Static(self.plan.text, id="confirm-text", markup=False)
            if self.plan.ask_reason:
                yield Input(
                    self.suggested, placeholder="why (for the audit log)", id="confirm-reason"
                )
            yield Static(self.plan.command(self.suggested), id="confirm-command", markup=False)
            with Horizontal(id="confirm-buttons"):
                yield Button(self.plan.verb.capitalize(), id="confirm-yes", variant="warning")
                yield Button("Cancel", id="confirm-no")

    def on_mount(self) -> None:
        if self.plan.ask_reason:
            self.query_one("#confirm-reason", Input).focus()
        else:
            self.query_one("#confirm-yes", Button).focus()

    @property
    def reason(self) -> str:
        if not self.plan.ask_reason:
            return ""
        return self.query_one("#confirm-reason", Input).value.strip()

    @on(Input.Changed, "#confirm-reason")
    def show_command(self) -> None:
        self.query_one("#confirm-command", Static).update(self.plan.command(self.reason))

    @on(Input.Submitted, "#confirm-reason")
    @on(Button.Pressed, "#confirm-yes")
    def action_confirm(self) -> None:
        self.dismiss(self.reason)

    @on(Button.Pressed, "#confirm-no")
    def action_cancel(self) -> None:
        self.dismiss(None)


class CancelRunScreen(ModalScreen[bool]):
    """``Cancel test shop v1.4.0 (3f9a2c1)?`` and what cancelling does; y cancels, n or
    escape lets it run."""

    BINDING_GROUP_TITLE = "Cancel run"
    BINDINGS = [
        Binding("escape", "keep", "Keep running", tooltip="Let the run go on"),
        Binding("y", "cancel_run", "Cancel it", tooltip="Stop the run now"),
        Binding("n", "keep", "Keep running", show=False),
    ]

    def __init__(self, title: str, text: str) -> None:
        super().__init__()
        self.run_title = title
        self.text = text

    def compose(self) -> ComposeResult:
        with Vertical(id="confirm-dialog"):
            yield Static(f"Cancel {self.run_title}?", id="confirm-title", markup=False)
            yield Static(self.text, id="confirm-text", markup=False)
            with Horizontal(id="confirm-buttons"):
                yield Button("Cancel the run", id="cancel-yes", variant="error")
                yield Button("Keep running", id="cancel-no")

    def on_mount(self) -> None:
        self.query_one("#cancel-yes", Button).focus()

    @on(Button.Pressed, "#cancel-yes")
    def action_cancel_run(self) -> None:
        self.dismiss(True)

    @on(Button.Pressed, "#cancel-no")
    def action_keep(self) -> None:
        self.dismiss(False)


class QuitScreen(ModalScreen[bool]):
    """Quit while a run goes, said exactly: ``quit: the running tests of iris v1.0.0 are
    cancelled and their processes stopped`` (y cancels it, then quits), or, for a run that
    is never stopped halfway, why relman waits for its end (y quits when it is done). n or
    escape stays."""

    CSS_PATH = "confirm.tcss"
    BINDING_GROUP_TITLE = "Quit"
    BINDINGS = [
        Binding("escape", "stay", "Stay", tooltip="Do not quit; the run goes on"),
        Binding("y", "quit_relman", "Quit", tooltip="Quit (the dialog says what happens)"),
        Binding("n", "stay", "Stay", show=False),
    ]

    def __init__(self, run: RunState) -> None:
        super().__init__()
        self.run = run

    def compose(self) -> ComposeResult:
        yes = "Cancel it and quit" if self.run.cancellable else "Quit when done"
        with Vertical(id="confirm-dialog"):
            yield Static("Quit relman?", id="confirm-title", markup=False)
            yield Static(self.run.quit_text(), id="confirm-text", markup=False)
            with Horizontal(id="confirm-buttons"):
                yield Button(yes, id="quit-yes", variant="error")
                yield Button("Stay", id="quit-no")

    def on_mount(self) -> None:
        # Stay is the default: enter never quits by accident.
        self.query_one("#quit-no", Button).focus()

    @on(Button.Pressed, "#quit-yes")
    def action_quit_relman(self) -> None:
        self.dismiss(True)

    @on(Button.Pressed, "#quit-no")
    def action_stay(self) -> None:
        self.dismiss(False)
