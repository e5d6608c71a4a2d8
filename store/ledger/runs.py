"""Runs (test, gate, build, promote, rollback, release), their steps and test results."""

from __future__ import annotations

import json
import os
import socket
from collections import Counter
from collections.abc import Iterable, Mapping
from typing import Any

from store.errors import InvalidRequest, LedgerConflict, RecordNotFound
from store.ledger.base import LedgerBase
from store.ledger.records import (
    RunKind,
    RunRecord,
    RunStatus,
    StepRecord,
    StepStatus,
    TestResultRecord,
    run_from_row,
)


class RunsMixin(LedgerBase):
    def start_run(
        self,
        kind: RunKind,
        *,
        service: str | None = None,
        env: str | None = None,
        release_id: str | None = None,
        details: Mapping[str, Any] | None = None,
    ) -> RunRecord:
        """Record that a run began (status ``running``) before any of its work happens.

        Its details name who holds it, ``pid`` and ``host`` (this process, unless ``details``
        says otherwise): a run whose holder ended without finishing it is shown and closed
        ``interrupted`` by the next relman (core.ledger.runs), never left ``running``."""
        details = {"pid": os.getpid(), "host": socket.gethostname(), **dict(details or {})}
        with self._writing(f"starting a {kind} run") as at:
            if release_id is not None:
                self._release_row(release_id)
            cursor = self._db.execute(
                "INSERT INTO runs (kind, release_id, service, env, actor, started_at, status,"
                " details) VALUES (?, ?, ?, ?, ?, ?, 'running', ?)",
                [kind, release_id, service, env, self.actor, at, _json(details)],
            )
            run_id = int(cursor.lastrowid or 0)
            self._audit(
                at,
                "run.start",
                "running",
                service=service,
                env=env,
                release_id=release_id,
                details={"run": run_id, "kind": kind},
            )
            return self._run_row(run_id)

    def record_step(
        self,
        run_id: int,
        name: str,
        status: StepStatus,
        *,
        seconds: float = 0.0,
        detail: str = "",
    ) -> StepRecord:
        """Add a step to a run, or update the step of that name (``running`` -> result)."""
        with self._writing(f"recording step {name!r} of run #{run_id}") as at:
            run = self._run_row(run_id)
            existing = self._one(
                "SELECT seq FROM steps WHERE run_id = ? AND name = ?", [run_id, name]
            )
            if existing is None:
                seq = self._db.execute(
                    "SELECT coalesce(max(seq), 0) + 1 FROM steps WHERE run_id = ?", [run_id]
                ).fetchone()[0]
            else:
                seq = existing["seq"]
            detail = " ".join(detail.split())
            self._db.execute(
                "INSERT INTO steps (run_id, seq, name, status, seconds, detail)"
                " VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (run_id, seq) DO UPDATE SET"
                " status = excluded.status, seconds = excluded.seconds, detail = excluded.detail",
                [run_id, seq, name, status, seconds, detail],
            )
            self._audit(
                at,
                "run.step",
                status,
                service=run.service,
                env=run.env,
                release_id=run.release_id,
                reason=detail,
                details={"run": run_id, "step": name, "seconds": seconds},
            )
            return StepRecord(name, status, seconds, detail, run_id=run_id, seq=seq)

    def record_test_results(self, run_id: int, results: Iterable[TestResultRecord]) -> int:
        """Store the outcome of each test of a run, for the run's release; returns how many."""
        rows: list[dict[str, Any]] = [
            {
                "run_id": run_id,
                "suite": result.suite,
                "nodeid": result.nodeid,
                "outcome": result.outcome,
                "seconds": result.seconds,
                "message": result.message,
            }
            for result in results
        ]
        with self._writing(f"recording test results of run #{run_id}") as at:
            run = self._run_row(run_id)
            for row in rows:
                row["release_id"] = run.release_id
            # replace: a re-reported test of the same run keeps only its last outcome
            self._db.table("test_results").insert_all(rows, replace=True)
            counts = Counter(str(row["outcome"]) for row in rows)
            self._audit(
                at,
                "run.tests",
                "failed" if counts["failed"] or counts["error"] else "passed",
                service=run.service,
                env=run.env,
                release_id=run.release_id,
                details={"run": run_id, "outcomes": dict(sorted(counts.items()))},
            )
        return len(rows)

    def finish_run(
        self,
        run_id: int,
        status: RunStatus,
        *,
        reason: str = "",
        details: Mapping[str, Any] | None = None,
    ) -> RunRecord:
        """Close a run with its outcome and the one-line reason a person reads."""
        if status == "running":
            raise InvalidRequest("finish_run needs a final status, not 'running'")
        with self._writing(f"finishing run #{run_id}") as at:
            run = self._run_row(run_id)
            if run.status != "running":
                if run.status == status:
                    return run
                raise LedgerConflict(
                    f"run #{run_id} already finished as {run.status} in {self.where}; "
                    "start a new run"
                )
            merged = {**run.details, **dict(details or {})}
            reason = " ".join(reason.split())
            self._db.execute(
                "UPDATE runs SET status = ?, finished_at = ?, reason = ?, details = ? WHERE id = ?",
                [status, at, reason, _json(merged), run_id],
            )
            self._audit(
                at,
                "run.finish",
                status,
                service=run.service,
                env=run.env,
                release_id=run.release_id,
                reason=reason,
                details={"run": run_id, "kind": run.kind},
            )
            return self._run_row(run_id)

    def get_run(self, run_id: int) -> RunRecord:
        with self._reading():
            return self._run_row(run_id)

    def steps(self, run_id: int) -> list[StepRecord]:
        with self._reading() as db:
            rows = db.query("SELECT * FROM steps WHERE run_id = ? ORDER BY seq", [run_id])
            return [StepRecord(**row) for row in rows]

    def latest_run(
        self,
        kind: RunKind,
        release_id: str | None = None,
        *,
        service: str | None = None,
        env: str | None = None,
        status: RunStatus | None = None,
    ) -> RunRecord | None:
        """The most recently started run of this kind matching every filter given."""
        where: list[str] = ["kind = ?"]
        params: list[str] = [kind]
        for column, value in (
            ("release_id", release_id),
            ("service", service),
            ("env", env),
            ("status", status),
        ):
            if value is not None:
                where.append(f"{column} = ?")
                params.append(value)
        with self._reading():
            row = self._one(
                f"SELECT * FROM runs WHERE {' AND '.join(where)}"
                " ORDER BY started_at DESC, id DESC LIMIT 1",
                params,
            )
        return None if row is None else run_from_row(row)

    def running_runs(self, service: str | None = None, env: str | None = None) -> list[RunRecord]:
        """Runs not finished: still working, or left behind by a process that died."""
        sql = "SELECT * FROM runs WHERE status = 'running'"
        params: list[str] = []
        for column, value in (("service", service), ("env", env)):
            if value is not None:
                sql += f" AND {column} = ?"
                params.append(value)
        with self._reading() as db:
            return [run_from_row(row) for row in db.query(sql + " ORDER BY id", params)]

    def test_results(self, release_id: str, suite: str | None = None) -> list[TestResultRecord]:
        """For each suite, the results of the latest run that tested this release with it."""
        sql = (
            "SELECT * FROM test_results AS t WHERE release_id = ?"
            + (" AND suite = ?" if suite is not None else "")
            + " AND run_id = (SELECT max(run_id) FROM test_results"
            " WHERE release_id = t.release_id AND suite = t.suite)"
            " ORDER BY suite, nodeid"
        )
        params = [release_id] if suite is None else [release_id, suite]
        with self._reading() as db:
            return [TestResultRecord(**row) for row in db.query(sql, params)]

    def _run_row(self, run_id: int) -> RunRecord:
        row = self._one("SELECT * FROM runs WHERE id = ?", [run_id])
        if row is None:
            raise RecordNotFound(f"no run #{run_id} in {self.where}; `relman history` lists runs")
        return run_from_row(row)


def _json(value: Mapping[str, Any] | None) -> str:
    return json.dumps(dict(value or {}), sort_keys=True, default=str)
