"""The requests of a window of the proxy's access log, by side (core/targets/access_log.py
writes it; docs/architecture.md): every request's time, whether it failed (5xx) and how long
it took, and for mirrored requests whether the shadow's answer agreed with the stable's.

Only the window is read: ``access.log.1`` (the lines before the last rotation) then
``access.log``, each from an offset found by bisection (:mod:`core.targets.log_seek`), and the
scan stops at the first line past ``until`` by more than the lines' disorder. What was read
is kept (:class:`AccessTail`, per log, in this process) with where each file was read to,
so the next measurement of a growing window reads only the lines written since: a rollout
of a busy environment does not parse its window again at every interval. Lines that are
not JSON objects with a numeric ``t`` and ``status`` are skipped and counted; a record
without ``role`` (written before rollouts existed) is the stable's unless its ``release``
is the new one. Lines are parsed BATCH at a time as one JSON array when that is sure to be
what each parses to alone (core.targets.monitor_log.parse_objects), and kept column by
column (:class:`Records`): a window of 15,000 requests costs tens of milliseconds.
"""

from __future__ import annotations

import json
import math
import os
import threading
from collections import OrderedDict
from dataclasses import dataclass, field
from itertools import compress, repeat
from operator import and_, eq
from pathlib import Path
from typing import Any, BinaryIO, Literal, TypeGuard

from core.targets.access_log import line_time, open_logs
from core.targets.log_seek import forward_lines, start_offset
from core.targets.monitor_log import parse_objects

__all__ = ["AccessTail", "Records", "Requests", "Window", "forget", "read_window"]

# Seconds a line may be out of time order (each is written when its response ends, by
# several threads): the window is looked for this much earlier and read this much later.
DISORDER = 5.0
# Lines parsed at once (as one JSON array).
BATCH = 512


@dataclass
class Requests:
    """One side's requests of a window, in the order logged."""

    times: list[float] = field(default_factory=list)
    failed: list[bool] = field(default_factory=list)  # 5xx (4xx are the client's)
    ms: list[float] = field(default_factory=list)  # durations of those that did not fail
    agree: list[bool | None] = field(default_factory=list)  # mirrored: same answer?

    @property
    def count(self) -> int:
        return len(self.times)

    @property
    def errors(self) -> int:
        return sum(self.failed)

    def add(self, t: float, status: int, ms: float | None, agree: bool | None = None) -> None:
        self.times.append(t)
        failed = status >= 500
        self.failed.append(failed)
        if ms is not None and not failed:
            self.ms.append(ms)
        self.agree.append(agree)


@dataclass
class Window:
    """The stable's and the new release's requests of [since, until)."""

    stable: Requests = field(default_factory=Requests)
    canary: Requests = field(default_factory=Requests)
    malformed: int = 0  # lines skipped: not JSON, or no time or status
    bytes_read: int = 0


# Logs whose tail this process keeps (the least recently measured is dropped first).
KEEP = 8
_tails: OrderedDict[Path, AccessTail] = OrderedDict()
_lock = threading.Lock()
# What a role or release that is neither text nor null is kept as: equal to no release.
_OTHER = ("not text",)


@dataclass
class Records:
    """Records of an access log, column by column, in the order logged, their fields checked:
    ``keys`` (role, release), a role or release that is neither text nor null as ``_OTHER``."""

    times: list[float] = field(default_factory=list)
    keys: list[tuple[Any, Any]] = field(default_factory=list)
    statuses: list[int] = field(default_factory=list)
    ms: list[float | None] = field(default_factory=list)  # None: none, or not a duration
    agree: list[bool | None] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.times)

    def extend(self, other: Records, mask: list[bool] | None = None) -> None:
        """Add ``other``'s records (those ``mask`` marks, when given)."""
        for mine, theirs in zip(self.columns(), other.columns(), strict=True):
            mine.extend(theirs if mask is None else compress(theirs, mask))

    def columns(self) -> tuple[list[Any], ...]:
        return (self.times, self.keys, self.statuses, self.ms, self.agree)

    def append(self, entry: Entry) -> None:
        t, role, release, status, ms, agree = entry
        self.times.append(t)
        self.keys.append((_key(role), _key(release)))
        self.statuses.append(status)
        self.ms.append(ms)
        self.agree.append(agree)


