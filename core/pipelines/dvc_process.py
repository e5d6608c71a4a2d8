"""The parent's side of :mod:`core.pipelines.dvc_child`: the child started with the project
root as working directory, in its own session, its events (stdout) and output lines (stderr)
drained together, its end bounded by a cancel.

Every output line goes to a ``log`` callback as it arrives; the last 200 are kept. A cancel
(checked at least twice a second), Ctrl-C or a failing callback ends the whole process group,
the stage command running in it included.
"""

from __future__ import annotations

import contextlib
import json
import os
import selectors
import subprocess
import sys
from collections import deque
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from core.cancel import Cancelled
from core.errors import BlockedError, InfraError
from core.host.processes import end_child

if TYPE_CHECKING:
    from core.cancel import CancelSignal

__all__ = ["CHILD", "KEPT_LINES", "DvcChild", "Log"]

Log = Callable[[str], None]

CHILD = Path(__file__).with_name("dvc_child.py")
KEPT_LINES = 200
_CHUNK = 64 * 1024


class DvcChild:
    """One run of dvc_child.py: its events (stdout) and its output lines (stderr), drained
    together; the output goes to ``log`` line by line and the last 200 are kept."""

    def __init__(self, root: Path, spec: dict[str, Any], log: Log) -> None:
        self.root = root
        self.spec = spec
        self.log = log
        self.events: list[dict[str, Any]] = []
        self.lines: deque[str] = deque(maxlen=KEPT_LINES)
        self.returncode: int | None = None
        # Output since the current stage started: its last line says why it failed.
        self._stage_lines: dict[str, list[str]] = {}
        self._stage: str | None = None

    def run(self, env: dict[str, str], cancel: CancelSignal | None, what: str) -> None:
        full_env = {**os.environ, **env, "PYTHONUNBUFFERED": "1", "DVC_NO_ANALYTICS": "1"}
        # -P: the script's folder is not put on sys.path (its modules must not shadow any).
        command = [sys.executable, "-P", str(CHILD), json.dumps(self.spec)]
        child = subprocess.Popen(
            command,
            cwd=self.root,
            env=full_env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            start_new_session=True,
        )
        try:
            stopped = self._pump(child, cancel)
        finally:
            end_child(child)  # on a cancel, Ctrl-C or a failing log: no stage outlives it
            for pipe in (child.stdout, child.stderr):
                if pipe is not None:
                    pipe.close()
        self.returncode = child.returncode
        if stopped:
            where = f" during stage {self._stage}" if self._stage else ""
            raise Cancelled(
                f"{what} stopped{where}; the stages finished before are recorded in dvc.lock"
            )

    def _pump(self, child: subprocess.Popen[bytes], cancel: CancelSignal | None) -> bool:
        """Drain both pipes until they close; True when ``cancel`` was set first."""
        assert child.stdout is not None and child.stderr is not None
        partial: dict[int, bytearray] = {}
        handlers = {child.stdout.fileno(): self._event, child.stderr.fileno(): self._line}
        with selectors.DefaultSelector() as selector:
            for fd in handlers:
                os.set_blocking(fd, False)
                selector.register(fd, selectors.EVENT_READ)
                partial[fd] = bytearray()
            while selector.get_map():
                if cancel is not None and cancel.is_set():
                    return True
                for key, _ in selector.select(0.5):
                    fd = int(key.fd)
                    try:
                        data = os.read(fd, _CHUNK)
                    except BlockingIOError:
                        continue
                    if not data:
                        selector.unregister(fd)
                        if partial[fd]:
                            handlers[fd](bytes(partial[fd]))
                        continue
                    *complete, rest = (partial[fd] + data).split(b"\n")
                    partial[fd] = bytearray(rest)
                    for raw in complete:
                        handlers[fd](bytes(raw))
        while True:
            if cancel is not None and cancel.is_set():
                return True
            with contextlib.suppress(subprocess.TimeoutExpired):
                child.wait(timeout=0.5)
                return False

    def _event(self, raw: bytes) -> None:
        try:
            event = json.loads(raw)
        except ValueError:
            return
        if not isinstance(event, dict) or "event" not in event:
            return
        self.events.append(event)
        if event["event"] == "start":
            self._stage = event["stage"]
            self._stage_lines[self._stage] = []
        elif event["event"] == "end":
            self._stage = None

    def _line(self, raw: bytes) -> None:
        # Progress bars redraw with carriage returns: keep what a line ends as.
        line = raw.decode("utf-8", "replace").rsplit("\r", 1)[-1].rstrip()
        if not line.strip():
            return
        self.lines.append(line)
        if self._stage is not None:
            self._stage_lines[self._stage].append(line)
        self.log(line)

    def last(self, kind: str) -> dict[str, Any] | None:
        return next((e for e in reversed(self.events) if e["event"] == kind), None)

    def stage_error(self, stage: str) -> str | None:
        """The last line the stage's command wrote; not DVC's own lines about it."""
        own = [
            line
            for line in self._stage_lines.get(stage, [])
            if not line.startswith(("Running stage ", "> ", "Verifying ", "WARNING: ", "ERROR: "))
        ]
        return " ".join(own[-1].split()) if own else None

    def raise_error(self, what: str) -> None:
        """Raise what the child reported, or the way it ended, as one line."""
        error = self.last("error")
        if error is not None:
            reason = error.get("error") or "no reason given"
            if error.get("kind") == "locked":
                raise BlockedError(
                    f"{what}: the DVC repository at {self.root} is locked by another DVC "
                    f"process ({reason}); wait for it to finish, then run the pipeline again"
                )
            raise InfraError(f"{what}: DVC failed in {self.root}: {reason}")
        if self.returncode != 0:
            tail = self.lines[-1] if self.lines else f"exit code {self.returncode}"
            raise InfraError(f"{what}: the DVC child process failed in {self.root}: {tail}")
