"""Detached processes: found by their tag even when they left the session, stopped all;
zombies are not alive; and the helpers ask psutil, never /proc, so they work on macOS too."""

from __future__ import annotations

import builtins
import os
import pathlib
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import psutil
import pytest

import core.host.processes as processes
from core.host.processes import (
    TAG_VARIABLE,
    end_processes,
    group_alive,
    pid_alive,
    process_table,
    processes_mentioning,
    read_pid,
    stop_tagged,
    tagged,
)
from tests.waiting import wait_for

# A leader that starts one child in its own group and one in a session of its own, as
# BentoML's server does with its workers, writes their pids, then waits. Everything sleeps
# far longer than any wait of these tests: gone means stopped, not ended on its own.
TREE = (
    "import subprocess, sys, time\n"
    "nap = [sys.executable, '-c', 'import time; time.sleep(600)']\n"
    "same = subprocess.Popen(nap)\n"
    "apart = subprocess.Popen(nap, start_new_session=True)\n"
    "open(sys.argv[1] + '.tmp', 'w').write(f'{same.pid} {apart.pid}')\n"
    "__import__('os').replace(sys.argv[1] + '.tmp', sys.argv[1])\n"
    "time.sleep(600)\n"
)


class Tree:
    def __init__(self, leader: subprocess.Popen[bytes], same: int, apart: int) -> None:
        self.leader, self.same, self.apart = leader, same, apart

    @property
    def pids(self) -> list[int]:
        return sorted([self.leader.pid, self.same, self.apart])


@pytest.fixture
def tree(tmp_path: Path) -> Iterator[Tree]:
    tag = str(tmp_path / "instance")
    ready = tmp_path / "ready"
    leader = subprocess.Popen(
        [sys.executable, "-c", TREE, str(ready)],
        env={**os.environ, TAG_VARIABLE: tag},
        start_new_session=True,
    )
    try:
        wait_for(ready.exists, "the tree to start")
        same, apart = (int(pid) for pid in ready.read_text().split())
        yield Tree(leader, same, apart)
    finally:
        end_processes([leader.pid, *tagged(tag)], 1.0)
        leader.wait()


def test_stop_tagged_ends_the_leader_and_the_children_that_left_its_session(
    tmp_path: Path, tree: Tree
) -> None:
    tag = str(tmp_path / "instance")
    assert os.getsid(tree.apart) != os.getsid(tree.leader.pid)  # out of the leader's session
    assert tagged(tag) == tree.pids
    assert stop_tagged(tag, tree.leader.pid, grace=30.0) is True
    assert tagged(tag) == []
    assert not any(pid_alive(pid) for pid in tree.pids)
    assert stop_tagged(tag, tree.leader.pid) is False  # nothing left: a no-op


def test_orphans_of_a_killed_leader_are_found_and_stopped(tmp_path: Path, tree: Tree) -> None:
    tag = str(tmp_path / "instance")
    tree.leader.kill()  # kill -9 of the server: its workers are reparented, still tagged
    tree.leader.wait()
    orphans = tagged(tag)
    assert orphans == sorted([tree.same, tree.apart])
    assert [pid for pid, _ in processes_mentioning(tmp_path)] == orphans
    table = process_table()  # one read of them all: the same answers
    assert sorted(info.pid for info in table if info.tag == tag) == orphans
    assert processes_mentioning(tmp_path, table) == processes_mentioning(tmp_path)
    assert stop_tagged(tag, tree.leader.pid, grace=30.0) is True
    assert tagged(tag) == []
    # Killed, they are gone once init has reaped them: a moment later on a loaded machine.
    wait_for(
        lambda: not pid_alive(tree.same) and not pid_alive(tree.apart), "the orphans to be reaped"
    )


def test_liveness_and_pid_files(tmp_path: Path) -> None:
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    assert not pid_alive(child.pid)
    assert not pid_alive(None) and not pid_alive(0)
    assert pid_alive(os.getpid())
    (tmp_path / "pid").write_text("123\n")
    assert read_pid(tmp_path / "pid") == 123
    (tmp_path / "pid").write_text("garbage")
    assert read_pid(tmp_path / "pid") is None
    assert read_pid(tmp_path / "missing") is None


# A parent that never reaps: it starts a group leader that starts a member, and the leader
# exits at once. The leader stays a zombie of that parent (not of relman: relman cannot reap
# it), the member runs on in the leader's group until killed.
NEGLECTFUL = (
    "import subprocess, sys, time\n"
    'inner = \'import subprocess, sys; print(subprocess.Popen(["sleep", "600"]).pid)\'\n'
    "leader = subprocess.Popen([sys.executable, '-c', inner], stdout=subprocess.PIPE,\n"
    "                          start_new_session=True)\n"
    "member = leader.stdout.readline().decode().strip()\n"
    "open(sys.argv[1] + '.tmp', 'w').write(f'{leader.pid} {member}')\n"
    "__import__('os').replace(sys.argv[1] + '.tmp', sys.argv[1])\n"
    "time.sleep(600)\n"
)


