"""The port check of a gate: the environment's address is free, or already held by relman's
own proxy for that environment. For a kubernetes environment, the cluster check instead: its
kubeconfig context, its namespace and the RBAC a promotion needs there.

``relman gate`` shows it, and a promotion meets it with its other checks, before its lock
step: a port taken by another program blocks with what holds it, which port, and what to do,
instead of failing after approvals, at the lock. It reads only (a bind that is released at
once); the lock step checks again, since the port can be taken in between.
"""

from __future__ import annotations

from core.config.model import Project
from core.delivery.gates import GateResult
from core.errors import InfraError, ReleaseError
from core.targets import target_for

__all__ = ["port_result"]


def port_result(project: Project, service: str, env: str) -> GateResult:
    """``port``: passed when ``env`` can listen on its host and port, failed (blocking) with
    the target's own line when another program holds them."""
    config = project.config.environments[env]
    if config.kubernetes is not None:
        return cluster_result(project, service, env)
    if config.port is None:
        return GateResult("port", "port", "failed", f"{env} has no port: it is not served")
    address = f"{config.host}:{config.port}"
    try:
        target_for(project, service, env).prepare()
    except InfraError as exc:
        return GateResult("port", "port", "failed", str(exc))
    return GateResult(
        "port", "port", "passed", f"{address} is free, or served by relman's proxy of {env}"
    )


def cluster_result(project: Project, service: str, env: str) -> GateResult:
    """``cluster``: passed when the kubeconfig's context reaches the cluster, the namespace
    exists and RBAC allows what a promotion does there; failed with the line saying what to
    fix (nothing is changed in the cluster)."""
    try:
        target_for(project, service, env).prepare()
    except ReleaseError as exc:
        return GateResult("cluster", "cluster", "failed", str(exc), error=exc)
    config = project.config.environments[env].kubernetes
    assert config is not None
    return GateResult(
        "cluster",
        "cluster",
        "passed",
        f"namespace {config.namespace} reachable; RBAC allows what a promotion does there",
    )
