"""What each kind of pipeline step does, and how it knows it was done already.

Each step function takes the run's :class:`Context` and the resolved step, acts, and returns
an :class:`Outcome` (passed, failed, waiting) with its one line. A step the driver finds
``running`` when it takes a run over (the relman before it was killed in the middle) is
simply called again: every step here is safe to call twice. ``commit`` finds its own commit by
the run's trailer, ``deploy`` finds the release already live (promote skips the switch) and
recovers a promotion left half-done, ``soak`` goes on from when it began; the rest
(``repro``, ``test``, ``gate``, ``build``, ``approve``) change nothing the second time. A
``run`` step's command is the user's: it is run again, so it should be safe to repeat
(docs/pipelines.md says so).
"""

from __future__ import annotations

import os
import subprocess
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

from core.cancel import Cancelled, CancelSignal
from core.config.model import Project
from core.errors import REPORTED, BlockedError, release_error
from core.ledger.steps import Log
from core.pipelines.definition import ResolvedPipeline, ResolvedStep

if TYPE_CHECKING:
    from core.lineage.candidate import Candidate

SOAK_POLL = 2.0  # seconds between two looks at the alerts during a soak


@dataclass
class Outcome:
    status: str  # passed | failed | waiting
    detail: str
    lines: list[str] = field(default_factory=list)
    result: dict[str, Any] = field(default_factory=dict)
    exit_code: int = 0  # of a failure: 1 blocked, 3 infrastructure


@dataclass
class Context:
    """What the steps of one run share while one relman drives it."""

    project: Project
    pipeline: ResolvedPipeline
    run_id: int
    reason: str
    log: Log
    cancel: CancelSignal
    release: str | None = None
    version: str | None = None
    # The commit the run started from, and who started it (four-eyes counts both).
    base: str = ""
    starter: str = ""
    # Records part of the running step's result at once (when a soak began), so a driver
    # that takes the run over knows it.
    note: Callable[[dict[str, Any]], None] = field(default=lambda _values: None)
    _candidate: Candidate | None = None

    @property
    def service(self) -> str:
        return self.pipeline.service

    def candidate(self, *, fresh: bool = False) -> Candidate:
        """The service's candidate (what the working tree would release), computed once
        until a step changes the tree (``fresh``)."""
        if fresh or self._candidate is None:
            from core.lineage.candidate import project_candidates

            self._candidate = project_candidates(self.project, [self.service])[self.service]
        return self._candidate


class _Deadline:
    """A cancel signal that is also set ``seconds`` from now: a step's timeout."""

    def __init__(self, outer: CancelSignal, seconds: float) -> None:
        self._outer = outer
        self._ends = time.monotonic() + seconds
        self.seconds = seconds

    def is_set(self) -> bool:
        return self._outer.is_set() or self.expired

    @property
    def expired(self) -> bool:
        return time.monotonic() >= self._ends

    def wait(self, seconds: float) -> bool:
        """Sleep up to ``seconds``, waking early when cancelled; True when set."""
        if isinstance(self._outer, threading.Event):
            self._outer.wait(min(seconds, max(0.0, self._ends - time.monotonic())))
        else:
            time.sleep(min(seconds, max(0.0, self._ends - time.monotonic())))
        return self.is_set()


def run_step(context: Context, step: ResolvedStep, result: dict[str, Any]) -> Outcome:
    """Do ``step`` once within its timeout; ``result`` is what it recorded before (a commit's
    sha, when a soak began). Failures come back as an outcome, never raised."""
    deadline = _Deadline(context.cancel, step.timeout)
    action = ACTIONS[step.kind]
    try:
        return action(context, step, deadline, result)
    except Cancelled as exc:
        if deadline.expired and not context.cancel.is_set():
            return Outcome("failed", f"timed out after {_seconds(step.timeout)}", exit_code=3)
        return Outcome("failed", f"cancelled: {exc}", exit_code=1)
    except REPORTED as exc:
        error = release_error(exc)
        return Outcome("failed", str(error), exit_code=error.exit_code)


def _seconds(value: float) -> str:
    from core.config.durations import format_duration

    return format_duration(value)


# ------------------------------------------------------------------------------ the steps


