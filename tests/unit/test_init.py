"""`relman init` writes a valid relman.toml from what a repository holds."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from core.config.model import load_config
from core.errors import ConfigError, ProjectError, UsageError
from core.scaffold.init import init_project

DVC_YAML = """\
stages:
  train:
    cmd: python train.py
    deps: [data/churn.csv]
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
    subprocess.run([sys.executable, "-m", "dvc", "init", "-q"], cwd=root, check=True)
    (root / "dvc.yaml").write_text(DVC_YAML)
    (root / "bentofile.yaml").write_text('service: "service:Churn"\ninclude: ["*.py"]\n')
    (root / "sample_request.json").write_text('{"rows": [[1, 2]]}')
    for suite in ("unit", "model"):
        (root / "tests" / suite).mkdir(parents=True)
        (root / "tests" / suite / "test_x.py").write_text("def test_x():\n    pass\n")
    (root / "tests" / "empty").mkdir()
    return root


def test_writes_config_from_repository(repo: Path) -> None:
    written = init_project(repo)
    assert written.deployable and written.services == ["churn-service"]
    path = written.path
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
    config = load_config(init_project(repo).path)
    assert config.services["churn-service"].bento == "app:Svc"
    assert config.services["churn-service"].build == "pyproject.toml"


@pytest.mark.parametrize(
    ("breakage", "message"),
    [
        (lambda r: (r / "dvc.yaml").unlink(), "no dvc.yaml"),
        (lambda r: (r / "dvc.yaml").write_text("stages: {}\n"), "no model to release"),
        (lambda r: (r / "dvc.yaml").write_text("stages: [\n"), "dvc.yaml"),
        (lambda r: subprocess.run(["rm", "-rf", str(r / ".git")], check=True), "not a git"),
    ],
)
def test_each_missing_piece_is_one_line(repo: Path, breakage, message: str) -> None:  # type: ignore[no-untyped-def]
    breakage(repo)
    with pytest.raises(ProjectError, match=message) as info:
        init_project(repo)
    assert "\n" not in str(info.value)
    assert not (repo / "relman.toml").exists()


def test_without_a_bentoml_service_it_writes_a_lineage_only_config(repo: Path) -> None:
    """No build config: exit 0 all the same; the service tracks lineage, versions and stages,
    and the file says in a comment what to add to deploy it."""
    (repo / "bentofile.yaml").unlink()
    written = init_project(repo)
    assert not written.deployable
    assert "no BentoML service here yet" in written.next
    text = written.path.read_text()
    assert '# bento = "service:MyService"' in text
    config = load_config(written.path)
    assert config.services["churn-service"].bento is None
    assert config.services["churn-service"].model == ["churn-model"]
    with pytest.raises(UsageError, match=r"add bento = .*--scaffold-service"):
        config.require_service("churn-service")


TWO_MODELS = """\
stages:
  train:
    cmd: python train.py
    deps: [data/churn.csv]
    outs: [model.pkl, encoder.pkl]
artifacts:
  churn-model:
    path: model.pkl
    type: model
  encoder:
    path: encoder.pkl
    type: model
"""


def test_several_models_without_a_service_suggest_naming_one(repo: Path) -> None:
    """Several models: what init says to run next is a command that then works (--service
    names the one to scaffold); --scaffold-service alone says to name one."""
    (repo / "bentofile.yaml").unlink()
    (repo / "dvc.yaml").write_text(TWO_MODELS)
    written = init_project(repo)
    assert not written.deployable and written.serves is None
    assert (
        "run 'relman init --force --scaffold-service --service NAME' for one of "
        "churn-model, encoder" in written.next
    )
    text = written.path.read_text()
    assert "# (or run 'relman init --force --scaffold-service --service encoder'" in text
    config = load_config(written.path)
    assert config.scaffold_command("encoder") == (
        "relman init --force --scaffold-service --service encoder"
    )
    with pytest.raises(UsageError, match="--scaffold-service --service churn-model'"):
        config.require_service("churn-model")

    with pytest.raises(UsageError, match=r"has 2 \(churn-model, encoder\): name one with"):
        init_project(repo, force=True, scaffold=True)
    with pytest.raises(UsageError, match=r"--service nope: no such model .*churn-model, encoder"):
        init_project(repo, force=True, scaffold=True, service="nope")


