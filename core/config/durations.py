"""Durations as relman.toml writes them: ``"30s"``, ``"2m"``, ``"1h30m"``, ``"500ms"``."""

from __future__ import annotations

import re

_PART = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h|d)")
_UNIT = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}


def parse_duration(text: str) -> float:
    """Seconds in ``text``; ValueError (with what is accepted) when it is not a duration."""
    cleaned = text.strip().replace(" ", "")
    position, total = 0, 0.0
    for match in _PART.finditer(cleaned):
        if match.start() != position:
            break
        total += float(match.group(1)) * _UNIT[match.group(2)]
        position = match.end()
    if not cleaned or position != len(cleaned):
        raise ValueError(f"{text!r} is not a duration (write e.g. '30s', '2m', '1h30m')")
    return total


def format_duration(seconds: float) -> str:
    """``90`` -> ``"1m30s"``; the shortest way relman.toml would write it."""
    if seconds < 1:
        return f"{round(seconds * 1000)}ms"
    if seconds != int(seconds) and seconds < 60:
        return f"{seconds:g}s"
    whole = round(seconds)
    hours, rest = divmod(whole, 3600)
    minutes, secs = divmod(rest, 60)
    parts = [
        f"{hours}h" if hours else "",
        f"{minutes}m" if minutes else "",
        f"{secs}s" if secs else "",
    ]
    return "".join(parts) or "0s"
