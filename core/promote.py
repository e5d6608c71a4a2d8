"""`relman promote`, `relman rollback`, `relman approve` and `relman down`.

promote: order -> gates (suites, metric gates, approvals; the checks of `relman gate`) ->
build (only when the candidate has no Bento yet) -> lock -> validate -> switch -> retire
the previous instance -> GTO tags. rollback: the same deploy sequence for a release that
was live in the environment before, gates skipped, the reason recorded. Each command first
reconciles the environment with what really runs (core.recovery).
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from core.config import Project
from core.deploy import Steps
from core.errors import BlockedError, ReadOnlyError, ReleaseError, UsageError
from core.gates import GateResult
from core.gating import candidate_artifacts, evaluate_release
from core.lineage import Candidate
from core.recovery import this_host
from core.releases import find_release, open_ledger, record_candidate
from core.runs import finishing_runs
from core.targets import target_for
from store import Ledger, ReleaseRecord
from store.records import RunStatus

Log = Callable[[str], None]


def _quiet(_line: str) -> None:
    pass


@dataclass
class DeployReport:
    """What a promote or rollback did: its steps, and the error that stopped it, if any."""

    kind: str
    service: str
    env: str
    release: str | None = None
    version: str | None = None
    url: str | None = None
    steps: list[dict[str, Any]] = field(default_factory=list)
    error: str | None = None
    exit_code: int = 0
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return self.exit_code == 0

    def to_dict(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "kind": self.kind,
            "service": self.service,
            "env": self.env,
            "release": self.release,
            "version": self.version,
            "url": self.url,
            "steps": self.steps,
            "error": self.error,
            "exit_code": self.exit_code,
            "seconds": round(self.seconds, 3),
        }


def promote(
    project: Project,
    service: str,
    env: str,
    *,
    release: str | None = None,
    force: bool = False,
    read_only: bool = False,
    log: Log = _quiet,
    candidate: Candidate | None = None,
) -> DeployReport:
    """Deploy ``release`` (default: the candidate) of ``service`` to ``env`` through its
    gates. Blocked (exit 1) and failed (exit 3, previous release restored) promotions come
    back as a report with ``error`` set; usage errors raise."""
    project.config.check_names(service=service, env=env)
    if read_only:
        raise ReadOnlyError(f"read-only mode: promote of {service} to {env} refused")
    started = time.perf_counter()
    report = DeployReport("promote", service, env)
    with open_ledger(project, read_only=False) as ledger:
        candidate_once = _CandidateOnce(project, service, candidate)
        record, metrics, artifacts, bento = _subject(
            project, ledger, service, release, candidate_once
        )
        report.release, report.version = record.id, record.version
        with _recorded(ledger, report, started, log, details={"force": force}) as steps:
            _recover(project, ledger, service, env, steps)
            results = evaluate_release(
                project, ledger, service, env, record.id, metrics, artifacts, forced=force
            )
            for result in results:
                steps.add(result)
            if force and results[0].status == "skipped" and "overridden" in results[0].detail:
                ledger.log_event(
                    "promote.force",
                    outcome="order skipped",
                    service=service,
                    env=env,
                    release_id=record.id,
                    reason=results[0].detail,
                )
            blocking = [result for result in results if result.blocks]
            if blocking:
                raise BlockedError(_blocked_line(env, blocking))
            _check_tags(project, ledger, record, env, steps)
            if _already_live(project, ledger, record, env):
                steps.skipped("switch", f"{record.version or record.id} already live in {env}")
            else:
                if bento is None:
                    bento = _build(project, record, candidate_once, steps)
                _deploy(project, ledger, record, env, bento, "promote", "", steps)
            report.url = project_url(project, env)
            _tags(project, ledger, record, env, steps)
    return report


def rollback(
    project: Project,
    service: str,
    env: str,
    *,
    to: str | None = None,
    reason: str = "",
    read_only: bool = False,
    log: Log = _quiet,
) -> DeployReport:
    """Back to the last release that was live in ``env`` before the current one (or ``to``):
    gates skipped, the health check not; the audit log says who and why."""
    project.config.check_names(service=service, env=env)
    if read_only:
        raise ReadOnlyError(f"read-only mode: rollback of {service} in {env} refused")
    from core.bento import find_bento

    started = time.perf_counter()
    report = DeployReport("rollback", service, env)
    with open_ledger(project, read_only=False) as ledger:
        current = ledger.environment_state(service, env)
        current_id = current.release_id if current else None
        if to is not None:
            record = find_release(ledger, [service], to)
            if record.service != service:
                raise UsageError(f"release {record.id} belongs to {record.service}, not {service}")
        else:
            record = _previous_release(ledger, service, env, current_id)
        bento = find_bento(service, record.id)
        if bento is None:
            raise BlockedError(
                f"no Bento of {service} {record.version or record.id} in this machine's "
                "BentoML store; check out its commit and run `relman build`"
            )
        report.release, report.version = record.id, record.version
        why = " ".join(reason.split()) or "no reason given"
        with _recorded(ledger, report, started, log, details={"to": to, "reason": why}) as steps:
            _recover(project, ledger, service, env, steps)
            steps.skipped("gates", f"skipped for a rollback (reason: {why})")
            _deploy(project, ledger, record, env, bento.tag, "rollback", why, steps)
            report.url = project_url(project, env)
            _tags(project, ledger, record, env, steps)
    return report


def approve(
    project: Project, release: str, env: str, *, comment: str = "", read_only: bool = False
) -> dict[str, Any]:
    """Record the current user's approval of ``release`` for ``env``."""
    project.config.check_names(env=env)
    if read_only:
        raise ReadOnlyError(f"read-only mode: approval of {release} for {env} refused")
    with open_ledger(project, read_only=False) as ledger:
        record = find_release(ledger, list(project.config.services), release)
        approval = ledger.approve(record.id, env, comment=comment)
        needed = project.config.environments[env].approvals
    return {
        "ok": True,
        "release": record.id,
        "version": record.version,
        "service": record.service,
        "env": env,
        "approver": approval.actor,
        "at": approval.at,
        "required": needed,
    }


