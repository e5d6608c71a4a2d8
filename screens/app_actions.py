"""The actions of the command palette that work from any screen: tests, build, promote,
approve, rollback, diff, down, demo traffic started or stopped, and the rollout pane of an
environment.

Each takes its subject from the selection or asks for it (screens/subjects.py), then goes
the way an action's key goes (screens/base.py): its plan is read in a thread worker, said in
the confirmation dialog, and handed to the app, which runs it; in read-only mode a mutating
plan goes to the engine without a question, the engine refuses, and the app shows the
command to run from a session that may act.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, cast

from textual.app import App
from textual.screen import Screen

from screens.subjects import project_of, selection, with_environment, with_service

if TYPE_CHECKING:
    from core.api import Project
    from screens.actions import ActionPlan, EngineCall, Subject
    from screens.host import AppHost

# The demo load the palette starts: as `relman traffic --detach` does by default.
TRAFFIC_RATE = 5.0
Run = Callable[[App[Any], Screen[Any]], None]
MakePlan = Callable[["Project", bool], "ActionPlan"]


@dataclass(frozen=True)
class AppAction:
    """One action of the palette. ``action`` is the name a screen's key gives the same
    action: where the screen has that key, the palette offers the screen's instead."""

    action: str
    title: str
    help: str
    run: Run
    mutating: bool = True


def prepare(app: App[Any], verb: str, make: MakePlan) -> None:
    """Read the plan (a worker), then confirm it and hand it to the app."""
    from core.errors import ReleaseError

    host = cast("AppHost", app)
    project = project_of(app)
    if project is None or not host.can_start(verb):
        return
    app.notify(f"Reading what {verb} would do…", timeout=2)
    read_only = host.read_only

    def read() -> None:
        try:
            plan = make(project, read_only)
        except ReleaseError as error:
            app.call_from_thread(cannot, app, verb, error.message)
        except Exception as error:  # a bug: say it, never crash the UI
            app.call_from_thread(cannot, app, verb, f"{type(error).__name__}: {error}")
        else:
            app.call_from_thread(confirm, app, plan)

    app.run_worker(read, thread=True, exit_on_error=False, group="plan", name=f"plan {verb}")


def cannot(app: App[Any], verb: str, error: str) -> None:
    from screens.actions import VERB_WORDS

    words = VERB_WORDS.get(verb, verb)
    app.notify(error, title=f"Cannot {words}", severity="error", timeout=10)


def confirm(app: App[Any], plan: ActionPlan) -> None:
    """The dialog, then the run; in read-only mode the engine's refusal, without asking."""
    host = cast("AppHost", app)
    if host.read_only and plan.mutating:
        host.start_run(plan)
        return
    from screens.confirm import ConfirmScreen

    def confirmed(reason: str | None) -> None:
        if reason is not None:
            host.start_run(plan, reason)

    app.push_screen(ConfirmScreen(plan), confirmed)


def engine_plan(verb: str, subject: Subject) -> MakePlan:
    """The plan of a release action, as its key on the release screen reads it."""

    def make(project: Project, read_only: bool) -> ActionPlan:
        from screens.actions import make_plan

        return make_plan(verb, project, subject, read_only=read_only)

    return make


# ---------------------------------------------------------------------- the actions


def run_candidate(verb: str, question: str) -> Run:
    """Tests and builds: of the selected service's candidate."""

    def run(app: App[Any], screen: Screen[Any]) -> None:
        from screens.actions import Subject

        def chosen(service: str) -> None:
            prepare(app, verb, engine_plan(verb, Subject(service)))

        with_service(app, selection(screen), chosen, question)

    return run


def run_release(verb: str, question: str) -> Run:
    """Promote and approve: the selected release, else the chosen service's candidate."""

    def run(app: App[Any], screen: Screen[Any]) -> None:
        from screens.actions import Subject

        subject = selection(screen)
        if subject is not None and subject.env is not None and subject.release is None:
            subject = Subject(subject.service)  # nothing deployed there: its candidate
        if subject is not None:
            prepare(app, verb, engine_plan(verb, subject))
            return
        with_service(
            app,
            None,
            lambda service: prepare(app, verb, engine_plan(verb, Subject(service))),
            question,
        )

    return run


def run_rollback(app: App[Any], screen: Screen[Any]) -> None:
    from screens.actions import Subject

    def chosen(service: str, env: str) -> None:
        prepare(app, "rollback", engine_plan("rollback", Subject(service, None, env)))

    with_environment(app, selection(screen), chosen, "Roll back which environment?")


def run_rollout(app: App[Any], screen: Screen[Any]) -> None:
    """The rollout pane (screens/rollout.py) of the selected environment, or of the one the
    user picks; its keys pause, resume, abort or promote the rollout."""
    from screens.rollout import RolloutScreen

    project = project_of(app)
    if project is None:
        return
    order = list(project.config.environment_order)

    def chosen(service: str, env: str) -> None:
        app.push_screen(RolloutScreen(service, env, order))

    with_environment(app, selection(screen), chosen, "The rollout of which environment?")


def run_down(app: App[Any], screen: Screen[Any]) -> None:
    """Down: one environment, or every one (with the collector and the background load)."""
    from screens.subjects import ask

    project = project_of(app)
    if project is None:
        return
    subject = selection(screen)
    choices = [(env, f"{env} only") for env in project.config.environment_order]
    choices.append(("*", "every environment, the collector and the background traffic"))
    highlighted = subject.env if subject is not None and subject.env else "*"

    def chosen(value: str) -> None:
        env = None if value == "*" else value
        prepare(app, "down", lambda project, _ro: plan_down(project, env))

    ask(app, "Stop serving what?", choices, chosen, highlighted=highlighted)


