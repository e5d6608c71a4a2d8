"""The proxy's access log read by the collector for exact latencies: every request the
stable side served and that did not fail (status < 500), its ``ms`` counted in a log-linear
histogram (store.metrics.sketch) of its minute, release and 10-second bin
(docs/monitoring.md, "Exact latencies").

:class:`AccessLatencyReader` reads what was written since its last pass: ``access.log.1``
(the lines before the last rotation, core/targets/access_log.py) then ``access.log``, each
file known by its inode and first line, whole lines only. Its :meth:`~AccessLatencyReader.state`
is plain JSON, stored by the transaction that stores the histograms it read, so a collector
killed at any point reads no line twice and skips none. Lines arrive up to DISORDER seconds
out of time order and are written out once a second: :meth:`~AccessLatencyReader.final` says
up to when its minutes are complete.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO, TypeGuard

from core.targets.access_log import line_time, open_logs
from core.targets.log_seek import start_offset
from core.targets.monitor_log import parse_objects
from store.metrics.latency import SUB_BINS, SUB_SECONDS, LatencyRow
from store.metrics.sketch import LogHistogram

__all__ = ["DISORDER", "FLUSH_SECONDS", "AccessLatencyReader"]

# Seconds a line may be out of time order (each is written when its response ends).
DISORDER = 5.0
# The proxy writes its log out once a second (core/targets/proxy.py).
FLUSH_SECONDS = 1.0
# Bytes read per pass: a backlog (the collector stopped for long) is spread over passes.
READ_BUDGET = 8 * 1024 * 1024
# Lines parsed at once (as one JSON array), and bytes of a file's first line that identify it.
BATCH = 512
HEAD_BYTES = 4096

# Values of one (minute, release, bin), gathered before they are counted.
_Key = tuple[int, Any, int]


@dataclass
class _File:
    inode: int
    offset: int
    head: str | None  # "LENGTH:DIGEST" of its first line once read: a rewritten file is told

    def to_dict(self) -> dict[str, Any]:
        return {"inode": self.inode, "offset": self.offset, "head": self.head}


class AccessLatencyReader:
    """The latencies of the access log ``path`` of (service, env) written since the last
    pass. ``state`` is what :meth:`state` gave the last time it was stored (None: never
    read; the first pass starts at ``floor``, a time, found by bisection, and lines before
    it are left out)."""

    def __init__(
        self,
        path: Path,
        state: Mapping[str, Any] | None,
        *,
        service: str,
        env: str,
        floor: float,
    ) -> None:
        self.path = path
        self.service = service
        self.env = env
        self.files: dict[int, _File] = {}
        self.seen: float | None = None  # the newest time read
        self.floor = floor
        self.fresh = state is None  # nothing read yet: seek to the floor
        if state is not None:
            self._restore(state)
        self.exists = False  # the log was there at the last read
        self.caught_up = False  # the last read reached the end of the log
        self.lines = 0  # lines read by the last read
        self.bytes = 0
        self.bad = 0  # lines it skipped: not JSON, or no time
        self.problems: list[str] = []

    def _restore(self, state: Mapping[str, Any]) -> None:
        files = state.get("files")
        for entry in files if isinstance(files, list) else []:
            if isinstance(entry, dict) and _int(entry.get("inode")) and _int(entry.get("offset")):
                head = entry.get("head")
                inode = entry["inode"]
                self.files[inode] = _File(inode, entry["offset"], head if _text(head) else None)
        seen, floor = state.get("seen"), state.get("floor")
        self.seen = float(seen) if _number(seen) else None
        if _number(floor):
            self.floor = float(floor)

    def state(self) -> dict[str, Any]:
        """Where each file was read to, the newest time read and the floor: plain JSON."""
        return {
            "files": [f.to_dict() for f in self.files.values()],
            "seen": self.seen,
            "floor": self.floor,
        }

    def final(self, now: float) -> float:
        """The time up to which every line of the log is read: the minutes that end by it
        are complete. A line comes at most DISORDER late, so the newest time read less
        that; and when the last read reached the end of the log, ``now`` less that and a
        flush. No log (or one that cannot be read): nothing to wait for (infinity)."""
        if not self.exists:
            return math.inf
        final = -math.inf if self.seen is None else self.seen - DISORDER
        if self.caught_up:
            final = max(final, now - DISORDER - FLUSH_SECONDS)
        return final

    # ------------------------------------------------------------------------ reading

    def read(self) -> list[LatencyRow]:
        """The latencies written since the last read, by minute and release (the reader
        moves on in memory; its caller stores :meth:`state` with them)."""
        self.problems, self.lines, self.bytes, self.bad = [], 0, 0, 0
        values: dict[_Key, list[float]] = {}
        handles = open_logs(self.path)
        self.exists = bool(handles)
        self.caught_up = True
        files: dict[int, _File] = {}
        budget = READ_BUDGET
        seen = self.seen
        try:
            for handle in handles:
                if budget <= 0:
                    self.caught_up = False  # the next file is read next pass (from 0)
                    break
                status = os.fstat(handle.fileno())
                head = _head(handle)
                known = self.files.get(status.st_ino)
                if known is not None and (
                    known.offset > status.st_size or (known.head and head != known.head)
                ):
                    known = None  # truncated, or another file on the inode: read it whole
                if known is not None:
                    offset = known.offset
                elif self.fresh:
                    offset = start_offset(handle, status.st_size, self.floor - DISORDER, line_time)
                else:
                    offset = 0  # a file new since the last read: all of it is new
                end = self._scan(handle, offset, budget, values)
                budget -= end - offset
                files[status.st_ino] = _File(status.st_ino, end, head)
        except OSError as exc:
            # Nothing moves (read again next pass), and no minute waits on a log that
            # cannot be read: they are judged from the histogram.
            self.exists, self.seen = False, seen
            self.problems.append(f"{self.path}: cannot read it ({exc.strerror or exc})")
            return []
        finally:
            for handle in handles:
                handle.close()
        self.files, self.fresh = files, False
        if self.bad:
            self.problems.append(f"{self.path.name}: {self.bad} line(s) without a time skipped")
        return self._rows(values)

    def _scan(
        self, handle: BinaryIO, offset: int, budget: int, values: dict[_Key, list[float]]
    ) -> int:
        """Gather the latencies of the whole lines from ``offset`` on (at most ``budget``
        bytes of them); the offset after the last line read."""
        handle.seek(offset)
        data = handle.read(budget + 1)
        if len(data) > budget:
            data = data[:budget]
            self.caught_up = False
        cut = data.rfind(b"\n") + 1  # a last line without its newline is still being written
        lines = data[:cut].split(b"\n")[:-1]
        self.lines += len(lines)
        self.bytes += cut
        for first in range(0, len(lines), BATCH):
            batch = lines[first : first + BATCH]
            objects = parse_objects(batch)
            if objects is None:
                objects = [_parse(line) for line in batch if line.strip()]
            self._gather(objects, values)
        return offset + cut

    def _gather(self, objects: list[Any], values: dict[_Key, list[float]]) -> None:
        """Each record's latency into ``values`` by (minute, release, bin)."""
        seen = -math.inf if self.seen is None else self.seen
        floor = self.floor
        for record in objects:
            t = record.get("t") if isinstance(record, dict) else None
            if not _number(t):
                self.bad += 1
                continue
            seen = max(seen, t)
            status, ms = record.get("status"), record.get("ms")
            if (
                t < floor
                or record.get("role") not in (None, "stable")
                or not _number(status)
                or status >= 500
                or not _number(ms)
                or ms < 0
            ):
                continue
            second = t % 60
            release = record.get("release")
            key = (
                int(t - second),
                release if _text(release) else None,
                min(int(second // SUB_SECONDS), SUB_BINS - 1),
            )
            found = values.get(key)
            if found is None:
                values[key] = [ms]
            else:
                found.append(ms)
        if seen > -math.inf:
            self.seen = seen

    def _rows(self, values: dict[_Key, list[float]]) -> list[LatencyRow]:
        by_minute: dict[tuple[int, str | None], list[LogHistogram | None]] = {}
        for (minute, release, index), found in values.items():
            sub = by_minute.setdefault((minute, release), [None] * SUB_BINS)
            histogram = sub[index] = LogHistogram()
            histogram.add_all(found)
        return [
            LatencyRow(self.service, self.env, minute, release, sub)
            for (minute, release), sub in sorted(by_minute.items(), key=_by_minute)
        ]


def _by_minute(item: tuple[tuple[int, str | None], Any]) -> tuple[int, str]:
    (minute, release), _ = item
    return minute, release or ""


def _head(handle: BinaryIO) -> str | None:
    """ "LENGTH:DIGEST" of the file's first line (its first HEAD_BYTES), None before it is
    whole."""
    handle.seek(0)
    first = handle.readline(HEAD_BYTES)
    if not first.endswith(b"\n") and len(first) < HEAD_BYTES:
        return None
    return f"{len(first)}:{hashlib.blake2b(first, digest_size=8).hexdigest()}"


def _parse(line: bytes) -> Any:
    try:
        return json.loads(line)
    except ValueError:  # includes UnicodeDecodeError
        return None


def _number(value: object) -> TypeGuard[int | float]:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def _int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def _text(value: object) -> bool:
    return isinstance(value, str)
