"""Where relman.toml's error messages point, by property: for TOML documents written by the
small writer below, the line ``core.config.lines`` reports for each key is the line the key
is on. The key paths are those schema validation reports (``loc``): table names, keys,
dotted keys, inline tables, arrays of tables by index (``("monitoring", "assign", "1",
"match")``) and items of inline lists (their key's line).

The writer varies what a person varies: indentation, spacing around ``=``, ``.`` and the
brackets, quoted and bare keys, dotted keys, comments after a value or on their own line
(holding text that looks like TOML), blank lines, and strings holding ``=``, ``#``, ``[``
and ``{``. tomllib reads every document back to the same data, so each is valid TOML.
"""

from __future__ import annotations

import random
import tomllib
from dataclasses import dataclass, field
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from core.config.lines import key_lines, line_for

FAST = settings(max_examples=120, deadline=None, database=None)

Loc = tuple[str, ...]

# ---------------------------------------------------------------------------- the documents


@dataclass
class Table:
    values: dict[str, Any] = field(default_factory=dict)  # scalars, lists, inline tables
    tables: dict[str, Table] = field(default_factory=dict)  # [sections] or dotted keys
    arrays: dict[str, list[Table]] = field(default_factory=dict)  # [[arrays of tables]]
    dotted: bool = False  # written as dotted keys in its parent's section

    def data(self) -> dict[str, Any]:
        """What tomllib reads back for this table."""
        out: dict[str, Any] = dict(self.values)
        out.update({name: table.data() for name, table in self.tables.items()})
        out.update({name: [t.data() for t in entries] for name, entries in self.arrays.items()})
        return out


BARE = st.from_regex(r"[a-z][a-z0-9_-]{0,6}", fullmatch=True)
# Quoted keys hold what a bare key cannot: a space, a dot, TOML's punctuation, a capital.
# (Not quotes nor backslashes: the scanner reads no escapes inside a quoted key.)
QUOTED = st.text("ab Z.#=[]{},-_é", min_size=1, max_size=6)
NAMES = BARE | QUOTED
TEXTS = st.text(st.characters(codec="utf-8", exclude_categories=("Cs", "Cc")), max_size=12)
TEXTS |= st.sampled_from(["a = b", "[x]", "{ k = 1 }", "# no comment", "x, y = 2", "'", '"'])
SCALARS = (
    st.integers(-(10**9), 10**9)
    | st.floats(allow_nan=False, allow_infinity=False, width=32)
    | st.booleans()
    | TEXTS
)
INLINE = st.recursive(
    SCALARS,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(NAMES, inner, max_size=3),
    max_leaves=4,
)


def tables(depth: int) -> st.SearchStrategy[Table]:
    values = st.dictionaries(NAMES, INLINE, max_size=3)
    if depth == 0:
        return st.builds(Table, values=values)
    sub = tables(depth - 1)
    return st.builds(
        Table,
        values=values,
        tables=st.dictionaries(NAMES, sub, max_size=2),
        arrays=st.dictionaries(NAMES, st.lists(sub, min_size=1, max_size=2), max_size=1),
    )


@st.composite
def documents(draw: st.DrawFn) -> Table:
    root = draw(tables(2))
    # Names are unique per table across values, tables and arrays (TOML forbids redefining).
    _dedupe(root)
    _choose_dotted(root, draw)
    return root


def _dedupe(table: Table) -> None:
    for name in list(table.tables):
        if name in table.values:
            del table.tables[name]
    for name in list(table.arrays):
        if name in table.values or name in table.tables:
            del table.arrays[name]
    for sub in [*table.tables.values(), *(t for ts in table.arrays.values() for t in ts)]:
        _dedupe(sub)


def _choose_dotted(table: Table, draw: st.DrawFn) -> None:
    """Sub-tables holding only values (and such tables) may be written as dotted keys."""
    for sub in table.tables.values():
        _choose_dotted(sub, draw)
        # A dotted table without values would not be written at all (nor exist in TOML).
        only_values = bool(sub.values) and not sub.arrays
        sub.dotted = only_values and all(t.dotted for t in sub.tables.values())
        sub.dotted = sub.dotted and draw(st.booleans())
    for entries in table.arrays.values():
        for entry in entries:
            _choose_dotted(entry, draw)


# ------------------------------------------------------------------------------- the writer