def test_one_model_suggests_the_command_without_a_name(repo: Path) -> None:
    (repo / "bentofile.yaml").unlink()
    written = init_project(repo)
    assert "(or run 'relman init --force --scaffold-service')" in written.next
    config = load_config(written.path)
    assert config.scaffold_command("churn-service") == "relman init --force --scaffold-service"


def test_a_build_config_goes_to_the_model_service_names(repo: Path) -> None:
    """Several models and one bentofile: it serves none until --service names one."""
    (repo / "dvc.yaml").write_text(TWO_MODELS)
    written = init_project(repo)
    assert not written.deployable
    assert "bentofile.yaml builds service:Churn, but this repository has 2 models" in written.next
    assert load_config(written.path).services["encoder"].bento is None

    written = init_project(repo, force=True, service="encoder")
    assert written.deployable and written.serves == "encoder"
    config = load_config(written.path)
    assert config.services["encoder"].bento == "service:Churn"
    assert config.services["encoder"].sample_request == "sample_request.json"
    assert config.services["churn-model"].bento is None


def test_a_build_config_in_a_subfolder(repo: Path) -> None:
    """serving/bentofile.yaml (as `bentoml build serving` takes it) is found, and named as
    relman.toml's build; a pyproject.toml without a BentoML table is not one."""
    (repo / "bentofile.yaml").unlink()
    (repo / "pyproject.toml").write_text('[project]\nname = "churn"\n')
    (repo / "serving").mkdir()
    (repo / "serving" / "bentofile.yaml").write_text('service: "service:Churn"\n')
    config = load_config(init_project(repo).path)
    service = config.services["churn-service"]
    assert (service.bento, service.build) == ("service:Churn", "serving/bentofile.yaml")


def test_a_pyproject_build_table_in_a_subfolder_and_another_config_noted(repo: Path) -> None:
    (repo / "bentofile.yaml").unlink()
    (repo / "api").mkdir()
    (repo / "api" / "pyproject.toml").write_text(
        '[project]\nname = "churn-api"\n\n[tool.bentoml.build]\nservice = "app:Api"\n'
    )
    (repo / "z" / "old").mkdir(parents=True)
    (repo / "z" / "old" / "bentofile.yaml").write_text('service: "old:Svc"\n')
    written = init_project(repo)
    service = load_config(written.path).services["churn-service"]
    assert (service.bento, service.build) == ("app:Api", "api/pyproject.toml")
    assert any("also found z/old/bentofile.yaml (old:Svc)" in note for note in written.notes)


def test_a_build_config_git_ignores_is_not_one(repo: Path) -> None:
    (repo / "bentofile.yaml").unlink()
    (repo / ".gitignore").write_text("/build/\n")
    (repo / "build").mkdir()
    (repo / "build" / "bentofile.yaml").write_text('service: "service:Copy"\n')
    assert not init_project(repo).deployable


SERVICE = """\
import bentoml
from pydantic import BaseModel


class Customer(BaseModel):
    tenure: int
    monthly: float


@bentoml.service
class Churn:
    @bentoml.api(route="/v1/score")
    def score(self, customer: Customer) -> float:
        return customer.monthly
"""


def test_a_sample_request_for_the_api_of_the_service_found(repo: Path) -> None:
    """No sample_request.json: init writes one its service's API takes (a pydantic model
    filled from the training data), and names the API when it is not predict."""
    (repo / "sample_request.json").unlink()
    (repo / "service.py").write_text(SERVICE)
    (repo / "data").mkdir()
    (repo / "data" / "churn.csv").write_text("tenure,monthly,churned\n3,20.5,1\n")
    written = init_project(repo)
    assert written.scaffolded == ["sample_request.json"]
    assert json.loads((repo / "sample_request.json").read_text()) == {
        "customer": {"tenure": 3, "monthly": 20.5}
    }
    service = load_config(written.path).services["churn-service"]
    assert (service.sample_request, service.endpoint) == ("sample_request.json", "v1/score")


def test_a_service_that_does_not_import_gets_no_sample_and_a_note(repo: Path) -> None:
    (repo / "sample_request.json").unlink()
    written = init_project(repo)  # bentofile.yaml names service:Churn; there is no service.py
    assert written.deployable and written.scaffolded == []
    assert not (repo / "sample_request.json").exists()
    assert load_config(written.path).services["churn-service"].sample_request is None
    assert any(
        note.startswith("no sample request written: service:Churn") for note in written.notes
    )
