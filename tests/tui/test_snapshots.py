"""SVG snapshots at the 80x24 on-call terminal and a roomier 120x40: the overview, the help,
the release screen, a promotion's confirmation and its run, quitting while it runs, the
monitor and the alerts. The engine answers canned documents (tests/tui/canned.py) and the
clocks stand still, so the pictures are deterministic.
"""

from __future__ import annotations

import threading
from collections.abc import Awaitable, Callable
from pathlib import Path

import pytest
from textual.pilot import Pilot

from core import api
from screens import runs
from screens.confirm import QuitScreen
from tests.tui import canned
from tests.tui.conftest import wait_until
from tui import app as app_module
from tui.app import RelmanApp

SnapCompare = Callable[..., bool]
SIZES = [(80, 24), (120, 40)]
APP_DIR = Path(app_module.__file__).parent


async def settle(pilot: Pilot[None]) -> None:
    await pilot.pause()  # the overview starts reading once it is painted
    await pilot.app.workers.wait_for_complete()
    await pilot.pause()
    pilot.app.clear_notifications()
    await pilot.pause()


def pressing(*keys: str) -> Callable[[Pilot[None]], Awaitable[None]]:
    """Wait for the overview, press ``keys`` (waiting for the workers after each)."""

    async def run_before(pilot: Pilot[None]) -> None:
        await settle(pilot)
        for key in keys:
            await pilot.press(key)
            await settle(pilot)

    return run_before


@pytest.fixture
def still_clock(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(runs, "clock", lambda: 100.0)


@pytest.mark.parametrize("size", SIZES, ids=["80x24", "120x40"])
def test_overview(snap_compare: SnapCompare, canned_project: Path, size: tuple[int, int]) -> None:
    app = RelmanApp(project_dir=canned_project)
    assert snap_compare(app, terminal_size=size, run_before=pressing())


def test_overview_read_only_80x24(snap_compare: SnapCompare, canned_project: Path) -> None:
    app = RelmanApp(project_dir=canned_project, read_only=True)
    assert snap_compare(app, terminal_size=(80, 24), run_before=pressing())


def test_help_80x24(snap_compare: SnapCompare, canned_project: Path) -> None:
    app = RelmanApp(project_dir=canned_project)
    assert snap_compare(app, terminal_size=(80, 24), run_before=pressing("question_mark"))


@pytest.mark.parametrize("size", SIZES, ids=["80x24", "120x40"])
def test_release(snap_compare: SnapCompare, canned_project: Path, size: tuple[int, int]) -> None:
    app = RelmanApp(project_dir=canned_project)
    assert snap_compare(app, terminal_size=size, run_before=pressing("enter"))


def test_confirm_promote_80x24(snap_compare: SnapCompare, canned_project: Path) -> None:
    app = RelmanApp(project_dir=canned_project)
    assert snap_compare(app, terminal_size=(80, 24), run_before=pressing("enter", "p"))


@pytest.mark.parametrize("size", SIZES, ids=["80x24", "120x40"])
def test_run_of_a_promotion(
    snap_compare: SnapCompare,
    canned_project: Path,
    monkeypatch: pytest.MonkeyPatch,
    still_clock: None,
    size: tuple[int, int],
) -> None:
    def promote(*args: object, **kwargs: object) -> dict[str, object]:
        log = kwargs["log"]
        assert callable(log)
        for line in (
            "lock ...",
            "passed  lock  prod locked",
            "validate ...",
            "starting shop:a1b2c3d4e5f6 on 127.0.0.1:40000",
            "passed  validate  ready in 3.4 s on 127.0.0.1:40000; /predict answered 200",
            "switch ...",
            "passed  switch  prod serves v1.4.0 at http://127.0.0.1:3102",
        ):
            log(line)
        return canned.deploy_document("promote", "prod", canned.CANDIDATE, "v1.4.0")

    monkeypatch.setattr(api, "promote", promote)

    async def run_before(pilot: Pilot[None]) -> None:
        await pressing("enter", "p", "y")(pilot)
        app = pilot.app
        assert isinstance(app, RelmanApp)
        await wait_until(pilot, lambda: app.current_run and not app.busy, "the promotion")
        await settle(pilot)

    app = RelmanApp(project_dir=canned_project)
    assert snap_compare(app, terminal_size=size, run_before=run_before)


def test_audit_80x24(snap_compare: SnapCompare, canned_project: Path) -> None:
    app = RelmanApp(project_dir=canned_project)
    assert snap_compare(app, terminal_size=(80, 24), run_before=pressing("h"))


@pytest.mark.parametrize("size", SIZES, ids=["80x24", "120x40"])
def test_monitor_of_prod(
    snap_compare: SnapCompare, canned_project: Path, size: tuple[int, int]
) -> None:
    app = RelmanApp(project_dir=canned_project)
    assert snap_compare(app, terminal_size=size, run_before=pressing("down", "down", "m"))


@pytest.mark.parametrize("size", SIZES, ids=["80x24", "120x40"])
def test_alerts(snap_compare: SnapCompare, canned_project: Path, size: tuple[int, int]) -> None:
    app = RelmanApp(project_dir=canned_project)
    assert snap_compare(app, terminal_size=size, run_before=pressing("exclamation_mark"))


def test_quit_during_a_promotion_80x24(
    snap_compare: SnapCompare,
    canned_project: Path,
    monkeypatch: pytest.MonkeyPatch,
    still_clock: None,
) -> None:
    go = threading.Event()

    def promote(*args: object, **kwargs: object) -> dict[str, object]:
        log = kwargs["log"]
        assert callable(log)
        for line in ("lock ...", "passed  lock  prod locked", "validate ..."):
            log(line)
        go.wait(timeout=10)
        return canned.deploy_document("promote", "prod", canned.CANDIDATE, "v1.4.0")

    monkeypatch.setattr(api, "promote", promote)

    class HeldApp(RelmanApp):
        # A subclass reads its CSS_PATH beside its own module: name the app's files.
        CSS_PATH = [APP_DIR / path for path in RelmanApp.CSS_PATH]

        def on_unmount(self) -> None:
            go.set()  # the picture is taken: let the promotion end

    async def run_before(pilot: Pilot[None]) -> None:
        await pressing("enter", "p")(pilot)
        app = pilot.app
        assert isinstance(app, RelmanApp)
        await pilot.press("y")  # no settle from here: the promotion's worker is held
        await wait_until(pilot, lambda: app.current_run and len(app.current_run.steps) == 2, "")
        await pilot.press("q")
        await wait_until(pilot, lambda: isinstance(app.screen, QuitScreen), "the quit dialog")
        app.clear_notifications()
        await pilot.pause()

    app = HeldApp(project_dir=canned_project)
    assert snap_compare(app, terminal_size=(80, 24), run_before=run_before)
