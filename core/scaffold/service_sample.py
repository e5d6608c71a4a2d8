"""The sample request of a scaffolded service (core/scaffold/service.py): the columns the
model takes and two rows of real values for them.

The rows come from the first CSV among the model's data (a folder: its first CSV, by path):
its header minus the label (a column named like ``label``, ``target``, ``y``, ``class`` or
``churned``, else the last one). What the model itself says wins: fitted on a DataFrame,
its ``feature_names_in_`` are the columns; fitted on arrays, ``n_features_in_`` must match
the data's (an ``id`` column left out if that makes them match), or the columns are named
``x0``, ``x1``, ... with zeros for values, and a note says to put real ones in.
"""

from __future__ import annotations

import contextlib
import csv
import math
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from core.errors import UsageError

__all__ = ["Sample", "build_sample", "first_csv", "label_column"]

ROWS = 2
# How far into a CSV to look for rows without empty values.
SCANNED_ROWS = 500
LABEL_NAMES = {"label", "labels", "target", "y", "class", "churn", "churned", "outcome"}
_LABEL_SUFFIX = re.compile(r"[_\- ](label|target|class)$")
_ID = re.compile(r"(^|[_\- ])id$|^index$|^unnamed: ?0$", re.I)
_INT = re.compile(r"[+-]?\d+")


@dataclass(frozen=True)
class Sample:
    """The model's input columns, in order, and the sample rows (column -> value)."""

    features: list[str]
    rows: list[dict[str, Any]]
    notes: list[str] = field(default_factory=list)


def build_sample(
    root: Path, model_path: str, data_paths: Sequence[str], model: dict[str, Any] | None
) -> Sample:
    """The sample for the model at ``model_path``, from ``data_paths`` (from ``root``) and
    what model_probe read of the model (None: nothing); UsageError when neither says what
    the model takes."""
    names: list[str] | None = (model or {}).get("feature_names")
    count: int | None = (model or {}).get("n_features")
    path = first_csv(root, data_paths)
    if path is None:
        if names:
            return _zeros(names, f"no CSV among {model_path}'s data")
        if count:
            return _zeros([f"x{i}" for i in range(count)], f"no CSV among {model_path}'s data")
        where = ", ".join(data_paths) if data_paths else "none is tracked upstream of it"
        raise UsageError(
            f"{model_path}: cannot tell the columns it takes: no CSV among its data ({where}) "
            "and the model file says nothing; run 'dvc pull' and rerun, or write the service "
            "yourself (docs/adopting.md)"
        )
    shown = path.relative_to(root).as_posix()
    header, records = read_csv(path)
    if not header:
        raise UsageError(f"{shown}: no header row to take the columns from; give it one and rerun")
    notes: list[str] = []
    if names:
        features = names
        absent = [name for name in names if name not in header]
        if absent:
            notes.append(
                f"the sample request's {', '.join(absent)} are 0: {shown} has no such "
                "columns; put real values in sample_request.json"
            )
    else:
        label = label_column(header)
        features = [column for i, column in enumerate(header) if i != label]
        if count is not None and len(features) != count:
            kept = [column for column in features if not _ID.search(column)]
            if len(kept) == count:
                features = kept
            else:
                return _zeros(
                    [f"x{i}" for i in range(count)],
                    f"{shown} has {len(features)} columns besides its label "
                    f"{header[label]!r}, the model takes {count}",
                )
    rows = _rows(header, records, features)
    if not rows:
        return _zeros(features, f"{shown} has no row with a value in every column")
    return Sample(features, rows, notes)


def first_csv(root: Path, data_paths: Sequence[str]) -> Path | None:
    """The first CSV among ``data_paths``: a CSV file, or a folder's first CSV by path."""
    for data in data_paths:
        path = root / data
        if path.is_file() and path.suffix.lower() == ".csv":
            return path
        if path.is_dir():
            found = sorted(
                (p for p in path.rglob("*") if p.suffix.lower() == ".csv" and p.is_file()),
                key=lambda p: p.relative_to(path).parts,
            )
            if found:
                return found[0]
    return None


def label_column(header: Sequence[str]) -> int:
    """The index of the label: a column named like one, else the last."""
    for i, column in enumerate(header):
        name = column.strip().lower()
        if name in LABEL_NAMES or _LABEL_SUFFIX.search(name):
            return i
    return len(header) - 1


def read_csv(path: Path) -> tuple[list[str], list[list[str]]]:
    """The header and the first rows of a CSV, its delimiter sniffed (a comma if unsure)."""
    with path.open(newline="", encoding="utf-8-sig", errors="replace") as handle:
        head = handle.read(64 * 1024)
        handle.seek(0)
        dialect: Any = "excel"
        with contextlib.suppress(csv.Error):  # one column, or too few rows to tell: commas
            dialect = csv.Sniffer().sniff(head, delimiters=",;\t|")
        reader = csv.reader(handle, dialect)
        header = [column.strip() for column in next(reader, [])]
        records = []
        for record in reader:
            records.append(record)
            if len(records) >= SCANNED_ROWS:
                break
    return header, records


def value(text: str) -> Any:
    """A CSV cell as JSON carries it: an int, a float, or the text (None: empty or NaN)."""
    text = text.strip()
    if not text:
        return None
    if _INT.fullmatch(text):
        return int(text)
    try:
        number = float(text)
    except ValueError:
        return text
    return number if math.isfinite(number) else None


def _rows(header: list[str], records: list[list[str]], features: list[str]) -> list[dict[str, Any]]:
    """The first ROWS records with a value in every feature (0 for those the CSV lacks)."""
    index = {column: i for i, column in enumerate(header)}
    rows = []
    for record in records:
        row: dict[str, Any] = {}
        for name in features:
            i = index.get(name)
            if i is None:
                row[name] = 0  # a column the model takes and the CSV lacks (noted)
            else:
                row[name] = value(record[i]) if i < len(record) else None
        if any(cell is None for cell in row.values()):
            continue
        rows.append(row)
        if len(rows) == ROWS:
            break
    return rows


def _zeros(features: list[str], why: str) -> Sample:
    note = f"the sample request holds zeros ({why}): put real values in sample_request.json"
    return Sample(features, [dict.fromkeys(features, 0) for _ in range(ROWS)], [note])
