"""Model quality on the held-out split, measured on the actual model file."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from sklearn.metrics import accuracy_score

from src.features import CLASS_NAMES, engineer, read_dataset, to_matrix

pytestmark = pytest.mark.model

ACCURACY_FLOOR = 0.9


@pytest.fixture(scope="module")
def held_out(root: Path) -> tuple[Any, list[str]]:
    path = root / "data" / "prepared" / "test.csv"
    if not path.is_file():
        pytest.fail(f"{path} is missing: run 'dvc pull' or 'dvc repro' first")
    return read_dataset(path)


def test_accuracy_on_held_out_split(model: Any, held_out: tuple[Any, list[str]]) -> None:
    matrix, labels = held_out
    accuracy = accuracy_score(labels, model.predict(engineer(matrix)))
    assert accuracy >= ACCURACY_FLOOR, f"accuracy {accuracy:.3f} < {ACCURACY_FLOOR}"


def test_metrics_json_matches_the_model(
    root: Path, model: Any, held_out: tuple[Any, list[str]]
) -> None:
    # A stale metrics.json would let a release pass its gates on another model's numbers.
    matrix, labels = held_out
    recorded = json.loads((root / "metrics.json").read_text(encoding="utf-8"))
    accuracy = accuracy_score(labels, model.predict(engineer(matrix)))
    assert recorded["n_test"] == len(labels)
    assert recorded["accuracy"] == pytest.approx(accuracy, abs=1e-4)


def test_predicts_only_known_species(model: Any) -> None:
    sample = json.loads((Path(__file__).parents[2] / "sample_request.json").read_text())
    predictions = model.predict(engineer(to_matrix(sample["features"])))
    assert set(predictions) <= set(CLASS_NAMES)
    assert predictions[0] == "setosa"
