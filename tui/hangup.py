"""SIGHUP and SIGTERM: a closed terminal, a CI job cancelled, `kill`. relman ends as a cancel
would end it, never as the signal's default would (at once, leaving the run ``running`` in
the ledger and its pytest or build processes, which run in sessions of their own, behind).

The command line (:class:`Hangup`, around each verb): tests and builds are cancelled, the
work stops its process groups and records the run ``interrupted`` (the ``cancel`` event the
verb passes to the engine); a promotion, rollback, ``down`` or approval is finished first,
never cut in half; any other verb stops at once (:class:`Terminated`, a KeyboardInterrupt,
so that what cleans up after Ctrl-C cleans up after it). A cut command exits 128 + the
signal's number (129, 143). The TUI reuses its quit (tui/app.py).

A hung-up terminal fails every write with EIO: its file descriptors are pointed at
/dev/null first (:func:`detach_hung_up_terminal`), so that relman can still end cleanly.
"""

from __future__ import annotations

import contextlib
import os
import signal
import termios
import threading
from collections.abc import Iterator
from types import FrameType
from typing import IO, TYPE_CHECKING, Any

if TYPE_CHECKING:
    from textual.driver import Driver

# What SIGHUP and SIGTERM do to a verb (the top-level command).
CANCELLED = frozenset({"test", "build", "release", "pipeline", "watch"})  # through ``cancel``
FINISHED = frozenset({"promote", "rollback", "down", "approve"})  # never cut in half
SIGNALS = (signal.SIGHUP, signal.SIGTERM)


class Terminated(KeyboardInterrupt):
    """The command was stopped by SIGHUP or SIGTERM (``signum``)."""

    def __init__(self, signum: int) -> None:
        super().__init__(signal.Signals(signum).name)
        self.signum = signum


def signal_name(signum: int) -> str:
    return signal.Signals(signum).name


def detach_hung_up_terminal(fds: tuple[int, ...] = (0, 1, 2)) -> None:
    """Point those of ``fds`` whose terminal hung up at /dev/null: reads see the end, writes
    vanish instead of failing with EIO (a dead terminal would otherwise stop relman halfway
    through closing its run). A terminal still there is kept, to be restored; a pipe or a
    file is never touched."""
    gone = [fd for fd in fds if fd in _TERMINALS and not _answers(fd)]
    if not gone:
        return
    devnull = os.open(os.devnull, os.O_RDWR)
    try:
        for fd in gone:
            os.dup2(devnull, fd)
    finally:
        os.close(devnull)


# The file descriptors that were terminals when relman started (a hung-up one no longer
# says it is one).
_TERMINALS: set[int] = set()


def remember_terminals(fds: tuple[int, ...] = (0, 1, 2)) -> None:
    _TERMINALS.update(fd for fd in fds if os.isatty(fd))


def _answers(fd: int) -> bool:
    """Whether the terminal on ``fd`` is still there (a hung-up one fails with EIO)."""
    try:
        termios.tcgetattr(fd)
    except termios.error:
        return False
    return True


class _OutlivesHangup:
    """A terminal's output file whose writes and flushes never fail: once the terminal hung
    up, what is written is dropped. Textual's writer thread dies on the first EIO, and every
    later write of the app then waits for it forever: relman would hang instead of ending."""

    def __init__(self, file: IO[str]) -> None:
        self._file = file

    def write(self, text: str) -> int:
        try:
            return self._file.write(text)
        except OSError:
            return len(text)

    def flush(self) -> None:
        with contextlib.suppress(OSError):
            self._file.flush()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._file, name)


def outliving_hangups(driver: type[Driver]) -> type[Driver]:
    """``driver`` (Textual's, for this platform) writing through :class:`_OutlivesHangup`."""

    class OutlivingHangups(driver):  # type: ignore[valid-type,misc]
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            file = getattr(self, "_file", None)  # the terminal Textual writes to
            if file is not None:
                self._file = _OutlivesHangup(file)

    OutlivingHangups.__name__ = OutlivingHangups.__qualname__ = driver.__name__
    return OutlivingHangups


class Hangup:
    """SIGHUP and SIGTERM while one verb of the command line runs (see the module).
    ``cancel`` is the event a cancellable verb passes to the engine; ``signum`` the signal
    received, if any."""

    def __init__(self, verb: str | None) -> None:
        self.verb = verb or ""
        self.cancel = threading.Event()
        self.signum: int | None = None

    @property
    def received(self) -> str | None:
        """``SIGHUP`` or ``SIGTERM`` once one came."""
        return None if self.signum is None else signal_name(self.signum)

    def exit_code(self) -> int:
        """What a command cut by the signal exits with: 128 + its number, as a shell says."""
        return 128 + (self.signum or 0)

    def handle(self, signum: int, frame: FrameType | None) -> None:
        first = self.signum is None
        self.signum = self.signum or signum
        if signum == signal.SIGHUP:
            detach_hung_up_terminal()
        name = signal_name(signum)
        if self.verb in CANCELLED:
            if first:
                _say(f"{name}: cancelling; its processes are stopped and the run recorded")
            self.cancel.set()
        elif self.verb in FINISHED:
            if first:
                _say(f"{name}: relman {self.verb} goes on to its end (never left half done)")
            self.cancel.set()  # heard only by a rollout, which ends by going back to stable
        else:
            raise Terminated(signum)

    @contextlib.contextmanager
    def installed(self) -> Iterator[Hangup]:
        """The handlers, for the time of the block (only the main thread may set them)."""
        if threading.current_thread() is not threading.main_thread():
            yield self
            return
        remember_terminals()
        previous = {signum: signal.signal(signum, self.handle) for signum in SIGNALS}
        try:
            yield self
        finally:
            for signum, handler in previous.items():
                signal.signal(signum, handler)


def _say(line: str) -> None:
    """One line on stderr, written at once: a handler may run in the middle of a print to
    the same stream, which a second print would interrupt (a reentrant call)."""
    with contextlib.suppress(OSError):
        os.write(2, f"relman: {line}\n".encode())
