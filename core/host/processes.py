"""Detached processes that outlive relman: is one alive, stop it with all it started.

Served environments (`bentoml serve` and relman's proxy) run in their own sessions. BentoML's
workers start sessions of their own, so neither the process group nor the session holds
them, and a killed server leaves them reparented to init. What does hold them is the
environment: relman starts each process with a tag variable (``RELMAN_INSTANCE=<folder>``)
that every descendant inherits, and finds them all again by reading /proc/*/environ. A
process relman itself started and that died is a zombie until reaped: it still answers
``kill 0``, so liveness also reads its state from /proc and reaping is tried wherever we wait.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path

# After SIGTERM, how long a group may take to exit before it gets SIGKILL.
DEFAULT_GRACE = 10.0


def this_host() -> str:
    """The name of this machine, recorded with every pid so another host's is never checked."""
    return socket.gethostname()


def pid_alive(pid: int | None) -> bool:
    """True when ``pid`` names a running (not zombie) process."""
    if not pid or pid <= 0:
        return False
    _reap(pid)
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process: alive, and not ours to stop
        return True
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return True  # no /proc (not Linux): kill 0 is all we know
    return stat.rsplit(")", 1)[-1].split()[0] != "Z"


def read_pid(path: Path) -> int | None:
    """The pid a pid file holds, or None when missing, empty or not a number."""
    try:
        text = path.read_text().strip()
    except OSError:
        return None
    return int(text) if text.isdigit() else None


def group_alive(pgid: int) -> bool:
    """True while any process of the group ``pgid`` runs (zombies of ours reaped first)."""
    _reap(pgid)
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # The leader may be a zombie of ours with live members; or only zombies remain.
    return pid_alive(pgid) or _members_alive(pgid)


def stop_group(pgid: int, grace: float = DEFAULT_GRACE) -> bool:
    """SIGTERM the process group ``pgid``, SIGKILL it after ``grace`` seconds; wait until it
    is gone. True when something was running."""
    if not group_alive(pgid):
        return False
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pgid, signal.SIGTERM)
    deadline = time.monotonic() + grace
    while group_alive(pgid):
        if time.monotonic() >= deadline:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(pgid, signal.SIGKILL)
            _wait_gone(pgid, 5.0)
            break
        time.sleep(0.05)
    return True


TAG_VARIABLE = "RELMAN_INSTANCE"


def tagged(value: str) -> list[int]:
    """Pids of the live processes whose environment holds ``RELMAN_INSTANCE=value``."""
    needle = b"\0" + f"{TAG_VARIABLE}={value}".encode() + b"\0"
    return sorted(
        pid
        for pid, _cmdline, environ in _processes()
        if needle in b"\0" + environ and pid_alive(pid)
    )


def carries_tag(pid: int | None, value: str) -> bool:
    """True when ``pid`` runs with ``RELMAN_INSTANCE=value``: it is the process relman
    started there, not another that got its pid later (after a reboot, or a pid wrap)."""
    if not pid_alive(pid):
        return False
    try:
        environ = Path(f"/proc/{pid}/environ").read_bytes()
    except FileNotFoundError:
        return False
    except OSError:
        return True  # not ours to read, or no /proc: liveness is all we can tell
    return b"\0" + f"{TAG_VARIABLE}={value}".encode() + b"\0" in b"\0" + environ


def carries_tag_prefix(pid: int, prefix: str) -> bool:
    """True when ``pid``'s environment has a variable starting with ``prefix``."""
    try:
        environ = Path(f"/proc/{pid}/environ").read_bytes()
    except OSError:
        return False
    return (b"\0" + prefix.encode()) in (b"\0" + environ)


def _processes() -> Iterator[tuple[int, bytes, bytes]]:
    """(pid, command line, environment) of every process we may read, but this one."""
    try:
        entries = os.listdir("/proc")
    except OSError:
        return
    for entry in entries:
        if not entry.isdigit() or int(entry) == os.getpid():
            continue
        try:
            cmdline = Path(f"/proc/{entry}/cmdline").read_bytes()
            environ = Path(f"/proc/{entry}/environ").read_bytes()
        except OSError:
            continue
        yield int(entry), cmdline, environ


def stop_tagged(value: str, leader: int | None, grace: float = DEFAULT_GRACE) -> bool:
    """Stop every process tagged ``value``: SIGTERM to the leader's group first (a graceful
    shutdown stops its own workers), then SIGTERM to whatever is left, SIGKILL to what still
    runs after ``grace``. True when something was running."""

    if leader and not carries_tag(leader, value):
        leader = None  # a pid file outlived its process, and the pid now names another one

    def running() -> list[int]:
        return ([leader] if leader and group_alive(leader) else []) + tagged(value)

    if not running():
        return False
    if leader and group_alive(leader):
        with contextlib.suppress(ProcessLookupError):
            os.killpg(leader, signal.SIGTERM)
        _wait_until(lambda: not group_alive(leader), grace)
    for pid in tagged(value):  # workers the leader left behind (or a leader killed before)
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGTERM)
    if _wait_until(lambda: not running(), grace / 2):
        return True
    for pid in running():
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(pid, signal.SIGKILL) if pid == leader else os.kill(pid, signal.SIGKILL)
    _wait_until(lambda: not running(), 5.0)
    return True


def processes_mentioning(folder: Path) -> list[tuple[int, str]]:
    """Live processes naming ``folder`` on their command line or in their environment, with
    their command lines: what relman served for a project (proxies, Bento servers and what
    they started), for sweeps and for tests that nothing was left behind."""
    needle = str(folder).encode()
    return [
        (pid, cmdline.replace(b"\0", b" ").decode(errors="replace"))
        for pid, cmdline, environ in _processes()
        if (needle in cmdline or needle in environ) and pid_alive(pid)
    ]


def end_processes(pids: list[int], grace: float = DEFAULT_GRACE) -> None:
    """SIGTERM each of ``pids``, SIGKILL those still running after ``grace`` seconds."""
    for pid in pids:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(pid, signal.SIGTERM)
    if _wait_until(lambda: not any(pid_alive(pid) for pid in pids), grace):
        return
    for pid in pids:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(pid, signal.SIGKILL)
    _wait_until(lambda: not any(pid_alive(pid) for pid in pids), 5.0)


def _wait_until(done: Callable[[], bool], seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while not done():
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.05)
    return True


def _wait_gone(pgid: int, seconds: float) -> None:
    deadline = time.monotonic() + seconds
    while group_alive(pgid) and time.monotonic() < deadline:
        time.sleep(0.05)


def _members_alive(pgid: int) -> bool:
    try:
        entries = os.listdir("/proc")
    except OSError:
        return True
    for entry in entries:
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue
        fields = stat.rsplit(")", 1)[-1].split()
        if len(fields) > 2 and fields[2] == str(pgid) and fields[0] != "Z":
            return True
    return False


def _reap(pid: int) -> None:
    """Collect the exit status of ``pid`` if it is a dead child of ours."""
    with contextlib.suppress(ChildProcessError, OSError):
        os.waitpid(pid, os.WNOHANG)


def end_child(child: subprocess.Popen[bytes], grace: float = 1.0) -> None:
    """End a child relman started in its own session, with anything it started in it:
    SIGTERM to the group, SIGKILL after ``grace`` seconds (the group outlives a child that
    exited while a grandchild still runs in it), then reap the child."""
    if child.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(child.pid, signal.SIGTERM)
        with contextlib.suppress(subprocess.TimeoutExpired):
            child.wait(timeout=grace)
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(child.pid, signal.SIGKILL)
    child.wait()
