"""The Prometheus file_sd target list the collector keeps (``[monitoring] file_sd``,
docs/prometheus.md): each running instance of every environment the ledger records, by
its own address, labelled with the service, the environment, the release and its version;
rewritten atomically (a temporary file, then ``os.replace``) only when it changes."""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from core.config.model import Project
from core.errors import ReleaseError

VERSION_LABEL = "version"


def file_sd_path(project: Project) -> Path | None:
    """Where the list goes (from the project's root), or None when none is kept."""
    name = project.config.monitoring.file_sd
    return None if name is None else project.root / name


def target_groups(
    project: Project, states: Iterable[Any], version_of: Callable[[str], str | None]
) -> list[dict[str, Any]]:
    """One target group per running instance of each environment in ``states`` (the
    ledger's EnvState rows; those of services or environments no longer in relman.toml
    are left out), sorted; ``version_of(release)``: the release's version, if any."""
    from core.targets import target_for

    names = project.config.monitoring.labels
    config = project.config
    groups: list[dict[str, Any]] = []
    for state in states:
        if state.release_id is None:
            continue
        if state.service not in config.services or state.env not in config.environments:
            continue
        if config.environments[state.env].target != "local":
            continue  # a cluster's pods are Prometheus' to discover, not a file's
        try:
            target = target_for(project, state.service, state.env)
        except ReleaseError:  # an environment relman does not serve (no port): none listed
            continue
        for instance in target.instances():
            labels = {VERSION_LABEL: version} if (version := version_of(instance.release)) else {}
            labels.update(
                {
                    names.service: state.service,
                    names.env: state.env,
                    names.release: instance.release,
                }
            )
            groups.append({"targets": [instance.address], "labels": labels})
    groups.sort(key=lambda g: (g["labels"][names.service], g["labels"][names.env], g["targets"]))
    return groups


class FileSd:
    """The list at ``path``, written when what it holds changes (or it went missing)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        try:
            self._written: bytes | None = path.read_bytes()
        except OSError:
            self._written = None

    def keep(self, project: Project, ledger: Any, states: list[Any]) -> str | None:
        """The list of ``states``' running instances (versions from ``ledger``), written
        when it changed: the line that says so, else None. OSError when it cannot be."""
        versions: dict[str, str | None] = {}  # asked of the ledger once each

        def version_of(release: str) -> str | None:
            if release not in versions:
                versions[release] = release_version(ledger, release)
            return versions[release]

        groups = target_groups(project, states, version_of)
        if not self.update(groups):
            return None
        names = project.config.monitoring.labels
        shown = ", ".join(
            f"{g['labels'][names.service]}/{g['labels'][names.env]} {g['targets'][0]}"
            for g in groups
        )
        return f"file_sd list {self.path.name} rewritten: {shown or 'no targets'}"

    def update(self, groups: list[dict[str, Any]]) -> bool:
        """Write ``groups`` unless the file holds them already; True when written.
        OSError when it cannot be written."""
        text = (json.dumps(groups, indent=2) + "\n").encode()
        if text == self._written and self.path.exists():
            return False
        self.path.parent.mkdir(parents=True, exist_ok=True)
        handle, temporary = tempfile.mkstemp(
            prefix=f".{self.path.name}.", suffix=".tmp", dir=self.path.parent
        )
        try:
            with os.fdopen(handle, "wb") as out:
                out.write(text)
            os.chmod(temporary, 0o644)  # Prometheus may run as another user
            os.replace(temporary, self.path)
        except BaseException:
            Path(temporary).unlink(missing_ok=True)
            raise
        self._written = text
        return True


def release_version(ledger: Any, release: str) -> str | None:
    """The version of ``release`` in the ledger (None: none, or not recorded there)."""
    from store.errors import InvalidRequest

    try:
        version = ledger.get_release(release).version
    except InvalidRequest:
        return None
    return str(version) if version else None
