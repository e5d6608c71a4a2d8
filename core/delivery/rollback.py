"""`relman rollback`: back to the last release that was healthy in an environment."""

from __future__ import annotations

import time

from core.config.model import Project
from core.delivery.deploy import (
    DeployReport,
    check_sample_request,
    env_url,
    lock_and_deploy,
    recorded_run,
)
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
    read_only: bool = False,
    log: Log = _quiet,
) -> DeployReport:
    """Back to the last release that was live in ``env`` before the current one (or ``to``):
    gates skipped, the health check not; the audit log says who and why."""
    project.config.check_names(service=service, env=env)
    check_sample_request(project, service)
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
        if to is not None:
            record = find_release(ledger, [service], to)
            if record.service != service:
                raise UsageError(f"release {record.id} belongs to {record.service}, not {service}")
        else:
            previous = previous_release(ledger, service, env, current_id)
            if previous is None:
                raise BlockedError(
                    f"no earlier release was live in {env} to roll back to; name one with --to"
                )
            record = previous
        if record.id == current_id and current is not None and current.state == "live":
            raise BlockedError(
                f"{record.version or record.id} is already live in {env}; name another "
                "release with --to"
            )
        bento = find_bento(service, record.id)
        if bento is None:
            raise BlockedError(
                f"no Bento of {service} {record.version or record.id} in this machine's "
                "BentoML store; check out its commit and run `relman build`"
            )
        report.release, report.version = record.id, record.version
        why = " ".join(reason.split()) or "no reason given"
        with recorded_run(ledger, report, started, log, details={"to": to, "reason": why}) as steps:
            if recovered:
                steps.passed("recover", "; ".join(recovered))
            steps.skipped("gates", f"skipped for a rollback (reason: {why})")
            lock_and_deploy(project, ledger, record, env, bento.tag, "rollback", why, steps)
            report.url = env_url(project, env)
            write_tags(project, ledger, record, env, steps)
    return report


def rollback_target(project: Project, service: str, env: str) -> ReleaseRecord | None:
    """The release `relman rollback SERVICE --env ENV` would go back to now (None: none was
    live there before the current one). Read-only: what a killed relman left is recovered
    by the rollback itself, which may then choose otherwise."""
    project.config.check_names(service=service, env=env)
    with open_ledger(project, read_only=True) as ledger:
        current = ledger.environment_state(service, env)
        return previous_release(ledger, service, env, current.release_id if current else None)


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
