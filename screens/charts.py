"""Numbers and sparklines drawn in text: request rates, latencies, error rates, the p95
sparkline of an overview cell, and the labels of the monitor's charts (screens/monitor.py
draws those with Textual's Sparkline widget). No widget here: the overview imports it
before its first paint."""

from __future__ import annotations

from collections.abc import Callable, Sequence

from screens.common import NONE

# Eight heights of one cell, lowest first (the blocks Textual's own Sparkline draws with).
BARS = "▁▂▃▄▅▆▇█"

Format = Callable[[float | None], str]


def ms(value: float | None) -> str:
    """``4.2ms``, ``48ms``, ``1.2s``; ``—`` when unknown (a minute without requests)."""
    if value is None:
        return NONE
    if value < 10:
        return f"{value:.1f}ms"
    if value < 1000:
        return f"{value:.0f}ms"
    return f"{value / 1000:.1f}s"


def rate(value: float | None) -> str:
    """Requests per second: ``0.2/s``, ``4.9/s``, ``49/s``, ``1.2k/s``."""
    if value is None:
        return NONE
    if value < 10:
        return f"{value:.1f}/s"
    if value < 1000:
        return f"{value:.0f}/s"
    return f"{value / 1000:.1f}k/s"


def percent(value: float | None) -> str:
    """An error rate (a fraction) as ``0%``, ``0.4%``, ``12%``."""
    if value is None:
        return NONE
    share = value * 100
    if share == 0:
        return "0%"
    if share < 0.1:
        return "<0.1%"
    return f"{share:.1f}%" if share < 10 else f"{share:.0f}%"


def spark(values: Sequence[float | None]) -> str:
    """One cell per value, scaled between the lowest and highest; a gap (None) is blank."""
    present = [value for value in values if value is not None]
    if not present:
        return " " * len(values)
    low, high = min(present), max(present)
    extent = high - low
    top = len(BARS) - 1
    return "".join(
        " " if value is None else BARS[round((value - low) / extent * top) if extent else 0]
        for value in values
    )


def stats(values: Sequence[float | None], fmt: Format) -> str:
    """``last 48ms`` over ``min 12ms max 120ms``: what a chart's bars stand for (the last
    minute that has a value)."""
    present = [value for value in values if value is not None]
    if not present:
        return "no data"
    return f"last {fmt(present[-1])}\nmin {fmt(min(present))} max {fmt(max(present))}"


def columns(values: Sequence[float | None], width: int) -> list[float | None]:
    """``values`` spread over ``width`` columns, in time order: fewer values than columns
    are stretched, more are bucketed (each column shows the highest of its bucket, so a
    spike is never averaged away); a column without any value stays None."""
    count = len(values)
    out: list[float | None] = []
    for column in range(width if count else 0):
        first = column * count // width
        last = max(first + 1, (column + 1) * count // width)
        present = [value for value in values[first:last] if value is not None]
        out.append(max(present) if present else None)
    return out


def bars(values: Sequence[float | None], width: int, height: int) -> list[str]:
    """A bar chart ``height`` rows high, top row first, of ``values`` over ``width``
    columns, scaled from the lowest value (one eighth of a row) to the highest (full
    height); a column without a value is blank, so the time axis stays true."""
    cells = columns(values, width)
    present = [value for value in cells if value is not None]
    if not present or height < 1:
        return [" " * width] * max(height, 0)
    low, high = min(present), max(present)
    steps = len(BARS) * height
    levels = [
        0
        if value is None
        else 1 + round((value - low) / (high - low) * (steps - 1))
        if high > low
        else 1
        for value in cells
    ]
    rows = []
    for row in reversed(range(height)):
        line = ""
        for level in levels:
            part = level - row * len(BARS)
            line += " " if part <= 0 else "█" if part >= len(BARS) else BARS[part - 1]
        rows.append(line.ljust(width))
    return rows
