"""Rollouts in the interface: the overview says ``canary 20%`` in the row of an environment
where one goes on; ``R`` (or the palette) opens its pane, which shows the strategy, the
releases, the weight, the steps and the analysis checks at 80x24, each on one line; ``p``,
``a`` and ``P`` ask first, then call the engine with the right action; read-only mode gets
the command to run instead; the pane follows the rollout as it is read again. The engine
answers canned documents (tests/tui/canned_rollout.py)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from textual.pilot import Pilot
from textual.widget import Widget
from textual.widgets import Static

from core import api
from screens.confirm import ConfirmScreen
from screens.overview import EnvironmentTable, OverviewScreen
from screens.rollout import RolloutScreen
from tests.tui import canned, canned_rollout
from tests.tui.canned_rollout import LATENCY_DETAIL, World, summary
from tests.tui.conftest import WaitForWorkers, wait_until
from tests.tui.test_app import run_from_palette
from tui.app import READ_ONLY, RelmanApp

SIZE = (80, 24)
SnapCompare = Callable[..., bool]


def drawn(widget: Widget) -> list[str]:
    """The lines a widget draws, trailing blanks dropped."""
    lines = widget.render_lines(widget.region.reset_offset)
    return ["".join(segment.text for segment in line).rstrip() for line in lines]


def screen_text(app: RelmanApp) -> list[str]:
    """The whole terminal as drawn, one string a row."""
    strips = app.screen._compositor.render_strips()
    return ["".join(segment.text for segment in strip).rstrip() for strip in strips]


def state_cells(app: RelmanApp) -> dict[str, str]:
    table = app.screen.query_one(EnvironmentTable)
    return {str(row.key.value): str(table.get_row(row.key)[3]) for row in table.ordered_rows}


def warnings(app: RelmanApp) -> list[tuple[str, str]]:
    return [(n.title, n.message) for n in app._notifications if n.severity == "warning"]


@pytest.fixture
def world(canned_project: Path, monkeypatch: pytest.MonkeyPatch) -> World:
    return canned_rollout.install(monkeypatch)


async def open_pane(pilot: Pilot[None], wait_for_workers: WaitForWorkers) -> RolloutScreen:
    """prod's row on the overview, then R; the pane once it has read the rollout."""
    await wait_for_workers(pilot)
    await pilot.press("down", "down", "R")
    app = pilot.app
    await wait_until(pilot, lambda: isinstance(app.screen, RolloutScreen), "the rollout pane")
    screen = app.screen
    assert isinstance(screen, RolloutScreen)
    await wait_until(pilot, lambda: screen.document is not None, "the rollout read")
    await pilot.pause()
    return screen


async def test_the_overview_says_where_a_rollout_goes_on(
    world: World, wait_for_workers: WaitForWorkers
) -> None:
    world.rollouts = {
        "dev": summary("paused", 50),
        "staging": summary("aborted", 0),
        "prod": summary("progressing", 20),
    }
    app = RelmanApp(project_dir=Path.cwd())
    async with app.run_test(size=SIZE) as pilot:
        await wait_for_workers(pilot)
        states = state_cells(app)
        assert states["shop/dev"] == "paused 50%"
        assert states["shop/staging"] == "aborted"
        # A firing alert is still said after the rollout.
        assert states["shop/prod"] == "canary 20%, 1 firing"
        table = app.screen.query_one(EnvironmentTable)
        going = table.get_row("shop/prod")[3]
        assert going.spans[0].style == table.get_component_rich_style("status--busy", partial=True)
        await pilot.press("down", "down")
        detail = str(app.screen.query_one("#row-detail", Static).render()).splitlines()
        assert detail[1] == (
            f"rollout: canary 20% of v1.4.0 ({canned.CANDIDATE[:7]}) · R shows its steps and checks"
        )

        # A shadow says what it mirrors; a promoted rollout leaves the release simply live.
        world.rollouts = {"prod": summary("progressing", 100, "shadow"), "dev": summary("promoted")}
        await pilot.press("r")
        await wait_for_workers(pilot)
        states = state_cells(app)
        assert states["shop/prod"] == "shadow 100%, 1 firing"
        assert states["shop/dev"] == "live"
        assert states["shop/staging"] == "live"