def test_a_zombie_is_not_alive_and_a_group_of_zombies_is_gone(tmp_path: Path) -> None:
    ready = tmp_path / "ready"
    parent = subprocess.Popen([sys.executable, "-c", NEGLECTFUL, str(ready)])
    try:
        wait_for(ready.exists, "the neglectful parent to start its group")
        leader, member = (int(pid) for pid in ready.read_text().split())
        wait_for(
            lambda: psutil.Process(leader).status() == psutil.STATUS_ZOMBIE,
            "the group leader to exit unreaped",
        )
        assert os.kill(leader, 0) is None  # a zombie still answers kill 0 ...
        assert not pid_alive(leader)  # ... but is not alive
        assert group_alive(leader)  # its member still runs in its group
        os.kill(member, 9)
        wait_for(lambda: not group_alive(leader), "the group to hold only its zombie leader")
    finally:
        parent.kill()
        parent.wait()


def test_a_pid_file_naming_someone_elses_process_is_never_signalled(tmp_path: Path) -> None:
    """After a reboot or a pid wrap, a stopped instance's pid may name an unrelated process:
    it does not carry the instance's tag, so it is left alone."""
    stranger = subprocess.Popen(
        [sys.executable, "-c", "import time; time.sleep(600)"], start_new_session=True
    )
    try:
        assert stop_tagged(str(tmp_path / "instance"), stranger.pid, grace=0.5) is False
        assert pid_alive(stranger.pid)
    finally:
        stranger.kill()
        stranger.wait()


# ---------------------------------------------------------------- no /proc read by hand


class ReadsProc(BaseException):
    """Raised where an engine module touches /proc itself. A BaseException, so that no
    ``except OSError`` (nor ``except Exception``) in the helpers can swallow it."""


def _guard(reads: list[str]) -> Callable[[Callable[..., Any], str], Callable[..., Any]]:
    """Wrap a file-system function so that a call on a /proc path made directly from a
    relman engine module (core.*, store.*) is recorded and refused; psutil's own reads (its
    Linux backend reads /proc: that is its job) and everyone else's go through."""

    def wrap(function: Callable[..., Any], name: str) -> Callable[..., Any]:
        def guarded(*args: Any, **kwargs: Any) -> Any:
            caller = sys._getframe(1).f_globals.get("__name__", "")
            path = args[0] if args else kwargs.get("file", kwargs.get("path", ""))
            text = os.fsdecode(path) if isinstance(path, str | bytes | os.PathLike) else ""
            if caller.split(".")[0] in ("core", "store") and text.startswith("/proc"):
                reads.append(f"{caller}: {name}({text!r})")
                raise ReadsProc(reads[-1])
            return function(*args, **kwargs)

        return guarded

    return wrap


def _forbid_proc(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    reads: list[str] = []
    wrap = _guard(reads)
    monkeypatch.setattr(builtins, "open", wrap(builtins.open, "open"))
    for name in ("open", "listdir", "scandir", "stat", "readlink"):
        monkeypatch.setattr(os, name, wrap(getattr(os, name), f"os.{name}"))
    for name in ("open", "read_text", "read_bytes", "iterdir", "exists", "is_dir", "glob"):
        method = getattr(pathlib.Path, name)
        monkeypatch.setattr(pathlib.Path, name, wrap(method, f"Path.{name}"))
    return reads


def exercise_without_proc(
    module: ModuleType, tree: Tree, tag: str, monkeypatch: pytest.MonkeyPatch
) -> list[str]:
    """Run every helper of ``module`` on ``tree`` with /proc closed to the engine; the /proc
    reads the engine tried (empty when it only asks psutil)."""
    reads = _forbid_proc(monkeypatch)
    try:
        leader = tree.leader.pid
        assert module.pid_alive(leader) and module.group_alive(leader)
        assert module.tagged(tag) == tree.pids
        assert module.carries_tag(leader, tag) and not module.carries_tag(leader, tag + "x")
        assert module.carries_tag_prefix(tree.apart, f"{TAG_VARIABLE}={Path(tag).parent}")
        mentioning = module.processes_mentioning(Path(tag).parent)
        assert [pid for pid, _ in mentioning] == tree.pids
        assert all(sys.executable in command for _, command in mentioning)
        if hasattr(module, "command_mentions"):
            assert module.command_mentions(leader, "time.sleep(600)")
        assert module.stop_tagged(tag, leader, grace=30.0) is True
        assert not any(module.pid_alive(pid) for pid in tree.pids)
        assert module.tagged(tag) == []
    except ReadsProc:
        pass
    finally:
        monkeypatch.undo()
    return reads


def test_the_helpers_ask_psutil_and_never_read_proc_themselves(
    tmp_path: Path, tree: Tree, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Where there is no /proc (macOS) a helper reading it would find nothing and stop
    nothing: with /proc closed to the engine's own code, they all still work."""
    reads = exercise_without_proc(processes, tree, str(tmp_path / "instance"), monkeypatch)
    assert reads == []
