"""What the ledger returns: frozen dataclasses, one per table row, built from sqlite rows.

Timestamps are the UTC ISO-8601 strings stored in the database (``...+00:00``); JSON
columns come back decoded.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any, Literal

ArtifactKind = Literal["model", "dataset"]
RunKind = Literal["test", "gate", "build", "promote", "rollback", "release"]
RunStatus = Literal["running", "passed", "failed", "error", "interrupted"]
StepStatus = Literal["passed", "failed", "skipped", "running"]
TestOutcome = Literal["passed", "failed", "skipped", "error", "xfailed", "xpassed"]
PromotionKind = Literal["promote", "rollback"]
PromotionStatus = Literal["intent", "done", "failed", "undone"]
Bump = Literal["major", "minor", "patch"]
RolloutStrategy = Literal["all-at-once", "canary", "shadow"]
RolloutPhase = Literal["progressing", "paused", "promoted", "aborted"]
RolloutRequest = Literal["pause", "resume", "abort", "promote"]
OPEN_PHASES: tuple[RolloutPhase, ...] = ("progressing", "paused")


@dataclass(frozen=True)
class ArtifactRecord:
    """A DVC-tracked dataset or model a release was built from."""

    name: str
    kind: ArtifactKind
    path: str
    md5: str | None = None
    size: int | None = None
    nfiles: int | None = None
    release_id: str = ""


@dataclass(frozen=True)
class ReleaseRecord:
    id: str
    service: str
    version: str | None
    git_commit: str
    git_branch: str | None
    message: str
    author: str
    created_at: str
    params: dict[str, Any] = field(default_factory=dict)
    metrics: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class RunRecord:
    id: int
    kind: RunKind
    release_id: str | None
    service: str | None
    env: str | None
    actor: str
    started_at: str
    finished_at: str | None
    status: RunStatus
    reason: str
    details: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class StepRecord:
    """One step of a run; the same shape as the ``steps`` entries of ``--json``."""

    name: str
    status: StepStatus
    seconds: float = 0.0
    detail: str = ""
    run_id: int = 0
    seq: int = 0


@dataclass(frozen=True)
class TestResultRecord:
    __test__ = False  # not a pytest test class, despite the name

    suite: str
    nodeid: str
    outcome: TestOutcome
    seconds: float = 0.0
    message: str = ""
    run_id: int = 0
    release_id: str | None = None


@dataclass(frozen=True)
class PromotionRecord:
    id: int
    service: str
    env: str
    release_id: str
    previous_release_id: str | None
    kind: PromotionKind
    actor: str
    started_at: str
    finished_at: str | None
    status: PromotionStatus
    reason: str
    # The relman process that started it (schema 2); None on rows written before.
    pid: int | None = None
    host: str | None = None


@dataclass(frozen=True)
class ApprovalRecord:
    id: int
    release_id: str
    service: str
    env: str
    actor: str
    at: str
    comment: str


@dataclass(frozen=True)
class EnvState:
    """What the ledger last recorded as running in one environment of one service."""

    service: str
    env: str
    release_id: str | None
    version: str | None
    state: str
    url: str | None
    pid: int | None
    since: str
    updated_at: str


@dataclass(frozen=True)
class RolloutRecord:
    """A canary or shadow rollout of ``canary`` next to ``stable`` in one environment
    (schema 3). ``plan`` is its steps as resolved when it began; ``analysis`` every
    measurement so far (``{check, stable, canary, verdict, detail, t, step}``), oldest first;
    ``request`` what another command asked of it and its driver has not acted on yet."""

    id: int
    service: str
    env: str
    promotion_id: int
    run_id: int | None
    strategy: RolloutStrategy
    stable: str | None
    canary: str
    phase: RolloutPhase
    step: int
    weight: int
    actor: str
    started_at: str
    updated_at: str
    finished_at: str | None = None
    plan: list[dict[str, Any]] = field(default_factory=list)
    analysis: list[dict[str, Any]] = field(default_factory=list)
    request: RolloutRequest | None = None
    requested_by: str | None = None
    requested_at: str | None = None
    detail: str = ""
    # The relman process that drives it: the holder a takeover compares against.
    pid: int | None = None
    host: str | None = None

    @property
    def open(self) -> bool:
        """Still under way (progressing or paused): its driver, alive or not, owns the env."""
        return self.phase in OPEN_PHASES


def _json(text: str | None) -> dict[str, Any]:
    value = json.loads(text) if text else {}
    return value if isinstance(value, dict) else {"value": value}


def release_from_row(row: dict[str, Any]) -> ReleaseRecord:
    return ReleaseRecord(
        id=row["id"],
        service=row["service"],
        version=row["version"],
        git_commit=row["git_commit"],
        git_branch=row["git_branch"],
        message=row["message"],
        author=row["author"],
        created_at=row["created_at"],
        params=_json(row["params"]),
        metrics=_json(row["metrics"]),
    )


def run_from_row(row: dict[str, Any]) -> RunRecord:
    return RunRecord(**{**row, "details": _json(row["details"])})


def run_summary(run: RunRecord, version: str | None) -> str:
    """The line history shows for a run:
    ``test run #13 of 8c7a9ffcdad9 (v1.2.0) in dev: failed (unit 1 failed)``; a reason that
    starts with the status stands for both (``...: interrupted: relman (pid 4121) ended
    without finishing``)."""
    label = f"{run.release_id} ({version})" if version else run.release_id
    target = f" of {label}" if run.release_id else ""
    place = f" in {run.env}" if run.env else ""
    if run.reason.startswith(run.status):
        outcome = run.reason
    else:
        outcome = run.status + (f" ({run.reason})" if run.reason else "")
    return f"{run.kind} run #{run.id}{target}{place}: {outcome}"


def promotion_from_row(row: dict[str, Any]) -> PromotionRecord:
    return PromotionRecord(**row)


def approval_from_row(row: dict[str, Any]) -> ApprovalRecord:
    return ApprovalRecord(**row)


def _json_list(text: str | None) -> list[dict[str, Any]]:
    value = json.loads(text) if text else []
    return [item for item in value if isinstance(item, dict)] if isinstance(value, list) else []


def rollout_from_row(row: dict[str, Any]) -> RolloutRecord:
    return RolloutRecord(
        **{**row, "plan": _json_list(row["plan"]), "analysis": _json_list(row["analysis"])}
    )