def verify(
    context: Context, _step: ResolvedStep, _deadline: _Deadline, _r: dict[str, Any]
) -> Outcome:
    """The candidate is clean and has no lineage problems; it becomes the run's release."""
    from core.ledger.releases import open_ledger, record_candidate

    cand = context.candidate(fresh=True)
    blocked = cand.verify_line()
    if blocked is not None:
        return Outcome("failed", blocked, exit_code=1)
    with open_ledger(context.project, read_only=False) as ledger:
        version = record_candidate(ledger, context.project, context.service, cand).version
    context.release, context.version = cand.release, version
    return Outcome(
        "passed",
        f"{context.service} {version} ({cand.release[:12]}) at {cand.git.commit[:12]}: "
        "no lineage problems",
        result={"release": cand.release, "version": version, "commit": cand.git.commit},
    )


def repro(
    context: Context, _step: ResolvedStep, deadline: _Deadline, _r: dict[str, Any]
) -> Outcome:
    from core.pipelines.retrain import repro as run_repro

    done = run_repro(context.project, context.service, log=context.log, cancel=deadline)
    context._candidate = None
    return Outcome("passed", done.detail, lines=list(done.lines), result={"stages": done.stages})


def commit(
    context: Context, step: ResolvedStep, deadline: _Deadline, _r: dict[str, Any]
) -> Outcome:
    from core.pipelines.retrain import commit_and_push

    done = commit_and_push(
        context.project,
        context.service,
        pipeline=context.pipeline.name,
        run_id=context.run_id,
        reason=context.reason,
        log=context.log,
        cancel=deadline,
        since=context.base,
    )
    context._candidate = None
    return Outcome(
        "passed", done.detail, lines=list(done.pushed), result={"commit": done.commit or ""}
    )


def test(context: Context, _step: ResolvedStep, deadline: _Deadline, _r: dict[str, Any]) -> Outcome:
    """The suites every environment the pipeline deploys to requires (all, when it deploys
    nowhere or they require none)."""
    from core.testing.suites import run_tests

    envs = [s.env for s in context.pipeline.steps if s.kind == "deploy" and s.env]
    config = context.project.config
    needed = list(dict.fromkeys(n for env in envs for n in config.environments[env].suites))
    cand = context.candidate()
    _release(context, cand)  # the tests are of the run's release: the tree must hold it
    report = run_tests(
        context.project,
        needed or None,
        log=context.log,
        lineage={context.service: cand},
        cancel=deadline,
    )
    lines = [f"{s.name}: {s.status}: {s.detail}" for s in report.suites]
    # Each test, as `relman test` keeps them: the run's JUnit, FAILED lines and annotations.
    cases = {"cases": [case for s in report.suites for case in s.to_step().get("cases", [])]}
    if report.ok:
        summary = ", ".join(f"{s.name} {s.detail}" for s in report.suites)
        return Outcome("passed", summary or "no suites", lines=lines, result=cases)
    failed = next(s for s in report.suites if s.status != "passed")
    return Outcome(
        "failed", f"{failed.name}: {failed.detail}", lines=lines, result=cases, exit_code=1
    )


def gate(
    context: Context, _step: ResolvedStep, _deadline: _Deadline, _r: dict[str, Any]
) -> Outcome:
    """What would block the release from the first environment the pipeline deploys to."""
    from core.delivery.gating import candidate_artifacts, evaluate_release
    from core.ledger.releases import open_ledger

    envs = [s.env for s in context.pipeline.steps if s.kind == "deploy" and s.env]
    env = envs[0] if envs else context.project.config.environment_order[0]
    cand = context.candidate()
    release = _release(context, cand)
    with open_ledger(context.project, read_only=False) as ledger:
        results = evaluate_release(
            context.project,
            ledger,
            context.service,
            env,
            release,
            cand.metrics,
            candidate_artifacts(cand),
        )
    lines = [f"{r.status} {r.name}: {r.detail}" for r in results]
    blocking = [r for r in results if r.blocks]
    if blocking:
        return Outcome(
            "failed", f"{env}: {blocking[0].name}: {blocking[0].detail}", lines, exit_code=1
        )
    passed = sum(1 for r in results if r.status == "passed")
    return Outcome(
        "passed", f"{env}: {passed} checks passed, {len(results) - passed} not needed", lines
    )


