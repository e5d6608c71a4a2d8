"""An engine call in progress, as the run screen shows it: steps and output lines.

The engine says what it does through its ``log`` callback, one line at a time, in the same
words as the batch renderer: ``validate ...`` when a step starts, ``passed  validate  ready in
3.4 s`` when it ends, anything else is output. When the call returns, its document's
``steps`` (docs/json.md) replace what the lines suggested. A :class:`RunState` is
only touched on the event loop (the app's message handlers), but for its ``cancel`` event,
which the engine call reads from its worker thread."""

from __future__ import annotations

import re
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from screens.actions import ActionPlan

STARTED = re.compile(r"^(?P<name>\S.*?) \.\.\.$")
ENDED = re.compile(
    r"^(?P<status>passed|failed|blocked|skipped|cancelled)\s+(?P<name>\S.*?)  (?P<detail>.*)$"
)
# Lines kept for the output pane; older ones are dropped.
MAX_LINES = 2000


def clock() -> float:
    """The clock of elapsed times (tests set a still one)."""
    return time.monotonic()


@dataclass
class StepState:
    name: str
    status: str  # running | passed | failed | skipped | cancelled
    started: float
    seconds: float | None = None
    detail: str = ""
    # A test suite's progress: done of total.
    done: int = 0
    total: int | None = None

    def elapsed(self, at: float) -> float:
        return self.seconds if self.seconds is not None else at - self.started


