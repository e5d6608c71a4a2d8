"""Writing GTO tags for a promotion, on real repositories of a machine with no git identity."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from core.errors import EXIT_BLOCKED, BlockedError, InfraError
from core.lineage.gitinfo import TagRef, tags
from core.lineage.gto import current_stages, gto_events, plan_promotion_tags, write_promotion_tags

# Commits need an identity; the code under test must never rely on one.
_COMMITTER = ["-c", "user.name=Fixture", "-c", "user.email=fixture@example.invalid"]


def run_git(root: Path, *args: str) -> str:
    return subprocess.run(
        ["git", "-C", str(root), *args], check=True, capture_output=True, text=True
    ).stdout.strip()


@pytest.fixture
def repo(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A repository with two commits, on a machine without any git identity."""
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("GIT_CONFIG_GLOBAL", "/dev/null")
    monkeypatch.setenv("GIT_CONFIG_NOSYSTEM", "1")
    for name in ("NAME", "EMAIL"):
        for role in ("AUTHOR", "COMMITTER"):
            monkeypatch.delenv(f"GIT_{role}_{name}", raising=False)
    monkeypatch.delenv("EMAIL", raising=False)
    root = tmp_path / "repo"
    root.mkdir()
    run_git(root, "init", "-q", "-b", "main")
    for text in ("one", "two"):
        (root / "model.txt").write_text(text)
        run_git(root, "add", "model.txt")
        run_git(root, *_COMMITTER, "commit", "-q", "-m", text)
    return root


def commits(root: Path) -> tuple[str, str]:
    first, second = run_git(root, "rev-list", "--reverse", "HEAD").split()
    return first, second


def stages(root: Path) -> dict[str, dict[str, str]]:
    events, warnings = gto_events(tags(root))
    assert warnings == []
    return current_stages(events)


def test_first_promotion_registers_then_assigns_with_annotated_gto_tags(repo: Path) -> None:
    c1, _ = commits(repo)

    created = write_promotion_tags(repo, "clf", "1.0.0", "dev", c1)

    assert created == ["clf@v1.0.0", "clf#dev#1"]
    refs = {ref.name: ref for ref in tags(repo)}
    assert all(ref.annotated and ref.commit == c1 for ref in refs.values())
    assert refs["clf#dev#1"].tagger == "relman <relman@localhost>"
    assert run_git(repo, "tag", "-l", "--format=%(contents:subject)", "clf@v1.0.0") == (
        "Registering artifact clf version v1.0.0"
    )
    assert run_git(repo, "tag", "-l", "--format=%(contents:subject)", "clf#dev#1") == (
        "Assigning stage dev to artifact clf version v1.0.0"
    )
    assert stages(repo) == {"clf": {"dev": "v1.0.0"}}
    # The identity was passed on the command line, never written to a config file.
    assert "user." not in (repo / ".git" / "config").read_text()
    assert not (repo.parent / "home" / ".gitconfig").exists()


def test_counter_increments_across_stages_versions_and_rollback(repo: Path) -> None:
    c1, c2 = commits(repo)

    assert write_promotion_tags(repo, "clf", "v1.0.0", "dev", c1) == ["clf@v1.0.0", "clf#dev#1"]
    # Same version again: registered already at this commit, only the stage tag is new.
    assert write_promotion_tags(repo, "clf", "v1.0.0", "staging", c1) == ["clf#staging#2"]
    # Another artifact keeps its own counter.
    assert write_promotion_tags(repo, "iris", "v0.1.0", "dev", c1) == [
        "iris@v0.1.0",
        "iris#dev#1",
    ]
    assert write_promotion_tags(repo, "clf", "v1.1.0", "dev", c2) == ["clf@v1.1.0", "clf#dev#3"]
    assert stages(repo)["clf"] == {"dev": "v1.1.0", "staging": "v1.0.0"}

    # Rollback: dev back to the version registered at the first commit.
    assert write_promotion_tags(repo, "clf", "v1.0.0", "dev", c1) == ["clf#dev#4"]
    assert stages(repo) == {
        "clf": {"dev": "v1.0.0", "staging": "v1.0.0"},
        "iris": {"dev": "v0.1.0"},
    }


def test_a_retry_creates_nothing_twice(repo: Path) -> None:
    c1, _ = commits(repo)
    write_promotion_tags(repo, "clf", "v1.0.0", "dev", c1[:7])  # a short hash resolves

    assert write_promotion_tags(repo, "clf", "v1.0.0", "dev", c1) == []
    assert sorted(ref.name for ref in tags(repo)) == ["clf#dev#1", "clf@v1.0.0"]


def test_a_stale_tag_list_is_planned_again_not_failed(repo: Path) -> None:
    c1, _ = commits(repo)
    write_promotion_tags(repo, "clf", "v1.0.0", "dev", c1)

    # The caller read the tags before another promotion wrote clf@v1.0.0 and clf#dev#1.
    created = write_promotion_tags(repo, "clf", "v1.0.0", "staging", c1, existing=[])

    assert created == ["clf#staging#2"]


