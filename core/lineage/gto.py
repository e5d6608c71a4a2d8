"""GTO-style git tags: parse them into registry events, replay those into stage state, and
write the tags of a promotion (:func:`write_promotion_tags`) as ``gto assign`` would.

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

import os
import re
import subprocess
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from enum import StrEnum
from pathlib import Path
from typing import Any

from core.errors import BlockedError, InfraError, ProjectError
from core.lineage.gitinfo import TagRef, git, tags

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
    "plan_promotion_tags",
    "write_promotion_tags",
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
    # Parsing is not enough: "clf@v1.0.0!" parses, as a deregistration. Read back as asked.
    if _meaning(tag) != (name, Action.REGISTER, version, None, counter):
        raise ValueError(f"'{tag}' is not a valid GTO version tag (name or version malformed)")
    return tag


def format_stage_tag(name: str, stage: str, n: int) -> str:
    """``NAME#STAGE#N``; validates the result."""
    tag = f"{_tag_name(name)}#{stage}#{n}"
    if _meaning(tag) != (name, Action.ASSIGN, None, stage, n):
        raise ValueError(f"'{tag}' is not a valid GTO stage tag (name or stage malformed)")
    return tag


def _meaning(tag: str) -> tuple[str, Action, str | None, str | None, int | None] | None:
    parsed = parse_tag(tag)
    if parsed is None:
        return None
    return (parsed.artifact, parsed.action, parsed.version, parsed.stage, parsed.counter)


def next_counter(tags: list[TagRef], name: str) -> int:
    """The ``N`` for the next tag of artifact ``name``: one more than any used so far (GTO)."""
    used = [
        parsed.counter
        for ref in tags
        if (parsed := parse_tag(ref.name)) and parsed.artifact == name and parsed.counter
    ]
    return max(used, default=0) + 1


# --- Writing: the tags of one promotion --------------------------------------------------------
#
# As ``gto assign --name-version``: annotated tags with GTO's own messages (GTO reads the
# tagger and the message of each tag into its events), the version tag in GTO's default
# "simple" form without a counter, the stage tag with the next counter of the artifact.


def _registered(
    refs: Sequence[TagRef], artifact: str
) -> tuple[dict[str, str], dict[str, str], dict[str, str]]:
    """(active version -> commit, tag name -> commit, stage -> version) of one artifact."""
    events, _warnings = gto_events(list(refs))
    mine = [event for event in events if event.artifact == artifact]
    active: dict[str, str] = {}
    for event in mine:
        if event.action is Action.REGISTER and event.version:
            active[event.version] = event.commit
        elif event.action is Action.DEREGISTER and event.version:
            active.pop(event.version, None)
        elif event.action is Action.DEPRECATE:
            active.clear()
    names = {ref.name: ref.commit for ref in refs}
    return active, names, current_stages(mine).get(artifact, {})


def plan_promotion_tags(
    refs: Sequence[TagRef], artifact: str, version: str, stage: str, commit: str
) -> list[str]:
    """The tags a promotion of ``artifact`` ``version`` at ``commit`` to ``stage`` would create.

    Pure (no git): call it before deploying, so that a registry conflict blocks the promotion
    before anything changes. ``commit`` is the full hash. Empty when the stage already holds
    that version (a retry after a crash creates nothing twice). Raises BlockedError when the
    registry disagrees: the version is registered at another commit, or the commit already
    carries another version (GTO itself refuses both without ``--force``).
    """
    version = version if version.startswith("v") else f"v{version}"
    version_tag = format_version_tag(artifact, version)
    active, names, stages = _registered(refs, artifact)
    planned: list[str] = []
    if version in active:
        if active[version] != commit:
            raise BlockedError(
                f"{artifact}: git tag '{version_tag}' already registers {version} at commit "
                f"{active[version][:7]}, not {commit[:7]}: delete or rename that tag, or "
                "release under another version"
            )
    else:
        others = sorted(v for v, c in active.items() if c == commit)
        if others:
            raise BlockedError(
                f"{artifact}: commit {commit[:7]} is already registered as {others[-1]} "
                f"(git tag '{format_version_tag(artifact, others[-1])}'), not {version}: "
                "deregister that version or release under it"
            )
        if version_tag in names:
            raise BlockedError(
                f"{artifact}: git tag '{version_tag}' exists but {version} was deregistered "
                "or deprecated: release under another version"
            )
        planned.append(version_tag)
    if stages.get(stage) == version and not planned:
        return []
    planned.append(format_stage_tag(artifact, stage, next_counter(list(refs), artifact)))
    return planned


