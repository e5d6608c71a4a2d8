"""The real ``relman`` interface in tmux, running a real test suite that hangs (a tiny
project, tests/e2e/tiny.py), when its terminal goes: sent SIGHUP, relman cancels the run (its
pytest processes end, the run is recorded interrupted), leaves full-screen mode and exits 129;
with the whole terminal closed (the tmux server killed), it still ends and records the run,
never hanging on writes to the dead terminal."""

from __future__ import annotations

import os
import signal
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest

from store.ledger.snapshot import open_runs
from tests.e2e.tiny import PIDS_VARIABLE, ended_after, gone, make_tiny_project, running_test_pids
from tests.tui.test_tmux import TMUX, Terminal, relman_command
from tests.waiting import wait_for

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.skipif(TMUX is None, reason="tmux is not installed"),
]


@pytest.fixture
def terminal() -> Iterator[Terminal]:
    term = Terminal(f"relman-hangup-{os.getpid()}")
    try:
        yield term
    finally:
        term.close()


@pytest.fixture
def tiny(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    # The tmux server, and so relman in its pane, inherits these.
    monkeypatch.setenv(PIDS_VARIABLE, str(tmp_path / "pids"))
    monkeypatch.setenv("PYTEST_DISABLE_PLUGIN_AUTOLOAD", "1")
    return make_tiny_project(tmp_path / "tiny")


def start_the_tests(terminal: Terminal, root: Path, pids: Path) -> tuple[int, list[int]]:
    """relman in the pane, the candidate's tests started from its screen; relman's pid, and
    the pids of the hanging test's processes once the ledger records the run running."""
    terminal.start(relman_command(root), width=100, height=30)
    terminal.wait_for(lambda s: "candidate" in s and "svc" in s, "the overview")
    terminal.press("Down", "Enter")  # the candidate's row: its release screen
    terminal.wait_for(lambda s: "Tests" in s and "Lineage" in s, "the release screen")
    terminal.press("t")
    terminal.wait_for(lambda s: "relman --project" in s and " test" in s, "the test dialog")
    terminal.press("y")
    shell = int(terminal.tmux("display-message", "-p", "#{pane_pid}"))
    [relman] = wait_for(lambda: psutil.Process(shell).children(), "relman in the pane")
    return relman.pid, running_test_pids(root, relman.pid, pids)


def test_sighup_cancels_the_run_and_restores_the_terminal(
    tiny: Path, terminal: Terminal, tmp_path: Path
) -> None:
    pids = tmp_path / "pids"
    with ended_after(pids):
        relman, (pytest_pid, its_child) = start_the_tests(terminal, tiny, pids)
        assert terminal.tmux("display-message", "-p", "#{alternate_on}").strip() == "1"

        os.kill(relman, signal.SIGHUP)
        assert terminal.wait_for_exit() == "relman exited with status 129"
        # Full-screen mode left: the shell's lines, not a stale frame of relman.
        assert terminal.tmux("display-message", "-p", "#{alternate_on}").strip() == "0"
        screen = " ".join(terminal.screen().split())
        assert "tests cancelled: slow cancelled after" in screen, screen
        assert gone(pytest_pid) and gone(its_child)
        assert open_runs(tiny / ".relman" / "ledger.db") == []  # recorded, not left running


def test_a_closed_terminal_still_ends_relman_and_its_run(
    tiny: Path, terminal: Terminal, tmp_path: Path
) -> None:
    pids = tmp_path / "pids"
    with ended_after(pids):
        relman, (pytest_pid, its_child) = start_the_tests(terminal, tiny, pids)
        process = psutil.Process(relman)

        try:
            terminal.close()  # the terminal goes: SIGHUP, and every write to it fails
            wait_for(lambda: gone(relman), "relman to end")
        finally:
            if not gone(relman):  # hung: never outlive the test
                process.kill()
        assert gone(pytest_pid) and gone(its_child)
        assert open_runs(tiny / ".relman" / "ledger.db") == []
