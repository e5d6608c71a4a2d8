"""`relman init` writes a valid relman.toml from what a repository holds."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from core.config.model import load_config
from core.errors import ConfigError, ProjectError
from core.scaffold.init import init_project

DVC_YAML = """\
stages:
  train:
    cmd: python train.py
    outs: [model.pkl]
artifacts:
  churn-model:
    path: model.pkl
    type: model
  churn-data:
    path: data/churn.csv
    type: dataset
"""


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    root = tmp_path / "Churn Service"
    root.mkdir()
    subprocess.run(["git", "init", "-q", str(root)], check=True)
    (root / "dvc.yaml").write_text(DVC_YAML)
    (root / "bentofile.yaml").write_text('service: "service:Churn"\ninclude: ["*.py"]\n')
    (root / "sample_request.json").write_text('{"rows": [[1, 2]]}')
    for suite in ("unit", "model"):
        (root / "tests" / suite).mkdir(parents=True)
        (root / "tests" / suite / "test_x.py").write_text("def test_x():\n    pass\n")
    (root / "tests" / "empty").mkdir()
    return root


def test_writes_config_from_repository(repo: Path) -> None:
    path = init_project(repo)
    config = load_config(path)
    assert config.project.name == "churn-service"
    service = config.services["churn-service"]
    assert service.bento == "service:Churn"
    assert service.model == ["churn-model"]
    assert service.data == ["churn-data"]
    assert service.sample_request == "sample_request.json"
    assert sorted(config.suites) == ["model", "unit"]
    assert config.suites["model"].kind == "model"
    assert config.environment_order == ["dev", "staging", "prod"]
    assert config.environments["prod"].approvals == 1
    ports = {env.port for env in config.environments.values()}
    assert len(ports) == 3


def test_refuses_to_overwrite(repo: Path) -> None:
    init_project(repo)
    with pytest.raises(ConfigError, match="already exists; edit it, or pass --force"):
        init_project(repo)
    init_project(repo, force=True)


def test_bento_from_pyproject(repo: Path) -> None:
    (repo / "bentofile.yaml").unlink()
    (repo / "pyproject.toml").write_text('[tool.bentoml.build]\nservice = "app:Svc"\n')
    config = load_config(init_project(repo))
    assert config.services["churn-service"].bento == "app:Svc"
    assert config.services["churn-service"].build == "pyproject.toml"


@pytest.mark.parametrize(
    ("breakage", "message"),
    [
        (lambda r: (r / "dvc.yaml").unlink(), "no dvc.yaml"),
        (lambda r: (r / "bentofile.yaml").unlink(), "no BentoML build config"),
        (
            lambda r: (r / "dvc.yaml").write_text("stages: {}\n"),
            "no artifact of 'type: model'",
        ),
        (lambda r: (r / "dvc.yaml").write_text("stages: [\n"), "not valid YAML"),
        (lambda r: subprocess.run(["rm", "-rf", str(r / ".git")], check=True), "not a git"),
    ],
)
def test_each_missing_piece_is_one_line(repo: Path, breakage, message: str) -> None:  # type: ignore[no-untyped-def]
    breakage(repo)
    with pytest.raises(ProjectError, match=message) as info:
        init_project(repo)
    assert "\n" not in str(info.value)
    assert not (repo / "relman.toml").exists()
