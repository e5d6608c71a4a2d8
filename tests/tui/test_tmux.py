"""The real ``relman`` in a real terminal: tmux at 80x24 on a copy of the demo, driven by
keys, read back with ``capture-pane``. Open, help, monitor, back, quit; and ``--read-only``.

Each test runs its own tmux server (``-L relman-test-<pid>``, no config file) and kills it at
the end; the ``served`` fixture runs ``relman down`` afterwards and checks that nothing of
the project still runs.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.e2e.conftest import demo  # noqa: F401  (the demo project, once per module)
from tests.e2e.served import served  # noqa: F401  (a private copy, cleaned up after)

TMUX = shutil.which("tmux")
BIN = Path(sys.executable).parent
SESSION = "relman"
EXITED = "relman exited with status"

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.skipif(TMUX is None, reason="tmux is not installed"),
]


class Terminal:
    """One tmux server of its own, with one pane running a command."""

    def __init__(self, socket: str) -> None:
        self.socket = socket
        self.socket_path = ""

    def tmux(self, *args: str) -> str:
        assert TMUX is not None
        done = subprocess.run(
            [TMUX, "-L", self.socket, "-f", os.devnull, *args],
            capture_output=True,
            text=True,
            timeout=10,
            check=True,
        )
        return done.stdout

    def start(self, command: list[str], *, width: int = 80, height: int = 24) -> None:
        """Run ``command`` in a shell that then says how it exited, and stays a minute so
        that the line can be read (tmux drops what a pane printed last if its process is
        gone at once); the server is killed at the end of the test anyway."""
        shell = f'"$@"; echo "{EXITED} $?"; exec sleep 60'
        self.tmux(
            "new-session", "-d", "-s", SESSION, "-x", str(width), "-y", str(height),
            "--", "/bin/sh", "-c", shell, "sh", *command,
        )  # fmt: skip
        self.socket_path = self.tmux("display-message", "-p", "#{socket_path}").strip()

    def screen(self) -> str:
        return self.tmux("capture-pane", "-p", "-t", SESSION)

    def press(self, *keys: str) -> None:
        self.tmux("send-keys", "-t", SESSION, *keys)

    def close(self) -> None:
        """Kill the server and remove its socket (tmux 3.3 leaves it behind)."""
        subprocess.run(
            [str(TMUX), "-L", self.socket, "kill-server"], capture_output=True, check=False
        )
        if self.socket_path:
            Path(self.socket_path).unlink(missing_ok=True)

    def wait_for(self, condition: Callable[[str], object], what: str, timeout: float = 30) -> str:
        """Poll the screen every 50 ms until ``condition(screen)`` holds."""
        deadline = time.monotonic() + timeout
        screen = ""
        while time.monotonic() < deadline:
            screen = self.screen()
            if condition(screen):
                return screen
            time.sleep(0.05)
        raise AssertionError(f"timed out waiting for {what}; the screen:\n{screen}")

    def wait_for_exit(self, timeout: float = 15) -> str:
        """The line the shell around relman prints once relman has exited."""
        screen = self.wait_for(lambda s: EXITED in s, "relman to exit", timeout)
        return next(line for line in screen.splitlines() if EXITED in line).strip()


@pytest.fixture
def terminal() -> Iterator[Terminal]:
    term = Terminal(f"relman-test-{os.getpid()}")
    try:
        yield term
    finally:
        term.close()


def relman_command(root: Path, *options: str) -> list[str]:
    """The installed ``relman`` script (``python -m tui`` when there is none)."""
    script = BIN / "relman"
    start = [str(script)] if script.exists() else [sys.executable, "-m", "tui"]
    return [*start, "--project", str(root), *options]


def row(env: str) -> re.Pattern[str]:
    return re.compile(rf"^\s*iris\s+{env}\s", re.MULTILINE)


def overview_loaded(screen: str) -> bool:
    """Every row of iris, and the project's name in the header."""
    header = screen.splitlines()[0] if screen else ""
    rows = all(row(env).search(screen) for env in ("dev", "staging", "prod", "candidate"))
    return rows and "relman — iris-demo" in header


def test_open_help_monitor_back_quit(served: Path, terminal: Terminal) -> None:  # noqa: F811
    terminal.start(relman_command(served))
    screen = terminal.wait_for(overview_loaded, "the overview")
    assert len(screen.splitlines()) == 24 and max(map(len, screen.splitlines())) <= 80

    terminal.press("?")
    screen = terminal.wait_for(lambda s: "Keys" in s, "the help")
    assert re.search(r"\bp\s+Promote: ", screen), screen
    assert re.search(r"\bm\s+Monitor: ", screen), screen
    terminal.press("Escape")
    terminal.wait_for(lambda s: "Keys" not in s and overview_loaded(s), "the overview again")

    terminal.press("m")  # the selected row: dev
    # The drift section is the engine's own answer (api.drift, read in its worker).
    screen = terminal.wait_for(lambda s: "no drift to measure" in s, "the monitor")
    assert "iris in dev" in screen
    assert "nothing is deployed in dev: no traffic to chart" in screen
    assert "nothing is deployed in dev: no drift to measure" in screen
    terminal.press("1")
    terminal.wait_for(lambda s: "last 5 min: 0 of 5 min" in s, "the 5 min range")
    terminal.press("Escape")
    terminal.wait_for(overview_loaded, "the overview after the monitor")

    terminal.press("q")
    assert terminal.wait_for_exit() == f"{EXITED} 0"


def test_read_only_says_so(served: Path, terminal: Terminal) -> None:  # noqa: F811
    terminal.start(relman_command(served, "--read-only"))
    screen = terminal.wait_for(overview_loaded, "the overview")
    assert "relman — iris-demo · READ-ONLY" in screen.splitlines()[0]
    terminal.press("!")
    terminal.wait_for(lambda s: "No alerts: no data yet" in s, "the alerts")
    # One key at a time: an escape followed at once by q reads as alt+q.
    terminal.press("Escape")
    terminal.wait_for(overview_loaded, "the overview again")
    terminal.press("q")
    assert terminal.wait_for_exit() == f"{EXITED} 0"
