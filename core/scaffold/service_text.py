"""The text of the files `relman init --scaffold-service` writes: a BentoML service for a
scikit-learn model, its bentofile.yaml and its tests (core/scaffold/service.py decides what
goes in them; docs/adopting.md says what they do).

The service and its tests run in the project's interpreter, which may be older than
relman's: they are written for Python 3.9 and BentoML 1.4 (``typing`` generics in what
BentoML evaluates, no ``zip(strict=)``).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from string import Template

__all__ = ["ServiceText", "bentofile_text", "service_text", "tests_text"]


@dataclass(frozen=True)
class ServiceText:
    """What the generated files are made of."""

    name: str  # the relman service
    cls: str  # the BentoML service class
    model_path: str  # from the repository root
    loader: str  # "pickle" or "joblib"
    features: list[str]
    feature_names: bool  # fitted on a DataFrame: the model takes one, with these columns
    packages: list[str]
    include: list[str]  # beyond service.py: the model and the code its pickle imports


_SERVICE = Template('''\
"""The BentoML service of $name, written by `relman init --scaffold-service`: the
scikit-learn model $model_path predicts on rows of the columns it was trained on.

POST {"rows": [{"column": value, ...}, ...]} to /predict, or each row as a list of values in
the order of FEATURES; the answer is a list, one prediction per row. Each row and its
prediction go to ``bentoml.monitor($name_json)``, where relman reads them for drift and
feedback. The model file comes with the Bento (bentofile.yaml, ``include``). Edit freely:
relman needs the class (relman.toml ``bento``) and its ``predict`` endpoint.
"""

from __future__ import annotations

$import_loader
from pathlib import Path
from typing import Any, Dict, List, Union

import bentoml
import numpy
from bentoml.exceptions import InvalidArgument

MODEL_PATH = Path(__file__).resolve().parent / $model_path_json
# The model's input columns, in the order it was trained on.
FEATURES = $features_json


def load_model(path: Path) -> Any:
$load_body


def to_matrix(rows: List[Any]) -> List[List[Any]]:
    """Each row's values in the order of FEATURES; ValueError naming a row that does not fit."""
    matrix = []
    for number, row in enumerate(rows):
        if isinstance(row, dict):
            missing = [name for name in FEATURES if name not in row]
            if missing:
                raise ValueError(f"row {number}: no value for {', '.join(missing)}")
            matrix.append([row[name] for name in FEATURES])
        elif len(row) == len(FEATURES):
            matrix.append(list(row))
        else:
            raise ValueError(
                f"row {number}: {len(row)} values; the model takes {len(FEATURES)}: "
                + ", ".join(FEATURES)
            )
    return matrix


def model_input(matrix: List[List[Any]]) -> Any:
$input_body


@bentoml.service(traffic={"timeout": 10})
class $cls:
    def __init__(self) -> None:
        self.model = load_model(MODEL_PATH)
        # A classifier's answers are classes; a regressor's, numbers.
        self.answers = "categorical" if hasattr(self.model, "classes_") else "numerical"

    @bentoml.api
    def predict(self, rows: List[Union[Dict[str, Any], List[Any]]]) -> List[Any]:
        """One prediction per row."""
        try:
            matrix = to_matrix(rows)
        except ValueError as exc:
            # A 400 with the reason, not a 500: the caller sent a bad request body.
            raise InvalidArgument(str(exc)) from exc
        predictions = numpy.asarray(self.model.predict(model_input(matrix))).tolist()
        with bentoml.monitor($name_json) as monitor:
            # One record per row: its values and its prediction.
            for values, prediction in zip(matrix, predictions):
                for name, value in zip(FEATURES, values):
                    kind = "numerical" if isinstance(value, (int, float)) else "categorical"
                    monitor.log(value, name=name, role="feature", data_type=kind)
                monitor.log(
                    prediction, name="prediction", role="prediction", data_type=self.answers
                )
        return predictions
