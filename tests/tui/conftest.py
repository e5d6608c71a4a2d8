"""Fixtures of the TUI tests: throwaway projects in tmp_path and a way to wait for workers."""

from __future__ import annotations

import shutil
from collections.abc import Awaitable, Callable
from pathlib import Path

import pytest
from textual.pilot import Pilot

VALID_TOML = """\
[project]
name = "shop"

[services.shop]
bento = "service:Shop"
model = ["model.pkl"]

[environments.dev]
port = 3100

[environments.staging]
port = 3101

[environments.prod]
port = 3102
approvals = 1
"""

BROKEN_TOML = VALID_TOML + "bogus_setting = 1\n"

WaitForWorkers = Callable[[Pilot[object]], Awaitable[None]]


@pytest.fixture(autouse=True)
def isolated_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """HOME in tmp_path, so no test reads the developer's configuration."""
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(home / ".config"))
    monkeypatch.delenv("NO_COLOR", raising=False)
    return home


@pytest.fixture
def project_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A minimal valid project (one service, dev/staging/prod); the cwd is its root."""
    root = tmp_path / "shop"
    root.mkdir()
    (root / "relman.toml").write_text(VALID_TOML, encoding="utf-8")
    # Errors name relman.toml relative to the cwd, as a person running relman there sees it.
    monkeypatch.chdir(root)
    return root


@pytest.fixture
def broken_project_dir(project_dir: Path) -> Path:
    """The same project with an unknown key in [environments.prod]."""
    (project_dir / "relman.toml").write_text(BROKEN_TOML, encoding="utf-8")
    return project_dir


async def _wait_for_workers(pilot: Pilot[object]) -> None:
    await pilot.pause()  # a worker may start after the next refresh (the overview's first read)
    await pilot.app.workers.wait_for_complete()
    await pilot.pause()


@pytest.fixture
def wait_for_workers() -> WaitForWorkers:
    """``await wait_for_workers(pilot)``: every worker done and its messages handled."""
    return _wait_for_workers


@pytest.fixture
def canned_project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The shop project of tests/tui/canned.py: core.api's reads answer canned documents."""
    from tests.tui import canned

    root = tmp_path / "shop"
    root.mkdir()
    (root / "relman.toml").write_text(canned.CANNED_TOML, encoding="utf-8")
    monkeypatch.chdir(root)
    canned.install(monkeypatch)
    return root


@pytest.fixture(scope="session")
def demo_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The real demo project (git, DVC, suites, BentoML service), made once per session."""
    from core.scaffold.demo import create_demo

    base = tmp_path_factory.mktemp("demo-template")
    return create_demo(base / "iris-demo")


@pytest.fixture
def demo_dir(demo_template: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A copy of the demo for one test (its DVC remote beside it, as the demo makes it);
    the cwd is its root. Nothing is recorded in its ledger yet."""
    for source in demo_template.parent.iterdir():
        shutil.copytree(source, tmp_path / source.name, symlinks=True)
    root = tmp_path / demo_template.name
    monkeypatch.chdir(root)
    return root


async def wait_until(pilot: Pilot[object], condition: Callable[[], object], what: str) -> None:
    """Let the app run until ``condition()`` holds (workers posting, timers firing)."""
    for _ in range(250):
        if condition():
            return
        await pilot.pause(0.02)
    raise AssertionError(f"timed out waiting for {what}")
