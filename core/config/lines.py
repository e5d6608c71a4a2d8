"""Where a key of relman.toml is written: its line, for error messages that name it.

tomllib keeps no positions, so :func:`key_lines` scans the text for tables and keys, and
:func:`describe_problems` turns the first problem schema validation found into the one line a
person reads: ``relman.toml:12: unknown key 'bogus_setting' in [environments.prod]``
(:func:`describe_toml_error` for a file that is not TOML at all). relman imports this module
only to describe an error: loading a valid relman.toml needs none of it.
"""

from __future__ import annotations

import re
from typing import Any

# A key path: bare or quoted parts joined by dots. Headers hold one too, so a quoted name
# with "=", "[" or "]" in it is read whole (a bad name's error points at its own line).
_PATH = r"""(?:[A-Za-z0-9_-]+|"[^"]*"|'[^']*')(?:\s*\.\s*(?:[A-Za-z0-9_-]+|"[^"]*"|'[^']*'))*"""
_HEADER = re.compile(rf"^\s*\[\[?\s*({_PATH})\s*\]\]?\s*(#.*)?$")
_KEY = re.compile(rf"^\s*({_PATH})\s*=")
_INLINE_KEY = re.compile(r"""[{,]\s*([A-Za-z0-9_-]+|"[^"]*")\s*=""")


def _split_key(key: str) -> tuple[str, ...]:
    parts = re.findall(r"""[A-Za-z0-9_-]+|"[^"]*"|'[^']*'""", key)
    return tuple(part.strip("\"'") for part in parts)


def key_lines(text: str) -> dict[tuple[str, ...], int]:
    """Map each table and key path of a TOML text to the line that declares it.

    tomllib keeps no positions; this scan covers what relman.toml uses (tables, dotted keys,
    inline tables on one line), which is enough to point a person at the right line.
    """
    found: dict[tuple[str, ...], int] = {}
    table: tuple[str, ...] = ()
    # Arrays of tables ([[a.b]]): the index of their last entry, so that an entry's keys are
    # also found under the path validation errors use, ("a", "b", "1", "key").
    arrays: dict[tuple[str, ...], int] = {}
    indexed: tuple[str, ...] = ()
    for number, raw in enumerate(text.splitlines(), start=1):
        header = _HEADER.match(raw)
        if header:
            table = _split_key(header.group(1))
            found.setdefault(table, number)
            indexed = ()
            for part in table:
                if indexed in arrays:
                    indexed = (*indexed, str(arrays[indexed]))
                indexed = (*indexed, part)
            if raw.lstrip().startswith("[["):
                arrays[indexed] = arrays.get(indexed, -1) + 1
                found.setdefault(indexed, number)
                indexed = (*indexed, str(arrays[indexed]))
            found.setdefault(indexed, number)
            continue
        key = _KEY.match(raw)
        if not key:
            continue
        for prefix in {table, indexed}:
            path = prefix + _split_key(key.group(1))
            found.setdefault(path, number)
            rest = raw[key.end() :]
            for inline in _INLINE_KEY.finditer(rest):
                found.setdefault((*path, inline.group(1).strip('"')), number)
    return found


def line_for(lines: dict[tuple[str, ...], int], loc: tuple[str, ...]) -> int:
    for size in range(len(loc), 0, -1):
        if loc[:size] in lines:
            return lines[loc[:size]]
    return 1


def describe_toml_error(error: ValueError, shown: str) -> str:
    """``relman.toml:3: invalid TOML: ...``: tomllib's reason, its position as a line."""
    match = re.search(r"\(at line (\d+), column (\d+)\)", str(error))
    reason = re.sub(r"\s*\(at line \d+, column \d+\)", "", str(error))
    line = match.group(1) if match else "?"
    return f"{shown}:{line}: invalid TOML: {reason}"


def describe_problems(errors: list[dict[str, Any]], text: str, shown: str) -> str:
    lines = key_lines(text)
    first = errors[0]
    raw = tuple(first["loc"])
    loc = tuple(str(part) for part in raw)
    line = line_for(lines, loc)
    item = ""
    if raw and isinstance(raw[-1], int):  # an entry of an inline list: name its key
        item = f"item {raw[-1] + 1} of "
        loc = loc[:-1]
    table = _table_name(raw[: len(loc) - 1]) if len(loc) > 1 else "the top level"
    key = loc[-1] if loc else "?"
    kind = first["type"]
    if kind == "bad_name":
        message = f"bad name [{'.'.join(loc)}]: {first['msg']}"
    elif kind == "extra_forbidden":
        message = f"unknown key {key!r} in {table}"
    elif kind == "missing":
        message = f"missing key {key!r} in {table}"
    else:
        reason = first["msg"]
        reason = reason[0].lower() + reason[1:] if reason else reason
        got = first.get("input")
        got_text = "" if isinstance(got, dict | list) else f" (got {got!r})"
        where = f"{item}{key!r} in {table}" if loc else "the file"
        message = f"bad value for {where}: {reason}{got_text}"
    more = len(errors) - 1
    suffix = f" (and {more} more problem{'s' if more > 1 else ''})" if more else ""
    return f"{shown}:{line}: {message}{suffix}"


def _table_name(path: tuple[str | int, ...]) -> str:
    """``[environments.prod]``; an entry of an array of tables as the file writes it:
    ``[[monitoring.assign]] #2``, and below it ``[[monitoring.assign]] #2 match``."""
    indexes = [at for at, part in enumerate(path) if isinstance(part, int)]
    if not indexes:
        return "[" + ".".join(str(part) for part in path) + "]"
    at = indexes[-1]
    name = f"[[{'.'.join(str(part) for part in path[:at])}]] #{int(path[at]) + 1}"
    rest = ".".join(str(part) for part in path[at + 1 :])
    return f"{name} {rest}" if rest else name
