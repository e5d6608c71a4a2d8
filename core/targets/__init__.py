"""Deployment targets: where an environment's release runs. One interface (base.Target),
one implementation now (local); docs/targets.md says how cluster targets would fit."""

from __future__ import annotations

from core.config import Project
from core.targets.base import Instance, SmokeResult, Target


def target_for(project: Project, service: str, env: str) -> Target:
    """The target of ``env`` as relman.toml configures it (only ``local`` exists)."""
    from core.targets.local import LocalTarget

    return LocalTarget(project, service, env)


__all__ = ["Instance", "SmokeResult", "Target", "target_for"]
