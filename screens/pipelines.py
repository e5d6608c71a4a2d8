"""The pipeline view: the project's recent pipeline runs (``api.pipeline_runs``, docs/json.md
``pipeline runs``) and the selected one drawn as its steps, top to bottom, each with a mark,
its time, its retries (``x2``) and its detail; the run's trigger and reason above them, and
what a waiting run waits for with the keys that give it. The watcher's state is on the
summary line.

Every REFRESH_SECONDS a thread worker reads the runs (fetch, render, re-arm:
screens/live.py). ``a`` approves what a waiting run waits for and ``r`` resumes a waiting or
interrupted run: each says in the confirmation dialog what it will do, then runs as the
app's one run (screens/base.py), in a worker of the app that outlives this screen; in
read-only mode the engine refuses and the app shows the command to run from a session that
may act (the plans: screens/pipeline_actions.py). ``o`` shows the selected step's whole
detail and its output lines (screens/step_output.py). What is drawn of the documents is
screens/pipelines_view.py.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.message import Message
from textual.widgets import DataTable, Footer, Header

from core import api
from core.errors import ReleaseError
from screens.actions import ActionPlan, Subject
from screens.base import ActionScreen
from screens.common import (
    StatusStatic,
    StatusTable,
    age,
    fit_last_column,
    status_text,
    sync_rows,
)
from screens.filter import narrowed
from screens.live import PolledScreen
from screens.messages import PlanReady, PollDone
from screens.pipeline_actions import approve_plan, resume_plan
from screens.pipelines_view import (
    STATUS_STYLE,
    approval_of,
    find_run,
    hint_lines,
    no_runs_hint,
    notable_step,
    output_lines,
    output_title,
    resumable,
    run_row,
    run_title,
    runs_of,
    step_lines,
    steps_of,
    summary,
    trigger_line,
    watcher_line,
)

RUN_COLUMNS = (
    ("run", "#"),
    ("pipeline", "Pipeline"),
    ("service", "Service"),
    ("status", "Status"),
    ("trigger", "Trigger"),
    ("started", "Started"),
    ("detail", "Detail"),
)
# The steps' table has no header (the marks and times speak for themselves); these only
# size its columns for fit_last_column.
STEP_COLUMNS = (
    ("mark", " "),
    ("name", "Step"),
    ("time", "Time"),
    ("retries", ""),
    ("detail", "Detail"),
)
# Runs read at each poll (the engine's default; more than fit at 80x24).
LIMIT = 20


def styled(status: str) -> str:
    """The status screens/common.py styles ``status`` of a run or step as."""
    return STATUS_STYLE.get(status, status)


class PipelinesLoaded(Message):
    """``api.pipeline_runs`` (``document``), or why it could not be read (``error``). Only
    the latest matters, so a backlog collapses."""

    def __init__(self, document: dict[str, Any] | None, error: str = "") -> None:
        super().__init__()
        self.document = document
        self.error = error

    def can_replace(self, message: Message) -> bool:
        return isinstance(message, PipelinesLoaded)


# ---------------------------------------------------------------------- the widgets


class RunTable(StatusTable):
    """The recent runs, newest first."""

    BINDING_GROUP_TITLE = "Runs"


class PipelineStepTable(StatusTable):
    """The steps of the selected run, top to bottom."""

    BINDING_GROUP_TITLE = "Steps"


# ---------------------------------------------------------------------- the screen


class PipelinesScreen(PolledScreen, ActionScreen):
    """Recent pipeline runs, the selected one's steps, and what it waits for."""

    CSS_PATH = "pipelines.tcss"
    BINDING_GROUP_TITLE = "Pipelines"
    REFRESH_SECONDS = 2.0
    # The runs' list takes the focus, once read (it cannot while it loads): never the
    # steps, which Textual's first-focusable would give it meanwhile.
    AUTO_FOCUS = "#pipelines-runs"
    BINDINGS = [
        Binding("escape", "back", "Back", tooltip="Back to the screen before"),
        Binding(
            "a",
            "approve",
            "Approve",
            tooltip="Give the approval the selected waiting run waits for (asks first)",
        ),
        Binding(
            "r",
            "resume",
            "Resume",
            tooltip="Drive the selected waiting or interrupted run on (asks first)",
        ),
        Binding("o", "output", "Output", tooltip="The selected step's detail and output"),
    ]
    ACTIONS = MUTATING = frozenset({"approve", "resume"})

    def __init__(self) -> None:
        super().__init__()
        self.document: dict[str, Any] | None = None
        self.last_error = ""
        # The run whose steps are shown, and the step the cursor was put on for it (the
        # cursor follows the run's progress while the user leaves it there).
        self.shown_run: str | None = None
        self.followed_step = 0

    def compose(self) -> ComposeResult:
        yield Header()
        yield StatusStatic("Reading the pipeline runs…", id="pipelines-summary", markup=False)
        table = RunTable(id="pipelines-runs", cursor_type="row")
        for key, label in RUN_COLUMNS:
            table.add_column(label, key=key)
        table.loading = True
        yield table
        yield StatusStatic("", id="pipeline-title", markup=False)
        yield StatusStatic("", id="pipeline-trigger", markup=False)
        yield StatusStatic("", id="pipeline-hint", markup=False)
        steps = PipelineStepTable(id="pipeline-steps", cursor_type="row", show_header=False)
        for key, label in STEP_COLUMNS:
            steps.add_column(label, key=key)
        yield steps
        yield Footer(compact=True)

    def on_mount(self) -> None:
        for selector in ("#pipeline-title", "#pipeline-trigger", "#pipeline-hint"):
            self.query_one(selector).display = False
        self.poll_now()

    @property
    def runs_table(self) -> RunTable:
        return self.query_one(RunTable)

    @property
    def steps_table(self) -> PipelineStepTable:
        return self.query_one(PipelineStepTable)

    # ------------------------------------------------------------------ reading

    def fetch(self) -> None:
        self.load()

    @work(thread=True, exclusive=True, exit_on_error=False, group="pipelines")
    def load(self) -> None:
        """The runs and the watcher, off the event loop; PollDone last, whatever happened."""
        try:
            project = self.relman.project or api.load_project(None)
            document = dict(api.pipeline_runs(project, limit=LIMIT))
        except ReleaseError as error:
            self.post_message(PipelinesLoaded(None, error.message))
        except Exception as error:  # a bug or an I/O failure: say it, never crash the UI
            self.post_message(PipelinesLoaded(None, f"{type(error).__name__}: {error}"))
        else:
            self.post_message(PipelinesLoaded(document))
        finally:
            self.post_message(PollDone())

    def on_pipelines_loaded(self, message: PipelinesLoaded) -> None:
        message.stop()
        if message.document is None:
            if message.error != self.last_error:
                self.notify(message.error, title="Cannot read the pipeline runs", severity="error")
            self.last_error = message.error
            if self.document is None:
                self.runs_table.loading = False
                shown = self.query_one("#pipelines-summary", StatusStatic)
                shown.update(status_text(shown, "error", message.error))
            return
        self.last_error = ""
        self.document = message.document
        self.show()

    def on_run_ended(self) -> None:
        """A run of the app ended (an approval or a resume started here, perhaps)."""
        self.poll_now()

    # ------------------------------------------------------------------ showing

    def show(self) -> None:
        document = self.document
        shown = self.query_one("#pipelines-summary", StatusStatic)
        watcher = watcher_line(
            (document or {}).get("watcher") or {},
            read_only=self.relman.read_only,
            last_started=False,
        )
        shown.update(f"{summary(document)} · {watcher}")
        self.show_rows()

    def on_resize(self) -> None:
        if self.document is not None:
            self.show_rows()

    def show_rows(self) -> None:
        """The runs, updated in place (the cursor stays on its run as new ones come in
        above it), then the selected run."""
        table = self.runs_table
        rows = {}
        for run in runs_of(self.document):
            row = run_row(run)
            rows[row.key] = (
                Text(row.number),
                Text(row.pipeline),
                Text(row.service),
                status_text(table, styled(row.status), row.status),
                Text(row.trigger),
                Text(age(row.started)),
                Text(row.detail, style="dim"),
            )
        labels = [label for _key, label in RUN_COLUMNS]
        with self.app.batch_update():
            table.loading = False
            if self.focused is None:
                table.focus()
            fitted = fit_last_column(narrowed(self, rows), self.size.width, labels)
            sync_rows(table, [key for key, _label in RUN_COLUMNS], fitted)
            self.show_run()
        self.refresh_bindings()

    def selected(self) -> Mapping[str, Any] | None:
        """The run under the cursor of the runs' list."""
        table = self.runs_table
        if not table.row_count:
            return None
        key = table.coordinate_to_cell_key(table.cursor_coordinate).row_key.value
        return find_run(self.document, key)

    def subject(self) -> Subject | None:
        """What the palette's actions and ``:release`` take from here: the selected run's
        service and release."""
        run = self.selected()
        if run is None or not run.get("service"):
            return None
        release = run.get("release")
        return Subject(str(run["service"]), str(release) if release else None)

    def on_data_table_row_highlighted(self, message: DataTable.RowHighlighted) -> None:
        if message.data_table is self.runs_table:
            self.show_run()
            self.refresh_bindings()

    def show_run(self) -> None:
        """The selected run: its title and status, its trigger, what it asks of a person,
        and its steps (the cursor on the step going on or that stopped it)."""
        run = self.selected()
        title = self.query_one("#pipeline-title", StatusStatic)
        trigger = self.query_one("#pipeline-trigger", StatusStatic)
        hint = self.query_one("#pipeline-hint", StatusStatic)
        steps = self.steps_table
        if run is None:
            empty = not runs_of(self.document)
            title.display = trigger.display = empty
            hint.display = False
            steps.display = False
            if empty:
                service = None
                project = self.relman.project
                if project is not None and len(project.config.services) == 1:
                    service = next(iter(project.config.services))
                title.update(no_runs_hint(service, read_only=self.relman.read_only))
                trigger.update("")
                trigger.display = False
            self.shown_run = None
            return
        status = str(run.get("status") or "unknown")
        title.update(
            Text.assemble(run_title(run), " · ", status_text(title, styled(status), status))
        )
        trigger.update(trigger_line(run))
        lines = hint_lines(run, read_only=self.relman.read_only)
        hint.update(Text("\n").join(status_text(hint, kind, line) for kind, line in lines))
        title.display = trigger.display = steps.display = True
        hint.display = bool(lines)
        self.show_steps(run)

    def show_steps(self, run: Mapping[str, Any]) -> None:
        table = self.steps_table
        rows = {
            line.key: (
                status_text(table, styled(line.status), line.mark),
                Text(line.name),
                Text(line.time, style="dim"),
                status_text(table, "pending", line.retries),
                Text(line.detail, style="dim"),
            )
            for line in step_lines(run)
        }
        labels = [label for _key, label in STEP_COLUMNS]
        sync_rows(
            table,
            [key for key, _label in STEP_COLUMNS],
            fit_last_column(rows, self.size.width, labels),
        )
        notable = notable_step(run)
        key = str(run.get("run"))
        if key != self.shown_run or table.cursor_row == self.followed_step:
            table.move_cursor(row=notable, animate=False)
            self.followed_step = notable
        self.shown_run = key

    def selected_step(self) -> Mapping[str, Any] | None:
        run = self.selected()
        steps = steps_of(run)
        row = self.steps_table.cursor_row
        return steps[row] if 0 <= row < len(steps) else None

    # ------------------------------------------------------------------ keys

    def action_back(self) -> None:
        self.dismiss()

    def action_output(self) -> None:
        run, step = self.selected(), self.selected_step()
        if run is None or step is None:
            self.notify("Choose a run and one of its steps to see its output.", timeout=3)
            return
        from screens.step_output import StepOutputScreen

        self.app.push_screen(StepOutputScreen(output_title(run, step), output_lines(step)))

    def applicable(self, action: str) -> bool:
        run = self.selected()
        if action == "approve":
            return run is not None and approval_of(run) is not None
        if action == "resume":
            return resumable(run)
        return True

    def action_approve(self) -> None:
        run = self.selected()
        project = self.relman.project
        if run is None:
            self.notify("Choose a waiting run to approve what it waits for.", severity="warning")
            return
        if project is None:
            self.notify("The project is not loaded yet.", severity="warning")
            return
        plan = approve_plan(project, run)
        if plan is None:
            now = str(run.get("status") or "unknown")
            self.notify(
                f"Pipeline run #{run.get('run')} is {now}: it waits for no approval.",
                severity="warning",
            )
            return
        self.request(plan)

    def action_resume(self) -> None:
        run = self.selected()
        project = self.relman.project
        if run is None:
            self.notify("Choose a waiting or interrupted run to resume.", severity="warning")
            return
        if project is None:
            self.notify("The project is not loaded yet.", severity="warning")
            return
        if not resumable(run):
            self.notify(
                f"Pipeline run #{run.get('run')} is {run.get('status')}: only a waiting or "
                f"interrupted run goes on (relman pipeline run {run.get('pipeline')} starts "
                "a new one).",
                severity="warning",
            )
            return
        self.request(resume_plan(project, run))

    def request(self, plan: ActionPlan) -> None:
        """Confirm ``plan``, then hand it to the app (screens/base.py on_plan_ready); in
        read-only mode straight to the engine, which refuses, and the app says what to run."""
        if self.relman.can_start(plan.verb):
            self.post_message(PlanReady(plan))
