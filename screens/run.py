"""The run screen: an engine call in progress (or done): its steps, its output, its result.

The call runs in a worker that belongs to the app, so leaving this screen (escape) never
stops it; the app feeds the :class:`~screens.runs.RunState` from the call's log lines and
tells this screen through its ``run_changed`` signal. ``c`` cancels it for real, once the
dialog that says what that does is confirmed: the engine ends the processes of the tests or
the build and records the run cancelled. A promotion or rollback cannot be cut in half
(that would leave an environment half switched), so there ``c`` is dimmed and says so.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from rich.text import Text
from textual import events
from textual.app import ComposeResult
from textual.binding import Binding
from textual.screen import Screen
from textual.widgets import Footer, Header, RichLog, Static

from screens import runs
from screens.common import StatusTable, status_text, sync_rows
from screens.runs import RunState, StepState

if TYPE_CHECKING:
    from screens.host import AppHost

COLUMNS = (("status", "Status"), ("step", "Step"), ("time", "Time"), ("detail", "Detail"))
BAR_WIDTH = 12
CANCEL_TIP = "Stop the tests or the build now (asks first); a promotion cannot be stopped halfway"
NOT_CANCELLABLE = (
    "{title} cannot be stopped halfway (an environment is never left half switched); it goes "
    "on to its end. escape leaves this screen, l shows it again."
)


def progress_bar(done: int, total: int | None) -> str:
    """``━━━━━━╺━━━━━``: a suite's progress in text (one cell per twelfth)."""
    if not total:
        return "╺" + "━" * (BAR_WIDTH - 1)
    filled = min(BAR_WIDTH, round(BAR_WIDTH * done / total))
    return "━" * filled + ("╺" + "─" * (BAR_WIDTH - filled - 1) if filled < BAR_WIDTH else "")


def seconds(value: float) -> str:
    return f"{value:.1f}s" if value < 60 else f"{int(value // 60)}m{int(value % 60):02d}s"


class StepTable(StatusTable):
    """The steps of a run."""

    BINDING_GROUP_TITLE = "Steps"