async def test_a_document_without_rollouts_still_renders(
    canned_project: Path, wait_for_workers: WaitForWorkers
) -> None:
    """An engine whose overview has no ``rollout`` at all: the rows say what they said."""
    app = RelmanApp(project_dir=canned_project)
    async with app.run_test(size=SIZE) as pilot:
        await wait_for_workers(pilot)
        assert state_cells(app)["shop/dev"] == "live"
        assert isinstance(app.screen, OverviewScreen)


async def test_the_pane_shows_steps_and_checks_at_80x24(
    world: World, wait_for_workers: WaitForWorkers
) -> None:
    app = RelmanApp(project_dir=Path.cwd())
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_pane(pilot, wait_for_workers)
        assert (screen.service, screen.env) == ("shop", "prod")
        assert drawn(screen.query_one("#rollout-title")) == [
            " shop in prod · canary rollout · progressing"
        ]
        assert drawn(screen.query_one("#rollout-releases")) == [
            " stable v1.3.2 (0f9e8d7) · canary v1.4.0 (a1b2c3d) at 20% · step 3/6 · for 2m"
        ]
        steps = drawn(screen.query_one("#rollout-steps"))
        # One line a step, none wrapped; a detail too long for 80 columns ends in an ellipsis.
        assert len(steps) == 6
        assert " ".join(steps[0].split()) == (
            "passed weight 20% 0.4s 20% of requests routed to v1.4.0 (a1b2c3d)"
        )
        assert steps[2].split()[:4] == ["running", "analysis", "default", "41.5s"]
        assert steps[2].endswith("…") and len(steps[2]) <= 80
        # Steps not started yet: their status, no time.
        assert [line.split() for line in steps[3:]] == [
            ["pending", "weight", "50%"], ["pending", "pause", "20s"],
            ["pending", "analysis", "default"],
        ]  # fmt: skip
        checks = drawn(screen.query_one("#rollout-checks"))
        assert checks[0].split() == ["check", "stable", "canary", "verdict", "detail"]
        assert len(checks) == 4
        assert checks[2].split()[:8] == ["latency", "p95", "31", "ms", "p95", "412", "ms", "fail"]
        assert checks[3].split()[:5] == ["prediction-mix", "3", "classes", "too", "few"]
        assert "inconclusive" in checks[3]
        assert all(len(line) <= 80 for line in steps + checks)
        # Every line of the pane is on the screen at 80x24, the footer with its keys too.
        body = screen.query_one("#rollout-body")
        assert body.virtual_size.height <= body.size.height
        shown = screen_text(app)
        assert len(shown) == 24 and max(map(len, shown)) <= 80
        for key in ("p Pause/resume", "a Abort", "P Promote now"):
            assert key in shown[-1]


@pytest.mark.parametrize(
    ("phase", "key", "action", "said"),
    [
        (
            "progressing",
            "p",
            "pause",
            "pause the canary rollout of shop in prod at 20% (now: analysis default): traffic "
            "stays split as it is and no further step starts until it is resumed (p)",
        ),
        (
            "paused",
            "p",
            "resume",
            "resume the canary rollout of shop in prod at 20%: the steps left run (analysis "
            "default, weight 50%, pause 20s and 1 more)",
        ),
        (
            "progressing",
            "a",
            "abort",
            "abort the canary rollout of shop in prod: v1.3.2 (0f9e8d7) serves every request "
            "again and the canary v1.4.0 (a1b2c3d) is stopped",
        ),
        (
            "progressing",
            "P",
            "promote",
            "promote the canary release v1.4.0 (a1b2c3d) of shop in prod now: it serves every "
            "request at once, skipping the steps left (analysis default, weight 50%, pause 20s "
            "and 1 more) and their analysis; v1.3.2 (0f9e8d7) is retired",
        ),
    ],
)
async def test_each_key_asks_then_calls_the_engine(
    world: World,
    wait_for_workers: WaitForWorkers,
    phase: str,
    key: str,
    action: str,
    said: str,
) -> None:
    world.document = canned_rollout.document(phase)
    app = RelmanApp(project_dir=Path.cwd())
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_pane(pilot, wait_for_workers)
        await pilot.press(key)
        await wait_until(pilot, lambda: isinstance(app.screen, ConfirmScreen), "the dialog")
        dialog = app.screen
        assert str(dialog.query_one("#confirm-text", Static).render()) == said
        command = f"relman rollout {action} shop --env prod"
        assert str(dialog.query_one("#confirm-command", Static).render()) == command
        assert world.calls == []  # nothing is sent before the yes
        await pilot.press("y")
        await wait_until(pilot, lambda: world.calls, "the engine call")
        assert world.calls == [("shop", "shop", "prod", action, False)]
        await wait_until(pilot, lambda: screen.acting is None, "the engine's answer")
        await wait_for_workers(pilot)
        # The pane, not a run screen: it shows the engine's answer at once.
        assert app.screen is screen and app.current_run is None
        done = {"pause": "paused", "resume": "progressing", "abort": "aborted"}
        assert screen.document is not None
        assert screen.document["phase"] == done.get(action, "promoted")
        # Where the engine says the rollout is now, once.
        said = [n.message for n in app._notifications if n.title == "Rollout"]
        assert len(said) == 1 and said[0].startswith(
            f"{action} the rollout of shop in prod: the rollout is {done.get(action, 'promoted')}"
        )


