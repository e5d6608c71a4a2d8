"""Data validation of data/iris.csv: schema, ranges, completeness, class balance."""

from __future__ import annotations

import csv
from collections import Counter
from pathlib import Path

import pytest

from src.features import CLASS_NAMES, FEATURE_NAMES, LABEL_NAME

pytestmark = pytest.mark.data


@pytest.fixture(scope="module")
def rows(root: Path) -> list[dict[str, str]]:
    path = root / "data" / "iris.csv"
    if not path.is_file():
        pytest.fail(f"{path} is missing: run 'dvc pull' first")
    with open(path, newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


def test_header_is_the_expected_schema(root: Path) -> None:
    with open(root / "data" / "iris.csv", newline="", encoding="utf-8") as handle:
        header = next(csv.reader(handle))
    assert header == [*FEATURE_NAMES, LABEL_NAME]


def test_enough_rows(rows: list[dict[str, str]]) -> None:
    assert len(rows) >= 100


def test_no_missing_values(rows: list[dict[str, str]]) -> None:
    for number, row in enumerate(rows, start=2):
        for name in (*FEATURE_NAMES, LABEL_NAME):
            assert row.get(name) not in (None, ""), f"line {number}: {name} is empty"


def test_measurements_are_plausible_centimetres(rows: list[dict[str, str]]) -> None:
    for number, row in enumerate(rows, start=2):
        for name in FEATURE_NAMES:
            value = float(row[name])
            assert 0.0 < value < 10.0, f"line {number}: {name}={value} is not in (0, 10) cm"


def test_species_are_known(rows: list[dict[str, str]]) -> None:
    assert {row[LABEL_NAME] for row in rows} == set(CLASS_NAMES)


def test_classes_are_balanced(rows: list[dict[str, str]]) -> None:
    counts = Counter(row[LABEL_NAME] for row in rows)
    share = {name: count / len(rows) for name, count in counts.items()}
    # A skewed dataset would silently make accuracy a poor gate metric.
    assert all(0.25 <= value <= 0.42 for value in share.values()), share
