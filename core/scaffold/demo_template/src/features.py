"""Feature code shared by training, evaluation and the BentoML service.

Keeping these functions pure and in one module is what lets the model see exactly the same
features at training time and at serving time.
"""

from __future__ import annotations

import csv
import math
from collections.abc import Iterable, Sequence
from pathlib import Path

import numpy as np

FEATURE_NAMES = ("sepal_length", "sepal_width", "petal_length", "petal_width")
LABEL_NAME = "species"
CLASS_NAMES = ("setosa", "versicolor", "virginica")


def to_matrix(rows: Iterable[Sequence[float]]) -> np.ndarray:
    """Validate raw measurements (one row of four numbers per flower) into a float matrix."""
    matrix = np.asarray([list(row) for row in rows], dtype=float)
    if matrix.size == 0:
        raise ValueError("no rows given; send at least one row of four measurements")
    if matrix.ndim != 2 or matrix.shape[1] != len(FEATURE_NAMES):
        raise ValueError(
            f"each row needs {len(FEATURE_NAMES)} measurements ({', '.join(FEATURE_NAMES)})"
        )
    if not np.all(np.isfinite(matrix)):
        raise ValueError("measurements must be finite numbers")
    return matrix


def engineer(matrix: np.ndarray) -> np.ndarray:
    """The model's inputs: the four measurements plus the petal and sepal areas."""
    sepal_area = matrix[:, 0] * matrix[:, 1]
    petal_area = matrix[:, 2] * matrix[:, 3]
    return np.column_stack([matrix, sepal_area, petal_area])


def read_dataset(path: Path) -> tuple[np.ndarray, list[str]]:
    """Read an iris CSV (header row, four measurements, species) into (matrix, labels)."""
    with open(path, newline="", encoding="utf-8") as handle:
        reader = csv.DictReader(handle)
        rows = list(reader)
    matrix = to_matrix([[float(row[name]) for name in FEATURE_NAMES] for row in rows])
    labels = [row[LABEL_NAME] for row in rows]
    return matrix, labels


def write_dataset(path: Path, matrix: np.ndarray, labels: Sequence[str]) -> None:
    """Write (matrix, labels) as an iris CSV, the inverse of :func:`read_dataset`."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow([*FEATURE_NAMES, LABEL_NAME])
        for values, label in zip(matrix, labels, strict=True):
            writer.writerow([_number(value) for value in values] + [label])


def _number(value: float) -> str:
    # Short, exact text for measurements such as 5.1, so the CSV stays readable and stable.
    number = float(value)
    if not math.isfinite(number):
        raise ValueError(f"cannot write non-finite value {number}")
    return repr(round(number, 6))
