"""Wait on the event, not the clock: ``wait_for`` polls a condition until it holds.

The deadline is generous on purpose: it only bounds how long a broken test hangs, so a
loaded machine (two cores shared by parallel runs) never turns a correct program into a
failure. Nothing is asserted about how fast the event came; speed belongs in benchmarks/.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")


def wait_for(condition: Callable[[], T], what: str, timeout: float = 60, poll: float = 0.02) -> T:
    """Call ``condition()`` until it returns something truthy and return that; fail with
    ``timed out after N s waiting for <what>`` once ``timeout`` seconds have passed."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() >= deadline:
            raise AssertionError(f"timed out after {timeout:g} s waiting for {what}")
        time.sleep(poll)
