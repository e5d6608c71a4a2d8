"""Strict validation of parsed TOML into frozen dataclasses.

relman.toml is small and its models are plain dataclasses: the type annotations say what each
key holds (``str``, ``int``, ``float``, ``bool``, ``Literal[...]``, ``list[X]``,
``dict[str, X]``, unions with ``None``, and nested models), and a field's ``metadata`` adds
the constraints (``gt``, ``ge``, ``le``, ``pattern``, ``min_length``, ``item_min_length``
for every string inside, ``key_pattern`` for the names of a table's entries).

Why not pydantic: building pydantic's models cost about 100 ms at every start of relman,
a third of ``relman status``; this validator is about 300 lines of code the team owns and
costs a few milliseconds. Validation is strict (TOML is typed: ``"3000"`` is not a port) and
collects every problem, each as ``{"loc", "type", "msg", "input"}`` so the caller can point
at the file's line: ``type`` is ``missing``, ``extra_forbidden``, ``bad_name`` (the name of
a table's entry, at the entry's own location) or ``value_error``.
"""

from __future__ import annotations

import dataclasses
import re
import reprlib
import types
import typing
from collections.abc import Mapping
from typing import Any, ClassVar, TypeVar, dataclass_transform

T = TypeVar("T", bound="Model")
M = TypeVar("M", bound="Model")

Problem = dict[str, Any]
Location = tuple[str | int, ...]

# The field a model may declare to learn which keys its table really set.
FIELDS_SET = "fields_set"


class SchemaError(ValueError):
    """The data does not fit the model; ``problems`` lists every reason, in key order."""

    def __init__(self, problems: list[Problem]) -> None:
        self.problems = problems
        first = problems[0]
        where = ".".join(str(part) for part in first["loc"]) or "the top level"
        super().__init__(f"{where}: {first['msg']}")


@dataclass_transform(
    kw_only_default=True, frozen_default=True, field_specifiers=(dataclasses.field,)
)
def toml_table(cls: type[M]) -> type[M]:
    """Make ``cls`` (a :class:`Model`, one table of relman.toml) a frozen, keyword-only
    dataclass whose ``__init__``, ``__eq__``, ``__hash__``, ``__repr__`` and frozenness are
    :class:`Model`'s: what ``@dataclass(frozen=True, kw_only=True)`` does, from one
    implementation instead of six methods generated per class, which Python 3.11 compiles
    from their source at every import (for relman.toml's 24 tables, most of relman's own
    start-up beyond Textual's: docs/architecture.md, "Start-up"). ``dataclasses.fields``,
    ``replace`` and ``asdict`` work as on any dataclass."""
    dataclasses.dataclass(cls, init=False, repr=False, eq=False, kw_only=True)
    fields = dataclasses.fields(cls)
    _SHAPES[cls] = _Shape(
        init=tuple((f.name, f.default, f.default_factory) for f in fields),
        shown=tuple(f.name for f in fields if f.repr),
        compared=tuple(f.name for f in fields if f.compare),
        hashed=tuple(f.name for f in fields if (f.compare if f.hash is None else f.hash)),
    )
    return cls


class _Shape:
    """What :class:`Model`'s methods do with the fields of one table."""

    def __init__(
        self,
        *,
        init: tuple[tuple[str, Any, Any], ...],
        shown: tuple[str, ...],
        compared: tuple[str, ...],
        hashed: tuple[str, ...],
    ) -> None:
        self.init = init  # (name, default, default_factory), in order
        self.shown = shown  # by __repr__
        self.compared = compared  # by __eq__
        self.hashed = hashed  # by __hash__


_SHAPES: dict[type, _Shape] = {}


class Model:
    """Base of the validated dataclasses (each made one by :func:`toml_table`):
    ``Model.from_data(mapping)`` checks and builds."""

    __dataclass_fields__: ClassVar[dict[str, dataclasses.Field[Any]]]

    def __init__(self, **values: Any) -> None:
        for name, default, factory in _SHAPES[type(self)].init:
            if name in values:
                value = values.pop(name)
            elif default is not dataclasses.MISSING:
                value = default
            elif factory is not dataclasses.MISSING:
                value = factory()
            else:
                raise TypeError(
                    f"{type(self).__qualname__}() missing 1 required keyword-only argument: "
                    f"{name!r}"
                )
            object.__setattr__(self, name, value)
        if values:
            raise TypeError(
                f"{type(self).__qualname__}() got an unexpected keyword argument "
                f"{next(iter(values))!r}"
            )

    @reprlib.recursive_repr()
    def __repr__(self) -> str:
        shown = ", ".join(f"{name}={getattr(self, name)!r}" for name in _SHAPES[type(self)].shown)
        return f"{type(self).__qualname__}({shown})"

    def __eq__(self, other: object) -> bool:
        if other.__class__ is not self.__class__:
            return NotImplemented
        names = _SHAPES[type(self)].compared
        return tuple(getattr(self, n) for n in names) == tuple(getattr(other, n) for n in names)

    def __hash__(self) -> int:
        return hash(tuple(getattr(self, name) for name in _SHAPES[type(self)].hashed))

    def __setattr__(self, name: str, value: Any) -> None:
        raise dataclasses.FrozenInstanceError(f"cannot assign to field {name!r}")

    def __delattr__(self, name: str) -> None:
        raise dataclasses.FrozenInstanceError(f"cannot delete field {name!r}")

    @classmethod
    def from_data(cls: type[T], data: Mapping[str, Any]) -> T:
        """Build from parsed TOML, or raise :class:`SchemaError` with every problem."""
        problems: list[Problem] = []
        built = _build_model(cls, data, (), problems)
        if problems:
            raise SchemaError(problems)
        return typing.cast(T, built)


