"""Cancelling long work: what a front end sets to stop it, and what the work raises then.

Tests, builds and releases take ``cancel``, anything with ``is_set`` (a
:class:`threading.Event` set from another thread); the work stops its child processes and
raises :class:`Cancelled` once the run is recorded ``interrupted``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol

from core.errors import EXIT_BLOCKED, ReleaseError

if TYPE_CHECKING:
    from core.documents import Step


class CancelSignal(Protocol):
    """What tells a run to stop: a :class:`threading.Event` (set from another thread)."""

    def is_set(self) -> bool: ...


class Cancelled(ReleaseError):
    """Work the user cancelled (exit 1, like a block: nothing was changed by it). Its child
    processes were stopped, and a recorded run is left ``interrupted`` with a reason that
    starts with ``cancelled``. ``steps`` are the steps of docs/json.md as far as the work went."""

    exit_code = EXIT_BLOCKED

    def __init__(self, message: str, *, steps: list[Step] | None = None) -> None:
        super().__init__(message)
        self.steps = list(steps or [])
