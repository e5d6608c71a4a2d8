"""GTO-style git tags: parse them into registry events, replay those into the registry that
``gto show`` reports, and write the tags of a promotion (:func:`write_promotion_tags`) as
``gto assign`` would.

The grammar and the replay are GTO's (docs/architecture.md, "lineage"), so tags written by
``gto`` and by relman read the same in both tools:

- ``NAME@vX.Y.Z[#N]``      registers version vX.Y.Z (SemVer, ``v`` prefix) at the tag's commit
- ``NAME@vX.Y.Z![#N]``     deregisters that version
- ``NAME#STAGE[#N]``       assigns STAGE to the version registered at the tag's commit
- ``NAME#STAGE![#N]``      unassigns STAGE from that version
- ``NAME@deprecated[#N]``  deprecates the whole artifact

``N`` is a counter per artifact that keeps tag names unique; the form without it is read
too. An artifact of a nested dvc.yaml is named ``DIR:NAME``, written ``DIR=NAME`` in tags.
As GTO, relman reads annotated tags only. A tag GTO would not read (lightweight, or a bad
name, version, stage or counter) is skipped with one warning line: a stray tag in someone's
repository must never stop ``relman status``.
"""

from __future__ import annotations

import os
import re
import subprocess
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field, replace
from datetime import UTC, datetime
from enum import StrEnum
from pathlib import Path
from typing import Any

from core.errors import BlockedError, InfraError, ProjectError
from core.lineage.gitinfo import TagRef, git, tags

__all__ = [
    "Action",
    "ArtifactState",
    "GtoEvent",
    "GtoTag",
    "current_stages",
    "format_stage_tag",
    "format_version_tag",
    "gto_events",
    "next_counter",
    "parse_tag",
    "plan_promotion_tags",
    "registry_state",
    "write_promotion_tags",
]


class Action(StrEnum):
    REGISTER = "register"
    DEREGISTER = "deregister"
    ASSIGN = "assign"
    UNASSIGN = "unassign"
    DEPRECATE = "deprecate"


# GTO's order of events of the same second (its ``priority``): ``gto history`` lists them so,
# and at a tie a deregistration beats a registration, an unassignment an assignment.
_PRIORITY = {
    Action.DEPRECATE: 2,
    Action.REGISTER: 3,
    Action.DEREGISTER: 4,
    Action.ASSIGN: 5,
    Action.UNASSIGN: 6,
}

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
# A '@' or '#' after some name: probably meant as a GTO tag, so say why it is not read.
_LOOKS_LIKE_GTO = re.compile(r"^[^@#]+[@#]")


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
    """One registry event: a parsed tag together with its commit, tagger and date.

    ``version`` is the one the tag name holds; ``resolved_version`` is the version the
    event is about as ``gto history`` reports it: for an assignment or unassignment, the one
    registered at the tag's commit, else the commit abbreviated to 7 digits.
    """

    tag: str
    artifact: str
    action: Action
    commit: str
    date: str
    tagger: str
    version: str | None = None
    stage: str | None = None
    counter: int | None = None
    resolved_version: str | None = None

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


_NAME_RULE = "letters, digits, '-', '_', '/', starting and ending with a letter or digit"


def _why_malformed(name: str) -> str:
    """Why GTO does not read ``name``, a tag with a '@' or '#' after some text."""
    at = min(i for i in (name.find("@"), name.find("#")) if i >= 0)
    artifact, mark, rest = name[:at], name[at], name[at + 1 :]
    if not re.fullmatch(_ARTIFACT, artifact):
        return f"artifact name '{artifact}' is not valid ({_NAME_RULE}; DIR=NAME when nested)"
    body, hashed, counter = rest.partition("#")
    if "#" in counter:
        return "too many '#' parts"
    if hashed and not counter.isdigit():
        return f"counter '{counter}' is not a number"
    body = body.removesuffix("!")
    if mark == "#":
        return f"stage '{body}' is not valid ({_NAME_RULE})"
    if body == "deprecated":
        return "'@deprecated' cannot be undone with '!'"
    if body == "created":
        # GTO 1.10 matches NAME@created but holds no event for it: `gto show` fails on it.
        return "'@created' is no event GTO can read"
    if not body.startswith("v"):
        return f"version '{body}' lacks the 'v' prefix (e.g. v1.2.3)"
    return f"version '{body}' is not SemVer vMAJOR.MINOR.PATCH"


