"""A release's OCI image run by podman as a local instance (``[environments.ENV] runtime =
"image"``): docs/targets.md, Images.

The instance is the same as a Bento's (its folder, its side port, its ``serve.log``, its pid
file, behind the environment's proxy): only the process differs. Instead of `bentoml serve`,
the instance's process is ``podman run --rm`` in the foreground, so its pid, its output and
its exit are the container's, and every check of the local target works unchanged:

- the image ``localhost/relman/SERVICE:RELEASE`` (core/build/image.py) publishes its port
  3000 on the instance's side port of 127.0.0.1, with runc and lowered rlimits
  (core/host/containers.py);
- the container is named ``relman-PROJECT-SERVICE-ENV-RELEASE-PORT`` and labelled with the
  environment's and the instance's folders, so a crash leaves nothing relman cannot find:
  :func:`sweep_containers` removes every container of the environment an instance folder does
  not keep, whatever happened to the process that started it;
- the instance's ``monitoring`` folder is mounted into the container and BentoML's monitor
  pointed at it, so prediction logs land where the collector reads them.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import TYPE_CHECKING

from core.build.image import image_ref
from core.errors import InfraError
from core.host.containers import RUN_LIMITS, Engine, find_engine, require_engine

if TYPE_CHECKING:
    from core.config.model import Project

__all__ = [
    "CONTAINER_PORT",
    "ENV_LABEL",
    "INSTANCE_LABEL",
    "MARKER",
    "container_name",
    "image_launch",
    "run_arguments",
    "stop_container",
    "sweep_containers",
]

CONTAINER_PORT = 3000  # BentoML's images serve there
ENV_LABEL = "dev.relman.env-folder"
INSTANCE_LABEL = "dev.relman.instance"
# In the environment's folder, once it has run a container: sweeps then look for containers.
MARKER = "containers"
# Where the container's BentoML monitor writes (the instance's monitoring folder, mounted).
MONITORING = "/home/bentoml/monitoring"
_NAME_PART = re.compile(r"[^a-zA-Z0-9_.-]+")


def container_name(project: str, service: str, env: str, release: str, port: int) -> str:
    """``relman-PROJECT-SERVICE-ENV-RELEASE-PORT`` in the alphabet container names allow."""
    parts = [project, service, env, release, str(port)]
    return "relman-" + "-".join(_NAME_PART.sub("_", part).strip("_.-") or "x" for part in parts)


def run_arguments(
    *,
    image: str,
    name: str,
    host: str,
    port: int,
    env_folder: Path,
    instance_folder: Path,
    monitoring: Path,
    environ: dict[str, str],
) -> list[str]:
    """The arguments of ``podman run`` (after the engine and its runtime) for one instance."""
    variables = [arg for key, value in environ.items() for arg in ("--env", f"{key}={value}")]
    return [
        "run",
        "--rm",
        "--replace",  # a leftover of a crash under the same name (same port, same release)
        "--name",
        name,
        "--label",
        f"{ENV_LABEL}={env_folder}",
        "--label",
        f"{INSTANCE_LABEL}={instance_folder}",
        *RUN_LIMITS,
        "--publish",
        f"{host}:{port}:{CONTAINER_PORT}",
        "--volume",
        f"{monitoring}:{MONITORING}",
        *variables,
        image,
    ]


def image_launch(
    project: Project,
    service: str,
    env: str,
    release: str,
    env_folder: Path,
    instance_folder: Path,
    host: str,
    port: int,
) -> tuple[list[str], dict[str, str], dict[str, str]]:
    """The command that runs ``release``'s image as the instance in ``instance_folder``, what
    instance.json records about it (``image``, ``container``) and the environment to run it
    in. ProjectError without podman (exit 2); InfraError when the image is not in its
    storage."""
    from core.targets.monitor_log import monitor_environment

    engine = require_engine(f'[environments.{env}] runtime = "image"', "podman")
    image = image_ref(service, release)
    if engine.image(image) is None:
        raise InfraError(
            f"no image {image} in podman's storage; build it with `relman build --image "
            f"{service}` at the release's commit"
        )
    monitoring = instance_folder / "monitoring"
    monitoring.mkdir(parents=True, exist_ok=True)
    os.chmod(monitoring, 0o777)  # the image runs as user 1034, which writes its logs there
    (env_folder / MARKER).touch()
    name = container_name(project.config.project.name, service, env, release, port)
    command = engine.command(
        *run_arguments(
            image=image,
            name=name,
            host=host,
            port=port,
            env_folder=env_folder,
            instance_folder=instance_folder,
            monitoring=monitoring,
            environ=monitor_environment(Path(MONITORING), os.environ),
        )
    )
    return command, {"image": image, "container": name}, engine.environ()


def stop_container(name: str, grace: float) -> None:
    """Stop the container ``name`` (SIGTERM: BentoML drains; SIGKILL after ``grace``) and
    remove it; nothing when podman is gone."""
    engine = find_engine("podman")
    if engine is not None:
        engine.stop(name, grace)
        engine.remove(name)


def sweep_containers(env_folder: Path, kept: set[str]) -> list[str]:
    """Remove every container of the environment in ``env_folder`` whose instance folder is
    not in ``kept``: leftovers of a crash, of a stop that failed, of a folder deleted by
    hand. One line per container removed."""
    if not (env_folder / MARKER).exists():
        return []  # this environment never ran a container
    engine: Engine | None = find_engine("podman")
    if engine is None:
        return []
    removed = []
    for container in engine.containers(ENV_LABEL, str(env_folder)):
        if container.labels.get(INSTANCE_LABEL) in kept:
            continue
        if engine.remove(container.name or container.id):
            removed.append(f"removed container {container.name or container.id}")
    return removed
