"""The file_sd target list the collector keeps (core/monitoring/file_sd.py): one target per
running instance with the service, environment, release and version labels (named by
[monitoring.labels]), rewritten atomically only when it changes, emptied when the
collector stops after `relman down`; a list that cannot be written is said once."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from core.targets import Instance
from store.ledger.ledger import Ledger
from tests.core.test_collector import RELEASE, TOML, FakeTarget, World, make_world

CANARY = "c0ffee000000"


@dataclass
class RunningTarget(FakeTarget):
    """The fake target, with the instances that run (serving or not)."""

    running: list[Instance] = field(default_factory=list)

    def instances(self) -> list[Instance]:
        return list(self.running)


def _world(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, extra: str = "") -> Iterator[World]:
    toml = TOML + 'file_sd = "sd/targets.json"\n' + extra
    with make_world(tmp_path, monkeypatch, toml) as world:
        target = RunningTarget(world.target.address, world.target.folder)
        target.running = [Instance(RELEASE, world.target.address, None)]
        world.target = target
        monkeypatch.setattr("core.targets.target_for", lambda project, service, env: target)
        with Ledger.open(world.project.ledger_path, actor="tester") as ledger:
            ledger.assign_version(RELEASE, "v1.2.0")
            ledger.record_release(CANARY, service="iris", git_commit="1" * 40, version="v1.3.0")
        yield world


@pytest.fixture
def world(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[World]:
    yield from _world(tmp_path, monkeypatch)


def _listed(world: World) -> list[dict[str, object]]:
    listed: list[dict[str, object]] = json.loads(
        (world.project.root / "sd" / "targets.json").read_text()
    )
    return listed


def test_the_list_names_each_running_instance_with_its_labels(world: World) -> None:
    world.collector().run_pass()
    assert _listed(world) == [
        {
            "targets": [world.target.address],
            "labels": {
                "version": "v1.2.0",
                "service": "iris",
                "env": "dev",
                "service_version": RELEASE,
            },
        }
    ]
    assert any(
        "file_sd list targets.json rewritten: iris/dev 127.0.0.1:" in line for line in world.lines
    )


def test_it_is_rewritten_atomically_only_when_it_changes(world: World) -> None:
    collector = world.collector()
    collector.run_pass()
    path = world.project.root / "sd" / "targets.json"
    first = path.stat()
    world.now[0] += 5
    collector.run_pass()
    assert (path.stat().st_ino, path.stat().st_mtime_ns) == (first.st_ino, first.st_mtime_ns)

    # a rollout step: the canary's instance beside the stable one
    world.target.running.append(Instance(CANARY, "127.0.0.1:45678", None))
    world.now[0] += 5
    collector.run_pass()
    assert path.stat().st_ino != first.st_ino  # a new file replaced the old one
    assert [
        (t["targets"], t["labels"]["service_version"], t["labels"]["version"])
        for t in _listed(world)
    ] == [  # type: ignore[index]
        ([world.target.address], RELEASE, "v1.2.0"),
        (["127.0.0.1:45678"], CANARY, "v1.3.0"),
    ]
    assert not [p for p in path.parent.iterdir() if p.name != "targets.json"]  # no temp left


def test_the_label_names_are_the_projects(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    extra = '\n[monitoring.labels]\nservice = "app"\nenv = "stage"\nrelease = "rel"\n'
    for world in _world(tmp_path, monkeypatch, extra):
        world.collector().run_pass()
        [group] = _listed(world)
        assert group["labels"] == {
            "version": "v1.2.0",
            "app": "iris",
            "stage": "dev",
            "rel": RELEASE,
        }


def test_the_collector_stopping_after_down_empties_the_list(world: World) -> None:
    world.collector().run_pass()
    assert len(_listed(world)) == 1
    world.target.running.clear()  # relman down stopped the instance, then the collector
    world.ledger_state("down")
    assert world.collector().run(once=True) == 0
    assert _listed(world) == []


def test_a_list_that_cannot_be_written_is_said_once(world: World) -> None:
    (world.project.root / "sd").write_text("a file where the folder should be")
    collector = world.collector()
    for _ in range(3):
        world.now[0] += 5
        collector.run_pass()
    said = [line for line in world.lines if "cannot write the file_sd list" in line]
    assert len(said) == 1 and str(world.project.root / "sd" / "targets.json") in said[0]
