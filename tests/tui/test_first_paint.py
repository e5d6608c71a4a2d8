"""The first paint when the command line hands the app the project it read: the rows are
there at once, from relman.toml and the environments as the ledger recorded them, before
any worker has read anything; the candidate and what really serves follow from the first
poll. A ledger that cannot be read so leaves the table loading, and the poll says why."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import pytest
from textual.widgets import Static

from core import api
from screens.overview import EnvironmentTable
from store import Ledger
from tests.tui.conftest import WaitForWorkers, wait_until
from tui.app import RelmanApp

SIZE = (80, 24)
RELEASE = "a1b2c3d4e5f6"


def rows(app: RelmanApp) -> dict[str, list[str]]:
    table = app.screen.query_one(EnvironmentTable)
    return {
        str(row.key.value): [str(cell) for cell in table.get_row(row.key)]
        for row in table.ordered_rows
    }


def status_text(app: RelmanApp) -> str:
    return str(app.screen.query_one("#status", Static).render())


@pytest.fixture
def recorded(project_dir: Path) -> api.Project:
    """The shop project with v1.0.0 recorded live in dev; loaded, as the command line does."""
    project = api.load_project(project_dir)
    ledger = Ledger.open(project.ledger_path, actor="ada@example.com")
    try:
        ledger.record_release(
            RELEASE, service="shop", git_commit="3f9a2c1" + "0" * 33, version="v1.0.0"
        )
        ledger.set_environment_state(
            "shop", "dev", "live", release_id=RELEASE, url="http://127.0.0.1:3100"
        )
    finally:
        ledger.close()
    return project


@pytest.fixture
def held_reads(monkeypatch: pytest.MonkeyPatch) -> threading.Event:
    """The worker's reads (what serves, the candidate) wait until the event is set."""
    release = threading.Event()
    real_overview, real_status = api.overview, api.status

    def overview(project: api.Project) -> Any:
        release.wait(timeout=30)
        return real_overview(project)

    def status(project: api.Project) -> Any:
        release.wait(timeout=30)
        return real_status(project)

    monkeypatch.setattr(api, "overview", overview)
    monkeypatch.setattr(api, "status", status)
    return release


async def test_the_rows_are_painted_from_the_ledger_before_any_read(
    recorded: api.Project, held_reads: threading.Event, wait_for_workers: WaitForWorkers
) -> None:
    app = RelmanApp(project_dir=recorded.root, project=recorded)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        assert app.sub_title == "shop"
        table = app.screen.query_one(EnvironmentTable)
        assert not table.loading
        shown = rows(app)
        assert list(shown) == ["shop/dev", "shop/staging", "shop/prod", "shop/@candidate"]
        assert shown["shop/dev"][:4] == ["shop", "dev", "a1b2c3d v1.0.0", "live"]
        assert shown["shop/staging"][2:4] == ["—", "not deployed"]
        assert shown["shop/@candidate"][3] == "loading"
        assert not app.screen.query_one("#status", Static).display  # something is deployed
        held_reads.set()
        await wait_for_workers(pilot)
        # The candidate follows from the first poll (here: no git repository to read).
        assert rows(app)["shop/@candidate"][3] == "unknown"
        assert rows(app)["shop/dev"][3] == "live"


async def test_a_ledger_that_cannot_be_read_so_leaves_the_table_loading(
    recorded: api.Project, held_reads: threading.Event, wait_for_workers: WaitForWorkers
) -> None:
    recorded.ledger_path.unlink()
    recorded.ledger_path.mkdir()  # not a database: the first poll says so
    app = RelmanApp(project_dir=recorded.root, project=recorded)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        table = app.screen.query_one(EnvironmentTable)
        assert table.loading
        assert table.row_count == 0
        assert "Loading" in status_text(app)
        held_reads.set()
        await wait_for_workers(pilot)
        await wait_until(pilot, lambda: not table.loading, "the first poll")
        assert "is a directory, not a database file" in status_text(app)
