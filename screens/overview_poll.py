"""What one poll of the overview reads, in its thread worker (screens/overview.py): the
environments (the ledger, and what really serves), their traffic, then, when due, the
candidates (git and DVC). Each is posted as soon as it is read, so the table fills in as
they arrive; a failure is posted as what the screen shows, never raised into the UI."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from core.errors import ReleaseError
from screens.live_data import LiveFigures, read_live
from screens.messages import LiveLoaded, ProjectLoaded, ProjectLoadFailed, StatusLoaded

if TYPE_CHECKING:
    from textual.message import Message

    from core import api


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
    """Post ProjectLoaded (or ProjectLoadFailed, and nothing more), then LiveLoaded, then,
    when due, StatusLoaded. ``read_project`` gives the project (read again only when
    relman.toml changed); ``previous`` holds the figures that are not due."""
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
    if not due.status:
        return
    try:
        post(StatusLoaded(api.status(project)))
    except ReleaseError as error:
        post(StatusLoaded({"error": error.message}))
    except Exception as error:
        post(StatusLoaded({"error": f"cannot read the candidate: {error}"}))
