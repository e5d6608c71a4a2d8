"""`relman init --scaffold-service` (core/scaffold/service.py): a BentoML service, a sample
request and its tests for a repository's scikit-learn model, or one line saying why not."""

from __future__ import annotations

import json
import os
import pickle
import subprocess
import sys
import zipfile
from pathlib import Path
from typing import Any

import joblib
import pytest
import yaml
from sklearn.linear_model import LinearRegression, LogisticRegression

from core.config.model import load_config
from core.errors import UsageError
from core.scaffold.init import init_project
from core.scaffold.service import class_name, file_kind, write_service
from core.scaffold.service_sample import build_sample, first_csv, label_column
from core.scaffold.service_text import ServiceText, bentofile_text, service_text

CSV = """\
customer_id,tenure,monthly,support_calls,churned
1,12,70.5,3,1
2,,30.0,0,0
3,40,99.9,1,0
4,2,20.0,5,1
5,30,45.0,2,0
"""
FEATURES = ["tenure", "monthly", "support_calls"]
TRAIN = "import pickle\nfrom sklearn.linear_model import LogisticRegression\n"


def _matrix() -> tuple[list[list[float]], list[int]]:
    rows = [line.split(",") for line in CSV.splitlines()[1:]]
    rows = [row for row in rows if all(row)]
    return [[float(v) for v in row[1:4]] for row in rows], [int(row[4]) for row in rows]


def _project(root: Path, model: Any = None, *, name: str = "models/model.pkl") -> Path:
    """A project whose src/train.py imports scikit-learn, its data in data/customers.csv and,
    unless ``model`` is None, the model pickled at ``name``."""
    (root / "src").mkdir(parents=True)
    (root / "src" / "train.py").write_text(TRAIN)
    (root / "data").mkdir()
    (root / "data" / "customers.csv").write_text(CSV)
    if model is not None:
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        if path.suffix == ".joblib":
            joblib.dump(model, path, compress=3)
        else:
            path.write_bytes(pickle.dumps(model))
    return root


def _fitted() -> LogisticRegression:
    matrix, labels = _matrix()
    return LogisticRegression().fit(matrix, labels)


