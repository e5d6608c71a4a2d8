"""Pilot tests of the release screen: what it shows of the candidate and of a recorded release
(canned engine answers), of the real demo (the engine's own reads), and its errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from core import api
from core.errors import ProjectError
from screens.release import ReleaseScreen
from tests.tui.conftest import WaitForWorkers
from tui.app import RelmanApp

SIZE = (80, 24)


def section(app: RelmanApp, name: str) -> str:
    """A section's text as the screen draws it (tables wrapped), its blanks collapsed."""
    widget = app.screen.query_one(f"#release-{name}")
    lines = widget.render_lines(widget.region.reset_offset)
    return " ".join(" ".join("".join(segment.text for segment in line).split()) for line in lines)


async def open_release(pilot: object, app: RelmanApp, downs: int, wait: WaitForWorkers) -> None:
    await wait(pilot)  # type: ignore[arg-type]
    await pilot.press(*(["down"] * downs), "enter")  # type: ignore[attr-defined]
    await wait(pilot)  # type: ignore[arg-type]
    assert isinstance(app.screen, ReleaseScreen)


async def test_the_candidate_in_full(
    canned_project: Path, wait_for_workers: WaitForWorkers
) -> None:
    app = RelmanApp(project_dir=canned_project)
    async with app.run_test(size=(120, 40)) as pilot:
        await open_release(pilot, app, 0, wait_for_workers)  # dev runs the candidate
        title = str(app.screen.query_one("#release-title").render())
        assert title == "shop v1.4.0 (3f9a2c1) · the candidate · live in dev, staging"
        lineage = section(app, "lineage")
        assert "3f9a2c1 Retrain on the November data" in lineage
        assert "Ada Lovelace <ada@example.com> · 3h ago" in lineage
        assert "models/model.pkl c2bbd29e 965 B local" in lineage
        assert "data/orders.csv 013d0da0 3.7 MiB local" in lineage
        assert "train.C=1.0 · train.seed=42" in lineage
        metrics = section(app, "metrics")
        # Against what each environment runs: the same release in dev and staging.
        assert "accuracy 0.956 same same +0.008" in metrics
        assert "f1_macro 0.955 same same +0.004" in metrics
        tests = section(app, "tests")
        assert "unit passed passed for this release: 7 passed" in tests
        assert "model passed passed for this release: 3 passed" in tests
        assert str(app.screen.query_one("#gates-heading").render()) == "Gates for prod"
        gates = section(app, "gates")
        assert "blocked approvals prod needs 1 approval from someone other than" in gates
        assert "passed order healthy in staging" in gates
        history = section(app, "history")
        assert "promote a1b2c3d4e5f6 (v1.4.0) to dev: done" in history
        assert "v1.3.2" not in history  # only this release's history


async def test_a_recorded_release_and_what_it_cannot_do(
    canned_project: Path, wait_for_workers: WaitForWorkers
) -> None:
    app = RelmanApp(project_dir=canned_project)
    async with app.run_test(size=(120, 40)) as pilot:
        await open_release(pilot, app, 2, wait_for_workers)  # prod runs v1.3.2
        screen = app.screen
        assert isinstance(screen, ReleaseScreen)
        title = str(screen.query_one("#release-title").render())
        assert title == "shop v1.3.2 (9e8d7c6) · live in prod"
        lineage = section(app, "lineage")
        assert "9e8d7c6 Tune the regulariser" in lineage
        assert "not recorded for this release" in lineage
        # Not the candidate's model: its cache state was not checked; the data is the same.
        assert "models/model.pkl 9a9a9a9a 960 B cache not checked" in lineage
        assert "data/orders.csv 013d0da0 3.7 MiB local" in lineage
        assert "accuracy 0.948" in section(app, "metrics")
        assert "checks the gates of a recorded release as it promotes it" in section(app, "gates")
        # Prod is the last environment; tests and builds are of the working tree.
        for action in ("promote", "approve", "test", "build"):
            assert screen.check_action(action, ()) is None, action
        assert screen.check_action("rollback", ()) is True
        keys = {b.binding.key: b.enabled for b in screen.active_bindings.values()}
        assert keys["p"] is False and keys["b"] is True
        # A dimmed key says why.
        await pilot.press("p")
        await wait_for_workers(pilot)
        assert (
            "shop v1.3.2 (9e8d7c6) is live in prod, the last environment: there is nothing "
            "further to promote it to"
        ) in [note.message for note in app._notifications]
        await pilot.press("u")
        await wait_for_workers(pilot)
        assert "builds are made of the candidate (the working tree); open its row" in [
            note.message for note in app._notifications
        ]


async def test_the_real_demo_candidate(demo_dir: Path, wait_for_workers: WaitForWorkers) -> None:
    """Nothing faked: api.status, gate, history and diff on the demo project."""
    app = RelmanApp(project_dir=demo_dir)
    async with app.run_test(size=(120, 40)) as pilot:
        await open_release(pilot, app, 3, wait_for_workers)
        status = api.status(api.load_project(demo_dir))
        cand = status["services"][0]["candidate"]
        title = str(app.screen.query_one("#release-title").render())
        assert (
            title
            == f"iris {cand['release']} ({cand['git']['short']}) · the candidate · not live yet"
        )
        lineage = section(app, "lineage")
        model = cand["model"][0]
        assert f"{model['path']} {model['md5'][:8]} {model['size']} B local" in lineage
        tests = section(app, "tests")
        assert "unit not run has not run for release" in tests
        assert str(app.screen.query_one("#gates-heading").render()) == "Gates for dev"
        assert "skipped order dev is the first environment" in section(app, "gates")
        assert section(app, "history") == "Nothing recorded for this release yet."


async def test_an_engine_error_is_a_notification_not_a_crash(
    canned_project: Path, wait_for_workers: WaitForWorkers, monkeypatch: pytest.MonkeyPatch
) -> None:
    app = RelmanApp(project_dir=canned_project)
    async with app.run_test(size=SIZE) as pilot:
        await wait_for_workers(pilot)

        def broken(project: api.Project) -> dict[str, object]:
            raise ProjectError("not a git repository: /srv/shop (run 'git init' there)")

        monkeypatch.setattr(api, "status", broken)
        await pilot.press("enter")
        await wait_for_workers(pilot)
        assert isinstance(app.screen, ReleaseScreen)
        assert app.is_running
        notes = [(n.title, n.message, n.severity) for n in app._notifications]
        assert (
            "Cannot read the release",
            "not a git repository: /srv/shop (run 'git init' there)",
            "error",
        ) in notes
        title = str(app.screen.query_one("#release-title").render())
        assert title.startswith("not a git repository")