def down(
    project: Project,
    env: str | None = None,
    *,
    read_only: bool = False,
    log: Log = _quiet,
) -> dict[str, Any]:
    """Stop the locally served environments (all, or ``env``) of every service."""
    project.config.check_names(env=env)
    if read_only:
        raise ReadOnlyError("read-only mode: down refused")
    from core.recovery import recover

    envs = [env] if env else project.config.environment_order
    stopped: list[dict[str, Any]] = []
    with open_ledger(project, read_only=False) as ledger:
        for service in project.config.services:
            for name in envs:
                recover(project, ledger, service, name, log)
                ran = target_for(project, service, name).down()
                state = ledger.environment_state(service, name)
                if state is not None and state.state != "down":
                    ledger.set_environment_state(service, name, "down")
                if ran:
                    log(f"stopped {service} in {name}")
                stopped.append({"service": service, "env": name, "stopped": ran})
    return {"ok": True, "environments": stopped}


def project_url(project: Project, env: str) -> str:
    config = project.config.environments[env]
    return f"http://{config.host}:{config.port}"


# ---------------------------------------------------------------------------------- helpers


class _CandidateOnce:
    """The candidate of a service, computed on first use only (DVC and git are slow), or
    the one the caller already has (the release pipeline computed it to verify)."""

    def __init__(self, project: Project, service: str, given: Candidate | None) -> None:
        self._project, self._service, self._value = project, service, given

    def __call__(self) -> Candidate:
        if self._value is None:
            from core.lineage import project_candidates

            self._value = project_candidates(self._project, [self._service])[self._service]
        return self._value


def _subject(
    project: Project,
    ledger: Ledger,
    service: str,
    release: str | None,
    candidate: _CandidateOnce,
) -> tuple[ReleaseRecord, dict[str, Any], GateResult, str | None]:
    """The release to promote, its metrics, its data-and-model result and its Bento tag."""
    from core.bento import find_bento

    if release is None:
        cand = candidate()
        record = record_candidate(ledger, project, service, cand)
        found = find_bento(service, record.id)
        return record, cand.metrics, candidate_artifacts(cand), found.tag if found else None
    record = find_release(ledger, [service], release)
    if record.service != service:
        raise UsageError(f"release {record.id} belongs to {record.service}, not {service}")
    found = find_bento(service, record.id)
    if found is None:
        cand = candidate()
        if cand.release == record.id:  # the working tree's own release: build it as usual
            return record, cand.metrics, candidate_artifacts(cand), None
        raise BlockedError(
            f"no Bento of {service} {record.version or record.id} in this machine's BentoML "
            f"store; check out commit {record.git_commit[:12]} and run `relman build {service}`"
        )
    packed = GateResult("data and model", "artifacts", "passed", f"packed in Bento {found.tag}")
    return record, record.metrics, packed, found.tag


def _build(project: Project, record: ReleaseRecord, candidate: _CandidateOnce, steps: Steps) -> str:
    from core.bento import build_release

    with steps.running("build") as detail:
        result = build_release(
            project, record.service, candidate(), version=record.version, log=steps.log
        )
        detail.append(result.to_step()["detail"])
    return str(result.bento.tag)


def _deploy(
    project: Project,
    ledger: Ledger,
    record: ReleaseRecord,
    env: str,
    bento: str,
    kind: str,
    reason: str,
    steps: Steps,
) -> None:
    from core.deploy import deploy, lock
    from core.recovery import recover

    target = target_for(project, record.service, env)
    with steps.running("lock") as detail:
        recovered = recover(project, ledger, record.service, env, steps.log)
        promotion = lock(project, ledger, record, env, kind=kind, reason=reason, log=steps.log)
        if kind == "promote":
            target_check = getattr(target, "check_port", None)
            if target_check is not None:
                try:
                    target_check()
                except ReleaseError as exc:
                    ledger.finish_promotion(promotion.id, "failed", reason=str(exc))
                    raise
        detail.append(f"{env} locked by {promotion.actor} (promotion #{promotion.id})")
        detail.extend(recovered)
    deploy(project, ledger, target, record, bento, promotion, steps)


