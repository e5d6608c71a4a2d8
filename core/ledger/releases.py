"""Releases in the ledger: opening it for a project, recording a clean candidate, finding a
release by id, id prefix or version.

A release is recorded once, with the commit it was first seen at: later commits that change
nothing it serves (relman.toml, a README) have the same release id and find the same record,
so its version, test results, approvals and Bento carry over, and its commit stays the one
that introduced its content (what ``relman diff`` and a rebuild start from)."""

from __future__ import annotations

from pathlib import Path

from core.config.model import Project
from core.errors import BlockedError, UsageError
from core.ledger.identity import current_user
from core.lineage.candidate import Candidate
from core.lineage.dvcinfo import ArtifactInfo
from core.lineage.gitinfo import tags
from core.lineage.gto import Action, gto_events
from store import ArtifactRecord, Ledger, ReleaseNotFound, ReleaseRecord


def ledger_path(project: Project) -> Path:
    return project.ledger_path


def open_ledger(project: Project, *, read_only: bool) -> Ledger:
    """The project's ledger. A read-only open never creates the file; an older one is
    upgraded first unless the whole session is read-only (:func:`upgrade_ledger`). Either
    open first closes the runs a killed relman left ``running`` (core.ledger.runs); a
    read-only session writes nothing, not that either."""
    from core.ledger.runs import close_abandoned, open_runs

    if read_only:
        open_runs(project)  # upgrades an older ledger too
    # Readers never write an event, so they need no actor (and spare a git subprocess).
    actor = None if read_only else current_user(project.root)
    ledger = Ledger.open(ledger_path(project), readonly=read_only, actor=actor)
    if not read_only:
        try:
            close_abandoned(ledger)
        except BaseException:
            ledger.close()
            raise
    return ledger


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
    """Record the candidate as a release (idempotent: same content, same id, same record,
    whatever commit the tree is at now).

    Only a clean candidate is a release: a tree whose uncommitted changes touch what the
    release serves has no commit to build from. Other uncommitted files do not matter.
    """
    if candidate.dirty:
        files = ", ".join((candidate.dirty_files or candidate.git.dirty_files)[:3]) or (
            "the working tree"
        )
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