# A record as :func:`_entry` checks it: (t, role, release, status, ms, agree).
Entry = tuple[float, Any, Any, int, float | None, bool | None]


def read_window(
    access_log: Path,
    since: float,
    until: float,
    *,
    stable: str,
    canary: str,
    mode: Literal["canary", "shadow"] = "canary",
) -> Window:
    """The requests of ``stable`` (role "stable") and of ``canary`` (role "canary", or
    "shadow" in shadow mode) logged in [since, until), from this process's tail of the log
    (:class:`AccessTail`). A record naming another release (an earlier rollout's) is left
    out; a missing log is an empty window."""
    with _lock:
        tail = _tails.pop(access_log, None) or AccessTail(access_log)
        _tails[access_log] = tail
        while len(_tails) > KEEP:
            _tails.popitem(last=False)
        return tail.window(since, until, stable=stable, canary=canary, mode=mode)


class AccessTail:
    """The records of one access log from ``floor`` on, and how far each of its files
    (by inode: ``access.log`` becomes ``access.log.1`` when it rotates) was read."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.floor = math.inf  # nothing held yet
        self.held = Records()
        self.positions: dict[int, int] = {}  # inode -> offset of the next line to read

    def window(
        self,
        since: float,
        until: float,
        *,
        stable: str,
        canary: str,
        mode: Literal["canary", "shadow"] = "canary",
    ) -> Window:
        """The window's requests by side: the lines held, and those written since."""
        floor = since - DISORDER
        if floor < self.floor:  # earlier than what is held: read again from there
            self.floor, self.held, self.positions = floor, Records(), {}
        elif floor > self.floor:
            self.floor = floor
            kept = Records()
            kept.extend(self.held, [t >= floor for t in self.held.times])
            self.held = kept
        window = Window()
        self._advance(until + DISORDER, window)
        canary_role = "shadow" if mode == "shadow" else "canary"
        held = self.held
        side_of = {key: _side(*key, stable, canary, canary_role) for key in set(held.keys)}
        sides = list(map(side_of.__getitem__, held.keys))
        inside = [since <= t < until for t in held.times]
        for name, requests in (("stable", window.stable), ("canary", window.canary)):
            if name in side_of.values():
                mask = list(map(and_, inside, map(eq, sides, repeat(name))))
                _fill(requests, held, mask)
        return window

    def _advance(self, stop: float, window: Window) -> None:
        """Read each file from where it was left (a file not seen yet, or shorter than
        that, from the floor) up to its end or the first line at ``stop`` or later."""
        positions: dict[int, int] = {}
        for handle in open_logs(self.path):
            with handle:
                status = os.fstat(handle.fileno())
                offset = self.positions.get(status.st_ino)
                if offset is None or offset > status.st_size:
                    offset = start_offset(handle, status.st_size, self.floor, line_time)
                offset, stopped = self._scan(handle, offset, stop, window)
                positions[status.st_ino] = offset
                if stopped:
                    break
        self.positions = positions

    def _scan(self, handle: BinaryIO, offset: int, stop: float, window: Window) -> tuple[int, bool]:
        """Keep the records from ``offset`` on: (the offset to go on from, whether a line at
        ``stop`` or later was met; it is left unread)."""
        for batch in forward_lines(handle, offset, BATCH):
            records = _records(batch)
            if records is None:  # some line is not a plain record: one by one
                offset, stopped = self._scan_lines(batch, offset, stop, window)
                if stopped:
                    return offset, True
                continue
            times = records.times
            count = len(batch)
            if max(times) >= stop:
                count = next(i for i, t in enumerate(times) if t >= stop)
            used = sum(map(len, batch[:count])) + count
            offset += used
            window.bytes_read += used
            if count < len(batch):
                head = [t >= self.floor for t in times[:count]] + [False] * (len(batch) - count)
                self.held.extend(records, head)
                return offset, True
            self.held.extend(records, None if min(times) >= self.floor else
                             [t >= self.floor for t in times])  # fmt: skip
        return offset, False

    def _scan_lines(
        self, batch: list[bytes], offset: int, stop: float, window: Window
    ) -> tuple[int, bool]:
        """:meth:`_scan` of a batch, line by line."""
        for line in batch:
            entry = _entry(_parse(line)) if line.strip() else None
            if entry is None:
                window.malformed += bool(line.strip())
            elif entry[0] >= stop:
                return offset, True
            elif entry[0] >= self.floor:
                self.held.append(entry)
            offset += len(line) + 1
            window.bytes_read += len(line) + 1
        return offset, False


