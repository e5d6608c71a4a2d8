"""The request bodies of `relman traffic`: rows of the service's training data, each put where
its sample request holds a row (core/traffic/load.py sends them).

The sample request says the shape (:func:`sample_shape`); each request carries one row:

- ``lists``: ``{"features": [[5.1, 3.5], ...]}``: a list of equally long rows of numbers;
- ``records``: ``{"rows": [{"tenure": 2, ...}, ...]}``: the service relman init
  --scaffold-service writes, a pandas DataFrame as BentoML reads it by default, a list of
  pydantic models;
- ``object``: ``{"customer": {"tenure": 2, ...}}``: one pydantic model;
- ``columns``: ``{"df": {"tenure": [2, 3], ...}}``: a DataFrame in ``columns`` orient;
- ``flat``: ``{"tenure": 2, ...}``: a model that is the whole body (BentoML's root input).

Values are numbers, text or booleans, and at least one is a number (``drift`` shifts one). The
rows come from the first CSV among the service's data that has the sample's columns (by name,
or for ``lists`` as many numeric columns as a row holds), each cell read as the type of the
sample's value there; a column the CSV lacks keeps the sample's value. Without such a CSV at
hand, the sample's own rows are sent.
"""

from __future__ import annotations

import contextlib
import csv
import json
import math
import random
import statistics
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import yaml

from core.config.model import Project
from core.errors import UsageError
from core.traffic.faults import DRIFT_NOISE, DRIFT_SCALE

__all__ = [
    "BodyShape",
    "RequestSource",
    "data_files",
    "numeric_columns",
    "request_source",
    "sample_shape",
]

Kind = Literal["lists", "records", "object", "columns", "flat"]
Row = dict[str, Any]


@dataclass(frozen=True)
class BodyShape:
    """Where a row goes in a request body: under ``key`` (None: the body is the row)."""

    kind: Kind
    key: str | None
    names: list[str]  # the row's fields, in the order of the sample

    def render(self, row: Row) -> Any:
        """The body that sends ``row``."""
        if self.kind == "lists":
            return {self.key: [[row[name] for name in self.names]]}
        record = {name: row[name] for name in self.names}
        if self.kind == "records":
            return {self.key: [record]}
        if self.kind == "object":
            return {self.key: record}
        if self.kind == "columns":
            return {self.key: {name: [value] for name, value in record.items()}}
        return record


@dataclass(frozen=True)
class RequestSource:
    """Where request bodies come from: rows, sent in the sample request's shape."""

    shape: BodyShape
    rows: list[Row]
    columns: list[str] | None  # the CSV's columns the rows come from (None: the sample's)
    origin: str  # for a person: "data/iris.csv (150 rows)"

    def body(self, rng: random.Random, *, drift: bool = False) -> bytes:
        row = dict(rng.choice(self.rows))
        column = self.drift_column() if drift else None
        if column is not None:
            shifted = row[column] * DRIFT_SCALE + rng.gauss(0, DRIFT_NOISE * self.spread(column))
            row[column] = round(shifted) if isinstance(row[column], int) else round(shifted, 2)
        return json.dumps(self.shape.render(row)).encode()

    def drift_column(self) -> str | None:
        """The field ``drift`` shifts: the number with the widest spread in the rows."""
        numeric = [name for name in self.shape.names if _all_numbers(r[name] for r in self.rows)]
        if not numeric:
            return None
        return max(numeric, key=self.spread)  # the first of equals

    def spread(self, column: str) -> float:
        values = [float(row[column]) for row in self.rows]
        return statistics.pstdev(values) if len(values) > 1 else abs(values[0]) * 0.1


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _all_numbers(values: Any) -> bool:
    return all(_is_number(value) for value in values)


def _is_scalar(value: Any) -> bool:
    return isinstance(value, int | float | str | bool)


def sample_shape(body: Any) -> tuple[BodyShape, list[Row]] | None:
    """The shape of a sample request and its rows (field -> value); None for a body that
    holds no row of scalars with a number among them."""
    found = _shape(body)
    if found is None:
        return None
    shape, rows = found
    if not rows or not any(_all_numbers(r[name] for r in rows) for name in shape.names):
        return None
    return found


def _shape(body: Any) -> tuple[BodyShape, list[Row]] | None:
    if not isinstance(body, dict) or not body:
        return None
    if all(_is_scalar(value) for value in body.values()):
        return BodyShape("flat", None, list(body)), [dict(body)]
    if len(body) != 1:
        return None
    ((key, held),) = body.items()
    key = str(key)
    if isinstance(held, list) and held and all(isinstance(r, list) and r for r in held):
        if len({len(r) for r in held}) != 1 or not all(_all_numbers(r) for r in held):
            return None
        names = [f"x{i}" for i in range(len(held[0]))]
        return BodyShape("lists", key, names), [dict(zip(names, r, strict=True)) for r in held]
    if isinstance(held, list) and held and all(isinstance(r, dict) and r for r in held):
        names = list(held[0])
        if any(list(r) != names or not all(map(_is_scalar, r.values())) for r in held):
            return None
        return BodyShape("records", key, names), [dict(r) for r in held]
    if isinstance(held, dict) and held and all(_is_scalar(v) for v in held.values()):
        return BodyShape("object", key, list(held)), [dict(held)]
    if isinstance(held, dict) and held and all(isinstance(v, list) for v in held.values()):
        lengths = {len(v) for v in held.values()}
        values = [v for column in held.values() for v in column]
        if len(lengths) != 1 or 0 in lengths or not all(map(_is_scalar, values)):
            return None
        names = list(held)
        rows = [{name: held[name][i] for name in names} for i in range(lengths.pop())]
        return BodyShape("columns", key, names), rows
    return None