def test_version_registered_at_another_commit_blocks_with_one_line(repo: Path) -> None:
    c1, c2 = commits(repo)
    write_promotion_tags(repo, "clf", "v1.0.0", "dev", c1)
    before = sorted(ref.name for ref in tags(repo))

    with pytest.raises(BlockedError) as caught:
        write_promotion_tags(repo, "clf", "v1.0.0", "staging", c2)

    assert caught.value.exit_code == EXIT_BLOCKED
    message = str(caught.value)
    assert "\n" not in message
    assert "'clf@v1.0.0' already registers v1.0.0 at commit " + c1[:7] in message
    assert sorted(ref.name for ref in tags(repo)) == before


def test_commit_registered_under_another_version_blocks(repo: Path) -> None:
    c1, _ = commits(repo)
    write_promotion_tags(repo, "clf", "v1.0.0", "dev", c1)

    with pytest.raises(BlockedError, match=r"already registered as v1\.0\.0 .* not v2\.0\.0"):
        write_promotion_tags(repo, "clf", "v2.0.0", "dev", c1)


def test_plan_is_pure_and_matches_what_is_written(repo: Path) -> None:
    c1, c2 = commits(repo)
    write_promotion_tags(repo, "clf", "v1.0.0", "dev", c1)
    refs = tags(repo)

    assert plan_promotion_tags(refs, "clf", "v1.1.0", "dev", c2) == ["clf@v1.1.0", "clf#dev#2"]
    assert plan_promotion_tags(refs, "clf", "v1.0.0", "dev", c1) == []
    assert write_promotion_tags(repo, "clf", "v1.1.0", "dev", c2, existing=refs) == [
        "clf@v1.1.0",
        "clf#dev#2",
    ]


def test_deregistered_version_name_is_not_reused() -> None:
    c1 = "1" * 40
    refs = [
        TagRef("clf@v1.0.0", c1, "T <t@x>", "2024-01-01T00:00:00Z", True),
        TagRef("clf@v1.0.0!#1", c1, "T <t@x>", "2024-01-02T00:00:00Z", True),
    ]

    with pytest.raises(BlockedError, match="was deregistered or deprecated"):
        plan_promotion_tags(refs, "clf", "v1.0.0", "dev", "2" * 40)


def test_identity_actor_or_the_repository_config(repo: Path) -> None:
    c1, c2 = commits(repo)

    write_promotion_tags(repo, "clf", "v1.0.0", "dev", c1, actor="ada@example.invalid")
    write_promotion_tags(repo, "iris", "v1.0.0", "dev", c1, actor="ada")
    run_git(repo, "config", "user.name", "Grace")
    run_git(repo, "config", "user.email", "grace@example.invalid")
    write_promotion_tags(repo, "clf", "v1.1.0", "dev", c2, actor="ignored@example.invalid")

    taggers = {ref.name: ref.tagger for ref in tags(repo)}
    assert taggers["clf#dev#1"] == "relman <ada@example.invalid>"
    assert taggers["iris#dev#1"] == "relman <ada@localhost>"
    assert taggers["clf#dev#2"] == "Grace <grace@example.invalid>"


def test_git_failures_are_infra_errors_of_one_line(repo: Path, tmp_path: Path) -> None:
    with pytest.raises(InfraError, match=r"commit 0{12} not found in .*: fetch it"):
        write_promotion_tags(repo, "clf", "v1.0.0", "dev", "0" * 40)
    plain = tmp_path / "plain"
    plain.mkdir()
    with pytest.raises(InfraError, match="not a git repository") as caught:
        write_promotion_tags(plain, "clf", "v1.0.0", "dev", "HEAD")
    assert "\n" not in str(caught.value)


def test_gto_itself_reads_the_tags(repo: Path) -> None:
    gto_api = pytest.importorskip("gto.api")
    c1, c2 = commits(repo)
    write_promotion_tags(repo, "clf", "v1.0.0", "dev", c1)
    write_promotion_tags(repo, "clf", "v1.0.0", "prod", c1)
    write_promotion_tags(repo, "clf", "v1.1.0", "dev", c2)

    dev = gto_api.find_versions_in_stage(str(repo), "clf", "dev")
    prod = gto_api.find_versions_in_stage(str(repo), "clf", "prod")

    assert [(v.version, v.assignments[-1].tag) for v in dev] == [("v1.1.0", "clf#dev#3")]
    assert [(v.version, v.assignments[-1].tag) for v in prod] == [("v1.0.0", "clf#prod#2")]
    assert dev[0].assignments[-1].author_email == "relman@localhost"
    assert dev[0].assignments[-1].message == "Assigning stage dev to artifact clf version v1.1.0"