async def test_no_answers_no(world: World, wait_for_workers: WaitForWorkers) -> None:
    app = RelmanApp(project_dir=Path.cwd())
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_pane(pilot, wait_for_workers)
        await pilot.press("a")
        await wait_until(pilot, lambda: isinstance(app.screen, ConfirmScreen), "the dialog")
        await pilot.press("n")
        await wait_for_workers(pilot)
        assert app.screen is screen and world.calls == []


async def test_read_only_is_refused_with_the_command_to_run(
    world: World, wait_for_workers: WaitForWorkers
) -> None:
    app = RelmanApp(project_dir=Path.cwd(), read_only=True)
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_pane(pilot, wait_for_workers)
        for action in ("pause_resume", "abort", "promote_now"):
            assert screen.check_action(action, ()) is None, f"{action} is not dimmed"
        # The dimmed key still answers: no dialog, the engine refuses, the command is said.
        await pilot.press("a")
        await wait_until(pilot, lambda: warnings(app), "the refusal")
        assert warnings(app) == [
            (
                READ_ONLY,
                "read-only mode: rollout abort of shop in prod refused. From a session that "
                "may act, run:\nrelman rollout abort shop --env prod",
            )
        ]
        assert world.calls == [("shop", "shop", "prod", "abort", True)]
        assert app.screen is screen
        # From the command palette, the same answer.
        app.clear_notifications()
        await run_from_palette(pilot, "Promote now")
        await wait_until(pilot, lambda: warnings(app), "the second refusal")
        assert warnings(app)[0][1].endswith("run:\nrelman rollout promote shop --env prod")


async def test_the_pane_follows_the_rollout(world: World, wait_for_workers: WaitForWorkers) -> None:
    """Read again (the poll, or r), the pane shows the new phase and says it once."""
    app = RelmanApp(project_dir=Path.cwd())
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_pane(pilot, wait_for_workers)
        assert screen.check_action("abort", ()) is True
        world.document = canned_rollout.aborted()
        await pilot.press("r")
        await wait_until(
            pilot, lambda: screen.document and screen.document["phase"] == "aborted", "aborted"
        )
        await pilot.pause()
        assert drawn(screen.query_one("#rollout-title")) == [
            " shop in prod · canary rollout · aborted"
        ]
        detail = drawn(screen.query_one("#rollout-detail"))
        assert len(detail) == 1 and detail[0].startswith(" latency: p95 412 ms vs stable 31 ms")
        assert drawn(screen.query_one("#rollout-steps"))[2].split()[:3] == [
            "failed", "analysis", "default",
        ]  # fmt: skip
        said = [(n.title, n.message) for n in app._notifications if n.severity == "error"]
        assert said == [("Rollout", f"shop in prod: rollout aborted: latency: {LATENCY_DETAIL}")]
        # Nothing is left to act on: the keys are dimmed and say why when pressed.
        assert screen.check_action("abort", ()) is None
        await pilot.press("a")
        assert warnings(app)[-1][1] == "Nothing to abort: the rollout is aborted in shop in prod."
        # The same document again: nothing said twice.
        await pilot.press("r")
        await wait_for_workers(pilot)
        assert len([n for n in app._notifications if n.severity == "error"]) == 1


