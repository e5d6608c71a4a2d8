"""The logs of an environment (``o``, ``:logs``): the served process's output and the proxy's
access log, their last lines, then every line written after, as it comes; ``/`` narrows
both, ``n`` goes to the next environment. The files are real, in the canned project's
``.relman/envs/shop/dev/`` (the engine reads them: core/targets/logs.py)."""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path

from textual.widgets import Log, Static

from screens.logs import LogsScreen, access_line
from tests.tui.conftest import WaitForWorkers, wait_until
from tui.app import RelmanApp

SIZE = (80, 24)
T = datetime(2026, 11, 27, 12, 3, 4).timestamp()


def record(n: int, status: int = 200) -> str:
    fields = {"t": T + n, "method": "POST", "path": "/predict", "status": status, "ms": 9.25}
    return json.dumps(fields | {"upstream": "127.0.0.1:41000", "bytes": 312}) + "\n"


def served(root: Path) -> tuple[Path, Path]:
    """dev's last instance (its process gone) with a few lines, and its access log."""
    env = root / ".relman" / "envs" / "shop" / "dev"
    instance = env / "instances" / "a1b2c3d4e5f6-41000"
    instance.mkdir(parents=True)
    (instance / "instance.json").write_text(json.dumps({"release": "a1b2c3d4e5f6"}))
    serve = instance / "serve.log"
    serve.write_text("".join(f"serve line {n}\n" for n in range(300)))
    access = env / "access.log"
    access.write_text(record(0) + record(1, status=500))
    return serve, access


def lines(app: RelmanApp, pane: str) -> list[str]:
    return list(app.screen.query_one(f"#logs-{pane}", Log).lines)


def text(app: RelmanApp, selector: str) -> str:
    return str(app.screen.query_one(selector, Static).render())


def test_an_access_record_reads_as_a_line() -> None:
    assert access_line(record(0)) == (
        "12:03:04  POST /predict  200  9.2 ms  312 B  -> 127.0.0.1:41000"
    )
    assert access_line("not json") == "not json"


async def test_the_logs_follow_what_is_written(
    canned_project: Path, wait_for_workers: WaitForWorkers
) -> None:
    serve, access = served(canned_project)
    app = RelmanApp(project_dir=canned_project)
    async with app.run_test(size=SIZE) as pilot:
        await wait_for_workers(pilot)
        await pilot.press("o")  # dev, the first row
        await wait_until(pilot, lambda: isinstance(app.screen, LogsScreen), "the logs")
        await wait_until(pilot, lambda: lines(app, "access"), "the first read")
        # The last lines of each (200 of the output), the access log as lines.
        assert lines(app, "serve")[0] == "serve line 100"
        assert lines(app, "serve")[-1] == "serve line 299"
        assert lines(app, "access") == [access_line(record(0)), access_line(record(1, 500))]
        assert text(app, "#logs-serve-title") == (
            "Output · shop a1b2c3d4e5f6, not serving now (its last instance) · "
            ".relman/envs/shop/dev/instances/a1b2c3d4e5f6-41000/serve.log"
        )
        assert text(app, "#logs-access-title").startswith("Access log · requests to shop in dev")
        # What is written next comes, and only that.
        with serve.open("a") as file:
            file.write("a request failed: ValueError\n")
        with access.open("a") as file:
            file.write(record(2, status=503))
        await wait_until(
            pilot, lambda: lines(app, "serve")[-1] == "a request failed: ValueError", "new output"
        )
        await wait_until(pilot, lambda: len(lines(app, "access")) == 3, "the new request")
        assert lines(app, "serve")[-2] == "serve line 299"
        assert lines(app, "access")[-1] == access_line(record(2, status=503))
        # / narrows both panes.
        await pilot.press("slash", *"50")
        assert lines(app, "serve") == ["serve line 150", "serve line 250"]
        assert lines(app, "access") == [access_line(record(1, 500)), access_line(record(2, 503))]
        await pilot.press("escape")
        assert len(lines(app, "access")) == 3
        # The next environment: nothing served there yet.
        await pilot.press("n")
        await wait_until(
            pilot, lambda: "staging yet" in text(app, "#logs-serve-title"), "staging's logs"
        )
        assert text(app, "#logs-title").startswith("shop in staging")
        assert lines(app, "serve") == [] and lines(app, "access") == []
        await pilot.press("escape")
        assert not isinstance(app.screen, LogsScreen)


async def test_colon_logs_names_its_environment(
    canned_project: Path, wait_for_workers: WaitForWorkers
) -> None:
    served(canned_project)
    app = RelmanApp(project_dir=canned_project)
    async with app.run_test(size=SIZE) as pilot:
        await wait_for_workers(pilot)
        await pilot.press("down", "down")  # prod is selected, dev is named
        await pilot.press("colon", *"logs shop/dev", "enter")
        await wait_until(pilot, lambda: isinstance(app.screen, LogsScreen), "the logs")
        assert isinstance(app.screen, LogsScreen) and app.screen.env == "dev"
        await wait_until(pilot, lambda: lines(app, "access"), "the first read")