def build(
    context: Context, _step: ResolvedStep, deadline: _Deadline, _r: dict[str, Any]
) -> Outcome:
    from core.build.bento import build_release

    cand = context.candidate()
    _release(context, cand)
    built = build_release(
        context.project,
        context.service,
        cand,
        version=context.version,
        log=context.log,
        cancel=deadline,
    )
    document = built.to_step()
    status = "passed" if document["status"] == "passed" else "failed"
    return Outcome(status, document["detail"], result={"bento": built.bento.tag}, exit_code=3)


def deploy(
    context: Context, step: ResolvedStep, deadline: _Deadline, _r: dict[str, Any]
) -> Outcome:
    """Promote the run's release (not whatever the tree holds now) to the step's env."""
    from core.delivery.promote import promote

    assert step.env is not None
    release = _release(context)
    report = promote(
        context.project,
        context.service,
        step.env,
        release=release,
        log=context.log,
        strategy=step.strategy,
        cancel=deadline,
    )
    lines = [f"{s['status']} {s['name']}: {s.get('detail', '')}" for s in report.steps]
    if not report.ok and deadline.expired and not context.cancel.is_set():
        # A rollout hears the deadline as a stop and aborts to stable: say why it stopped.
        return Outcome(
            "failed",
            f"timed out after {_seconds(step.timeout)}: {report.error or 'promotion stopped'}",
            lines,
            exit_code=3,
        )
    if not report.ok:
        return Outcome(
            "failed", report.error or "promotion failed", lines, exit_code=report.exit_code
        )
    last = report.steps[-1]["detail"] if report.steps else ""
    switched = next((s for s in report.steps if s["name"] == "switch"), None)
    detail = switched["detail"] if switched else last
    return Outcome("passed", f"{step.env}: {detail}", lines, result={"url": report.url or ""})


def approve(
    context: Context, step: ResolvedStep, _deadline: _Deadline, result: dict[str, Any]
) -> Outcome:
    """Passes once the release has its approvals in the step's env from people other than
    the one driving the run and the one who started it (four-eyes: neither may let their
    own run through); until then the run waits."""
    from core.delivery.gates import evaluate_approvals
    from core.ledger.identity import current_user
    from core.ledger.releases import open_ledger

    assert step.env is not None
    release = _release(context)
    with open_ledger(context.project, read_only=False) as ledger:
        approvers = [approval.actor for approval in ledger.approvals(release, step.env)]
    driver = current_user(context.project.root)
    counted = [a for a in approvers if a != context.starter] if context.starter else approvers
    required = context.project.config.environments[step.env].approvals
    gate_result = evaluate_approvals(step.env, required, counted, driver, release=release[:12])
    if gate_result.blocks and context.starter != driver and context.starter in approvers:
        gate_result = replace(
            gate_result,
            detail=f"{gate_result.detail} ({context.starter} started this run: theirs does "
            "not count)",
        )
    if not gate_result.blocks:
        return Outcome("passed", f"{step.env}: {gate_result.detail}")
    waiting_since = float(result.get("waiting_since") or time.time())
    if time.time() - waiting_since > step.timeout:
        return Outcome(
            "failed",
            f"{step.env}: no approval within {_seconds(step.timeout)}: {gate_result.detail}",
            exit_code=1,
        )
    command = f"relman approve {release[:12]} --env {step.env}"
    return Outcome(
        "waiting",
        f"{step.env}: {gate_result.detail}",
        result={"waiting_since": waiting_since, "command": command, "env": step.env},
    )


