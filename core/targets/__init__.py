"""Deployment targets: where an environment's release runs (one interface, base.Target; local
today: `bentoml serve` behind relman's proxy) and the logs a running release writes.

Imports core.build (the Bento it serves), core.config, core.host.
"""

from __future__ import annotations

from core.config.model import Project
from core.targets.base import Instance, SmokeResult, Target


def target_for(project: Project, service: str, env: str) -> Target:
    """The target of ``env`` as relman.toml configures it (only ``local`` exists)."""
    from core.targets.local import LocalTarget

    return LocalTarget(project, service, env)


__all__ = ["Instance", "SmokeResult", "Target", "target_for"]
