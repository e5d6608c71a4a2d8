"""Git facts about a working tree, read through the ``git`` CLI.

A subprocess per question is fast (a few milliseconds), behaves exactly like the git the user
runs, and needs no library that might disagree with it on shallow clones or worktrees.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Generic, TypeVar

from core.errors import ProjectError
from core.lineage.thread_memo import ThreadMemo

if TYPE_CHECKING:
    from core.documents import GitDocument

__all__ = [
    "Asked",
    "GitCall",
    "GitInfo",
    "TagRef",
    "ask_git_info",
    "commits_between",
    "git",
    "git_info",
    "is_git_repo",
    "shared_tags",
    "tags",
]

T = TypeVar("T")

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
    return GitCall(root, *args).output()


class GitCall:
    """``git -C root ARGS``, started at once; :meth:`output` waits for it. Several questions
    asked this way run side by side (each git its own process, on its own core), and the
    caller takes their answers in the order it would have asked them."""

    def __init__(self, root: Path, *args: str) -> None:
        self.root, self.args = root, args
        self._missing: FileNotFoundError | None = None
        self._process: subprocess.Popen[str] | None = None
        try:
            self._process = subprocess.Popen(
                ["git", "-C", str(root), *args],
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
                env=_env(),
            )
        except FileNotFoundError as exc:
            self._missing = exc

    def output(self) -> str:
        """git's stdout; ProjectError with git's own message when it failed."""
        if self._process is None:
            raise ProjectError("git not found on PATH: install git to use relman") from (
                self._missing
            )
        stdout, stderr = self._process.communicate()
        if self._process.returncode != 0:
            lines = stderr.strip().splitlines()
            # git puts the cause on its "fatal:"/"error:" line; usage text may follow it.
            causes = [line for line in lines if line.startswith(("fatal:", "error:"))]
            reason = (causes or lines or [f"exit code {self._process.returncode}"])[0]
            if "not a git repository" in stderr:
                raise ProjectError(
                    f"not a git repository: {self.root} (run 'git init' there, or pass --project)"
                )
            args = self.args
            raise ProjectError(f"git {args[0] if args else ''} failed in {self.root}: {reason}")
        return stdout

    def close(self) -> None:
        """Wait for git, its answer unread (another question failed first)."""
        if self._process is not None and self._process.returncode is None:
            self._process.communicate()


class Asked(Generic[T]):
    """Git questions asked at once (:class:`GitCall`), and how their answers make a ``T``:
    :meth:`result` waits for them and raises the first error in the order they were asked."""

    def __init__(self, calls: list[GitCall], make: Callable[[list[GitCall]], T]) -> None:
        self._calls, self._make = calls, make

    def result(self) -> T:
        try:
            return self._make(self._calls)
        finally:
            self.close()

    def close(self) -> None:
        for call in self._calls:
            call.close()


def is_git_repo(root: Path) -> bool:
    try:
        git(root, "rev-parse", "--git-dir")
    except ProjectError:
        return False
    return True


def _status(out: str) -> tuple[str | None, list[str]]:
    """(branch or None when detached, dirty paths) from one ``git status`` call's output."""
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
    return ask_git_info(root).result()


def ask_git_info(root: Path) -> Asked[GitInfo]:
    """:func:`git_info`'s three questions, asked at once."""
    calls = [
        GitCall(root, "rev-parse", "--is-shallow-repository"),
        GitCall(root, "log", "-1", f"--format=%H{_SEP}%h{_SEP}%s{_SEP}%an <%ae>{_SEP}%cI"),
        GitCall(root, "status", "--porcelain=v1", "--branch", "-z", "--untracked-files=all"),
    ]
    return Asked(calls, lambda answers: _git_info(root, *answers))


def _git_info(root: Path, shallow: GitCall, last: GitCall, status: GitCall) -> GitInfo:
    shallow_out = shallow.output()
    try:
        log = last.output()
    except ProjectError as exc:
        raise ProjectError(
            f"no commit yet in {root}: commit the project once before asking what it releases"
        ) from exc
    commit, short, message, author, committed_at = log.rstrip("\n").split(_SEP)
    branch, files = _status(status.output())
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
