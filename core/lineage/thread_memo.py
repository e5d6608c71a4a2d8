"""What the parts of one reading share, per thread, for the length of a block: DVC's session
of a repository (core/lineage/dvcinfo.py ``shared_sessions``), its git tags
(core/lineage/gitinfo.py ``shared_tags``)."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

__all__ = ["ThreadMemo"]


class ThreadMemo:
    """A dict per thread that exists while that thread is inside a :meth:`block`."""

    def __init__(self) -> None:
        self._local = threading.local()

    def current(self) -> dict[Any, Any] | None:
        """This thread's dict, None outside a block."""
        memo: dict[Any, Any] | None = getattr(self._local, "memo", None)
        return memo

    @contextmanager
    def block(self, on_end: Callable[[dict[Any, Any]], None] | None = None) -> Iterator[None]:
        """A fresh dict for this thread until the block ends (then handed to ``on_end``).
        Nested blocks are one block: the outermost one's dict, ended with it."""
        if self.current() is not None:
            yield
            return
        self._local.memo = {}
        try:
            yield
        finally:
            memo, self._local.memo = self._local.memo, None
            if on_end is not None:
                on_end(memo)
