"""What the collector does itself when an alert starts firing: an action it is handed
(core.api.monitor hands it core.delivery.auto_rollback's, which this layer may not import),
run in a thread of its own while the caller keeps the collector's heartbeat going, since a
rollback takes seconds (a Bento to start, validate, switch)."""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from core.config.model import Project

if TYPE_CHECKING:
    from core.alerts.alert_state import Transition

# The action: the line that says what it did (or why not), None when it did nothing.
FiringAction = Callable[[Project, "Transition"], "str | None"]

# An alert that starts firing in a minute older than this is not acted on (it pages): the
# collector is catching up after a stop, and what it saw may be over.
ACT_WITHIN_SECONDS = 5 * 60
# Seconds between two heartbeats while an action runs.
HEARTBEAT_SECONDS = 5.0


@dataclass
class Outcome:
    """What an action answered: its ``line``, or the ``error`` it raised (one line)."""

    line: str | None = None
    error: str | None = None


def run_action(
    action: FiringAction, project: Project, alert: Transition, beat: Callable[[], None]
) -> Outcome:
    """``action(project, alert)`` in a thread, calling ``beat`` every
    :data:`HEARTBEAT_SECONDS` until it returns. An exception it raises (a bug) becomes the
    outcome's ``error``; the alert then pages as it would have."""
    outcome = Outcome()

    def work() -> None:
        try:
            outcome.line = action(project, alert)
        except Exception as exc:
            outcome.error = " ".join(f"{type(exc).__name__}: {exc}".split())

    worker = threading.Thread(target=work, name="relman-on-firing", daemon=True)
    worker.start()
    while True:
        worker.join(HEARTBEAT_SECONDS)
        if not worker.is_alive():
            return outcome
        beat()
