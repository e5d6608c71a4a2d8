"""relman's public entry points. Front ends (the CLI, the batch renderer, every screen) call
these functions and nothing deeper; each returns plain data or raises a ReleaseError."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from core.config import Project, load_project

__all__ = [
    "EnvironmentView",
    "Project",
    "ServiceView",
    "create_demo",
    "init_project",
    "load_project",
    "overview",
]


@dataclass(frozen=True)
class EnvironmentView:
    """What is known of one service in one environment."""

    name: str
    url: str
    # None while nothing has been deployed there.
    release: str | None = None
    version: str | None = None
    # "not deployed", or the state the ledger records ("live", "down", ...).
    state: str = "not deployed"
    since: str | None = None


@dataclass(frozen=True)
class ServiceView:
    name: str
    bento: str
    environments: list[EnvironmentView]


def overview(project: Project) -> list[ServiceView]:
    """Services x environments, in promotion order, with what is known of each."""
    config = project.config
    services = []
    for name, service in config.services.items():
        envs = [
            EnvironmentView(name=env_name, url=f"http://{env.host}:{env.port}")
            for env_name, env in config.environments.items()
        ]
        services.append(ServiceView(name=name, bento=service.bento, environments=envs))
    return services


def create_demo(
    target: Path, *, force: bool = False, log: Callable[[str], None] | None = None
) -> Path:
    """Create the self-contained demo project in ``target``; return its root."""
    from core.demo import create_demo as _create

    return _create(target, force=force, log=log)


def init_project(root: Path, *, force: bool = False) -> Path:
    """Write relman.toml for an existing DVC + BentoML repository; return its path."""
    from core.init import init_project as _init

    return _init(root, force=force)
