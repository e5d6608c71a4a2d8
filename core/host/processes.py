"""Detached processes that outlive relman: is one alive, stop it with all it started.

Served environments (`bentoml serve` and relman's proxy) run in their own sessions. BentoML's
workers start sessions of their own, so neither the process group nor the session holds
them, and a killed server leaves them reparented to init. What does hold them is the
environment: relman starts each process with a tag variable (``RELMAN_INSTANCE=<folder>``)
that every descendant inherits, and finds them all again by their environments, read
through psutil (Linux and macOS alike). A process relman itself started and that died is a
zombie until reaped: it still answers ``kill 0``, so liveness also asks for its state, and
reaping is tried wherever we wait.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import psutil

# After SIGTERM, how long a group may take to exit before it gets SIGKILL.
DEFAULT_GRACE = 10.0
# How often a wait looks again. psutil.wait_procs is not used: it counts a zombie whose
# parent is not relman (and has not reaped it yet) as running, and waits out its timeout.
_POLL = 0.05

TAG_VARIABLE = "RELMAN_INSTANCE"
_ZOMBIE: str = psutil.STATUS_ZOMBIE


def this_host() -> str:
    """The name of this machine, recorded with every pid so another host's is never checked."""
    return socket.gethostname()


def pid_alive(pid: int | None) -> bool:
    """True when ``pid`` names a running (not zombie) process."""
    if not pid or pid <= 0:
        return False
    _reap(pid)
    return _running(pid)


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
    if not _wait_until(lambda: not group_alive(pgid), grace):
        with contextlib.suppress(ProcessLookupError):
            os.killpg(pgid, signal.SIGKILL)
        _wait_until(lambda: not group_alive(pgid), 5.0)
    return True


def tagged(value: str) -> list[int]:
    """Pids of the live processes whose environment holds ``RELMAN_INSTANCE=value``."""
    return sorted(
        proc.pid
        for proc in _others()
        if (_environ(proc) or {}).get(TAG_VARIABLE) == value and pid_alive(proc.pid)
    )


def carries_tag(pid: int | None, value: str) -> bool:
    """True when ``pid`` runs with ``RELMAN_INSTANCE=value``: it is the process relman
    started there, not another that got its pid later (after a reboot, or a pid wrap)."""
    if not pid or not pid_alive(pid):
        return False
    try:
        environ: dict[str, str] = psutil.Process(pid).environ()
    except psutil.NoSuchProcess:
        return False
    except psutil.AccessDenied:
        return True  # not ours to read: liveness is all we can tell
    return environ.get(TAG_VARIABLE) == value


def carries_tag_prefix(pid: int, prefix: str) -> bool:
    """True when ``pid``'s environment has a ``NAME=value`` entry starting with ``prefix``."""
    try:
        environ = psutil.Process(pid).environ()
    except psutil.Error:
        return False
    return any(f"{name}={value}".startswith(prefix) for name, value in environ.items())


def command_mentions(pid: int, text: str) -> bool:
    """True when ``pid`` is alive and ``text`` is in its command line, or when its command
    line cannot be read (another user's process): liveness is then all we can tell."""
    if not pid_alive(pid):
        return False
    try:
        return text in " ".join(psutil.Process(pid).cmdline())
    except psutil.NoSuchProcess:
        return False
    except psutil.AccessDenied:
        return True


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


@dataclass(frozen=True)
class ProcessInfo:
    """One process as a sweep sees it: its command line, and its environment (empty when it
    is not ours to read)."""

    pid: int
    command: str
    environ: dict[str, str]

    @property
    def tag(self) -> str | None:
        return self.environ.get(TAG_VARIABLE)


def process_table() -> list[ProcessInfo]:
    """Every other process's command line and environment, read in one pass over them all:
    for a sweep that asks several questions of every process (which carry one of these tags,
    which name that folder), instead of one pass per question. A snapshot: whoever acts on
    it checks again that a pid is still alive (as :func:`stop_tagged` and
    :func:`processes_mentioning` do)."""
    table = []
    for proc in _others():
        try:
            command = " ".join(proc.cmdline())
        except psutil.Error:  # gone, or a zombie: nothing to stop or name
            continue
        table.append(ProcessInfo(proc.pid, command, _environ(proc) or {}))
    return table


def processes_mentioning(
    folder: Path, among: Sequence[ProcessInfo] | None = None
) -> list[tuple[int, str]]:
    """Live processes naming ``folder`` on their command line or in their environment, with
    their command lines: what relman served for a project (proxies, Bento servers and what
    they started), for sweeps and for tests that nothing was left behind. ``among``: a
    :func:`process_table` already read (only those still alive are returned)."""
    needle = str(folder)

    def names(environ: dict[str, str] | None) -> bool:
        return any(needle in f"{name}={value}" for name, value in (environ or {}).items())

    found: list[tuple[int, str]] = []
    if among is not None:
        for info in among:
            if (needle in info.command or names(info.environ)) and pid_alive(info.pid):
                found.append((info.pid, info.command))
        return found
    for proc in _others():
        try:
            command = " ".join(proc.cmdline())
        except psutil.Error:
            continue
        # The command line is the cheaper read: the environment only when it says nothing.
        named = needle in command or names(_environ(proc))
        if named and pid_alive(proc.pid):
            found.append((proc.pid, command))
    return found


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


def _others() -> Iterator[psutil.Process]:
    """Every process but this one. process_iter keeps the Process objects it made between
    calls, so the polls of a stop only pay for the processes started since the last one."""
    me = os.getpid()
    return (proc for proc in psutil.process_iter() if proc.pid != me)


def _environ(proc: psutil.Process) -> dict[str, str] | None:
    """``proc``'s environment, or None when it is gone or not ours to read."""
    try:
        environ: dict[str, str] = proc.environ()
    except psutil.Error:  # NoSuchProcess, ZombieProcess, AccessDenied
        return None
    return environ


def _wait_until(done: Callable[[], bool], seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while not done():
        if time.monotonic() >= deadline:
            return False
        time.sleep(_POLL)
    return True


def _members_alive(pgid: int) -> bool:
    """True when a process of the group ``pgid`` other than a zombie runs."""
    for pid in psutil.pids():
        # getpgid is one system call: the state is read only for the group's members.
        try:
            if os.getpgid(pid) == pgid and _running(pid):
                return True
        except OSError:  # gone since the listing
            continue
    return False


def _running(pid: int) -> bool:
    try:
        state: str = psutil.Process(pid).status()
    except psutil.NoSuchProcess:  # ZombieProcess included: gone, or dead and unreaped
        return False
    except psutil.AccessDenied:  # someone else's process: alive, and not ours to stop
        return True
    return state != _ZOMBIE


def _reap(pid: int) -> None:
    """Collect the exit status of ``pid`` if it is a dead child of ours."""
    with contextlib.suppress(ChildProcessError, OSError):
        os.waitpid(pid, os.WNOHANG)