def _instant(date: str) -> datetime:
    # Tag dates carry the tagger's UTC offset: compare instants, not strings.
    try:
        parsed = datetime.fromisoformat(date)
    except ValueError:
        return datetime.min.replace(tzinfo=UTC)
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def _versions_at(events: Iterable[GtoEvent]) -> dict[tuple[str, str], list[str]]:
    """``{(artifact, commit): versions}`` of every registration and deregistration tag.

    GTO indexes these before any assignment, whatever their dates: an assignment names the
    version registered at its commit even when the registration came later.
    """
    found: dict[tuple[str, str], list[str]] = {}
    for event in events:
        if event.action in (Action.REGISTER, Action.DEREGISTER) and event.version:
            names = found.setdefault((event.artifact, event.commit), [])
            if event.version in names:
                names.remove(event.version)
            names.append(event.version)
    return found


def _order(event: GtoEvent) -> tuple[datetime, int, int, str, str]:
    # GTO orders by tag time, then by its priority; within the same second it has no order
    # of its own, so the counter GTO wrote (the order the tags were made) decides.
    return (
        _instant(event.date),
        _PRIORITY[event.action],
        event.counter or 0,
        event.artifact,
        event.tag,
    )


def gto_events(tags: list[TagRef]) -> tuple[list[GtoEvent], list[str]]:
    """Registry events of GTO-style tags in GTO's order (oldest first, as ``gto history
    --ascending``), and one warning per tag GTO would not read.

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
        # gitinfo.tags() gives a lightweight tag neither the flag nor a tagger.
        if not ref.annotated:
            warnings.append(
                f"tag '{ref.name}' skipped: a lightweight tag, and GTO reads annotated tags "
                "only; recreate it with 'git tag -a'"
            )
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
    events.sort(key=_order)
    at_commit = _versions_at(events)
    for (artifact, commit), names in sorted(at_commit.items()):
        if len(names) > 1:
            warnings.append(
                f"{artifact}: commit {commit[:7]} carries versions {', '.join(names)} (GTO "
                f"refuses to read such a registry); relman reads {names[-1]}: deregister the "
                "others with 'gto deregister' or delete their tags"
            )
    return [_resolved(event, at_commit) for event in events], warnings


def _resolved(event: GtoEvent, at_commit: dict[tuple[str, str], list[str]]) -> GtoEvent:
    if event.action not in (Action.ASSIGN, Action.UNASSIGN):
        return replace(event, resolved_version=event.version)
    names = at_commit.get((event.artifact, event.commit))
    return replace(event, resolved_version=names[-1] if names else event.commit[:7])


@dataclass(frozen=True)
class ArtifactState:
    """One artifact as ``gto show`` reports it after replaying every event.

    ``active`` is false while the artifact is deprecated (a later event revives it);
    ``versions`` are the registered ones not deregistered, the greatest SemVer first;
    ``stages`` maps each stage to the version it holds (a commit abbreviated to 7 digits
    when nothing is registered there).
    """

    name: str
    active: bool
    versions: tuple[str, ...]
    stages: dict[str, str]

    @property
    def latest(self) -> str | None:
        return self.versions[0] if self.versions else None

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "latest": self.latest}


@dataclass
class _Version:
    """One version of one artifact during the replay (GTO's ``Version``)."""

    name: str
    registered: bool = False
    # The last of its registration/deregistration tags was a registration. A commit with no
    # such tag, that only stage tags name, counts as active (GTO: "not explicit").
    active: bool = True
    # stage -> position (in event order) of the assignment that holds it
    assigned: dict[str, int] = field(default_factory=dict)


def registry_state(events: list[GtoEvent]) -> dict[str, ArtifactState]:
    """Every artifact that ``events`` (in :func:`gto_events` order) name, replayed as GTO
    does with its defaults (``gto show``: one version per stage, the last assignment wins).

    Each version keeps its own stage assignments: unassigning a stage from the newest
    version, or deregistering it, gives the stage back to the version assigned before, if
    that one still holds it. Deprecation hides an artifact without undoing anything. Stage
    tags at a commit with no registration name the commit itself; an unassignment there
    undoes the assignment, where GTO 1.10 ignores it (only a hand-written tag can do that).
    """
    at_commit = _versions_at(events)
    versions: dict[str, dict[tuple[str, ...], _Version]] = {}
    last: dict[str, Action] = {}
    for position, event in enumerate(events):
        mine = versions.setdefault(event.artifact, {})
        last[event.artifact] = event.action
        if event.action is Action.DEPRECATE:
            continue
        if event.action in (Action.REGISTER, Action.DEREGISTER) and event.version:
            version = mine.setdefault((event.version, event.commit), _Version(event.version))
            version.registered = version.registered or event.action is Action.REGISTER
            version.active = event.action is Action.REGISTER
            continue
        names = at_commit.get((event.artifact, event.commit))
        if names:
            version = mine.setdefault((names[-1], event.commit), _Version(names[-1]))
        else:
            # The one difference from GTO 1.10, on purpose: it indexes each stage tag at a
            # commit with no registration as a version of its own, so an unassignment there
            # (a hand-written tag: `gto unassign` refuses to write one) undoes nothing.
            version = mine.setdefault((event.commit,), _Version(event.commit[:7]))
        if event.stage and event.action is Action.ASSIGN:
            version.assigned[event.stage] = position
        elif event.stage:
            version.assigned.pop(event.stage, None)
    states: dict[str, ArtifactState] = {}
    for artifact, mine in versions.items():
        live = [version for version in mine.values() if version.active]
        holders: dict[str, tuple[int, str]] = {}
        for version in live:
            for stage, position in version.assigned.items():
                if stage not in holders or position > holders[stage][0]:
                    holders[stage] = (position, version.name)
        registered = {version.name for version in live if version.registered}
        states[artifact] = ArtifactState(
            name=artifact,
            active=last[artifact] is not Action.DEPRECATE,
            versions=tuple(sorted(registered, key=_semver_key, reverse=True)),
            stages={stage: name for stage, (_, name) in sorted(holders.items())},
        )
    return states


def current_stages(events: list[GtoEvent]) -> dict[str, dict[str, str]]:
    """``{artifact: {stage: version}}`` of the artifacts not deprecated that hold a stage,
    as ``gto show`` reports them (see :func:`registry_state`)."""
    return {
        name: state.stages
        for name, state in registry_state(events).items()
        if state.active and state.stages
    }


def _semver_key(version: str) -> tuple[int, int, int, tuple[Any, ...]]:
    """SemVer precedence of ``vX.Y.Z[-pre][+build]``: a pre-release sorts before its
    release, numeric identifiers before alphanumeric ones; build metadata is ignored."""
    core, _, pre = version.removeprefix("v").split("+", 1)[0].partition("-")
    major, minor, patch = (int(part) for part in core.split("."))
    if not pre:
        return (major, minor, patch, (1,))
    parts = tuple((0, int(p), "") if p.isdigit() else (1, 0, p) for p in pre.split("."))
    return (major, minor, patch, (0, parts))


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
    """(active version -> commit, tag name -> commit, stage -> version) of one artifact.

    As GTO's own checks before it registers: a version stays registered at its commit while
    the artifact is deprecated (a new stage tag revives the artifact).
    """
    events, _warnings = gto_events(list(refs))
    mine = [event for event in events if event.artifact == artifact]
    last: dict[tuple[str, str], Action] = {}
    for event in mine:
        if event.action in (Action.REGISTER, Action.DEREGISTER) and event.version:
            last[(event.version, event.commit)] = event.action
    active = {name: commit for (name, commit), action in last.items() if action is Action.REGISTER}
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
                "or deprecated, or the tag is lightweight: release under another version"
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
        return tags(root, fresh=True)  # a promotion plans on the tags as they are now
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
