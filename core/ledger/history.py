"""`relman history` and `relman diff`: what happened, what was live when, what changed."""

from __future__ import annotations

import re
from dataclasses import asdict
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from core.config.model import Project
from core.errors import UsageError
from core.ledger.pipeline_runs import seen_status
from core.ledger.releases import find_release, open_ledger
from core.ledger.runs import as_seen
from core.lineage.candidate import project_candidates
from core.lineage.dvcinfo import flat_view
from core.lineage.gitinfo import commits_between, tags
from core.lineage.gto import GtoEvent, gto_events
from store import HistoryEntry, ReleaseRecord, RunRecord
from store.ledger.pipelines import PipelineRunRecord
from store.ledger.records import run_summary

if TYPE_CHECKING:
    from core.documents import HistoryDocument
    from core.documents import HistoryEntry as EntryDocument


def parse_moment(text: str, *, now: datetime | None = None) -> datetime:
    """ISO-8601 (``2026-11-27T03:12``, with or without zone) or ``HH:MM`` = the latest such
    local time that has passed. A time without zone is local time."""
    now = now or datetime.now().astimezone()
    clock = re.fullmatch(r"(\d{1,2}):(\d{2})(?::(\d{2}))?", text.strip())
    if clock:
        hour, minute, second = (int(part or 0) for part in clock.groups())
        if hour > 23 or minute > 59 or second > 59:
            raise UsageError(f"--at {text}: not a time of day")
        moment = now.replace(hour=hour, minute=minute, second=second, microsecond=0)
        return moment if moment <= now else moment - timedelta(days=1)
    try:
        moment = datetime.fromisoformat(text.strip())
    except ValueError as exc:
        raise UsageError(
            f"--at {text}: not a moment; use ISO-8601 (2026-11-27T03:12) or HH:MM"
        ) from exc
    return moment if moment.tzinfo else moment.astimezone()


def _gto_entry(event: GtoEvent) -> EntryDocument:
    what = {
        "register": f"registered {event.artifact} {event.version}",
        "deregister": f"deregistered {event.artifact} {event.version}",
        "assign": f"assigned {event.artifact} {event.resolved_version} to {event.stage}",
        "unassign": f"unassigned {event.artifact} {event.resolved_version} from {event.stage}",
        "deprecate": f"deprecated {event.artifact}",
    }[str(event.action)]
    return {
        "kind": "gto",
        "at": datetime.fromisoformat(event.date).astimezone(UTC).isoformat(),
        "service": None,
        "env": event.stage,
        "release": None,
        "version": event.resolved_version,
        "actor": event.tagger,
        "status": "tag",
        "summary": f"{what} (git tag {event.tag} on {event.commit[:8]})",
    }


def _entry(entry: HistoryEntry) -> EntryDocument:
    status, summary = entry.status, entry.summary
    if isinstance(entry.record, RunRecord) and status == "running":
        # Left by a relman that ended: interrupted, if only a read-only session saw it yet.
        run = as_seen(entry.record)
        status, summary = run.status, run_summary(run, entry.version)
    elif isinstance(entry.record, PipelineRunRecord) and status == "running":
        status = seen_status(entry.record)
        if status != "running":
            summary = summary.removesuffix(": running") + f": {status} (its relman ended)"
    return {
        "kind": entry.kind,
        "at": entry.at,
        "service": entry.service,
        "env": entry.env,
        "release": entry.release_id,
        "version": entry.version,
        "actor": entry.actor,
        "status": status,
        "summary": summary,
    }


def history(
    project: Project,
    *,
    service: str | None = None,
    env: str | None = None,
    limit: int = 50,
    before: str | None = None,
) -> HistoryDocument:
    """One page, newest first: the ledger's releases, runs, promotions, rollbacks and
    approvals, merged with the GTO-style registry tags of git that fall in the same span."""
    project.config.check_names(service=service, env=env)
    with open_ledger(project, read_only=True) as ledger:
        page = ledger.history(service=service, env=env, limit=limit, before=before)
    entries = [_entry(entry) for entry in page.entries]
    newest = before.split("~", 1)[0] if before else None
    oldest = entries[-1]["at"] if page.next_cursor and entries else None
    events, warnings = gto_events(tags(project.root))
    if service is None or service in project.config.services:
        for event in events:
            item = _gto_entry(event)
            if env is not None and item["env"] != env:
                continue
            if newest is not None and item["at"] >= newest:
                continue
            if oldest is not None and item["at"] < oldest:
                continue
            entries.append(item)
    entries.sort(key=lambda item: item["at"], reverse=True)
    return {
        "ok": True,
        "entries": entries,
        "next_cursor": page.next_cursor,
        "warnings": warnings,
    }


