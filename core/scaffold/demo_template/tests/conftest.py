"""Shared fixtures of the demo's test suites."""

from __future__ import annotations

import pickle
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="session")
def root() -> Path:
    return ROOT


@pytest.fixture(scope="session")
def model() -> Any:
    path = ROOT / "models" / "model.pkl"
    if not path.is_file():
        pytest.fail(f"{path} is missing: run 'dvc pull' or 'dvc repro' first")
    with open(path, "rb") as handle:
        return pickle.load(handle)
