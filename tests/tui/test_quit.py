"""Pilot tests of quitting while a run goes: never silently. Tests and builds are cancelled
(their processes stopped) once the user says yes, and relman quits when they have stopped,
or after a bounded wait saying what may still run; a promotion is never interrupted, relman
quits when it is done; with nothing running, q quits at once. The engine's calls are fakes,
as in test_actions.py; one of them starts a real process group."""

from __future__ import annotations

import os
import signal
import subprocess
import threading
from pathlib import Path
from typing import Any

import pytest
from textual.pilot import Pilot

from core import api
from core.cancel import Cancelled
from screens.confirm import ConfirmScreen, QuitScreen
from screens.run import RunScreen
from screens.runs import RunState
from tests.tui.conftest import WaitForWorkers, wait_until
from tests.tui.test_actions import (
    SIZE,
    CancellableTests,
    HeldCall,
    confirm_dialog,
    notes,
    open_candidate,
    promote_call,
    steps,
    text,
)
from tests.tui.test_app import run_from_palette
from tui import app as app_module
from tui.app import RelmanApp

TESTS_QUIT = (
    "quit: the running tests of shop v1.4.0 (3f9a2c1) are cancelled and their processes stopped"
)
PROMOTE_QUIT = (
    "promote shop v1.4.0 (3f9a2c1) to prod cannot be interrupted safely: prod is never left "
    "half switched (now: validate); relman quits when it is done"
)


async def start(pilot: Pilot[None], app: RelmanApp, wait: WaitForWorkers, key: str) -> RunState:
    """Start the candidate's action of ``key`` (confirmed) and wait for its first step."""
    await open_candidate(pilot, app, wait)
    await confirm_dialog(pilot, key)
    await pilot.press("y")
    await wait_until(pilot, lambda: isinstance(app.screen, RunScreen) and steps(app), "a step")
    assert app.current_run is not None and app.current_run.running
    return app.current_run


async def press_quit(pilot: Pilot[None], how: str) -> None:
    if how == "palette":
        await run_from_palette(pilot, "Quit")
    else:
        await pilot.press(how)
    await pilot.pause()


async def quit_dialog(pilot: Pilot[None], how: str = "q") -> QuitScreen:
    await press_quit(pilot, how)
    await wait_until(pilot, lambda: isinstance(pilot.app.screen, QuitScreen), "the quit dialog")
    assert isinstance(pilot.app.screen, QuitScreen)
    return pilot.app.screen


async def test_with_nothing_running_q_quits_at_once(
    canned_project: Path, wait_for_workers: WaitForWorkers, monkeypatch: pytest.MonkeyPatch
) -> None:
    build = HeldCall([], [], {"ok": True, "steps": []})
    build.go.set()
    monkeypatch.setattr(api, "build", build)
    app = RelmanApp(project_dir=canned_project)
    async with app.run_test(size=SIZE) as pilot:
        await open_candidate(pilot, app, wait_for_workers)
        await confirm_dialog(pilot, "u")
        await pilot.press("y")
        await wait_until(pilot, lambda: app.current_run and not app.busy, "the build's end")
        await pilot.press("q")  # a run that ended holds nothing up
        await pilot.pause()
        assert not app.is_running
    assert app.return_code == 0


@pytest.mark.parametrize("how", ["q", "ctrl+q", "palette"])
async def test_quit_during_the_tests_asks_then_cancels_them_and_quits_when_they_stopped(
    canned_project: Path,
    wait_for_workers: WaitForWorkers,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    how: str,
) -> None:
    tests = CancellableTests()
    monkeypatch.setattr(api, "run_tests", tests)
    app = RelmanApp(project_dir=canned_project)
    async with app.run_test(size=SIZE) as pilot:
        run = await start(pilot, app, wait_for_workers, "t")
        await pilot.press("escape")  # quitting from any screen asks the same

        await quit_dialog(pilot, how)
        assert text(app, "#confirm-title") == "Quit relman?"
        assert text(app, "#confirm-text") == TESTS_QUIT
        await pilot.press("n")  # stay: nothing changes
        assert app.is_running and not isinstance(app.screen, QuitScreen)
        assert run.running and not run.cancel.is_set()
        await quit_dialog(pilot, how)
        await pilot.press("escape")
        assert app.is_running and run.running and not run.cancel.is_set()
        await quit_dialog(pilot, "q")
        await pilot.press("enter")  # Stay has the focus: enter never quits by accident
        assert app.is_running and not run.cancel.is_set()

        await quit_dialog(pilot, how)
        await pilot.press("y")
        await wait_until(pilot, lambda: run.cancel.is_set(), "the cancel")
        # The engine is stopping the processes: relman waits, saying so on the run's screen.
        assert app.is_running and run.running
        assert isinstance(app.screen, RunScreen) and app.screen.run is run
        await wait_until(pilot, lambda: text(app, "#run-state").startswith("cancelling"), "it")
        assert text(app, "#run-result") == (
            "cancelling… relman quits once the run's processes have stopped"
        )
        assert any(m.startswith("cancelling… relman quits once test shop") for m, _ in notes(app))
        await pilot.press("q")  # asked already: no second dialog
        assert not isinstance(app.screen, QuitScreen)
        tests.release.set()
        await wait_until(pilot, lambda: not app.is_running, "relman to quit")
    assert tests.saw_cancel
    assert run.outcome == "cancelled"
    assert app.return_code == 0
    # Said after the terminal is restored: how the run ended.
    assert (
        "relman: test shop v1.4.0 (3f9a2c1): unit, model: tests cancelled: unit cancelled "
        "after 0.8 s (2 of 4 done); recorded as interrupted (run #9)"
    ) in " ".join(capsys.readouterr().err.split())


