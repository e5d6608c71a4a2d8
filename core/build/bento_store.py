"""Bentos in the local BentoML store: where the store is, reading a Bento's bento.yaml,
finding the one relman built for a release, and the lineage labels relman gives it.

A release's Bento has the release id as its version and carries ``relman.release``,
``relman.service``, ``relman.git_commit``, ``relman.model_md5``, ``relman.data_md5``,
``relman.version`` and ``relman.relman_version`` as labels, so it is found again by reading
``$BENTOML_HOME/bentos/*/<release id>/bento.yaml`` alone, without importing bentoml (slow).
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

if TYPE_CHECKING:
    from core.lineage.candidate import Candidate

__all__ = [
    "LABEL_PREFIX",
    "BentoRef",
    "bento_labels",
    "bentoml_home",
    "check_labels",
    "find_bento",
    "read_bento",
    "relman_version",
]

LABEL_PREFIX = "relman."
# BentoML's tag rule (name and version): what a store folder and a label key may be named.
_TAG = re.compile(r"^[a-z0-9]([-._a-z0-9]*[a-z0-9])?$")
_UNPRINTABLE = re.compile(r"[\x00-\x1f\x7f]")


@dataclass(frozen=True)
class BentoRef:
    """A Bento in the local BentoML store, as its bento.yaml describes it."""

    tag: str
    path: Path
    release: str
    service: str
    labels: dict[str, str] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "tag": self.tag,
            "path": str(self.path),
            "release": self.release,
            "service": self.service,
            "labels": dict(self.labels),
        }


# ------------------------------------------------------------------------- the Bento store


def bentoml_home() -> Path:
    """BentoML's home as BentoML resolves it: ``$BENTOML_HOME``, else ``~/bentoml``."""
    raw = os.environ.get("BENTOML_HOME") or os.path.join(os.path.expanduser("~"), "bentoml")
    # BentoML expands variables and ~ until nothing changes (nested variables).
    for _ in range(10):
        expanded = os.path.expanduser(os.path.expandvars(raw))
        if expanded == raw:
            break
        raw = expanded
    return Path(raw).absolute()


def read_bento(path: Path) -> BentoRef | None:
    """The Bento stored in folder ``path``; None when its bento.yaml is missing or unreadable."""
    try:
        text = (path / "bento.yaml").read_text(encoding="utf-8")
        info = yaml.load(text, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))
    except (OSError, UnicodeDecodeError, yaml.YAMLError):
        return None
    if not isinstance(info, dict) or not info.get("name") or not info.get("version"):
        return None
    raw_labels = info.get("labels") or {}
    labels = {str(k): str(v) for k, v in raw_labels.items()} if isinstance(raw_labels, dict) else {}
    return BentoRef(
        tag=f"{info['name']}:{info['version']}",
        path=path,
        release=labels.get(f"{LABEL_PREFIX}release", ""),
        service=labels.get(f"{LABEL_PREFIX}service", ""),
        labels=labels,
    )


def release_folders(release_id: str) -> set[Path]:
    """The store's folders of Bentos whose version is ``release_id`` (any Bento name)."""
    return set((bentoml_home() / "bentos").glob(f"*/{release_id}"))


def find_bento(service: str, release_id: str) -> BentoRef | None:
    """The Bento relman built for ``service`` at ``release_id``, if the store holds one.

    Its version is the release id, so only ``bentos/*/<release_id>/`` is read: a few files
    whatever the size of the store.
    """
    if not _TAG.match(release_id):
        return None  # a dirty id, or not an id at all: never a Bento version relman made
    for folder in sorted(release_folders(release_id)):
        found = read_bento(folder)
        if found is not None and found.release == release_id and found.service == service:
            return found
    return None


# ----------------------------------------------------------------------------------- labels


def relman_version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("relman")
    except PackageNotFoundError:  # run from a checkout that was never installed
        from core import __version__

        return __version__


def bento_labels(
    service: str, candidate: Candidate, *, version: str | None = None
) -> dict[str, str]:
    """The lineage of a release as Bento labels; empty ones (no data, no version) left out.

    Several models or datasets give their md5s comma-joined, in relman.toml's order.
    """
    raw = {
        "release": candidate.release,
        "service": service,
        "git_commit": candidate.git.commit,
        "model_md5": ",".join(a.md5 for a in candidate.model if a.md5),
        "data_md5": ",".join(a.md5 for a in candidate.data if a.md5),
        "version": version or "",
        "relman_version": relman_version(),
    }
    labels = {f"{LABEL_PREFIX}{key}": _label_value(value) for key, value in raw.items()}
    labels = {key: value for key, value in labels.items() if value}
    check_labels(labels)
    return labels


def _label_value(value: str) -> str:
    # One line without control characters: labels land in YAML, image labels and UIs.
    return " ".join(_UNPRINTABLE.sub(" ", str(value)).split())


def check_labels(labels: dict[str, str]) -> None:
    """ValueError unless every label is one BentoML takes and relman can read back.

    BentoML 1.4 asks only for ``str`` keys and values (it converts other values with a
    warning). relman also keeps keys to BentoML's tag alphabet (lowercase letters, digits,
    ``.``, ``-``, ``_``; at most 63 characters) and values to one printable line.
    """
    for key, value in labels.items():
        if not isinstance(key, str) or not isinstance(value, str):
            raise ValueError(f"label {key!r}: keys and values must be strings")
        if len(key) > 63 or not _TAG.match(key):
            raise ValueError(
                f"label key {key!r}: use lowercase letters, digits, '.', '-' and '_' "
                "(at most 63 characters)"
            )
        if _UNPRINTABLE.search(value):
            raise ValueError(f"label {key!r}: the value must be one printable line")
