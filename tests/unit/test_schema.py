"""core/config/schema.py: strict checks of parsed TOML against frozen dataclasses."""

from __future__ import annotations

from dataclasses import FrozenInstanceError, dataclass, field
from typing import Literal

import pytest

from core.config.schema import Model, SchemaError


@dataclass(frozen=True, kw_only=True)
class Inner(Model):
    size: int = field(metadata={"ge": 1})
    ratio: float = 0.5
    fields_set: frozenset[str] = frozenset()


@dataclass(frozen=True, kw_only=True)
class Outer(Model):
    name: str = field(metadata={"pattern": r"^[a-z]+$"})
    mode: Literal["fast", "slow"] = "fast"
    flag: bool = False
    tags: list[str] = field(default_factory=list, metadata={"min_length": 1})
    globs: str | list[str] | None = field(default=None, metadata={"item_min_length": 1})
    parts: dict[str, Inner] = field(default_factory=dict, metadata={"key_pattern": r"^[a-z]+$"})
    inner: Inner | None = None


def _problems(data: dict[str, object]) -> list[tuple[tuple[str | int, ...], str, str]]:
    with pytest.raises(SchemaError) as caught:
        Outer.from_data(data)
    return [(p["loc"], p["type"], p["msg"]) for p in caught.value.problems]


def test_valid_data_builds_the_model_with_defaults_and_converted_numbers() -> None:
    built = Outer.from_data(
        {"name": "a", "tags": ["x"], "globs": ["p*"], "parts": {"b": {"size": 2, "ratio": 1}}}
    )
    assert built.mode == "fast" and built.flag is False and built.inner is None
    assert built.parts["b"].ratio == 1.0 and isinstance(built.parts["b"].ratio, float)
    assert built.parts["b"].fields_set == frozenset({"size", "ratio"})
    with pytest.raises(FrozenInstanceError):
        built.name = "b"  # type: ignore[misc]


def test_every_problem_is_collected_with_its_location() -> None:
    problems = _problems(
        {
            "name": "A",
            "mode": "medium",
            "flag": 1,
            "tags": [],
            "globs": ["ok", ""],
            "parts": {"b": {"size": 0, "extra": 1}, "C": {"size": 1}},
            "inner": {},
            "bogus": True,
        }
    )
    assert problems == [
        (("name",), "value_error", "string should match pattern '^[a-z]+$'"),
        (("mode",), "value_error", "input should be 'fast' or 'slow'"),
        (("flag",), "value_error", "input should be a valid boolean"),
        (("tags",), "value_error", "list should have at least 1 item, not 0"),
        (("globs", 1), "value_error", "string should have at least 1 character"),
        (("parts", "b", "size"), "value_error", "input should be greater than or equal to 1"),
        (("parts", "b", "extra"), "extra_forbidden", "unknown key"),
        (("parts", "C"), "bad_name", "bad name"),
        (("inner", "size"), "missing", "missing"),
        (("bogus",), "extra_forbidden", "unknown key"),
    ]


@pytest.mark.parametrize(
    ("key", "value", "message"),
    [
        ("name", 3, "input should be a valid string"),
        ("flag", "true", "input should be a valid boolean"),
        ("tags", "x", "input should be a valid list"),
        ("globs", 3, "input should be a string or a list"),
        ("parts", [], "input should be a table"),
        ("inner", {"size": "2"}, "input should be a valid integer"),
        ("inner", {"size": True}, "input should be a valid integer"),
        ("inner", {"size": 2.0}, "input should be a valid integer"),
        ("inner", {"size": 1, "ratio": "0.5"}, "input should be a valid number"),
        ("inner", {"size": 1, "ratio": False}, "input should be a valid number"),
        ("inner", {"size": 1, "ratio": 10**400}, "input is too large a number"),
    ],
)
def test_types_are_strict(key: str, value: object, message: str) -> None:
    problems = _problems({"name": "a", key: value})
    assert [p[2] for p in problems] == [message]


def test_a_missing_required_key_is_named() -> None:
    assert _problems({}) == [(("name",), "missing", "missing")]
