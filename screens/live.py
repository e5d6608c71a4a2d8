"""What the live screens share: the poll (fetch in a thread worker, render what it found,
then arm the next one). What they read is in screens/live_data.py.

A poll never overlaps the one before it: the timer is armed only once a fetch has ended
(its worker always posts :class:`~screens.messages.PollDone` last), a refresh asked for while
one runs waits for it, and a screen that is not showing skips its polls and catches up
when it comes back (dolphie's WorkerManager does the same).
"""

from __future__ import annotations

from typing import ClassVar

from textual.screen import Screen
from textual.timer import Timer

from screens.messages import PollDone

# What a live screen says while the metric store has nothing for it.
NO_DATA = "no data yet: is `relman monitor` running? promote starts it"


class PolledScreen(Screen[None]):
    """A screen that reads the engine every REFRESH_SECONDS while it shows.

    Subclasses implement :meth:`fetch`: start a thread worker that posts what it read and
    then, whatever happened, :class:`~screens.messages.PollDone`.
    """

    REFRESH_SECONDS: ClassVar[float] = 5.0

    def __init__(self) -> None:
        super().__init__()
        self.poll_timer: Timer | None = None
        self.missed_poll = False
        self.fetching = False
        self.fetch_again = False

    def fetch(self) -> None:
        raise NotImplementedError

    @property
    def showing(self) -> bool:
        """On top, or right under a modal dialog (Screen.is_current also counts any screen
        that was ever shown, Textual keeps them as background screens)."""
        stack = self.app.screen_stack
        return stack[-1] is self or (stack[-1].is_modal and len(stack) > 1 and stack[-2] is self)

    def poll_now(self) -> None:
        """Read now (or as soon as the read in progress ends)."""
        if self.poll_timer is not None:
            self.poll_timer.stop()
            self.poll_timer = None
        if self.fetching:
            self.fetch_again = True
            return
        self.fetching = True
        self.fetch()

    def poll(self) -> None:
        self.poll_timer = None
        if self.showing:
            self.poll_now()
        else:
            self.missed_poll = True

    def on_screen_resume(self) -> None:
        if self.missed_poll:
            self.missed_poll = False
            self.poll_now()

    def on_poll_done(self, message: PollDone) -> None:
        message.stop()
        self.fetching = False
        if self.fetch_again:
            self.fetch_again = False
            self.poll_now()
        elif self.poll_timer is None:
            self.poll_timer = self.set_timer(self.REFRESH_SECONDS, self.poll)
