"""The append-only, hash-chained audit log.

Each event's ``hash`` is ``sha256(prev_hash + canonical JSON of its content)``, where the
content includes its own ``seq`` and ``prev_hash`` is the hash of the event before it
(``GENESIS_HASH`` for the first). Changing any field of an event breaks its hash; deleting an
event leaves a gap in ``seq``; re-hashing an edited event breaks the next event's link. So
``verify_chain`` names the first event that cannot be trusted.

``append_event`` must run inside a write transaction opened with BEGIN IMMEDIATE (see
``store.ledger.db.write_transaction``): reading the previous hash and inserting the new event are
then atomic, even with several processes appending at once.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from typing import Any

from store.ledger.sqlite import Database

GENESIS_HASH = "0" * 64

# The fields an event's hash covers, in the order they are stored.
_CONTENT_FIELDS = (
    "seq",
    "at",
    "actor",
    "action",
    "service",
    "env",
    "release_id",
    "outcome",
    "reason",
    "details",
)


@dataclass(frozen=True)
class AuditEvent:
    """Who did what, when, to which release in which environment, and how it ended."""

    seq: int
    at: str
    actor: str
    action: str
    service: str | None
    env: str | None
    release_id: str | None
    outcome: str
    reason: str
    details: dict[str, Any] = field(default_factory=dict)
    prev_hash: str = GENESIS_HASH
    hash: str = ""


@dataclass(frozen=True)
class ChainReport:
    """The result of checking the audit chain; ``line`` is what ``relman audit verify`` prints."""

    ok: bool
    checked: int
    first_broken: int | None = None
    problem: str | None = None

    @property
    def line(self) -> str:
        if self.ok:
            return f"audit chain intact: {self.checked} events checked"
        return f"audit chain broken: {self.problem}"


def canonical_content(event: dict[str, Any]) -> str:
    """The JSON an event's hash covers: sorted keys, no whitespace, UTF-8 as is."""
    content = {name: event[name] for name in _CONTENT_FIELDS}
    return json.dumps(content, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def event_hash(prev_hash: str, event: dict[str, Any]) -> str:
    return hashlib.sha256((prev_hash + canonical_content(event)).encode("utf-8")).hexdigest()


def append_event(
    db: Database,
    *,
    at: str,
    actor: str,
    action: str,
    outcome: str,
    service: str | None = None,
    env: str | None = None,
    release_id: str | None = None,
    reason: str = "",
    details: dict[str, Any] | None = None,
) -> AuditEvent:
    """Append one event to the chain. Call inside ``write_transaction``."""
    if not db.conn.in_transaction:
        raise RuntimeError("append_event must run inside write_transaction()")
    last = db.execute("SELECT seq, hash FROM audit_events ORDER BY seq DESC LIMIT 1").fetchone()
    # The highest seq ever handed out, even if that event was deleted since: a new event
    # must not reuse it, or deleting the newest events would go unnoticed.
    used = db.execute("SELECT seq FROM sqlite_sequence WHERE name = 'audit_events'").fetchone()
    seq = max(last[0] if last else 0, used[0] if used else 0) + 1
    prev_hash = last[1] if last else GENESIS_HASH
    event: dict[str, Any] = {
        "seq": seq,
        "at": at,
        "actor": actor,
        "action": action,
        "service": service,
        "env": env,
        "release_id": release_id,
        "outcome": outcome,
        "reason": " ".join(reason.split()),
        # Round-tripped so the hash covers exactly what verify_chain will read back.
        "details": json.loads(json.dumps(details or {}, sort_keys=True, default=str)),
    }
    digest = event_hash(prev_hash, event)
    db.execute(
        "INSERT INTO audit_events (seq, at, actor, action, service, env, release_id, outcome,"
        " reason, details, prev_hash, hash) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        [
            *(event[name] for name in _CONTENT_FIELDS[:-1]),
            json.dumps(event["details"], sort_keys=True, separators=(",", ":")),
            prev_hash,
            digest,
        ],
    )
    return AuditEvent(**event, prev_hash=prev_hash, hash=digest)


def event_from_row(row: dict[str, Any]) -> AuditEvent:
    return AuditEvent(**{**row, "details": json.loads(row["details"])})


def audit_events(
    db: Database,
    *,
    limit: int = 50,
    before_seq: int | None = None,
    service: str | None = None,
    env: str | None = None,
) -> list[AuditEvent]:
    """The newest events first; page on with ``before_seq`` = the last seq of a page."""
    where: list[str] = ["1 = 1"]
    params: list[Any] = []
    if before_seq is not None:
        where.append("seq < ?")
        params.append(before_seq)
    for column, value in (("service", service), ("env", env)):
        if value is not None:
            where.append(f"{column} = ?")
            params.append(value)
    sql = f"SELECT * FROM audit_events WHERE {' AND '.join(where)} ORDER BY seq DESC LIMIT ?"
    return [event_from_row(row) for row in db.query(sql, [*params, limit])]


def verify_chain(db: Database) -> ChainReport:
    """Walk the chain from the first event; stop at the first one that fails."""
    expected_seq = 1
    prev_hash = GENESIS_HASH
    checked = 0
    cursor = db.execute(
        "SELECT seq, at, actor, action, service, env, release_id, outcome, reason, details,"
        " prev_hash, hash FROM audit_events ORDER BY seq"
    )
    columns = [description[0] for description in cursor.description]
    for values in cursor:
        row = dict(zip(columns, values, strict=True))
        seq = row["seq"]
        if seq != expected_seq:
            return _broken(
                checked,
                expected_seq,
                f"event {expected_seq}: missing, the chain jumps from event {expected_seq - 1}"
                f" to {seq} (audit rows were deleted)",
            )
        if row["prev_hash"] != prev_hash:
            link = f"event {seq - 1}" if seq > 1 else "the start of the chain"
            return _broken(checked, seq, f"event {seq}: prev_hash does not match {link}")
        try:
            content = {**row, "details": json.loads(row["details"])}
        except (TypeError, ValueError):
            return _broken(checked, seq, f"event {seq}: details are not valid JSON")
        if event_hash(prev_hash, content) != row["hash"]:
            return _broken(checked, seq, f"event {seq}: hash does not match its content")
        checked += 1
        prev_hash = row["hash"]
        expected_seq = seq + 1
    used = db.execute("SELECT seq FROM sqlite_sequence WHERE name = 'audit_events'").fetchone()
    if used and used[0] >= expected_seq:
        return _broken(
            checked,
            expected_seq,
            f"event {expected_seq}: missing, the newest events up to {used[0]} were deleted",
        )
    return ChainReport(ok=True, checked=checked)


def _broken(checked: int, seq: int, problem: str) -> ChainReport:
    return ChainReport(ok=False, checked=checked, first_broken=seq, problem=problem)
