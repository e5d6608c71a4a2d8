"""Kernel file notifications for the watcher: which watched paths may have changed.

The watcher's poll stats every file it watches (core/pipelines/data_changes.py). On a folder
of a thousand files that costs more, while nothing happens, than the rest of the watcher
together. A :class:`ChangeFeed` asks the kernel instead (inotify on Linux, through
watchfiles, the notification library BentoML's own reloader uses): a thread blocks until
something under the watched folders is written, created, moved or removed, and marks that
folder for the next poll. A poll then walks only the folders marked, and every folder at
least once per ``full_every`` seconds, so a notification the kernel dropped (a full queue, a
network file system, a folder removed and made again) delays a change, never loses it.

Only folders are fed: a single file costs the poll one stat, and a file replaced by a rename
(as editors save) would leave a notification on the old one silent.
When notifications cannot be had (watchfiles missing, the inotify watch limit
reached), the feed says why once in :attr:`failed` and marks every folder at every poll: the
watcher polls as it would without it.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Iterable
from pathlib import Path

__all__ = ["ChangeFeed"]

# How often watchfiles' loop wakes to look for a stop (ms): also the longest a notification
# waits before it is passed on. Below a poll interval; rarer wake-ups cost less while idle.
STEP_MS = 1000
# Changes arriving together are passed on together, at most this long after the first (ms).
DEBOUNCE_MS = 100


class ChangeFeed:
    """Notifications for the folders ``paths`` (relative to ``root``), as a set of those to
    look at."""

    def __init__(self, root: Path, paths: Iterable[str], *, full_every: float = 60.0) -> None:
        self.root = Path(root).resolve()
        self.paths = list(dict.fromkeys(paths))
        self.full_every = full_every
        self.failed: str | None = None
        self._marked: set[str] = set(self.paths)  # the first poll looks at everything
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._last_full = time.monotonic()
        # The kernel's watches are set up by the thread, a moment after it starts: until
        # then (two of its wake-ups), every folder is looked at.
        self._settled_at = self._last_full + 2 * STEP_MS / 1000
        self._thread: threading.Thread | None = None
        if self.paths:
            self._thread = threading.Thread(target=self._run, name="relman-feed", daemon=True)
            self._thread.start()

    def take(self) -> set[str]:
        """The paths to look at now: those with notifications since the last take, or all of
        them when a full look is due or notifications failed."""
        now = time.monotonic()
        with self._lock:
            due = now - self._last_full >= self.full_every or now < self._settled_at
            if self.failed is not None or due:
                self._last_full = now
                self._marked.clear()
                return set(self.paths)
            marked, self._marked = self._marked, set()
        return marked

    def close(self) -> None:
        """Stop the notification thread (within :data:`STEP_MS`)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=STEP_MS / 1000 * 5)

    # ------------------------------------------------------------------------ the thread

    def _run(self) -> None:
        try:
            import watchfiles
        except ImportError:
            self._fail("watchfiles is not installed; every poll stats every watched file")
            return
        targets = {str(self.root / path): path for path in self.paths}
        try:
            for changes in watchfiles.watch(
                *targets,
                watch_filter=None,
                debounce=DEBOUNCE_MS,
                step=STEP_MS,
                stop_event=self._stop,
                raise_interrupt=False,
            ):
                touched = {self._owner(changed, targets) for _kind, changed in changes}
                with self._lock:
                    self._marked.update(touched)
        except Exception as exc:  # the inotify watch limit, a folder gone: poll as before
            self._fail(f"no file notifications ({type(exc).__name__}: {exc}); polling")

    def _owner(self, changed: str, targets: dict[str, str]) -> str:
        """The watched folder a notification about ``changed`` concerns (the longest one
        holding it: folders may nest)."""
        holding = [
            target
            for target in targets
            if changed == target or changed.startswith(target.rstrip(os.sep) + os.sep)
        ]
        return targets[max(holding, key=len)] if holding else next(iter(targets.values()))

    def _fail(self, why: str) -> None:
        with self._lock:
            self.failed = why
