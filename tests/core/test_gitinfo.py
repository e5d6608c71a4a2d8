"""Git facts through the git CLI, on throwaway repositories without DVC."""

from __future__ import annotations

from pathlib import Path

import pytest

from core.errors import ProjectError
from core.lineage.gitinfo import (
    Asked,
    GitCall,
    commits_between,
    git,
    git_info,
    is_git_repo,
    shared_tags,
    tags,
)


@pytest.fixture
def repo(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.setenv("GIT_CONFIG_GLOBAL", str(tmp_path / "gitconfig"))
    monkeypatch.setenv("GIT_CONFIG_NOSYSTEM", "1")
    for role in ("AUTHOR", "COMMITTER"):
        monkeypatch.setenv(f"GIT_{role}_NAME", "Ada Lovelace")
        monkeypatch.setenv(f"GIT_{role}_EMAIL", "ada@example.invalid")
    root = tmp_path / "repo"
    root.mkdir()
    git(root, "init", "-q", "-b", "main")
    (root / "a.txt").write_text("a\n")
    git(root, "add", "a.txt")
    git(root, "commit", "-q", "-m", "first commit", "-m", "body is not the subject")
    return root


def test_clean_repository(repo: Path) -> None:
    info = git_info(repo)

    assert info.commit == git(repo, "rev-parse", "HEAD").strip()
    assert info.short == info.commit[:7]
    assert (info.branch, info.message) == ("main", "first commit")
    assert info.author == "Ada Lovelace <ada@example.invalid>"
    assert (info.dirty, info.dirty_files, info.detached, info.shallow) == (False, [], False, False)
    assert info.committed_at[:2] == "20"


def test_dirty_files_include_modified_untracked_and_renamed(repo: Path) -> None:
    (repo / "a.txt").write_text("changed\n")
    (repo / "new dir").mkdir()
    (repo / "new dir" / "b.txt").write_text("b\n")
    (repo / "c.txt").write_text("c\n")
    git(repo, "add", "c.txt")
    git(repo, "commit", "-q", "-m", "c")
    git(repo, "mv", "c.txt", "d.txt")

    info = git_info(repo)

    assert info.dirty
    assert info.dirty_files == ["a.txt", "d.txt", "new dir/b.txt"]


def test_detached_head(repo: Path) -> None:
    git(repo, "checkout", "-q", "--detach")

    info = git_info(repo)

    assert (info.branch, info.detached) == (None, True)


def test_not_a_repository_is_one_line(tmp_path: Path) -> None:
    assert not is_git_repo(tmp_path)
    with pytest.raises(ProjectError, match=r"^not a git repository: \S+ \(run 'git init'"):
        git_info(tmp_path)


def test_no_commit_yet(tmp_path: Path) -> None:
    git(tmp_path, "init", "-q")

    with pytest.raises(ProjectError, match=r"^no commit yet"):
        git_info(tmp_path)


def test_commits_between(repo: Path) -> None:
    first = git(repo, "rev-parse", "HEAD").strip()
    for n in (2, 3):
        git(repo, "commit", "-q", "--allow-empty", "-m", f"commit {n}")

    lines = commits_between(repo, first, "HEAD")

    assert [line.split(" ", 1)[1] for line in lines] == ["commit 3", "commit 2"]
    assert commits_between(repo, "HEAD", "HEAD") == []


def test_tags_annotated_and_lightweight(repo: Path) -> None:
    head = git(repo, "rev-parse", "HEAD").strip()
    git(repo, "tag", "-a", "clf@v1.0.0", "-m", "register")
    git(repo, "tag", "light")

    found = {t.name: t for t in tags(repo)}

    assert found["clf@v1.0.0"].commit == head  # the commit, not the tag object
    assert found["clf@v1.0.0"].annotated
    assert found["clf@v1.0.0"].tagger == "Ada Lovelace <ada@example.invalid>"
    assert found["clf@v1.0.0"].date[:2] == "20"
    assert (found["light"].commit, found["light"].annotated, found["light"].tagger) == (
        head,
        False,
        "",
    )
    assert found["light"].date  # the commit's date stands in


def test_a_failing_git_command_says_what_failed(repo: Path) -> None:
    with pytest.raises(ProjectError, match=r"^git log failed in .*: fatal: "):
        git(repo, "log", "no-such-rev")


def test_a_shared_block_reads_the_tags_once_and_a_promotion_reads_them_fresh(
    repo: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from core.lineage import gitinfo

    git(repo, "tag", "-a", "clf@v1.0.0", "-m", "register")
    asked: list[tuple[str, ...]] = []
    real_git = gitinfo.git

    def counted(root: Path, *args: str) -> str:
        asked.append(args[:1])
        return real_git(root, *args)

    monkeypatch.setattr(gitinfo, "git", counted)
    with shared_tags():
        first = tags(repo)
        git(repo, "tag", "-a", "clf#dev", "-m", "assign")  # after the block read them
        with shared_tags():  # nested: the same block
            again = tags(repo / ".")
        fresh = tags(repo, fresh=True)
    assert asked == [("for-each-ref",), ("for-each-ref",)]
    assert [t.name for t in first] == [t.name for t in again] == ["clf@v1.0.0"]
    assert sorted(t.name for t in fresh) == ["clf#dev", "clf@v1.0.0"]
    # Outside a block, every call runs git: the new tag is seen.
    assert sorted(t.name for t in tags(repo)) == ["clf#dev", "clf@v1.0.0"]
    assert len(asked) == 3


def test_questions_asked_at_once_answer_in_order_and_none_is_left_running(repo: Path) -> None:
    calls = [GitCall(repo, "log", "no-such-rev"), GitCall(repo, "rev-parse", "HEAD")]
    asked = Asked(calls, lambda answers: [answer.output() for answer in answers])
    with pytest.raises(ProjectError, match=r"^git log failed"):  # the first asked, first
        asked.result()
    assert all(call._process is not None and call._process.returncode == 0 for call in calls[1:])
    both = Asked(
        [GitCall(repo, "rev-parse", "--is-shallow-repository"), GitCall(repo, "log", "-1")],
        lambda answers: [answer.output() for answer in answers],
    )
    shallow, log = both.result()
    assert shallow == "false\n" and "first commit" in log
