"""The container engine of this machine (podman, else docker): found, asked about images and
containers, told to remove them. docs/targets.md (Images) says what relman builds and runs.

podman is preferred: it needs no daemon, and it is what the local target runs release images
with. Where runc is installed, podman is told to use it (``--runtime``): crun, podman's
default where both exist, fails on kernels whose cgroups are in hybrid mode, and runc works
there and everywhere else. docker counts only when its daemon answers (a ``docker`` client
without a daemon builds nothing). Everything runs the engine's command line, like git: the
user's own configuration and storage, exactly as their own ``podman`` sees them.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

from core.errors import InfraError, ProjectError

__all__ = [
    "RUN_LIMITS",
    "ContainerInfo",
    "Engine",
    "ImageInfo",
    "find_engine",
    "require_engine",
]

EngineKind = Literal["podman", "docker"]
# Where Debian and others put runc and podman; PATH may lack the sbin folders (a non-root
# shell, or relman's tests, which keep PATH short).
_SEARCH = ("/usr/local/sbin", "/usr/local/bin", "/usr/sbin", "/usr/bin", "/sbin", "/bin")
# Rlimits a container gets: podman copies the host's otherwise, which a kernel may refuse to
# set in the container ("error setting rlimit type 6"); both or neither (docs/targets.md).
RUN_LIMITS = ("--ulimit", "nofile=1024:1024", "--ulimit", "nproc=1024:1024")
# How long a question to the engine (an inspect, a listing) may take.
QUERY_TIMEOUT = 60.0
# How long `docker version` may take to say whether a daemon answers.
_PROBE_TIMEOUT = 10.0


@dataclass(frozen=True)
class ImageInfo:
    """An image in the engine's storage."""

    ref: str
    id: str
    size: int  # bytes
    labels: dict[str, str]
    created: str


@dataclass(frozen=True)
class ContainerInfo:
    """A container (running or not), as a listing by label shows it."""

    id: str
    name: str
    state: str
    labels: dict[str, str]


@dataclass(frozen=True)
class Engine:
    """A container engine's command line."""

    kind: EngineKind
    path: str
    runtime: str | None = None  # podman's --runtime (runc), when found

    def command(self, *args: str) -> list[str]:
        """The engine's command line for ``args`` (with its runtime for podman)."""
        prefix = [self.path]
        if self.runtime:
            prefix += ["--runtime", self.runtime]
        return [*prefix, *args]

    def environ(self, base: Mapping[str, str] | None = None) -> dict[str, str]:
        """The environment to run the engine in: ``base`` (default: relman's own) with the
        sbin folders on PATH, where podman's network helpers look for iptables and the like
        (a PATH without them fails a container's start: ``netavark: No such file``)."""
        environ = dict(os.environ if base is None else base)
        have = environ.get("PATH", "").split(os.pathsep)
        environ["PATH"] = os.pathsep.join(
            [p for p in have if p] + [p for p in _SEARCH if p not in have]
        )
        return environ

    def run(
        self, *args: str, timeout: float = QUERY_TIMEOUT, check: bool = True
    ) -> subprocess.CompletedProcess[str]:
        """Run ``args`` to the end; InfraError (its first error line) when it fails and
        ``check``."""
        try:
            done = subprocess.run(
                self.command(*args),
                stdin=subprocess.DEVNULL,
                capture_output=True,
                text=True,
                timeout=timeout,
                env=self.environ(),
            )
        except subprocess.TimeoutExpired as exc:
            raise InfraError(
                f"`{self.kind} {' '.join(args[:2])}` did not answer within {timeout:g} s; "
                f"check `{self.kind} info`"
            ) from exc
        except OSError as exc:
            raise InfraError(f"cannot run {self.path}: {exc.strerror}") from exc
        if check and done.returncode != 0:
            raise InfraError(
                f"`{self.kind} {' '.join(args[:2])}` failed: {first_error(done.stderr)}"
            )
        return done

    # ------------------------------------------------------------------------ images

    def image(self, ref: str) -> ImageInfo | None:
        """The image ``ref`` names, or None when the storage holds none."""
        done = self.run("image", "inspect", ref, check=False)
        if done.returncode != 0:
            return None
        try:
            found = json.loads(done.stdout)
        except ValueError:
            return None
        if not isinstance(found, list) or not found or not isinstance(found[0], dict):
            return None
        return _image_info(ref, found[0])

    def remove_image(self, ref: str) -> bool:
        """Remove the image tag ``ref`` (its layers when nothing else uses them); True when
        there was one."""
        return self.run("rmi", ref, check=False).returncode == 0

    # -------------------------------------------------------------------- containers

    def containers(self, label: str, value: str) -> list[ContainerInfo]:
        """Every container (running or not) labelled ``label=value``."""
        filter_ = f"label={label}={value}"
        if self.kind == "podman":
            done = self.run("ps", "--all", "--filter", filter_, "--format", "json")
            try:
                rows = json.loads(done.stdout or "[]")
            except ValueError:
                rows = []
            return [_podman_container(row) for row in rows if isinstance(row, dict)]
        done = self.run("ps", "--all", "--no-trunc", "--filter", filter_, "--format", "{{json .}}")
        found = []
        for line in done.stdout.splitlines():
            try:
                row = json.loads(line)
            except ValueError:
                continue
            if isinstance(row, dict):
                found.append(_docker_container(row))
        return found

    def stop(self, name: str, grace: float) -> None:
        """Stop container ``name``: SIGTERM (the server drains), SIGKILL after ``grace``."""
        self.run("stop", "--time", str(max(1, round(grace))), name, timeout=grace + 30, check=False)

    def remove(self, name: str) -> bool:
        """Remove container ``name``, running or not; True when there was one."""
        return self.run("rm", "--force", name, timeout=60, check=False).returncode == 0


