"""GTO-style git tags: parse them into registry events and replay those into stage state.

The grammar follows GTO (``gto/constants.py: tag_re``, ``gto/tag.py``), so tags written by
``gto`` and by relman read the same:

- ``NAME@vX.Y.Z[#N]``      registers version vX.Y.Z (SemVer, ``v`` prefix) at the tag's commit
- ``NAME@vX.Y.Z![#N]``     deregisters that version
- ``NAME#STAGE[#N]``       assigns STAGE to the version registered at the tag's commit
- ``NAME#STAGE![#N]``      unassigns STAGE
- ``NAME@deprecated[#N]``  deprecates the whole artifact

``N`` is a counter per artifact that keeps tag names unique; the old form without it is still
read. A tag that starts like one of these but breaks the grammar is skipped with a warning
line: a stray tag in someone's repository must never stop ``relman status``.
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from core.gitinfo import TagRef

__all__ = [
    "Action",
    "GtoEvent",
    "GtoTag",
    "current_stages",
    "format_stage_tag",
    "format_version_tag",
    "gto_events",
    "next_counter",
    "parse_tag",
]


class Action(StrEnum):
    REGISTER = "register"
    DEREGISTER = "deregister"
    ASSIGN = "assign"
    UNASSIGN = "unassign"
    DEPRECATE = "deprecate"


# Copied from GTO so that both tools accept exactly the same names.
_NAME = r"[a-zA-Z0-9]([a-zA-Z0-9-/_]*[a-zA-Z0-9])?"
_DIRNAME = r"[a-zA-Z0-9-_./]+"
_SEMVER = (
    r"(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)"
    r"(?:-((?:0|[1-9]\d*|\d*[a-zA-Z-][0-9a-zA-Z-]*)(?:\.(?:0|[1-9]\d*|\d*[a-zA-Z-][0-9a-zA-Z-]*))*))?"
    r"(?:\+([0-9a-zA-Z-]+(?:\.[0-9a-zA-Z-]+)*))?"
)
# In tags, GTO writes the "dir:name" separator of artifacts in nested dvc.yaml files as "=".
_ARTIFACT = rf"(?:{_DIRNAME}=)?{_NAME}"
_TAG_RE = re.compile(
    rf"^(?P<artifact>{_ARTIFACT})"
    rf"(?:(?:#(?P<stage>{_NAME})|@(?P<version>v{_SEMVER}))(?P<cancel>!?)|@(?P<deprecated>deprecated))"
    r"(?:#(?P<counter>[0-9]+))?$"
)
# Anything with a '@' or '#' after a plausible name was probably meant as a GTO tag.
_LOOKS_LIKE_GTO = re.compile(rf"^{_ARTIFACT}[@#]")


@dataclass(frozen=True)
class GtoTag:
    """What a tag name says, before knowing which commit it points at."""

    tag: str
    artifact: str
    action: Action
    version: str | None = None
    stage: str | None = None
    counter: int | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class GtoEvent:
    """One registry event: a parsed tag together with its commit, tagger and date."""

    tag: str
    artifact: str
    action: Action
    commit: str
    date: str
    tagger: str
    version: str | None = None
    stage: str | None = None
    counter: int | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def parse_tag(name: str) -> GtoTag | None:
    """The GTO meaning of a tag name, or None when the name does not follow the grammar."""
    match = _TAG_RE.match(name)
    if match is None:
        return None
    # GTO writes "dir:name" as "dir=name" in tags; report the artifact as GTO names it.
    artifact = match["artifact"].replace("=", ":")
    counter = int(match["counter"]) if match["counter"] else None
    cancel = match["cancel"] == "!"
    if match["deprecated"]:
        return GtoTag(name, artifact, Action.DEPRECATE, counter=counter)
    if match["version"]:
        action = Action.DEREGISTER if cancel else Action.REGISTER
        return GtoTag(name, artifact, action, version=match["version"], counter=counter)
    action = Action.UNASSIGN if cancel else Action.ASSIGN
    return GtoTag(name, artifact, action, stage=match["stage"], counter=counter)


def _why_malformed(name: str) -> str:
    if "@" in name and not name.endswith("@deprecated"):
        version = name.split("@", 1)[1].split("#", 1)[0].rstrip("!")
        if not version.startswith("v"):
            return f"version '{version}' lacks the 'v' prefix (e.g. v1.2.3)"
        return f"version '{version}' is not SemVer vMAJOR.MINOR.PATCH"
    parts = name.split("#")
    if len(parts) > 3:
        return "too many '#' parts"
    if len(parts) == 3 and not parts[2].isdigit():
        return f"counter '{parts[2]}' is not a number"
    return "does not match NAME@vX.Y.Z, NAME#STAGE#N or NAME@deprecated"


def _instant(date: str) -> datetime:
    # Tag dates carry the tagger's UTC offset: compare instants, not strings.
    try:
        parsed = datetime.fromisoformat(date)
    except ValueError:
        return datetime.min.replace(tzinfo=UTC)
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def gto_events(tags: list[TagRef]) -> tuple[list[GtoEvent], list[str]]:
    """Registry events of GTO-style tags, oldest first, and one warning per malformed tag.

    Tags that do not look like GTO's at all (``v1.0``, ``release-3``) are ignored silently.
    """
    events: list[GtoEvent] = []
    warnings: list[str] = []
    for ref in tags:
        parsed = parse_tag(ref.name)
        if parsed is None:
            if _LOOKS_LIKE_GTO.match(ref.name):
                warnings.append(f"tag '{ref.name}' skipped: {_why_malformed(ref.name)}")
            continue
        events.append(
            GtoEvent(
                tag=ref.name,
                artifact=parsed.artifact,
                action=parsed.action,
                commit=ref.commit,
                date=ref.date,
                tagger=ref.tagger,
                version=parsed.version,
                stage=parsed.stage,
                counter=parsed.counter,
            )
        )
    # GTO orders events by tag time; the counter breaks ties between tags of the same second.
    events.sort(key=lambda e: (_instant(e.date), e.artifact, e.counter or 0))
    return events, warnings


def current_stages(events: list[GtoEvent]) -> dict[str, dict[str, str]]:
    """``{artifact: {stage: version}}`` after replaying ``events`` in order.

    As in GTO, an assignment names the version registered at the tag's commit (the commit
    itself, abbreviated, when none is), a stage holds one version at a time, and a deprecated
    artifact has no stages left.
    """
    registered: dict[tuple[str, str], str] = {}  # (artifact, commit) -> version
    stages: dict[str, dict[str, str]] = {}
    for event in events:
        key = (event.artifact, event.commit)
        if event.action is Action.REGISTER and event.version:
            registered[key] = event.version
        elif event.action is Action.DEREGISTER:
            registered.pop(key, None)
            held = stages.get(event.artifact, {})
            for stage in [s for s, v in held.items() if v == event.version]:
                del held[stage]
        elif event.action is Action.ASSIGN and event.stage:
            version = registered.get(key, event.commit[:7])
            stages.setdefault(event.artifact, {})[event.stage] = version
        elif event.action is Action.UNASSIGN and event.stage:
            stages.get(event.artifact, {}).pop(event.stage, None)
        elif event.action is Action.DEPRECATE:
            stages.pop(event.artifact, None)
            registered = {k: v for k, v in registered.items() if k[0] != event.artifact}
    return {name: held for name, held in stages.items() if held}


def _tag_name(artifact: str) -> str:
    return artifact.replace(":", "=")


def format_version_tag(name: str, version: str, counter: int | None = None) -> str:
    """``NAME@vX.Y.Z`` (``#N`` appended when a counter is given); validates the result."""
    version = version if version.startswith("v") else f"v{version}"
    tag = f"{_tag_name(name)}@{version}" + (f"#{counter}" if counter is not None else "")
    if parse_tag(tag) is None:
        raise ValueError(f"'{tag}' is not a valid GTO version tag (name or version malformed)")
    return tag


def format_stage_tag(name: str, stage: str, n: int) -> str:
    """``NAME#STAGE#N``; validates the result."""
    tag = f"{_tag_name(name)}#{stage}#{n}"
    if parse_tag(tag) is None:
        raise ValueError(f"'{tag}' is not a valid GTO stage tag (name or stage malformed)")
    return tag


def next_counter(tags: list[TagRef], name: str) -> int:
    """The ``N`` for the next tag of artifact ``name``: one more than any used so far (GTO)."""
    used = [
        parsed.counter
        for ref in tags
        if (parsed := parse_tag(ref.name)) and parsed.artifact == name and parsed.counter
    ]
    return max(used, default=0) + 1
