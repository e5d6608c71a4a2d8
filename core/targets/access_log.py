"""The proxy's access log: one JSON line per request, rotated by size.

A served environment answers for days; at a few requests a second its log would grow by
tens of megabytes a day. When the file passes ``max_bytes`` (checked at each flush, once a
second), it becomes ``access.log.1`` (replacing the one before) and a new file starts, so an
environment keeps at most about twice ``max_bytes`` of access log.
"""

from __future__ import annotations

import json
import math
import os
from pathlib import Path
from typing import Any, BinaryIO

MAX_BYTES = 16 * 1024 * 1024


class AccessLog:
    def __init__(self, path: Path, max_bytes: int = MAX_BYTES) -> None:
        self.path = path
        self.max_bytes = max_bytes
        self._file = open(path, "a", buffering=1 << 16, encoding="utf-8")  # noqa: SIM115

    def write(self, record: dict[str, Any]) -> None:
        self._file.write(json.dumps(record, separators=(",", ":")) + "\n")

    def flush(self) -> str | None:
        """Write out what is buffered; rotate when the file has grown past ``max_bytes``.
        None, or one line saying why the rotation failed (the log goes on in the same file,
        and rotation is tried again at the next flush)."""
        self._file.flush()
        if self._file.tell() < self.max_bytes:
            return None
        try:
            os.replace(self.path, self.path.with_name(self.path.name + ".1"))
            # The open file is access.log.1 now: what follows goes to a new access.log.
            fresh = open(self.path, "a", buffering=1 << 16, encoding="utf-8")  # noqa: SIM115
        except OSError as exc:  # the old file stays open: nothing is lost
            return f"cannot rotate {self.path}: {exc.strerror or exc}; it keeps growing"
        self._file.close()
        self._file = fresh
        return None

    def close(self) -> None:
        self._file.close()


def open_logs(access_log: Path) -> list[BinaryIO]:
    """``access.log.1`` and ``access.log``, oldest first. The current file is opened first:
    a rotation between the two opens makes the second the same file (its inode says so),
    read once, rather than skip the file renamed in between."""
    handles: list[BinaryIO] = []
    for path in (access_log, access_log.with_name(access_log.name + ".1")):
        try:
            handle = open(path, "rb")  # noqa: SIM115 - closed by the caller
        except (FileNotFoundError, NotADirectoryError, IsADirectoryError):
            continue
        inode = os.fstat(handle.fileno()).st_ino
        if any(os.fstat(h.fileno()).st_ino == inode for h in handles):
            handle.close()
            continue
        handles.append(handle)
    return handles[::-1]


def line_time(line: bytes) -> float | None:
    """The time (``t``) of one access-log line, None when it has none (core.targets.log_seek
    bisects the log by it)."""
    try:
        t = json.loads(line).get("t")
    except (ValueError, AttributeError):  # not JSON (UnicodeDecodeError included), no object
        return None
    if isinstance(t, bool) or not isinstance(t, int | float) or not math.isfinite(t):
        return None
    return float(t)