# ------------------------------------------------------------------------------ internals

_BAD = object()  # a value that failed; its problem is already recorded
_PLAN_CACHE: dict[type, list[tuple[str, Any, Mapping[str, Any], bool]]] = {}


def _plan(cls: type) -> list[tuple[str, Any, Mapping[str, Any], bool]]:
    """Each field of ``cls``: name, resolved annotation, constraints, required (cached)."""
    plan = _PLAN_CACHE.get(cls)
    if plan is None:
        hints = typing.get_type_hints(cls)  # each class's own module resolves its names
        plan = []
        for field in dataclasses.fields(cls):
            if field.name == FIELDS_SET or not field.init:
                continue
            required = (
                field.default is dataclasses.MISSING
                and field.default_factory is dataclasses.MISSING
            )
            plan.append((field.name, hints[field.name], field.metadata, required))
        _PLAN_CACHE[cls] = plan
    return plan


def _rest_field(cls: type) -> tuple[str, Any, Mapping[str, Any]] | None:
    """The field (name, annotation, constraints) that takes a table's keys no other field
    names: ``metadata={"rest": True}`` on a ``dict[str, X]`` field."""
    for name, kind, rules, _ in _plan(cls):
        if rules.get("rest"):
            return name, kind, rules
    return None


def _is_model(kind: Any) -> bool:
    return isinstance(kind, type) and issubclass(kind, Model)


def _build_model(cls: type, data: Any, loc: Location, problems: list[Problem]) -> Any:
    if not isinstance(data, Mapping):
        _problem(problems, loc, "input should be a table", data)
        return _BAD
    plan = _plan(cls)
    known = {name for name, _, rules, _ in plan if not rules.get("rest")}
    values: dict[str, Any] = {}
    before = len(problems)
    for name, kind, rules, required in plan:
        if rules.get("rest"):
            continue
        if name not in data:
            if required:
                problems.append(
                    {"loc": (*loc, name), "type": "missing", "msg": "missing", "input": data}
                )
            continue
        value = _check(kind, data[name], rules, (*loc, name), problems)
        if value is not _BAD:
            values[name] = value
    rest = _rest_field(cls)
    extra = {key: data[key] for key in data if key not in known}
    if rest is not None and extra:
        # The table's other keys are the entries of this dict field ([pipelines.NAME] beside
        # [[pipelines.assign]]), each at its own location.
        name, kind, rules = rest
        checked = _check(kind, extra, rules, loc, problems)
        if checked is not _BAD:
            values[name] = checked
        extra = {}
    for key in extra:
        if key not in known:
            problems.append(
                {
                    "loc": (*loc, key),
                    "type": "extra_forbidden",
                    "msg": "unknown key",
                    "input": data[key],
                }
            )
    if len(problems) > before:
        return _BAD
    if any(field.name == FIELDS_SET for field in dataclasses.fields(cls)):
        values[FIELDS_SET] = frozenset(values)
    return cls(**values)


def _check(
    kind: Any, value: Any, rules: Mapping[str, Any], loc: Location, problems: list[Problem]
) -> Any:
    origin = typing.get_origin(kind)
    if origin in (typing.Union, types.UnionType):
        return _check_union(typing.get_args(kind), value, rules, loc, problems)
    if origin is typing.Literal:
        choices = typing.get_args(kind)
        if value in choices and type(value) in {type(c) for c in choices}:
            return value
        shown = " or ".join(repr(choice) for choice in choices)
        return _problem(problems, loc, f"input should be {shown}", value)
    if origin is list:
        return _check_list(typing.get_args(kind)[0], value, rules, loc, problems)
    if origin is dict:
        return _check_dict(typing.get_args(kind)[1], value, rules, loc, problems)
    if _is_model(kind):
        return _build_model(kind, value, loc, problems)
    if kind is str:
        return _check_str(value, rules, loc, problems)
    if kind is bool:
        if isinstance(value, bool):
            return value
        return _problem(problems, loc, "input should be a valid boolean", value)
    if kind is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return _check_bounds(value, rules, loc, problems)
        return _problem(problems, loc, "input should be a valid integer", value)
    if kind is float:
        if isinstance(value, int | float) and not isinstance(value, bool):
            try:
                number = float(value)
            except OverflowError:
                return _problem(problems, loc, "input is too large a number", value)
            return _check_bounds(number, rules, loc, problems)
        return _problem(problems, loc, "input should be a valid number", value)
    raise TypeError(f"core.config.schema cannot check {kind!r} at {'.'.join(map(str, loc))}")


