"""The command palette, ``:`` and ``/`` in a real terminal at 80x24 (tmux, the real
``relman`` on a copy of the demo; see tests/tui/test_tmux.py): typing ``test`` on the
overview finds the tests, and running it asks first, saying what will run; ``:`` jumps to
the history; ``/`` narrows the overview to one row."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest

from tests.e2e.conftest import demo  # noqa: F401  (the demo project, once per module)
from tests.e2e.served import served  # noqa: F401  (a private copy, cleaned up after)
from tests.tui.test_tmux import (
    EXITED,
    Terminal,
    overview_loaded,
    relman_command,
    row,
    terminal,  # noqa: F401  (the tmux server of each test)
)

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.skipif(shutil.which("tmux") is None, reason="tmux is not installed"),
]


def test_palette_finds_the_tests_from_the_overview(
    served: Path,  # noqa: F811
    terminal: Terminal,  # noqa: F811
) -> None:
    terminal.start(relman_command(served))
    terminal.wait_for(overview_loaded, "the overview")

    terminal.press("C-p")
    terminal.wait_for(lambda s: "Search for commands" in s, "the palette")
    terminal.press("t", "e", "s", "t")
    screen = terminal.wait_for(
        lambda s: "Run the test suites against the candidate" in s, "the tests in the palette"
    )
    assert re.search(r"Tests\s*$", screen, re.MULTILINE), screen
    terminal.press("Enter")
    # The same dialog as the release screen's t: what runs, and the command that does it.
    screen = terminal.wait_for(lambda s: "run the test suites" in s, "the confirmation")
    assert "against the candidate" in screen
    # The command: relman --project DIR test, wrapped in the dialog.
    assert "relman --project" in screen and re.search(r"\btest\s+\S\s*$", screen, re.M), screen
    assert max(map(len, screen.splitlines())) <= 80
    terminal.press("n")
    terminal.wait_for(overview_loaded, "the overview again")

    terminal.press(":")
    terminal.wait_for(lambda s: "The history and the audit chain check" in s, "the jump prompt")
    terminal.press("h", "i", "Enter")
    terminal.wait_for(lambda s: "audit chain" in s and "Filter" in s, "the history")
    terminal.press("Escape")
    terminal.wait_for(overview_loaded, "the overview after the history")

    terminal.press("/")
    terminal.wait_for(lambda s: "filter:" in s, "the filter")
    terminal.press("p", "r", "o", "d")
    screen = terminal.wait_for(lambda s: not row("dev").search(s), "dev filtered out")
    assert row("prod").search(screen), screen
    terminal.press("Escape")
    terminal.wait_for(overview_loaded, "every row again")

    terminal.press("q")
    assert terminal.wait_for_exit() == f"{EXITED} 0"
