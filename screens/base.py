"""What the screens that offer release actions share: keys dimmed when they cannot run, the
plan read in a worker, the confirmation, and the hand-over of the call to the app.

A dimmed action does not start from its key or the command palette (screens/palette.py)
without explaining itself: in read-only mode it goes to the engine, which refuses
(ReadOnlyError), and the app shows the command to run from a session that may act; where the
action does not apply, the plan says why; while another run goes, the app says which.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, ClassVar

from textual import events, work
from textual.binding import Binding
from textual.screen import Screen

from core.errors import ReleaseError
from screens.messages import EngineFailed, PlanReady

if TYPE_CHECKING:
    from screens.actions import ActionPlan, Subject
    from screens.host import AppHost
    from screens.runs import RunState


class ActionScreen(Screen[None]):
    """A screen whose MUTATING actions go through plan -> confirm -> run."""

    # Actions that start an engine call: dimmed while another one runs.
    ACTIONS: ClassVar[frozenset[str]] = frozenset()
    # Of those, the ones that change something: dimmed in read-only mode as well.
    MUTATING: ClassVar[frozenset[str]] = frozenset()

    @property
    def relman(self) -> AppHost:
        return self.app  # type: ignore[return-value]

    def on_mount(self) -> None:
        self.relman.run_changed.subscribe(self, self._run_changed)

    def _run_changed(self, run: RunState) -> None:
        self.refresh_bindings()
        if not run.running:
            self.on_run_ended()

    def on_run_ended(self) -> None:
        """A run ended: screens read again what it may have changed."""

    def applicable(self, action: str) -> bool:
        """Whether ``action`` applies to what the screen shows now."""
        return True

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action in self.ACTIONS or action in self.MUTATING:
            refused = action in self.MUTATING and self.relman.read_only
            if refused or self.relman.busy or not self.applicable(action):
                return None  # shown dimmed: the palette still offers it, and it explains
        return True

    def on_key(self, event: events.Key) -> None:
        """The key of a dimmed action still answers: it says why the action cannot run (in
        read-only mode, the engine's refusal and the command to run elsewhere). An enabled
        action's key never gets here: its binding took it."""
        for binding in self.BINDINGS:
            if not isinstance(binding, Binding) or binding.key != event.key:
                continue
            if binding.action in self.ACTIONS or binding.action in self.MUTATING:
                event.stop()
                event.prevent_default()
                getattr(self, f"action_{binding.action}")()
                return

    def prepare(self, verb: str, subject: Subject) -> None:
        """Read what ``verb`` would do now, then confirm and run it (see on_plan_ready)."""
        project = self.relman.project
        if project is None:
            self.notify("The project is not loaded yet.", severity="warning")
            return
        if not self.relman.can_start(verb):
            return
        self.notify(f"Reading what {verb} would do…", timeout=2)
        self.plan_worker(verb, project, subject)

    @work(thread=True, exclusive=True, exit_on_error=False, group="plan")
    def plan_worker(self, verb: str, project: object, subject: Subject) -> None:
        from screens.actions import VERB_WORDS, make_plan

        try:
            plan = make_plan(verb, project, subject, read_only=self.relman.read_only)  # type: ignore[arg-type]
        except ReleaseError as error:
            self.post_message(EngineFailed(f"Cannot {VERB_WORDS.get(verb, verb)}", error.message))
        except Exception as error:  # a bug: say it, never crash the UI
            line = f"{type(error).__name__}: {error}"
            self.post_message(EngineFailed(f"Cannot {VERB_WORDS.get(verb, verb)}", line))
        else:
            self.post_message(PlanReady(plan))

    def on_plan_ready(self, message: PlanReady) -> None:
        message.stop()
        plan = message.plan
        suggested = self.suggested_reason(plan) if plan.ask_reason else ""
        if self.relman.read_only and plan.mutating:
            # No question to ask: the engine refuses, and the app says what to run instead.
            self.relman.start_run(plan, suggested)
            return
        from screens.confirm import ConfirmScreen

        def confirmed(reason: str | None) -> None:
            if reason is not None:
                self.relman.start_run(plan, reason)

        self.app.push_screen(ConfirmScreen(plan, reason=suggested), confirmed)

    def suggested_reason(self, plan: ActionPlan) -> str:
        """The reason the confirmation offers for ``plan`` (the user may change it)."""
        return ""

    def on_engine_failed(self, message: EngineFailed) -> None:
        message.stop()
        self.notify(message.error, title=message.title, severity="error", timeout=10)
