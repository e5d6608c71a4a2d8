"""Pilot tests of the release actions: each confirmation says exactly what will happen, the
run screen shows the engine's steps as they come, the work outlives the screen, and every
ending (ok, blocked, failed) is said. The engine's mutating calls are replaced by fakes that
log and answer as core.api does; the reads answer canned documents (tests/tui/canned.py)."""

from __future__ import annotations

import threading
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from textual.pilot import Pilot
from textual.widgets import Input, RichLog, Static

from core import api
from core.cancel import Cancelled
from core.errors import InfraError
from screens.confirm import CancelRunScreen, ConfirmScreen
from screens.overview import OverviewScreen
from screens.release import ReleaseScreen
from screens.run import RunScreen, StepTable
from tests.tui import canned
from tests.tui.conftest import WaitForWorkers, wait_until
from tests.tui.test_app import run_from_palette
from tui.app import RelmanApp

SIZE = (80, 24)
PROMOTE_TEXT = (
    "promote shop v1.4.0 (3f9a2c1) to prod, replacing v1.3.2 (0f9e8d7); gates: 5 passed, "
    "1 blocking. It will be blocked: approvals: prod needs 1 approval from someone other "
    "than ada@example.com; has 0"
)


def text(app: RelmanApp, selector: str) -> str:
    return str(app.screen.query_one(selector, Static).render())


def steps(app: RelmanApp) -> list[tuple[str, str, str]]:
    table = app.screen.query_one(StepTable)
    return [
        (str(row[0]), str(row[1]), str(row[3]))
        for row in (table.get_row(key.key) for key in table.ordered_rows)
    ]


def output(app: RelmanApp) -> str:
    log = app.screen.query_one(RichLog)
    return "\n".join(line.text for line in log.lines)


def notes(app: RelmanApp) -> list[tuple[str, str]]:
    return [(note.message, note.severity) for note in app._notifications]


class HeldCall:
    """A fake engine call: logs the first lines, waits to be let go, logs the rest, answers."""

    def __init__(self, before: list[str], after: list[str], answer: Any) -> None:
        self.before, self.after, self.answer = before, after, answer
        self.go = threading.Event()
        self.calls: list[dict[str, Any]] = []

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        self.calls.append({"args": args[1:], **kwargs})
        log = kwargs.get("log") or (lambda line: None)
        for line in self.before:
            log(line)
        self.go.wait(timeout=10)
        for line in self.after:
            log(line)
        if isinstance(self.answer, Exception):
            raise self.answer
        return self.answer


async def open_candidate(pilot: Pilot[None], app: RelmanApp, wait: WaitForWorkers) -> None:
    """The release screen of the candidate, from the dev row (dev runs it)."""
    await wait(pilot)
    await pilot.press("enter")
    await wait(pilot)
    assert isinstance(app.screen, ReleaseScreen)


async def confirm_dialog(pilot: Pilot[None], key: str) -> ConfirmScreen:
    await pilot.press(key)
    await wait_until(pilot, lambda: isinstance(pilot.app.screen, ConfirmScreen), "the dialog")
    assert isinstance(pilot.app.screen, ConfirmScreen)
    return pilot.app.screen


def promote_call() -> HeldCall:
    return HeldCall(
        ["lock ...", "passed  lock  prod locked", "validate ...", "starting shop:a1b2 on :40000"],
        ["passed  validate  ready in 3.4 s", "switch ...", "passed  switch  prod serves v1.4.0"],
        canned.deploy_document("promote", "prod", canned.CANDIDATE, "v1.4.0"),
    )


