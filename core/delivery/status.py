"""`relman status`: the candidate of each service and what is live in each environment."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from core.config.model import Project
from core.lineage.gitinfo import tags
from core.lineage.gto import current_stages, gto_events

if TYPE_CHECKING:
    from core.documents import (
        EnvironmentDocument,
        EnvironmentRollout,
        ServiceStatus,
        StatusDocument,
    )


def environments(
    project: Project, warnings: list[str] | None = None, *, alerts: bool = True
) -> dict[str, dict[str, EnvironmentDocument]]:
    """{service: {env: {"release", "version", "state", "url", "since"}}} from the ledger, with
    the alerts firing there from the metric store (a store that cannot be read: a line in
    ``warnings``). ``alerts=False`` spares that read, for a caller that reads the alerts
    itself (the TUI's overview polls them at their own pace)."""
    from core.delivery.firing import firing_alerts

    config = project.config
    firing: dict[tuple[str, str], Any] = {}
    if alerts:
        firing, unread = firing_alerts(project)
        if unread is not None and warnings is not None:
            warnings.append(unread)
    found: dict[str, dict[str, EnvironmentDocument]] = {}
    states: dict[tuple[str, str], Any] = {}
    pending: dict[tuple[str, str], Any] = {}
    rollouts: dict[tuple[str, str], Any] = {}
    versions: dict[str, str | None] = {}
    if project.ledger_path.exists():  # nothing recorded yet: spare loading the store at all
        from core.ledger.upgrade import upgrade_ledger
        from store.ledger.snapshot import environment_states, open_promotions

        upgrade_ledger(project)

        for recorded in environment_states(project.ledger_path):
            states[(recorded.service, recorded.env)] = recorded
        for promotion in open_promotions(project.ledger_path):
            pending[(promotion.service, promotion.env)] = promotion
        from store.ledger.snapshot import open_rollouts

        for rollout in open_rollouts(project.ledger_path):
            rollouts[(rollout.service, rollout.env)] = rollout
        if rollouts:
            from store.ledger.snapshot import release_versions

            versions = release_versions(
                project.ledger_path, sorted({r.canary for r in rollouts.values()})
            )
    for service in config.services:
        per_env: dict[str, EnvironmentDocument] = {}
        for name, env in config.environments.items():
            state = states.get((service, name))
            url = env.url
            if state is None or state.release_id is None:
                per_env[name] = {
                    "release": None,
                    "version": None,
                    "state": "not deployed",
                    "url": url,
                    "since": None,
                }
            else:
                per_env[name] = {
                    "release": state.release_id,
                    "version": state.version,
                    "state": state.state,
                    "url": state.url or url,
                    "since": state.since,
                }
            if not env.served:  # a stage relman reads: what the registry's tags say
                per_env[name]["state"] = "not served"
            else:
                _observe(project, service, name, per_env[name], pending.get((service, name)))
            running = rollouts.get((service, name))
            if running is not None:
                per_env[name]["rollout"] = _rollout_entry(running, versions.get(running.canary))
            if firing.get((service, name)):
                per_env[name]["alerts"] = firing[(service, name)]
        found[service] = per_env
    if any(not env.served for env in config.environments.values()):
        _stage_versions(project, found)
    return found


def _rollout_entry(rollout: Any, canary_version: str | None) -> EnvironmentRollout:
    """An open rollout as the status document and the overview show it."""
    from core.delivery.recovery import holder_alive

    alive = holder_alive(rollout)  # the rollout's driver: same pid and host rule
    return {
        "id": rollout.id,
        "phase": rollout.phase,
        "strategy": rollout.strategy,
        "weight": rollout.weight,
        "stable": rollout.stable,
        "canary": rollout.canary,
        "canary_version": canary_version,
        "interrupted": not alive,
        "command": f"relman rollout status {rollout.service} --env {rollout.env}",
    }


def next_step(service: str, env: str, kind: str, release: str) -> str:
    """The command that takes over an interrupted promotion or rollback: it first finishes or
    undoes what the killed relman left (core.delivery.recovery), then does it again."""
    if kind == "rollback":
        return f"relman rollback {service} --env {env} --to {release}"
    return f"relman promote {service} --to {env} --release {release}"


def _observe(
    project: Project, service: str, env: str, entry: EnvironmentDocument, promotion: Any
) -> None:
    """Correct the ledger's word with what really runs: a crash may have left it behind."""
    from core.delivery.recovery import holder_alive, observe

    if promotion is not None:
        holder = f"{promotion.actor} (pid {promotion.pid})"
        if holder_alive(promotion):
            entry["state"] = f"{promotion.kind} in progress"
            entry["note"] = f"{promotion.kind} of {promotion.release_id} by {holder}"
        else:
            entry["state"] = "interrupted"
            entry["note"] = (
                f"{promotion.kind} of {promotion.release_id} by {holder} was interrupted; "
                "the next promote, rollback or down finishes or undoes it"
            )
            entry["next"] = next_step(service, env, promotion.kind, promotion.release_id)
    if project.config.environments[env].kubernetes is not None:
        _observe_cluster(project, service, env, entry)
        return
    seen = observe(project, service, env)
    if seen is None or not seen.running:
        _note_port_taken(project, service, env, entry)
    if seen is None:
        return
    # What answers at the environment's address now, whatever the ledger recorded.
    entry["serving"] = seen.release
    if not seen.running and entry["state"] == "live":
        entry["state"] = "down"
        entry["note"] = "recorded live, but nothing serves it (stopped outside relman?)"
    elif seen.running and seen.release != entry["release"]:
        said = entry.get("note")
        entry["note"] = f"{seen.release} serves it" + (f"; {said}" if said else "")


def _observe_cluster(project: Project, service: str, env: str, entry: EnvironmentDocument) -> None:
    """What the cluster runs in a kubernetes environment (the live slot's release, image and
    ready replicas), next to the ledger's word, and a note where they differ."""
    from core.targets.k8s_image import image_name
    from core.targets.kubernetes import STATUS_TIMEOUT, KubernetesTarget

    config = project.config.environments[env].kubernetes
    assert config is not None
    seen = KubernetesTarget(project, service, env, timeout=STATUS_TIMEOUT).observe()
    entry["cluster"] = seen.to_dict()
    notes: list[str] = []
    if seen.problem:
        notes.append(f"the cluster could not be read: {seen.problem}")
    else:
        entry["serving"] = seen.release if seen.replicas else None
        recorded = entry["release"]
        if not seen.replicas and entry["state"] == "live":
            entry["state"] = "down"
            notes.append(
                "recorded live, but the cluster runs nothing for it (scaled down or deleted "
                "outside relman?)"
            )
        elif seen.replicas:
            if recorded and seen.release != recorded:
                notes.append(f"the cluster serves {seen.release or 'an unknown release'}")
            elif recorded and seen.image != image_name(service, recorded, config):
                notes.append(
                    f"the cluster runs {seen.image}, not {image_name(service, recorded, config)} "
                    "as relman deployed it (changed outside relman?)"
                )
            if seen.ready < seen.replicas:
                notes.append(f"{seen.ready}/{seen.replicas} replicas ready")
    if notes:
        said = entry.get("note")
        entry["note"] = "; ".join(notes) + (f"; {said}" if said else "")


def _note_port_taken(project: Project, service: str, env: str, entry: EnvironmentDocument) -> None:
    """Where relman serves nothing, say so now when another program holds the environment's
    port: the gate blocks on it, and a person should learn it before asking for approvals."""
    from core.delivery.port_gate import port_result

    port = port_result(project, service, env)
    if port.status == "failed":
        said = entry.get("note")
        entry["note"] = port.detail + (f"; {said}" if said else "")


def build_status(project: Project) -> StatusDocument:
    """The `status` document (docs/json.md); ``ok`` is false while any candidate has problems."""
    # Here, not at the top: the TUI's first paint reads only environments() (no DVC, no
    # build context), and the candidate's modules cost it ~40 ms of imports.
    from core.lineage.candidate import project_candidates

    config = project.config
    lineage = project_candidates(project)
    unread: list[str] = []
    live = environments(project, unread)
    from core.ledger.runs import open_runs_by_service

    # Runs not finished; those a killed relman left are closed here (but read-only).
    runs = open_runs_by_service(project)
    events, warnings = gto_events(tags(project.root))
    stages = current_stages(events)
    services: list[ServiceStatus] = []
    for name in config.services:
        cand = lineage[name]
        model_names = [info.name for info in cand.model if info.name]
        registry = {artifact: stages[artifact] for artifact in model_names if artifact in stages}
        services.append(
            {
                "name": name,
                "candidate": cand.to_dict(),
                "environments": live[name],
                "registry": registry,
            }
        )
        if runs.get(name):
            services[-1]["runs"] = runs[name]
    document: StatusDocument = {
        "ok": all(lineage[name].ok for name in config.services),
        "project": config.project.name,
        "root": str(project.root),
        "services": services,
        "warnings": [*warnings, *unread],
        "inferred": project.inferred,
    }
    if project.inferred:
        document["reading"] = reading_line(project)
    return document


def _stage_versions(project: Project, found: dict[str, dict[str, EnvironmentDocument]]) -> None:
    """An environment relman does not serve shows the version its GTO stage holds."""
    from core.lineage.stages_held import held_stages

    for (service, env), (version, stage) in held_stages(project).items():
        found[service][env]["version"] = version
        found[service][env]["state"] = f"stage {stage} (git tags)"


def reading_line(project: Project) -> str:
    """What a screen says while it reads a repository without relman.toml."""
    services = ", ".join(project.config.services)
    return (
        f"reading without a relman.toml: {len(project.config.services)} service(s) from dvc.yaml "
        f"({services}); 'relman init' writes one"
    )
