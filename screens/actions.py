"""What each release action would do, said before it is done.

A plan is read fresh from the engine (in a worker: these calls touch git, DVC and the
ledger) when the user presses the key, so the confirmation dialog says exactly what will
happen now: ``promote iris v1.4.0 (3f9a2c1) to prod, replacing v1.3.2; gates: 4 passed,
1 blocking``. Everything here composes core.api; the engine itself decides again when the
action runs, and its word is final.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from core import api
from core.errors import ReadOnlyError, ReleaseError, UsageError
from screens.common import command_line, label

Log = Callable[[str], None]
MUTATING_VERBS = frozenset({"promote", "approve", "rollback", "build", "down", "traffic", "resume"})
# How a notification names each verb: "Cannot roll back".
VERB_WORDS = {"rollback": "roll back", "test": "run the tests"}
OnEvent = Callable[[Any], None]


@dataclass(frozen=True)
class EngineCall:
    """What a running action gets from the app: where to log, who is asking, and why; and
    the event that asks it to stop (passed to the engine by the plans that can stop)."""

    log: Log
    on_event: OnEvent
    read_only: bool
    reason: str = ""
    cancel: threading.Event = field(default_factory=threading.Event)


@dataclass(frozen=True)
class Subject:
    """What a screen shows: a service's release (None: the candidate), seen from ``env``."""

    service: str
    release: str | None = None
    env: str | None = None


@dataclass(frozen=True)
class ActionPlan:
    verb: str  # promote | approve | rollback | test | build
    title: str  # what the run screen and notifications call it
    text: str  # the confirmation: exactly what will happen
    args: tuple[str, ...]  # the relman command line that does the same
    call: Callable[[EngineCall], dict[str, Any]] = field(repr=False, compare=False)
    project: api.Project | None = field(default=None, repr=False, compare=False)
    ask_reason: bool = False
    # What cancelling it halfway does, said in the cancel dialog; "" when it cannot be
    # cancelled (a promotion or rollback is never left half done).
    cancel_text: str = ""
    # What quitting relman while it runs does to it, said in the quit dialog: cancelled
    # and its processes stopped, or (not cancellable) why relman waits for its end.
    quit_text: str = ""
    # What may still run when relman quits before a cancelled call has stopped.
    processes: str = ""

    @property
    def cancellable(self) -> bool:
        return bool(self.cancel_text)

    @property
    def mutating(self) -> bool:
        """Whether the engine refuses it in read-only mode (tests then run unrecorded)."""
        return self.verb in MUTATING_VERBS

    def command(self, reason: str = "") -> str:
        """The command a session that may act runs to do the same."""
        args = list(self.args)
        if self.ask_reason:
            args += ["--reason", reason or '"..."']
        return command_line(args, project_root=self.project.root if self.project else None)


class PlanError(UsageError):
    """The action cannot apply here (nothing to roll back, no next environment)."""


def next_environment(order: list[str], live_in: list[str]) -> str | None:
    """The environment after the furthest one ``live_in`` (the first when none)."""
    if not live_in:
        return order[0] if order else None
    furthest = max(order.index(env) for env in live_in)
    return order[furthest + 1] if furthest + 1 < len(order) else None


@dataclass(frozen=True)
class Facts:
    """What the plans need to know of a subject, from ``api.status`` (and ``live_at``)."""

    service: str
    candidate: dict[str, Any]
    environments: dict[str, dict[str, Any]]
    release: str
    version: str | None
    commit: str
    is_candidate: bool
    live_in: list[str]
    next_env: str | None

    @property
    def name(self) -> str:
        """``v1.4.0 (3f9a2c1)``: the version (or release id) and the commit."""
        shown = self.version or self.release
        return f"{shown} ({self.commit[:7]})" if self.commit else shown


def gather(project: api.Project, subject: Subject) -> Facts:
    status = api.status(project)
    service = next((s for s in status["services"] if s["name"] == subject.service), None)
    if service is None:
        raise PlanError(f"no service {subject.service} in {project.config_path.name}")
    cand = service["candidate"]
    envs: dict[str, dict[str, Any]] = service["environments"]
    release = subject.release or cand["release"]
    is_candidate = release == cand["release"]
    order = list(envs)
    live_in = [name for name in order if envs[name].get("release") == release]
    version = next((envs[name].get("version") for name in live_in), None)
    commit = cand["git"].get("commit") or "" if is_candidate else ""
    if not is_candidate and live_in:
        moment = datetime.now(UTC).isoformat()
        found = api.live_at(project, moment, service=subject.service, env=live_in[0])["live"]
        commit = next((str(item.get("commit") or "") for item in found), "")
    return Facts(
        subject.service,
        cand,
        envs,
        release,
        version,
        commit,
        is_candidate,
        live_in,
        next_environment(order, live_in),
    )


