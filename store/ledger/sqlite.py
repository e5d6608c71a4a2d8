"""sqlite-utils' :class:`Database`, loaded without pandas and numpy.

sqlite-utils tries ``import pandas`` and ``import numpy`` when it loads, only to add their
scalar types (``numpy.int64``, ``pandas.Timestamp``...) to the table of Python types it turns
into column types when it *creates* a table or column from rows. relman never has it do
that: every table is created by its own SQL (store/ledger/migrations.py,
store/metrics/schema.py), and no insert alters a table. Loading them costs ~0.3 s of CPU (a
third of a second at the start of every `relman release` or `pipeline run`), so while
sqlite-utils itself loads, in this thread, those two imports fail as if they were not
installed. A process that already loaded numpy or pandas (sys.modules) gives them to
sqlite-utils as usual; other threads importing them meanwhile are not affected.

Every module of store/ takes ``Database`` from here, never from ``sqlite_utils`` directly.
"""

from __future__ import annotations

import sys
import threading
from collections.abc import Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from importlib.machinery import ModuleSpec
    from types import ModuleType

SKIPPED = ("pandas", "numpy")


class _SkipOptional:
    """A meta path finder that answers "not installed" for :data:`SKIPPED`, in one thread
    only. (Not an importlib.abc.MetaPathFinder: importing that module costs more than this.)"""

    def __init__(self) -> None:
        self.thread = threading.get_ident()

    def find_spec(
        self, fullname: str, path: Sequence[str] | None, target: ModuleType | None = None
    ) -> ModuleSpec | None:
        if threading.get_ident() == self.thread and fullname.partition(".")[0] in SKIPPED:
            raise ModuleNotFoundError(f"No module named {fullname!r}", name=fullname)
        return None  # anything else: the usual finders


def _load() -> None:
    if "sqlite_utils.db" in sys.modules:
        return
    skip = _SkipOptional()
    sys.meta_path.insert(0, skip)
    try:
        import sqlite_utils.db  # noqa: F401
    finally:
        sys.meta_path.remove(skip)


_load()

from sqlite_utils import Database  # noqa: E402

__all__ = ["Database"]