async def test_quit_during_a_build_names_the_build(
    canned_project: Path, wait_for_workers: WaitForWorkers, monkeypatch: pytest.MonkeyPatch
) -> None:
    seen: list[bool] = []

    def build(project: api.Project, service: str, **kwargs: Any) -> Any:
        kwargs["log"]("build ...")
        seen.append(kwargs["cancel"].wait(timeout=10))
        raise Cancelled("build cancelled after 0.5 s; recorded as interrupted (run #4)")

    monkeypatch.setattr(api, "build", build)
    app = RelmanApp(project_dir=canned_project)
    async with app.run_test(size=SIZE) as pilot:
        run = await start(pilot, app, wait_for_workers, "u")
        await quit_dialog(pilot)
        assert text(app, "#confirm-text") == (
            "quit: the running build of shop v1.4.0 (3f9a2c1) is cancelled and its "
            "processes stopped"
        )
        await pilot.press("y")
        await wait_until(pilot, lambda: not app.is_running, "relman to quit")
    assert seen == [True] and run.outcome == "cancelled"


async def test_a_run_that_does_not_stop_in_time_is_named_after_quitting(
    canned_project: Path,
    wait_for_workers: WaitForWorkers,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setattr(app_module, "QUIT_GRACE", 0.3)
    tests = CancellableTests()  # holds its answer back until released, cancel or not
    monkeypatch.setattr(api, "run_tests", tests)
    app = RelmanApp(project_dir=canned_project)
    try:
        async with app.run_test(size=SIZE) as pilot:
            run = await start(pilot, app, wait_for_workers, "t")
            await quit_dialog(pilot)
            await pilot.press("y")
            await wait_until(pilot, lambda: not app.is_running, "relman to quit anyway")
            assert run.running and run.cancel.is_set()
    finally:
        tests.release.set()  # the worker thread ends: nothing outlives the test
    err = " ".join(capsys.readouterr().err.split())
    assert (
        "relman: test shop v1.4.0 (3f9a2c1): unit, model had not stopped 0.3 s after it was "
        "cancelled: the pytest processes of the tests of shop v1.4.0 (3f9a2c1) may still be "
        "running; relman ends when the engine has stopped them and recorded the run"
    ) in err


async def test_quit_during_a_promotion_waits_for_its_end(
    canned_project: Path,
    wait_for_workers: WaitForWorkers,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    promote = promote_call()
    monkeypatch.setattr(api, "promote", promote)
    app = RelmanApp(project_dir=canned_project)
    async with app.run_test(size=SIZE) as pilot:
        run = await start(pilot, app, wait_for_workers, "p")
        await wait_until(pilot, lambda: len(steps(app)) == 2, "the validate step")
        await pilot.press("escape")

        await quit_dialog(pilot)
        assert text(app, "#confirm-text") == PROMOTE_QUIT
        await pilot.press("n")
        assert app.is_running and run.running

        await quit_dialog(pilot, "ctrl+q")
        await pilot.press("y")
        await pilot.pause()
        # Never interrupted: no cancel, relman goes on until the promotion is done.
        assert app.is_running and run.running and not run.cancel.is_set()
        assert isinstance(app.screen, RunScreen)
        assert text(app, "#run-result") == (
            "relman quits when the run is done; it cannot be stopped halfway"
        )
        app.clear_notifications()
        await pilot.press("q")
        assert not isinstance(app.screen, QuitScreen)
        assert notes(app) == [
            ("relman quits when promote shop v1.4.0 (3f9a2c1) to prod is done", "information")
        ]
        promote.go.set()
        await wait_until(pilot, lambda: not app.is_running, "relman to quit")
    assert run.outcome == "ok" and len(promote.calls) == 1
    assert "relman: promote shop v1.4.0 (3f9a2c1) to prod: done in" in capsys.readouterr().err


async def test_a_run_that_ends_while_the_dialog_is_open_lets_y_quit(
    canned_project: Path, wait_for_workers: WaitForWorkers, monkeypatch: pytest.MonkeyPatch
) -> None:
    promote = promote_call()
    monkeypatch.setattr(api, "promote", promote)
    app = RelmanApp(project_dir=canned_project)
    async with app.run_test(size=SIZE) as pilot:
        run = await start(pilot, app, wait_for_workers, "p")
        await quit_dialog(pilot)
        promote.go.set()
        await wait_until(pilot, lambda: not run.running, "the promotion's end")
        assert isinstance(app.screen, QuitScreen)
        await pilot.press("y")
        await wait_until(pilot, lambda: not app.is_running, "relman to quit")
    assert run.outcome == "ok"


async def test_quit_after_cancelling_asks_nothing_more(
    canned_project: Path, wait_for_workers: WaitForWorkers, monkeypatch: pytest.MonkeyPatch
) -> None:
    tests = CancellableTests()
    monkeypatch.setattr(api, "run_tests", tests)
    app = RelmanApp(project_dir=canned_project)
    async with app.run_test(size=SIZE) as pilot:
        run = await start(pilot, app, wait_for_workers, "t")
        await pilot.press("c")
        await wait_until(pilot, lambda: not isinstance(app.screen, RunScreen), "the dialog")
        await pilot.press("y")
        await wait_until(pilot, lambda: run.cancelling, "the cancel")
        await pilot.press("q")
        assert not isinstance(app.screen, QuitScreen) and app.is_running
        tests.release.set()
        await wait_until(pilot, lambda: not app.is_running, "relman to quit")
    assert run.outcome == "cancelled"


async def test_read_only_tests_ask_too_and_a_refused_action_holds_nothing_up(
    canned_project: Path, wait_for_workers: WaitForWorkers, monkeypatch: pytest.MonkeyPatch
) -> None:
    tests = CancellableTests()
    monkeypatch.setattr(api, "run_tests", tests)
    app = RelmanApp(project_dir=canned_project, read_only=True)
    async with app.run_test(size=SIZE) as pilot:
        # The tests run unrecorded in read-only mode: their processes are as real.
        run = await start(pilot, app, wait_for_workers, "t")
        await quit_dialog(pilot)
        await pilot.press("y")
        await wait_until(pilot, lambda: run.cancel.is_set(), "the cancel")
        tests.release.set()
        await wait_until(pilot, lambda: not app.is_running, "relman to quit")

    app = RelmanApp(project_dir=canned_project, read_only=True)
    async with app.run_test(size=SIZE) as pilot:
        await open_candidate(pilot, app, wait_for_workers)
        await pilot.press("p")  # refused by the engine: no run to wait for
        await wait_for_workers(pilot)
        assert app.current_run is None and not isinstance(app.screen, ConfirmScreen)
        await pilot.press("q")
        await pilot.pause()
        assert not app.is_running


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


class SleepingTests:
    """A fake api.run_tests that starts a real child in its own session, as testrun.py
    starts pytest, and ends its process group when cancelled, as the engine does."""

    def __init__(self) -> None:
        self.child: subprocess.Popen[bytes] | None = None
        self.started = threading.Event()

    def __call__(self, project: api.Project, suites: Any = None, **kwargs: Any) -> Any:
        kwargs["log"]("unit ...")
        self.child = subprocess.Popen(["sleep", "30"], start_new_session=True)
        self.started.set()
        try:
            if kwargs["cancel"].wait(timeout=30):
                os.killpg(self.child.pid, signal.SIGTERM)
                self.child.wait(timeout=5)
                raise Cancelled("tests cancelled: unit stopped; recorded as interrupted")
        finally:
            if self.child.poll() is None:  # never outlive the test, whatever happened
                os.killpg(self.child.pid, signal.SIGKILL)
                self.child.wait()
        return {"ok": True, "steps": []}


async def test_quitting_stops_the_processes_of_the_run(
    canned_project: Path, wait_for_workers: WaitForWorkers, monkeypatch: pytest.MonkeyPatch
) -> None:
    tests = SleepingTests()
    monkeypatch.setattr(api, "run_tests", tests)
    app = RelmanApp(project_dir=canned_project)
    async with app.run_test(size=SIZE) as pilot:
        run = await start(pilot, app, wait_for_workers, "t")
        await wait_until(pilot, tests.started.is_set, "the child")
        assert tests.child is not None
        pid = tests.child.pid
        assert alive(pid) and os.getpgid(pid) == pid  # its own process group, running
        await quit_dialog(pilot)
        await pilot.press("y")
        await wait_until(pilot, lambda: not app.is_running, "relman to quit")
    assert not alive(pid)  # gone, with its whole process group
    with pytest.raises(ProcessLookupError):
        os.killpg(pid, 0)
    assert run.outcome == "cancelled"