def gate_summary(steps: list[dict[str, Any]]) -> str:
    """``4 passed, 1 blocking, 2 not needed``."""
    counts = {
        status: sum(step["status"] == status for step in steps)
        for status in ("passed", "failed", "skipped")
    }
    parts = [f"{counts['passed']} passed"]
    if counts["failed"]:
        parts.append(f"{counts['failed']} blocking")
    if counts["skipped"]:
        parts.append(f"{counts['skipped']} not needed")
    return ", ".join(parts)


def half_switched(title: str, env: str) -> str:
    """Why quitting waits for a promotion or rollback: it is never left halfway."""
    return f"{title} cannot be interrupted safely: {env} is never left half switched"


def plan_promote(project: api.Project, subject: Subject, *, read_only: bool = False) -> ActionPlan:
    facts = gather(project, subject)
    env = facts.next_env
    if env is None:
        last = facts.live_in[-1] if facts.live_in else "the last environment"
        if read_only:
            # Read-only first: the order is not what stops this session (as for rollback).
            raise ReadOnlyError(
                f"read-only mode: this session may not promote ({facts.service} {facts.name} "
                f"is live in {last}, the last environment)"
            )
        raise PlanError(
            f"{facts.service} {facts.name} is live in {last}, the last environment: "
            "there is nothing further to promote it to"
        )
    now = facts.environments[env]
    replacing = label(now.get("release"), now.get("version")) if now.get("release") else None
    text = f"promote {facts.service} {facts.name} to {env}, " + (
        f"replacing {replacing}" if replacing else "where nothing is deployed yet"
    )
    if facts.is_candidate:
        steps = api.gate(project, facts.service, env)["steps"]
        text += f"; gates: {gate_summary(steps)}"
        blocking = [step for step in steps if step["status"] == "failed"]
        if blocking:
            text += f". It will be blocked: {blocking[0]['name']}: {blocking[0]['detail']}"
    else:
        text += "; gates are checked as it runs"
        # The one check that reads what happens now, not what was recorded: said up front.
        firing = api.firing_before(project, facts.service, env, facts.release)
        if firing:
            text += f". It will be blocked: order: {firing}"
    args = ["promote", facts.service, "--to", env]
    if not facts.is_candidate:
        args += ["--release", facts.release]
    release = None if facts.is_candidate else facts.release
    service = facts.service

    def call(run: EngineCall) -> dict[str, Any]:
        return api.promote(
            project, service, env, release=release, read_only=run.read_only, log=run.log
        )

    title = f"promote {service} {facts.name} to {env}"
    return ActionPlan(
        "promote", title, text, tuple(args), call, project, quit_text=half_switched(title, env)
    )


def plan_approve(project: api.Project, subject: Subject) -> ActionPlan:
    facts = gather(project, subject)
    order = list(facts.environments)
    start = order.index(facts.next_env) if facts.next_env else len(order)
    needing = [env for env in order[start:] if project.config.environments[env].approvals]
    if not needing:
        raise PlanError(
            f"no environment {facts.service} {facts.name} goes to next needs an approval"
        )
    env = needing[0]
    text = f"approve {facts.service} {facts.name} for {env} as {api.current_user(project)}"
    if facts.is_candidate:
        steps = api.gate(project, facts.service, env)["steps"]
        approvals = next((step for step in steps if step.get("kind") == "approvals"), None)
        if approvals:
            text += f"; now: {approvals['detail']}"
    release, service = facts.release, facts.service

    def call(run: EngineCall) -> dict[str, Any]:
        document = api.approve(project, release, env, read_only=run.read_only)
        run.log(f"passed  approve  {document['approver']} approved {release} for {env}")
        run.log(str(document.get("note", "")))
        return document

    title = f"approve {service} {facts.name} for {env}"
    return ActionPlan(
        "approve",
        title,
        text,
        ("approve", release, "--env", env),
        call,
        project,
        quit_text=f"{title} is being recorded and cannot be interrupted safely",
    )