@dataclass
class RunState:
    """One engine call started from the UI; it outlives the screens that show it."""

    plan: ActionPlan
    # Why (a rollback asks): passed to the engine, kept for its audit log.
    reason: str = ""
    started: float = field(default_factory=lambda: clock())
    steps: list[StepState] = field(default_factory=list)
    lines: deque[str] = field(default_factory=lambda: deque(maxlen=MAX_LINES))
    finished: float | None = None
    # ok | blocked | failed | cancelled, once finished.
    outcome: str | None = None
    error: str = ""
    document: dict[str, Any] | None = None
    # How many lines were ever added (the deque keeps the last MAX_LINES of them).
    total_lines: int = 0
    # Set to ask the engine call to stop (its worker thread reads it): the only state the
    # worker shares. ``cancel_asked`` is when, on the clock of ``started``.
    cancel: threading.Event = field(default_factory=threading.Event)
    cancel_asked: float | None = None

    @property
    def title(self) -> str:
        return self.plan.title

    @property
    def running(self) -> bool:
        return self.finished is None

    @property
    def cancellable(self) -> bool:
        """Whether the engine can stop this call halfway (tests and builds can; a promotion
        is never left half done)."""
        return self.plan.cancellable

    @property
    def cancelling(self) -> bool:
        return self.running and self.cancel.is_set()

    def ask_cancel(self) -> None:
        """Ask the engine call to stop; it ends the processes and says so when it returns."""
        if self.running and self.cancellable and not self.cancel.is_set():
            self.cancel_asked = clock()
            self.cancel.set()
            self.add_line("cancel asked: stopping the processes of the run…")

    def elapsed(self) -> float:
        return (self.finished if self.finished is not None else clock()) - self.started

    def quit_text(self) -> str:
        """What quitting relman now does to this run, as the quit dialog says it: cancelled
        with its processes, or (never stopped halfway) waited for."""
        plan = self.plan
        if self.cancellable:
            return "quit: " + (
                plan.quit_text or f"{self.title} is cancelled and its processes stopped"
            )
        text = plan.quit_text or f"{self.title} cannot be interrupted safely"
        now = next((step.name for step in reversed(self.steps) if step.status == "running"), "")
        return text + (f" (now: {now})" if now else "") + "; relman quits when it is done"

    def left_running(self, grace: float) -> str:
        """The line said after the terminal is restored when relman quit ``grace`` seconds
        after cancelling this run and it had not stopped yet: what may still be running."""
        processes = self.plan.processes or f"the processes of {self.title}"
        return (
            f"relman: {self.title} had not stopped {grace:g} s after it was cancelled: "
            f"{processes} may still be running; relman ends when the engine has stopped them "
            "and recorded the run"
        )

    def add_line(self, line: str) -> None:
        """Take one log line: a step starting or ending, and in every case an output line."""
        self.lines.append(line)
        self.total_lines += 1
        at = clock()
        if started := STARTED.match(line):
            self.steps.append(StepState(started["name"], "running", at))
        elif ended := ENDED.match(line):
            step = self._open_step(ended["name"])
            if step is None:
                step = StepState(ended["name"], ended["status"], at, seconds=0.0)
                self.steps.append(step)
            else:
                step.seconds = at - step.started
            # The engine says "blocked" for a check that said no; its step is "failed".
            step.status = "failed" if ended["status"] == "blocked" else ended["status"]
            step.detail = ended["detail"]

    def progress(self, suite: str, done: int, total: int | None, counts: dict[str, int]) -> None:
        """A test suite's progress (test runs say more through events than through lines)."""
        step = self._open_step(suite) or next(
            (s for s in self.steps if s.name == suite and s.status != "running"), None
        )
        if step is None:
            # Suites start side by side when the run starts; they say so once collected.
            step = StepState(suite, "running", self.started)
            self.steps.append(step)
        step.done, step.total = done, total
        failed = counts.get("failed", 0) + counts.get("error", 0)
        shown = "?" if total is None else str(total)
        step.detail = f"{counts.get('passed', 0)}/{shown} passed" + (
            f", {failed} failed" if failed else ""
        )

    def finish(
        self,
        document: dict[str, Any] | None,
        error: str = "",
        exit_code: int = 0,
        *,
        cancelled: bool = False,
    ) -> None:
        """The call returned ``document`` or raised ``error``: the steps become the
        document's, the outcome ok, blocked (exit 1), failed, or cancelled (the engine
        stopped it when asked: ``cancelled``, or a document that says so)."""
        self.finished = clock()
        self.document = document
        if document is not None and isinstance(document.get("steps"), list):
            self.steps = [self._from_document(step) for step in document["steps"]]
        ok = True
        if document is not None:
            error = error or str(document.get("error") or "")
            exit_code = exit_code or int(document.get("exit_code") or 0)
            ok = bool(document.get("ok", True))
            cancelled = cancelled or bool(document.get("cancelled"))
        for step in self.steps:
            if step.status == "running":
                step.status, step.seconds = "failed", self.finished - step.started
                step.detail = step.detail or "stopped when the call ended"
                if cancelled:
                    step.status = "cancelled"
        self.error = error
        if cancelled:
            self.outcome = "cancelled"
            self.error = error or "cancelled"
        elif ok and not error and exit_code == 0:
            self.outcome = "ok"
        elif error and exit_code == 1:
            # A test, gate, approval or lock stopped it; nothing changed.
            self.outcome = "blocked"
        else:
            self.outcome = "failed"
            if not self.error:
                failed = [s for s in self.steps if s.status == "failed"]
                self.error = failed[0].detail if failed else "the engine reported a failure"

    def _open_step(self, name: str) -> StepState | None:
        for step in reversed(self.steps):
            if step.name == name and step.status == "running":
                return step
        return None

    def _from_document(self, step: dict[str, Any]) -> StepState:
        status = "cancelled" if step.get("cancelled") else str(step.get("status", ""))
        return StepState(
            name=str(step.get("name", "")),
            status=status,
            started=self.started,
            seconds=float(step.get("seconds") or 0.0),
            detail=str(step.get("detail", "")),
        )

    def lines_after(self, seen: int) -> list[str]:
        """The lines added after the first ``seen`` (those still kept)."""
        new = min(self.total_lines - seen, len(self.lines))
        return list(self.lines)[len(self.lines) - new :] if new > 0 else []

    def summary(self) -> str:
        """One line for a notification: what ran and how it ended."""
        if self.outcome is None:
            return f"{self.title}: running"
        if self.outcome == "ok":
            return f"{self.title}: done in {self.elapsed():.1f} s"
        if self.outcome == "cancelled":
            return f"{self.title}: {self.error}"
        return f"{self.title}: {self.outcome}: {self.error}"