def _check_union(
    options: tuple[Any, ...],
    value: Any,
    rules: Mapping[str, Any],
    loc: Location,
    problems: list[Problem],
) -> Any:
    options = tuple(option for option in options if option is not type(None))
    if len(options) == 1:
        return _check(options[0], value, rules, loc, problems)
    # Pick the option whose shape fits (a string or a list); report that option's problem.
    for option in options:
        origin = Mapping if _is_model(option) else (typing.get_origin(option) or option)
        if isinstance(value, origin):
            return _check(option, value, rules, loc, problems)
    names = " or ".join(_describe(option) for option in options)
    return _problem(problems, loc, f"input should be {names}", value)


def _describe(kind: Any) -> str:
    origin = typing.get_origin(kind) or kind
    if _is_model(kind):
        return "a table"
    return {str: "a string", list: "a list", dict: "a table", int: "an integer"}.get(
        origin, getattr(origin, "__name__", str(origin))
    )


def _check_list(
    item: Any, value: Any, rules: Mapping[str, Any], loc: Location, problems: list[Problem]
) -> Any:
    if not isinstance(value, list):
        return _problem(problems, loc, "input should be a valid list", value)
    if _too_short("list", "item", value, rules, loc, problems):
        return _BAD
    item_rules = {"item_min_length": rules["item_min_length"]} if "item_min_length" in rules else {}
    before = len(problems)
    checked = [
        _check(item, entry, item_rules, (*loc, index), problems)
        for index, entry in enumerate(value)
    ]
    return _BAD if len(problems) > before else checked


def _too_short(
    noun: str,
    unit: str,
    value: list[Any] | Mapping[str, Any],
    rules: Mapping[str, Any],
    loc: Location,
    problems: list[Problem],
) -> bool:
    minimum = rules.get("min_length")
    if minimum is None or len(value) >= minimum:
        return False
    _problem(
        problems, loc, f"{noun} should have at least {minimum} {unit}, not {len(value)}", value
    )
    return True


def _check_dict(
    item: Any, value: Any, rules: Mapping[str, Any], loc: Location, problems: list[Problem]
) -> Any:
    if not isinstance(value, Mapping):
        return _problem(problems, loc, "input should be a table", value)
    if _too_short("table", "entry", value, rules, loc, problems):
        return _BAD
    pattern = rules.get("key_pattern")
    before = len(problems)
    checked: dict[str, Any] = {}
    for key, entry in value.items():
        if pattern is not None and not re.match(pattern, key):
            message = rules.get("key_message", "bad name").format(key=key)
            problems.append({"loc": (*loc, key), "type": "bad_name", "msg": message, "input": key})
            continue
        checked[key] = _check(item, entry, {}, (*loc, key), problems)
    return _BAD if len(problems) > before else checked


def _check_str(value: Any, rules: Mapping[str, Any], loc: Location, problems: list[Problem]) -> Any:
    if not isinstance(value, str):
        return _problem(problems, loc, "input should be a valid string", value)
    minimum = rules.get("min_length", rules.get("item_min_length"))
    if minimum is not None and len(value) < minimum:
        return _problem(problems, loc, f"string should have at least {minimum} character", value)
    pattern = rules.get("pattern")
    if pattern is not None and not re.match(pattern, value):
        return _problem(problems, loc, f"string should match pattern '{pattern}'", value)
    return value


def _check_bounds(
    value: float, rules: Mapping[str, Any], loc: Location, problems: list[Problem]
) -> Any:
    for rule, words in (
        ("gt", "greater than"),
        ("ge", "greater than or equal to"),
        ("le", "less than or equal to"),
        ("lt", "less than"),
    ):
        limit = rules.get(rule)
        if limit is None:
            continue
        holds = {
            "gt": value > limit,
            "ge": value >= limit,
            "le": value <= limit,
            "lt": value < limit,
        }[rule]
        if not holds:
            return _problem(problems, loc, f"input should be {words} {limit}", value)
    return value


def _problem(problems: list[Problem], loc: Location, message: str, value: Any) -> Any:
    problems.append({"loc": loc, "type": "value_error", "msg": message, "input": value})
    return _BAD
