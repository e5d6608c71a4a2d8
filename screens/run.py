"""The run screen: an engine call in progress (or done): its steps, its output, its result.

The call runs in a worker that belongs to the app, so leaving this screen never stops it;
the app feeds the :class:`~screens.runs.RunState` from the call's log lines and tells this
screen through its ``run_changed`` signal. A step sequence of the engine cannot be
interrupted halfway without leaving a half-done promotion behind, so ``c`` only stops
waiting, and says so.
"""

from __future__ import annotations

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.screen import Screen
from textual.widgets import Footer, Header, RichLog, Static

from screens import runs
from screens.common import StatusTable, status_text, sync_rows
from screens.runs import RunState, StepState

COLUMNS = (("status", "Status"), ("step", "Step"), ("time", "Time"), ("detail", "Detail"))
BAR_WIDTH = 12
STOP_WAITING = (
    "Leave this screen; the engine call goes on to its end (a promotion is never left "
    "half done), and relman tells you how it ended"
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
        Binding("escape", "back", "Back", tooltip="Back to the screen before"),
        Binding("c", "stop_waiting", "Stop waiting", tooltip=STOP_WAITING),
    ]

    def __init__(self, run: RunState) -> None:
        super().__init__()
        self.run = run
        self.lines_seen = 0

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
        self.app.run_changed.subscribe(self, self.on_run_changed)  # type: ignore[attr-defined]
        self.ticker = self.set_interval(0.5, self.tick, pause=not self.run.running)
        self.show()

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action == "stop_waiting":
            return self.run.running
        return True

    def action_back(self) -> None:
        self.dismiss()

    def action_stop_waiting(self) -> None:
        if self.run.running:
            self.notify(
                f"{self.run.title} goes on in the engine; relman tells you when it ends "
                "(l shows it again)",
                title="Stopped waiting",
            )
        self.dismiss()

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
        if run.running:
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
        for outcome in ("ok", "blocked", "failed"):
            result.set_class(run.outcome == outcome, f"-{outcome}")
        if run.outcome is None:
            result.update("c stops waiting: the engine call goes on to its end either way")
        elif run.outcome == "ok":
            result.update(f"ok: {run.title}, done in {seconds(run.elapsed())} · escape: back")
        else:
            error = run.error
            prefix = "" if error.startswith(run.outcome) else f"{run.outcome}: "
            result.update(f"{prefix}{error} · escape: back")
