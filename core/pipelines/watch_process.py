"""The watcher as a process: `relman watch --detach` starts it in a session of its own
(output in ``.relman/watch.log``), `relman down` stops it. Which process is the watcher is
known by the lock it holds and the pid in ``.relman/watch.json`` (core/pipelines/watch.py)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

from core.config.model import Project
from core.errors import BlockedError, InfraError
from core.host.processes import TAG_VARIABLE, pid_alive
from core.pipelines.watch import LOG_NAME, lock_holder, read_state, watcher_running

STOP_GRACE = 60.0  # a run's step (a promotion) may take a while to leave safely


def watcher_tag(project: Project) -> str:
    return str(project.state_dir / "watch")


def start_watcher(project: Project) -> int:
    """Start the watcher detached; its pid. BlockedError when one runs already; InfraError
    when it exits before taking its lock (its log's last line says why)."""
    if watcher_running(project):
        pid = read_state(project).pid or lock_holder(project)
        raise BlockedError(
            f"a watcher already runs for this project (pid {pid}); `relman down` stops it"
        )
    project.state_dir.mkdir(parents=True, exist_ok=True)
    log_path = project.state_dir / LOG_NAME
    environ = {**os.environ, TAG_VARIABLE: watcher_tag(project)}
    with log_path.open("ab") as output:
        child = subprocess.Popen(
            [sys.executable, "-m", "tui", "--project", str(project.root), "--batch", "watch"],
            stdin=subprocess.DEVNULL,
            stdout=output,
            stderr=subprocess.STDOUT,
            env=environ,
            start_new_session=True,
        )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if read_state(project).pid == child.pid and watcher_running(project):
            return child.pid
        if child.poll() is not None:
            lines = log_path.read_text(errors="replace").strip().splitlines()
            last = lines[-1] if lines else f"exit {child.returncode}"
            raise InfraError(f"relman watch exited at start: {last} (.relman/{LOG_NAME})")
        time.sleep(0.05)
    return child.pid


def stop_watcher(project: Project) -> bool:
    """Stop the project's watcher (SIGTERM: it leaves its run interrupted, resumable); True
    when one ran."""
    if not watcher_running(project):
        return False
    pid = read_state(project).pid or lock_holder(project)
    if pid is None or not pid_alive(pid):
        return False
    os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + STOP_GRACE
    while time.monotonic() < deadline and watcher_running(project):
        time.sleep(0.05)
    if watcher_running(project) and pid_alive(pid):
        os.kill(pid, signal.SIGKILL)
    return True
