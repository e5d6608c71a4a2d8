"""Canary and shadow rollouts: one row each, moved on by the relman process that drives it.

A rollout runs under its environment's open promotion (the lock, ``promotion_id``). Its
driver records each step, weight and analysis measurement here; other commands (``relman
rollout pause|resume|abort|promote``) leave a ``request`` that the driver acts on and
clears. Beginning it and how it ended (promoted, aborted), requests and takeovers are
audited; the steps in between are not, to keep the chain small (docs/rollouts.md).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, get_args

from store.errors import InvalidRequest, LedgerConflict, RecordNotFound
from store.ledger.base import LedgerBase
from store.ledger.records import (
    OPEN_PHASES,
    RolloutPhase,
    RolloutRecord,
    RolloutRequest,
    RolloutStrategy,
    rollout_from_row,
)

_FINISHED: tuple[RolloutPhase, ...] = ("promoted", "aborted")
_PHASES = get_args(RolloutPhase)
_REQUESTS = get_args(RolloutRequest)
_OPEN_SQL = f"phase IN ({', '.join(repr(phase) for phase in OPEN_PHASES)})"


class RolloutsMixin(LedgerBase):
    def begin_rollout(
        self,
        service: str,
        env: str,
        *,
        promotion_id: int,
        run_id: int | None,
        strategy: RolloutStrategy,
        stable: str | None,
        canary: str,
        plan: Sequence[Mapping[str, Any]],
        pid: int | None,
        host: str | None,
    ) -> RolloutRecord:
        """Record a rollout of ``canary`` beside ``stable`` beginning: phase
        ``progressing``, step 0, weight 0. Refused (:class:`LedgerConflict`) while another
        rollout of the service is open in ``env``, or when ``promotion_id`` is not an open
        promotion of this service and environment."""
        with self._writing(f"starting a {strategy} rollout of {service} in {env}") as at:
            promotion = self._one("SELECT * FROM promotions WHERE id = ?", [promotion_id])
            if promotion is None:
                raise RecordNotFound(
                    f"no promotion #{promotion_id} in {self.where}; begin the promotion first"
                )
            if (promotion["service"], promotion["env"]) != (service, env):
                raise InvalidRequest(
                    f"promotion #{promotion_id} is of {promotion['service']} in "
                    f"{promotion['env']}, not {service} in {env}; pass this environment's"
                )
            if promotion["status"] != "intent":
                raise LedgerConflict(
                    f"promotion #{promotion_id} already ended as {promotion['status']} in "
                    f"{self.where}; a rollout runs under an open promotion"
                )
            for release_id in (canary, stable):
                if release_id is not None and self._release_row(release_id).service != service:
                    raise InvalidRequest(
                        f"release {release_id} is not a release of {service}; pick one of its "
                        "releases"
                    )
            open_row = self._one(
                f"SELECT * FROM rollouts WHERE service = ? AND env = ? AND {_OPEN_SQL}",
                [service, env],
            )
            if open_row is not None:
                current = rollout_from_row(open_row)
                holder = f" (pid {current.pid})" if current.pid else ""
                raise LedgerConflict(
                    f"{env} already has rollout #{current.id} of {service} {current.phase}"
                    f"{holder} since {current.started_at}; `relman rollout status {service} "
                    f"--env {env}` shows it"
                )
            cursor = self._db.execute(
                "INSERT INTO rollouts (service, env, promotion_id, run_id, strategy, stable,"
                " canary, phase, step, weight, plan, analysis, actor, pid, host, started_at,"
                " updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, 'progressing', 0, 0, ?, '[]', ?,"
                " ?, ?, ?, ?)",
                [
                    service,
                    env,
                    promotion_id,
                    run_id,
                    strategy,
                    stable,
                    canary,
                    _dumps(plan),
                    self.actor,
                    pid,
                    host,
                    at,
                    at,
                ],
            )
            rollout_id = int(cursor.lastrowid or 0)
            self._audit(
                at,
                "rollout.begin",
                "progressing",
                service=service,
                env=env,
                release_id=canary,
                details={
                    "rollout": rollout_id,
                    "promotion": promotion_id,
                    "strategy": strategy,
                    "stable": stable,
                    "steps": len(plan),
                },
            )
            return self._rollout_row(rollout_id)

    def update_rollout(
        self,
        rollout_id: int,
        *,
        phase: RolloutPhase | None = None,
        step: int | None = None,
        weight: int | None = None,
        detail: str | None = None,
        analysis_append: Iterable[Mapping[str, Any]] | None = None,
        pid: int | None = None,
        host: str | None = None,
        actor: str | None = None,
    ) -> RolloutRecord:
        """Move an open rollout on: the fields given replace the recorded ones, and
        ``analysis_append``'s measurements are added after those recorded. Becoming
        ``promoted`` or ``aborted`` finishes it (``finished_at``, any pending request
        dropped) and is audited with ``detail`` as the reason, under ``actor`` (default:
        the ledger's). A finished rollout is refused (:class:`LedgerConflict`), except for
        asking the phase it ended in again, which returns it unchanged."""
        if phase is not None and phase not in _PHASES:
            raise InvalidRequest(f"update_rollout: unknown phase {phase!r}; one of {_PHASES}")
        appended = [dict(item) for item in analysis_append or ()]
        with self._writing(f"updating rollout #{rollout_id}") as at:
            rollout = self._rollout_row(rollout_id)
            if not rollout.open:
                if phase == rollout.phase:
                    return rollout
                raise LedgerConflict(
                    f"rollout #{rollout_id} already ended as {rollout.phase} in {self.where}; "
                    "start a new rollout"
                )
            changes: dict[str, Any] = {"updated_at": at}
            for column, value in (
                ("phase", phase),
                ("step", step),
                ("weight", weight),
                ("pid", pid),
                ("host", host),
            ):
                if value is not None:
                    changes[column] = value
            if detail is not None:
                changes["detail"] = " ".join(detail.split())
            if appended:
                changes["analysis"] = _dumps([*rollout.analysis, *appended])
            finishing = phase in _FINISHED
            if finishing:
                changes.update(finished_at=at, request=None, requested_by=None, requested_at=None)
            assignments = ", ".join(f"{column} = ?" for column in changes)
            self._db.execute(
                f"UPDATE rollouts SET {assignments} WHERE id = ?", [*changes.values(), rollout_id]
            )
            updated = self._rollout_row(rollout_id)
            if finishing:
                self._audit(
                    at,
                    f"rollout.{updated.phase}",
                    updated.phase,
                    service=updated.service,
                    env=updated.env,
                    release_id=updated.canary,
                    reason=updated.detail,
                    details={
                        "rollout": rollout_id,
                        "stable": updated.stable,
                        "step": updated.step,
                        "weight": updated.weight,
                    },
                    actor=actor,
                )
            return updated

    def request_rollout(
        self, rollout_id: int, request: RolloutRequest, *, actor: str | None = None
    ) -> RolloutRecord:
        """Ask the driver of an open rollout to pause, resume, abort or promote it; the
        latest request replaces one not acted on yet. Audited as ``rollout.<request>``
        under ``actor`` (default: the ledger's). Refused (:class:`LedgerConflict`) once the
        rollout has ended."""
        if request not in _REQUESTS:
            raise InvalidRequest(
                f"unknown rollout request {request!r}; one of {', '.join(_REQUESTS)}"
            )
        who = actor or self.actor
        with self._writing(f"asking rollout #{rollout_id} to {request}") as at:
            rollout = self._rollout_row(rollout_id)
            if not rollout.open:
                raise LedgerConflict(
                    f"rollout #{rollout_id} of {rollout.service} in {rollout.env} already "
                    f"ended as {rollout.phase}; there is nothing to {request}"
                )
            self._db.execute(
                "UPDATE rollouts SET request = ?, requested_by = ?, requested_at = ?,"
                " updated_at = ? WHERE id = ?",
                [request, who, at, at, rollout_id],
            )
            self._audit(
                at,
                f"rollout.{request}",
                "requested",
                service=rollout.service,
                env=rollout.env,
                release_id=rollout.canary,
                details={"rollout": rollout_id, "phase": rollout.phase, "step": rollout.step},
                actor=who,
            )
            return self._rollout_row(rollout_id)

    def clear_request(self, rollout_id: int, request: RolloutRequest | None = None) -> bool:
        """The driver acted on the pending request: drop it. With ``request``, only while
        that is still the one pending (compare-and-set: a newer request stays). True when
        a request was dropped."""
        sql = (
            "UPDATE rollouts SET request = NULL, requested_by = NULL, requested_at = NULL"
            " WHERE id = ? AND request IS NOT NULL"
        )
        params: list[Any] = [rollout_id]
        if request is not None:
            sql += " AND request = ?"
            params.append(request)
        with self._writing(f"clearing the request of rollout #{rollout_id}"):
            self._rollout_row(rollout_id)
            return self._db.execute(sql, params).rowcount == 1

    def claim_rollout(
        self,
        rollout_id: int,
        old_pid: int | None,
        *,
        pid: int,
        host: str,
        reason: str = "",
    ) -> bool:
        """Take an open rollout over from a dead driver: it becomes ``pid``'s to drive.
        Compare-and-set on the driver, in one transaction: of two processes that both found
        ``old_pid`` dead, only one wins (True, audited ``rollout.takeover``); the other gets
        False."""
        with self._writing(f"taking over rollout #{rollout_id}") as at:
            cursor = self._db.execute(
                f"UPDATE rollouts SET pid = ?, host = ?, updated_at = ? WHERE id = ?"
                f" AND {_OPEN_SQL} AND pid IS ?",
                [pid, host, at, rollout_id, old_pid],
            )
            if cursor.rowcount != 1:
                return False
            rollout = self._rollout_row(rollout_id)
            self._audit(
                at,
                "rollout.takeover",
                "taken over",
                service=rollout.service,
                env=rollout.env,
                release_id=rollout.canary,
                reason=" ".join(reason.split()),
                details={"rollout": rollout_id, "from_pid": old_pid, "pid": pid, "host": host},
            )
            return True

    def get_rollout(self, rollout_id: int) -> RolloutRecord:
        with self._reading():
            return self._rollout_row(rollout_id)

    def latest_rollout(self, service: str, env: str) -> RolloutRecord | None:
        """The newest rollout of ``service`` in ``env``, open or ended; None if none began."""
        with self._reading():
            row = self._one(
                "SELECT * FROM rollouts WHERE service = ? AND env = ? ORDER BY id DESC LIMIT 1",
                [service, env],
            )
        return None if row is None else rollout_from_row(row)

    def open_rollouts(
        self, service: str | None = None, env: str | None = None
    ) -> list[RolloutRecord]:
        """Rollouts progressing or paused (driven, or left by a driver that died), oldest
        first."""
        sql = f"SELECT * FROM rollouts WHERE {_OPEN_SQL}"
        params: list[str] = []
        for column, value in (("service", service), ("env", env)):
            if value is not None:
                sql += f" AND {column} = ?"
                params.append(value)
        with self._reading() as db:
            return [rollout_from_row(row) for row in db.query(sql + " ORDER BY id", params)]

    def _rollout_row(self, rollout_id: int) -> RolloutRecord:
        row = self._one("SELECT * FROM rollouts WHERE id = ?", [rollout_id])
        if row is None:
            raise RecordNotFound(
                f"no rollout #{rollout_id} in {self.where}; `relman rollout status` shows "
                "an environment's"
            )
        return rollout_from_row(row)


def _dumps(value: Any) -> str:
    return json.dumps([dict(item) for item in value], sort_keys=True, default=str)
