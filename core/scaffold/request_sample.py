"""The sample request of a BentoML service someone else wrote: a JSON body its API takes,
filled from the training data (`relman init`, docs/adopting.md).

core/scaffold/service_probe.py reads the API's input as BentoML's own JSON Schema (pydantic);
here each part of it gets a value. A pydantic model's fields come from one row of the first
CSV among the service's data (the column named like the field, its cell as the field's
type); a pandas DataFrame (BentoML's ``"type": "dataframe"``) is two rows of its columns (or
the data's, its label left out) in its orient: ``records`` a list of ``{column: value}``,
``columns`` ``{column: [values]}``; a list of models is two of them, a list of lists or a
numpy array two rows of the numeric columns. A field no column matches is left out when it
has a default, else takes a placeholder of its type, and a note says to put a real value in.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from core.scaffold.service_sample import first_csv, label_column, read_csv, value

__all__ = ["ServiceSample", "build_request", "service_sample"]

ROWS = 2
PROBE = Path(__file__).with_name("service_probe.py")
# A pydantic model may refer to itself: its nested parts are filled this deep at most.
MAX_DEPTH = 6
_PLACEHOLDERS = {"integer": 0, "number": 0.0, "boolean": False, "string": "", "null": None}
_TRUE = {"1", "true", "yes", "y", "t"}


@dataclass(frozen=True)
class ServiceSample:
    """The request body for one API of a service (None: none could be made), its route
    without the leading slash, and what a person should check, one line each."""

    body: Any
    endpoint: str
    notes: list[str] = field(default_factory=list)


def service_sample(
    root: Path,
    context: Path,
    bento: str,
    data_paths: Sequence[str],
    *,
    python: str | None = None,
) -> ServiceSample:
    """The sample request of the service ``bento`` (imported in ``context``, its build
    context, by ``python``): for its ``predict`` API, else its first; the rows from the
    first CSV among ``data_paths`` (from ``root``)."""
    from core.scaffold.service import run_probe

    found = run_probe(PROBE, [bento], cwd=context, python=python or sys.executable)
    if not found.get("ok"):
        why = found.get("error") or "no answer"
        return ServiceSample(None, "predict", [_unread(bento, f"cannot import it here ({why})")])
    apis: dict[str, Any] = found.get("apis") or {}
    if not apis:
        return ServiceSample(None, "predict", [_unread(bento, "it has no API")])
    name = "predict" if "predict" in apis else next(iter(apis))
    api = apis[name]
    endpoint = str(api.get("route") or name).lstrip("/")
    if "schema" not in api:
        return ServiceSample(None, endpoint, [_unread(f"{bento} {name}()", api.get("error"))])
    path = first_csv(root, data_paths)
    header, records = read_csv(path) if path is not None else ([], [])
    shown = path.relative_to(root).as_posix() if path is not None else None
    body, notes = build_request(api["schema"], bool(api.get("root")), header, records, shown)
    return ServiceSample(body, endpoint, notes)


def _unread(what: str, why: object) -> str:
    return (
        f"no sample request written: {what}: {why}; write sample_request.json (a JSON body "
        "for its API) and name it in relman.toml (sample_request)"
    )


def build_request(
    schema: dict[str, Any],
    root_input: bool,
    header: list[str],
    records: list[list[str]],
    shown: str | None,
) -> tuple[Any, list[str]]:
    """A body for the input ``schema`` (BentoML's, a JSON Schema), filled from the CSV rows
    ``records`` under ``header`` (``shown``: the CSV's name for the notes, None: no CSV);
    ``root_input``: the body is the one value the schema describes, else one key per
    parameter. Returns the body and the notes."""
    filler = _Filler(schema, header, records)
    body = filler.fill(schema, "", 0, 0) if root_input else filler.fields(schema, 0, 0)
    notes = []
    if filler.placeholders:
        where = f"no column of {shown} is named like it" if shown else "no CSV among its data"
        notes.append(
            f"placeholders in the sample request: {', '.join(dict.fromkeys(filler.placeholders))}"
            f" ({where}): put real values in sample_request.json"
        )
    return body, notes


class _Filler:
    """Values for the parts of one input schema, from the rows of one CSV."""

    def __init__(self, schema: dict[str, Any], header: list[str], records: list[list[str]]):
        self.defs: dict[str, Any] = schema.get("$defs") or schema.get("definitions") or {}
        self.header = header
        self.index = {_norm(column): i for i, column in reversed(list(enumerate(header)))}
        label = label_column(header) if header else -1
        self.features = [column for i, column in enumerate(header) if i != label]
        wanted = [header.index(column) for column in self.features]
        complete = [r for r in records if all(i < len(r) and r[i].strip() for i in wanted)]
        self.rows = (complete or records)[:ROWS]
        self.placeholders: list[str] = []

    # ------------------------------------------------------------------------- structure

    def resolve(self, node: Any) -> dict[str, Any]:
        """``node`` with its ``$ref`` followed and an ``Optional``'s null branch dropped."""
        for _ in range(MAX_DEPTH):
            if not isinstance(node, dict):
                return {}
            ref = node.get("$ref")
            if isinstance(ref, str):
                node = self.defs.get(ref.rsplit("/", 1)[-1], {})
                continue
            options = node.get("anyOf") or node.get("oneOf") or node.get("allOf")
            if isinstance(options, list) and options and "type" not in node:
                kept = [o for o in options if not (isinstance(o, dict) and o.get("type") == "null")]
                node = kept[0] if kept else options[0]
                continue
            return node
        return {}

    def fields(self, node: dict[str, Any], row: int, depth: int) -> dict[str, Any]:
        """An object of the model's fields: the required ones, and those a column fills."""
        node = self.resolve(node)
        required = set(node.get("required") or [])
        body = {}
        for key, sub in (node.get("properties") or {}).items():
            if key in required or self.column(key) is not None:
                body[key] = self.fill(sub, key, row, depth + 1)
        return body

    def fill(self, node: Any, name: str, row: int, depth: int) -> Any:
        node = self.resolve(node)
        kind = node.get("type")
        if depth > MAX_DEPTH:
            return None
        if kind == "dataframe":
            return self.frame(node, name)
        if kind == "tensor":
            return self.matrix()
        if "properties" in node:
            return self.fields(node, row, depth)
        if kind == "object":  # a dict of anything: one row of the features
            return {column: self.cell(column, row, {}) for column in self.features}
        if kind == "array":
            items = self.resolve(node.get("items"))
            if items.get("type") in ("array", "tensor"):
                return self.matrix()
            if "properties" in items or items.get("type") in ("object", "dataframe"):
                return [self.fill(items, name, i, depth + 1) for i in range(self.count)]
            if self.column(name) is not None:  # a list of one column's values
                return [self.scalar(items, name, i) for i in range(self.count)]
            return [self.cell(column, row, items) for column in self.features]
        return self.scalar(node, name, row)

    @property
    def count(self) -> int:
        return max(1, min(ROWS, len(self.rows))) if self.rows else ROWS

    # ---------------------------------------------------------------------------- values

    def column(self, name: str) -> int | None:
        return self.index.get(_norm(name)) if name else None

    def text(self, column: int, row: int) -> str | None:
        if row >= len(self.rows) or column >= len(self.rows[row]):
            return None
        text = self.rows[row][column].strip()
        return text or None

    def scalar(self, node: dict[str, Any], name: str, row: int) -> Any:
        """The field's cell in ``row`` as its type; else its default, an example, its first
        allowed value, or a placeholder (noted)."""
        column = self.column(name)
        text = self.text(column, row) if column is not None else None
        if text is not None:
            converted = _convert(node, text)
            if converted is not None:
                return converted
        for key in ("default", "const"):
            if key in node:
                return node[key]
        for key in ("examples", "enum"):
            if isinstance(node.get(key), list) and node[key]:
                return node[key][0]
        self.placeholders.append(name or "value")
        return _PLACEHOLDERS.get(str(node.get("type")), 0)

    def cell(self, column: str, row: int, node: dict[str, Any]) -> Any:
        """A feature's value in ``row``, as ``node``'s type where it says one."""
        text = self.text(self.header.index(column), row)
        if text is None:
            self.placeholders.append(column)
            return 0
        converted = _convert(node, text) if node.get("type") else value(text)
        return 0 if converted is None else converted

    def frame(self, node: dict[str, Any], name: str) -> Any:
        """A DataFrame as BentoML's DataframeSchema reads it, in its orient."""
        columns = [str(c) for c in node.get("columns") or []] or self.features
        if not self.header:
            self.placeholders.extend(columns or [name])
        records = []
        for row in range(self.count):
            record = {}
            for column in columns:
                index = self.column(column)
                text = self.text(index, row) if index is not None else None
                if text is None:
                    self.placeholders.append(column)
                record[column] = 0 if text is None else value(text)
            records.append(record)
        if node.get("orient") == "columns":
            return {column: [record[column] for record in records] for column in columns}
        return records

    def matrix(self) -> list[list[Any]]:
        """Rows of the numeric features (an array of arrays, a numpy array)."""
        rows = [[self.cell(column, row, {}) for column in self.features] for row in range(2)]
        numeric = [
            i
            for i in range(len(self.features))
            if all(isinstance(r[i], int | float) and not isinstance(r[i], bool) for r in rows)
        ]
        if not numeric:
            self.placeholders.append("the rows of numbers")
            return [[0.0] for _ in rows]
        return [[r[i] for i in numeric] for r in rows[: self.count]]


def _norm(name: str) -> str:
    return "".join(ch for ch in name.lower() if ch.isalnum())


def _convert(node: dict[str, Any], text: str) -> Any:
    """A CSV cell as the JSON type ``node`` asks for; None when it is not one."""
    kind = node.get("type")
    allowed = node.get("enum")
    if isinstance(allowed, list) and allowed:
        matches = [option for option in allowed if str(option) == text]
        return matches[0] if matches else None
    try:
        if kind == "integer":
            number = float(text)
            return int(number) if number.is_integer() else None
        if kind == "number":
            return float(text)
    except ValueError:
        return None
    if kind == "boolean":
        lowered = text.lower()
        return lowered in _TRUE if lowered in _TRUE | {"0", "false", "no", "n", "f"} else None
    if kind == "string":
        return text
    return value(text)
