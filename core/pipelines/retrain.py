"""Retraining: the DVC stages behind a service's model reproduced, then committed and pushed.

:func:`repro` runs DVC's ``Repo.reproduce`` on the stages of
:func:`~core.pipelines.stage_scope.stage_scope` in a child process
(:mod:`core.pipelines.dvc_child`: DVC's Python API, never the ``dvc`` command), with the
project's interpreter first on ``PATH`` for the stage commands; their output and DVC's log
are drained, bounded and kept, never printed. :func:`commit_and_push` commits what DVC
records for those stages and nothing else, under the pipeline's name with
``Relman-Pipeline-Run`` as a git trailer (a resumed run finds its commit instead of making a
second), and pushes their data and model to the default DVC remote.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from core.errors import BlockedError, InfraError, ProjectError
from core.lineage.gitinfo import git
from core.pipelines.dvc_process import DvcChild
from core.pipelines.stage_scope import StageScope, stage_scope

if TYPE_CHECKING:
    from core.cancel import CancelSignal
    from core.config.model import Project

__all__ = [
    "PIPELINE_TRAILER",
    "RUN_TRAILER",
    "CommitResult",
    "ReproResult",
    "StageFailed",
    "commit_and_push",
    "commits_of_run",
    "repro",
]

Log = Callable[[str], None]

RUN_TRAILER = "Relman-Pipeline-Run"
PIPELINE_TRAILER = "Relman-Pipeline"
# The identity of a pipeline's commits where the repository has none configured.
FALLBACK_EMAIL = "relman@localhost"
# How far back a resumed run looks for the commit it made before it was killed.
REUSE_DEPTH = 20
# Wide enough for a data change's reason (md5s and rows) after `retrain SERVICE: `;
# the whole reason is in the body whatever its length.
SUBJECT_WIDTH = 100


def _ignore(_line: str) -> None:
    return None


# ---------------------------------------------------------------------------------- results


@dataclass(frozen=True)
class ReproResult:
    """What ``repro`` did: the stages DVC ran, in order (none: all were up to date)."""

    stages: list[str]
    detail: str
    # Output lines worth keeping: DVC's log and the stage commands' output, the last 200.
    lines: list[str]


@dataclass(frozen=True)
class CommitResult:
    """What ``commit`` did: the commit made (or found, on a resume) and what was pushed."""

    commit: str | None  # None: nothing to commit, the records were already at HEAD
    pushed: list[str]  # ["3 files to remote 'storage'"]; [] when no DVC remote is set
    detail: str
    reused: bool  # the run's commit was already on the branch (a resume after a crash)


class StageFailed(BlockedError):
    """A stage's command failed (exit 1); ``lines`` are the output kept up to then."""

    def __init__(self, message: str, *, stage: str, lines: list[str]) -> None:
        super().__init__(message)
        self.stage = stage
        self.lines = list(lines)


# -------------------------------------------------------------------------------- reproduce


def repro(
    project: Project,
    service: str,
    *,
    log: Log = _ignore,
    cancel: CancelSignal | None = None,
) -> ReproResult:
    """Reproduce the stages of :func:`stage_scope` that changed, through DVC's Python API.

    Raises :class:`StageFailed` (a BlockedError) naming the stage whose command failed,
    :class:`~core.cancel.Cancelled` when ``cancel`` is set (the child and its stage command
    are stopped at once; the stages done so far stay recorded in dvc.lock), BlockedError when
    another DVC process holds the repository, InfraError when DVC itself fails.
    """
    scope = stage_scope(project, service)
    log(f"repro {service}: {', '.join(scope.stages)}")
    started = time.monotonic()
    with _python_first_on_path(project.python()) as path:
        child = DvcChild(project.root, {"action": "repro", "targets": scope.targets}, log)
        child.run({"PATH": path}, cancel, "repro")
    seconds = time.monotonic() - started
    failed = child.last("failed")
    if failed is not None:
        stage = failed["stage"]
        # The command's last line says why it failed; when DVC failed after it (an output
        # the command did not write), DVC's reason does.
        said = child.stage_error(stage) if failed.get("command") else None
        why = said or failed.get("error") or "no reason given"
        raise StageFailed(
            f"repro: stage {stage} failed: {why}", stage=stage, lines=list(child.lines)
        )
    child.raise_error("repro")
    done = child.last("done")
    ran = list(done["stages"]) if done else []
    planned = [event["stage"] for event in child.events if event["event"] == "start"]
    if ran:
        detail = f"ran {', '.join(ran)} ({seconds:.1f} s)"
    else:
        detail = f"up to date: {', '.join(planned or scope.stages)}"
    log(f"repro {service}: {detail}")
    return ReproResult(stages=ran, detail=detail, lines=list(child.lines))