# ---------------------------------------------------------------------------------- data


def numeric_columns(path: Path) -> tuple[list[str], list[list[float]]]:
    """The columns of a CSV whose every value is a number, and its rows of those columns."""
    header, records = _read(path)
    names = []
    for i, name in enumerate(header):
        try:
            for record in records:
                float(record[i])
        except (IndexError, ValueError):
            continue
        names.append(name)
    index = [header.index(name) for name in names]
    return names, [[float(record[i]) for i in index] for record in records] if names else []


def _read(path: Path) -> tuple[list[str], list[list[str]]]:
    with path.open(newline="", encoding="utf-8") as handle:
        rows = list(csv.reader(handle))
    return ([name.strip() for name in rows[0]], rows[1:]) if rows else ([], [])


def data_files(project: Project, service: str) -> list[Path]:
    """The files of the service's ``data`` artifacts: dvc.yaml ``artifacts:`` names (also
    ``dir:name`` of a nested dvc.yaml) or paths; a folder stands for the CSVs in it."""
    found: list[Path] = []
    for name in project.config.services[service].data:
        folder, _, short = name.rpartition(":")
        base = project.root / folder
        path = base / name if not folder else None
        with contextlib.suppress(OSError, yaml.YAMLError, AttributeError, TypeError):
            artifacts = yaml.safe_load((base / "dvc.yaml").read_text()).get("artifacts") or {}
            if short in artifacts:
                path = base / str(artifacts[short]["path"])
        if path is None:
            continue
        found.extend(sorted(path.glob("*.csv")) if path.is_dir() else [path])
    return [path for path in found if path.suffix.lower() == ".csv" and path.is_file()]


def _norm(name: str) -> str:
    return "".join(ch for ch in name.lower() if ch.isalnum())


def _cell(text: str, like: Any) -> Any:
    """A CSV cell as the type of ``like`` (the sample's value there); ValueError when it is
    not one."""
    text = text.strip()
    if not text:
        raise ValueError("empty")
    if isinstance(like, bool):
        lowered = text.lower()
        if lowered in ("1", "true", "yes", "y", "t"):
            return True
        if lowered in ("0", "false", "no", "n", "f"):
            return False
        raise ValueError(text)
    if isinstance(like, int):
        number = float(text)
        if not number.is_integer():
            raise ValueError(text)
        return int(number)
    if isinstance(like, float):
        number = float(text)
        if not math.isfinite(number):
            raise ValueError(text)
        return number
    return text


def _rows_from_csv(path: Path, shape: BodyShape, sample: Row) -> tuple[list[Row], list[str]]:
    """The CSV's rows as rows of the shape (each cell typed like the sample's value; a row
    whose cells do not fit left out), and the CSV's columns they come from; no rows when
    the CSV has none of the sample's fields."""
    if shape.kind == "lists":
        columns, numbers = numeric_columns(path)
        if len(columns) != len(shape.names):
            return [], []
        return [dict(zip(shape.names, row, strict=True)) for row in numbers], columns
    header, records = _read(path)
    by_norm = {_norm(column): i for i, column in reversed(list(enumerate(header)))}
    index = {}
    for name in shape.names:
        i = header.index(name) if name in header else by_norm.get(_norm(name))
        if i is not None:
            index[name] = i
    if not any(_is_number(sample[name]) for name in index):
        return [], []
    rows = []
    for record in records:
        row = dict(sample)
        try:
            for name, i in index.items():
                row[name] = _cell(record[i] if i < len(record) else "", sample[name])
        except ValueError:
            continue
        rows.append(row)
    return rows, [header[i] for i in index.values()]


def request_source(project: Project, service: str) -> RequestSource:
    """Rows of the training data in the shape of the sample request, or else the sample's."""
    config = project.config.services[service]
    found: tuple[BodyShape, list[Row]] | None = None
    if config.sample_request:
        path = project.root / config.sample_request
        try:
            found = sample_shape(json.loads(path.read_text()))
        except (OSError, ValueError) as exc:
            raise UsageError(f"{config.sample_request}: cannot be read ({exc})") from exc
    if found is None:
        raise UsageError(
            f"relman traffic needs a sample request for {service}: set sample_request in "
            f'[services.{service}] of relman.toml to a JSON body like {{"features": [[1, 2]]}} '
            'or {"rows": [{"a": 1, "b": 2}]}, with numbers among its values'
        )
    shape, sample_rows = found
    for path in data_files(project, service):
        rows, columns = _rows_from_csv(path, shape, sample_rows[0])
        if rows:
            origin = f"{path.relative_to(project.root)} ({len(rows)} rows)"
            return RequestSource(shape, rows, columns, origin)
    origin = f"{config.sample_request} ({len(sample_rows)} rows)"
    return RequestSource(shape, sample_rows, None, origin)
