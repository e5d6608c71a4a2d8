"""The rollback confirmation says what the engine will decide about approvals: nothing when
the target was live in the environment before (tests/tui/test_actions.py), who approved it
when it was never live there, and that it will be blocked when its approvals are missing."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from core import api
from tests.tui import canned
from tests.tui.conftest import WaitForWorkers
from tests.tui.test_actions import SIZE, confirm_dialog, text
from tui.app import RelmanApp

FROM_TO = "roll back shop in prod from v1.3.2 (0f9e8d7) to v1.3.1 (1234567); "
MISSING = (
    "v1.3.1 was never live in prod: prod needs 1 approval from someone other than "
    f"bob@example.com; has 0; another person runs: relman approve {canned.OLDER} --env prod"
)


def target_with(monkeypatch: pytest.MonkeyPatch, status: str, detail: str) -> None:
    """The engine's answer: prod goes back to v1.3.1, its approvals step as given."""
    step = {"name": "approvals", "status": status, "seconds": 0.0, "detail": detail}

    def rollback_target(project: api.Project, service: str, env: str) -> dict[str, Any]:
        return {"release": canned.OLDER, "version": "v1.3.1", "approvals": {**step}}

    monkeypatch.setattr(api, "rollback_target", rollback_target)


async def dialog_text(app: RelmanApp, wait_for_workers: WaitForWorkers) -> str:
    async with app.run_test(size=SIZE) as pilot:
        await wait_for_workers(pilot)
        await pilot.press("down", "down")  # prod, from the overview
        await confirm_dialog(pilot, "b")
        return text(app, "#confirm-text")


async def test_missing_approvals_are_said_before_the_rollback(
    canned_project: Path, wait_for_workers: WaitForWorkers, monkeypatch: pytest.MonkeyPatch
) -> None:
    target_with(monkeypatch, "failed", MISSING)
    shown = await dialog_text(RelmanApp(project_dir=canned_project), wait_for_workers)
    assert shown == (
        f"{FROM_TO}gates skipped, health checked; the previous release is restored if the "
        f"new one fails. It will be blocked: approvals: {MISSING}"
    )


async def test_the_approvals_that_clear_it_are_named(
    canned_project: Path, wait_for_workers: WaitForWorkers, monkeypatch: pytest.MonkeyPatch
) -> None:
    approved = "v1.3.1 was never live in prod; approved for prod by carol (1 needed)"
    target_with(monkeypatch, "passed", approved)
    shown = await dialog_text(RelmanApp(project_dir=canned_project), wait_for_workers)
    assert shown == (
        f"{FROM_TO}{approved}; other gates skipped, health checked; the previous release is "
        "restored if the new one fails"
    )
