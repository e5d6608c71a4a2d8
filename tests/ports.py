"""Ports for tests that run side by side: each pytest-xdist worker draws from its own range.

A port handed out by ``free_ports`` is free when it is chosen, but an environment's port is
often bound minutes later (prod, after staging). Two workers scanning the same numbers would
both be handed it, and the later one finds it "in use by another program". So each worker
owns a band below 20000: above it (to the kernel's ephemeral range) relman draws its
instances' side ports, and in the ephemeral range ``bind(0)`` and outgoing connections take
theirs. Within a worker a cursor never hands out the same port twice until the band wraps.
"""

from __future__ import annotations

import os
from collections.abc import Iterable

from core.host.ports import free_ports

FIRST = 10000
BAND = 2000  # workers gw0..gw4 fit below 20000, where instances' side ports start
_cursor: dict[int, int] = {}


def _worker() -> int:
    name = os.environ.get("PYTEST_XDIST_WORKER", "gw0")
    digits = name.removeprefix("gw")
    return int(digits) % 5 if digits.isdigit() else 0


def worker_ports(count: int, *, avoid: Iterable[int] = ()) -> list[int]:
    """``count`` distinct ports free now, from this worker's band, none handed out before by
    this process (until the band wraps)."""
    worker = _worker()
    low = FIRST + worker * BAND
    start = _cursor.get(worker, low)
    if start + count * 4 >= low + BAND:
        start = low
    found = free_ports(count, start=start, avoid=avoid)
    _cursor[worker] = max(found) + 1
    return found
