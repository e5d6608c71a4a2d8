"""core/config/schema.py: strict checks of parsed TOML against frozen dataclasses."""

from __future__ import annotations

from dataclasses import FrozenInstanceError, dataclass, field
from typing import Literal

import pytest

from core.config.schema import Model, SchemaError, toml_table


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


@toml_table
class Table(Model):
    """A table made by toml_table, beside Generated, the same made by dataclasses."""

    name: str
    tags: list[str] = field(default_factory=list)
    size: int = 1
    note: str = field(default="", compare=False, repr=False)


@dataclass(frozen=True, kw_only=True)
class Generated(Model):
    name: str
    tags: list[str] = field(default_factory=list)
    size: int = 1
    note: str = field(default="", compare=False, repr=False)


def test_a_toml_table_behaves_as_the_frozen_dataclass_it_replaces() -> None:
    from dataclasses import asdict, fields, replace

    for kind in (Table, Generated):
        built = kind(name="a", size=2, note="x")
        assert repr(built) == f"{kind.__qualname__}(name='a', tags=[], size=2)"
        assert built == kind(name="a", size=2) and built != kind(name="b", size=2)
        assert built.tags is not kind(name="a").tags  # a fresh default per instance
        assert asdict(replace(built, size=3)) == {"name": "a", "tags": [], "size": 3, "note": "x"}
        assert [f.name for f in fields(kind)] == ["name", "tags", "size", "note"]
        assert kind.__match_args__ == ()
        with pytest.raises(FrozenInstanceError, match="cannot assign to field 'size'"):
            built.size = 4  # type: ignore[misc]
        with pytest.raises(FrozenInstanceError):
            del built.size  # type: ignore[misc]
        with pytest.raises(TypeError, match="'name'"):
            kind()  # type: ignore[call-arg]
        with pytest.raises(TypeError, match="'bogus'"):
            kind(name="a", bogus=1)  # type: ignore[call-arg]
        with pytest.raises(TypeError):
            kind("a")  # type: ignore[misc]
        with pytest.raises(TypeError, match="unhashable"):
            hash(built)  # a list field, as dataclasses hash it
    # None of them generated (and compiled at import) for the class: Model's serve it.
    assert not {"__init__", "__eq__", "__hash__", "__repr__", "__setattr__"} & set(vars(Table))
    frozen = Table(name="a", tags=[])
    assert Table(name="a") != Generated(name="a")  # only the same class compares equal
    assert hash(replace(frozen, tags=())) == hash(replace(frozen, tags=(), note="other"))
    assert Table.from_data({"name": "b", "size": 5}) == Table(name="b", size=5)