def run_traffic(stop: bool) -> Run:
    def run(app: App[Any], screen: Screen[Any]) -> None:
        def chosen(service: str, env: str) -> None:
            make = plan_traffic_stop if stop else plan_traffic
            prepare(app, "traffic", lambda project, _ro: make(project, service, env))

        question = "Stop the demo load on which environment?" if stop else "Load which environment?"
        with_environment(app, selection(screen), chosen, question)

    return run


def run_diff(app: App[Any], screen: Screen[Any]) -> None:
    """The selected release (else the candidate) against another, chosen from what is live."""
    from screens.diff import choose_other_side

    subject = selection(screen)
    if subject is not None:
        choose_other_side(app, subject.service, subject.release)
        return
    with_service(
        app, None, lambda service: choose_other_side(app, service, None), "Diff which service?"
    )


APP_ACTIONS = (
    AppAction(
        "test",
        "Tests",
        "Run the test suites against the candidate",
        run_candidate("test", "Test which service?"),
        mutating=False,
    ),
    AppAction(
        "build",
        "Build",
        "Build the candidate's Bento",
        run_candidate("build", "Build which service?"),
    ),
    AppAction(
        "promote",
        "Promote",
        "Deploy the selected release (else the candidate) to the next environment",
        run_release("promote", "Promote which service?"),
    ),
    AppAction(
        "approve",
        "Approve",
        "Approve the selected release (else the candidate) for the next env that needs it",
        run_release("approve", "Approve which service's candidate?"),
    ),
    AppAction(
        "rollback", "Rollback", "Roll an environment back to its previous release", run_rollback
    ),
    AppAction(
        "diff",
        "Diff",
        "The selected release (else the candidate) against another: params, metrics, data",
        run_diff,
        mutating=False,
    ),
    AppAction(
        "rollout",
        "Rollout",
        "Steps and checks of an environment's rollout; pause, resume, abort or promote it",
        run_rollout,
        mutating=False,
    ),
    AppAction("down", "Down", "Stop serving an environment, or every one", run_down),
    AppAction(
        "traffic_start",
        "Start traffic",
        f"Demo load on an environment, {TRAFFIC_RATE:g} requests/s in the background",
        run_traffic(stop=False),
    ),
    AppAction(
        "traffic_stop",
        "Stop traffic",
        "Stop the background demo load on an environment",
        run_traffic(stop=True),
    ),
)


# ---------------------------------------------------------------------- their plans


def plan_down(project: Project, env: str | None) -> ActionPlan:
    from core import api
    from screens.actions import ActionPlan

    services = ", ".join(project.config.services)
    if env is None:
        envs = ", ".join(project.config.environment_order)
        what = f"every environment of {services} ({envs})"
        text = f"stop {what}, the collector and the background traffic"
        args: tuple[str, ...] = ("down",)
    else:
        what = f"{services} in {env}"
        text = f"stop {what}: its proxy and instances"
        args = ("down", "--env", env)
    text += "; each is recorded down, and the next promotion serves it again"

    def call(run: EngineCall) -> dict[str, Any]:
        document = api.down(project, env, read_only=run.read_only, log=run.log)
        stopped = [e for e in document.get("environments", []) if e.get("stopped")]
        run.log(
            f"passed  down  stopped {len(stopped)}"
            if stopped
            else "passed  down  nothing was running"
        )
        return document

    title = f"down {what}"
    return ActionPlan(
        "down", title, text, args, call, project, quit_text=f"{title} is not left halfway"
    )


def plan_traffic(project: Project, service: str, env: str) -> ActionPlan:
    from core import api
    from core.errors import ReadOnlyError
    from screens.actions import ActionPlan

    text = (
        f"send demo load to {service} in {env} in the background: {TRAFFIC_RATE:g} requests "
        "a second built from its training data, until stopped (Stop traffic, or relman down); "
        "a load already running there is replaced"
    )
    args = ("traffic", service, "--env", env, "--duration", "0", "--detach")

    def call(run: EngineCall) -> dict[str, Any]:
        if run.read_only:
            raise ReadOnlyError("read-only mode: traffic refused")
        pid = api.traffic_detached(
            project, service, env, rate=TRAFFIC_RATE, duration=0.0, log=run.log
        )
        run.log(f"passed  traffic  runs in the background (pid {pid})")
        return {"ok": True, "pid": pid}

    title = f"demo load on {service} in {env}"
    return ActionPlan("traffic", title, text, args, call, project)


def plan_traffic_stop(project: Project, service: str, env: str) -> ActionPlan:
    from core import api
    from screens.actions import ActionPlan

    text = f"stop the background demo load on {service} in {env}; a fault it injected is removed"
    args = ("traffic", service, "--env", env, "--stop")

    def call(run: EngineCall) -> dict[str, Any]:
        stopped = api.traffic_stop(project, service, env, read_only=run.read_only)
        run.log("passed  traffic  stopped" if stopped else "skipped  traffic  no load was running")
        return {"ok": True, "stopped": stopped}

    title = f"stop the demo load on {service} in {env}"
    return ActionPlan("traffic", title, text, args, call, project)
