"""The versions GTO's tags put in the stages relman reads and does not serve.

An environment without a port is a stage of the registry (docs/adopting.md): its row shows
the version its GTO stage holds, from the tags alone (one `git for-each-ref`), for the first
paint as for `status`.
"""

from __future__ import annotations

from core.config.model import Project

__all__ = ["held_stages"]


def held_stages(project: Project) -> dict[tuple[str, str], tuple[str, str]]:
    """``{(service, env): (version, stage)}`` for each environment relman does not serve
    whose GTO stage holds a version of one of the service's models (the first that has one
    there); empty, and no git run, when every environment is served."""
    config = project.config
    unserved = [name for name, env in config.environments.items() if not env.served]
    if not unserved:
        return {}
    # Here, not at the top: a project whose environments are all served spares the first
    # paint git's and GTO's modules.
    from core.lineage.gitinfo import tags
    from core.lineage.gto import current_stages, gto_events

    events, _warnings = gto_events(tags(project.root))
    stages = current_stages(events)
    found: dict[tuple[str, str], tuple[str, str]] = {}
    for service, declared in config.services.items():
        held_by = [stages[model] for model in declared.model if model in stages]
        for env in unserved:
            stage = config.stage_of(env)
            held = [versions[stage] for versions in held_by if stage in versions]
            if held:
                found[(service, env)] = (held[0], stage)
    return found