@contextlib.contextmanager
def _python_first_on_path(python: str) -> Iterator[str]:
    """A PATH on which ``python`` is the project's interpreter, as stage commands call it.

    Its folder comes first; where that folder's ``python`` is another interpreter (or none, as
    beside a bare ``python3``), a two-line shell shim stands in: a symlink would not do, as a
    venv's interpreter finds its packages through its own path.
    """
    folder = Path(python).parent
    named = folder / "python"
    shim: Path | None = None
    if not named.is_file() or os.path.realpath(named) != os.path.realpath(python):
        shim = Path(tempfile.mkdtemp(prefix="relman-python-"))
        script = shim / "python"
        script.write_text(f'#!/bin/sh\nexec "{python}" "$@"\n', encoding="utf-8")
        script.chmod(0o755)
        folder = shim
    try:
        yield os.pathsep.join(filter(None, [str(folder), os.environ.get("PATH", "")]))
    finally:
        if shim is not None:
            shutil.rmtree(shim, ignore_errors=True)


# ------------------------------------------------------------------------- commit and push


def commit_and_push(
    project: Project,
    service: str,
    *,
    pipeline: str,
    run_id: int,
    reason: str,
    log: Log = _ignore,
    cancel: CancelSignal | None = None,
    since: str = "",
) -> CommitResult:
    """Commit what DVC records for the service's stages and push their data to the remote.

    Staged: the dvc.lock and .dvc files of :func:`stage_scope`, the outputs git keeps
    (metrics, plots) and the params files; any other dirty file is left as it is. A commit of
    ``run_id`` already among the last 20 of the branch is reused, not made again; ``since``
    (the commit the run started from) narrows that to the commits after it, so a run of the
    same number in another ledger (another machine, a CI job) is never taken for this one.
    Raises
    BlockedError when code or a dvc.yaml the stages use has uncommitted changes (the commit
    would record a model trained on them), InfraError when git or the DVC remote fails.
    """
    root = project.root
    scope = stage_scope(project, service)
    found = _run_commits(root, run_id, REUSE_DEPTH, since=since)
    subject = _subject(service, reason)
    where = f"(pipeline {pipeline}, run {run_id})"
    commit: str | None
    if found:
        commit = found[0]
        log(f"commit {commit[:8]} of run {run_id} is already on the branch: not committing again")
        done = f"commit {commit[:8]} of run {run_id} already made: {subject}"
    else:
        commit = _commit(root, scope, pipeline, run_id, service, reason, log)
        done = (
            f"committed {commit[:8]}: {subject} {where}"
            if commit
            else "nothing to commit: what DVC records for the stages is as at HEAD"
        )
    pushed = _push(root, scope, log, cancel)
    pushed_line = f"pushed {', '.join(pushed)}" if pushed else "no DVC remote: nothing pushed"
    return CommitResult(
        commit=commit, pushed=pushed, detail=f"{done}; {pushed_line}", reused=bool(found)
    )


def commits_of_run(root: Path, run_id: int) -> list[str]:
    """The commits of the current branch's history that carry ``Relman-Pipeline-Run: ID``,
    newest first."""
    return _run_commits(root, run_id, None)


def _run_commits(root: Path, run_id: int, depth: int | None, *, since: str = "") -> list[str]:
    fmt = f"--format=%H%x1f%(trailers:key={RUN_TRAILER},valueonly,separator=%x1f)%x1e"
    args = ["log", fmt]
    if since:
        args.append(f"{since}..HEAD")
    if depth is None:
        args.append(f"--grep=^{RUN_TRAILER}: {run_id}$")
    else:
        args.append(f"-{depth}")
    found = []
    for record in git(root, *args).split("\x1e"):
        sha, *values = record.strip().split("\x1f")
        if sha and str(run_id) in {value.strip() for value in values}:
            found.append(sha)
    return found


def _subject(service: str, reason: str) -> str:
    subject = " ".join(f"retrain {service}: {reason}".split())
    if len(subject) <= SUBJECT_WIDTH:
        return subject
    cut = subject[: SUBJECT_WIDTH - 3].rsplit(" ", 1)[0]
    return cut.rstrip(",;:") + "..."


