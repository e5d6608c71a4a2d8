"""A pipeline run as a recorded state machine: start it, drive it step by step, resume it.

Every step is recorded ``running`` before it acts and ``passed``/``failed``/``waiting``
after (store/ledger/pipelines.py), like a Step Functions execution. The run's plan is its
pipeline's steps with ``verify`` before the first one that needs the release fixed (test,
gate, build, deploy, approve, soak): the candidate is clean, it is recorded, and from then on
the run deploys that release, whatever the tree holds later.

A driver takes a run over when it is ``waiting`` (an approval came), or left ``running`` by a
relman that died on this host (``interrupted``); it re-enters the step that was running,
which is safe (core/pipelines/steps.py says why for each kind). A driver stopped by a signal
leaves the run ``interrupted`` at the step it was in, to be resumed.
"""

from __future__ import annotations

import contextlib
import os
import threading
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from core.cancel import CancelSignal
from core.config.model import Project
from core.errors import BlockedError, ReadOnlyError, UsageError
from core.host.processes import this_host
from core.ledger.pipeline_runs import driver_alive, seen_status
from core.ledger.releases import open_ledger
from core.ledger.steps import Log
from core.ledger.steps import quiet as _quiet
from core.pipelines.definition import (
    NEEDS_RELEASE,
    ResolvedPipeline,
    ResolvedStep,
    resolve,
)
from core.pipelines.steps import Context, Outcome, run_step

if TYPE_CHECKING:
    from store import Ledger
    from store.ledger.pipelines import PipelineRunRecord

VERIFY_TIMEOUT = 600.0
_NEVER = threading.Event()  # a cancel signal nobody sets


def plan(pipeline: ResolvedPipeline) -> list[ResolvedStep]:
    """The steps a run records: the pipeline's, with ``verify`` before the first one that
    needs the release."""
    from core.config.pipelines import StepDecl

    steps: list[ResolvedStep] = []
    verified = False
    for step in pipeline.steps:
        if not verified and step.kind in NEEDS_RELEASE:
            verify = ResolvedStep(
                position=0,
                decl=StepDecl(kind="verify"),
                timeout=VERIFY_TIMEOUT,
                retries=0,
                strategy=None,
                duration=None,
                sources={"timeout": "built-in", "retries": "built-in"},
            )
            steps.append(verify)
            verified = True
        steps.append(step)
    return [replace(step, position=index) for index, step in enumerate(steps)]


def start_run(
    project: Project,
    name: str,
    service: str,
    *,
    trigger: str = "manual",
    reason: str = "",
    read_only: bool = False,
) -> int:
    """Record a run of pipeline ``name`` for ``service`` beginning, held by this process; its
    id. BlockedError (exit 1) while another run of it is open for the service."""
    if read_only:
        raise ReadOnlyError(f"read-only mode: pipeline run {name} refused")
    pipeline = resolve(project.config, name, service)
    steps = plan(pipeline)
    # A step that builds or serves needs a service and a port: said before the run begins.
    for step in steps:
        if step.kind in ("build", "deploy"):
            project.config.require_service(service)
        if step.kind == "deploy" and step.env is not None:
            project.config.require_port(step.env)
    from core.errors import ProjectError
    from core.lineage.gitinfo import git

    # The commit the run starts from: its own commit is looked for after it, never before.
    try:
        base = git(project.root, "rev-parse", "-q", "--verify", "HEAD").strip()
    except ProjectError:  # no commit yet
        base = ""
    with open_ledger(project, read_only=False) as ledger:
        record = ledger.begin_pipeline_run(
            name,
            service,
            trigger=trigger,
            reason=reason or f"started by hand ({ledger.actor})",
            steps=[(step.name, step.kind) for step in steps],
            pid=os.getpid(),
            host=this_host(),
            context={"base": base},
        )
    return record.id


