"""Git facts about a working tree, read through the ``git`` CLI.

A subprocess per question is fast (a few milliseconds), behaves exactly like the git the user
runs, and needs no library that might disagree with it on shallow clones or worktrees.
"""

from __future__ import annotations

import os
import subprocess
from contextlib import AbstractContextManager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from core.errors import ProjectError
from core.lineage.thread_memo import ThreadMemo

if TYPE_CHECKING:
    from core.documents import GitDocument

__all__ = [
    "GitInfo",
    "TagRef",
    "commits_between",
    "git",
    "git_info",
    "is_git_repo",
    "shared_tags",
    "tags",
]

_SEP = "\x1f"  # unit separator: never appears in names, subjects or dates


@dataclass(frozen=True)
class GitInfo:
    """The commit a working tree sits on, and whether the tree differs from it."""

    commit: str
    short: str
    branch: str | None
    message: str
    author: str
    committed_at: str
    dirty: bool
    dirty_files: list[str] = field(default_factory=list)
    detached: bool = False
    shallow: bool = False

    def to_dict(self) -> GitDocument:
        """The candidate's ``git`` in the ``status`` document (docs/json.md)."""
        return {
            "commit": self.commit,
            "short": self.short,
            "branch": self.branch,
            "message": self.message,
            "author": self.author,
            "committed_at": self.committed_at,
            "dirty": self.dirty,
            "dirty_files": list(self.dirty_files),
            "detached": self.detached,
            "shallow": self.shallow,
        }


@dataclass(frozen=True)
class TagRef:
    """One git tag: its name, the commit it points at, and who made it when."""

    name: str
    commit: str
    # Empty for lightweight tags, which have no tagger.
    tagger: str = ""
    # ISO 8601; for a lightweight tag, the date of the commit it points at.
    date: str = ""
    annotated: bool = False

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _env() -> dict[str, str]:
    env = dict(os.environ)
    # Machine-readable output whatever the user's locale; never page, never prompt.
    env.update(LC_ALL="C", GIT_PAGER="cat", GIT_TERMINAL_PROMPT="0")
    return env


def git(root: Path, *args: str) -> str:
    """Run ``git -C root ARGS`` and return stdout; raise ProjectError with git's own message."""
    try:
        done = subprocess.run(
            ["git", "-C", str(root), *args],
            capture_output=True,
            text=True,
            env=_env(),
            check=False,
        )
    except FileNotFoundError as exc:
        raise ProjectError("git not found on PATH: install git to use relman") from exc
    if done.returncode != 0:
        lines = done.stderr.strip().splitlines()
        # git puts the cause on its "fatal:"/"error:" line; usage text may follow it.
        causes = [line for line in lines if line.startswith(("fatal:", "error:"))]
        reason = (causes or lines or [f"exit code {done.returncode}"])[0]
        if "not a git repository" in done.stderr:
            raise ProjectError(
                f"not a git repository: {root} (run 'git init' there, or pass --project)"
            )
        raise ProjectError(f"git {args[0] if args else ''} failed in {root}: {reason}")
    return done.stdout


def is_git_repo(root: Path) -> bool:
    try:
        git(root, "rev-parse", "--git-dir")
    except ProjectError:
        return False
    return True


def _status(root: Path) -> tuple[str | None, list[str]]:
    """(branch or None when detached, dirty paths) from one ``git status`` call."""
    out = git(root, "status", "--porcelain=v1", "--branch", "-z", "--untracked-files=all")
    branch: str | None = None
    files: list[str] = []
    entries = out.split("\0")
    i = 0
    while i < len(entries):
        entry = entries[i]
        i += 1
        if not entry:
            continue
        if entry.startswith("## "):
            head = entry[3:].split("...", 1)[0]
            if not head.startswith("HEAD (no branch)"):
                # "No commits yet on main" is caught earlier by git_info.
                branch = head
            continue
        code, path = entry[:2], entry[3:]
        files.append(path)
        if "R" in code or "C" in code:
            i += 1  # -z puts the source of a rename in the next field; the new path counts
    return branch, sorted(set(files))


def git_info(root: Path) -> GitInfo:
    """Commit, branch, subject, author and dirtiness of the tree at ``root``."""
    shallow_out = git(root, "rev-parse", "--is-shallow-repository")
    try:
        log = git(root, "log", "-1", f"--format=%H{_SEP}%h{_SEP}%s{_SEP}%an <%ae>{_SEP}%cI")
    except ProjectError as exc:
        raise ProjectError(
            f"no commit yet in {root}: commit the project once before asking what it releases"
        ) from exc
    commit, short, message, author, committed_at = log.rstrip("\n").split(_SEP)
    branch, files = _status(root)
    return GitInfo(
        commit=commit,
        short=short,
        branch=branch,
        message=message,
        author=author,
        committed_at=committed_at,
        dirty=bool(files),
        dirty_files=files,
        detached=branch is None,
        shallow=shallow_out.strip() == "true",
    )


def commits_between(root: Path, a: str, b: str) -> list[str]:
    """``git log a..b --oneline``: the commits in b and not in a, newest first."""
    out = git(root, "log", "--oneline", "--no-decorate", f"{a}..{b}")
    return [line for line in out.splitlines() if line]


_TAG_FORMAT = _SEP.join(
    [
        "%(refname:strip=2)",
        "%(objecttype)",
        # For an annotated tag, *objectname is the commit it peels to; empty otherwise.
        "%(*objectname)",
        "%(objectname)",
        "%(taggername) %(taggeremail)",
        "%(taggerdate:iso-strict)",
        "%(committerdate:iso-strict)",
    ]
)


# The tags read in a `shared_tags` block, per thread: {root: tags}.
_SHARED = ThreadMemo()


def shared_tags() -> AbstractContextManager[None]:
    """Within this block, :func:`tags` of this thread runs git once per repository and hands
    every later caller the same list: one reading that asks the tags more than once (the
    stages of a repository without relman.toml, then the versions they hold; the registry of
    `status`) sees one state of them and pays one subprocess. For blocks that only read: a
    promotion reads its tags fresh (``fresh=True``). Nested blocks are one block."""
    return _SHARED.block()


def tags(root: Path, *, fresh: bool = False) -> list[TagRef]:
    """Every tag of the repository with its commit, tagger and date, in one subprocess (in a
    :func:`shared_tags` block, once per repository, unless ``fresh``)."""
    shared: dict[Path, list[TagRef]] | None = None if fresh else _SHARED.current()
    key = Path(root).resolve() if shared is not None else Path(root)
    if shared is not None and key in shared:
        return list(shared[key])
    out = git(root, "for-each-ref", f"--format={_TAG_FORMAT}", "refs/tags")
    refs = []
    for line in out.splitlines():
        if not line:
            continue
        name, kind, peeled, obj, tagger, tag_date, commit_date = line.split(_SEP)
        annotated = kind == "tag"
        refs.append(
            TagRef(
                name=name,
                commit=peeled if annotated else obj,
                tagger=tagger.strip() if annotated else "",
                date=tag_date if annotated else commit_date,
                annotated=annotated,
            )
        )
    if shared is not None:
        shared[key] = refs
        return list(refs)
    return refs
