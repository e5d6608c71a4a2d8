"""Detached processes: found by their tag even when they left the session, stopped all."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

from core.host.processes import (
    TAG_VARIABLE,
    end_processes,
    pid_alive,
    processes_mentioning,
    read_pid,
    stop_tagged,
    tagged,
)

# A leader that starts one child in its own group and one in a session of its own, as
# BentoML's server does with its workers, then waits.
TREE = (
    "import os, subprocess, sys, time\n"
    "nap = [sys.executable, '-c', 'import time; time.sleep(60)']\n"
    "subprocess.Popen(nap)\n"
    "subprocess.Popen(nap, start_new_session=True)\n"
    "open(sys.argv[1], 'w').write('ready')\n"
    "time.sleep(60)\n"
)


def _start_tree(tmp_path: Path, tag: str) -> subprocess.Popen[bytes]:
    ready = tmp_path / "ready"
    leader = subprocess.Popen(
        [sys.executable, "-c", TREE, str(ready)],
        env={**os.environ, TAG_VARIABLE: tag},
        start_new_session=True,
    )
    deadline = time.monotonic() + 10
    while not ready.exists():
        assert time.monotonic() < deadline
        time.sleep(0.02)
    return leader


def test_stop_tagged_ends_the_leader_and_the_children_that_left_its_session(
    tmp_path: Path,
) -> None:
    tag = str(tmp_path / "instance")
    leader = _start_tree(tmp_path, tag)
    try:
        found = tagged(tag)
        assert leader.pid in found and len(found) == 3
        assert stop_tagged(tag, leader.pid, grace=2.0) is True
        assert tagged(tag) == []
        assert not pid_alive(leader.pid)
        assert stop_tagged(tag, leader.pid) is False  # nothing left: a no-op
    finally:
        end_processes(tagged(tag), 1.0)


def test_orphans_of_a_killed_leader_are_found_and_stopped(tmp_path: Path) -> None:
    tag = str(tmp_path / "instance")
    leader = _start_tree(tmp_path, tag)
    try:
        leader.kill()  # kill -9 of the server: its workers are reparented, still tagged
        leader.wait()
        orphans = tagged(tag)
        assert len(orphans) == 2
        assert [pid for pid, _ in processes_mentioning(tmp_path)] == orphans
        assert stop_tagged(tag, leader.pid, grace=2.0) is True
        assert tagged(tag) == []
    finally:
        end_processes(tagged(tag), 1.0)


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


def test_a_pid_file_naming_someone_elses_process_is_never_signalled(tmp_path: Path) -> None:
    """After a reboot or a pid wrap, a stopped instance's pid may name an unrelated process:
    it does not carry the instance's tag, so it is left alone."""
    stranger = subprocess.Popen(
        [sys.executable, "-c", "import time; time.sleep(30)"], start_new_session=True
    )
    try:
        assert stop_tagged(str(tmp_path / "instance"), stranger.pid, grace=0.5) is False
        assert pid_alive(stranger.pid)
    finally:
        stranger.kill()
        stranger.wait()