def soak(
    context: Context, step: ResolvedStep, deadline: _Deadline, result: dict[str, Any]
) -> Outcome:
    """Watch the env for ``duration``: any alert firing there for the release fails it, and
    so does nobody watching (the collector not running, its store unreadable): a soak passes
    only when alerts could have fired. Resumed, it goes on from when it began."""
    from core.delivery.firing import firing_alerts
    from core.monitoring.collector_process import collector_pid

    assert step.env is not None and step.duration is not None
    release = _release(context)
    began = float(result.get("began") or time.time())
    if not result.get("began"):
        context.note({"began": began})  # a driver that takes the run over goes on from here
    ends = began + step.duration
    while True:
        blind = None
        if collector_pid(context.project) is None:
            blind = "the collector is not running, so no alert could fire"
        found, unread = firing_alerts(context.project)
        blind = blind or unread
        if blind:
            return Outcome(
                "failed",
                f"soak {step.env}: {blind}; start the collector (relman monitor, or any "
                "promotion) and resume the run",
                result={"began": began},
                exit_code=1,
            )
        alerts = [a for a in found.get((context.service, step.env), []) if a["release"] == release]
        if alerts:
            lines = [f"{a['name']}: {a['detail']}" for a in alerts]
            return Outcome(
                "failed",
                f"soak {step.env}: {lines[0]}"
                + (f" (and {len(lines) - 1} more)" if len(lines) > 1 else ""),
                lines,
                result={"began": began},
                exit_code=1,
            )
        left = ends - time.time()
        if left <= 0:
            return Outcome(
                "passed",
                f"soak {step.env}: no alert fired in {_seconds(step.duration)}",
                result={"began": began},
            )
        if deadline.wait(min(SOAK_POLL, left)):
            raise Cancelled(f"soak of {step.env} stopped")


def run(context: Context, step: ResolvedStep, deadline: _Deadline, _r: dict[str, Any]) -> Outcome:
    """The step's command in the project root, in a shell, with the project's interpreter
    first on PATH; exit 0 passes."""
    assert step.decl.cmd is not None
    python_bin = os.path.dirname(context.project.python())
    environ = {
        **os.environ,
        "PATH": os.pathsep.join([python_bin, os.environ.get("PATH", "")]),
        "RELMAN_PIPELINE": context.pipeline.name,
        "RELMAN_PIPELINE_RUN": str(context.run_id),
        "RELMAN_SERVICE": context.service,
        "RELMAN_RELEASE": context.release or "",
    }
    child = subprocess.Popen(
        step.decl.cmd,
        shell=True,
        cwd=context.project.root,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
        text=True,
        env=environ,
        start_new_session=True,
    )
    lines: list[str] = []
    reader = threading.Thread(target=_drain, args=(child, lines, context.log), daemon=True)
    reader.start()
    try:
        while child.poll() is None:
            if deadline.wait(0.2):
                _stop(child)
                reader.join(5)
                if deadline.expired and not context.cancel.is_set():
                    return Outcome(
                        "failed",
                        f"{step.decl.cmd}: timed out after {_seconds(step.timeout)}",
                        lines,
                        exit_code=1,
                    )
                raise Cancelled(f"{step.decl.cmd} stopped")
    finally:
        if child.poll() is None:  # Ctrl-C, or anything else that leaves here early
            _stop(child)
    reader.join(5)
    if child.returncode == 0:
        return Outcome("passed", f"{step.decl.cmd}: exit 0", lines)
    last = next((line for line in reversed(lines) if line.strip()), "")
    tail = f": {last.strip()}" if last else ""
    return Outcome("failed", f"{step.decl.cmd}: exit {child.returncode}{tail}", lines, exit_code=1)


def _drain(child: subprocess.Popen[str], lines: list[str], log: Log) -> None:
    assert child.stdout is not None
    for line in child.stdout:
        lines.append(line.rstrip("\n"))
        del lines[:-200]
        log(line.rstrip("\n"))


def _stop(child: subprocess.Popen[str]) -> None:
    """End the command and everything it started (its own session: one process group)."""
    from core.host.processes import stop_group

    stop_group(child.pid)
    child.wait(10)


def _release(context: Context, cand: Candidate | None = None) -> str:
    """The run's release; a build checks the tree still holds it."""
    if context.release is None:
        raise BlockedError("no release verified yet in this run; this step needs verify first")
    if cand is not None and cand.release != context.release:
        raise BlockedError(
            f"the working tree is now release {cand.release[:12]}, not the run's "
            f"{context.release[:12]}; check out its commit, or start a new run"
        )
    return context.release


Action = Callable[[Context, ResolvedStep, _Deadline, dict[str, Any]], Outcome]
ACTIONS: dict[str, Action] = {
    "verify": verify,
    "repro": repro,
    "commit": commit,
    "test": test,
    "gate": gate,
    "build": build,
    "deploy": deploy,
    "approve": approve,
    "soak": soak,
    "run": run,
}