def _identity_args(root: Path, actor: str | None) -> list[str]:
    """``-c user.name=... -c user.email=...`` for what the repository's git config lacks.

    A fresh machine (a CI runner, a new serving host) has no git identity, and ``git tag -a``
    refuses to run without one. Nothing is written to any config file.
    """

    def configured(key: str) -> bool:
        try:
            return bool(git(root, "config", "--get", key).strip())
        except ProjectError:  # exit 1: not set
            return False

    args: list[str] = []
    if not configured("user.email") and not os.environ.get("GIT_COMMITTER_EMAIL"):
        who = (actor or "").strip()
        email = who if "@" in who else f"{who or 'relman'}@localhost"
        args += ["-c", f"user.email={email}"]
        if not configured("user.name") and not os.environ.get("GIT_COMMITTER_NAME"):
            args += ["-c", "user.name=relman"]
    return args


def _run_git(root: Path, args: list[str]) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, LC_ALL="C", GIT_PAGER="cat", GIT_TERMINAL_PROMPT="0")
    try:
        return subprocess.run(
            ["git", "-C", str(root), *args],
            capture_output=True,
            text=True,
            env=env,
            check=False,
        )
    except OSError as exc:
        raise InfraError(f"could not run git in {root}: {exc}") from exc


def _git_reason(done: subprocess.CompletedProcess[str]) -> str:
    lines = done.stderr.strip().splitlines()
    causes = [line for line in lines if line.startswith(("fatal:", "error:"))]
    return (causes or lines or [f"exit code {done.returncode}"])[0]


def _create_tag(root: Path, identity: list[str], name: str, commit: str, message: str) -> bool:
    """Create annotated tag ``name`` at ``commit``; False when the name is already taken."""
    done = _run_git(root, [*identity, "tag", "-a", "-m", message, name, commit])
    if done.returncode == 0:
        return True
    if "already exists" in done.stderr:
        return False
    raise InfraError(
        f"could not create git tag '{name}' in {root}: {_git_reason(done)} "
        "(check the repository's git setup, then promote again)"
    )


def write_promotion_tags(
    root: Path,
    artifact: str,
    version: str,
    stage: str,
    commit: str,
    *,
    actor: str | None = None,
    existing: Sequence[TagRef] | None = None,
) -> list[str]:
    """Record a promotion in git as GTO does: ``artifact@version`` (once) then
    ``artifact#stage#N``; return the tags created, oldest first.

    ``existing`` is the repository's tags when the caller has just read them (else read
    here). Raises BlockedError on a registry conflict (see :func:`plan_promotion_tags`) and
    InfraError when git fails. Tags are local: ``git push --tags`` shares them.
    """
    done = _run_git(root, ["rev-parse", "--verify", "--quiet", f"{commit}^{{commit}}"])
    if done.returncode != 0:
        if done.stderr.strip():
            raise InfraError(f"could not tag {artifact} in {root}: {_git_reason(done)}")
        raise InfraError(
            f"commit {commit[:12]} not found in {root}: fetch it (a shallow clone may lack it), "
            "then promote again"
        )
    full = done.stdout.strip()
    refs = list(existing) if existing is not None else _read_tags(root)
    created: list[str] = []
    for _attempt in range(5):
        planned = plan_promotion_tags(refs, artifact, version, stage, full)
        if _create_planned(root, artifact, version, stage, full, planned, actor, created):
            return created
        # A tag name was taken since ``refs`` was read (a concurrent promotion of the same
        # artifact took the counter, or registered the version): plan again on fresh tags.
        refs = _read_tags(root)
    raise InfraError(
        f"could not tag {artifact} for {stage} in {root}: concurrent promotions kept taking "
        "the tag names; promote again"
    )


def _read_tags(root: Path) -> list[TagRef]:
    try:
        return tags(root)
    except ProjectError as exc:
        raise InfraError(f"could not read git tags in {root}: {exc}") from exc


def _create_planned(
    root: Path,
    artifact: str,
    version: str,
    stage: str,
    commit: str,
    planned: list[str],
    actor: str | None,
    created: list[str],
) -> bool:
    """Create ``planned`` in order, appending to ``created``; False when a name was taken."""
    version = version if version.startswith("v") else f"v{version}"
    identity = _identity_args(root, actor) if planned else []
    for name in planned:
        parsed = parse_tag(name)
        if parsed is not None and parsed.action is Action.REGISTER:
            message = f"Registering artifact {artifact} version {version}"
        else:
            message = f"Assigning stage {stage} to artifact {artifact} version {version}"
        if not _create_tag(root, identity, name, commit, message):
            return False
        created.append(name)
    return True