class Writer:
    """Writes a Table as TOML, noting the line of each key path it writes."""

    def __init__(self, style: random.Random) -> None:
        self.style = style  # the cosmetics: cheaper drawn from one seeded Random
        self.lines: list[str] = []
        self.expected: dict[Loc, int] = {}

    def line(self, text: str) -> int:
        if self.style.random() < 0.2:  # now and then a comment line or a blank one
            self.lines.append(self.style.choice(["", "# a = 1", "  # [x.y]", "#"]))
        indent = self.style.choice(["", "", "  ", "\t"])
        comment = self.style.choice(["", "", "  # x = [1]", " #note"])
        self.lines.append(indent + text + comment)
        return len(self.lines)

    def key(self, name: str) -> str:
        bare = self.style.random() < 0.7 and name == name.lower() and _is_bare(name)
        if bare:
            return name
        if "'" not in name and self.style.random() < 0.5:
            return f"'{name}'"
        return _basic(name)

    def dotted(self, names: Loc) -> str:
        dot = self.style.choice([".", " . ", ". "])
        return dot.join(self.key(name) for name in names)

    def assign(self, keys: Loc, value: Any, loc: Loc) -> None:
        space = self.style.choice(["=", " = ", "  =  ", " ="])
        number = self.line(f"{self.dotted(keys)}{space}{_value(value, self)}")
        for path in _paths(value, loc):
            self.expected[path] = number

    def table(self, table: Table, loc: Loc, keys: Loc) -> None:
        """Write ``table`` (its header, if any, already written), then its sub-sections."""
        self.values(table, loc, keys=())
        for name, sub in table.tables.items():
            if sub.dotted:
                continue
            number = self.header(f"{self.dotted((*keys, name))}", "[", "]")
            self.expected[(*loc, name)] = number
            self.table(sub, (*loc, name), (*keys, name))
        for name, entries in table.arrays.items():
            for index, entry in enumerate(entries):
                number = self.header(f"{self.dotted((*keys, name))}", "[[", "]]")
                self.expected[(*loc, name, str(index))] = number
                self.table(entry, (*loc, name, str(index)), (*keys, name))

    def values(self, table: Table, loc: Loc, keys: Loc) -> None:
        """The values of ``table``, dotted sub-tables included, relative to a section."""
        for name, value in table.values.items():
            self.assign((*keys, name), value, (*loc, name))
        for name, sub in table.tables.items():
            if sub.dotted:
                self.values(sub, (*loc, name), (*keys, name))

    def header(self, inside: str, left: str, right: str) -> int:
        pad = self.style.choice(["", " "])
        return self.line(f"{left}{pad}{inside}{pad}{right}")


def _is_bare(name: str) -> bool:
    return all(c.isascii() and (c.isalnum() or c in "-_") for c in name)


def _basic(text: str) -> str:
    escaped = text.replace("\\", "\\\\").replace('"', '\\"')
    return '"' + "".join(c if c.isprintable() else _escape(c) for c in escaped) + '"'


def _escape(char: str) -> str:
    return f"\\u{ord(char):04x}" if ord(char) <= 0xFFFF else f"\\U{ord(char):08x}"


def _value(value: Any, writer: Writer) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, str):
        return _basic(value)
    if isinstance(value, list):
        return "[" + ", ".join(_value(item, writer) for item in value) + "]"
    items = [f"{writer.key(k)} = {_value(v, writer)}" for k, v in value.items()]
    return "{ " + ", ".join(items) + " }" if items else "{}"


def _paths(value: Any, loc: Loc) -> list[Loc]:
    """``loc`` and every path below it inside an inline value, as validation names them."""
    found = [loc]
    if isinstance(value, list):
        for index, item in enumerate(value):
            found += _paths(item, (*loc, str(index)))
    elif isinstance(value, dict):
        for name, item in value.items():
            found += _paths(item, (*loc, name))
    return found


@st.composite
def written(draw: st.DrawFn) -> tuple[str, dict[Loc, int], dict[str, Any]]:
    root = draw(documents())
    writer = Writer(draw(st.randoms(use_true_random=False)))
    writer.table(root, (), ())
    return "\n".join(writer.lines) + "\n", writer.expected, root.data()


# -------------------------------------------------------------------------------- the property


@FAST
@given(document=written())
def test_the_line_reported_for_each_key_is_the_line_it_is_on(
    document: tuple[str, dict[Loc, int], dict[str, Any]],
) -> None:
    text, expected, data = document
    assert tomllib.loads(text) == data  # the writer wrote valid TOML, meaning what we think
    lines = key_lines(text)
    wrong = {
        loc: (line_for(lines, loc), line)
        for loc, line in expected.items()
        if line_for(lines, loc) != line
    }
    assert not wrong, f"(reported, real) lines differ for {wrong}\n{text}"
