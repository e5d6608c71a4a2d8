"""A real git + DVC repository in tmp_path, reusable by any test: ``dvc_repo``.

The repository: ``data/iris.csv`` tracked by a .dvc file, a ``train`` stage (``python
src/train.py``, run with this interpreter) depending on it, on ``src/train.py`` and on the
``lr`` parameter, producing ``models/model.pkl``, a ``data/features`` directory of two files
and ``metrics.json``; dvc.yaml declares the artifacts ``clf`` (model) and ``iris`` (dataset).
A default DVC remote ``../remote`` is configured (empty until a test pushes). It is built once
per session and copied for each test, since ``dvc repro`` is the slow part.
"""

from __future__ import annotations

import json
import os
import shlex
import shutil
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

TRAIN_PY = """\
import json, os
params = dict(line.split(": ") for line in open("params.yaml").read().splitlines())
rows = open("data/iris.csv").read().splitlines()
os.makedirs("models", exist_ok=True)
os.makedirs("data/features", exist_ok=True)
open("models/model.pkl", "w").write(f"model lr={params['lr']} rows={len(rows)}\\n")
open("data/features/x.txt", "w").write("x\\n" * len(rows))
open("data/features/y.txt", "w").write("y\\n")
json.dump({"accuracy": 0.95, "loss": {"train": 0.1}}, open("metrics.json", "w"))
"""

DVC_YAML = f"""\
stages:
  train:
    cmd: {json.dumps(shlex.quote(Path(sys.executable).as_posix()) + " src/train.py")}
    deps: [src/train.py, data/iris.csv]
    params: [lr]
    outs: [models/model.pkl, data/features]
    metrics:
      - metrics.json:
          cache: false
artifacts:
  clf:
    path: models/model.pkl
    type: model
  iris:
    path: data/iris.csv
    type: dataset
"""


def _isolate(mp: pytest.MonkeyPatch, home: Path) -> None:
    """No test reads the developer's HOME, git identity or DVC config, or sends analytics."""
    home.mkdir(parents=True, exist_ok=True)
    for name, value in {
        "HOME": str(home),
        "GIT_CONFIG_NOSYSTEM": "1",
        "GIT_CONFIG_GLOBAL": str(home / ".gitconfig"),
        "GIT_AUTHOR_NAME": "Test Author",
        "GIT_AUTHOR_EMAIL": "author@example.invalid",
        "GIT_COMMITTER_NAME": "Test Author",
        "GIT_COMMITTER_EMAIL": "author@example.invalid",
        "DVC_NO_ANALYTICS": "1",
        "DVC_GLOBAL_CONFIG_DIR": str(home / "dvc-global"),
        "DVC_SYSTEM_CONFIG_DIR": str(home / "dvc-system"),
        "DVC_SITE_CACHE_DIR": str(home / "dvc-site-cache"),
    }.items():
        mp.setenv(name, value)


def git(root: Path, *args: str) -> str:
    return subprocess.run(
        ["git", "-C", str(root), *args], check=True, capture_output=True, text=True
    ).stdout.strip()


@dataclass
class DvcRepo:
    """Handle on the fixture repository: paths plus the few actions tests need."""

    root: Path
    remote: Path

    def write(self, rel: str, text: str) -> None:
        path = self.root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)

    def git(self, *args: str) -> str:
        return git(self.root, *args)

    def commit(self, message: str = "change") -> str:
        self.git("add", "-A")
        self.git("commit", "-q", "-m", message)
        return self.git("rev-parse", "HEAD")

    def dvc(self, method: str, *args: Any, **kwargs: Any) -> Any:
        """Call a method of dvc.repo.Repo on this repository (reproduce, push, pull, ...).

        Run from the root, as ``dvc`` would be: DVC takes targets relative to the current
        directory. The previous directory is restored, so tests keep working from elsewhere.
        """
        from dvc.repo import Repo

        cwd = os.getcwd()
        os.chdir(self.root)
        try:
            with Repo(str(self.root)) as repo:
                return getattr(repo, method)(*args, **kwargs)
        finally:
            os.chdir(cwd)

    def lock(self) -> dict[str, Any]:
        return yaml.safe_load((self.root / "dvc.lock").read_text())  # type: ignore[no-any-return]

    def lock_out(self, path: str) -> dict[str, Any]:
        outs = self.lock()["stages"]["train"]["outs"]
        return next(o for o in outs if o["path"] == path)  # type: ignore[no-any-return]

    def cache_file(self, md5: str) -> Path:
        return self.root / ".dvc" / "cache" / "files" / "md5" / md5[:2] / md5[2:]


def _build(root: Path) -> None:
    from dvc.repo import Repo

    root.mkdir(parents=True)
    os.chdir(root)  # the caller's MonkeyPatch context restores the directory
    git(root, "init", "-q", "-b", "main")
    Repo.init(str(root)).close()
    repo = DvcRepo(root, root.parent / "remote")
    repo.write("data/iris.csv", "sepal,petal,label\n5.1,1.4,setosa\n6.2,4.5,versicolor\n")
    repo.write("params.yaml", "lr: 0.1\n")
    repo.write("src/train.py", TRAIN_PY)
    repo.write("dvc.yaml", DVC_YAML)
    repo.write(
        ".dvc/config", "[core]\n    remote = local\n['remote \"local\"']\n    url = ../../remote\n"
    )
    repo.dvc("add", "data/iris.csv")
    repo.dvc("reproduce")
    repo.commit("train the model")


@pytest.fixture(scope="session")
def _dvc_template(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    base = tmp_path_factory.mktemp("dvc-template")
    with pytest.MonkeyPatch.context() as mp:
        _isolate(mp, base / "home")
        # DVC resolves the targets of add and the stage paths from the current directory.
        mp.chdir(base)
        _build(base / "repo")
    yield base / "repo"


@pytest.fixture
def dvc_repo(_dvc_template: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> DvcRepo:
    """A fresh copy of the trained fixture repository, clean and committed on ``main``."""
    _isolate(monkeypatch, tmp_path / "home")
    root = tmp_path / "repo"
    shutil.copytree(_dvc_template, root, symlinks=True)
    (tmp_path / "remote").mkdir()
    # Work from elsewhere: relman must never depend on the current directory.
    monkeypatch.chdir(tmp_path)
    return DvcRepo(root, tmp_path / "remote")
