"""Finding a time in a file of JSON lines written in (roughly) time order, by bisection over
byte offsets: a window of the last minutes of a log of megabytes costs a few dozen reads,
not the whole file, and nothing has to be remembered between measurements. The rollout
analysis (core.analysis) and the collector's latencies (core.monitoring.latency_log) both
read the proxy's access log this way.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import BinaryIO

__all__ = ["forward_lines", "start_offset"]

# Below this many bytes between the bounds, the bisection stops and the scan takes over.
CLOSE_ENOUGH = 16 * 1024
# Lines tried after a probe's offset to find one with a time (unparsable ones are skipped).
PROBE_LINES = 16
CHUNK = 1024 * 1024

TimeOf = Callable[[bytes], float | None]


def start_offset(handle: BinaryIO, size: int, target: float, time_of: TimeOf) -> int:
    """A line start at or before the first line whose time is at least ``target``, within
    about CLOSE_ENOUGH bytes of it (lines out of order by less than the caller's margin
    are fine: ``target`` carries it). Lines without a time are stepped over."""
    low, high = 0, size
    while high - low > CLOSE_ENOUGH:
        middle = (low + high) // 2
        probe = _probe(handle, middle, high, time_of)
        if probe is not None and probe[1] < target:
            low = probe[0]  # that line and all before it are earlier than the target
        else:
            high = middle  # no line starts in [middle, high) or the one after is not earlier
    return low


def _probe(handle: BinaryIO, offset: int, limit: int, time_of: TimeOf) -> tuple[int, float] | None:
    """(start, time) of the first line with a time starting at or after ``offset`` and before
    ``limit``."""
    handle.seek(max(0, offset - 1))
    if offset > 0:
        handle.readline()  # the rest of the line ``offset`` falls in (or the newline before it)
    for _ in range(PROBE_LINES):
        start = handle.tell()
        if start >= limit:
            return None
        line = handle.readline()
        if not line.endswith(b"\n"):
            return None  # the end of the file, or a line still being written
        t = time_of(line)
        if t is not None:
            return start, t
    return None


def forward_lines(handle: BinaryIO, offset: int, batch: int) -> Iterator[list[bytes]]:
    """The whole lines from ``offset`` on, ``batch`` at a time (fewer at the end of a read
    block; a last line without its newline is still being written: left for the next
    measurement)."""
    handle.seek(offset)
    rest = b""
    while block := handle.read(CHUNK):
        lines = (rest + block).split(b"\n")
        rest = lines.pop()
        for first in range(0, len(lines), batch):
            yield lines[first : first + batch]
