"""Suite-wide isolation: no test reads or writes the developer's HOME, git identity,
BentoML store or DVC config. Set once at configure time so fixtures of every scope see it."""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

_SANDBOX: Path | None = None


def pytest_configure(config: pytest.Config) -> None:
    global _SANDBOX
    _SANDBOX = Path(tempfile.mkdtemp(prefix="relman-tests-"))
    home = _SANDBOX / "home"
    home.mkdir()
    os.environ.update(
        {
            "HOME": str(home),
            "XDG_CONFIG_HOME": str(home / ".config"),
            "XDG_CACHE_HOME": str(home / ".cache"),
            "BENTOML_HOME": str(_SANDBOX / "bentoml"),
            # git: no system or global config; commits made by tests use this identity.
            "GIT_CONFIG_NOSYSTEM": "1",
            "GIT_CONFIG_GLOBAL": str(home / ".gitconfig"),
            "GIT_AUTHOR_NAME": "Test Author",
            "GIT_AUTHOR_EMAIL": "author@example.invalid",
            "GIT_COMMITTER_NAME": "Test Author",
            "GIT_COMMITTER_EMAIL": "author@example.invalid",
            "DVC_NO_ANALYTICS": "1",
            "DO_NOT_TRACK": "1",
            "BENTOML_DO_NOT_TRACK": "True",
        }
    )
    for name in ("RELMAN_USER", "NO_COLOR", "GITHUB_STEP_SUMMARY"):
        os.environ.pop(name, None)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """The tests marked ``slow`` first (each a minute or more), the rest in their order: the
    workers pick the long ones up at the start and fill in with short ones, instead of one
    worker starting a two-minute test while the other has nothing left to do."""
    items.sort(key=lambda item: 0 if item.get_closest_marker("slow") else 1)


@pytest.fixture(autouse=True)
def _writes_allowed_again() -> Iterator[None]:
    """``--read-only`` run in-process, or a repository without relman.toml read, makes the
    rest of the process read-only (``api.forbid_writes``): undone after each test, so the
    tests that follow in the same worker may write."""
    yield
    os.environ.pop("RELMAN_READ_ONLY", None)


def pytest_unconfigure(config: pytest.Config) -> None:
    if _SANDBOX is not None:
        shutil.rmtree(_SANDBOX, ignore_errors=True)


# Here, not in tests/e2e/conftest.py: the TUI's tmux tests use the demo too, and a session
# fixture is made once per test process only where every module sees the same definition.
@pytest.fixture(scope="session")
def _pristine_demo(tmp_path_factory: pytest.TempPathFactory) -> Any:
    """The demo project, created once per test process (about 6 s of CPU) in an isolated
    environment that is undone before any test runs; modules get copies of it."""
    from core.scaffold.demo import create_demo
    from tests.e2e.conftest import Demo, isolate_user

    base = tmp_path_factory.mktemp("demo-pristine")
    with pytest.MonkeyPatch.context() as mp:
        isolate_user(mp, base)
        messages: list[str] = []
        root = create_demo(base / "iris-demo", log=messages.append)
    return Demo(root=root, messages=messages)


@pytest.fixture(scope="session")
def k8s_cluster(tmp_path_factory: pytest.TempPathFactory) -> Any:
    """One Kubernetes control plane and test kubelet per test process (tests/k8s_stack.py);
    the tests that take it are skipped, with the reason, where it cannot run."""
    from tests.k8s_stack import WHY_NOT, pod_runtime, running_cluster

    if WHY_NOT is not None:
        pytest.skip(WHY_NOT)
    with running_cluster(tmp_path_factory.mktemp("k8s"), pod_runtime()) as cluster:
        yield cluster
