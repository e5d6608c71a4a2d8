"""Reading the committed schemas of docs/schemas/ and checking documents against them."""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path
from typing import Any

from jsonschema import Draft202012Validator

SCHEMAS = Path(__file__).resolve().parents[2] / "docs" / "schemas"


@cache
def validator(name: str) -> Draft202012Validator:
    """The validator of ``docs/schemas/NAME`` (e.g. ``status.json``), as committed."""
    schema = json.loads((SCHEMAS / name).read_text(encoding="utf-8"))
    return Draft202012Validator(schema)


def problems(name: str, document: Any) -> list[str]:
    """Every way ``document`` breaks schema ``name``, one line each: where, and why."""
    found = validator(name).iter_errors(document)
    return [f"{'/'.join(map(str, e.absolute_path)) or '(top)'}: {e.message}" for e in found]