def first_error(stderr: str) -> str:
    """The line of an engine's error output a person needs (its last ``Error:`` line, else
    its last line)."""
    lines = [line.strip() for line in stderr.splitlines() if line.strip()]
    errors = [line for line in lines if line.lower().startswith("error")]
    return (errors or lines or ["no error output"])[-1]


def _image_info(ref: str, raw: dict[str, Any]) -> ImageInfo:
    config = raw.get("Config") if isinstance(raw.get("Config"), dict) else {}
    labels = raw.get("Labels") or (config or {}).get("Labels") or {}
    return ImageInfo(
        ref=ref,
        id=str(raw.get("Id", "")),
        size=int(raw.get("Size") or 0),
        labels={str(k): str(v) for k, v in labels.items()} if isinstance(labels, dict) else {},
        created=str(raw.get("Created", "")),
    )


def _podman_container(row: dict[str, Any]) -> ContainerInfo:
    names = row.get("Names") or []
    labels = row.get("Labels") or {}
    return ContainerInfo(
        id=str(row.get("Id", "")),
        name=str(names[0] if isinstance(names, list) and names else names),
        state=str(row.get("State", "")),
        labels={str(k): str(v) for k, v in labels.items()} if isinstance(labels, dict) else {},
    )


def _docker_container(row: dict[str, Any]) -> ContainerInfo:
    labels: dict[str, str] = {}
    for pair in str(row.get("Labels", "")).split(","):
        key, sep, value = pair.partition("=")
        if sep:
            labels[key] = value
    return ContainerInfo(
        id=str(row.get("ID", "")),
        name=str(row.get("Names", "")),
        state=str(row.get("State", "")),
        labels=labels,
    )


# ---------------------------------------------------------------------------- finding one


def _which(name: str) -> str | None:
    path = os.pathsep.join([os.environ.get("PATH", ""), *_SEARCH])
    return shutil.which(name, path=path)


def find_engine(kind: EngineKind | None = None) -> Engine | None:
    """podman (with runc when installed), else docker whose daemon answers; None when
    neither. ``kind`` asks for that one only."""
    if kind in (None, "podman"):
        podman = _which("podman")
        if podman:
            return Engine("podman", podman, _which("runc"))
    if kind in (None, "docker"):
        docker = _which("docker")
        if docker and _daemon_answers(docker):
            return Engine("docker", docker)
    return None


def _daemon_answers(docker: str) -> bool:
    try:
        done = subprocess.run(
            [docker, "version", "--format", "{{.Server.Version}}"],
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=_PROBE_TIMEOUT,
        )
    except (OSError, subprocess.TimeoutExpired):
        return False
    return done.returncode == 0 and bool(done.stdout.strip())


def require_engine(what: str, kind: EngineKind | None = None) -> Engine:
    """The engine ``what`` needs; ProjectError (exit 2) saying what to install when none."""
    found = find_engine(kind)
    if found is not None:
        return found
    if kind == "podman":
        raise ProjectError(
            f"{what}: podman is not installed; install it (Debian: apt-get install podman runc)"
        )
    raise ProjectError(
        f"{what}: neither podman nor a running docker is available; install podman "
        "(Debian: apt-get install podman runc) or start docker"
    )