def _fill(requests: Requests, held: Records, mask: list[bool]) -> None:
    """Add the records ``mask`` marks to ``requests``, as :meth:`Requests.add` does."""
    statuses = list(compress(held.statuses, mask))
    failed = [status >= 500 for status in statuses]
    requests.times.extend(compress(held.times, mask))
    requests.failed.extend(failed)
    requests.ms.extend(
        [
            ms
            for ms, bad in zip(compress(held.ms, mask), failed, strict=True)
            if not bad and ms is not None
        ]
    )
    requests.agree.extend(compress(held.agree, mask))


def _records(lines: list[bytes]) -> Records | None:
    """The records of ``lines`` parsed at once (core.targets.monitor_log.parse_objects), when
    every line is one with a finite float time, an integer status, and the other fields of
    the types the proxy writes (else None: the caller goes line by line); what
    :func:`_entry` makes of each line."""
    objects = parse_objects(lines)
    if objects is None:
        return None
    get = dict.get
    times: list[Any] = list(map(get, objects, repeat("t")))
    if set(map(type, times)) != {float} or not all(map(math.isfinite, times)):
        return None
    statuses: list[Any] = list(map(get, objects, repeat("status")))
    if set(map(type, statuses)) != {int}:
        return None
    ms: list[Any] = list(map(get, objects, repeat("ms")))
    if set(map(type, ms)) != {float} or not all(map(math.isfinite, ms)) or min(ms) < 0:
        ms = [float(value) if _number(value) and value >= 0 else None for value in ms]
    agree: list[Any] = list(map(get, objects, repeat("agree")))
    if not set(map(type, agree)) <= {bool, type(None)}:
        agree = [value if isinstance(value, bool) else None for value in agree]
    roles: list[Any] = list(map(get, objects, repeat("role")))
    releases: list[Any] = list(map(get, objects, repeat("release")))
    if not set(map(type, roles)) | set(map(type, releases)) <= {str, type(None)}:
        roles, releases = list(map(_key, roles)), list(map(_key, releases))
    return Records(times, list(zip(roles, releases, strict=True)), statuses, ms, agree)


def _parse(line: bytes) -> Any:
    try:
        return json.loads(line)
    except ValueError:
        return None


def _entry(record: Any) -> Entry | None:
    """A record's fields as kept, or None when it has no numeric time and status."""
    if not isinstance(record, dict):
        return None
    t, status = record.get("t"), record.get("status")
    if not _number(t) or not _number(status):
        return None
    ms, agree = record.get("ms"), record.get("agree")
    return (
        float(t),
        record.get("role"),
        record.get("release"),
        int(status),
        float(ms) if _number(ms) and ms >= 0 else None,
        agree if isinstance(agree, bool) else None,
    )


def _key(value: Any) -> Any:
    """A role or release as kept: text or null as it is, anything else ``_OTHER`` (which
    :func:`_side` tells from every role and release as it told the value)."""
    return value if value is None or isinstance(value, str) else _OTHER


def _side(role: Any, release: Any, stable: str, canary: str, canary_role: str) -> str | None:
    """ "stable", "canary" or None (another role, or another release than the side's)."""
    if role is None:  # written before rollouts (or by a proxy that does not say)
        role = "canary" if canary_role == "canary" and release == canary else "stable"
    if role == "stable":
        return "stable" if release in (None, stable) else None
    if role == canary_role:
        return "canary" if release in (None, canary) else None
    return None


def _number(value: object) -> TypeGuard[int | float]:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def forget() -> None:
    """Drop every tail kept."""
    with _lock:
        _tails.clear()
