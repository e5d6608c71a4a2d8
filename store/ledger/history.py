"""One timeline of releases, runs, pipeline runs, promotions, rollbacks and approvals,
newest first.

Pages are cut by keyset, not OFFSET: an entry's position is ``(at, source, key)`` and a
cursor is the position of the last entry shown, so the next page starts strictly after it
whatever was added meanwhile, and costs the same at page 1 and page 1,000. Each source table
is read through an index on ``(…filters, time, id)`` for at most ``limit + 1`` rows, and the
few rows are merged here.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from store.errors import InvalidRequest
from store.ledger.db import iso
from store.ledger.pipelines import PipelineRunRecord, run_record
from store.ledger.records import (
    ApprovalRecord,
    PromotionRecord,
    ReleaseRecord,
    RunRecord,
    approval_from_row,
    promotion_from_row,
    release_from_row,
    run_from_row,
    run_summary,
)
from store.ledger.sqlite import Database

EntryKind = Literal["release", "run", "pipeline", "promotion", "rollback", "approval"]
Record = ReleaseRecord | RunRecord | PromotionRecord | ApprovalRecord | PipelineRunRecord


@dataclass(frozen=True)
class HistoryEntry:
    """One thing that happened; ``summary`` is the line a person reads."""

    kind: EntryKind
    at: str
    service: str | None
    env: str | None
    release_id: str | None
    version: str | None
    actor: str
    status: str
    summary: str
    record: Record
    cursor: str


@dataclass(frozen=True)
class HistoryPage:
    entries: tuple[HistoryEntry, ...]
    # Pass as ``before`` for the next (older) page; None on the last page.
    next_cursor: str | None


@dataclass(frozen=True)
class _Source:
    name: str  # also the tie-break between sources at the same instant
    table: str
    time: str
    has_env: bool


# Sorted by name: the order of sources at an equal timestamp, which cursors rely on.
_SOURCES = (
    _Source("approval", "approvals", "at", True),
    _Source("pipeline", "pipeline_runs", "started_at", False),
    _Source("promotion", "promotions", "started_at", True),
    _Source("release", "releases", "created_at", False),
    _Source("run", "runs", "started_at", True),
)
_SEPARATOR = "~"


def history(
    db: Database,
    *,
    service: str | None = None,
    env: str | None = None,
    limit: int = 50,
    before: str | datetime | None = None,
) -> HistoryPage:
    """Newest first. ``before`` is a page's ``next_cursor``, or a moment (entries before it).

    With ``env``, only what happened in that environment: runs, promotions, rollbacks and
    approvals there (a release itself belongs to no environment).
    """
    if limit < 1:
        raise InvalidRequest(f"history limit must be at least 1, not {limit}")
    position = _parse_before(before)
    candidates: list[tuple[tuple[str, str, Any], dict[str, Any], _Source]] = []
    for source in _SOURCES:
        if env is not None and not source.has_env:
            continue
        for row in _read_source(db, source, service, env, position, limit + 1):
            key = (row[source.time], source.name, row["id"])
            candidates.append((key, row, source))
    candidates.sort(key=lambda item: item[0], reverse=True)
    page = candidates[:limit]
    referenced = {
        row.get("release_id", row.get("release"))
        for _, row, source in page
        if source.name != "release"
    }
    versions = _versions(db, {release_id for release_id in referenced if release_id})
    entries = tuple(_entry(key, row, source, versions) for key, row, source in page)
    more = len(candidates) > limit
    return HistoryPage(entries=entries, next_cursor=entries[-1].cursor if more else None)


def _parse_before(before: str | datetime | None) -> tuple[str, str, str] | None:
    if before is None:
        return None
    if isinstance(before, datetime):
        # "" sorts before every source name: everything at that instant is excluded too.
        return (iso(before), "", "")
    parts = before.split(_SEPARATOR, 2)
    if len(parts) != 3 or parts[1] not in {source.name for source in _SOURCES}:
        raise InvalidRequest(f"history cursor {before!r} is not one relman gave; start from page 1")
    return (parts[0], parts[1], parts[2])


def _read_source(
    db: Database,
    source: _Source,
    service: str | None,
    env: str | None,
    position: tuple[str, str, str] | None,
    limit: int,
) -> list[dict[str, Any]]:
    where: list[str] = []
    params: list[Any] = []
    if service is not None:
        where.append("service = ?")
        params.append(service)
    if env is not None:
        where.append("env = ?")
        params.append(env)
    if position is not None:
        at, name, key = position
        if source.name < name:  # sorts after the cursor at the same instant
            where.append(f"{source.time} <= ?")
            params.append(at)
        elif source.name > name:  # sorts before the cursor at the same instant
            where.append(f"{source.time} < ?")
            params.append(at)
        else:
            # The leading "<=" bounds the index range; an OR alone would scan from the top.
            where.append(f"{source.time} <= ? AND ({source.time} < ? OR id < ?)")
            params.extend([at, at, key if source.name == "release" else _int_key(key)])
    sql = (
        f"SELECT * FROM {source.table}"
        + (f" WHERE {' AND '.join(where)}" if where else "")
        + f" ORDER BY {source.time} DESC, id DESC LIMIT ?"
    )
    return list(db.query(sql, [*params, limit]))


def _int_key(key: str) -> int:
    try:
        return int(key)
    except ValueError:
        raise InvalidRequest(f"history cursor key {key!r} is not one relman gave") from None


def _versions(db: Database, release_ids: set[str]) -> dict[str, str | None]:
    if not release_ids:
        return {}
    marks = ", ".join("?" for _ in release_ids)
    rows = db.execute(f"SELECT id, version FROM releases WHERE id IN ({marks})", list(release_ids))
    return {row[0]: row[1] for row in rows}


def _entry(
    key: tuple[str, str, Any],
    row: dict[str, Any],
    source: _Source,
    versions: dict[str, str | None],
) -> HistoryEntry:
    at, name, ident = key
    cursor = _SEPARATOR.join([at, name, str(ident)])
    if source.name == "release":
        release = release_from_row(row)
        where = f"{release.git_branch or 'detached'}@{release.git_commit[:7]}"
        first_line = release.message.splitlines()[0] if release.message else ""
        return HistoryEntry(
            kind="release",
            at=at,
            service=release.service,
            env=None,
            release_id=release.id,
            version=release.version,
            actor=release.author,
            status="recorded",
            summary=f"release {_label(release.id, release.version)} of {release.service} from "
            f"{where}" + (f": {first_line}" if first_line else ""),
            record=release,
            cursor=cursor,
        )
    if source.name == "run":
        run = run_from_row(row)
        version = versions.get(run.release_id) if run.release_id else None
        return HistoryEntry(
            kind="run",
            at=at,
            service=run.service,
            env=run.env,
            release_id=run.release_id,
            version=version,
            actor=run.actor,
            status=run.status,
            summary=run_summary(run, version),
            record=run,
            cursor=cursor,
        )
    if source.name == "promotion":
        promotion = promotion_from_row(row)
        version = versions.get(promotion.release_id)
        label = _label(promotion.release_id, version)
        verb = (
            f"promote {label} to {promotion.env}"
            if promotion.kind == "promote"
            else f"roll {promotion.env} back to {label}"
        )
        if promotion.previous_release_id:
            verb += f" (was {promotion.previous_release_id})"
        return HistoryEntry(
            kind="promotion" if promotion.kind == "promote" else "rollback",
            at=at,
            service=promotion.service,
            env=promotion.env,
            release_id=promotion.release_id,
            version=version,
            actor=promotion.actor,
            status=promotion.status,
            summary=f"{verb}: {promotion.status}"
            + (f" ({promotion.reason})" if promotion.reason else ""),
            record=promotion,
            cursor=cursor,
        )
    if source.name == "pipeline":
        pipeline = run_record(row)
        version = versions.get(pipeline.release) if pipeline.release else None
        what = f" of {_label(pipeline.release, version)}" if pipeline.release else ""
        outcome = pipeline.status + (f" ({pipeline.detail})" if pipeline.detail else "")
        return HistoryEntry(
            kind="pipeline",
            at=at,
            service=pipeline.service,
            env=None,
            release_id=pipeline.release,
            version=version,
            actor=pipeline.actor,
            status=pipeline.status,
            summary=f"pipeline {pipeline.pipeline} run #{pipeline.id}{what} "
            f"({pipeline.trigger}: {pipeline.reason}): {outcome}",
            record=pipeline,
            cursor=cursor,
        )
    approval = approval_from_row(row)
    version = versions.get(approval.release_id)
    return HistoryEntry(
        kind="approval",
        at=at,
        service=approval.service,
        env=approval.env,
        release_id=approval.release_id,
        version=version,
        actor=approval.actor,
        status="approved",
        summary=f"{approval.actor} approved {_label(approval.release_id, version)} for "
        f"{approval.env}" + (f": {approval.comment}" if approval.comment else ""),
        record=approval,
        cursor=cursor,
    )


def _label(release_id: str, version: str | None) -> str:
    return f"{release_id} ({version})" if version else release_id