def drive(
    project: Project,
    run_id: int,
    *,
    log: Log = _quiet,
    cancel: CancelSignal | None = None,
    on_step: Callable[[int, str], None] | None = None,
) -> dict[str, Any]:
    """Drive run ``run_id`` (already held by this process) from its first step not done to
    its end, a wait for an approval, or a failure; the run document. Whatever escapes (a
    bug, a pipeline gone from relman.toml, Ctrl-C) still ends the run in the ledger: failed
    with its line, or interrupted, never left ``running`` under a live process."""
    signal = cancel if cancel is not None else _NEVER
    with open_ledger(project, read_only=False) as ledger:
        try:
            return _drive(project, ledger, run_id, log, signal, on_step)
        except BaseException as exc:
            from core.errors import REPORTED, release_error

            line = (
                str(release_error(exc))
                if isinstance(exc, REPORTED)
                else (" ".join(str(exc).split()) or type(exc).__name__)
            )
            with contextlib.suppress(Exception):
                record = ledger.get_pipeline_run(run_id)
                if record.open:
                    stopped = isinstance(exc, KeyboardInterrupt | SystemExit)
                    ledger.update_pipeline_run(
                        run_id,
                        status="interrupted" if stopped else "failed",
                        detail=f"stopped: {line}" if stopped else f"error: {line}",
                    )
            if isinstance(exc, REPORTED):
                document = run_document(ledger.get_pipeline_run(run_id), exit_code=1, error=line)
                document["exit_code"] = release_error(exc).exit_code
                return document
            raise


def _drive(
    project: Project,
    ledger: Ledger,
    run_id: int,
    log: Log,
    signal: CancelSignal,
    on_step: Callable[[int, str], None] | None,
) -> dict[str, Any]:
    record = ledger.get_pipeline_run(run_id)
    pipeline = resolve(project.config, record.pipeline, record.service)
    steps = plan(pipeline)
    names = [step.name for step in steps]
    if names != [step.name for step in record.steps]:
        then = ", ".join(step.name for step in record.steps)
        detail = (
            f"relman.toml changed pipeline {record.pipeline} since run #{run_id} began "
            f"({then} then, {', '.join(names)} now); start a new run"
        )
        ledger.update_pipeline_run(run_id, status="failed", detail=detail)
        return run_document(ledger.get_pipeline_run(run_id), exit_code=1, error=detail)
    context = Context(
        project=project,
        pipeline=pipeline,
        run_id=run_id,
        reason=record.reason,
        log=log,
        cancel=signal,
        base=str(record.context.get("base") or ""),
        starter=record.actor,
    )
    for step, recorded in zip(steps, record.steps, strict=True):
        if recorded.status in ("passed", "skipped"):
            if step.kind == "verify":
                context.release = recorded.result.get("release")
                context.version = recorded.result.get("version")
            continue
        if signal.is_set():  # stopped between two steps: the next one never began
            detail = f"stopped before {step.name}; relman pipeline resume {run_id} goes on"
            ledger.update_pipeline_run(run_id, status="interrupted", detail=detail)
            return run_document(ledger.get_pipeline_run(run_id), exit_code=1, error=detail)
        outcome, attempts = _attempts(
            ledger, context, step, recorded.result, on_step, recorded.status == "waiting"
        )
        if outcome.status == "passed":
            continue
        if outcome.status == "waiting":
            ledger.update_pipeline_run(run_id, status="waiting", detail=outcome.detail)
            return run_document(
                ledger.get_pipeline_run(run_id),
                exit_code=1,
                error=f"waiting at {step.name}: {outcome.detail}",
            )
        if signal.is_set():
            ledger.update_pipeline_step(
                run_id, step.position, status="pending", detail=f"stopped: {outcome.detail}"
            )
            detail = f"stopped at {step.name}; relman pipeline resume {run_id} goes on from there"
            ledger.update_pipeline_run(run_id, status="interrupted", detail=detail)
            return run_document(ledger.get_pipeline_run(run_id), exit_code=1, error=detail)
        tries = f" (after {attempts} attempts)" if attempts > 1 else ""
        detail = f"{step.name}: {outcome.detail}{tries}"
        ledger.update_pipeline_run(run_id, status="failed", detail=detail)
        return run_document(
            ledger.get_pipeline_run(run_id), exit_code=outcome.exit_code or 1, error=detail
        )
    version = context.version or (context.release or "")[:12]
    deployed = [s.env for s in steps if s.kind == "deploy" and s.env]
    where = f", live in {', '.join(deployed)}" if deployed else ""
    detail = f"{record.service} {version}{where}" if context.release else "all steps passed"
    ledger.update_pipeline_run(run_id, status="passed", detail=detail)
    return run_document(ledger.get_pipeline_run(run_id), exit_code=0)


