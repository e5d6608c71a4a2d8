"""The pipeline view at 80x24: ``w`` (or ``:pipelines``) lists the recent runs and draws the
selected one's steps, each with its mark, time, retries and detail; a waiting run says what
it waits for and the keys that give it; ``a`` approves it after the confirmation (in
read-only mode the engine refuses and the command to run is shown), ``r`` resumes a run as
the app's run, ``o`` shows a step's output; the view follows the runs as they are read
again. The overview says whether the watcher runs. ``api.pipeline_runs`` and
``api.watcher_status`` answer hand-built documents (tests/unit/test_pipelines_view.py
builds the same shapes); the approval's refusal is the real engine's."""

from __future__ import annotations

from copy import deepcopy
from pathlib import Path
from typing import Any

import pytest
from textual.pilot import Pilot
from textual.widgets import Static

from core import api
from screens.confirm import ConfirmScreen
from screens.overview import OverviewScreen
from screens.pipelines import PipelinesScreen, PipelineStepTable, RunTable
from screens.run import RunScreen
from screens.step_output import StepOutputScreen
from tests.tui.conftest import WaitForWorkers, wait_until
from tests.unit.test_pipelines_view import RELEASE, step, waiting_run
from tui.app import READ_ONLY, RelmanApp

SIZE = (80, 24)


class Engine:
    """What the fake engine answers, and the calls it was given."""

    def __init__(self) -> None:
        passed = {
            **waiting_run(),
            "run": 2,
            "status": "passed",
            "trigger": "commit",
            "reason": "new commit 3f9a2c1 on main",
            "detail": "shop v1.3.2, live in staging",
            "waiting_for": None,
            "steps": [step("repro", "passed", seconds=1.0), step("test", "passed", seconds=2.0)],
        }
        waiting = {**waiting_run(), "service": "shop"}
        passed["service"] = "shop"
        waiting["steps"][1]["output"] = ["collected 12 items", "12 passed in 1.1s"]
        self.runs: list[dict[str, Any]] = [waiting, passed]
        self.watcher: dict[str, Any] = {
            "running": True,
            "pid": 900,
            "branch": "main",
            "since": "2026-11-27T10:00:00+00:00",
            "last_poll": "2026-11-27T11:59:00+00:00",
            "last_started": {
                "run": 3,
                "pipeline": "retrain",
                "service": "shop",
                "trigger": "data",
                "reason": "data/iris.csv changed",
                "at": "2026-11-27T11:00:00+00:00",
            },
            "last_error": None,
        }
        self.approvals: list[tuple[str, str, bool]] = []
        self.resumed: list[tuple[int, bool]] = []

    def pipeline_runs(self, project: object, **_filters: object) -> dict[str, Any]:
        return {"ok": True, "runs": deepcopy(self.runs), "watcher": dict(self.watcher)}

    def watcher_status(self, project: object) -> dict[str, Any]:
        return dict(self.watcher)

    def approve(
        self, project: object, release: str, env: str, *, comment: str = "", read_only: bool
    ) -> dict[str, Any]:
        self.approvals.append((release, env, read_only))
        return {"ok": True, "release": release, "env": env, "approver": "bob", "note": "noted"}

    def pipeline_resume(
        self, project: object, run_id: int, *, read_only: bool, log: Any, cancel: Any
    ) -> dict[str, Any]:
        self.resumed.append((run_id, read_only))
        log("passed  approve:prod  prod: 1 of 1 approval(s)")
        run = {**self.runs[0], "status": "passed", "waiting_for": None, "detail": "shop live"}
        run["steps"] = [{**s, "status": "passed"} for s in run["steps"]]
        self.runs[0] = run
        return {**run, "ok": True, "exit_code": 0}


@pytest.fixture
def engine(canned_project: Path, monkeypatch: pytest.MonkeyPatch) -> Engine:
    fake = Engine()
    for name in ("pipeline_runs", "watcher_status"):
        monkeypatch.setattr(api, name, getattr(fake, name))
    return fake


def screen_text(app: RelmanApp) -> list[str]:
    """The whole terminal as drawn, one string a row."""
    strips = app.screen._compositor.render_strips()
    return ["".join(segment.text for segment in strip).rstrip() for strip in strips]


def shown(app: RelmanApp, selector: str) -> str:
    return str(app.screen.query_one(selector, Static).render())


def notes(app: RelmanApp, severity: str) -> list[tuple[str, str]]:
    return [(n.title, n.message) for n in app._notifications if n.severity == severity]


async def open_view(pilot: Pilot[None], wait_for_workers: WaitForWorkers) -> PipelinesScreen:
    await wait_for_workers(pilot)
    await pilot.press("w")
    app = pilot.app
    await wait_until(pilot, lambda: isinstance(app.screen, PipelinesScreen), "the view")
    screen = app.screen
    assert isinstance(screen, PipelinesScreen)
    await wait_until(pilot, lambda: screen.document is not None, "the runs read")
    await pilot.pause()
    return screen


