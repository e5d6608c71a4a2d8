"""The step of DESIGN.md's JSON contract: every run's ``steps`` entry has this shape, and the
TUI, JUnit and the Markdown summary read the same fields."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

# Where a long operation says what it is doing, one line at a time.
Log = Callable[[str], None]


def step(name: str, status: str, seconds: float, detail: str, **extra: Any) -> dict[str, Any]:
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
