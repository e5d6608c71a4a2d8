"""Promotions and rollbacks, approvals, and what runs in each environment.

A promotion is recorded twice: its intent before anything is deployed, its result after.
A crash in between leaves an open intent that the next command finds (``open_promotions``)
and completes or undoes; "what was live when" only ever counts finished ones.
"""

from __future__ import annotations

from datetime import datetime

from store.errors import InvalidRequest, LedgerConflict, PromotionOpen, RecordNotFound
from store.ledger.base import LedgerBase
from store.ledger.db import iso
from store.ledger.records import (
    ApprovalRecord,
    EnvState,
    PromotionKind,
    PromotionRecord,
    PromotionStatus,
    approval_from_row,
    promotion_from_row,
)


class DeploymentsMixin(LedgerBase):
    def begin_promotion(
        self,
        service: str,
        env: str,
        release_id: str,
        *,
        kind: PromotionKind = "promote",
        reason: str = "",
        pid: int | None = None,
        host: str | None = None,
    ) -> PromotionRecord:
        """Record the intent to deploy ``release_id`` to ``env``, before deploying it.

        Refused (:class:`PromotionOpen`, carrying the open one) while another promotion of
        the same service and environment is open: the check and the insert share one
        transaction, so two processes cannot both start one. ``pid`` and ``host`` name the
        process that holds it, so the engine can tell a live holder from a dead one.
        """
        with self._writing(f"starting a {kind} of {service} in {env}") as at:
            release = self._release_row(release_id)
            if release.service != service:
                raise InvalidRequest(
                    f"release {release_id} belongs to {release.service}, not {service}; "
                    "pick a release of this service"
                )
            open_row = self._one(
                "SELECT * FROM promotions WHERE service = ? AND env = ? AND status = 'intent'",
                [service, env],
            )
            if open_row is not None:
                raise PromotionOpen(promotion_from_row(open_row))
            state = self._one(
                "SELECT release_id FROM environment_state WHERE service = ? AND env = ?",
                [service, env],
            )
            previous = state["release_id"] if state else None
            reason = " ".join(reason.split())
            cursor = self._db.execute(
                "INSERT INTO promotions (service, env, release_id, previous_release_id, kind,"
                " actor, started_at, status, reason, pid, host)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, 'intent', ?, ?, ?)",
                [service, env, release_id, previous, kind, self.actor, at, reason, pid, host],
            )
            promotion_id = int(cursor.lastrowid or 0)
            self._audit(
                at,
                f"{kind}.intent",
                "intent",
                service=service,
                env=env,
                release_id=release_id,
                reason=reason,
                details={"promotion": promotion_id, "previous_release_id": previous},
            )
            return self._promotion_row(promotion_id)

    def claim_promotion(
        self, promotion_id: int, holder_pid: int | None, *, pid: int, host: str, reason: str
    ) -> bool:
        """Take an open promotion over from a dead holder: it becomes ``pid``'s to finish.
        Compare-and-set on the holder, in one transaction: of two processes that both found
        the holder dead, only one wins (True); the other gets False and must wait."""
        with self._writing(f"taking over promotion #{promotion_id}") as at:
            cursor = self._db.execute(
                "UPDATE promotions SET pid = ?, host = ? WHERE id = ? AND status = 'intent'"
                " AND pid IS ?",
                [pid, host, promotion_id, holder_pid],
            )
            if cursor.rowcount != 1:
                return False
            promotion = self._promotion_row(promotion_id)
            self._audit(
                at,
                f"{promotion.kind}.takeover",
                "taken over",
                service=promotion.service,
                env=promotion.env,
                release_id=promotion.release_id,
                reason=" ".join(reason.split()),
                details={"promotion": promotion_id, "from_pid": holder_pid, "pid": pid},
            )
            return True

    def finish_promotion(
        self,
        promotion_id: int,
        status: PromotionStatus,
        *,
        reason: str = "",
        url: str | None = None,
        pid: int | None = None,
    ) -> PromotionRecord:
        """Record how an open promotion ended: ``done`` (the release now runs in the
        environment, whose state is updated in the same transaction), ``failed``, or
        ``undone`` (it failed and the previous release was restored)."""
        if status == "intent":
            raise InvalidRequest("finish_promotion needs a result: done, failed or undone")
        with self._writing(f"finishing promotion #{promotion_id}") as at:
            promotion = self._promotion_row(promotion_id)
            if promotion.status != "intent":
                raise LedgerConflict(
                    f"promotion #{promotion_id} already ended as {promotion.status} in "
                    f"{self.where}; start a new promotion"
                )
            reason = " ".join(reason.split())
            self._db.execute(
                # An empty result reason keeps the reason given with the intent.
                "UPDATE promotions SET status = ?, finished_at = ?,"
                " reason = coalesce(nullif(?, ''), reason) WHERE id = ?",
                [status, at, reason, promotion_id],
            )
            if status == "done":
                self._put_state(
                    at, promotion.service, promotion.env, promotion.release_id, "live", url, pid
                )
            self._audit(
                at,
                f"{promotion.kind}.finish",
                status,
                service=promotion.service,
                env=promotion.env,
                release_id=promotion.release_id,
                reason=reason,
                details={"promotion": promotion_id, "url": url, "pid": pid},
            )
            return self._promotion_row(promotion_id)

    def approve(
        self, release_id: str, env: str, *, comment: str = "", actor: str | None = None
    ) -> ApprovalRecord:
        """Record that ``actor`` approves ``release_id`` for ``env``. Approving twice is a
        no-op that returns the first approval (a retried CI job must not fail)."""
        who = actor or self.actor
        with self._writing(f"approving {release_id} for {env}") as at:
            release = self._release_row(release_id)
            existing = self._one(
                "SELECT * FROM approvals WHERE release_id = ? AND env = ? AND actor = ?",
                [release_id, env, who],
            )
            if existing is not None:
                return approval_from_row(existing)
            comment = " ".join(comment.split())
            cursor = self._db.execute(
                "INSERT INTO approvals (release_id, service, env, actor, at, comment)"
                " VALUES (?, ?, ?, ?, ?, ?)",
                [release_id, release.service, env, who, at, comment],
            )
            self._audit(
                at,
                "approval.record",
                "approved",
                service=release.service,
                env=env,
                release_id=release_id,
                reason=comment,
                actor=who,
            )
            row = self._one("SELECT * FROM approvals WHERE id = ?", [cursor.lastrowid])
            assert row is not None  # inserted just above, in this transaction
            return approval_from_row(row)

    def set_environment_state(
        self,
        service: str,
        env: str,
        state: str,
        *,
        release_id: str | None = None,
        url: str | None = None,
        pid: int | None = None,
    ) -> EnvState:
        """Record what runs in an environment now (``live``, ``down``, ``failed``, ...).
        ``release_id`` None keeps the release recorded there; url and pid are replaced."""
        with self._writing(f"changing the state of {service} in {env}") as at:
            if release_id is None:
                row = self._one(
                    "SELECT release_id FROM environment_state WHERE service = ? AND env = ?",
                    [service, env],
                )
                release_id = row["release_id"] if row else None
            self._put_state(at, service, env, release_id, state, url, pid)
            self._audit(
                at,
                "env.state",
                state,
                service=service,
                env=env,
                release_id=release_id,
                details={"url": url, "pid": pid},
            )
            state_now = self._state_row(service, env)
            assert state_now is not None  # written just above, in this transaction
            return state_now

    def get_promotion(self, promotion_id: int) -> PromotionRecord:
        with self._reading():
            return self._promotion_row(promotion_id)

    def open_promotions(
        self, service: str | None = None, env: str | None = None
    ) -> list[PromotionRecord]:
        """Intents without a result: promotions a crash (or a running process) left open."""
        sql = "SELECT * FROM promotions WHERE status = 'intent'"
        params: list[str] = []
        for column, value in (("service", service), ("env", env)):
            if value is not None:
                sql += f" AND {column} = ?"
                params.append(value)
        with self._reading() as db:
            return [promotion_from_row(row) for row in db.query(sql + " ORDER BY id", params)]

    def done_promotions(self, service: str, env: str) -> list[PromotionRecord]:
        """Promotions and rollbacks of ``service`` in ``env`` that went live, newest first:
        the releases that were healthy there, for rollback to pick from."""
        with self._reading() as db:
            rows = db.query(
                "SELECT * FROM promotions WHERE service = ? AND env = ? AND status = 'done'"
                " ORDER BY finished_at DESC, id DESC",
                [service, env],
            )
            return [promotion_from_row(row) for row in rows]

    def approvals(self, release_id: str, env: str | None = None) -> list[ApprovalRecord]:
        sql = "SELECT * FROM approvals WHERE release_id = ?"
        params = [release_id]
        if env is not None:
            sql += " AND env = ?"
            params.append(env)
        with self._reading() as db:
            return [approval_from_row(row) for row in db.query(sql + " ORDER BY at, id", params)]

    def environment_state(self, service: str, env: str) -> EnvState | None:
        with self._reading():
            return self._state_row(service, env)

    def environment_states(self, service: str | None = None) -> list[EnvState]:
        sql = "SELECT * FROM environment_state"
        params = [] if service is None else [service]
        if service is not None:
            sql += " WHERE service = ?"
        with self._reading() as db:
            return [EnvState(**row) for row in db.query(sql + " ORDER BY service, env", params)]

    def live_at(self, service: str, env: str, at: datetime) -> str | None:
        """The release that was live in ``env`` at ``at``: the last promotion or rollback
        of it that had finished (done) by then. None if nothing was live yet."""
        with self._reading():
            row = self._one(
                "SELECT release_id FROM promotions"
                " WHERE service = ? AND env = ? AND status = 'done' AND finished_at <= ?"
                " ORDER BY finished_at DESC, id DESC LIMIT 1",
                [service, env, iso(at)],
            )
        return None if row is None else str(row["release_id"])

    def _put_state(
        self,
        at: str,
        service: str,
        env: str,
        release_id: str | None,
        state: str,
        url: str | None,
        pid: int | None,
    ) -> None:
        version = None
        if release_id is not None:
            version = self._release_row(release_id).version
        # since: when this release entered this state; kept while neither changes.
        self._db.execute(
            "INSERT INTO environment_state (service, env, release_id, version, state, url, pid,"
            " since, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)"
            " ON CONFLICT (service, env) DO UPDATE SET"
            " since = CASE WHEN release_id IS excluded.release_id AND state = excluded.state"
            " THEN since ELSE excluded.since END,"
            " release_id = excluded.release_id, version = excluded.version,"
            " state = excluded.state, url = excluded.url, pid = excluded.pid,"
            " updated_at = excluded.updated_at",
            [service, env, release_id, version, state, url, pid, at, at],
        )

    def _state_row(self, service: str, env: str) -> EnvState | None:
        row = self._one(
            "SELECT * FROM environment_state WHERE service = ? AND env = ?", [service, env]
        )
        return None if row is None else EnvState(**row)

    def _promotion_row(self, promotion_id: int) -> PromotionRecord:
        row = self._one("SELECT * FROM promotions WHERE id = ?", [promotion_id])
        if row is None:
            raise RecordNotFound(
                f"no promotion #{promotion_id} in {self.where}; `relman history` lists them"
            )
        return promotion_from_row(row)
