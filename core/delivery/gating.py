"""`relman gate`: everything that would block the candidate of a service (or a recorded
release, ``--release``) from an environment.

A dry run that only reads: the candidate from git and DVC, the rest from the ledger (opened
read-only, never created). The checks come in the order a person fixes them:

1. order: the release is live and healthy in the environment before this one, and no
   alert fires there for it;
2. data and model: lineage problems, every artifact in the local cache;
3. suites: each suite the environment requires passed for this very release id;
4. metric gates: each gate of the environment, against the release live there as baseline;
5. approvals: enough of them, from people other than the would-be promoter;
6. port: the environment's address is free, or already relman's proxy of it.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

from core.config.model import Project
from core.delivery.firing import order_with_alerts
from core.delivery.gates import (
    ArtifactPresence,
    GateResult,
    SuiteOutcome,
    evaluate_approvals,
    evaluate_artifacts,
    evaluate_metric_gate,
    evaluate_order,
    evaluate_suites,
)
from core.delivery.port_gate import port_result
from core.errors import UsageError
from core.ledger.identity import current_user
from core.ledger.releases import find_release, open_ledger
from core.lineage.candidate import Candidate, project_candidates
from core.testing.suites import SUITE_NODEID_PREFIX
from store import Ledger, ReleaseNotFound, ReleaseRecord, TestResultRecord

if TYPE_CHECKING:
    from core.documents import GateDocument

__all__ = [
    "HEALTHY_STATES",
    "GateReport",
    "approvals_result",
    "candidate_artifacts",
    "evaluate_release",
    "gate_report",
    "suite_outcomes",
]

# Environment states in which a release counts as proven in that environment.
HEALTHY_STATES = ("live", "healthy")


@dataclass(frozen=True)
class GateReport:
    service: str
    env: str
    release: str
    results: list[GateResult]

    @property
    def ok(self) -> bool:
        return not any(result.blocks for result in self.results)

    def to_dict(self) -> GateDocument:
        """The document ``relman gate`` prints (docs/json.md)."""
        return {
            "ok": self.ok,
            "service": self.service,
            "env": self.env,
            "release": self.release,
            "steps": [result.to_step() for result in self.results],
        }


def gate_report(
    project: Project, service: str, env: str, *, release: str | None = None
) -> GateReport:
    """What would block the candidate of ``service`` (or the recorded ``release``: id, id
    prefix or version, as ``promote --release`` takes it) from ``env``; writes nothing."""
    project.config.check_names(service=service, env=env)
    if release is not None:
        return _recorded_report(project, service, env, release)
    cand = project_candidates(project, [service])[service]
    with open_ledger(project, read_only=True) as ledger:
        results = evaluate_release(
            project, ledger, service, env, cand.release, cand.metrics, candidate_artifacts(cand)
        )
    return GateReport(service, env, cand.release, results)


def _recorded_report(project: Project, service: str, env: str, ref: str) -> GateReport:
    with open_ledger(project, read_only=True) as ledger:
        record = find_release(ledger, [service], ref)
        if record.service != service:
            raise UsageError(f"release {record.id} belongs to {record.service}, not {service}")
        results = evaluate_release(
            project, ledger, service, env, record.id, record.metrics, _packed(project, record)
        )
    return GateReport(service, env, record.id, results)


def _packed(project: Project, record: ReleaseRecord) -> GateResult:
    """Data and model of a recorded release, as promote --release finds them: packed in its
    Bento, else in the working tree when that is the same release, else missing."""
    from core.build.bento_store import find_bento

    found = find_bento(record.service, record.id)
    if found is not None:
        return GateResult("data and model", "artifacts", "passed", f"packed in Bento {found.tag}")
    cand = project_candidates(project, [record.service])[record.service]
    if cand.release == record.id:
        return candidate_artifacts(cand)
    return GateResult(
        "data and model",
        "artifacts",
        "failed",
        f"no Bento of {record.service} {record.version or record.id} in this machine's "
        f"BentoML store; check out commit {record.git_commit[:12]} and run "
        f"`relman build {record.service}`",
    )


def candidate_artifacts(cand: Candidate) -> GateResult:
    """Data and model of the candidate: in the local cache, no lineage problem."""
    artifacts = [
        ArtifactPresence(info.path, info.md5, info.cache, info.remote, info.remote_error)
        for info in [*cand.model, *cand.data]
    ]
    return evaluate_artifacts(artifacts, cand.problems)


def evaluate_release(
    project: Project,
    ledger: Ledger,
    service: str,
    env: str,
    release: str,
    metrics: Mapping[str, Any],
    artifacts: GateResult,
    *,
    forced: bool = False,
) -> list[GateResult]:
    """Every check of ``release`` for ``env``, in order (order, data and model, suites,
    metric gates, approvals, port). ``artifacts`` is the data-and-model result the caller made:
    the candidate's cache state, or a recorded release's Bento. ``forced`` overrides order."""
    config = project.config
    env_config = config.environments[env]
    order = config.environment_order

    index = order.index(env)
    previous = order[index - 1] if index > 0 else None
    healthy = False
    if previous is not None:
        state = ledger.environment_state(service, previous)
        healthy = (
            state is not None and state.state in HEALTHY_STATES and state.release_id == release
        )
    order_result = evaluate_order(env, previous, healthy, forced=forced)
    if previous is not None and healthy:
        # Healthy by the ledger's word, unless an alert fires there for this release now.
        order_result = order_with_alerts(
            project, service, previous, release, order_result, forced=forced
        )
    results = [order_result, artifacts]

    results += evaluate_suites(
        env_config.suites, suite_outcomes(ledger.test_results(release), release), release
    )

    baseline = _live_metrics(ledger, service, env)
    for name in env_config.gates:
        results += evaluate_metric_gate(
            name, config.gates[name], dict(metrics), baseline=baseline, env=env
        )

    results.append(approvals_result(project, ledger, release, env))
    results.append(port_result(project, service, env))
    return results


def approvals_result(project: Project, ledger: Ledger, release: str, env: str) -> GateResult:
    """Four eyes for ``release`` in ``env``: its approvals there, from people other than
    the one acting now (a promotion, or a rollback to a release never live in ``env``)."""
    approvers = [approval.actor for approval in ledger.approvals(release, env)]
    required = project.config.environments[env].approvals
    return evaluate_approvals(env, required, approvers, current_user(project.root), release=release)


def _live_metrics(ledger: Ledger, service: str, env: str) -> dict[str, Any] | None:
    """The metrics recorded for the release live in ``env``, or None when none is."""
    state = ledger.environment_state(service, env)
    if state is None or state.release_id is None:
        return None
    try:
        return ledger.get_release(state.release_id).metrics
    except ReleaseNotFound:
        return None


def suite_outcomes(
    records: list[TestResultRecord], release: str
) -> Mapping[str, SuiteOutcome | None]:
    """The latest recorded outcome of each suite, from the ledger's test results."""
    by_suite: dict[str, list[TestResultRecord]] = {}
    for record in records:
        by_suite.setdefault(record.suite, []).append(record)
    outcomes: dict[str, SuiteOutcome | None] = {}
    for suite, rows in by_suite.items():
        notes = [r.message for r in rows if r.nodeid.startswith(SUITE_NODEID_PREFIX)]
        tests = [r for r in rows if not r.nodeid.startswith(SUITE_NODEID_PREFIX)]
        counts = Counter(r.outcome for r in tests)
        failed = counts["failed"]
        errors = counts["error"] + len(notes)
        status: Literal["passed", "failed", "error"] = "failed" if failed or errors else "passed"
        outcomes[suite] = SuiteOutcome(
            release=rows[0].release_id or release,
            status=status,
            passed=counts["passed"] + counts["xpassed"],
            failed=failed,
            errors=counts["error"],
            skipped=counts["skipped"] + counts["xfailed"],
            note=notes[0] if notes else "",
        )
    return outcomes