class RunScreen(Screen[None]):
    """The steps, the live output and the result of one engine call."""

    CSS_PATH = "run.tcss"
    BINDING_GROUP_TITLE = "Run"
    BINDINGS = [
        Binding(
            "escape",
            "back",
            "Back",
            tooltip="Back to the screen before; a run goes on to its end (l shows it again)",
        ),
        Binding("c", "cancel_run", "Cancel run", tooltip=CANCEL_TIP),
    ]

    def __init__(self, run: RunState) -> None:
        super().__init__()
        self.run = run
        self.lines_seen = 0
        self.asking = False  # the cancel dialog is open

    def compose(self) -> ComposeResult:
        yield Header()
        yield Static(self.run.title, id="run-title", markup=False)
        yield Static("", id="run-state", markup=False)
        table = StepTable(id="run-steps", cursor_type="none", zebra_stripes=False)
        for key, label in COLUMNS:
            table.add_column(label, key=key)
        yield table
        yield RichLog(id="run-output", max_lines=2000, wrap=True, markup=False)
        yield Static("", id="run-result", markup=False)
        yield Footer(compact=True)

    def on_mount(self) -> None:
        self.relman_app.run_changed.subscribe(self, self.on_run_changed)
        self.ticker = self.set_interval(0.5, self.tick, pause=not self.run.running)
        self.show()

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action == "cancel_run":
            if not self.run.running:
                return False  # nothing to cancel: not in the footer
            # Dimmed where the engine cannot stop halfway, or is stopping already.
            return True if self.run.cancellable and not self.run.cancelling else None
        return True

    def on_key(self, event: events.Key) -> None:
        """``c`` on a run that cannot be cancelled still answers: it says why."""
        if event.key == "c" and self.run.running and self.check_action("cancel_run", ()) is None:
            event.stop()
            event.prevent_default()
            self.action_cancel_run()

    def action_back(self) -> None:
        if self.run.running:
            self.notify(
                f"{self.run.title} goes on in the engine; relman tells you when it ends "
                "(l shows it again)",
                title="Still running",
            )
        self.dismiss()

    def action_cancel_run(self) -> None:
        """Ask, then stop the run (the dialog says what stopping does)."""
        run = self.run
        if not run.running or self.asking:
            return
        if run.cancelling:
            self.notify(f"{run.title} is being cancelled already.")
            return
        if not run.cancellable:
            self.notify(NOT_CANCELLABLE.format(title=run.title), severity="warning")
            return
        from screens.confirm import CancelRunScreen

        def answered(yes: bool | None) -> None:
            self.asking = False
            if yes and run.running:
                self.relman_app.cancel_run(run)

        self.asking = True
        self.app.push_screen(CancelRunScreen(run.title, run.plan.cancel_text), answered)

    @property
    def relman_app(self) -> AppHost:
        return self.app  # type: ignore[return-value]

    def on_run_changed(self, run: RunState) -> None:
        if run is self.run:
            self.show()

    def tick(self) -> None:
        self.show_state()
        if self.run.running:
            self.show_steps()
        else:
            self.ticker.pause()

    def show(self) -> None:
        """Draw the run as it stands: steps in place, new output lines, the result."""
        with self.app.batch_update():
            self.show_state()
            self.show_steps()
            output = self.query_one("#run-output", RichLog)
            for line in self.run.lines_after(self.lines_seen):
                output.write(Text(line))
            self.lines_seen = self.run.total_lines
            self.show_result()
        self.refresh_bindings()
        if not self.run.running:
            self.ticker.pause()

    def show_state(self) -> None:
        run = self.run
        if run.cancelling:
            text = Text.assemble(
                status_text(self.query_one(StepTable), "cancelled", "cancelling"),
                f" after {seconds(run.elapsed())} · stopping its processes",
            )
        elif run.running:
            text = Text.assemble(
                status_text(self.query_one(StepTable), "running"),
                f" for {seconds(run.elapsed())} · leaving this screen does not stop it",
            )
        else:
            text = Text(f"ended after {seconds(run.elapsed())}")
        self.query_one("#run-state", Static).update(text)

    def step_cells(self, table: StepTable, step: StepState, room: int) -> tuple[Text, ...]:
        detail = step.detail
        if step.status == "running" and step.total is not None:
            detail = f"{progress_bar(step.done, step.total)} {detail}"
        if len(detail) > room:
            detail = detail[: room - 1] + "…"  # the whole line is in the output below
        return (
            status_text(table, step.status),
            Text(step.name),
            Text(seconds(step.elapsed(runs.clock()))),
            Text(detail),
        )

    def show_steps(self) -> None:
        table = self.query_one(StepTable)
        name_width = max((len(step.name) for step in self.run.steps), default=4)
        # Status, step and time columns, and one cell of padding each side of four columns.
        room = max(20, self.size.width - 7 - name_width - 6 - 8)
        rows = {
            str(index): self.step_cells(table, step, room)
            for index, step in enumerate(self.run.steps)
        }
        sync_rows(table, [key for key, _label in COLUMNS], rows)
        if rows and self.run.running:
            table.scroll_end(animate=False)

    def show_result(self) -> None:
        result = self.query_one("#run-result", Static)
        run = self.run
        result.set_class(run.outcome is not None, "-done")
        for outcome in ("ok", "blocked", "failed", "cancelled"):
            result.set_class(run.outcome == outcome, f"-{outcome}")
        quitting = self.relman_app.quitting is run
        if quitting and run.cancelling:
            result.update("cancelling… relman quits once the run's processes have stopped")
        elif quitting and run.running:
            result.update("relman quits when the run is done; it cannot be stopped halfway")
        elif run.cancelling:
            result.update("cancel asked: the engine is stopping the run's processes")
        elif run.outcome is None and run.cancellable:
            result.update("c cancels the run · escape leaves it running")
        elif run.outcome is None:
            result.update("escape leaves this screen; the run goes on to its end either way")
        elif run.outcome == "ok":
            result.update(f"ok: {run.title}, done in {seconds(run.elapsed())} · escape: back")
        elif run.outcome == "cancelled":
            result.update(f"{run.error} · escape: back")
        else:
            error = run.error
            prefix = "" if error.startswith(run.outcome) else f"{run.outcome}: "
            result.update(f"{prefix}{error} · escape: back")