async def test_promote_says_what_it_will_do_then_shows_the_steps(
    canned_project: Path, wait_for_workers: WaitForWorkers, monkeypatch: pytest.MonkeyPatch
) -> None:
    promote = promote_call()
    monkeypatch.setattr(api, "promote", promote)
    app = RelmanApp(project_dir=canned_project)
    async with app.run_test(size=SIZE) as pilot:
        await open_candidate(pilot, app, wait_for_workers)
        await confirm_dialog(pilot, "p")
        assert text(app, "#confirm-text") == PROMOTE_TEXT
        assert text(app, "#confirm-command") == "relman promote shop --to prod"
        await pilot.press("y")
        await wait_until(pilot, lambda: isinstance(app.screen, RunScreen), "the run screen")
        await wait_until(pilot, lambda: len(steps(app)) == 2, "two steps")
        assert steps(app) == [("passed", "lock", "prod locked"), ("running", "validate", "")]
        assert "starting shop:a1b2 on :40000" in output(app)
        assert text(app, "#run-title") == "promote shop v1.4.0 (3f9a2c1) to prod"
        assert text(app, "#run-state").startswith("running for ")
        # A promotion cannot be cancelled halfway: the screen says how to leave it instead.
        assert text(app, "#run-result") == (
            "escape leaves this screen; the run goes on to its end either way"
        )
        promote.go.set()
        await wait_for_workers(pilot)
        # The document's steps are the final word (docs/json.md).
        assert [(s[0], s[1]) for s in steps(app)] == [
            ("passed", "lock"),
            ("passed", "validate"),
            ("passed", "switch"),
        ]
        assert text(app, "#run-result").startswith("ok: promote shop v1.4.0 (3f9a2c1) to prod")
        assert app.screen.query_one("#run-result").has_class("-ok")
        assert promote.calls == [
            {
                "args": ("shop", "prod"),
                "release": None,
                "read_only": False,
                "log": promote.calls[0]["log"],
            }
        ]
        await pilot.press("escape")
        assert isinstance(app.screen, ReleaseScreen)


async def test_cancel_in_the_dialog_does_nothing(
    canned_project: Path, wait_for_workers: WaitForWorkers, monkeypatch: pytest.MonkeyPatch
) -> None:
    promote = promote_call()
    monkeypatch.setattr(api, "promote", promote)
    app = RelmanApp(project_dir=canned_project)
    async with app.run_test(size=SIZE) as pilot:
        await open_candidate(pilot, app, wait_for_workers)
        await confirm_dialog(pilot, "p")
        await pilot.press("escape")
        assert isinstance(app.screen, ReleaseScreen)
        await confirm_dialog(pilot, "p")
        await pilot.press("n")
        await wait_for_workers(pilot)
        assert isinstance(app.screen, ReleaseScreen)
        assert promote.calls == [] and app.current_run is None


async def test_leaving_the_run_screen_does_not_stop_the_work(
    canned_project: Path, wait_for_workers: WaitForWorkers, monkeypatch: pytest.MonkeyPatch
) -> None:
    promote = promote_call()
    monkeypatch.setattr(api, "promote", promote)
    app = RelmanApp(project_dir=canned_project)
    async with app.run_test(size=SIZE) as pilot:
        await open_candidate(pilot, app, wait_for_workers)
        await confirm_dialog(pilot, "p")
        await pilot.press("y")
        await wait_until(pilot, lambda: len(steps(app)) == 2, "two steps")
        # c is dimmed on a promotion (never cut in half), and says so when pressed.
        assert app.screen.check_action("cancel_run", ()) is None
        await pilot.press("c")
        assert isinstance(app.screen, RunScreen) and app.busy
        assert not app.current_run.cancel.is_set()  # type: ignore[union-attr]
        assert any("cannot be stopped halfway" in message for message, _ in notes(app))
        await pilot.press("escape")  # leave: the promotion goes on
        assert isinstance(app.screen, ReleaseScreen)
        assert app.busy
        assert any("goes on in the engine" in message for message, _ in notes(app))
        # One engine call at a time: the actions are dimmed, and say so if run anyway.
        assert app.screen.check_action("promote", ()) is None
        await run_from_palette(pilot, "Build")
        assert any("is still running (l shows it)" in message for message, _ in notes(app))
        promote.go.set()
        await wait_until(pilot, lambda: not app.busy, "the end of the run")
        await pilot.pause()
        ended = [m for m, severity in notes(app) if "done in" in m and severity == "information"]
        assert ended and ended[0].startswith("promote shop v1.4.0 (3f9a2c1) to prod: done in")
        await pilot.press("l")  # the last run, again
        assert isinstance(app.screen, RunScreen)
        assert text(app, "#run-result").startswith("ok: ")


