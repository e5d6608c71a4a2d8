"""`relman rollback`: back to the last release that was healthy in an environment, or to a
release named with ``--to``, under the environment's own rules (docs/exit-codes.md).

- A release that was live in the environment before (the default target, the one live just
  before the current one, or any earlier one named with ``--to``) is known good there: it
  passed that environment's gates, approvals included, or a recorded ``--force``, when it
  went live. Going back to it is one step.
- A release never live in the environment needs that environment's approvals, counted as a
  promotion counts them (four eyes: not the person rolling back), or ``--force`` with
  ``--reason``. The audit log records which: ``rollback.approved`` with the approvers, or
  ``rollback.force`` with the reason.

The other gates (order, suites, metric gates) are skipped: a rollback is the way out of a
bad release, and the health check still decides whether it goes live.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Literal

from core.config.model import Project
from core.delivery.deploy import (
    DeployReport,
    check_runtime,
    check_sample_request,
    env_url,
    lock_and_deploy,
    recorded_run,
    runnable,
)
from core.delivery.gates import GateResult, GateStatus
from core.delivery.gating import approvals_result
from core.delivery.recovery import recover
from core.delivery.registry_tags import write_tags
from core.errors import BlockedError, ReadOnlyError, UsageError
from core.ledger.releases import find_release, open_ledger
from core.ledger.steps import Log
from core.ledger.steps import quiet as _quiet
from store import Ledger, ReleaseRecord


def rollback(
    project: Project,
    service: str,
    env: str,
    *,
    to: str | None = None,
    reason: str = "",
    force: bool = False,
    read_only: bool = False,
    log: Log = _quiet,
) -> DeployReport:
    """Back to the last release that was live in ``env`` before the current one (or ``to``):
    the approvals of ``env`` when ``to`` was never live there (``force`` with a ``reason``
    instead), the other gates skipped, the health check not; the audit log says who and why."""
    project.config.check_names(service=service, env=env)
    project.config.require_port(env)
    why = " ".join(reason.split())
    if force and not why:
        raise UsageError(
            f"rollback --force needs --reason: the audit log records why {env}'s approvals "
            "were skipped"
        )
    check_sample_request(project, service)
    check_runtime(project, env)
    if read_only:
        raise ReadOnlyError(f"read-only mode: rollback of {service} in {env} refused")
    from core.build.bento_store import find_bento

    started = time.perf_counter()
    report = DeployReport("rollback", service, env)
    with open_ledger(project, read_only=False) as ledger:
        # First finish or undo what a killed relman left: it decides what is live now.
        recovered = recover(project, ledger, service, env, log)
        current = ledger.environment_state(service, env)
        current_id = current.release_id if current else None
        record = _target(ledger, service, env, to, current_id)
        if record.id == current_id and current is not None and current.state == "live":
            raise BlockedError(
                f"{_name(record)} is already live in {env}; name another release with --to"
            )
        bento = find_bento(service, record.id)
        if bento is None:
            raise BlockedError(
                f"no Bento of {service} {_name(record)} in this machine's "
                "BentoML store; check out its commit and run `relman build`"
            )
        report.release, report.version = record.id, record.version
        why = why or "no reason given"
        details = {"to": to, "reason": why, "force": force}
        with recorded_run(ledger, report, started, log, details=details) as steps:
            if recovered:
                steps.passed("recover", "; ".join(recovered))
            decision = clearance(project, ledger, record, env, force=force, reason=why)
            steps.add(decision.step)
            if decision.step.blocks:
                raise BlockedError(
                    f"rollback to {_name(record)} blocked: {decision.step.detail}; or roll "
                    "back with --force --reason WHY"
                )
            _audit(ledger, record, env, decision, why)
            steps.skipped("gates", f"skipped for a rollback (reason: {why})")
            runs = runnable(project, record, env, bento.tag, steps)  # or its image
            lock_and_deploy(project, ledger, record, env, runs, "rollback", why, steps)
            report.url = env_url(project, env)
            write_tags(project, ledger, record, env, steps)
    return report


@dataclass(frozen=True)
class Clearance:
    """Whether a rollback to a release may go ahead: the ``approvals`` step it records, and
    what cleared it (``None`` when it needs nothing, or is blocked)."""

    step: GateResult
    # The environment's approvals, from someone else; or --force.
    by: Literal["approved", "forced"] | None = None
    # The approvals line as it stood (what was granted, or what was missing).
    approvals: str = ""


def clearance(
    project: Project,
    ledger: Ledger,
    record: ReleaseRecord,
    env: str,
    *,
    force: bool = False,
    reason: str = "",
) -> Clearance:
    """The rule of a rollback to ``record`` in ``env``: a release that was live there before
    needs nothing more; one never live there needs ``env``'s approvals (promotion's own
    check, four eyes), or ``force`` (with ``reason``) to go without them."""
    name = _name(record)
    if was_live(ledger, record.service, env, record.id):
        return Clearance(_step("skipped", f"{name} was live in {env} before: no approval needed"))
    approvals = approvals_result(project, ledger, record.id, env)
    never = f"{name} was never live in {env}"
    if approvals.status == "skipped":  # the environment asks for none
        return Clearance(_step("skipped", f"{never}; {approvals.detail}"))
    if not approvals.blocks:
        return Clearance(
            _step("passed", f"{never}; {approvals.detail}"), "approved", approvals.detail
        )
    if force:
        detail = f"{never}; its approvals skipped with --force (reason: {reason})"
        return Clearance(_step("skipped", detail), "forced", approvals.detail)
    return Clearance(_step("failed", f"{never}: {approvals.detail}"))


def _step(status: GateStatus, detail: str) -> GateResult:
    return GateResult("approvals", "approvals", status, detail)


def was_live(ledger: Ledger, service: str, env: str, release: str) -> bool:
    """Whether ``release`` ever went live in ``env`` (a promotion or rollback there done)."""
    return any(p.release_id == release for p in ledger.done_promotions(service, env))


def _audit(
    ledger: Ledger, record: ReleaseRecord, env: str, decision: Clearance, reason: str
) -> None:
    """What let a rollback to a release never live in ``env`` go ahead, in the audit log."""
    if decision.by is None:
        return
    forced = decision.by == "forced"
    ledger.log_event(
        "rollback.force" if forced else "rollback.approved",
        outcome="approvals skipped" if forced else "approved",
        service=record.service,
        env=env,
        release_id=record.id,
        reason=reason if forced else decision.approvals,
        details={"approvals": decision.approvals, "reason": reason},
    )


def _target(
    ledger: Ledger, service: str, env: str, to: str | None, current: str | None
) -> ReleaseRecord:
    """The release named with ``to``, else the one live in ``env`` before ``current``."""
    if to is not None:
        record = find_release(ledger, [service], to)
        if record.service != service:
            raise UsageError(f"release {record.id} belongs to {record.service}, not {service}")
        return record
    previous = previous_release(ledger, service, env, current)
    if previous is None:
        raise BlockedError(
            f"no earlier release was live in {env} to roll back to; name one with --to"
        )
    return previous


def _name(record: ReleaseRecord) -> str:
    return record.version or record.id


@dataclass(frozen=True)
class RollbackTarget:
    """Where a rollback would go now, and the ``approvals`` step it would record there."""

    release: ReleaseRecord
    clearance: Clearance


def rollback_target(
    project: Project, service: str, env: str, *, to: str | None = None
) -> RollbackTarget | None:
    """The release `relman rollback SERVICE --env ENV [--to TO]` would go back to now, and
    its clearance (None: no ``to``, and none was live there before the current one).
    Read-only: what a killed relman left is recovered by the rollback itself, which may
    then choose otherwise."""
    project.config.check_names(service=service, env=env)
    with open_ledger(project, read_only=True) as ledger:
        current = ledger.environment_state(service, env)
        current_id = current.release_id if current else None
        if to is None:
            record = previous_release(ledger, service, env, current_id)
            if record is None:
                return None
        else:
            record = _target(ledger, service, env, to, current_id)
        return RollbackTarget(record, clearance(project, ledger, record, env))


def previous_release(
    ledger: Ledger, service: str, env: str, current: str | None
) -> ReleaseRecord | None:
    """The newest release that went live in ``env`` before ``current``, leaving out every
    release a rollback left (so a second rollback does not bring back what the first one
    rolled back from); None when there is none."""
    done = ledger.done_promotions(service, env)
    rolled_back_from = {p.previous_release_id for p in done if p.kind == "rollback"}
    for promotion in done:
        if promotion.release_id != current and promotion.release_id not in rolled_back_from:
            return ledger.get_release(promotion.release_id)
    return None
