"""The proxy's access log: one JSON line per request, rotated by size.

A served environment answers for days; at a few requests a second its log would grow by
tens of megabytes a day. When the file passes ``max_bytes`` (checked at each flush, once a
second), it becomes ``access.log.1`` (replacing the one before) and a new file starts, so an
environment keeps at most about twice ``max_bytes`` of access log.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

MAX_BYTES = 16 * 1024 * 1024


class AccessLog:
    def __init__(self, path: Path, max_bytes: int = MAX_BYTES) -> None:
        self.path = path
        self.max_bytes = max_bytes
        self._file = open(path, "a", buffering=1 << 16, encoding="utf-8")  # noqa: SIM115

    def write(self, record: dict[str, Any]) -> None:
        self._file.write(json.dumps(record, separators=(",", ":")) + "\n")

    def flush(self) -> None:
        """Write out what is buffered; rotate when the file has grown past ``max_bytes``."""
        self._file.flush()
        if self._file.tell() < self.max_bytes:
            return
        self._file.close()
        os.replace(self.path, self.path.with_name(self.path.name + ".1"))
        self._file = open(self.path, "a", buffering=1 << 16, encoding="utf-8")  # noqa: SIM115

    def close(self) -> None:
        self._file.close()
