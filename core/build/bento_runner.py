"""The build script run: :mod:`core.build.bento_build_script` in a child process of the project's
interpreter, its output streamed line by line, its end bounded by a timeout and a cancel.

The script runs by path with the project root as working directory, in its own session
(process group), with the BentoML store relman reads (``BENTOML_HOME``) and the project's
environment first on ``PATH``. Its output lines go to a ``log`` callback as they arrive; its
last line (``RELMAN_BENTO {...}``) says what happened. A timeout, a cancel (checked at least
twice a second), Ctrl-C or a failing callback ends the whole process group.
:func:`run_streamed` runs any command the same way (the image builders of core/build/image.py).
"""

from __future__ import annotations

import json
import os
import selectors
import subprocess
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from core.build.bento_store import bentoml_home
from core.errors import ProjectError
from core.host.processes import end_child

if TYPE_CHECKING:
    from core.cancel import CancelSignal
    from core.config.model import Project

__all__ = ["BUILD_SCRIPT", "MARKER", "Log", "Streamed", "run_build_script", "run_streamed"]

BUILD_SCRIPT = Path(__file__).with_name("bento_build_script.py")
MARKER = "RELMAN_BENTO"
# Output lines kept for an InfraError to quote.
TAIL_LINES = 10
CHUNK = 64 * 1024

Log = Callable[[str], None]


def _child_env(python: str) -> dict[str, str]:
    env = dict(os.environ)
    # The build and find_bento must agree on the store, whatever the child's cwd.
    env["BENTOML_HOME"] = str(bentoml_home())
    env["PYTHONUNBUFFERED"] = "1"
    env.setdefault("BENTOML_DO_NOT_TRACK", "True")
    # Tools of the project's environment (uv, which locks the packages) come first on PATH.
    bin_dir = os.path.dirname(python)
    if bin_dir:
        env["PATH"] = os.pathsep.join([bin_dir, env.get("PATH", "")]).rstrip(os.pathsep)
    return env


def run_build_script(
    project: Project,
    spec: dict[str, Any],
    log: Log,
    timeout: float,
    cancel: CancelSignal | None = None,
) -> tuple[dict[str, Any], list[str]]:
    """Run the build script; stream its output lines to ``log``; return its outcome (the
    marker's JSON, else ``returncode``/``timed_out``; ``cancelled`` when ``cancel`` stopped
    it) and its last output lines."""
    python = project.python()
    command = [python, "-u", str(BUILD_SCRIPT), json.dumps(spec)]
    outcome: dict[str, Any] = {}

    def marker(line: str) -> bool:
        if not line.startswith(MARKER + " "):
            return False
        try:
            parsed = json.loads(line[len(MARKER) + 1 :])
        except ValueError:
            return False
        if isinstance(parsed, dict):
            outcome.update(parsed)
            return True
        return False

    try:
        # Also on Ctrl-C, a cancel or a failing log callback: no process of the build
        # outlives it (run_streamed ends the group).
        ended = run_streamed(
            command,
            cwd=project.root,
            env=_child_env(python),
            log=log,
            timeout=timeout,
            cancel=cancel,
            intercept=marker,
        )
    except OSError as exc:
        raise ProjectError(
            f"cannot run the project's python {python}: {exc.strerror}; set [project] "
            "python in relman.toml to the interpreter of the project's environment"
        ) from exc
    if ended.ending == "cancelled" and not outcome:  # a result already reported still counts
        return {"cancelled": True}, ended.tail
    if not outcome:
        outcome = {"returncode": ended.returncode, "timed_out": ended.ending == "timeout"}
    return outcome, ended.tail


@dataclass(frozen=True)
class Streamed:
    """How a command run by :func:`run_streamed` ended: ``ending`` is ``"exited"`` (with its
    ``returncode``), ``"timeout"`` or ``"cancelled"``; ``tail`` its last output lines."""

    ending: str
    returncode: int | None
    tail: list[str]


def run_streamed(
    command: list[str],
    *,
    cwd: Path,
    env: dict[str, str],
    log: Log,
    timeout: float,
    cancel: CancelSignal | None = None,
    intercept: Callable[[str], bool] | None = None,
) -> Streamed:
    """Run ``command`` in a session of its own, each output line (stdout and stderr) to
    ``log`` as it arrives, until it exits, ``timeout`` passes or ``cancel`` is set; the whole
    process group is ended on the way out. A line ``intercept`` takes (returns True for) is
    neither logged nor kept. OSError when it cannot be started."""
    child = subprocess.Popen(
        command,
        cwd=cwd,
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    tail: deque[str] = deque(maxlen=TAIL_LINES)

    def line_out(raw: bytes) -> None:
        line = raw.decode("utf-8", "replace").rstrip("\r\n")
        if intercept is not None and intercept(line):
            return
        # uv and pip redraw progress with carriage returns: keep what a line ends as.
        line = line.rsplit("\r", 1)[-1]
        if line.strip():
            tail.append(line.strip())
            log(line)

    try:
        ending = _pump(child, line_out, time.monotonic() + timeout, cancel)
    finally:
        end_child(child)
    return Streamed(ending, child.returncode if ending == "exited" else None, list(tail))


def _pump(
    child: subprocess.Popen[bytes],
    line_out: Callable[[bytes], None],
    deadline: float,
    cancel: CancelSignal | None = None,
) -> str:
    """Feed each complete output line of ``child`` to ``line_out`` until its output ends:
    ``"exited"``; ``"timeout"`` when ``deadline`` passed first, ``"cancelled"`` when
    ``cancel`` was set first (checked at least twice a second)."""
    assert child.stdout is not None
    fd = child.stdout.fileno()
    os.set_blocking(fd, False)
    partial = bytearray()
    with selectors.DefaultSelector() as selector:
        selector.register(fd, selectors.EVENT_READ)
        try:
            while True:
                left = deadline - time.monotonic()
                stop = _stop_reason(left, cancel)
                if stop is not None:
                    return stop
                if not selector.select(min(left, 0.5)):
                    continue
                try:
                    data = os.read(fd, CHUNK)
                except BlockingIOError:
                    continue
                if not data:
                    break
                partial += data
                *lines, rest = partial.split(b"\n")
                partial = bytearray(rest)
                for line in lines:
                    line_out(bytes(line))
        finally:
            child.stdout.close()
    if partial:
        line_out(bytes(partial))
    while True:
        # The output ended (the script closed it, or exited): wait for the exit itself.
        left = deadline - time.monotonic()
        stop = _stop_reason(left, cancel)
        if stop is not None:
            return stop
        try:
            child.wait(timeout=min(left, 0.5))
        except subprocess.TimeoutExpired:
            continue
        return "exited"


def _stop_reason(left: float, cancel: CancelSignal | None) -> str | None:
    """``"timeout"`` once no time is ``left``, ``"cancelled"`` once ``cancel`` is set."""
    if left <= 0:
        return "timeout"
    if cancel is not None and cancel.is_set():
        return "cancelled"
    return None