def _message(service: str, pipeline: str, run_id: int, reason: str) -> str:
    why = " ".join(reason.split()) or "no reason given"
    return (
        f"{_subject(service, reason)}\n\n"
        f"Pipeline {pipeline}, run {run_id}, retrained the model of {service} with the DVC "
        f"stages upstream of it.\nWhy: {why}\n\n"
        f"{PIPELINE_TRAILER}: {pipeline}\n{RUN_TRAILER}: {run_id}\n"
    )


def _commit(
    root: Path,
    scope: StageScope,
    pipeline: str,
    run_id: int,
    service: str,
    reason: str,
    log: Log,
) -> str | None:
    """Commit the scope's records; the new sha, or None when none of them changed."""
    changed = _dirty(root, scope.records + scope.git_outputs + scope.params)
    if not changed:
        return None
    unrecorded = _dirty(root, scope.pipelines + scope.sources)
    if unrecorded:
        raise BlockedError(
            f"commit: {unrecorded[0]} has uncommitted changes and the retrained model depends "
            f"on it; commit it (or undo it) in {root}, then run the pipeline again"
        )
    config, author = _identity(root, pipeline)
    log(f"git commit {', '.join(changed)}")
    _git(root, "add", "--", *changed)
    _git(
        root,
        "commit",
        "--quiet",
        "--no-verify",
        "--only",
        f"--author={author}",
        "--file=-",
        "--",
        *changed,
        config=config,
        stdin=_message(service, pipeline, run_id, reason),
    )
    return git(root, "rev-parse", "HEAD").strip()


def _dirty(root: Path, paths: list[str]) -> list[str]:
    """Which of ``paths`` (or files under them) git sees changed, added or deleted."""
    if not paths:
        return []  # no pathspec would mean the whole tree
    out = git(
        root, "status", "--porcelain=v1", "-z", "--untracked-files=all", "--no-renames",
        "--", *paths,
    )  # fmt: skip
    prefix = git(root, "rev-parse", "--show-prefix").strip()
    found = []
    for entry in out.split("\0"):
        if len(entry) > 3:
            path = entry[3:]
            found.append(path[len(prefix) :] if prefix and path.startswith(prefix) else path)
    return sorted(set(found))


def _identity(root: Path, pipeline: str) -> tuple[list[str], str]:
    """``-c`` options and the author: the pipeline, with the configured email; where git has
    no identity configured (a fresh machine, a CI runner), the pipeline commits too."""
    name = f"relman pipeline {pipeline}"
    try:
        ident = git(root, "-c", "user.useConfigOnly=true", "var", "GIT_COMMITTER_IDENT")
    except ProjectError:
        return ["-c", f"user.name={name}", "-c", f"user.email={FALLBACK_EMAIL}"], (
            f"{name} <{FALLBACK_EMAIL}>"
        )
    email = ident.split("<", 1)[-1].split(">", 1)[0].strip() or FALLBACK_EMAIL
    return [], f"{name} <{email}>"


def _git(root: Path, *args: str, config: Sequence[str] = (), stdin: str | None = None) -> str:
    """A git command that changes the repository; InfraError with git's reason if it fails.
    The user's commit signing has no business in a pipeline's commit."""
    env = {**os.environ, "LC_ALL": "C", "GIT_TERMINAL_PROMPT": "0"}
    done = subprocess.run(
        ["git", "-C", str(root), "-c", "commit.gpgsign=false", *config, *args],
        input=stdin,
        capture_output=True,
        text=True,
        env=env,
        check=False,
    )
    if done.returncode != 0:
        lines = done.stderr.strip().splitlines() or [f"exit code {done.returncode}"]
        causes = [line for line in lines if line.startswith(("fatal:", "error:"))]
        raise InfraError(f"commit: git {args[0]} failed in {root}: {(causes or lines)[0]}")
    return done.stdout


def _push(root: Path, scope: StageScope, log: Log, cancel: CancelSignal | None) -> list[str]:
    """Push the outputs of the scope's stages to the default DVC remote; [] without one."""
    child = DvcChild(root, {"action": "push", "targets": scope.stages}, log)
    child.run({}, cancel, "push")
    error = child.last("error")
    if error is not None or child.returncode != 0:
        reason = (error or {}).get("error") or (child.lines[-1] if child.lines else "no reason")
        raise InfraError(
            f"push: the DVC remote failed from {root}: {reason}; fix the remote, then resume "
            "the run (the commit is kept)"
        )
    pushed = child.last("pushed")
    if pushed is None or not pushed.get("remote"):
        return []
    count = int(pushed.get("count") or 0)
    return [f"{count} file{'' if count == 1 else 's'} to remote '{pushed['remote']}'"]
