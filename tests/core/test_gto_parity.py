"""relman reads a GTO registry as GTO 1.10 itself does.

Every repository here is real git whose registry tags ``gto.api`` wrote (annotated, with
GTO's messages and counters); after each step relman's reading (``gto_events``,
``registry_state``, ``current_stages``: what ``relman status`` and ``relman history`` show)
is compared with ``gto.api.show`` and ``gto.api.history``. Tags GTO refuses to write, put
there by hand, are skipped by relman with one warning line each.

GTO dates a tag to the second, and orders tags of the same second its own arbitrary way,
so each GTO call here runs at a clock of its own, one minute apart, in time zones that make
the tags' local times disagree with their order (see ``Registry.gto``).
"""

from __future__ import annotations

import itertools
import os
import re
import subprocess
import types
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from dvc.repo import Repo

from core.lineage.dvcinfo import declared_artifacts, open_dvc
from core.lineage.gitinfo import tags
from core.lineage.gto import (
    Action,
    GtoEvent,
    current_stages,
    gto_events,
    registry_state,
)

gto_api = pytest.importorskip("gto.api")
gto_exceptions = pytest.importorskip("gto.exceptions")
dulwich_tag = pytest.importorskip("dulwich.porcelain.tag")

# gto history's names of the events, and its order of events of the same second
KIND = {
    Action.DEPRECATE: "deprecation",
    Action.REGISTER: "registration",
    Action.DEREGISTER: "deregistration",
    Action.ASSIGN: "assignment",
    Action.UNASSIGN: "unassignment",
}
PRIORITY = {kind: n for n, kind in enumerate(KIND.values())}
ZONES = [timezone(timedelta(hours=5)), timezone(timedelta(hours=-7)), UTC]


def run_git(root: Path, *args: str, **env: str) -> str:
    done = subprocess.run(
        ["git", *args],
        cwd=root,
        capture_output=True,
        text=True,
        check=True,
        env={**os.environ, **env},
    )
    return done.stdout.strip()


class Registry:
    """A git repository with a few commits, whose tags GTO writes at a clock of our own."""

    def __init__(self, root: Path, monkeypatch: pytest.MonkeyPatch, commits: int = 4) -> None:
        self.root = root
        self.monkeypatch = monkeypatch
        self.clock = datetime(2024, 6, 1, tzinfo=UTC)
        self.zones = itertools.cycle(ZONES)
        root.mkdir()
        run_git(root, "init", "-q", "-b", "main")
        run_git(root, "config", "user.name", "Registry Keeper")
        run_git(root, "config", "user.email", "keeper@example.invalid")
        nested = root / "models" / "nested"
        nested.mkdir(parents=True)
        # Two models named clf; DVC and GTO name the nested dvc.yaml's one "models/nested:clf".
        declared = "artifacts:\n  clf:\n    path: model.pkl\n    type: model\n"
        (root / "dvc.yaml").write_text(declared)
        (nested / "dvc.yaml").write_text(declared)
        self.commits: list[str] = []
        for n in range(commits):
            (root / "params.yaml").write_text(f"step: {n}\n")
            run_git(root, "add", "-A")
            date = f"2024-01-{n + 1:02d}T12:00:00+00:00"
            run_git(
                root, "commit", "-qm", f"step {n}", GIT_AUTHOR_DATE=date, GIT_COMMITTER_DATE=date
            )
            self.commits.append(run_git(root, "rev-parse", "HEAD"))
        # GTO's tag backends: pygit2 gives up when GIT_COMMITTER_DATE is set, git itself
        # honours it, dulwich takes the zone from it and the time from time.time().
        monkeypatch.setattr(
            dulwich_tag, "time", types.SimpleNamespace(time=lambda: self.clock.timestamp())
        )

    def tick(self) -> str:
        self.clock = (self.clock + timedelta(minutes=1)).astimezone(next(self.zones))
        date = self.clock.isoformat()
        self.monkeypatch.setenv("GIT_COMMITTER_DATE", date)
        return date

    def tag_dates(self) -> dict[str, datetime]:
        out = run_git(
            self.root, "for-each-ref", "--format=%(refname:strip=2) %(taggerdate:iso-strict)"
        )
        return {
            name: datetime.fromisoformat(date)
            for name, _, date in (line.partition(" ") for line in out.splitlines())
            if date
        }

    def gto(self, operation: str, *args: Any, **kwargs: Any) -> list[str]:
        """Run ``gto.api.<operation>`` at the next minute; return the tags it created."""
        before = set(self.tag_dates())
        self.tick()
        getattr(gto_api, operation)(str(self.root), *args, **kwargs)
        made = {name: date for name, date in self.tag_dates().items() if name not in before}
        assert made, f"gto {operation} created no tag"
        # The clock reached GTO's tags, whichever backend wrote them.
        assert set(made.values()) == {self.clock}, made
        return sorted(made)

    def hand_tag(self, name: str, commit: str, *, annotated: bool = True) -> None:
        date = self.tick()
        kind = ["-a", "-m", "by hand"] if annotated else []
        run_git(self.root, "tag", *kind, name, commit, GIT_COMMITTER_DATE=date)


