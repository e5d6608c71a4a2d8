"""The ``artifacts:`` section of a dvc.yaml read as text, for the TUI's first paint of a
repository without relman.toml (core/lineage/infer.py ``quick_reading``): PyYAML's import
and the construction of every stage cost it ~25 ms on a pipeline of 200 stages, where only a
few lines are needed.

Only plain block style is read: ``artifacts:`` at the left margin, one ``NAME:`` per
artifact, its keys one level deeper as ``key: scalar``. Anything else in the section (flow
style, anchors, aliases, block scalars, tags, tabs, keys repeated) returns None, and the
caller loads the file with YAML instead, so what is read is always what YAML would read.
"""

from __future__ import annotations

import re

__all__ = ["artifacts_section"]

# A key at some indent, its value after ": " (or none), a comment after " #".
_ENTRY = re.compile(r"^( *)([A-Za-z0-9_][A-Za-z0-9_.\-/]*)\s*:(?:\s+(.*?))?\s*$")
# A plain scalar read as a string by YAML: no indicator first, no ": " or " #" inside.
_PLAIN = re.compile(r"^[A-Za-z0-9_./][A-Za-z0-9_./\-+=,() ]*$")
_SPECIAL = frozenset({"null", "~", "true", "false", "yes", "no", "on", "off", "y", "n"})
_NUMBER = re.compile(
    r"^[-+]?(\.?[0-9][0-9_]*(\.[0-9_]*)?([eE][-+]?[0-9]+)?|0x[0-9a-fA-F_]+|\.inf|\.nan)$"
)
READ = ("path", "type")  # the keys of an artifact that are read; the others are skipped
_TOP_KEY = re.compile(r"^[A-Za-z0-9_\"']")


def _scalar(text: str) -> str | None:
    """A plain or simply quoted string scalar, as YAML reads it; None for anything else
    (a number, a boolean, null, an escape, flow style, a comment glued to it)."""
    if text[:1] in ("'", '"'):
        quote = text[0]
        end = text.find(quote, 1)
        rest = text[end + 1 :].strip() if end > 0 else "x"
        inner = text[1:end]
        if (rest and not rest.startswith("#")) or "\\" in inner or quote in inner:
            return None
        return inner
    value = text.split(" #", 1)[0].strip()
    if not _PLAIN.match(value) or value.lower() in _SPECIAL or _NUMBER.match(value):
        return None
    return value


def artifacts_section(text: str) -> dict[str, dict[str, str]] | None:
    """``{name: {key: value}}`` of the file's ``artifacts:`` (only each artifact's scalar
    keys; {} when there is no such section), or None where the text is not the plain block
    style this reads exactly."""
    if "\t" in text or text.startswith("%"):
        return None
    lines = text.splitlines()
    starts = [i for i, line in enumerate(lines) if re.match(r"^artifacts\s*:", line)]
    if not starts:  # none, unless written in a way this does not read (quoted, flow style)
        quoted = re.search(r"^[\"']artifacts[\"']\s*:", text, re.MULTILINE)
        return None if quoted or text.lstrip().startswith("{") else {}
    if len(starts) > 1 or lines[starts[0]].split(":", 1)[1].split("#", 1)[0].strip():
        return None  # a repeated key, or a value on the key's own line (flow style)
    found: dict[str, dict[str, str]] = {}
    name_indent: int | None = None
    key_indent: int | None = None
    current: dict[str, str] | None = None
    deeper: int | None = None  # the indent of a key whose value is a nested block
    for line in lines[starts[0] + 1 :]:
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            continue
        if _TOP_KEY.match(line) or line.startswith("---") or line.startswith("..."):
            break  # the next top-level key (or document): the section ended
        indent = len(line) - len(line.lstrip(" "))
        if deeper is not None:
            if indent > deeper or (indent == deeper and stripped.startswith("- ")):
                continue  # inside a nested list or mapping, which is not read
            deeper = None
        match = _ENTRY.match(line)
        if match is None:
            return None
        spaces, key, value = len(match.group(1)), match.group(2), match.group(3)
        if name_indent is None:
            name_indent = spaces
        if spaces == name_indent:
            if (value is not None and value.split("#", 1)[0].strip()) or key in found:
                return None  # an artifact written on one line, or twice
            if key.lower() in _SPECIAL or _NUMBER.match(key):
                return None  # a name YAML reads as a boolean, null or number (`on:`)
            current = found[key] = {}
            key_indent = None
            continue
        if current is None or spaces < name_indent:
            return None
        if key_indent is None:
            key_indent = spaces
        if spaces != key_indent or key in current:
            return None
        text = (
            (value or "").split(" #", 1)[0].strip()
            if not (value or "").startswith(("'", '"'))
            else (value or "")
        )
        if key not in READ:
            if not text or text[0] in "|>":
                deeper = spaces  # a nested block (labels:, meta:) or a block scalar: skipped
            elif (text[0] in "[{" and text[-1] not in "]}") or text[0] in "&*!":
                return None  # flow style over several lines, an anchor, an alias, a tag
            continue
        scalar = _scalar(text) if text else None
        if scalar is None:
            return None
        current[key] = scalar
    return found