def _attempts(
    ledger: Ledger,
    context: Context,
    step: ResolvedStep,
    result: dict[str, Any],
    on_step: Callable[[int, str], None] | None,
    was_waiting: bool = False,
) -> tuple[Outcome, int]:
    """Run ``step``, once and then up to its retries while it fails; the last outcome. A
    step that was waiting (for an approval) is looked at again, not attempted again."""
    attempts = 0
    while True:
        attempts += 1
        ledger.update_pipeline_step(
            context.run_id, step.position, status="running", attempt=not was_waiting
        )
        was_waiting = False

        def note(values: dict[str, Any], position: int = step.position) -> None:
            ledger.update_pipeline_step(context.run_id, position, status="running", result=values)

        context.note = note
        if on_step is not None:
            on_step(step.position, "running")
        context.log(f"{step.name} ...")
        started = time.perf_counter()
        outcome = run_step(context, step, result)
        seconds = time.perf_counter() - started
        merged = {**result, **outcome.result}
        status = outcome.status if outcome.status != "failed" else "failed"
        ledger.update_pipeline_step(
            context.run_id,
            step.position,
            status=status,  # type: ignore[arg-type]
            detail=outcome.detail,
            output=outcome.lines,
            result=merged,
            seconds=seconds,
        )
        if step.kind == "verify" and outcome.status == "passed":
            ledger.update_pipeline_run(context.run_id, release=context.release)
        context.log(f"{outcome.status:<7} {step.name}  {outcome.detail}")
        if on_step is not None:
            on_step(step.position, outcome.status)
        retry = (
            outcome.status == "failed" and attempts <= step.retries and not context.cancel.is_set()
        )
        if not retry:
            return outcome, attempts
        result = merged
        context.log(f"retrying {step.name} ({attempts} of {step.retries + 1} attempts failed)")


def run_pipeline(
    project: Project,
    name: str,
    service: str | None = None,
    *,
    trigger: str = "manual",
    reason: str = "",
    read_only: bool = False,
    log: Log = _quiet,
    cancel: CancelSignal | None = None,
    junit: Path | None = None,
    summary: Path | None = None,
) -> dict[str, Any]:
    """`relman pipeline run NAME [--service S]`: start and drive a run for the service (the
    only one, or the one named); the run document, with JUnit and summary written."""
    config = project.config
    if service is None:
        if len(config.services) > 1:
            raise UsageError(
                f"pipeline {name}: give --service (services: {', '.join(config.services)})"
            )
        service = next(iter(config.services))
    from core.delivery.release import _check_writable

    for path, option in ((junit, "--junit"), (summary, "--summary")):
        _check_writable(path, option)
    resolve(config, name, service)  # a usage error before anything is recorded
    try:
        run_id = start_run(
            project, name, service, trigger=trigger, reason=reason, read_only=read_only
        )
    except Exception as exc:
        from store.errors import LedgerConflict

        if isinstance(exc, LedgerConflict):
            raise BlockedError(str(exc)) from None
        raise
    document = drive(project, run_id, log=log, cancel=cancel)
    _write_reports(document, junit, summary)
    return document


def resume(
    project: Project,
    run_id: int,
    *,
    read_only: bool = False,
    log: Log = _quiet,
    cancel: CancelSignal | None = None,
) -> dict[str, Any]:
    """`relman pipeline resume RUN`: take over a run that waits or was interrupted and drive
    it on. Refused (exit 1) while a live relman drives it; exit 2 for a run that ended."""
    if read_only:
        raise ReadOnlyError(f"read-only mode: resuming pipeline run #{run_id} refused")
    claim(project, run_id)
    return drive(project, run_id, log=log, cancel=cancel)


def claim(project: Project, run_id: int) -> None:
    """Make this process the driver of ``run_id``, when it waits or its driver is gone."""
    from store.errors import LedgerConflict

    with open_ledger(project, read_only=False) as ledger:
        record = _open_run(ledger, run_id, "wait for it, or stop that relman first")
        try:
            ledger.claim_pipeline_run(
                run_id, pid=os.getpid(), host=this_host(), seen=record.updated_at
            )
        except LedgerConflict as exc:
            raise BlockedError(str(exc)) from None


def _open_run(ledger: Ledger, run_id: int, busy: str) -> PipelineRunRecord:
    """Run ``run_id`` when it has not ended and no live relman drives it: UsageError for
    one unknown or ended, BlockedError (``busy`` says what to do) for one being driven."""
    from store.errors import RecordNotFound

    try:
        record = ledger.get_pipeline_run(run_id)
    except RecordNotFound as exc:
        raise UsageError(str(exc)) from None
    if not record.open:
        raise UsageError(
            f"pipeline run #{run_id} already ended {record.status}: {record.detail}; "
            f"start a new one with relman pipeline run {record.pipeline}"
        )
    if record.status == "running" and driver_alive(record):
        raise BlockedError(
            f"pipeline run #{run_id} is being driven by pid {record.pid} on {record.host}; " + busy
        )
    return record