def live_at(
    project: Project, moment: datetime, *, service: str | None = None, env: str | None = None
) -> dict[str, Any]:
    """What was live in each environment at ``moment``, and what it was made of."""
    project.config.check_names(service=service, env=env)
    services = [service] if service else list(project.config.services)
    envs = [env] if env else project.config.environment_order
    live = []
    with open_ledger(project, read_only=True) as ledger:
        for name in services:
            for env_name in envs:
                release_id = ledger.live_at(name, env_name, moment)
                item: dict[str, Any] = {"service": name, "env": env_name, "release": release_id}
                if release_id:
                    release = ledger.get_release(release_id)
                    item.update(_side(release, ledger.artifacts(release_id)))
                live.append(item)
    return {"ok": True, "at": moment.isoformat(), "live": live}


def _side(release: ReleaseRecord, artifacts: list[Any]) -> dict[str, Any]:
    return {
        "release": release.id,
        "version": release.version,
        "commit": release.git_commit,
        "message": release.message,
        "model": [asdict(a) for a in artifacts if a.kind == "model"],
        "data": [asdict(a) for a in artifacts if a.kind == "dataset"],
        "params": flat_view(release.params),
        "metrics": flat_view(release.metrics),
    }


def diff(project: Project, a: str, b: str) -> dict[str, Any]:
    """Two releases (or a release and ``candidate``) side by side."""
    services = list(project.config.services)
    sides: dict[str, dict[str, Any]] = {}
    with open_ledger(project, read_only=True) as ledger:
        for ref in (a, b):
            if ref != "candidate":
                release = find_release(ledger, services, ref)
                sides[ref] = _side(release, ledger.artifacts(release.id)) | {
                    "service": release.service
                }
    for ref in (a, b):
        if ref == "candidate":
            named = [side["service"] for side in sides.values()]
            service = named[0] if named else services[0]
            cand = project_candidates(project, [service])[service]
            sides[ref] = {
                "service": service,
                "release": cand.release,
                "version": None,
                "commit": cand.git.commit,
                "message": cand.git.message,
                "model": [info.to_dict() for info in cand.model],
                "data": [info.to_dict() for info in cand.data],
                "params": flat_view(cand.params),
                "metrics": flat_view(cand.metrics),
            }
    left, right = sides[a], sides[b]
    return {
        "ok": True,
        "a": _summary(left),
        "b": _summary(right),
        "params": _changed(left["params"], right["params"]),
        "metrics": _metric_deltas(left["metrics"], right["metrics"]),
        "artifacts": _artifact_changes(left, right),
        "commits": commits_between(project.root, left["commit"], right["commit"])
        if left["commit"] != right["commit"]
        else [],
    }


def _summary(side: dict[str, Any]) -> dict[str, Any]:
    keys = ("service", "release", "version", "commit", "message")
    return {key: side.get(key) for key in keys}


def _changed(left: dict[str, Any], right: dict[str, Any]) -> list[dict[str, Any]]:
    return [
        {"key": key, "a": left.get(key), "b": right.get(key)}
        for key in sorted(set(left) | set(right))
        if left.get(key) != right.get(key)
    ]


def _metric_deltas(left: dict[str, Any], right: dict[str, Any]) -> list[dict[str, Any]]:
    rows = []
    for key in sorted(set(left) | set(right)):
        old, new = left.get(key), right.get(key)
        row: dict[str, Any] = {"key": key, "a": old, "b": new, "delta": None, "relative": None}
        if _number(old) and _number(new):
            delta = float(new) - float(old)  # type: ignore[arg-type]
            row["delta"] = delta
            row["relative"] = delta / abs(float(old)) if old else None
        rows.append(row)
    return rows


def _number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _artifact_changes(left: dict[str, Any], right: dict[str, Any]) -> list[dict[str, Any]]:
    def by_path(side: dict[str, Any]) -> dict[str, tuple[str, dict[str, Any]]]:
        return {item["path"]: (kind, item) for kind in ("model", "data") for item in side[kind]}

    old, new = by_path(left), by_path(right)
    rows = []
    for path in sorted(set(old) | set(new)):
        kind = (old.get(path) or new[path])[0]
        a = old.get(path, ("", {}))[1]
        b = new.get(path, ("", {}))[1]
        rows.append(
            {
                "path": path,
                "kind": kind,
                "a_md5": a.get("md5"),
                "b_md5": b.get("md5"),
                "a_size": a.get("size"),
                "b_size": b.get("size"),
                "changed": a.get("md5") != b.get("md5"),
            }
        )
    return rows