@pytest.mark.parametrize(
    ("answer", "outcome", "line"),
    [
        (
            canned.deploy_document(
                "promote",
                "prod",
                canned.CANDIDATE,
                "v1.4.0",
                error="blocked from prod: approvals: prod needs 1 approval",
                exit_code=1,
            ),
            "blocked",
            "blocked from prod: approvals: prod needs 1 approval",
        ),
        (
            InfraError("validate: shop:a1b2 exited on start: ModuleNotFoundError: sklearn"),
            "failed",
            "failed: validate: shop:a1b2 exited on start: ModuleNotFoundError: sklearn",
        ),
    ],
)
async def test_blocked_and_failed_runs_say_why(
    canned_project: Path,
    wait_for_workers: WaitForWorkers,
    monkeypatch: pytest.MonkeyPatch,
    answer: Any,
    outcome: str,
    line: str,
) -> None:
    promote = HeldCall([], [], answer)
    promote.go.set()
    monkeypatch.setattr(api, "promote", promote)
    app = RelmanApp(project_dir=canned_project)
    async with app.run_test(size=SIZE) as pilot:
        await open_candidate(pilot, app, wait_for_workers)
        await confirm_dialog(pilot, "p")
        await pilot.press("y")
        await wait_until(pilot, lambda: app.current_run is not None and not app.busy, "the end")
        await pilot.pause()
        assert isinstance(app.screen, RunScreen)
        assert app.current_run is not None and app.current_run.outcome == outcome
        assert text(app, "#run-result").startswith(line)
        assert app.screen.query_one("#run-result").has_class(f"-{outcome}")


async def test_rollback_asks_why_and_passes_it_on(
    canned_project: Path, wait_for_workers: WaitForWorkers, monkeypatch: pytest.MonkeyPatch
) -> None:
    rollback = HeldCall(
        ["lock ...", "passed  lock  prod locked"],
        [],
        canned.deploy_document("rollback", "prod", canned.OLDER, "v1.3.1"),
    )
    rollback.go.set()
    monkeypatch.setattr(api, "rollback", rollback)
    app = RelmanApp(project_dir=canned_project)
    async with app.run_test(size=SIZE) as pilot:
        await wait_for_workers(pilot)
        await pilot.press("down", "down")  # prod, from the overview
        await confirm_dialog(pilot, "b")
        assert text(app, "#confirm-text") == (
            "roll back shop in prod from v1.3.2 (0f9e8d7) to v1.3.1 (1234567); gates skipped, "
            "health checked; the previous release is restored if the new one fails"
        )
        assert isinstance(app.focused, Input)
        await pilot.press(*"p99 doubled")
        assert text(app, "#confirm-command") == (
            "relman rollback shop --env prod --reason 'p99 doubled'"
        )
        await pilot.press("enter")
        await wait_until(pilot, lambda: rollback.calls and not app.busy, "the rollback")
        assert rollback.calls[0]["args"] == ("shop", "prod")
        assert rollback.calls[0]["reason"] == "p99 doubled"
        assert isinstance(app.screen, RunScreen)
        await pilot.press("escape")
        assert isinstance(app.screen, OverviewScreen)


async def test_rollback_with_nothing_earlier_says_so_without_asking(
    canned_project: Path, wait_for_workers: WaitForWorkers, monkeypatch: pytest.MonkeyPatch
) -> None:
    """dev has had only the candidate: the engine has nothing to go back to, and says how to
    name a release instead."""
    rollback = HeldCall([], [], {})
    monkeypatch.setattr(api, "rollback", rollback)
    app = RelmanApp(project_dir=canned_project)
    async with app.run_test(size=SIZE) as pilot:
        await wait_for_workers(pilot)
        await pilot.press("b")  # dev, the first row
        await wait_until(pilot, lambda: any(s == "error" for _m, s in notes(app)), "the refusal")
        assert notes(app)[-1] == (
            "no earlier release was live in dev to roll back to; name one with relman rollback "
            "shop --env dev --to ID",
            "error",
        )
        assert list(app._notifications)[-1].title == "Cannot roll back"
        assert isinstance(app.screen, OverviewScreen) and app.current_run is None
        assert rollback.calls == []


async def test_rollback_of_the_candidate_row_explains_itself(
    canned_project: Path, wait_for_workers: WaitForWorkers
) -> None:
    app = RelmanApp(project_dir=canned_project)
    async with app.run_test(size=SIZE) as pilot:
        await wait_for_workers(pilot)
        await pilot.press("down", "down", "down")
        assert app.screen.check_action("rollback", ()) is None  # dimmed
        await pilot.press("b")  # its key still answers why
        assert isinstance(app.screen, OverviewScreen)
        assert notes(app) == [("Choose an environment's row to roll back.", "warning")]
        app.clear_notifications()
        await run_from_palette(pilot, "Rollback")
        assert ("Choose an environment's row to roll back.", "warning") in notes(app)