def plan_rollback(project: api.Project, subject: Subject, *, read_only: bool = False) -> ActionPlan:
    service, env = subject.service, subject.env
    if env is None:
        raise PlanError("choose an environment in the overview to roll back")
    if read_only:
        # The engine refuses before it looks at anything: what matters is the command.
        text = f"roll back {service} in {env}"
    else:
        envs = next(s for s in api.status(project)["services"] if s["name"] == service)
        now = envs["environments"][env]
        if not now.get("release"):
            raise PlanError(f"nothing is deployed in {env} to roll back")
        target = api.rollback_target(project, service, env)
        if target is None:
            raise PlanError(
                f"no earlier release was live in {env} to roll back to; name one with "
                f"relman rollback {service} --env {env} --to ID"
            )
        # A release never live in env needs env's approvals: said as the promote dialog
        # says a blocking gate (the engine decides again when it runs).
        approvals = target["approvals"]
        cleared = f"{approvals['detail']}; other " if approvals["status"] == "passed" else ""
        text = (
            f"roll back {service} in {env} from {label(now['release'], now.get('version'))} "
            f"to {label(target['release'], target['version'])}; {cleared}gates skipped, "
            "health checked; the previous release is restored if the new one fails"
        )
        if approvals["status"] == "failed":
            text += f". It will be blocked: approvals: {approvals['detail']}"

    def call(run: EngineCall) -> dict[str, Any]:
        return api.rollback(
            project, service, env, reason=run.reason, read_only=run.read_only, log=run.log
        )

    title = f"roll back {service} in {env}"
    return ActionPlan(
        "rollback",
        title,
        text,
        ("rollback", service, "--env", env),
        call,
        project,
        ask_reason=True,
        quit_text=half_switched(title, env),
    )


def plan_tests(project: api.Project, subject: Subject, *, read_only: bool = False) -> ActionPlan:
    facts = gather(project, subject)
    if not facts.is_candidate:
        raise PlanError("tests run against the candidate (the working tree); open its row")
    suites = ", ".join(project.config.suites) or "none declared"
    text = f"run the test suites {suites} against the candidate {facts.name}"
    recorded = False
    if read_only:
        text += "; results are not recorded: read-only mode"
    elif facts.candidate["git"].get("dirty"):
        text += "; results are not recorded: the working tree has uncommitted changes"
    else:
        text += f"; results are recorded for release {facts.release}"
        recorded = True
    cancel_text = (
        f"stop the test suites of {facts.service} {facts.name} now: each running pytest is "
        "ended with everything it started (SIGTERM, SIGKILL after 1 s) and suites not started "
        "never start; "
        + (
            "the run is recorded as cancelled, suites that finished keep their results, "
            "the others keep their last complete ones"
            if recorded
            else "nothing is recorded"
        )
    )

    def call(run: EngineCall) -> dict[str, Any]:
        return api.run_tests(
            project,
            on_event=run.on_event,
            log=run.log,
            read_only=run.read_only,
            cancel=run.cancel,
        )

    title = f"test {facts.service} {facts.name}: {suites}"
    return ActionPlan(
        "test",
        title,
        text,
        ("test",),
        call,
        project,
        cancel_text=cancel_text,
        quit_text=(
            f"the running tests of {facts.service} {facts.name} are cancelled and their "
            "processes stopped"
        ),
        processes=f"the pytest processes of the tests of {facts.service} {facts.name}",
    )


def plan_build(project: api.Project, subject: Subject) -> ActionPlan:
    facts = gather(project, subject)
    if not facts.is_candidate:
        raise PlanError("builds are made of the candidate (the working tree); open its row")
    build_file = project.config.services[facts.service].build
    text = (
        f"build the Bento of {facts.service} {facts.name} from {build_file}; a Bento this "
        "release already has is reused"
    )
    if facts.candidate.get("problems"):
        text += f". It will be refused: {facts.candidate['problems'][0]}"
    service = facts.service
    cancel_text = (
        f"stop the build of the Bento of {service} {facts.name} now: the BentoML build is "
        "ended with everything it started, and the build run is recorded as cancelled; the "
        "next build starts over"
    )

    def call(run: EngineCall) -> dict[str, Any]:
        return api.build(project, service, log=run.log, read_only=run.read_only, cancel=run.cancel)

    title = f"build {service} {facts.name}"
    return ActionPlan(
        "build",
        title,
        text,
        ("build", service),
        call,
        project,
        cancel_text=cancel_text,
        quit_text=(
            f"the running build of {service} {facts.name} is cancelled and its processes stopped"
        ),
        processes=f"the BentoML build process of {service} {facts.name}",
    )


PLANS: dict[str, Callable[..., ActionPlan]] = {
    "promote": plan_promote,
    "approve": plan_approve,
    "rollback": plan_rollback,
    "test": plan_tests,
    "build": plan_build,
}


def make_plan(
    verb: str, project: api.Project, subject: Subject, *, read_only: bool = False
) -> ActionPlan:
    """The plan of ``verb``; a ReleaseError (PlanError included) says why there is none."""
    try:
        if verb in ("test", "rollback", "promote"):
            return PLANS[verb](project, subject, read_only=read_only)
        return PLANS[verb](project, subject)
    except ReleaseError:
        raise
    except (KeyError, ValueError, OSError) as error:
        raise PlanError(f"cannot prepare {verb}: {error}") from error
