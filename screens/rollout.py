"""The rollout pane: one environment's canary or shadow rollout as it goes (docs/json.md,
``rollout status``): the strategy, the stable and canary releases and the weight, each step
(done, running, waiting), and each analysis check with the stable's and the canary's figures
and its verdict, as the driver records them.

Every REFRESH_SECONDS a thread worker reads ``api.rollout_status`` and the pane is drawn
from it (fetch, render, re-arm: screens/live.py); a phase that changed between two reads is
said in a notification too. ``p`` (pause or resume), ``a`` (abort) and ``P`` (promote now)
say in the confirmation dialog (screens/confirm.py) exactly what they will do, then
``api.rollout_action`` runs in a thread worker of the app, beside the app's one run rather
than as it: the rollout may be driven by that very run (a promotion started here), and must
be stoppable while it goes. In read-only mode they go to the engine without a question; it
refuses, and the pane says the command to run from a session that may act, as the other
actions do (screens/base.py). What it draws of the document is screens/rollout_view.py.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.message import Message
from textual.widgets import Footer, Header, Static

from core import api
from core.errors import ReadOnlyError, ReleaseError, UsageError
from screens.actions import ActionPlan, EngineCall
from screens.base import ActionScreen
from screens.common import StatusStatic, status_text
from screens.live import PolledScreen
from screens.messages import PollDone
from screens.overview_rows import OPEN_PHASES
from screens.rollout_view import (
    checks_table,
    detail_text,
    driver_gone,
    phase_of,
    plan_text,
    releases_line,
    steps_table,
    title_text,
)

# How the app titles the engine's refusal of a read-only session (tui/app.py READ_ONLY).
READ_ONLY = "READ-ONLY"


def engine(name: str) -> Callable[..., Any]:
    """``core.api``'s ``name`` (rollout_status, rollout_action), looked up when called: an
    engine without rollouts gets its one-line refusal rather than an import error."""
    found = getattr(api, name, None)
    if not callable(found):
        raise UsageError(
            f"this relman cannot {name.replace('_', ' ')}: core.api.{name} is missing; "
            "install a relman with rollouts"
        )
    return found  # type: ignore[no-any-return]


class RolloutLoaded(Message):
    """``api.rollout_status`` of one environment (``document``), or why it could not be read
    (``error``). Only the latest matters, so a backlog collapses."""

    def __init__(
        self, service: str, env: str, document: dict[str, Any] | None, error: str = ""
    ) -> None:
        super().__init__()
        self.service = service
        self.env = env
        self.document = document
        self.error = error

    def can_replace(self, message: Message) -> bool:
        return isinstance(message, RolloutLoaded)


def rollout_plan(
    project: api.Project, service: str, env: str, verb: str, document: Mapping[str, Any] | None
) -> ActionPlan:
    """The plan of ``verb`` on the rollout of ``service`` in ``env``: what the dialog says
    and the command that does the same (``relman rollout abort iris --env dev``)."""

    def call(run: EngineCall) -> dict[str, Any]:
        act = engine("rollout_action")
        return dict(act(project, service, env, verb, read_only=run.read_only, log=run.log))

    return ActionPlan(
        verb,
        f"{verb} the rollout of {service} in {env}",
        plan_text(verb, service, env, document),
        ("rollout", verb, service, "--env", env),
        call,
        project,
    )


# ---------------------------------------------------------------------- the screen


class RolloutScreen(PolledScreen, ActionScreen):
    """The steps, the checks and the actions of one environment's rollout."""

    CSS_PATH = "rollout.tcss"
    BINDING_GROUP_TITLE = "Rollout"
    REFRESH_SECONDS = 2.0
    BINDINGS = [
        Binding("escape", "back", "Back", tooltip="Back to the screen before"),
        Binding(
            "p",
            "pause_resume",
            "Pause/resume",
            tooltip="Hold the rollout where it is, or let it go on (asks first)",
        ),
        Binding(
            "a", "abort", "Abort", tooltip="The stable release serves everything again (asks first)"
        ),
        Binding(
            "P",
            "promote_now",
            "Promote now",
            tooltip="The new release serves everything, steps left skipped (asks first)",
        ),
        Binding("n", "next_env", "Next env", tooltip="The service's next environment", show=False),
        Binding("r", "refresh", "Refresh", tooltip="Read the rollout now", show=False),
    ]
    MUTATING = frozenset({"pause_resume", "abort", "promote_now"})

    def __init__(self, service: str, env: str, envs: Sequence[str] = ()) -> None:
        super().__init__()
        self.service = service
        self.env = env
        self.envs = list(envs) or [env]
        self.document: dict[str, Any] | None = None
        self.last_error = ""
        # The action sent to the engine and not answered yet (one at a time).
        self.acting: str | None = None

    def compose(self) -> ComposeResult:
        yield Header()
        yield StatusStatic(f"{self.service} in {self.env} · reading…", id="rollout-title")
        yield StatusStatic("", id="rollout-releases", markup=False)
        yield StatusStatic("", id="rollout-detail", markup=False)
        with VerticalScroll(id="rollout-body"):
            yield Static("Steps", classes="heading")
            yield StatusStatic("", id="rollout-steps", classes="section")
            yield Static("Analysis", classes="heading")
            yield StatusStatic("", id="rollout-checks", classes="section")
        yield Footer(compact=True)

    def on_mount(self) -> None:
        self.query_one("#rollout-body").display = False
        self.poll_now()

    # ------------------------------------------------------------------ reading

    def fetch(self) -> None:
        self.load(self.service, self.env)

    @work(thread=True, exclusive=True, exit_on_error=False, group="rollout")
    def load(self, service: str, env: str) -> None:
        try:
            project = self.relman.project or api.load_project(None)
            document = dict(engine("rollout_status")(project, service, env))
        except ReleaseError as error:
            self.post_message(RolloutLoaded(service, env, None, error.message))
        except Exception as error:  # a bug or an I/O failure: say it, never crash the UI
            self.post_message(RolloutLoaded(service, env, None, f"{type(error).__name__}: {error}"))
        else:
            self.post_message(RolloutLoaded(service, env, document))
        finally:
            self.post_message(PollDone())

    def on_rollout_loaded(self, message: RolloutLoaded) -> None:
        message.stop()
        if (message.service, message.env) != (self.service, self.env):
            return  # read for an environment left since
        if message.document is None:
            if message.error != self.last_error:
                self.notify(message.error, title="Cannot read the rollout", severity="error")
            self.last_error = message.error
            if self.document is None:
                title = self.query_one("#rollout-title", StatusStatic)
                title.update(Text(f"{self.service} in {self.env} · cannot read the rollout"))
                detail = self.query_one("#rollout-detail", StatusStatic)
                detail.update(status_text(detail, "error", message.error))
            return
        self.last_error = ""
        self.show(message.document)

    def show(self, document: dict[str, Any]) -> None:
        """Draw ``document`` (nothing when it is what is shown); a phase that changed since
        the last one is said in a notification as well."""
        if document == self.document:
            return
        before = self.document
        self.document = document
        phase = phase_of(document)
        if before is not None and phase_of(before) != phase:
            detail = str(document.get("detail") or "")
            said = f"{self.service} in {self.env}: rollout {phase}"
            self.notify(
                said + (f": {detail}" if detail else ""),
                title="Rollout",
                severity="error" if phase == "aborted" else "information",
                timeout=10,
            )
        with self.app.batch_update():
            title = self.query_one("#rollout-title", StatusStatic)
            title.update(title_text(title, self.service, self.env, document))
            releases = self.query_one("#rollout-releases", StatusStatic)
            line = releases_line(document)
            releases.update(line)
            releases.display = bool(line)
            detail = self.query_one("#rollout-detail", StatusStatic)
            said = detail_text(detail, self.service, self.env, document)
            detail.update(said)
            detail.display = bool(said.plain)
            self.query_one("#rollout-body").display = phase != "none"
            steps = self.query_one("#rollout-steps", StatusStatic)
            steps.update(steps_table(steps, document))
            checks = self.query_one("#rollout-checks", StatusStatic)
            checks.update(checks_table(checks, document))
        self.refresh_bindings()

    # ------------------------------------------------------------------ keys

    def on_run_ended(self) -> None:
        """A run of the app ended (a promotion that drove this rollout, perhaps)."""
        self.poll_now()

    def action_back(self) -> None:
        self.dismiss()

    def action_refresh(self) -> None:
        self.poll_now()

    def action_next_env(self) -> None:
        index = self.envs.index(self.env) if self.env in self.envs else -1
        self.env = self.envs[(index + 1) % len(self.envs)]
        self.document = None
        self.query_one("#rollout-title", StatusStatic).update(
            f"{self.service} in {self.env} · reading…"
        )
        self.poll_now()

    def applicable(self, action: str) -> bool:
        """An open rollout; pause and resume also need the relman that drives it."""
        document = self.document or {}
        if action == "pause_resume" and driver_gone(document):
            return False
        return phase_of(document) in OPEN_PHASES

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        """The rollout's keys are dimmed in read-only mode and where no rollout goes on, but
        not while the app's run goes: that run may be the very promotion they act on."""
        if action in self.MUTATING:
            if self.relman.read_only or not self.applicable(action):
                return None
            return True
        return super().check_action(action, parameters)

    def action_pause_resume(self) -> None:
        self.request("resume" if phase_of(self.document) == "paused" else "pause")

    def action_abort(self) -> None:
        self.request("abort")

    def action_promote_now(self) -> None:
        self.request("promote")

    def request(self, verb: str) -> None:
        """Confirm ``verb``, then send it to the engine; in read-only mode straight to the
        engine, which refuses (the pane then says what to run elsewhere)."""
        project = self.relman.project
        if project is None:
            self.notify("The project is not loaded yet.", severity="warning")
            return
        if self.acting is not None:
            self.notify(f"{self.acting} is on its way; wait for its answer.", severity="warning")
            return
        plan = rollout_plan(project, self.service, self.env, verb, self.document)
        if self.relman.read_only:
            self.act(plan)
            return
        if self.document is None:
            self.notify("Reading the rollout…", timeout=2)
            return
        phase = phase_of(self.document)
        where = f"{self.service} in {self.env}"
        if phase not in OPEN_PHASES:
            now = "no rollout has run" if phase == "none" else f"the rollout is {phase}"
            self.notify(f"Nothing to {verb}: {now} in {where}.", severity="warning")
            return
        if verb in ("pause", "resume") and driver_gone(self.document):
            self.notify(
                f"Cannot {verb}: the relman driving the rollout of {where} stopped; "
                "abort (a) or promote (P) it.",
                severity="warning",
            )
            return
        from screens.confirm import ConfirmScreen

        def confirmed(reason: str | None) -> None:
            if reason is not None:
                self.act(plan)

        self.app.push_screen(ConfirmScreen(plan), confirmed)

    def act(self, plan: ActionPlan) -> None:
        """Run ``plan`` in a thread worker of the app (it finishes even when this pane is
        left); its answer comes back through call_from_thread."""
        app = self.app
        read_only = self.relman.read_only
        self.acting = plan.title

        def run() -> None:
            call = EngineCall(log=lambda _line: None, on_event=lambda _e: None, read_only=read_only)
            try:
                document = plan.call(call)
            except ReadOnlyError as error:
                app.call_from_thread(self.refused, plan, error.message)
            except ReleaseError as error:
                app.call_from_thread(self.failed, plan, error.message)
            except Exception as error:  # a bug: say it, never crash the UI
                app.call_from_thread(self.failed, plan, f"{type(error).__name__}: {error}")
            else:
                app.call_from_thread(self.acted, plan, document)

        app.run_worker(
            run, thread=True, exit_on_error=False, group="rollout-action", name=plan.title
        )

    def refused(self, plan: ActionPlan, error: str) -> None:
        """The engine refused a read-only session: the command to run from one that may act
        (the words the app uses for every refused action)."""
        self.acting = None
        self.app.notify(
            f"{error}. From a session that may act, run:\n{plan.command()}",
            title=READ_ONLY,
            severity="warning",
            timeout=30,
        )

    def failed(self, plan: ActionPlan, error: str) -> None:
        self.acting = None
        self.app.notify(error, title=f"Cannot {plan.title}", severity="error", timeout=10)
        if self.is_attached:
            self.poll_now()

    def acted(self, plan: ActionPlan, document: dict[str, Any]) -> None:
        """The engine's answer: where the rollout is now (a driver that has not acted on the
        request yet leaves the phase as it was, and the detail says so)."""
        self.acting = None
        detail = str(document.get("detail") or "")
        self.app.notify(
            f"{plan.title}: the rollout is {phase_of(document)}"
            + (f"; {detail}" if detail else ""),
            title="Rollout",
            timeout=10,
        )
        if not self.is_attached:
            return
        if (document.get("service"), document.get("env")) == (self.service, self.env):
            self.document = None  # the notification above said the phase already
            self.show(document)
        self.poll_now()