async def test_the_overview_says_what_the_watcher_does(
    engine: Engine, wait_for_workers: WaitForWorkers
) -> None:
    app = RelmanApp(project_dir=Path.cwd())
    async with app.run_test(size=SIZE) as pilot:
        await wait_for_workers(pilot)
        line = "watcher: running on main, last started run #3 retrain for shop (data)"
        assert shown(app, "#watcher") == line
        assert line in screen_text(app)[-2]  # the last line above the footer

        engine.watcher = {"running": False, "last_started": None}
        await pilot.press("r")
        await wait_for_workers(pilot)
        assert shown(app, "#watcher") == "watcher: off (relman watch --detach)"


async def test_runs_and_the_steps_of_the_selected_one_at_80x24(
    engine: Engine, wait_for_workers: WaitForWorkers
) -> None:
    app = RelmanApp(project_dir=Path.cwd())
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_view(pilot, wait_for_workers)
        rows = screen.query_one(RunTable)
        assert [str(rows.get_row(row.key)[0]) for row in rows.ordered_rows] == ["#3", "#2"]
        text = screen_text(app)
        assert max(len(line) for line in text) <= 80
        assert text[1].strip() == "2 runs · 1 waiting · watcher: running on main"
        assert shown(app, "#pipeline-title") == "#3 retrain · shop · v1.4.0 (a1b2c3d) · waiting"
        assert shown(app, "#pipeline-trigger") == (
            "data: data/iris.csv changed · by alice · 3 of 5 steps done"
        )
        # What it waits for, and the keys that give it: the command is never cut.
        hint = " ".join(shown(app, "#pipeline-hint").split())
        assert hint == (
            "waiting at approve:prod: prod: 0 of 1 approval(s) a approves it (asks first: "
            "relman approve a1b2c3d4e5f6 --env prod), then r resumes the run"
        )
        steps = [" ".join(line.split()) for line in text if line.lstrip()[:1] in ("✓", "‖", "·")]
        assert steps == [
            "✓ repro 12.3s 2 stages ran",
            "✓ test 1m15s x2 unit: 12 passed",
            "✓ deploy:staging 3.2s staging: serves v1.4.0",
            "‖ approve:prod prod: 0 of 1 approval(s)",
            "· deploy:prod",
        ]
        # The cursor starts on the step the run waits at.
        assert screen.query_one(PipelineStepTable).cursor_row == 3

        # The older run: its own steps and trigger, nothing to approve or resume.
        await pilot.press("down")
        await pilot.pause()
        assert shown(app, "#pipeline-title") == "#2 retrain · shop · v1.4.0 (a1b2c3d) · passed"
        assert shown(app, "#pipeline-trigger").startswith("commit: new commit 3f9a2c1 on main")
        assert screen.query_one(PipelineStepTable).row_count == 2
        assert screen.check_action("approve", ()) is None  # dimmed
        await pilot.press("a")
        assert notes(app, "warning")[-1][1] == (
            "Pipeline run #2 is passed: it waits for no approval."
        )
        assert not isinstance(app.screen, ConfirmScreen)


