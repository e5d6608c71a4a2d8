"""Suite-wide isolation: no test reads or writes the developer's HOME, git identity,
BentoML store or DVC config. Set once at configure time so fixtures of every scope see it."""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

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


def pytest_unconfigure(config: pytest.Config) -> None:
    if _SANDBOX is not None:
        shutil.rmtree(_SANDBOX, ignore_errors=True)
