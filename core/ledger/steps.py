"""The step of the JSON contract (docs/json.md; its type is core.documents.Step): every run's
``steps`` entry has this shape, and the TUI, JUnit and the Markdown summary read the same
fields."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # types only: creating the TypedDicts costs milliseconds at every start
    from typing import Unpack

    from core.documents import Step, StepExtras, StepStatus

# Where a long operation says what it is doing, one line at a time.
Log = Callable[[str], None]


def step(
    name: str, status: StepStatus, seconds: float, detail: str, **extra: Unpack[StepExtras]
) -> Step:
    """``{"name", "status", "seconds", "detail"}`` (never renamed), plus ``extra`` fields."""
    return {
        "name": name,
        "status": status,
        "seconds": round(seconds, 3),
        "detail": detail,
        **extra,
    }


def quiet(_line: str) -> None:
    """A log callback that drops every line (the default where nobody listens)."""
