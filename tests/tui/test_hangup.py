"""Pilot tests of SIGHUP and SIGTERM in the interface: relman quits as ``q`` does, without
asking. A test run is cancelled and relman quits once it stopped; a promotion goes on to its
end first; with nothing running, relman quits at once. The signals are real, sent to this
process; the engine's calls are fakes (test_actions.py)."""

from __future__ import annotations

import os
import signal
from pathlib import Path

import pytest

from core import api
from screens.confirm import QuitScreen
from tests.tui.conftest import WaitForWorkers, wait_until
from tests.tui.test_actions import SIZE, CancellableTests, promote_call, steps
from tests.tui.test_quit import start
from tui.app import RelmanApp


def send_self(signum: int) -> None:
    """The signal, to this process: only once the app handles it (else it would end pytest)."""
    assert signal.getsignal(signum) not in (signal.SIG_DFL, signal.SIG_IGN, None)
    os.kill(os.getpid(), signum)


async def test_sigterm_cancels_the_tests_and_quits_once_they_stopped(
    canned_project: Path, wait_for_workers: WaitForWorkers, monkeypatch: pytest.MonkeyPatch
) -> None:
    before = signal.getsignal(signal.SIGTERM)
    tests = CancellableTests()
    monkeypatch.setattr(api, "run_tests", tests)
    app = RelmanApp(project_dir=canned_project)
    async with app.run_test(size=SIZE) as pilot:
        run = await start(pilot, app, wait_for_workers, "t")
        send_self(signal.SIGTERM)
        await wait_until(pilot, run.cancel.is_set, "the cancel")
        assert not isinstance(app.screen, QuitScreen)  # nobody is asked: the terminal is gone
        assert app.is_running and run.running  # until the processes have stopped
        tests.release.set()
        await wait_until(pilot, lambda: not app.is_running, "relman to quit")
    assert tests.saw_cancel and run.outcome == "cancelled"
    assert app.hung_up == signal.SIGTERM  # the command line exits 143
    assert signal.getsignal(signal.SIGTERM) == before  # the app's handler went with it


async def test_sighup_lets_a_promotion_finish_then_quits(
    canned_project: Path, wait_for_workers: WaitForWorkers, monkeypatch: pytest.MonkeyPatch
) -> None:
    promote = promote_call()
    monkeypatch.setattr(api, "promote", promote)
    app = RelmanApp(project_dir=canned_project)
    async with app.run_test(size=SIZE) as pilot:
        run = await start(pilot, app, wait_for_workers, "p")
        await wait_until(pilot, lambda: len(steps(app)) == 2, "the validate step")
        send_self(signal.SIGHUP)
        await wait_until(pilot, lambda: app.quitting is run, "relman to quit after the run")
        # Never cut in half: no cancel, the promotion goes on.
        assert app.is_running and run.running and not run.cancel.is_set()
        promote.go.set()
        await wait_until(pilot, lambda: not app.is_running, "relman to quit")
    assert run.outcome == "ok" and len(promote.calls) == 1
    assert app.hung_up == signal.SIGHUP


async def test_with_nothing_running_sigterm_quits_at_once(
    canned_project: Path, wait_for_workers: WaitForWorkers
) -> None:
    app = RelmanApp(project_dir=canned_project)
    async with app.run_test(size=SIZE) as pilot:
        await wait_for_workers(pilot)
        send_self(signal.SIGTERM)
        await wait_until(pilot, lambda: not app.is_running, "relman to quit")
    assert app.hung_up == signal.SIGTERM
