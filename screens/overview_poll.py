"""What one poll of the overview reads, in its thread worker (screens/overview.py): the
environments (the ledger, and what really serves), their traffic, the watcher (``relman
watch``), then, when due, the candidates (git and DVC) and the recent history. Each is
posted as soon as it is read, so the table fills in as they arrive; a failure is posted as
what the screen shows, never raised into the UI. :class:`OverviewPolls` is the screen's
side: what is due at each poll, and the worker that reads it."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from textual import work
from textual.message import Message

from core.errors import ReleaseError
from screens.live import PolledScreen
from screens.live_data import LiveFigures, file_stamp, read_live
from screens.messages import (
    LiveLoaded,
    PollDone,
    ProjectLoaded,
    ProjectLoadFailed,
    RecentLoaded,
    StatusLoaded,
)

if TYPE_CHECKING:
    from core import api


# History entries read for the lines under the table (more than fit at 80x24 or 120x40).
RECENT = 30


class WatcherLoaded(Message):
    """``api.watcher_status``: whether ``relman watch`` runs and what it last started, or
    why that could not be read (``error``). Only the latest matters."""

    def __init__(self, watcher: dict[str, Any] | None, error: str = "") -> None:
        super().__init__()
        self.watcher = watcher
        self.error = error

    def can_replace(self, message: Message) -> bool:
        return isinstance(message, WatcherLoaded)


@dataclass(frozen=True)
class Due:
    """What a poll reads besides the environments."""

    status: bool
    series: bool
    alerts: bool


def read_overview(
    read_project: Callable[[], api.Project],
    due: Due,
    previous: LiveFigures,
    post: Callable[[Message], object],
) -> None:
    """Post ProjectLoaded (or ProjectLoadFailed, and nothing more), then LiveLoaded and
    WatcherLoaded, then, when due, StatusLoaded and RecentLoaded. ``read_project`` gives the
    project (read again only when relman.toml changed); ``previous`` holds the figures that
    are not due."""
    from core import api  # the engine loads after the first paint

    try:
        project = read_project()
        services = api.overview(project)
    except ReleaseError as error:
        post(ProjectLoadFailed(error.message, error.exit_code))
        return
    except Exception as error:  # a bug or an I/O failure: say it, never crash the UI
        post(ProjectLoadFailed(f"cannot load the project: {error}", 3))
        return
    post(ProjectLoaded(project, services))
    try:
        live = read_live(project, services, previous, series_due=due.series, alerts_due=due.alerts)
    except ReleaseError as error:
        live = LiveFigures(error=error.message)
    except Exception as error:
        live = LiveFigures(error=f"cannot read the metric store: {error}")
    post(LiveLoaded(live))
    try:
        post(WatcherLoaded(api.watcher_status(project)))
    except ReleaseError as error:
        post(WatcherLoaded(None, error.message))
    except Exception as error:
        post(WatcherLoaded(None, f"cannot read the watcher: {error}"))
    if not due.status:
        return
    try:
        post(StatusLoaded(api.status(project)))
    except ReleaseError as error:
        post(StatusLoaded({"error": error.message}))
    except Exception as error:
        post(StatusLoaded({"error": f"cannot read the candidate: {error}"}))
    try:
        post(RecentLoaded(list(api.history(project, limit=RECENT)["entries"])))
    except ReleaseError as error:
        post(RecentLoaded([], error.message))
    except Exception as error:
        post(RecentLoaded([], f"cannot read the history: {error}"))


class OverviewPolls(PolledScreen):
    """The overview's polls (screens/overview.py): every REFRESH_SECONDS the environments;
    the alerts, the series and the candidate (with the recent history) at their own pace."""

    REFRESH_SECONDS = 5.0
    # The candidate (git and DVC, the costly read) is read again this often, and at once
    # after a run or on `r`.
    STATUS_SECONDS = 30.0
    # The series behind the traffic columns gain a point a minute: read this often.
    METRICS_SECONDS = 10.0
    # The alerts change at the collector's passes (every 5 s by default): read this often.
    ALERTS_SECONDS = 5.0

    def __init__(self, project_dir: Path | None, project: api.Project | None) -> None:
        super().__init__()
        self.project_dir = project_dir
        self.live = LiveFigures()
        # When the candidate, the series and the alerts were last read (time.monotonic());
        # None: at the next poll.
        self.status_read: float | None = None
        self.series_read: float | None = None
        self.alerts_read: float | None = None
        # The project and the stamp of its relman.toml (see read_project; the worker's).
        self.loaded: tuple[api.Project, tuple[int, int]] | None = None
        if project is not None:  # read by the command line: the first poll need not again,
            self.loaded = (project, file_stamp(project.config_path))
        # unless it was read quickly from a repository without relman.toml, for the first
        # paint: its full reading (DVC's index) is the first poll's, in the worker.
        self.read_fully = project is not None and project.inferred

    def action_refresh(self) -> None:
        """Read the project again, the candidate too (the table is updated in place)."""
        self.status_read = self.series_read = self.alerts_read = None
        self.poll_now()

    def due(self, last: float | None, seconds: float) -> bool:
        return last is None or time.monotonic() - last >= seconds

    def fetch(self) -> None:
        """Every poll reads the environments (the ledger, and what really serves); the
        alerts, the series and the candidate when ALERTS_, METRICS_ and STATUS_SECONDS have
        passed since they were last read (and all of them at once after a run or on ``r``)."""
        now = time.monotonic()
        due = Due(
            status=self.due(self.status_read, self.STATUS_SECONDS),
            series=self.due(self.series_read, self.METRICS_SECONDS) or bool(self.live.error),
            alerts=self.due(self.alerts_read, self.ALERTS_SECONDS) or bool(self.live.error),
        )
        self.status_read = now if due.status else self.status_read
        self.series_read = now if due.series else self.series_read
        self.alerts_read = now if due.alerts else self.alerts_read
        self.load(due, self.live)

    @work(thread=True, exclusive=True, exit_on_error=False, group="load")
    def load(self, due: Due, previous: LiveFigures) -> None:
        """Read relman.toml, the environments and their traffic, then (when due) the
        candidates, off the event loop; PollDone last, whatever happened."""
        try:
            from core import api

            # A poll that reads a repository without relman.toml and then its candidates
            # builds DVC's index once.
            with api.one_dvc_session():
                read_overview(self.read_project, due, previous, self.post_message)
        finally:
            self.post_message(PollDone())

    def read_project(self) -> api.Project:
        """The project, read again only when relman.toml changed since the last poll."""
        from core import api  # the engine loads after the first paint

        if self.loaded is not None and not self.read_fully:
            project, stamp = self.loaded
            if file_stamp(project.config_path) == stamp:
                return project
        self.read_fully = False
        # Without relman.toml: what the repository declares, until one is written.
        project = api.read_project(self.project_dir)
        self.loaded = (project, file_stamp(project.config_path))
        return project
