"""Deployment targets: where an environment's release runs (one interface, base.Target;
local: `bentoml serve`, or the release's image in podman, behind relman's proxy; kubernetes:
the release's image as a Deployment behind a Service) and the logs a running release writes.

Imports core.build (the Bento it serves), core.config, core.host.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from core.targets.base import Instance, Provenance, SmokeResult, Target

if TYPE_CHECKING:  # the proxy process imports this package and needs no config (~30 ms)
    from core.config.model import Project


def target_for(project: Project, service: str, env: str) -> Target:
    """The target of ``env`` as relman.toml configures it."""
    if project.config.environments[env].target == "kubernetes":
        from core.targets.kubernetes import KubernetesTarget

        return KubernetesTarget(project, service, env)
    from core.targets.local import LocalTarget

    return LocalTarget(project, service, env)


__all__ = ["Instance", "Provenance", "SmokeResult", "Target", "target_for"]
