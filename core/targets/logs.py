"""What an environment's processes write, for a front end to show and follow: the output of
the ``bentoml serve`` instance that serves it (``serve.log`` in its instance folder) and the
proxy's access log (``access.log``, one JSON line per request), both under
``.relman/envs/SERVICE/ENV/`` (see core/targets/local.py).

A reader asks for the last lines, then, at each poll, for what was appended after the
position the previous answer ended at. Only whole lines are returned (a line being written
comes at the next read). When the file is another one by then (a promotion started a new
instance, the access log rotated, a file was truncated), the answer starts over from that
file's last lines and says so (``reset``).
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

from core.config.model import Project
from core.targets.local import LocalTarget

# At most this much of a file is read at once: its last lines, or what was appended since.
MAX_READ = 256 * 1024


@dataclass(frozen=True)
class LogPosition:
    """Where a read ended: the file (its path and inode) and the offset after its last line."""

    path: str
    inode: int
    offset: int


@dataclass(frozen=True)
class LogTail:
    """Lines of one log: the last ones, or those appended since the position asked after."""

    # What the log is, in a few words (``iris v1.2.0 on 127.0.0.1:41234, serving``), or why
    # there is none.
    title: str
    # The file read; None while there is none.
    path: str | None
    lines: list[str]
    # Where the next read starts (pass it as ``after``); None while there is no file.
    position: LogPosition | None
    # The lines replace what was shown before (another file, or the same one rotated or
    # truncated) rather than follow it.
    reset: bool


def serve_log_of(project: Project, service: str, env: str) -> tuple[Path | None, str]:
    """The ``serve.log`` of the instance serving ``env``; when none serves, the newest
    instance's (a crashed start leaves its log); and what it is."""
    project.config.check_names(service=service, env=env)
    cluster = _on_a_cluster(project, service, env)
    if cluster:
        return None, cluster
    target = LocalTarget(project, service, env)
    instance = target.serving()
    if instance is not None and instance.log:
        return Path(instance.log), f"{service} {instance.release[:12]} on {instance.address}"
    logs = sorted(
        (target.folder / "instances").glob("*/serve.log"),
        key=lambda path: path.stat().st_mtime if path.exists() else 0.0,
    )
    if not logs:
        return None, f"nothing has been served in {env} yet: no serve.log"
    newest = logs[-1]
    release = _release_of(newest.parent) or newest.parent.name
    return newest, f"{service} {release[:12]}, not serving now (its last instance)"


def access_log_of(project: Project, service: str, env: str) -> tuple[Path | None, str]:
    """The proxy's access log of ``env``, and what it is."""
    project.config.check_names(service=service, env=env)
    cluster = _on_a_cluster(project, service, env)
    if cluster:
        return None, cluster
    path = LocalTarget(project, service, env).folder / "access.log"
    if not path.exists():
        return None, f"no request has reached {env} yet: no access.log"
    return path, f"requests to {service} in {env}"


def _on_a_cluster(project: Project, service: str, env: str) -> str | None:
    """Why ``env`` has no log on this machine when it runs on Kubernetes: the pods' logs
    are the cluster's (and no proxy of relman's is in front of it)."""
    config = project.config.environments[env].kubernetes
    if config is None:
        return None
    from core.targets.kubernetes import object_name

    return (
        f"{env} runs on Kubernetes: its logs are the pods' (kubectl logs -n {config.namespace} "
        f"-l app.kubernetes.io/instance={object_name(service, env)})"
    )


def tail(path: Path | None, title: str, *, after: LogPosition | None, lines: int) -> LogTail:
    """The last ``lines`` lines of ``path``, or those appended since ``after`` when it is
    a position in the same file."""
    if path is None:
        return LogTail(title, None, [], None, reset=after is not None)
    try:
        with path.open("rb") as file:
            stat = os.fstat(file.fileno())
            same = (
                after is not None
                and after.path == str(path)
                and after.inode == stat.st_ino
                and after.offset <= stat.st_size
            )
            if same and after is not None and stat.st_size - after.offset <= MAX_READ:
                start, reset = after.offset, False
            else:
                start, reset = max(0, stat.st_size - MAX_READ), True
            file.seek(start)
            data = file.read(stat.st_size - start)
    except OSError as error:
        return LogTail(
            f"{title}: cannot read {path}: {error.strerror or error}", None, [], None, True
        )
    end = data.rfind(b"\n") + 1  # whole lines only: the rest comes at the next read
    chunk = data[:end].decode(errors="replace").splitlines()
    if reset and start > 0 and chunk:
        chunk = chunk[1:]  # the read began inside a line
    if reset:
        chunk = chunk[-lines:]
    position = LogPosition(str(path), stat.st_ino, start + end)
    return LogTail(title, str(path), chunk, position, reset)


def _release_of(folder: Path) -> str | None:
    try:
        info = json.loads((folder / "instance.json").read_text())
    except (OSError, ValueError):
        return None
    release = info.get("release") if isinstance(info, dict) else None
    return str(release) if release else None
