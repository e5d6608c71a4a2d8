"""`relman init --scaffold-service` in a repository nobody configured, whose DVC stage trains
a real scikit-learn model on a CSV: the service, sample request and tests it writes are
released to dev with a real `bentoml build` and `bentoml serve`, and answer the sample."""

from __future__ import annotations

import json
import re
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.e2e.adopted import trained_repository
from tests.e2e.conftest import isolate_user
from tests.e2e.served import (
    down_and_check,
    git,
    ports_of,
    relman,
    relman_json,
    use_worker_ports,
)

pytestmark = pytest.mark.e2e

DVC_YAML = """\
stages:
  train:
    cmd: python src/train.py
    deps: [data/customers.csv, src/train.py]
    outs: [models/model.pkl]
"""

# The project's own training code: the CSV read with the standard library, the id and the
# label left out, a logistic regression pickled.
TRAIN = """\
import csv
import pickle

from sklearn.linear_model import LogisticRegression

with open("data/customers.csv", newline="") as handle:
    rows = list(csv.DictReader(handle))
features = [[float(row[name]) for name in ("tenure", "monthly", "support_calls")] for row in rows]
labels = [int(row["churned"]) for row in rows]
model = LogisticRegression(max_iter=500).fit(features, labels)
with open("models/model.pkl", "wb") as handle:
    pickle.dump(model, handle)
"""


def _customers() -> str:
    lines = ["customer_id,tenure,monthly,support_calls,churned"]
    for i in range(1, 61):
        tenure, monthly, calls = i % 48 + 1, 20 + (i * 7) % 80, i % 6
        churned = int(calls > 3 or tenure < 6)
        lines.append(f"{1000 + i},{tenure},{monthly}.5,{calls},{churned}")
    return "\n".join(lines) + "\n"


@pytest.fixture
def churn(tmp_path: Path) -> Iterator[Path]:
    """A git + DVC repository with a trained model and no relman.toml nor BentoML service;
    afterwards `relman down`, and nothing it started may still run."""
    with pytest.MonkeyPatch.context() as mp:
        isolate_user(mp, tmp_path)
        (tmp_path / "churn" / "models").mkdir(parents=True)
        files = {"src/train.py": TRAIN, "data/customers.csv": _customers(), "dvc.yaml": DVC_YAML}
        root = trained_repository(tmp_path / "churn", files, "data/customers.csv")
        try:
            yield root
        finally:
            down_and_check(root)


def test_scaffolded_service_is_released_to_dev_and_answers_its_sample(churn: Path) -> None:
    root = churn
    done = relman(root, "init", "--scaffold-service")
    assert done.returncode == 0, done.stderr
    for written in ("service.py", "bentofile.yaml", "sample_request.json"):
        assert (root / written).is_file(), written
    assert (root / "tests" / "service" / "test_service.py").is_file()
    config = (root / "relman.toml").read_text()
    assert 'bento = "service:ChurnModel"' in config
    assert 'sample_request = "sample_request.json"' in config
    sample = json.loads((root / "sample_request.json").read_text())
    # The CSV's first two rows, without its id (the model takes three columns) and label.
    assert sample == {
        "rows": [
            {"tenure": 2, "monthly": 27.5, "support_calls": 1},
            {"tenure": 3, "monthly": 34.5, "support_calls": 2},
        ]
    }

    # Free ports of this test worker's own band, then everything committed: a clean release.
    use_worker_ports(root)
    git(root, "add", "-A")
    git(root, "commit", "-qm", "relman init --scaffold-service")

    released = relman_json(root, "release", "--to", "dev")
    assert released["_exit"] == 0, released["_stderr"] or released.get("error")
    names = [step["name"] for step in released["steps"]]
    assert "test service" in names and "build" in names and "dev: switch" in names

    port = ports_of(root)["dev"]
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}/predict",
        data=(root / "sample_request.json").read_bytes(),
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=30) as answer:
        assert answer.status == 200
        predictions = json.loads(answer.read())
    assert len(predictions) == 2 and set(predictions) <= {0, 1}

    # A row missing a column is the caller's mistake: a 400 that names it.
    bad = urllib.request.Request(
        f"http://127.0.0.1:{port}/predict",
        data=json.dumps({"rows": [{"tenure": 2}]}).encode(),
        headers={"Content-Type": "application/json"},
    )
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(bad, timeout=30)
    assert refused.value.code == 400
    assert re.search(r"no value for monthly, support_calls", refused.value.read().decode())

    # relman traffic sends rows of the training data in the sample's {"rows": [{...}]} shape.
    load = ["traffic", "churn", "--env", "dev", "--rate", "4", "--duration", "2", "--inject"]
    report = relman_json(root, *load, "drift")
    assert report["_exit"] == 0, report["_stderr"]
    assert report["rows_from"] == "data/customers.csv (60 rows)"
    assert report["sent"] >= 1 and report["succeeded"] == report["sent"], report
    assert set(report["predictions"]) <= {"0", "1"}
