"""Unit tests of src/features.py: the code training and serving share."""

from __future__ import annotations

import math

import numpy as np
import pytest

from src.features import FEATURE_NAMES, engineer, read_dataset, to_matrix, write_dataset

pytestmark = pytest.mark.unit


def test_to_matrix_accepts_rows_of_four_numbers() -> None:
    matrix = to_matrix([[5.1, 3.5, 1.4, 0.2], [6, 3, 5, 2]])
    assert matrix.shape == (2, 4)
    assert matrix.dtype == float


@pytest.mark.parametrize(
    "rows",
    [[], [[1.0, 2.0, 3.0]], [[1.0, 2.0, 3.0, 4.0, 5.0]], [[1.0, 2.0, math.nan, 4.0]]],
    ids=["empty", "too-short", "too-long", "nan"],
)
def test_to_matrix_rejects_bad_rows(rows: list[list[float]]) -> None:
    with pytest.raises(ValueError):
        to_matrix(rows)


def test_engineer_appends_sepal_and_petal_area() -> None:
    features = engineer(np.array([[5.0, 3.0, 4.0, 1.5]]))
    assert features.shape == (1, len(FEATURE_NAMES) + 2)
    assert features[0, :4].tolist() == [5.0, 3.0, 4.0, 1.5]
    assert features[0, 4] == pytest.approx(15.0)
    assert features[0, 5] == pytest.approx(6.0)


def test_dataset_round_trips_through_csv(tmp_path) -> None:
    matrix = np.array([[5.1, 3.5, 1.4, 0.2], [6.7, 3.0, 5.2, 2.3]])
    labels = ["setosa", "virginica"]
    path = tmp_path / "sub" / "iris.csv"
    write_dataset(path, matrix, labels)
    assert path.read_text().splitlines()[1] == "5.1,3.5,1.4,0.2,setosa"
    again, again_labels = read_dataset(path)
    assert np.array_equal(again, matrix)
    assert again_labels == labels
