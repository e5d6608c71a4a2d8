"""`relman demo`: a real git + DVC + pytest + BentoML project, clean and ready to release."""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from core.config.model import load_config
from core.errors import InfraError, UsageError
from core.host.ports import free_ports
from core.scaffold.demo import DEMO_USER_EMAIL, DEMO_USER_NAME, create_demo
from tests.e2e.conftest import Demo, isolate_user

pytestmark = pytest.mark.e2e


def git(root: Path, *args: str) -> str:
    done = subprocess.run(["git", *args], cwd=root, capture_output=True, text=True, check=True)
    return done.stdout


@contextlib.contextmanager
def dvc_repo(root: Path) -> Iterator[Any]:
    from dvc.repo import Repo

    # DVC's API resolves paths from the cwd, as its CLI does.
    with contextlib.chdir(root):
        repo = Repo(str(root))
        try:
            yield repo
        finally:
            repo.close()


def md5(path: Path) -> str:
    return hashlib.md5(path.read_bytes()).hexdigest()


def test_creation_reports_progress(demo: Demo) -> None:
    joined = "\n".join(demo.messages)
    for step in ("git init", "dvc init", "dvc repro", "dvc push", "git commit"):
        assert step in joined
    assert all("\n" not in message for message in demo.messages)


def test_everything_is_committed_and_dvc_is_clean(demo: Demo) -> None:
    assert git(demo.root, "status", "--porcelain") == ""
    assert len(git(demo.root, "log", "--oneline").splitlines()) == 1
    tracked = set(git(demo.root, "ls-files").splitlines())
    assert {"dvc.yaml", "dvc.lock", "data/iris.csv.dvc", "metrics.json", "relman.toml"} <= tracked
    # The data and the model are DVC's to track, not git's.
    assert "data/iris.csv" not in tracked and "models/model.pkl" not in tracked
    with dvc_repo(demo.root) as repo:
        assert repo.status() == {}


def test_git_identity_was_set_in_the_repository_only(demo: Demo) -> None:
    assert git(demo.root, "config", "--local", "user.name").strip() == DEMO_USER_NAME
    assert git(demo.root, "config", "--local", "user.email").strip() == DEMO_USER_EMAIL
    assert git(demo.root, "log", "-1", "--format=%ae").strip() == DEMO_USER_EMAIL
    home = Path(os.environ["HOME"])
    assert not (home / ".gitconfig").exists()


def test_dvc_config_disables_analytics_and_autostage(demo: Demo) -> None:
    with dvc_repo(demo.root) as repo:
        core = repo.config["core"]
        assert core["analytics"] is False
        assert core["autostage"] is False
        url = repo.config["remote"][core["remote"]]["url"]
    assert Path(url) == demo.root.parent / "iris-demo-dvc-remote"


def test_dataset_is_iris_with_the_documented_header(demo: Demo) -> None:
    lines = (demo.root / "data" / "iris.csv").read_text().splitlines()
    assert lines[0] == "sepal_length,sepal_width,petal_length,petal_width,species"
    assert lines[1] == "5.1,3.5,1.4,0.2,setosa"
    assert len(lines) == 151


def test_pipeline_and_artifacts_are_declared(demo: Demo) -> None:
    dvc_yaml = yaml.safe_load((demo.root / "dvc.yaml").read_text())
    assert list(dvc_yaml["stages"]) == ["prepare", "train", "evaluate"]
    assert dvc_yaml["artifacts"]["iris-data"] == {
        "path": "data/iris.csv",
        "type": "dataset",
        "desc": dvc_yaml["artifacts"]["iris-data"]["desc"],
    }
    assert dvc_yaml["artifacts"]["iris-model"]["path"] == "models/model.pkl"
    assert dvc_yaml["artifacts"]["iris-model"]["type"] == "model"
    metrics = json.loads((demo.root / "metrics.json").read_text())
    assert set(metrics) == {"accuracy", "f1_macro", "n_test"}
    assert metrics["accuracy"] >= 0.9
    assert metrics["n_test"] == 45


def test_repro_changes_nothing(demo: Demo) -> None:
    lock = (demo.root / "dvc.lock").read_bytes()
    with dvc_repo(demo.root) as repo:
        assert repo.reproduce() == []
    assert (demo.root / "dvc.lock").read_bytes() == lock
    assert git(demo.root, "status", "--porcelain") == ""


def test_the_demos_own_suites_pass(demo: Demo) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider"],
        cwd=demo.root,
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    summary = done.stdout.strip().splitlines()[-1]
    assert "passed" in summary and "failed" not in summary and "error" not in summary
    assert int(summary.split()[0]) >= 15
    # Running the suites leaves nothing for git to see (.pytest_cache, __pycache__).
    assert git(demo.root, "status", "--porcelain") == ""


