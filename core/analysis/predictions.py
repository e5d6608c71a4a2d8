"""The predictions a release logged in a window, and the true labels known for them.

Each instance keeps its own ``bentoml.monitor`` logs under ``INSTANCE/monitoring``
(core/targets/monitor_log.py). They are read with :class:`MonitorReader` (its
``read_outcomes``: a row's time, request id, prediction and target, not its features),
started at an offset found by bisection on the rows' ``timestamp``
(:mod:`core.targets.log_seek`), so a stable release that has served for a day costs the
window, not the day; the reader and the rows read are kept (:class:`RowsTail`, per monitor
folder, in this process), so the next measurement reads only the rows logged since. The
labels are the feedback imported with ``relman feedback`` (the metric store's ``feedback``
table, by request id: ``MetricReads.feedback_labels``), else a row's own target column, as
the collector joins them.
"""

from __future__ import annotations

import json
import math
import os
import threading
from collections import OrderedDict
from datetime import datetime
from operator import itemgetter
from pathlib import Path

from core.targets.log_seek import start_offset
from core.targets.monitor_log import MonitorReader, Outcome, monitor_folders

__all__ = ["RowsTail", "forget", "window_rows"]

# Seconds a row's time may be out of order in its file (each worker logs to its own file
# as it answers, so hardly at all).
DISORDER = 5.0
# Monitor folders whose tail this process keeps (the least recently measured is dropped).
KEEP = 16
_tails: OrderedDict[Path, RowsTail] = OrderedDict()
_lock = threading.Lock()


def window_rows(instance_folder: Path, since: float, until: float) -> tuple[list[Outcome], int]:
    """(the rows every monitor of the instance logged in [since, until), by time, lines
    skipped as unparsable since the last call). A folder without monitor logs has no rows."""
    rows: list[Outcome] = []
    skipped = 0
    for folder in monitor_folders(instance_folder / "monitoring").values():
        with _lock:
            tail = _tails.pop(folder, None) or RowsTail(folder)
            _tails[folder] = tail
            while len(_tails) > KEEP:
                _tails.popitem(last=False)
            found, bad = tail.rows(since, until)
        rows.extend(found)
        skipped += bad
    rows.sort(key=itemgetter(0))
    return rows, skipped


class RowsTail:
    """The rows of one monitor folder from ``floor`` on, and its reader (which knows how far
    each data file was read): the next measurement reads only what was logged since."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.floor = math.inf  # nothing held yet
        self.held: list[Outcome] = []
        self.reader: MonitorReader | None = None

    def rows(self, since: float, until: float) -> tuple[list[Outcome], int]:
        """(the rows of [since, until), lines skipped as unparsable by this call)."""
        floor = since - DISORDER
        if self.reader is None or floor < self.floor:  # start over from the window
            self.reader = MonitorReader(self.folder, _state_at(self.folder / "data", floor))
            self.floor, self.held = floor, []
        elif floor > self.floor:
            self.floor = floor
            self.held = [row for row in self.held if row[0] >= floor]
        skipped = self.reader.skipped
        while True:  # a pass reads up to the reader's budget: on until one moves nothing
            before = self.reader.state()
            found = self.reader.read_outcomes()  # by time
            if found and found[0][0] < floor:
                found = [row for row in found if row[0] >= floor]
            self.held.extend(found)
            if self.reader.state() == before:
                break
        rows = [row for row in self.held if since <= row[0] < until]
        return rows, self.reader.skipped - skipped


def _state_at(data: Path, target: float) -> dict[str, dict[str, int]]:
    """A reader state (core.targets.monitor_log) that starts each data file near ``target``
    (a file written before it, near its end)."""
    state: dict[str, dict[str, int]] = {}
    try:
        names = os.listdir(data)
    except (FileNotFoundError, NotADirectoryError):
        return state
    for name in names:
        try:
            with open(data / name, "rb") as handle:
                stat = os.fstat(handle.fileno())
                offset = start_offset(handle, stat.st_size, target, _row_time)
        except (FileNotFoundError, IsADirectoryError):
            continue
        state[name] = {"inode": stat.st_ino, "offset": offset}
    return state


def _row_time(line: bytes) -> float | None:
    """A monitor row's time, as MonitorReader reads it (naive: this machine's local time)."""
    try:
        value = json.loads(line).get("timestamp")
        return datetime.fromisoformat(value).timestamp() if isinstance(value, str) else None
    except (ValueError, AttributeError, TypeError):
        return None


def forget() -> None:
    """Drop every tail kept."""
    with _lock:
        _tails.clear()
