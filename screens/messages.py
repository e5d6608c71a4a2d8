"""Messages the workers of the screens and of the app post. Workers never touch widgets:
they post one of these and the handler (on the event loop) updates the screen."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from textual.message import Message

if TYPE_CHECKING:
    from core.api import Project, ServiceView
    from screens.actions import ActionPlan
    from screens.live_data import LiveFigures, MonitorView
    from screens.release_data import ReleaseDetail
    from screens.runs import RunState


class ProjectLoaded(Message):
    """The project was loaded and its overview read.

    Posted on the screen that ran the load; it bubbles to the app, which keeps the project
    and shows its name in the header.
    """

    def __init__(self, project: Project, services: list[ServiceView]) -> None:
        super().__init__()
        self.project = project
        self.services = services


class ProjectLoadFailed(Message):
    """The project could not be loaded; ``error`` is the engine's one-line explanation and
    ``exit_code`` the code the command line exits with for it."""

    def __init__(self, error: str, exit_code: int = 2) -> None:
        super().__init__()
        self.error = error
        self.exit_code = exit_code


class StatusLoaded(Message):
    """``api.status``: each service's candidate (clean, dirty or stale, and why)."""

    def __init__(self, status: dict[str, Any]) -> None:
        super().__init__()
        self.status = status


class PollDone(Message):
    """A live screen's poll ended (whatever it found): time to arm the next one."""


class LiveLoaded(Message):
    """The overview's traffic figures: request rate, p95 and firing alerts per environment.
    Only the latest matters, so a backlog collapses."""

    def __init__(self, live: LiveFigures) -> None:
        super().__init__()
        self.live = live

    def can_replace(self, message: Message) -> bool:
        return isinstance(message, LiveLoaded)


class MonitorLoaded(Message):
    """One environment's per-minute series over a range, and the project's alerts."""

    def __init__(self, view: MonitorView) -> None:
        super().__init__()
        self.view = view

    def can_replace(self, message: Message) -> bool:
        return isinstance(message, MonitorLoaded)


class DriftLoaded(Message):
    """``api.drift`` of one environment (``document``), or why it could not be read
    (``error``). Only the latest matters, so a backlog collapses."""

    def __init__(
        self, service: str, env: str, document: dict[str, Any] | None, error: str = ""
    ) -> None:
        super().__init__()
        self.service = service
        self.env = env
        self.document = document
        self.error = error

    def can_replace(self, message: Message) -> bool:
        return isinstance(message, DriftLoaded)


class AlertsLoaded(Message):
    """``api.alerts``: firing, pending and past alerts, and the collector's pid."""

    def __init__(self, document: dict[str, Any]) -> None:
        super().__init__()
        self.document = document

    def can_replace(self, message: Message) -> bool:
        return isinstance(message, AlertsLoaded)


class ReleaseLoaded(Message):
    """The release screen's data: lineage, deltas, tests, gates, history."""

    def __init__(self, detail: ReleaseDetail) -> None:
        super().__init__()
        self.detail = detail


class EngineFailed(Message):
    """A read for a screen failed; ``error`` is the one line to show, ``title`` says what."""

    def __init__(self, title: str, error: str) -> None:
        super().__init__()
        self.title = title
        self.error = error


class PlanReady(Message):
    """What an action would do, read fresh from the engine: ask the user, then run it."""

    def __init__(self, plan: ActionPlan) -> None:
        super().__init__()
        self.plan = plan


class RunLine(Message):
    """One line of an engine call's ``log`` (a step starting or ending, or its output)."""

    def __init__(self, run: RunState, line: str) -> None:
        super().__init__()
        self.run = run
        self.line = line


class RunProgress(Message):
    """A test suite's progress; only the latest of one suite matters, so a backlog collapses."""

    def __init__(self, run: RunState, suite: str, done: int, total: int | None, counts: Any):
        super().__init__()
        self.run = run
        self.suite = suite
        self.done = done
        self.total = total
        self.counts = dict(counts)

    def can_replace(self, message: Message) -> bool:
        return (
            isinstance(message, RunProgress)
            and message.run is self.run
            and message.suite == self.suite
        )


class RunFinished(Message):
    """The engine call returned ``document`` or raised (``error``, its exit code)."""

    def __init__(
        self,
        run: RunState,
        *,
        document: dict[str, Any] | None = None,
        error: str = "",
        exit_code: int = 0,
        refused: bool = False,
        cancelled: bool = False,
    ) -> None:
        super().__init__()
        self.run = run
        self.document = document
        self.error = error
        self.exit_code = exit_code
        # The engine refused because the session is read-only (ReadOnlyError).
        self.refused = refused
        # The engine stopped the call because the user cancelled it (core.cancel.Cancelled).
        self.cancelled = cancelled


class AuditLoaded(Message):
    """One page of history (appended when ``more``) and the chain check."""

    def __init__(self, page: dict[str, Any], verify: dict[str, Any] | None, *, more: bool):
        super().__init__()
        self.page = page
        self.verify = verify
        self.more = more


class RecentLoaded(Message):
    """The overview's last few history entries (``api.history``), or the line saying why
    they could not be read."""

    def __init__(self, entries: list[dict[str, Any]], error: str = "") -> None:
        super().__init__()
        self.entries = entries
        self.error = error


class SignalsChanged(Message):
    """What the header counts of the overview's on-call signals (``1 firing · 1
    interrupted``; empty when all is well). Posted on the overview, it bubbles to the app."""

    def __init__(self, summary: str) -> None:
        super().__init__()
        self.summary = summary