def test_relman_toml_loads_and_names_what_exists(demo: Demo) -> None:
    config = load_config(demo.root / "relman.toml")
    assert config.project.name == "iris-demo"
    assert list(config.environments) == ["dev", "staging", "prod"]
    ports = [env.port for env in config.environments.values()]
    assert len(set(ports)) == 3 and min(ports) >= 3100
    assert config.environments["prod"].approvals == 1
    service = config.services["iris"]
    assert service.bento == "service:IrisClassifier"
    assert service.model == ["iris-model"] and service.data == ["iris-data"]
    assert (demo.root / service.build).is_file()
    assert service.sample_request is not None
    body = json.loads((demo.root / service.sample_request).read_text())
    assert body["features"] and all(len(row) == 4 for row in body["features"])
    for suite in config.suites.values():
        assert all((demo.root / path).is_dir() for path in suite.paths)
    assert config.gates["accuracy-floor"].min == pytest.approx(0.90)


def test_service_declares_a_bentoml_api(demo: Demo) -> None:
    service = (demo.root / "service.py").read_text()
    assert "@bentoml.service" in service and "class IrisClassifier" in service
    assert "def predict(self, features: list[list[float]]) -> list[str]:" in service
    assert 'bentoml.monitor("iris")' in service
    bentofile = yaml.safe_load((demo.root / "bentofile.yaml").read_text())
    assert bentofile["service"] == "service:IrisClassifier"
    assert "models/model.pkl" in bentofile["include"]


def test_dvc_pull_restores_data_and_model_from_the_remote(demo: Demo) -> None:
    paths = [demo.root / "data" / "iris.csv", demo.root / "models" / "model.pkl"]
    before = [md5(path) for path in paths]
    with dvc_repo(demo.root) as repo:
        # Empty the cache too, so the files can only come back from the remote.
        repo.cache.local.fs.rm(repo.cache.local.path, recursive=True)
        for path in paths:
            path.unlink()
        repo.pull()
    assert [md5(path) for path in paths] == before


def test_refuses_a_non_empty_folder(tmp_path: Path) -> None:
    target = tmp_path / "work"
    target.mkdir()
    (target / "notes.txt").write_text("mine")
    with pytest.raises(UsageError, match=r"folder exists and is not empty.*--force"):
        create_demo(target)
    # --force replaces only an earlier demo, never somebody's work.
    with pytest.raises(UsageError, match="holds no earlier relman demo"):
        create_demo(target, force=True)
    assert (target / "notes.txt").read_text() == "mine"
    assert not (tmp_path / "work-dvc-remote").exists()


def test_force_replaces_an_earlier_demo(tmp_path: Path) -> None:
    target = tmp_path / "again"
    target.mkdir()
    (target / "relman.toml").write_text('[project]\nname = "iris-demo"\n')
    (target / "leftover.txt").write_text("from the last demo")
    with pytest.MonkeyPatch.context() as mp:
        isolate_user(mp, tmp_path)
        root = create_demo(target, force=True)
    assert root == target.resolve()
    assert not (target / "leftover.txt").exists()
    assert (target / "dvc.lock").is_file()
    assert git(root, "status", "--porcelain") == ""


def test_free_ports_skips_a_taken_port() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        port = taken.getsockname()[1]
        chosen = free_ports(3, start=port)
    assert port not in chosen
    assert len(set(chosen)) == 3 and min(chosen) > port


def test_a_failing_step_removes_the_half_made_demo(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A `python` on PATH that fails, standing in for an interpreter without scikit-learn.
    broken = tmp_path / "broken-bin"
    broken.mkdir()
    (broken / "python").write_text("#!/bin/sh\nexit 7\n")
    (broken / "python").chmod(0o755)

    @contextlib.contextmanager
    def broken_python() -> Iterator[None]:
        with pytest.MonkeyPatch.context() as mp:
            mp.setenv("PATH", f"{broken}{os.pathsep}{os.environ['PATH']}")
            yield

    isolate_user(monkeypatch, tmp_path)
    monkeypatch.setattr("core.scaffold.demo._python_on_path", broken_python)
    target = tmp_path / "doomed"
    with pytest.raises(InfraError) as raised:
        create_demo(target)
    message = str(raised.value)
    assert "\n" not in message
    assert "dvc repro failed" in message and "exited with 7" in message
    assert not target.exists()
    assert not (tmp_path / "doomed-dvc-remote").exists()
