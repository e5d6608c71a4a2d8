"""Repositories whose BentoML service someone else wrote, in the shapes issue 15 lists: the
build config in a subfolder (``serving/bentofile.yaml``, `bentoml build serving`) or in a
subfolder's pyproject.toml, an API taking a pydantic model or a pandas DataFrame. `relman
init` finds the config and writes a sample request the API takes; `relman release --to dev`
builds the Bento with the real `bentoml build` from that folder and serves it with `bentoml
serve`, whose smoke request is the sample; `relman traffic` sends rows of the training data
in the sample's shape, and every one is answered."""

from __future__ import annotations

import json
import os
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.e2e import served
from tests.e2e.adopted import trained_repository
from tests.e2e.conftest import isolate_user

pytestmark = pytest.mark.e2e

# The project's own training step: the mean monthly charge, pickled where the service is.
TRAIN = """\
import csv
import pickle
import sys

with open("data/customers.csv", newline="") as handle:
    rows = list(csv.DictReader(handle))
weight = 1 / (sum(float(row["monthly"]) for row in rows) / len(rows))
with open(sys.argv[1], "wb") as handle:
    pickle.dump({"weight": weight}, handle)
"""

DVC_YAML = """\
stages:
  train:
    cmd: python src/train.py {folder}/model.pkl
    deps: [data/customers.csv, src/train.py]
    outs: [{folder}/model.pkl]
artifacts:
  churn:
    path: {folder}/model.pkl
    type: model
"""

CUSTOMERS = """\
customer_id,tenure,monthly,plan,churned
1,,20.5,basic,0
2,12,70.25,pro,1
3,30,99.0,basic,0
4,5,45.5,pro,1
5,40,30.0,basic,0
"""

# Both services load the pickle next to them.
LOAD_MODEL = """\
    def __init__(self) -> None:
        with open(Path(__file__).parent / "model.pkl", "rb") as handle:
            self.model = pickle.load(handle)
"""

PYDANTIC_SERVICE = """\
import pickle
from pathlib import Path

import bentoml
from pydantic import BaseModel


class Customer(BaseModel):
    tenure: int
    monthly: float
    plan: str


@bentoml.service
class Churn:
{LOAD_MODEL}
    @bentoml.api
    def predict(self, customer: Customer) -> float:
        return round(customer.monthly * self.model["weight"], 4)
""".replace("{LOAD_MODEL}", LOAD_MODEL)

SERVING_BENTOFILE = """\
service: "service:Churn"
include: ["service.py", "model.pkl"]
python:
  packages: [pydantic]
  lock_packages: false
"""

FRAME_SERVICE = """\
import pickle
from pathlib import Path
from typing import List

import bentoml
import pandas as pd


@bentoml.service
class Churn:
{LOAD_MODEL}
    @bentoml.api
    def predict(self, df: pd.DataFrame) -> List[float]:
        scores = df["monthly"].astype(float) * self.model["weight"]
        return [round(float(score), 4) for score in scores]
""".replace("{LOAD_MODEL}", LOAD_MODEL)

API_PYPROJECT = """\
[project]
name = "churn-api"
version = "0.1.0"
dependencies = ["pandas"]

[tool.bentoml.build]
service = "service:Churn"
include = ["service.py", "model.pkl"]

[tool.bentoml.build.python]
lock_packages = false
"""


# The project's own tests (relman releases nothing without a suite).
UNIT_TEST = """\
import csv


def test_every_customer_has_a_label():
    with open("data/customers.csv", newline="") as handle:
        assert all(row["churned"] in ("0", "1") for row in csv.DictReader(handle))
"""


@pytest.fixture
def base(tmp_path: Path) -> Iterator[Path]:
    with pytest.MonkeyPatch.context() as mp:
        isolate_user(mp, tmp_path)
        yield tmp_path


def _repository(base: Path, folder: str, files: dict[str, str]) -> Iterator[Path]:
    """A git + DVC repository whose stage trains the model into ``folder``, where the
    service someone wrote lives (``files``); afterwards `relman down`, nothing left running."""
    texts = {
        "src/train.py": TRAIN,
        "tests/unit/test_data.py": UNIT_TEST,
        "data/customers.csv": CUSTOMERS,
        "dvc.yaml": DVC_YAML.format(folder=folder),
        **files,
    }
    root = trained_repository(base / "churn", texts, "data/customers.csv")
    try:
        yield root
    finally:
        served.down_and_check(root)