def _recover(project: Project, ledger: Ledger, service: str, env: str, steps: Steps) -> None:
    """Finish or undo what a killed relman left in ``env`` before deciding anything on it;
    a step only when there was something to do."""
    from core.recovery import recover

    done = recover(project, ledger, service, env, steps.log)
    if done:
        steps.passed("recover", "; ".join(done))


def _already_live(project: Project, ledger: Ledger, record: ReleaseRecord, env: str) -> bool:
    """The release is recorded live in ``env``, really serves it, answers ready, and no
    promotion is open there: promoting it again would change nothing."""
    state = ledger.environment_state(record.service, env)
    if state is None or state.state != "live" or state.release_id != record.id:
        return False
    if ledger.open_promotions(record.service, env):
        return False
    target = target_for(project, record.service, env)
    serving = target.serving()
    return serving is not None and serving.release == record.id and target.health() is None


def _model_names(ledger: Ledger, record: ReleaseRecord) -> list[str]:
    """The dvc.yaml artifact names of the release's model (what GTO tags name)."""
    return [
        artifact.name
        for artifact in ledger.artifacts(record.id)
        if artifact.kind == "model" and artifact.name != artifact.path
    ]


def _check_tags(
    project: Project, ledger: Ledger, record: ReleaseRecord, env: str, steps: Steps
) -> None:
    """A GTO tag conflict (the version registered on another commit) blocks before anything
    changes, not after the switch."""
    if not project.config.project.gto_tags or not record.version:
        return
    from core.gitinfo import tags
    from core.gto import plan_promotion_tags

    refs = tags(project.root)
    for name in _model_names(ledger, record):
        try:
            plan_promotion_tags(refs, name, record.version, env, record.git_commit)
        except BlockedError as exc:
            steps.failed("tags", str(exc))
            raise


def _tags(project: Project, ledger: Ledger, record: ReleaseRecord, env: str, steps: Steps) -> None:
    """GTO-style tags on the release's commit; a failure is reported, never fatal."""
    if not project.config.project.gto_tags:
        steps.skipped("tags", "GTO tags off ([project] gto_tags = false)")
        return
    from core.gto import write_promotion_tags
    from core.identity import current_user

    if not record.version:
        steps.skipped("tags", "release has no version to tag")
        return
    names = _model_names(ledger, record)
    if not names:
        steps.skipped("tags", "the model has no artifact name in dvc.yaml to tag")
        return
    started = time.perf_counter()
    created: list[str] = []
    try:
        for name in names:
            created += write_promotion_tags(
                project.root,
                name,
                record.version,
                env,
                record.git_commit,
                actor=current_user(project.root),
            )
    except ReleaseError as exc:
        steps.skipped("tags", f"not written: {exc}")
        return
    if created:
        steps.passed("tags", "wrote " + ", ".join(created), time.perf_counter() - started)
    else:
        steps.skipped("tags", f"tags of {record.version} in {env} already there")


def _previous_release(ledger: Ledger, service: str, env: str, current: str | None) -> ReleaseRecord:
    for promotion in ledger.done_promotions(service, env):
        if promotion.release_id != current:
            return ledger.get_release(promotion.release_id)
    raise BlockedError(f"no earlier release was live in {env} to roll back to; name one with --to")


def _blocked_line(env: str, blocking: list[GateResult]) -> str:
    first = blocking[0]
    more = f" (and {len(blocking) - 1} more)" if len(blocking) > 1 else ""
    return f"blocked from {env}: {first.name}: {first.detail}{more}"


@contextmanager
def _recorded(
    ledger: Ledger,
    report: DeployReport,
    started: float,
    log: Log,
    *,
    details: dict[str, Any],
) -> Iterator[Steps]:
    """The run of ``report`` in the ledger, its steps recorded as they go. A ReleaseError
    ends it in the report (blocked: failed, exit 1; infrastructure: error, exit 3); anything
    else (Ctrl-C, a bug) closes the run and propagates."""
    assert report.release is not None
    run = ledger.start_run(
        report.kind,  # type: ignore[arg-type]
        service=report.service,
        env=report.env,
        release_id=report.release,
        # Who runs it, so that recovery can tell a run left behind by a killed relman.
        details={**details, "pid": os.getpid(), "host": this_host()},
    )
    steps = Steps(ledger, run.id, log)
    try:
        with finishing_runs(
            ledger, [run.id], interrupted=f"{report.kind} interrupted", failed=report.kind
        ):
            try:
                yield steps
            except ReleaseError as exc:
                report.error, report.exit_code = str(exc), exc.exit_code
                status: RunStatus = "failed" if isinstance(exc, BlockedError) else "error"
                ledger.finish_run(run.id, status, reason=str(exc))
            else:
                ledger.finish_run(run.id, "passed", reason=f"{report.release} live in {report.env}")
    finally:
        report.steps = steps.done
        report.seconds = time.perf_counter() - started
