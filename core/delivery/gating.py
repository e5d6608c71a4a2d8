"""`relman gate`: everything that would block the candidate of a service from an environment.

A dry run that only reads: the candidate from git and DVC, the rest from the ledger (opened
read-only, never created). The checks come in the order a person fixes them:

1. order: the release is live and healthy in the environment before this one;
2. data and model: lineage problems, every artifact in the local cache;
3. suites: each suite the environment requires passed for this very release id;
4. metric gates: each gate of the environment, against the release live there as baseline;
5. approvals: enough of them, from people other than the would-be promoter.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

from core.config.model import Project
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
from core.ledger.identity import current_user
from core.ledger.releases import open_ledger
from core.lineage.candidate import Candidate, project_candidates
from core.testing.suites import SUITE_NODEID_PREFIX
from store import Ledger, ReleaseNotFound, TestResultRecord

if TYPE_CHECKING:
    from core.documents import GateDocument

__all__ = [
    "HEALTHY_STATES",
    "GateReport",
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


def gate_report(project: Project, service: str, env: str) -> GateReport:
    """What would block the candidate of ``service`` from ``env``; writes nothing."""
    project.config.check_names(service=service, env=env)
    cand = project_candidates(project, [service])[service]
    with open_ledger(project, read_only=True) as ledger:
        results = evaluate_release(
            project, ledger, service, env, cand.release, cand.metrics, candidate_artifacts(cand)
        )
    return GateReport(service, env, cand.release, results)


def candidate_artifacts(cand: Candidate) -> GateResult:
    """Data and model of the candidate: in the local cache, no lineage problem."""
    artifacts = [
        ArtifactPresence(info.path, info.md5, info.cache) for info in [*cand.model, *cand.data]
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
    metric gates, approvals). ``artifacts`` is the data-and-model result the caller made:
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
    results = [evaluate_order(env, previous, healthy, forced=forced), artifacts]

    results += evaluate_suites(
        env_config.suites, suite_outcomes(ledger.test_results(release), release), release
    )

    baseline = _live_metrics(ledger, service, env)
    for name in env_config.gates:
        results += evaluate_metric_gate(
            name, config.gates[name], dict(metrics), baseline=baseline, env=env
        )

    approvers = [approval.actor for approval in ledger.approvals(release, env)]
    promoter = current_user(project.root)
    results.append(
        evaluate_approvals(env, env_config.approvals, approvers, promoter, release=release)
    )
    return results


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
