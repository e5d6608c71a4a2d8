"""Deployment targets: where an environment's release runs (one interface, base.Target; local
today: `bentoml serve`, or the release's image in podman, behind relman's proxy) and the logs
a running release writes.

Imports core.build (the Bento it serves), core.config, core.host.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from core.targets.base import Instance, SmokeResult, Target

if TYPE_CHECKING:  # the proxy process imports this package and needs no config (~30 ms)
    from core.config.model import Project


def target_for(project: Project, service: str, env: str) -> Target:
    """The target of ``env`` as relman.toml configures it (only ``local`` exists)."""
    from core.targets.local import LocalTarget

    return LocalTarget(project, service, env)


__all__ = ["Instance", "SmokeResult", "Target", "target_for"]
