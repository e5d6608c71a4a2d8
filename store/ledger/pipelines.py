"""Pipeline runs: one row per run, one per step, moved on by the relman process driving it.

A run is a recorded state machine (docs/pipelines.md): each step is written ``running``
before it acts and ``passed``/``failed``/``waiting`` after, so a relman killed at any point
leaves the step it was in, and the next driver knows what it must check before acting again.
Starting and ending a run, and a driver taking one over, are audited; the steps in between
are not (they are in this table), to keep the chain small.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, get_args

from store.errors import InvalidRequest, LedgerConflict, RecordNotFound
from store.ledger.base import LedgerBase

RunStatus = Literal["running", "waiting", "passed", "failed", "interrupted", "cancelled"]
StepState = Literal["pending", "running", "passed", "failed", "waiting", "skipped"]
# Not ended: driven, waiting for an approval, or stopped to be resumed (a second run of the
# pipeline for the service is refused meanwhile).
OPEN_RUN: tuple[RunStatus, ...] = ("running", "waiting", "interrupted")
_STEP_STATES = get_args(StepState)
_RUN_STATES = get_args(RunStatus)
_OPEN_SQL = "status IN ('running', 'waiting', 'interrupted')"
KEEP_LINES = 200  # output lines a step keeps


@dataclass(frozen=True)
class PipelineStepRecord:
    run_id: int
    position: int
    name: str
    kind: str
    status: StepState
    attempts: int = 0
    started_at: str | None = None
    finished_at: str | None = None
    seconds: float = 0.0
    detail: str = ""
    output: list[str] = field(default_factory=list)
    result: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class PipelineRunRecord:
    id: int
    pipeline: str
    service: str
    status: RunStatus
    trigger: str
    reason: str
    actor: str
    started_at: str
    updated_at: str
    release: str | None = None
    detail: str = ""
    context: dict[str, Any] = field(default_factory=dict)
    pid: int | None = None
    host: str | None = None
    finished_at: str | None = None
    steps: list[PipelineStepRecord] = field(default_factory=list)

    @property
    def open(self) -> bool:
        return self.status in OPEN_RUN


class PipelinesMixin(LedgerBase):
    def begin_pipeline_run(
        self,
        pipeline: str,
        service: str,
        *,
        trigger: str,
        reason: str,
        steps: Sequence[tuple[str, str]],
        pid: int | None,
        host: str | None,
        context: Mapping[str, Any] | None = None,
    ) -> PipelineRunRecord:
        """Record a run of ``pipeline`` for ``service`` beginning (``running``, every step
        ``pending``; ``steps`` as ``(name, kind)``). Refused (:class:`LedgerConflict`) while
        another run of the same pipeline and service is open."""
        if not steps:
            raise InvalidRequest(f"pipeline {pipeline} has no steps; give it at least one")
        with self._writing(f"starting pipeline {pipeline} for {service}") as at:
            open_row = self._one(
                f"SELECT * FROM pipeline_runs WHERE pipeline = ? AND service = ? AND {_OPEN_SQL}",
                [pipeline, service],
            )
            if open_row is not None:
                raise LedgerConflict(
                    f"run #{open_row['id']} of pipeline {pipeline} for {service} has not ended "
                    f"({open_row['status']}); `relman pipeline resume {open_row['id']}` goes on "
                    f"with it, `relman pipeline cancel {open_row['id']}` ends it"
                )
            run_id = self._db.execute(
                "INSERT INTO pipeline_runs (pipeline, service, status, trigger, reason, context,"
                " actor, pid, host, started_at, updated_at) VALUES (?, ?, 'running', ?, ?, ?, ?,"
                " ?, ?, ?, ?)",
                [
                    pipeline,
                    service,
                    trigger,
                    reason,
                    json.dumps(dict(context or {}), sort_keys=True),
                    self.actor,
                    pid,
                    host,
                    at,
                    at,
                ],
            ).lastrowid
            for position, (name, kind) in enumerate(steps):
                self._db.execute(
                    "INSERT INTO pipeline_steps (run_id, position, name, kind, status) "
                    "VALUES (?, ?, ?, ?, 'pending')",
                    [run_id, position, name, kind],
                )
            self._audit(
                at,
                "pipeline_started",
                "started",
                service=service,
                reason=reason,
                details={"run": run_id, "pipeline": pipeline, "trigger": trigger},
            )
            assert run_id is not None
            return self._pipeline_run(run_id)

    def update_pipeline_step(
        self,
        run_id: int,
        position: int,
        *,
        status: StepState,
        detail: str | None = None,
        output: Sequence[str] | None = None,
        result: Mapping[str, Any] | None = None,
        seconds: float | None = None,
        attempt: bool = False,
    ) -> None:
        """Move a step on: ``running`` stamps its start (and counts an attempt when
        ``attempt``); an ending state stamps its end. ``result`` is merged into what the step
        produced so far (a commit's sha, a release id)."""
        if status not in _STEP_STATES:
            raise InvalidRequest(f"unknown step state {status!r}; one of {_STEP_STATES}")
        with self._writing(f"recording step {position} of pipeline run #{run_id}") as at:
            row = self._one(
                "SELECT * FROM pipeline_steps WHERE run_id = ? AND position = ?", [run_id, position]
            )
            if row is None:
                raise RecordNotFound(
                    f"no step {position} in pipeline run #{run_id} in {self.where}"
                )
            merged = {**_object(row["result"]), **dict(result or {})}
            sets: dict[str, Any] = {
                "status": status,
                "result": json.dumps(merged, sort_keys=True, default=str),
            }
            if status == "running":
                sets["started_at"] = at
                sets["finished_at"] = None
                if attempt:
                    sets["attempts"] = int(row["attempts"]) + 1
            elif status in ("passed", "failed", "skipped"):
                sets["finished_at"] = at
            if detail is not None:
                sets["detail"] = " ".join(detail.split())
            if output is not None:
                sets["output"] = json.dumps(list(output)[-KEEP_LINES:])
            if seconds is not None:
                sets["seconds"] = round(float(seconds), 3)
            columns = ", ".join(f"{name} = ?" for name in sets)
            self._db.execute(
                f"UPDATE pipeline_steps SET {columns} WHERE run_id = ? AND position = ?",
                [*sets.values(), run_id, position],
            )
            self._db.execute("UPDATE pipeline_runs SET updated_at = ? WHERE id = ?", [at, run_id])

    def update_pipeline_run(
        self,
        run_id: int,
        *,
        status: RunStatus | None = None,
        detail: str | None = None,
        release: str | None = None,
        context: Mapping[str, Any] | None = None,
    ) -> PipelineRunRecord:
        """Set a run's status (an ended one is stamped and audited), detail, release, or
        merge ``context``. An ended run is never reopened."""
        if status is not None and status not in _RUN_STATES:
            raise InvalidRequest(f"unknown run status {status!r}; one of {_RUN_STATES}")
        with self._writing(f"recording pipeline run #{run_id}") as at:
            run = self._pipeline_run(run_id)
            if not run.open and status is not None and status != run.status:
                raise LedgerConflict(
                    f"pipeline run #{run_id} already ended {run.status}; start a new run"
                )
            sets: dict[str, Any] = {"updated_at": at}
            if status is not None:
                sets["status"] = status
                if status not in OPEN_RUN:
                    sets["finished_at"] = at
            if detail is not None:
                sets["detail"] = " ".join(detail.split())
            if release is not None:
                sets["release"] = release
            if context is not None:
                sets["context"] = json.dumps({**run.context, **context}, sort_keys=True)
            columns = ", ".join(f"{name} = ?" for name in sets)
            self._db.execute(
                f"UPDATE pipeline_runs SET {columns} WHERE id = ?", [*sets.values(), run_id]
            )
            if status is not None and status not in OPEN_RUN and run.open:
                self._audit(
                    at,
                    "pipeline_finished",
                    status,
                    service=run.service,
                    release_id=release or run.release,
                    reason=detail or "",
                    details={"run": run_id, "pipeline": run.pipeline},
                )
            return self._pipeline_run(run_id)

    def claim_pipeline_run(
        self, run_id: int, *, pid: int, host: str, seen: str
    ) -> PipelineRunRecord:
        """Make ``pid`` the run's driver. ``seen`` is the run's ``updated_at`` when the caller
        found it waiting, interrupted, or held by a driver that died: refused
        (:class:`LedgerConflict`) when the run ended or changed since (another relman took
        it, or its driver moved it on), so two relmans never drive one run."""
        with self._writing(f"taking over pipeline run #{run_id}") as at:
            run = self._pipeline_run(run_id)
            if not run.open:
                raise LedgerConflict(
                    f"pipeline run #{run_id} ended {run.status}; start a new run with "
                    f"`relman pipeline run {run.pipeline}`"
                )
            if run.updated_at != seen:
                raise LedgerConflict(
                    f"pipeline run #{run_id} changed meanwhile (driven by pid {run.pid}); "
                    "`relman pipeline runs` shows who drives it"
                )
            replacing = run.pid
            self._db.execute(
                "UPDATE pipeline_runs SET pid = ?, host = ?, status = 'running', "
                "finished_at = NULL, updated_at = ? WHERE id = ?",
                [pid, host, at, run_id],
            )
            self._audit(
                at,
                "pipeline_resumed",
                "resumed",
                service=run.service,
                reason=f"driven by pid {pid} on {host}"
                + (f", after pid {replacing}" if replacing else ""),
                details={"run": run_id, "pipeline": run.pipeline},
            )
            return self._pipeline_run(run_id)

    def get_pipeline_run(self, run_id: int) -> PipelineRunRecord:
        with self._reading():
            return self._pipeline_run(run_id)

    def pipeline_runs(
        self,
        *,
        pipeline: str | None = None,
        service: str | None = None,
        open_only: bool = False,
        limit: int = 50,
    ) -> list[PipelineRunRecord]:
        """Runs, newest first, with their steps."""
        sql = "SELECT id FROM pipeline_runs WHERE 1 = 1"  # open_only: not ended
        params: list[Any] = []
        for column, value in (("pipeline", pipeline), ("service", service)):
            if value is not None:
                sql += f" AND {column} = ?"
                params.append(value)
        if open_only:
            sql += f" AND {_OPEN_SQL}"
        sql += " ORDER BY id DESC LIMIT ?"
        params.append(int(limit))
        with self._reading() as db:
            ids = [row["id"] for row in db.query(sql, params)]
            return [self._pipeline_run(run_id) for run_id in ids]

    def _pipeline_run(self, run_id: int) -> PipelineRunRecord:
        row = self._one("SELECT * FROM pipeline_runs WHERE id = ?", [run_id])
        if row is None:
            raise RecordNotFound(
                f"no pipeline run #{run_id} in {self.where}; `relman pipeline runs` lists them"
            )
        steps = [
            PipelineStepRecord(
                **{
                    **step,
                    "output": _list(step["output"]),
                    "result": _object(step["result"]),
                }
            )
            for step in self._db.query(
                "SELECT * FROM pipeline_steps WHERE run_id = ? ORDER BY position", [run_id]
            )
        ]
        return run_record(row, steps)


def run_record(
    row: dict[str, Any], steps: list[PipelineStepRecord] | None = None
) -> PipelineRunRecord:
    """A ``pipeline_runs`` row as a record (its steps when given)."""
    return PipelineRunRecord(**{**row, "context": _object(row["context"]), "steps": steps or []})


def _object(text: str | None) -> dict[str, Any]:
    value = json.loads(text) if text else {}
    return value if isinstance(value, dict) else {}


def _list(text: str | None) -> list[str]:
    value = json.loads(text) if text else []
    return [str(item) for item in value] if isinstance(value, list) else []