async def test_a_rollout_whose_driver_stopped(
    world: World, wait_for_workers: WaitForWorkers
) -> None:
    """The relman driving it was killed: the row says interrupted, the pane says so and what
    the engine says to do; pause and resume need a driver, abort and promote do not."""
    world.rollouts = {"prod": summary(interrupted=True)}
    stopped = (
        "interrupted: the relman driving it (pid 4121) stopped; the next promote, rollback or "
        "`relman rollout abort` puts v1.3.2 back"
    )
    world.document = canned_rollout.document(
        driver={"pid": 4121, "host": "build-1", "alive": False}, detail=stopped
    )
    app = RelmanApp(project_dir=Path.cwd())
    async with app.run_test(size=SIZE) as pilot:
        await wait_for_workers(pilot)
        assert state_cells(app)["shop/prod"] == "interrupted, 1 firing"
        screen = await open_pane(pilot, wait_for_workers)
        assert drawn(screen.query_one("#rollout-title")) == [
            " shop in prod · canary rollout · progressing · interrupted"
        ]
        (line,) = drawn(screen.query_one("#rollout-detail"))
        assert line.startswith(" interrupted: the relman driving it (pid 4121) stopped;")
        assert line.endswith("…") and len(line) <= 80
        assert screen.check_action("pause_resume", ()) is None
        assert screen.check_action("abort", ()) is True
        await pilot.press("p")
        assert warnings(app) == [
            (
                "",
                "Cannot pause: the relman driving the rollout of shop in prod stopped; abort "
                "(a) or promote (P) it.",
            )
        ]
        await pilot.press("escape")  # back on prod's row
        detail = str(app.screen.query_one("#row-detail", Static).render()).splitlines()
        assert detail[1] == (
            "rollout: canary 20% of v1.4.0 (a1b2c3d), its driver stopped · R shows what to do"
        )


async def test_from_the_palette_and_without_a_rollout(
    world: World, wait_for_workers: WaitForWorkers
) -> None:
    """The palette opens the pane of the selected environment; where no rollout ever ran,
    the pane says how one starts, and n goes to the next environment."""
    app = RelmanApp(project_dir=Path.cwd())
    async with app.run_test(size=SIZE) as pilot:
        await wait_for_workers(pilot)  # dev selected
        await run_from_palette(pilot, "Rollout")
        await wait_until(pilot, lambda: isinstance(app.screen, RolloutScreen), "the pane")
        screen = app.screen
        assert isinstance(screen, RolloutScreen) and screen.env == "dev"
        await wait_until(pilot, lambda: screen.document is not None, "the rollout read")
        await pilot.pause()
        assert drawn(screen.query_one("#rollout-title")) == [" shop in dev · no rollout"]
        assert drawn(screen.query_one("#rollout-detail")) == [
            " no rollout has run in dev; one starts with:",
            " relman promote shop --to dev --strategy canary",
        ]
        assert not screen.query_one("#rollout-body").display
        await pilot.press("n", "n")
        await wait_until(
            pilot, lambda: screen.document and screen.document["phase"] != "none", "prod's"
        )
        assert screen.env == "prod"


async def test_an_engine_without_rollouts_says_so(
    canned_project: Path, wait_for_workers: WaitForWorkers, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delattr(api, "rollout_status", raising=False)
    app = RelmanApp(project_dir=canned_project)
    async with app.run_test(size=SIZE) as pilot:
        await wait_for_workers(pilot)
        await pilot.press("R")
        await wait_until(pilot, lambda: isinstance(app.screen, RolloutScreen), "the pane")
        await wait_until(pilot, lambda: app._notifications, "the error")
        (note,) = list(app._notifications)
        assert note.title == "Cannot read the rollout"
        assert note.message.startswith("this relman cannot rollout status: core.api.rollout_status")


def test_snapshot_of_the_pane_80x24(
    snap_compare: SnapCompare, world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def run_before(pilot: Pilot[None]) -> None:
        await open_pane(pilot, _wait)
        pilot.app.clear_notifications()
        await pilot.pause()

    assert snap_compare(
        RelmanApp(project_dir=Path.cwd()), terminal_size=SIZE, run_before=run_before
    )


async def _wait(pilot: Pilot[object]) -> None:
    await pilot.pause()
    await pilot.app.workers.wait_for_complete()
    await pilot.pause()
