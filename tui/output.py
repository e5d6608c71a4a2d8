"""Where the command line writes: the answer (the one JSON document of --json, or the human
lines) on the real stdout.

While a command runs, sys.stdout points at stderr (tui/cli.py), so a chatty library (DVC
logs to stdout) can never corrupt what scripts parse; the answer goes to the stdout kept
here. The verbs (tui/commands/) and the command line both write through this module.
"""

from __future__ import annotations

import json
import os
import sys
from typing import TYPE_CHECKING, Any, TextIO

if TYPE_CHECKING:
    from rich.console import Console

# The real stdout, kept for the answer. keep_stdout() takes it again before each command, so
# whoever replaced sys.stdout before calling the command line (a test's capture) gets it.
_STDOUT: TextIO = sys.stdout


def keep_stdout(stream: TextIO) -> None:
    """Take ``stream`` as the real stdout, before a command redirects sys.stdout."""
    global _STDOUT
    _STDOUT = stream


def stdout() -> TextIO:
    """The real stdout, for a writer of its own (a rich Console)."""
    return _STDOUT


def answer_console() -> Console:
    """A rich Console on the real stdout, for answers drawn as tables. Plain text:
    summaries quote relman.toml tables ("[environments.dev]"), never markup. A reader that
    went away raises BrokenPipeError, which the command line turns into its quiet exit
    (rich's own handling would silence stderr, which sys.stdout points at meanwhile)."""
    from rich.console import Console

    class _Answer(Console):
        def on_broken_pipe(self) -> None:
            self.quiet = True
            raise BrokenPipeError

    return _Answer(file=_STDOUT, highlight=False, markup=False, soft_wrap=True)


def emit(document: dict[str, Any]) -> None:
    """Print the one JSON document of --json on the real stdout."""
    print(json.dumps(document, indent=2, default=str), file=_STDOUT, flush=True)


def log(line: str) -> None:
    """One line of what relman is doing, on stderr (stdout holds the answer)."""
    print(f"relman: {line}", file=sys.stderr, flush=True)


def out(text: str = "") -> None:
    """Print human output on the real stdout."""
    print(text, file=_STDOUT, flush=True)


def progress_on_stdout() -> bool:
    """Whether stderr writes where the answer goes (one terminal, or ``2>&1``): the progress
    lines on stderr have then shown each step as it ended, and the answer must not list the
    steps a second time."""
    try:
        answer, progress = os.fstat(_STDOUT.fileno()), os.fstat(sys.stderr.fileno())
    except (AttributeError, OSError, ValueError):  # a stream without a file (a capture)
        return False
    return (answer.st_dev, answer.st_ino) == (progress.st_dev, progress.st_ino)


def workflow_commands(lines: list[str]) -> None:
    """Print GitHub's workflow commands (``::error ...``) on stderr: the Actions runner reads
    them from stderr as from stdout (actions/runner's ScriptHandler gives both streams to its
    command parser), and stdout holds only the answer, the one JSON document of --json."""
    for line in lines:
        print(line, file=sys.stderr, flush=True)
