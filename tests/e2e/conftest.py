"""Fixtures of the end-to-end tests: an isolated user environment and one demo project."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

# Variables through which a developer's own identity or config could leak into a test.
_LEAKY = (
    "EMAIL",
    "GIT_AUTHOR_NAME",
    "GIT_AUTHOR_EMAIL",
    "GIT_COMMITTER_NAME",
    "GIT_COMMITTER_EMAIL",
    "GIT_DIR",
    "GIT_WORK_TREE",
    "PYTEST_ADDOPTS",
    "PYTHONPATH",
    "VIRTUAL_ENV",
)


def isolate_user(mp: pytest.MonkeyPatch, base: Path) -> Path:
    """Point HOME, XDG, BentoML, DVC and git config at empty folders under ``base``.

    PATH keeps only the folder that holds git (and /bin for sh), so nothing relies on the
    test interpreter's bin/ being on PATH, as when relman runs from an unactivated venv.
    """
    home = base / "home"
    home.mkdir(parents=True, exist_ok=True)
    for name in _LEAKY:
        mp.delenv(name, raising=False)
    mp.setenv("HOME", str(home))
    mp.setenv("XDG_CONFIG_HOME", str(home / ".config"))
    mp.setenv("XDG_CACHE_HOME", str(home / ".cache"))
    mp.setenv("BENTOML_HOME", str(base / "bentoml"))
    mp.setenv("GIT_CONFIG_NOSYSTEM", "1")
    mp.setenv("GIT_CONFIG_GLOBAL", os.devnull)
    mp.setenv("DVC_GLOBAL_CONFIG_DIR", str(base / "dvc-global"))
    mp.setenv("DVC_SYSTEM_CONFIG_DIR", str(base / "dvc-system"))
    mp.setenv("DVC_SITE_CACHE_DIR", str(base / "dvc-site-cache"))
    mp.setenv("DVC_NO_ANALYTICS", "1")
    git = shutil.which("git")
    assert git, "the end-to-end tests need git on PATH"
    mp.setenv("PATH", os.pathsep.join(dict.fromkeys([str(Path(git).parent), "/bin"])))
    return home


@dataclass(frozen=True)
class Demo:
    root: Path
    messages: list[str]


@pytest.fixture(scope="module")
def demo(_pristine_demo: Demo, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Demo]:
    """A copy of the demo project (with its DVC remote beside it) for one test module, in an
    isolated environment of its own: tests may change it freely."""
    base = tmp_path_factory.mktemp("demo-env")
    source = _pristine_demo.root.parent
    for name in ("iris-demo", "iris-demo-dvc-remote"):
        shutil.copytree(source / name, base / name, symlinks=True)
    with pytest.MonkeyPatch.context() as mp:
        isolate_user(mp, base)
        yield Demo(root=base / "iris-demo", messages=list(_pristine_demo.messages))
