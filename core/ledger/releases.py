"""Releases in the ledger: opening it for a project, recording a clean candidate, finding a
release by id, id prefix or version."""

from __future__ import annotations

from pathlib import Path

from core.config.model import Project
from core.errors import BlockedError, UsageError
from core.ledger.identity import current_user
from core.lineage.candidate import Candidate
from core.lineage.dvcinfo import ArtifactInfo
from core.lineage.gitinfo import tags
from core.lineage.gto import Action, gto_events
from core.lineage.release_id import is_dirty_id
from store import ArtifactRecord, Ledger, ReleaseNotFound, ReleaseRecord


def ledger_path(project: Project) -> Path:
    return project.ledger_path


def open_ledger(project: Project, *, read_only: bool) -> Ledger:
    """The project's ledger. A read-only open never creates the file; an older one is
    upgraded first unless the whole session is read-only (:func:`upgrade_ledger`)."""
    if read_only:
        from core.ledger.upgrade import upgrade_ledger

        upgrade_ledger(project)
    # Readers never write an event, so they need no actor (and spare a git subprocess).
    actor = None if read_only else current_user(project.root)
    return Ledger.open(ledger_path(project), readonly=read_only, actor=actor)


def _artifact_records(kind: str, infos: list[ArtifactInfo]) -> list[ArtifactRecord]:
    return [
        ArtifactRecord(
            name=info.name or info.path,
            kind="model" if kind == "model" else "dataset",
            path=info.path,
            md5=info.md5,
            size=info.size,
            nfiles=info.nfiles,
        )
        for info in infos
    ]


def tagged_version(project: Project, candidate: Candidate) -> str | None:
    """A version GTO-style tags already registered for the candidate's model at its commit."""
    names = {info.name for info in candidate.model if info.name}
    events, _warnings = gto_events(tags(project.root))
    versions = [
        event.version
        for event in events
        if event.action == Action.REGISTER
        and event.artifact in names
        and event.commit == candidate.git.commit
        and event.version
    ]
    return versions[-1] if versions else None


def record_candidate(
    ledger: Ledger, project: Project, service: str, candidate: Candidate
) -> ReleaseRecord:
    """Record the candidate as a release (idempotent: same content, same id, same record).

    Only a clean candidate is a release: a dirty tree has no commit to build from.
    """
    if is_dirty_id(candidate.release) or candidate.git.dirty:
        files = ", ".join(candidate.git.dirty_files[:3]) or "the working tree"
        raise BlockedError(
            f"{service}: uncommitted changes ({files}); commit them first: a release is "
            "built from a commit"
        )
    try:
        return ledger.get_release(candidate.release)
    except ReleaseNotFound:
        pass
    version = tagged_version(project, candidate) or ledger.next_version(service)
    return ledger.record_release(
        candidate.release,
        service=service,
        git_commit=candidate.git.commit,
        git_branch=candidate.git.branch,
        message=candidate.git.message,
        author=candidate.git.author,
        params=candidate.params,
        metrics=candidate.metrics,
        artifacts=_artifact_records("model", candidate.model)
        + _artifact_records("dataset", candidate.data),
        version=version,
    )


def find_release(ledger: Ledger, services: list[str], ref: str) -> ReleaseRecord:
    """A release by id, unique id prefix, or version (``v1.2.0``) of one of ``services``."""
    if ref.startswith("v") and ref[1:2].isdigit():
        matches = [
            release
            for name in services
            for release in ledger.releases(name)
            if release.version == ref
        ]
        if len(matches) == 1:
            return matches[0]
        if len(matches) > 1:
            names = ", ".join(sorted(r.service for r in matches))
            raise UsageError(
                f"{ref} is a version of several services ({names}); name the release id"
            )
    return ledger.get_release(ref)