@pytest.fixture
def serving(base: Path) -> Iterator[Path]:
    """serving/bentofile.yaml and serving/service.py: a pydantic model in, a score out."""
    files = {"serving/service.py": PYDANTIC_SERVICE, "serving/bentofile.yaml": SERVING_BENTOFILE}
    yield from _repository(base, "serving", files)


@pytest.fixture
def api(base: Path) -> Iterator[Path]:
    """api/pyproject.toml with [tool.bentoml.build] and api/service.py: a DataFrame in."""
    yield from _repository(
        base, "api", {"api/service.py": FRAME_SERVICE, "api/pyproject.toml": API_PYPROJECT}
    )


def _init_and_commit(root: Path) -> str:
    """`relman init`, its environments on this worker's ports, everything committed; the
    relman.toml written."""
    done = served.relman(root, "init")
    assert done.returncode == 0, done.stderr
    assert "wrote sample_request.json" in done.stdout
    text = served.use_worker_ports(root)
    served.git(root, "add", "-A")
    served.git(root, "commit", "-qm", "relman init")
    return text


def _release_to_dev(root: Path) -> dict[str, Any]:
    released = served.relman_json(root, "release", "--to", "dev")
    assert released["_exit"] == 0, released["_stderr"] or released.get("error")
    return released


def _post(port: int, body: bytes) -> Any:
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}/predict", data=body, headers={"Content-Type": "application/json"}
    )
    with urllib.request.urlopen(request, timeout=30) as answer:
        assert answer.status == 200
        return json.loads(answer.read())


def _bento_files(released: dict[str, Any]) -> set[str]:
    """The files of the release's Bento that came from the project (BentoML adds its build
    config, bentofile.yaml, itself)."""
    [built] = [step for step in released["steps"] if step["name"] == "build"]
    store = Path(os.environ["BENTOML_HOME"]) / "bentos"
    [bento] = [path for path in store.glob(f"*/{built['release']}") if path.is_dir()]
    files = {p.relative_to(bento / "src").as_posix() for p in (bento / "src").rglob("*.*")}
    return files - {"bentofile.yaml"}


def test_a_bentofile_in_a_subfolder_and_a_pydantic_input(serving: Path) -> None:
    root = serving
    config = _init_and_commit(root)
    assert 'bento = "service:Churn"\nbuild = "serving/bentofile.yaml"' in config
    assert 'sample_request = "sample_request.json"' in config
    # The first complete row of the training data, as the fields of Customer.
    sample = json.loads((root / "sample_request.json").read_text())
    assert sample == {"customer": {"tenure": 12, "monthly": 70.25, "plan": "pro"}}

    released = _release_to_dev(root)
    [validate] = [step for step in released["steps"] if step["name"] == "dev: validate"]
    assert "/predict answered 200" in validate["detail"]
    # Built from serving/, as `bentoml build serving` builds it.
    assert _bento_files(released) == {"service.py", "model.pkl"}
    weight = 1 / (sum((20.5, 70.25, 99.0, 45.5, 30.0)) / 5)
    assert _post(served.ports_of(root)["dev"], json.dumps(sample).encode()) == round(
        70.25 * weight, 4
    )


def test_a_pyproject_build_table_a_dataframe_input_and_traffic_in_its_shape(api: Path) -> None:
    root = api
    config = _init_and_commit(root)
    assert 'bento = "service:Churn"\nbuild = "api/pyproject.toml"' in config
    sample = json.loads((root / "sample_request.json").read_text())
    # BentoML's DataFrame in its default orient: records of the data's columns, no label.
    assert sample == {
        "df": [
            {"customer_id": 2, "tenure": 12, "monthly": 70.25, "plan": "pro"},
            {"customer_id": 3, "tenure": 30, "monthly": 99.0, "plan": "basic"},
        ]
    }

    released = _release_to_dev(root)
    assert _bento_files(released) == {"service.py", "model.pkl"}
    assert len(_post(served.ports_of(root)["dev"], json.dumps(sample).encode())) == 2

    # relman traffic: one row of data/customers.csv per request, in the sample's shape.
    load = ["traffic", "churn", "--env", "dev", "--rate", "4", "--duration", "3"]
    done = served.relman(root, "--batch", "--json", *load)
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert report["rows_from"] == "data/customers.csv (4 rows)"  # row 1 has no tenure
    assert report["sent"] >= 1 and report["succeeded"] == report["sent"], report
