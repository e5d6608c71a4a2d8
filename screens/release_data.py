"""What the release screen shows, read from core.api in one worker call.

A release is either the candidate (the working tree: full lineage from ``api.status``) or a
recorded release live somewhere (``api.live_at`` for its lineage; author and cache state are
then known only where its artifacts are the candidate's). Metric deltas come from
``api.diff`` against what each environment runs; tests and gates from ``api.gate`` (the
candidate only: the engine evaluates gates of recorded releases only as they are promoted)
and from the test runs of its history.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from core import api
from screens.actions import Facts, PlanError, Subject, gather
from screens.common import flatten

# History entries read to find this release's (newest first).
HISTORY_LIMIT = 200


@dataclass
class ReleaseDetail:
    subject: Subject
    facts: Facts
    git: dict[str, Any]
    artifacts: list[dict[str, Any]]  # kind, path, md5, size, cache
    params: dict[str, Any]
    metrics: dict[str, Any]
    # env -> {metric: this minus what the env runs}; None: the env runs this very release.
    deltas: dict[str, dict[str, float | None] | None]
    suites: list[dict[str, Any]]  # name, status, detail
    gate: dict[str, Any] | None  # api.gate for the next environment
    gate_note: str
    history: list[dict[str, Any]]
    problems: list[str] = field(default_factory=list)

    @property
    def title(self) -> str:
        facts = self.facts
        parts = [f"{facts.service} {facts.name}"]
        if facts.is_candidate:
            parts.append("the candidate")
        parts.append(f"live in {', '.join(facts.live_in)}" if facts.live_in else "not live yet")
        return " · ".join(parts)


def load_release(project: api.Project, subject: Subject) -> ReleaseDetail:
    facts = gather(project, subject)
    cand = facts.candidate
    cand_artifacts = {a["path"]: a for a in [*cand.get("model", []), *cand.get("data", [])]}
    if facts.is_candidate:
        git = dict(cand["git"])
        artifacts = [_artifact(a, "model", a.get("cache")) for a in cand.get("model", [])]
        artifacts += [_artifact(a, "data", a.get("cache")) for a in cand.get("data", [])]
        params, metrics = flatten(cand.get("params") or {}), flatten(cand.get("metrics") or {})
        problems = list(cand.get("problems") or [])
    else:
        if not facts.live_in:
            raise PlanError(f"release {facts.release} is not live anywhere")
        moment = datetime.now(UTC).isoformat()
        live = api.live_at(project, moment, service=facts.service, env=facts.live_in[0])
        side = live["live"][0]
        same_commit = side.get("commit") == cand["git"].get("commit")
        git = {
            "commit": side.get("commit"),
            "short": str(side.get("commit") or "")[:7],
            "message": side.get("message"),
            "author": cand["git"].get("author") if same_commit else None,
        }
        artifacts = []
        for kind, key in (("model", "model"), ("data", "data")):
            for item in side.get(key, []):
                known = cand_artifacts.get(item["path"])
                cache = known.get("cache") if known and known.get("md5") == item["md5"] else None
                artifacts.append(_artifact(item, kind, cache))
        params, metrics = dict(side.get("params") or {}), dict(side.get("metrics") or {})
        problems = []
    deltas = _deltas(project, facts)
    suites, gate, gate_note = _tests_and_gates(project, facts)
    history = _history(project, facts)
    if not facts.is_candidate:
        suites = [
            {
                "name": f"run {entry['at'][:16]}",
                "status": entry["status"],
                "detail": entry["summary"],
            }
            for entry in history
            if entry["kind"] == "run" and entry["summary"].startswith("test run")
        ]
    return ReleaseDetail(
        subject,
        facts,
        git,
        artifacts,
        params,
        metrics,
        deltas,
        suites,
        gate,
        gate_note,
        history,
        problems,
    )


def _artifact(item: dict[str, Any], kind: str, cache: str | None) -> dict[str, Any]:
    return {
        "kind": kind,
        "path": item.get("path"),
        "md5": item.get("md5"),
        "size": item.get("size"),
        "cache": cache,
    }


def _deltas(project: api.Project, facts: Facts) -> dict[str, dict[str, float | None] | None]:
    """For each environment that runs something: this release's metrics minus its."""
    deltas: dict[str, dict[str, float | None] | None] = {}
    ref = "candidate" if facts.is_candidate else facts.release
    for env, state in facts.environments.items():
        running = state.get("release")
        if not running:
            continue
        if running == facts.release:
            deltas[env] = None
            continue
        document = api.diff(project, running, ref)
        deltas[env] = {row["key"]: row.get("delta") for row in document["metrics"]}
    return deltas


def _tests_and_gates(
    project: api.Project, facts: Facts
) -> tuple[list[dict[str, Any]], dict[str, Any] | None, str]:
    """Each suite's verdict for this release and the gates of the next environment."""
    if not facts.is_candidate:
        return (
            [],
            None,
            (
                "the engine checks the gates of a recorded release as it promotes it "
                "(relman gate evaluates the candidate)"
            ),
        )
    note = "live in every environment: no gate left" if facts.next_env is None else ""
    reports: dict[str, dict[str, Any]] = {}
    if facts.next_env is not None:
        reports[facts.next_env] = api.gate(project, facts.service, facts.next_env)
    covered: set[str] = set()
    for report in reports.values():
        covered |= {s["name"] for s in report["steps"] if s.get("kind") == "suites"}
    # Every suite some environment requires, each read once (from the last env that needs it).
    for env in reversed(list(facts.environments)):
        wanted = {f"suite {name}" for name in project.config.environments[env].suites}
        if wanted - covered:
            reports[env] = reports.get(env) or api.gate(project, facts.service, env)
            covered |= {s["name"] for s in reports[env]["steps"] if s.get("kind") == "suites"}
    suites: dict[str, dict[str, Any]] = {}
    for report in reports.values():
        for step in report["steps"]:
            if step.get("kind") == "suites":
                name = step["name"].removeprefix("suite ")
                suites[name] = {"name": name, "status": step["status"], "detail": step["detail"]}
    ordered = [suites[name] for name in project.config.suites if name in suites]
    return ordered, reports.get(facts.next_env or ""), note


def _history(project: api.Project, facts: Facts) -> list[dict[str, Any]]:
    """This release's entries of the service's history, newest first."""
    page = api.history(project, service=facts.service, limit=HISTORY_LIMIT)
    return [entry for entry in page["entries"] if entry.get("release") == facts.release]