def _run_generated_tests(root: Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTEST_ADDOPTS", "PYTHONPATH")}
    return subprocess.run(
        [sys.executable, "-m", "pytest", "tests/service", "-q", "-p", "no:cacheprovider"],
        cwd=root,
        env=env,
        capture_output=True,
        text=True,
        check=False,
        timeout=300,
    )


def test_writes_a_service_its_sample_and_tests_that_pass(tmp_path: Path) -> None:
    root = _project(tmp_path / "repo", _fitted())
    written = write_service(root, "churn", "models/model.pkl", ["data/customers.csv"])

    assert written.bento == "service:ChurnModel"
    assert (written.build, written.sample_request) == ("bentofile.yaml", "sample_request.json")
    assert (written.suite, written.suite_path) == ("service", "tests/service")
    assert written.notes == []
    # Two real rows of the CSV: its id and label left out, the row with an empty cell skipped.
    sample = json.loads((root / "sample_request.json").read_text())
    assert sample == {
        "rows": [
            {"tenure": 12, "monthly": 70.5, "support_calls": 3},
            {"tenure": 40, "monthly": 99.9, "support_calls": 1},
        ]
    }
    bentofile = yaml.safe_load((root / "bentofile.yaml").read_text())
    assert bentofile["service"] == "service:ChurnModel"
    assert bentofile["include"] == ["service.py", "models/model.pkl"]
    assert bentofile["python"]["packages"] == ["scikit-learn", "numpy"]
    assert bentofile["python"]["lock_packages"] is False
    service = (root / "service.py").read_text()
    assert "class ChurnModel:" in service and "pickle.load(handle)" in service
    assert f"FEATURES = {json.dumps(FEATURES)}" in service

    done = _run_generated_tests(root)
    assert done.returncode == 0, done.stdout[-2000:]
    assert "3 passed" in done.stdout
    assert not (root / "monitoring").exists()  # the tests keep the monitor's logs aside


def test_the_generated_tests_fail_when_the_service_does_not_fit_the_model(
    tmp_path: Path,
) -> None:
    root = _project(tmp_path / "repo", _fitted())
    write_service(root, "churn", "models/model.pkl", ["data/customers.csv"])
    # A model retrained on two of the columns: the service's three no longer fit it.
    matrix, labels = _matrix()
    model = LogisticRegression().fit([row[:2] for row in matrix], labels)
    (root / "models" / "model.pkl").write_bytes(pickle.dumps(model))
    done = _run_generated_tests(root)
    assert done.returncode == 1
    assert "FAILED tests/service/test_service.py::test_the_sample_request_gets_one" in done.stdout


def test_the_generated_service_predicts_and_refuses_a_row_missing_a_column(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from bentoml.exceptions import InvalidArgument

    root = _project(tmp_path / "repo", LinearRegression().fit(*_matrix()), name="m.joblib")
    write_service(root, "sub-encoder", "m.joblib", ["data"])
    text = (root / "service.py").read_text()
    assert "joblib.load(path)" in text and "class SubEncoderModel:" in text
    assert "joblib" in yaml.safe_load((root / "bentofile.yaml").read_text())["python"]["packages"]

    monkeypatch.chdir(tmp_path)  # the monitor's logs go to the working directory
    monkeypatch.syspath_prepend(str(root))
    monkeypatch.delitem(sys.modules, "service", raising=False)
    import service as generated  # type: ignore[import-not-found]

    try:
        instance = generated.SubEncoderModel()
        sample = json.loads((root / "sample_request.json").read_text())["rows"]
        answer = instance.predict(rows=sample)
        assert len(answer) == 2 and all(isinstance(value, float) for value in answer)
        assert instance.predict(rows=[[row[f] for f in FEATURES] for row in sample]) == answer
        with pytest.raises(InvalidArgument, match="row 0: no value for monthly"):
            instance.predict(rows=[{"tenure": 1, "support_calls": 2}])
        with pytest.raises(InvalidArgument, match="row 1: 2 values; the model takes 3"):
            instance.predict(rows=[[1, 2, 3], [1, 2]])
    finally:
        sys.modules.pop("service", None)


def test_the_project_code_a_pickle_needs_goes_into_the_bento(tmp_path: Path) -> None:
    root = _project(tmp_path / "repo")
    (root / "src" / "__init__.py").write_text("")
    (root / "src" / "wrapped.py").write_text(
        "from sklearn.linear_model import LogisticRegression\n\n\n"
        "class Churn(LogisticRegression):\n    pass\n"
    )
    # The model is pickled by the project's own code, as its pipeline does.
    train = (
        "import pickle, sys\nsys.path.insert(0, '.')\nfrom src.wrapped import Churn\n"
        f"model = Churn().fit({_matrix()[0]!r}, {_matrix()[1]!r})\n"
        "pickle.dump(model, open('model.pkl', 'wb'))\n"
    )
    subprocess.run([sys.executable, "-c", train], cwd=root, check=True)
    written = write_service(root, "churn", "model.pkl", ["data/customers.csv"])
    include = yaml.safe_load((root / "bentofile.yaml").read_text())["include"]
    assert include == ["service.py", "model.pkl", "src/__init__.py", "src/wrapped.py"]
    assert written.notes == []


def test_never_overwrites_a_file(tmp_path: Path) -> None:
    for existing in ("service.py", "bentofile.yaml", "sample_request.json", "tests/service"):
        root = _project(tmp_path / existing.replace("/", "-"), _fitted())
        path = root / existing
        path.parent.mkdir(parents=True, exist_ok=True)
        if existing == "tests/service":
            path.mkdir()
        else:
            path.write_text("mine\n")
        with pytest.raises(UsageError, match=f"^{existing}: already exists") as caught:
            write_service(root, "churn", "models/model.pkl", ["data/customers.csv"])
        assert len(str(caught.value).splitlines()) == 1
        written = [
            p for p in ("service.py", "bentofile.yaml", "sample_request.json") if p != existing
        ]
        assert not any((root / p).exists() for p in written)
        if existing != "tests/service":
            assert path.read_text() == "mine\n"


@pytest.mark.parametrize(
    ("name", "content", "imports", "expected"),
    [
        ("model.pt", b"PK\x03\x04", "import torch\n", r"a \.pt model \(torch imported by src/"),
        ("model.pkl", b"PK\x03\x04rest", "import torch\n", r"a ZIP file \(as torch.save"),
        ("model.h5", b"\x89HDF\r\n\x1a\n", "import keras\n", r"a \.h5 model \(keras imported"),
        ("model", b"\x80\x04", "", "a model file without an extension"),
    ],
)
def test_another_framework_is_refused_in_one_line(
    tmp_path: Path, name: str, content: bytes, imports: str, expected: str
) -> None:
    root = _project(tmp_path / "repo")
    (root / "src" / "train.py").write_text(imports)
    (root / name).write_bytes(content)
    with pytest.raises(UsageError, match=expected) as caught:
        write_service(root, "churn", name, ["data/customers.csv"])
    message = str(caught.value)
    assert "scikit-learn pickle/joblib models only for now" in message
    assert len(message.splitlines()) == 1
    assert not (root / "service.py").exists()


def test_a_pickle_without_scikit_learn_or_predict_is_refused(tmp_path: Path) -> None:
    root = _project(tmp_path / "repo", {"seed": 3}, name="model.pkl")
    with pytest.raises(UsageError, match=r"model\.pkl: a pickled builtins\.dict with no predict"):
        write_service(root, "churn", "model.pkl", [])

    # A model of the project's own class, with a predict(), and no scikit-learn anywhere.
    root = _project(tmp_path / "other")
    (root / "src" / "train.py").write_text("import xgboost\n")
    (root / "src" / "own.py").write_text(
        "class Own:\n    def predict(self, rows):\n        return rows\n"
    )
    subprocess.run(
        [
            sys.executable,
            "-c",
            "import pickle, src.own; pickle.dump(src.own.Own(), open('model.pkl', 'wb'))",
        ],
        cwd=root,
        check=True,
    )
    with pytest.raises(
        UsageError,
        match=r"a pickle file, but scikit-learn is neither imported by the project's Python "
        r"files nor in its requirements \(xgboost imported by src/train.py\)",
    ):
        write_service(root, "churn", "model.pkl", [])


def test_scikit_learn_in_the_requirements_and_no_model_file_here(tmp_path: Path) -> None:
    root = _project(tmp_path / "repo")
    (root / "src" / "train.py").write_text("print('trains')\n")
    (root / "requirements.txt").write_text("scikit-learn==1.5\n")
    written = write_service(root, "churn", "models/model.joblib", ["data"])
    assert "models/model.joblib is not in the working tree" in written.notes[0]
    assert "joblib.load(path)" in (root / "service.py").read_text()
    rows = json.loads((root / "sample_request.json").read_text())["rows"]
    # Without the model to say otherwise, every column but the label.
    assert [list(row) for row in rows] == [["customer_id", *FEATURES]] * 2


def test_file_kind_reads_the_first_bytes(tmp_path: Path) -> None:
    plain, compressed, archive = tmp_path / "a.pkl", tmp_path / "b.joblib", tmp_path / "c.pt"
    plain.write_bytes(pickle.dumps([1, 2]))
    joblib.dump([1, 2], compressed, compress=3)
    with zipfile.ZipFile(archive, "w") as handle:
        handle.writestr("data.pkl", b"")
    (tmp_path / "d").write_bytes(b"hello")
    assert [file_kind(p) for p in (plain, compressed, archive, tmp_path / "d")] == [
        "pickle",
        "compressed",
        "zip",
        "unknown",
    ]


def test_a_compressed_pkl_is_loaded_with_joblib(tmp_path: Path) -> None:
    root = _project(tmp_path / "repo")
    joblib.dump(_fitted(), root / "model.pkl", compress=3)
    written = write_service(root, "churn", "model.pkl", ["data/customers.csv"])
    assert written.notes == []
    assert "joblib.load(path)" in (root / "service.py").read_text()


def test_the_label_is_named_like_one_or_the_last_column() -> None:
    assert label_column(["a", "Target", "b"]) == 1
    assert label_column(["churned", "a"]) == 0
    assert label_column(["a", "is_fraud_label", "b"]) == 1
    assert label_column(["a", "b", "price"]) == 2


def test_sample_columns_from_what_the_model_says(tmp_path: Path) -> None:
    root = _project(tmp_path / "repo")
    # Fitted on a DataFrame: its columns, in its order; a column the CSV lacks is 0, noted.
    model = {"feature_names": ["monthly", "tenure", "plan"], "n_features": 3}
    sample = build_sample(root, "m.pkl", ["data/customers.csv"], model)
    assert sample.features == ["monthly", "tenure", "plan"]
    assert sample.rows[0] == {"monthly": 70.5, "tenure": 12, "plan": 0}
    assert "plan are 0" in sample.notes[0]

    # Fitted on arrays of another width than the data's: x0.. with zeros, noted.
    sample = build_sample(root, "m.pkl", ["data/customers.csv"], {"n_features": 2})
    assert sample.rows == [{"x0": 0, "x1": 0}] * 2
    assert "has 4 columns besides its label 'churned', the model takes 2" in sample.notes[0]

    # No CSV: what the model says, or one line saying nothing does.
    assert build_sample(root, "m.pkl", [], {"n_features": 1}).features == ["x0"]
    with pytest.raises(UsageError, match=r"m\.pkl: cannot tell the columns it takes"):
        build_sample(root, "m.pkl", ["data/none.csv"], None)


def test_first_csv_of_a_folder_by_path(tmp_path: Path) -> None:
    (tmp_path / "d" / "b").mkdir(parents=True)
    (tmp_path / "d" / "b" / "x.csv").write_text("a\n")
    (tmp_path / "d" / "c.csv").write_text("a\n")
    (tmp_path / "d" / "a.txt").write_text("a\n")
    assert first_csv(tmp_path, ["missing.csv", "d"]) == tmp_path / "d" / "b" / "x.csv"
    assert first_csv(tmp_path, ["d/a.txt"]) is None


def test_a_model_fitted_on_a_dataframe_is_given_one() -> None:
    spec = ServiceText(
        name="churn",
        cls="ChurnModel",
        model_path="m.pkl",
        loader="pickle",
        features=["a b", "c"],
        feature_names=True,
        packages=["scikit-learn", "numpy", "pandas"],
        include=["m.pkl"],
    )
    text = service_text(spec)
    compile(text, "service.py", "exec")
    assert "return pandas.DataFrame(matrix, columns=FEATURES)" in text
    assert 'FEATURES = ["a b", "c"]' in text
    assert "    - pandas" in bentofile_text(spec)


def test_class_names() -> None:
    assert class_name("churn") == "ChurnModel"
    assert class_name("iris-model") == "IrisModel"
    assert class_name("sub_encoder") == "SubEncoderModel"


def _dvc_project(root: Path, dvc_yaml: str) -> Path:
    """A git + DVC repository of _project's files, its CSV added to DVC, ``dvc_yaml`` its
    pipeline."""
    root.mkdir()
    subprocess.run(["git", "init", "-q", str(root)], check=True)
    subprocess.run([sys.executable, "-m", "dvc", "init", "-q"], cwd=root, check=True)
    _project(root, _fitted())
    (root / "dvc.yaml").write_text(dvc_yaml)
    subprocess.run(
        [sys.executable, "-m", "dvc", "add", "-q", "data/customers.csv"], cwd=root, check=True
    )
    return root


def test_init_with_scaffold_writes_a_releasable_config(tmp_path: Path) -> None:
    root = _dvc_project(
        tmp_path / "churn",
        "stages:\n  train:\n    cmd: python src/train.py\n"
        "    deps: [data/customers.csv, src/train.py]\n    outs: [models/model.pkl]\n",
    )
    written = init_project(root, scaffold=True)
    assert written.deployable
    config = load_config(written.path)
    service = config.services["churn"]
    assert (service.bento, service.build) == ("service:ChurnModel", "bentofile.yaml")
    assert service.sample_request == "sample_request.json"
    assert config.suites["service"].paths == ["tests/service"]
    assert "service" in config.environments["dev"].suites


def test_of_several_models_the_one_named_is_scaffolded(tmp_path: Path) -> None:
    root = _dvc_project(
        tmp_path / "churn",
        "stages:\n  train:\n    cmd: python src/train.py\n"
        "    deps: [data/customers.csv, src/train.py]\n"
        "    outs: [models/model.pkl, models/other.pkl]\n"
        "artifacts:\n  churn:\n    path: models/model.pkl\n    type: model\n"
        "  other:\n    path: models/other.pkl\n    type: model\n",
    )
    (root / "models" / "other.pkl").write_bytes(pickle.dumps(_fitted()))
    written = init_project(root, scaffold=True, service="other")
    assert written.deployable and written.serves == "other"
    config = load_config(written.path)
    assert (config.services["other"].bento, config.services["churn"].bento) == (
        "service:OtherModel",
        None,
    )
    assert (
        'MODEL_PATH = Path(__file__).resolve().parent / "models/other.pkl"'
        in (root / "service.py").read_text()
    )
    assert config.services["other"].sample_request == "sample_request.json"