async def test_approve_names_the_environment_that_needs_it(
    canned_project: Path, wait_for_workers: WaitForWorkers, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: list[tuple[Any, ...]] = []

    def approve(project: api.Project, release: str, env: str, **kwargs: Any) -> dict[str, Any]:
        calls.append((release, env, kwargs))
        return {
            "ok": True,
            "release": release,
            "env": env,
            "approver": "bob@example.com",
            "note": "counts for a promotion to prod run by anyone but bob@example.com",
        }

    monkeypatch.setattr(api, "approve", approve)
    app = RelmanApp(project_dir=canned_project)
    async with app.run_test(size=SIZE) as pilot:
        await open_candidate(pilot, app, wait_for_workers)
        await confirm_dialog(pilot, "a")
        assert text(app, "#confirm-text") == (
            "approve shop v1.4.0 (3f9a2c1) for prod as bob@example.com; now: prod needs 1 "
            "approval from "
            "someone other than ada@example.com; has 0"
        )
        assert text(app, "#confirm-command") == f"relman approve {canned.CANDIDATE} --env prod"
        await pilot.press("y")
        await wait_for_workers(pilot)
        assert calls == [(canned.CANDIDATE, "prod", {"read_only": False})]
        assert steps(app)[0][:2] == ("passed", "approve")
        assert "counts for a promotion to prod run by anyone but bob" in output(app)


async def test_tests_show_each_suite_with_a_progress_bar(
    canned_project: Path, wait_for_workers: WaitForWorkers, monkeypatch: pytest.MonkeyPatch
) -> None:
    go = threading.Event()

    def run_tests(project: api.Project, suites: Any = None, **kwargs: Any) -> dict[str, Any]:
        on_event = kwargs["on_event"]

        def event(kind: str, done: int, **extra: Any) -> SimpleNamespace:
            fields = {"case": None, "detail": ""} | extra
            counts = {"passed": done - (1 if done > 2 else 0), "failed": 1 if done > 2 else 0}
            return SimpleNamespace(
                kind=kind, suite="unit", total=4, done=done, counts=counts, **fields
            )

        on_event(event("collected", 0))
        on_event(event("result", 2))
        go.wait(timeout=10)
        case = SimpleNamespace(
            nodeid="tests/unit/test_api.py::test_shape",
            outcome="failed",
            message="AssertionError: 3 != 4",
        )
        on_event(event("result", 3, case=case))
        on_event(event("finished", 4, detail="1 failed, 3 passed in 0.4 s"))
        step = {
            "name": "unit",
            "status": "failed",
            "seconds": 0.4,
            "detail": "1 failed, 3 passed in 0.4 s",
        }
        return {"ok": False, "steps": [step], "recorded": True}

    monkeypatch.setattr(api, "run_tests", run_tests)
    app = RelmanApp(project_dir=canned_project)
    async with app.run_test(size=SIZE) as pilot:
        await open_candidate(pilot, app, wait_for_workers)
        await confirm_dialog(pilot, "t")
        assert text(app, "#confirm-text") == (
            "run the test suites unit, model against the candidate v1.4.0 (3f9a2c1); results "
            f"are recorded for release {canned.CANDIDATE}"
        )
        await pilot.press("y")
        await wait_until(
            pilot, lambda: isinstance(app.screen, RunScreen) and steps(app), "the unit suite"
        )
        await wait_until(pilot, lambda: "2/4" in steps(app)[0][2], "its progress")
        assert steps(app) == [("running", "unit", "━━━━━━╺───── 2/4 passed")]
        go.set()
        await wait_for_workers(pilot)
        assert steps(app) == [("failed", "unit", "1 failed, 3 passed in 0.4 s")]
        assert "FAILED tests/unit/test_api.py::test_shape: AssertionError: 3 != 4" in output(app)
        assert text(app, "#run-result").startswith("failed: 1 failed, 3 passed in 0.4 s")


async def test_build_says_what_it_builds(
    canned_project: Path, wait_for_workers: WaitForWorkers, monkeypatch: pytest.MonkeyPatch
) -> None:
    build = HeldCall(
        ["building the Bento of service:Shop from bentofile.yaml"],
        [],
        {
            "ok": True,
            "steps": [
                {
                    "name": "build",
                    "status": "passed",
                    "seconds": 0.9,
                    "detail": "built shop:a1b2c3d4e5f6 in 0.9 s",
                }
            ],
        },
    )
    build.go.set()
    monkeypatch.setattr(api, "build", build)
    app = RelmanApp(project_dir=canned_project)
    async with app.run_test(size=SIZE) as pilot:
        await open_candidate(pilot, app, wait_for_workers)
        await confirm_dialog(pilot, "u")
        assert text(app, "#confirm-text") == (
            "build the Bento of shop v1.4.0 (3f9a2c1) from bentofile.yaml; a Bento this "
            "release already has is reused"
        )
        await pilot.press("y")
        await wait_for_workers(pilot)
        assert steps(app) == [("passed", "build", "built shop:a1b2c3d4e5f6 in 0.9 s")]
        assert "building the Bento of service:Shop" in output(app)
        assert build.calls[0]["args"] == ("shop",)


CANCELLED_UNIT = {
    "name": "unit",
    "status": "failed",
    "seconds": 0.8,
    "detail": "cancelled after 0.8 s (2 of 4 done)",
    "counts": {"passed": 2},
    "cancelled": True,
}


class CancellableTests:
    """A fake api.run_tests that runs until the run is cancelled, then answers as the engine
    does: Cancelled, with the steps as far as they went. ``release`` holds the answer back
    after the cancel, so the screen can be seen stopping."""

    def __init__(self) -> None:
        self.release = threading.Event()
        self.saw_cancel = False

    def __call__(self, project: api.Project, suites: Any = None, **kwargs: Any) -> Any:
        on_event, cancel = kwargs["on_event"], kwargs["cancel"]
        counts = {"passed": 2}
        for kind, done in (("collected", 0), ("result", 2)):
            on_event(
                SimpleNamespace(
                    kind=kind, suite="unit", total=4, done=done, counts=counts, case=None
                )
            )
        self.saw_cancel = cancel.wait(timeout=10)
        self.release.wait(timeout=10)
        if self.saw_cancel:
            raise Cancelled(
                "tests cancelled: unit cancelled after 0.8 s (2 of 4 done); recorded as "
                "interrupted (run #9)",
                steps=[CANCELLED_UNIT],
            )
        return {"ok": True, "steps": [], "recorded": True}


async def test_cancel_asks_first_then_stops_the_tests(
    canned_project: Path, wait_for_workers: WaitForWorkers, monkeypatch: pytest.MonkeyPatch
) -> None:
    tests = CancellableTests()
    monkeypatch.setattr(api, "run_tests", tests)
    app = RelmanApp(project_dir=canned_project)
    async with app.run_test(size=SIZE) as pilot:
        await open_candidate(pilot, app, wait_for_workers)
        await confirm_dialog(pilot, "t")
        await pilot.press("y")
        await wait_until(
            pilot, lambda: isinstance(app.screen, RunScreen) and steps(app), "the unit suite"
        )
        run = app.current_run
        assert run is not None
        assert app.screen.check_action("cancel_run", ()) is True
        assert text(app, "#run-result") == "c cancels the run · escape leaves it running"
        # c asks first, saying what cancelling does; n keeps the run going.
        await pilot.press("c")
        await wait_until(pilot, lambda: isinstance(app.screen, CancelRunScreen), "the dialog")
        assert text(app, "#confirm-title") == "Cancel test shop v1.4.0 (3f9a2c1): unit, model?"
        assert text(app, "#confirm-text") == (
            "stop the test suites of shop v1.4.0 (3f9a2c1) now: each running pytest is ended "
            "with everything it started (SIGTERM, SIGKILL after 1 s) and suites not started "
            "never start; the run is recorded as cancelled, suites that finished keep their "
            "results, the others keep their last complete ones"
        )
        await pilot.press("n")
        assert isinstance(app.screen, RunScreen)
        assert run.running and not run.cancel.is_set()
        # Asked again, and confirmed: the engine's cancel event is set.
        await pilot.press("c")
        await wait_until(pilot, lambda: isinstance(app.screen, CancelRunScreen), "the dialog")
        await pilot.press("y")
        await wait_until(pilot, lambda: run.cancel.is_set(), "the cancel")
        assert isinstance(app.screen, RunScreen)
        await wait_until(pilot, lambda: text(app, "#run-state").startswith("cancelling"), "it")
        assert text(app, "#run-result") == (
            "cancel asked: the engine is stopping the run's processes"
        )
        assert app.screen.check_action("cancel_run", ()) is None  # asked once is enough
        tests.release.set()
        await wait_until(pilot, lambda: not run.running, "the end of the run")
        await pilot.pause()
        assert tests.saw_cancel
        assert run.outcome == "cancelled"
        assert steps(app) == [("cancelled", "unit", "cancelled after 0.8 s (2 of 4 done)")]
        assert text(app, "#run-result") == (
            "tests cancelled: unit cancelled after 0.8 s (2 of 4 done); recorded as "
            "interrupted (run #9) · escape: back"
        )
        assert app.screen.query_one("#run-result").has_class("-cancelled")
        assert "cancel asked: stopping the processes of the run" in output(app)
        assert app.screen.check_action("cancel_run", ()) is False  # nothing left to cancel
        # Nothing runs any more: the next action may start.
        assert not app.busy
        await pilot.press("escape")
        assert isinstance(app.screen, ReleaseScreen)


async def test_leaving_a_cancellable_run_does_not_cancel_it(
    canned_project: Path, wait_for_workers: WaitForWorkers, monkeypatch: pytest.MonkeyPatch
) -> None:
    tests = CancellableTests()
    monkeypatch.setattr(api, "run_tests", tests)
    app = RelmanApp(project_dir=canned_project)
    async with app.run_test(size=SIZE) as pilot:
        await open_candidate(pilot, app, wait_for_workers)
        await confirm_dialog(pilot, "t")
        await pilot.press("y")
        await wait_until(
            pilot, lambda: isinstance(app.screen, RunScreen) and steps(app), "the unit suite"
        )
        run = app.current_run
        assert run is not None
        await pilot.press("escape")
        assert isinstance(app.screen, ReleaseScreen)
        assert run.running and not run.cancel.is_set()
        tests.release.set()
        # The fake waits for a cancel that never comes, up to its own timeout: end it here.
        run.cancel.set()
        await wait_until(pilot, lambda: not run.running, "the end of the run")


async def test_a_build_can_be_cancelled_from_the_command_palette(
    canned_project: Path, wait_for_workers: WaitForWorkers, monkeypatch: pytest.MonkeyPatch
) -> None:
    seen: list[bool] = []

    def build(project: api.Project, service: str, **kwargs: Any) -> Any:
        kwargs["log"]("building the Bento of service:Shop from bentofile.yaml")
        seen.append(kwargs["cancel"].wait(timeout=10))
        raise Cancelled(
            "build cancelled after 1.2 s: the Bento of shop (release a1b2c3d4e5f6) was not "
            "built (its build process was stopped); recorded as interrupted (run #4)",
            steps=[
                {
                    "name": "build",
                    "status": "failed",
                    "seconds": 1.2,
                    "detail": "build cancelled after 1.2 s",
                    "cancelled": True,
                }
            ],
        )

    monkeypatch.setattr(api, "build", build)
    app = RelmanApp(project_dir=canned_project)
    async with app.run_test(size=SIZE) as pilot:
        await open_candidate(pilot, app, wait_for_workers)
        await confirm_dialog(pilot, "u")
        await pilot.press("y")
        await wait_until(pilot, lambda: "building the Bento" in output(app), "the build")
        await run_from_palette(pilot, "Cancel run")
        await wait_until(pilot, lambda: isinstance(app.screen, CancelRunScreen), "the dialog")
        assert text(app, "#confirm-text") == (
            "stop the build of the Bento of shop v1.4.0 (3f9a2c1) now: the BentoML build is "
            "ended with everything it started, and the build run is recorded as cancelled; "
            "the next build starts over"
        )
        await pilot.press("y")
        await wait_for_workers(pilot)
        assert seen == [True]
        assert app.current_run is not None and app.current_run.outcome == "cancelled"
        assert steps(app) == [("cancelled", "build", "build cancelled after 1.2 s")]