def cancel_run(project: Project, run_id: int, *, read_only: bool = False) -> dict[str, Any]:
    """`relman pipeline cancel RUN`: end a run that waits or was interrupted, for good (no
    watcher resumes it). Refused while a live relman drives it: stop that one first."""
    if read_only:
        raise ReadOnlyError(f"read-only mode: cancelling pipeline run #{run_id} refused")
    with open_ledger(project, read_only=False) as ledger:
        _open_run(
            ledger, run_id, "stop that relman first (it leaves the run interrupted), then cancel it"
        )
        done = ledger.update_pipeline_run(
            run_id, status="cancelled", detail=f"cancelled by {ledger.actor}"
        )
        return run_document(done, exit_code=0)


def run_document(
    record: PipelineRunRecord, *, exit_code: int | None = None, error: str | None = None
) -> dict[str, Any]:
    """A run as `relman --json pipeline runs` and `pipeline run` print it (docs/json.md)."""
    status = seen_status(record)
    steps: list[dict[str, Any]] = []
    for step in record.steps:
        steps.append(
            {
                "name": step.name,
                "kind": step.kind,
                "status": step.status,
                "seconds": step.seconds,
                "detail": step.detail,
                "attempts": step.attempts,
                "started": step.started_at,
                "finished": step.finished_at,
                "output": list(step.output),
            }
        )
        if step.result.get("cases"):
            steps[-1]["cases"] = step.result["cases"]
    waiting = None
    if status == "waiting":
        current = next((s for s in record.steps if s.status == "waiting"), None)
        if current is not None:
            waiting = {
                "step": current.name,
                "env": current.result.get("env"),
                "release": record.release,
                "command": current.result.get("command"),
            }
    version = next(
        (s.result.get("version") for s in record.steps if s.kind == "verify" and s.result), None
    )
    document: dict[str, Any] = {
        "ok": status == "passed" if exit_code is not None else True,
        "run": record.id,
        "pipeline": record.pipeline,
        "service": record.service,
        "status": status,
        "trigger": record.trigger,
        "reason": record.reason,
        "actor": record.actor,
        "release": record.release,
        "version": version,
        "detail": record.detail,
        "started": record.started_at,
        "finished": record.finished_at,
        "driver": {"pid": record.pid, "host": record.host},
        "waiting_for": waiting,
        "steps": steps,
    }
    if exit_code is not None:
        document["exit_code"] = exit_code
        if error:
            document["error"] = error
    return document


def runs_document(
    project: Project, *, pipeline: str | None = None, service: str | None = None, limit: int = 20
) -> dict[str, Any]:
    """`relman pipeline runs`: the newest runs first, each with its steps."""
    with open_ledger(project, read_only=True) as ledger:
        records = ledger.pipeline_runs(pipeline=pipeline, service=service, limit=limit)
    return {"ok": True, "runs": [run_document(record) for record in records]}


def _write_reports(document: dict[str, Any], junit: Path | None, summary: Path | None) -> None:
    from core.delivery.summary import write_summary
    from core.testing.junit import steps_junit

    shown = {
        **document,
        "steps": [
            {
                **step,
                "status": step["status"] if step["status"] in ("passed", "failed") else "skipped",
            }
            for step in document["steps"]
        ],
    }
    if junit is not None:
        steps_junit(shown, junit)
    written = write_summary(shown, summary)
    document["reports"] = [str(path) for path in written] + ([str(junit)] if junit else [])


def ready_to_resume(project: Project, record: PipelineRunRecord) -> bool:
    """A waiting run can go on: the approval it waits for was given, or its wait timed out
    (the step then fails with that line)."""
    from core.delivery.gating import approvals_result

    current = next((s for s in record.steps if s.status == "waiting"), None)
    if current is None or current.kind != "approve" or record.release is None:
        return current is None
    env = current.result.get("env") or current.name.partition(":")[2]
    with open_ledger(project, read_only=False) as ledger:
        if not approvals_result(project, ledger, record.release, env).blocks:
            return True
    try:
        pipeline = resolve(project.config, record.pipeline, record.service)
    except UsageError:
        return True  # the pipeline is gone: driving it fails it with that line
    steps = plan(pipeline)
    timeout = steps[current.position].timeout if current.position < len(steps) else 0.0
    since = float(current.result.get("waiting_since") or time.time())
    return time.time() - since > timeout