async def test_approve_asks_then_gives_the_approval_the_run_waits_for(
    engine: Engine, wait_for_workers: WaitForWorkers, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(api, "approve", engine.approve)
    app = RelmanApp(project_dir=Path.cwd())
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_view(pilot, wait_for_workers)
        assert screen.check_action("approve", ()) is True
        await pilot.press("a")
        await wait_until(pilot, lambda: isinstance(app.screen, ConfirmScreen), "the dialog")
        dialog = app.screen
        assert isinstance(dialog, ConfirmScreen)
        assert dialog.plan.command() == "relman approve a1b2c3d4e5f6 --env prod"
        assert dialog.plan.text.startswith(
            "approve shop v1.4.0 (a1b2c3d) for prod: pipeline run #3 (retrain) waits for it "
            "at approve:prod"
        )
        assert engine.approvals == []  # nothing before the yes
        await pilot.press("y")
        await wait_for_workers(pilot)
        assert engine.approvals == [(RELEASE, "prod", False)]
        assert isinstance(app.screen, RunScreen)
        assert app.current_run is not None and app.current_run.outcome == "ok"


async def test_read_only_approve_is_refused_with_the_command_to_run(
    engine: Engine, wait_for_workers: WaitForWorkers
) -> None:
    app = RelmanApp(project_dir=Path.cwd(), read_only=True)
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_view(pilot, wait_for_workers)
        assert "read-only: from a session that may act, run relman approve" in " ".join(
            shown(app, "#pipeline-hint").split()
        )
        assert screen.check_action("approve", ()) is None  # dimmed
        await pilot.press("a")  # the real engine refuses
        await wait_until(pilot, lambda: notes(app, "warning"), "the refusal")
        assert notes(app, "warning") == [
            (
                READ_ONLY,
                f"read-only mode: approval of {RELEASE} for prod refused. From a session that "
                "may act, run:\nrelman approve a1b2c3d4e5f6 --env prod",
            )
        ]
        assert isinstance(app.screen, PipelinesScreen) and app.current_run is None


async def test_resume_drives_the_run_on_as_the_apps_run(
    engine: Engine, wait_for_workers: WaitForWorkers, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(api, "pipeline_resume", engine.pipeline_resume)
    app = RelmanApp(project_dir=Path.cwd())
    async with app.run_test(size=SIZE) as pilot:
        await open_view(pilot, wait_for_workers)
        await pilot.press("r")
        await wait_until(pilot, lambda: isinstance(app.screen, ConfirmScreen), "the dialog")
        assert isinstance(app.screen, ConfirmScreen)
        assert app.screen.plan.command() == "relman pipeline resume 3"
        await pilot.press("y")
        await wait_for_workers(pilot)
        assert engine.resumed == [(3, False)]
        run = app.current_run
        assert run is not None and run.outcome == "ok" and run.cancellable
        # Back on the view, the run is read again when the app's run ended.
        await pilot.press("escape")
        await wait_for_workers(pilot)
        assert isinstance(app.screen, PipelinesScreen)
        assert shown(app, "#pipeline-title").endswith("· passed")
        assert app.screen.check_action("resume", ()) is None


async def test_read_only_resume_is_refused_with_the_command_to_run(
    engine: Engine, wait_for_workers: WaitForWorkers
) -> None:
    app = RelmanApp(project_dir=Path.cwd(), read_only=True)
    async with app.run_test(size=SIZE) as pilot:
        await open_view(pilot, wait_for_workers)
        await pilot.press("r")  # the real engine refuses
        await wait_until(pilot, lambda: notes(app, "warning"), "the refusal")
        assert notes(app, "warning")[-1][1].endswith(
            "From a session that may act, run:\nrelman pipeline resume 3"
        )
        assert app.current_run is None


async def test_output_shows_the_selected_steps_lines(
    engine: Engine, wait_for_workers: WaitForWorkers
) -> None:
    app = RelmanApp(project_dir=Path.cwd())
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_view(pilot, wait_for_workers)
        assert app.focused is screen.query_one(RunTable)
        await pilot.press("tab")  # to the steps
        assert app.focused is screen.query_one(PipelineStepTable)
        await pilot.press("up", "up", "o")  # the test step, tried twice
        await wait_until(pilot, lambda: isinstance(app.screen, StepOutputScreen), "the output")
        assert shown(app, "#output-title") == "#3 retrain · test · passed · x2 · 1m15s"
        assert shown(app, "#output-lines").splitlines() == [
            "unit: 12 passed",
            "",
            "collected 12 items",
            "12 passed in 1.1s",
        ]
        await pilot.press("escape")
        assert app.screen is screen


async def test_the_view_follows_the_runs_as_they_go(
    engine: Engine, wait_for_workers: WaitForWorkers, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(PipelinesScreen, "REFRESH_SECONDS", 0.05)
    app = RelmanApp(project_dir=Path.cwd())
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_view(pilot, wait_for_workers)
        newer = {
            **waiting_run(),
            "run": 4,
            "service": "shop",
            "status": "running",
            "trigger": "manual",
            "waiting_for": None,
            "steps": [step("repro", "running"), step("test", "pending")],
        }
        engine.runs = [newer, *engine.runs]
        table = screen.query_one(RunTable)
        await wait_until(pilot, lambda: table.row_count == 3, "the new run")
        # The cursor stays on the run it was on.
        assert shown(app, "#pipeline-title").startswith("#3 retrain")
        await pilot.press("up")
        await pilot.pause()
        assert shown(app, "#pipeline-title") == "#4 retrain · shop · v1.4.0 (a1b2c3d) · running"
        assert "running, driven by pid 812 on box" in shown(app, "#pipeline-hint")


async def test_jump_opens_the_view(engine: Engine, wait_for_workers: WaitForWorkers) -> None:
    app = RelmanApp(project_dir=Path.cwd())
    async with app.run_test(size=SIZE) as pilot:
        await wait_for_workers(pilot)
        await pilot.press("colon", *"pipelines", "enter")
        await wait_until(pilot, lambda: isinstance(app.screen, PipelinesScreen), "the view")
        await pilot.press("escape")
        assert isinstance(app.screen, OverviewScreen)


async def test_a_project_without_runs_says_how_one_starts(
    engine: Engine, wait_for_workers: WaitForWorkers
) -> None:
    engine.runs = []
    app = RelmanApp(project_dir=Path.cwd())
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_view(pilot, wait_for_workers)
        assert shown(app, "#pipeline-title").startswith(
            "No pipeline has run yet: relman pipeline run release --service shop starts one"
        )
        assert not screen.query_one(PipelineStepTable).display
        await pilot.press("r")
        assert "Choose a waiting or interrupted run" in notes(app, "warning")[-1][1]
