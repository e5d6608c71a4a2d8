"""Approvals and stopping environments: `relman approve` and `relman down`."""

from __future__ import annotations

from typing import Any

from core.config.model import Project
from core.errors import ReadOnlyError
from core.host.processes import (
    TAG_VARIABLE,
    carries_tag_prefix,
    end_processes,
    processes_mentioning,
)
from core.ledger.releases import find_release, open_ledger
from core.ledger.steps import Log
from core.ledger.steps import quiet as _quiet
from core.targets import target_for


def approve(
    project: Project, release: str, env: str, *, comment: str = "", read_only: bool = False
) -> dict[str, Any]:
    """Record the current user's approval of ``release`` for ``env``."""
    project.config.check_names(env=env)
    if read_only:
        raise ReadOnlyError(f"read-only mode: approval of {release} for {env} refused")
    with open_ledger(project, read_only=False) as ledger:
        record = find_release(ledger, list(project.config.services), release)
        approval = ledger.approve(record.id, env, comment=comment)
        needed = project.config.environments[env].approvals
    return {
        "ok": True,
        "release": record.id,
        "version": record.version,
        "service": record.service,
        "env": env,
        "approver": approval.actor,
        "at": approval.at,
        "required": needed,
        # Four-eyes: it will not count for a promotion the approver runs.
        "note": f"counts for a promotion to {env} run by anyone but {approval.actor}",
    }


def down(
    project: Project,
    env: str | None = None,
    *,
    read_only: bool = False,
    log: Log = _quiet,
) -> dict[str, Any]:
    """Stop the locally served environments (all, or ``env``) of every service; a
    kubernetes environment only when named (its Deployments and Services deleted)."""
    project.config.check_names(env=env)
    if read_only:
        raise ReadOnlyError("read-only mode: down refused")
    from core.delivery.recovery import recover

    if env is not None:
        envs = [env] if project.config.environments[env].served else []
    else:  # a cluster's environments are left alone unless named: they serve others too
        envs = [n for n in project.config.environment_order if project.config.environments[n].port]
    stopped: list[dict[str, Any]] = []
    with open_ledger(project, read_only=False) as ledger:
        for service in project.config.services:
            for name in envs:
                recover(project, ledger, service, name, log)
                ran = target_for(project, service, name).down()
                state = ledger.environment_state(service, name)
                if state is not None and state.state != "down":
                    ledger.set_environment_state(service, name, "down")
                if ran:
                    log(f"stopped {service} in {name}")
                stopped.append({"service": service, "env": name, "stopped": ran})
    if env is None:
        from core.monitoring.collector_process import stop_collector

        loads = [
            pid
            for pid, _ in processes_mentioning(project.state_dir / "traffic")
            if carries_tag_prefix(pid, f"{TAG_VARIABLE}={project.state_dir / 'traffic'}")
        ]
        if loads:
            end_processes(loads, 5.0)  # SIGTERM: each removes its fault file on the way out
            log("stopped the background traffic")
            stopped.append({"service": None, "env": None, "stopped": True, "traffic": True})
        if stop_collector(project):
            log("stopped the collector")
            stopped.append({"service": None, "env": None, "stopped": True, "collector": True})
        # Whatever else relman served from this project: environments or services since
        # removed from relman.toml, folders deleted by hand. Their processes still name them:
        # Bento servers in their RELMAN_INSTANCE tag, proxies on their command line.
        envs_dir = project.state_dir / "envs"
        tag = f"{TAG_VARIABLE}={envs_dir}"
        left = [
            pid
            for pid, command in processes_mentioning(envs_dir)
            if "core.targets.proxy" in command or carries_tag_prefix(pid, tag)
        ]
        if left:
            end_processes(left)
            log(f"stopped {len(left)} more process(es) relman had started for this project")
            stopped.append({"service": None, "env": None, "stopped": True, "pids": left})
    return {"ok": True, "environments": stopped}
