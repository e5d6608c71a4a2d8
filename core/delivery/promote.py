"""`relman promote`: a release (default: the candidate) into an environment, through its gates.

recover -> order, data and model, suites, metric gates, approvals (the checks of `relman
gate`) -> GTO tag check -> build (when the release has no Bento yet) -> image (where the
environment runs images and it has none yet) -> lock -> validate ->
switch -> retire the previous instance -> GTO tags. The deploy sequence is core.delivery.deploy's.
"""

from __future__ import annotations

import time
from typing import Any

from core.cancel import CancelSignal
from core.config.model import Project
from core.delivery.deploy import (
    DeployReport,
    Steps,
    check_runtime,
    check_sample_request,
    env_url,
    lock_and_deploy,
    recorded_run,
    recover_step,
    runnable,
)
from core.delivery.gates import GateResult
from core.delivery.gating import candidate_artifacts, evaluate_release
from core.delivery.registry_tags import check_tags, write_tags
from core.delivery.rollout import run_rollout
from core.delivery.rollout_plan import plan_for, strategy_for
from core.errors import BlockedError, ReadOnlyError, UsageError
from core.ledger.releases import find_release, open_ledger, record_candidate
from core.ledger.steps import Log
from core.ledger.steps import quiet as _quiet
from core.lineage.candidate import Candidate
from core.targets import target_for
from store import Ledger, ReleaseRecord


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
    strategy: str | None = None,
    cancel: CancelSignal | None = None,
) -> DeployReport:
    """Deploy ``release`` (default: the candidate) of ``service`` to ``env`` through its
    gates. Blocked (exit 1) and failed (exit 3, previous release restored) promotions come
    back as a report with ``error`` set; usage errors raise."""
    project.config.check_names(service=service, env=env)
    project.config.require_service(service)
    project.config.require_port(env)
    check_sample_request(project, service)
    check_runtime(project, env)
    chosen = strategy_for(project, env, strategy)
    if chosen != "all-at-once" and project.config.environments[env].kubernetes is not None:
        raise UsageError(
            f"--strategy {chosen}: canary and shadow rollouts are not built for kubernetes "
            f"environments yet ({env}); promote all at once (blue-green: validated before the "
            "Service switches)"
        )
    if chosen == "shadow" and project.config.services[service].sample_request is None:
        raise UsageError(
            f"--strategy shadow compares the answers of two releases, and [services.{service}] "
            "has no sample_request to check its answers can be compared; add one, or use "
            "--strategy canary"
        )
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
        with recorded_run(ledger, report, started, log, details={"force": force}) as steps:
            recover_step(project, ledger, service, env, steps)
            results = evaluate_release(
                project, ledger, service, env, record.id, metrics, artifacts, forced=force
            )
            for result in results:
                steps.add(result)
            order = results[0]
            if force and order.status == "skipped" and env != project.config.environment_order[0]:
                ledger.log_event(
                    "promote.force",
                    outcome="order skipped",
                    service=service,
                    env=env,
                    release_id=record.id,
                    reason=order.detail,
                )
            blocking = [result for result in results if result.blocks]
            for result in blocking:
                if result.error is not None:  # the platform's setup: its own line and code
                    raise result.error
            if blocking:
                raise BlockedError(_blocked_line(env, blocking))
            refs = check_tags(project, ledger, record, env, steps)
            if _already_live(project, ledger, record, env):
                steps.skipped("switch", f"{record.version or record.id} already live in {env}")
            else:
                if bento is None:
                    bento = _build(project, record, candidate_once, steps)
                bento = runnable(project, record, env, bento, steps)  # or its image
                if chosen == "all-at-once":
                    lock_and_deploy(project, ledger, record, env, bento, "promote", "", steps)
                else:
                    plan = plan_for(project, env, chosen)
                    run_rollout(
                        project, ledger, record, env, bento, chosen, plan, steps, cancel=cancel
                    )
                    _ensure_collector(project, steps)
            report.url = env_url(project, env)
            write_tags(project, ledger, record, env, steps, existing=refs)
    return report


class _CandidateOnce:
    """The candidate of a service, computed on first use only (DVC and git are slow), or
    the one the caller already has (the release pipeline computed it to verify)."""

    def __init__(self, project: Project, service: str, given: Candidate | None) -> None:
        self._project, self._service, self._value = project, service, given

    def __call__(self) -> Candidate:
        if self._value is None:
            from core.lineage.candidate import project_candidates

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
    from core.build.bento_store import find_bento

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
    from core.build.bento import build_release

    with steps.running("build") as detail:
        result = build_release(
            project, record.service, candidate(), version=record.version, log=steps.log
        )
        detail.append(result.to_step()["detail"])
    return str(result.bento.tag)


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


def _ensure_collector(project: Project, steps: Steps) -> None:
    from core.monitoring.collector_process import ensure_collector

    started = ensure_collector(project)
    if started is not None:
        steps.log(f"started the collector (pid {started}); `relman down` stops it")


def _blocked_line(env: str, blocking: list[GateResult]) -> str:
    first = blocking[0]
    more = f" (and {len(blocking) - 1} more)" if len(blocking) > 1 else ""
    return f"blocked from {env}: {first.name}: {first.detail}{more}"