''')

_LOAD = {
    "pickle": (
        "import pickle",
        '    with open(path, "rb") as handle:\n        return pickle.load(handle)',
    ),
    "joblib": ("import joblib", "    return joblib.load(path)"),
}

_INPUT_LISTS = "    return matrix"
_INPUT_FRAME = (
    '    """A DataFrame with the columns\' names: the model was fitted on one."""\n'
    "    import pandas\n"
    "\n"
    "    return pandas.DataFrame(matrix, columns=FEATURES)"
)


def service_text(spec: ServiceText) -> str:
    """service.py."""
    import_loader, load_body = _LOAD[spec.loader]
    return _SERVICE.substitute(
        name=spec.name,
        name_json=json.dumps(spec.name),
        cls=spec.cls,
        model_path=spec.model_path,
        model_path_json=json.dumps(spec.model_path),
        features_json=json.dumps(spec.features),
        import_loader=import_loader,
        load_body=load_body,
        input_body=_INPUT_FRAME if spec.feature_names else _INPUT_LISTS,
    )


def bentofile_text(spec: ServiceText) -> str:
    """bentofile.yaml (strings JSON-quoted: valid YAML whatever they hold)."""
    lines = [
        "# Written by 'relman init --scaffold-service': how BentoML builds the Bento of",
        f"# {spec.name}, from service.py and the model it loads.",
        f"service: {json.dumps('service:' + spec.cls)}",
        "labels:",
        f"  relman-scaffold: {json.dumps(spec.name)}",
        "include:",
        '  - "service.py"',
        *(f"  - {json.dumps(path)}" for path in spec.include),
        "python:",
        "  packages:",
        *(f"    - {package}" for package in spec.packages),
        "  # Served here from this environment: no need to resolve pinned versions against PyPI at",
        "  # every build (set it to true, or remove it, before containerizing the Bento).",
        "  lock_packages: false",
        "",
    ]
    return "\n".join(lines)


_TEST = Template('''\
"""The BentoML service written by `relman init --scaffold-service` loads $model_path and
answers the sample request with one prediction per row (run by relman as the suite
"$suite", and by pytest)."""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
# service.py lives at the repository's root.
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from service import FEATURES, MODEL_PATH, $cls  # noqa: E402


@pytest.fixture(scope="module")
def service() -> Any:
    if not MODEL_PATH.is_file():
        pytest.fail(f"{MODEL_PATH} is missing: run 'dvc pull' or 'dvc repro' first")
    return $cls()


@pytest.fixture(autouse=True)
def monitor_logs_aside(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # Outside a server, bentoml.monitor writes monitoring/ in the working directory.
    monkeypatch.chdir(tmp_path)


@pytest.fixture(scope="module")
def sample() -> Any:
    return json.loads((ROOT / $sample_json).read_text(encoding="utf-8"))


def test_the_sample_request_gets_one_prediction_per_row(service: Any, sample: Any) -> None:
    answer = service.predict(**sample)
    assert isinstance(answer, list)
    assert len(answer) == len(sample["rows"])
    assert json.loads(json.dumps(answer)) == answer  # a JSON answer


def test_rows_as_lists_get_the_same_predictions(service: Any, sample: Any) -> None:
    rows = [[row[name] for name in FEATURES] for row in sample["rows"]]
    assert service.predict(rows=rows) == service.predict(**sample)


def test_a_row_without_a_column_is_refused(service: Any, sample: Any) -> None:
    from bentoml.exceptions import InvalidArgument

    row = dict(sample["rows"][0])
    del row[FEATURES[0]]
    with pytest.raises(InvalidArgument, match=re.escape(f"row 0: no value for {FEATURES[0]}")):
        service.predict(rows=[row])
''')


def tests_text(spec: ServiceText, *, sample: str, suite: str) -> str:
    """tests/SUITE/test_service.py."""
    return _TEST.substitute(
        model_path=spec.model_path, cls=spec.cls, sample_json=json.dumps(sample), suite=suite
    )
