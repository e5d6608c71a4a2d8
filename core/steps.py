"""The step of DESIGN.md's JSON contract: every run's ``steps`` entry has this shape, and the
TUI, JUnit and the Markdown summary read the same fields."""

from __future__ import annotations

from typing import Any


def step(name: str, status: str, seconds: float, detail: str, **extra: Any) -> dict[str, Any]:
    """``{"name", "status", "seconds", "detail"}`` (never renamed), plus ``extra`` fields."""
    return {
        "name": name,
        "status": status,
        "seconds": round(seconds, 3),
        "detail": detail,
        **extra,
    }