@pytest.fixture
def registry(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Registry:
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("GIT_CONFIG_GLOBAL", str(home / ".gitconfig"))
    for name in [name for name in os.environ if name.startswith("GTO_")]:
        monkeypatch.delenv(name)
    # The tagger is the repository's identity, not the suite's.
    for name in ("GIT_COMMITTER_NAME", "GIT_COMMITTER_EMAIL"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.chdir(tmp_path)  # GTO also looks for a .gto config in the current folder
    return Registry(tmp_path / "repo", monkeypatch)


def history_rows(events: list[GtoEvent]) -> list[tuple[Any, ...]]:
    return [
        (
            datetime.fromisoformat(event.date).astimezone(UTC),
            KIND[event.action],
            event.artifact,
            event.resolved_version,
            event.stage,
            event.commit[:7],
            event.tag,
            event.tagger,
        )
        for event in events
    ]


def gto_history_rows(root: Path) -> list[tuple[Any, ...]]:
    return [
        (
            row["timestamp"].astimezone(UTC),
            row["event"],
            row["artifact"],
            row["version"],
            row["stage"],
            row["commit"],
            row["ref"],
            f"{row['author']} <{row['author_email']}>",
        )
        for row in gto_api.history(str(root), ascending=True, truncate_hexsha=True)
    ]


def in_order(rows: list[tuple[Any, ...]]) -> list[tuple[Any, ...]]:
    """Rows grouped by (instant, GTO priority), each group sorted: GTO has no order within."""
    grouped = itertools.groupby(rows, key=lambda row: (row[0], PRIORITY[row[1]]))
    return [(key, sorted(map(repr, group))) for key, group in grouped]


def short(version: str | None) -> str | None:
    """A commit abbreviated as relman does; ``show(truncate_hexsha=True)`` would also cut
    ``v2.0.0-rc.1`` to ``v2.0.0-``."""
    return version[:7] if version and re.fullmatch(r"[0-9a-f]{40}", version) else version


def shown_by_gto(root: Path, *, deprecated: bool) -> dict[str, dict[str, Any]]:
    """``gto show``'s registered artifacts: the latest version, the stages that are held."""
    return {
        name: {
            "active": artifact["active"],
            "version": artifact["version"],
            "stage": {stage: short(v) for stage, v in artifact["stage"].items() if v},
        }
        for name, artifact in gto_api.show(str(root), deprecated=deprecated).items()
        if artifact["registered"]
    }


def assert_reads_as_gto(registry: Registry) -> tuple[list[GtoEvent], list[str]]:
    """relman's reading of the repository equals GTO's; return relman's events and warnings."""
    root = registry.root
    events, warnings = gto_events(tags(root))
    ours = registry_state(events)
    theirs = shown_by_gto(root, deprecated=True)
    assert sorted(ours) == sorted(theirs)
    for name, state in ours.items():
        shown = theirs[name]
        assert state.active == shown["active"], name
        assert state.latest == shown["version"], name
        assert state.stages == shown["stage"], name
        listed = gto_api.find_latest_version(str(root), name, all=True)
        assert list(state.versions) == [version.version for version in listed], name
    live = shown_by_gto(root, deprecated=False)
    assert current_stages(events) == {
        name: artifact["stage"] for name, artifact in live.items() if artifact["stage"]
    }
    ours_rows, theirs_rows = history_rows(events), gto_history_rows(root)
    assert [row[0] for row in ours_rows] == sorted(row[0] for row in ours_rows)
    assert in_order(ours_rows) == in_order(theirs_rows)
    return events, warnings


def steps(registry: Registry, *calls: tuple[Any, ...]) -> Iterator[dict[str, dict[str, str]]]:
    """Run each ``(operation, *args, {kwargs})`` through GTO and compare after each one;
    yield relman's stages of the artifacts not deprecated after each step."""
    for call in calls:
        operation, *args = call
        kwargs = args.pop() if args and isinstance(args[-1], dict) else {}
        registry.gto(operation, *args, **kwargs)
        events, warnings = assert_reads_as_gto(registry)
        assert warnings == []
        yield current_stages(events)


def test_three_versions_in_three_stages_then_reassigned_to_newer(registry: Registry) -> None:
    c1, c2, c3, c4 = registry.commits
    ada = {"author": "Ada Lovelace", "author_email": "ada@example.invalid"}
    seen = list(
        steps(
            registry,
            ("register", "clf", c1, {"version": "v1.9.0"}),
            ("register", "clf", c2, {"version": "v1.10.0", **ada}),
            ("register", "clf", c3, {"version": "v2.0.0-rc.1"}),
            ("assign", "clf", "qa", {"version": "v1.9.0"}),
            ("assign", "clf", "stage", {"version": "v1.10.0", **ada}),
            ("assign", "clf", "production", {"version": "v2.0.0-rc.1"}),
            ("assign", "clf", "qa", {"version": "v1.10.0"}),
            ("assign", "clf", "qa", {"version": "v2.0.0-rc.1"}),
            # `gto assign --version`: registers the commit, then assigns
            ("assign", "clf", "production", {"ref": c4, "name_version": "v2.0.0"}),
            ("assign", "clf", "stage", {"version": "v2.0.0", "simple": True}),
        )
    )
    assert seen[5] == {"clf": {"production": "v2.0.0-rc.1", "qa": "v1.9.0", "stage": "v1.10.0"}}
    assert seen[-1] == {"clf": {"production": "v2.0.0", "qa": "v2.0.0-rc.1", "stage": "v2.0.0"}}
    state = registry_state(gto_events(tags(registry.root))[0])["clf"]
    # SemVer order, not the order of the strings: v1.10.0 above v1.9.0, the rc below v2.0.0
    assert state.versions == ("v2.0.0", "v2.0.0-rc.1", "v1.10.0", "v1.9.0")
    assert "clf#stage" in tags_named(registry, "clf#")  # the counterless form GTO also writes


def tags_named(registry: Registry, prefix: str) -> list[str]:
    return [ref.name for ref in tags(registry.root) if ref.name.startswith(prefix)]


def test_unassign_and_deregister_hand_the_stage_back(registry: Registry) -> None:
    c1, c2, c3, _ = registry.commits
    seen = list(
        steps(
            registry,
            ("register", "clf", c1, {"version": "v1.0.0"}),
            ("register", "clf", c2, {"version": "v1.1.0"}),
            ("register", "clf", c3, {"version": "v1.2.0"}),
            ("assign", "clf", "prod", {"version": "v1.0.0"}),
            ("assign", "clf", "prod", {"version": "v1.1.0"}),
            ("assign", "clf", "prod", {"version": "v1.2.0"}),
            # the newest holder gives prod up: the one assigned before holds it again
            ("unassign", "clf", {"version": "v1.2.0", "stage": "prod"}),
            # an older assignment undone changes nothing while a newer one holds prod
            ("unassign", "clf", {"version": "v1.0.0", "stage": "prod"}),
            ("assign", "clf", "prod", {"version": "v1.2.0", "force": True}),
            ("deregister", "clf", {"version": "v1.2.0"}),
            ("unassign", "clf", {"version": "v1.1.0", "stage": "prod"}),
        )
    )
    prods = [stages.get("clf", {}).get("prod") for stages in seen[3:]]
    assert prods == ["v1.0.0", "v1.1.0", "v1.2.0", "v1.1.0", "v1.1.0", "v1.2.0", "v1.1.0", None]


def test_deprecation_hides_an_artifact_and_a_later_event_revives_it(
    registry: Registry,
) -> None:
    c1, c2, c3, _ = registry.commits
    seen = list(
        steps(
            registry,
            ("register", "clf", c1, {"version": "v0.1.0"}),
            ("assign", "clf", "staging", {"version": "v0.1.0"}),
            ("register", "iris-model", c1, {"version": "v1.0.0"}),
            ("assign", "iris-model", "production", {"version": "v1.0.0"}),
            ("deprecate", "clf"),
            ("register", "clf", c2, {"version": "v0.2.0"}),  # the stages come back with it
            ("deprecate", "clf", {"force": True}),  # a second time: "clf@deprecated#N"
            ("assign", "clf", "qa", {"ref": c3, "name_version": "v0.3.0"}),
        )
    )
    assert [set(stages) for stages in seen[3:]] == [
        {"clf", "iris-model"},
        {"iris-model"},
        {"clf", "iris-model"},
        {"iris-model"},
        {"clf", "iris-model"},
    ]
    assert seen[-1]["clf"] == {"staging": "v0.1.0", "qa": "v0.3.0"}
    assert any(name.startswith("clf@deprecated#") for name in tags_named(registry, "clf@"))


def test_nested_dvc_yaml_artifact_and_a_commit_registered_after_its_stage(
    registry: Registry,
) -> None:
    c1, c2, _, _ = registry.commits
    nested = "models/nested:clf"
    seen = list(
        steps(
            registry,
            ("register", nested, c1, {"version": "v1.0.0"}),
            ("assign", nested, "dev", {"version": "v1.0.0"}),
            # a stage on a commit nobody registered: GTO names the commit itself
            ("assign", nested, "canary", {"ref": c2, "skip_registration": True}),
            ("assign", "clf", "canary", {"ref": c2, "skip_registration": True}),
            # registered later, that commit's stage now names the version (GTO indexes
            # registrations before assignments, whatever their dates)
            ("register", nested, c2, {"version": "v1.1.0"}),
        )
    )
    assert seen[3] == {
        nested: {"dev": "v1.0.0", "canary": c2[:7]},
        "clf": {"canary": c2[:7]},
    }
    assert seen[4][nested] == {"dev": "v1.0.0", "canary": "v1.1.0"}
    assert "models/nested=clf#dev#1" in tags_named(registry, "models/nested=")
    # the name relman gives the model of that dvc.yaml, which status looks the registry up by
    Repo.init(str(registry.root))
    with open_dvc(registry.root) as session:
        assert {"clf", nested} <= set(declared_artifacts(session))
    events, _ = gto_events(tags(registry.root))
    canary = next(e for e in events if e.stage == "canary" and e.artifact == nested)
    assert (canary.version, canary.resolved_version) == (None, "v1.1.0")


def test_tags_of_one_second_follow_gtos_priority(registry: Registry) -> None:
    """GTO's history orders a second's events by kind, and there an unassignment outweighs
    the assignment of the same second: relman agrees wherever GTO has an order."""
    c1, _, _, _ = registry.commits
    registry.tick()  # and no more: every tag of this test is dated the same second
    stopped = registry.clock
    gto_api.assign(str(registry.root), "clf", "prod", ref=c1, name_version="v1.0.0")
    gto_api.assign(str(registry.root), "clf", "dev", version="v1.0.0")
    gto_api.unassign(str(registry.root), "clf", version="v1.0.0", stage="prod")
    assert {date for date in registry.tag_dates().values()} == {stopped}
    events, warnings = assert_reads_as_gto(registry)
    assert warnings == []
    assert current_stages(events) == {"clf": {"dev": "v1.0.0"}}
    assert [event.action for event in events] == [
        Action.REGISTER,
        Action.ASSIGN,
        Action.ASSIGN,
        Action.UNASSIGN,
    ]


def test_within_one_second_the_counter_decides_which_version_holds_a_stage(
    registry: Registry,
) -> None:
    """Where GTO has no order (two versions assigned the same stage in one second, e.g. by
    a script), relman takes the counter GTO wrote: the later assignment holds the stage."""
    c1, c2, _, _ = registry.commits
    registry.tick()
    for commit, version in ((c2, "v2.0.0"), (c1, "v1.0.0")):
        gto_api.assign(str(registry.root), "clf", "prod", ref=commit, name_version=version)
    events, _warnings = gto_events(tags(registry.root))
    assert len({event.date for event in events}) == 1
    assert current_stages(events) == {"clf": {"prod": "v1.0.0"}}  # clf#prod#2 came last


Refusal = Callable[[str, str], Any]
REFUSED: list[tuple[str, Refusal, str, str]] = [
    (
        "version without its v",
        lambda root, commit: gto_api.register(root, "fresh", commit, version="1.0.0"),
        "fresh@1.0.0",
        "version '1.0.0' lacks the 'v' prefix",
    ),
    (
        "version not SemVer",
        lambda root, commit: gto_api.register(root, "fresh", commit, version="v1.2"),
        "fresh@v1.2",
        "version 'v1.2' is not SemVer",
    ),
    (
        "artifact name ending in '_'",
        lambda root, commit: gto_api.register(root, "fresh_", commit, version="v1.0.0"),
        "fresh_@v1.0.0",
        "artifact name 'fresh_' is not valid",
    ),
    (
        "artifact name starting with '_'",
        lambda root, commit: gto_api.assign(root, "_fresh", "prod", ref=commit),
        "_fresh#prod#1",
        "artifact name '_fresh' is not valid",
    ),
    (
        "stage ending in '-'",
        lambda root, commit: gto_api.assign(root, "clf", "prod-", version="v1.0.0"),
        "clf#prod-#3",
        "stage 'prod-' is not valid",
    ),
    (
        "a second '#' in a stage",
        lambda root, commit: gto_api.assign(root, "clf", "prod#2", version="v1.0.0"),
        "clf#prod#2#3",
        "too many '#' parts",
    ),
]


@pytest.mark.parametrize(
    ("refuse", "tag", "reason"),
    [case[1:] for case in REFUSED],
    ids=[case[0] for case in REFUSED],
)
def test_a_tag_gto_refuses_is_skipped_with_one_warning(
    registry: Registry, refuse: Refusal, tag: str, reason: str
) -> None:
    c1, c2, _, _ = registry.commits
    registry.gto("assign", "clf", "dev", ref=c1, name_version="v1.0.0")
    before = (gto_api.show(str(registry.root)), gto_history_rows(registry.root))
    with pytest.raises(gto_exceptions.GTOException):
        refuse(str(registry.root), c2)

    registry.hand_tag(tag, c2)

    # GTO reads past the tag; relman too, saying why in one line
    assert (gto_api.show(str(registry.root)), gto_history_rows(registry.root)) == before
    events, warnings = assert_reads_as_gto(registry)
    assert [event.tag for event in events] == ["clf@v1.0.0", "clf#dev#1"]
    assert len(warnings) == 1 and warnings[0].startswith(f"tag '{tag}' skipped: ")
    assert reason in warnings[0] and "\n" not in warnings[0]


@pytest.mark.parametrize(
    ("tag", "reason"),
    [
        ("clf#prod#x", "counter 'x' is not a number"),
        ("clf@deprecated!", "'@deprecated' cannot be undone"),
        ("clf@v1.0.0-#4", "version 'v1.0.0-' is not SemVer"),
    ],
)
def test_a_tag_gto_never_writes_is_skipped_with_one_warning(
    registry: Registry, tag: str, reason: str
) -> None:
    c1, _, _, _ = registry.commits
    registry.gto("assign", "clf", "dev", ref=c1, name_version="v1.0.0")
    registry.hand_tag(tag, c1)
    _events, warnings = assert_reads_as_gto(registry)
    assert len(warnings) == 1 and warnings[0].startswith(f"tag '{tag}' skipped: ")
    assert reason in warnings[0]


def test_a_lightweight_tag_is_skipped_as_gto_skips_it(registry: Registry) -> None:
    c1, c2, _, _ = registry.commits
    registry.gto("assign", "clf", "prod", ref=c1, name_version="v1.0.0")
    registry.hand_tag("clf@v2.0.0", c2, annotated=False)
    registry.hand_tag("clf#prod#7", c2, annotated=False)

    events, warnings = assert_reads_as_gto(registry)

    assert current_stages(events) == {"clf": {"prod": "v1.0.0"}}
    assert sorted(w.split(" skipped: ")[0] for w in warnings) == [
        "tag 'clf#prod#7'",
        "tag 'clf@v2.0.0'",
    ]
    assert all("lightweight" in w and "git tag -a" in w for w in warnings)


def test_tags_that_stop_gto_itself_are_one_warning_each_in_relman(registry: Registry) -> None:
    """``NAME@created`` matches GTO's pattern but holds no event, and two versions on one
    commit with a stage tag there make GTO refuse the registry: relman reads on."""
    c1, c2, _, _ = registry.commits
    registry.gto("assign", "clf", "prod", ref=c1, name_version="v1.0.0")
    registry.gto("register", "iris", c2, version="v1.0.0")
    registry.gto("assign", "iris", "qa", version="v1.0.0")
    registry.hand_tag("iris@v1.0.1", c2)  # `gto register` refuses this one
    with pytest.raises(gto_exceptions.ManyVersions):
        gto_api.show(str(registry.root))
    registry.hand_tag("clf@created", c1)
    with pytest.raises(KeyError):
        gto_api.show(str(registry.root))

    events, warnings = gto_events(tags(registry.root))

    assert current_stages(events) == {"clf": {"prod": "v1.0.0"}, "iris": {"qa": "v1.0.1"}}
    assert len(warnings) == 2
    assert warnings[0].startswith("tag 'clf@created' skipped: ")
    assert warnings[1].startswith(f"iris: commit {c2[:7]} carries versions v1.0.0, v1.0.1")


def test_unassigning_a_commit_nobody_registered_is_the_one_difference(
    registry: Registry,
) -> None:
    """GTO 1.10 indexes each stage tag on an unregistered commit as a version of its own, so
    an unassignment there (hand-written: `gto unassign` refuses it) undoes nothing in GTO.
    relman undoes the assignment, as the tag says."""
    _, c2, _, _ = registry.commits
    registry.gto("assign", "clf", "canary", ref=c2, skip_registration=True)
    with pytest.raises(gto_exceptions.GTOException):
        gto_api.unassign(str(registry.root), "clf", ref=c2, stage="canary")
    registry.hand_tag("clf#canary!#2", c2)

    events, warnings = gto_events(tags(registry.root))

    assert warnings == []
    assert current_stages(events) == {}
    assert gto_api.show(str(registry.root), truncate_hexsha=True)["clf"]["stage"] == {
        "canary": c2[:7]
    }
