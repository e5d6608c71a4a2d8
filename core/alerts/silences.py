"""Alertmanager's silences and the alerts they cover, matched as Alertmanager matches them
(docs/prometheus.md, "Alertmanager"): every matcher of a silence must hold; ``=``, ``!=``,
``=~``, ``!~``; a label an alert lacks reads as the empty string; a regular expression is
anchored at both ends. Read from ``GET /api/v2/silences`` (core.alerts.alertmanager).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from functools import lru_cache
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from core.documents import SilenceEntry

# RE2's POSIX classes (Go's regexp, which Alertmanager uses), inside a bracket expression,
# as Python's re spells them.
_POSIX = {
    "alnum": "0-9A-Za-z",
    "alpha": "A-Za-z",
    "ascii": "\\x00-\\x7f",
    "blank": "\\t ",
    "cntrl": "\\x00-\\x1f\\x7f",
    "digit": "0-9",
    "graph": "!-~",
    "lower": "a-z",
    "print": " -~",
    "punct": "!-/:-@\\[-`{-~",
    "space": "\\t\\n\\v\\f\\r ",
    "upper": "A-Z",
    "word": "0-9A-Za-z_",
    "xdigit": "0-9A-Fa-f",
}
_RE2_ONLY = re.compile(r"\\Q(.*?)(?:\\E|$)|\[:(\^?)([a-z]+):\]|\\z", re.S)


@dataclass(frozen=True, slots=True)
class Matcher:
    """One matcher of a silence: label ``name`` equal to (or, not ``equal``, different from)
    ``value``, or matching it as a regular expression (``regex``)."""

    name: str
    value: str
    regex: bool = False
    equal: bool = True

    def matches(self, labels: Mapping[str, str]) -> bool:
        value = labels.get(self.name, "")
        if self.regex:
            pattern = _compiled(self.value)
            if pattern is None:
                return False  # not a regular expression this side reads: it covers nothing
            hit = pattern.fullmatch(value) is not None
        else:
            hit = value == self.value
        return hit == self.equal

    def text(self) -> str:
        """As amtool writes it: ``service="iris"``, ``env=~"dev|staging"``, ``env!="prod"``."""
        operator = ("=" if self.equal else "!") + ("~" if self.regex else "")
        if operator == "!":
            operator = "!="
        value = self.value.replace("\\", "\\\\").replace('"', '\\"')
        return f'{self.name}{operator}"{value}"'


@dataclass(frozen=True, slots=True)
class Silence:
    """A silence of Alertmanager: who made it, until when, why; its state ``active`` or
    ``pending`` (starts later)."""

    id: str
    matchers: tuple[Matcher, ...]
    created_by: str
    comment: str
    starts: str
    ends: str
    state: str

    def covers(self, labels: Mapping[str, str]) -> bool:
        """Whether the silence mutes an alert with ``labels`` now."""
        return self.state == "active" and all(m.matches(labels) for m in self.matchers)

    def entry(self) -> SilenceEntry:
        """The ``silence`` of an ``alerts`` entry (docs/json.md)."""
        return {
            "id": self.id,
            "by": self.created_by,
            "until": self.ends,
            "comment": self.comment,
            "matchers": ", ".join(m.text() for m in self.matchers),
        }


def covering(labels: Mapping[str, str], silences: Iterable[Silence]) -> Silence | None:
    """The active silence that covers ``labels`` longest (None: none does)."""
    found = [silence for silence in silences if silence.covers(labels)]
    return max(found, key=lambda silence: silence.ends) if found else None


def parse_silences(data: Any) -> list[Silence]:
    """The silences of a ``GET /api/v2/silences`` answer that are not expired; an entry
    that is not a silence is skipped."""
    silences: list[Silence] = []
    for item in data if isinstance(data, list) else []:
        if not isinstance(item, dict):
            continue
        state = (item.get("status") or {}).get("state")
        raw = item.get("matchers")
        if state not in ("active", "pending") or not isinstance(raw, list) or not raw:
            continue
        matchers = tuple(
            Matcher(
                str(m.get("name", "")),
                str(m.get("value", "")),
                bool(m.get("isRegex", False)),
                bool(m.get("isEqual", True)),
            )
            for m in raw
            if isinstance(m, dict)
        )
        silences.append(
            Silence(
                id=str(item.get("id", "")),
                matchers=matchers,
                created_by=str(item.get("createdBy", "")),
                comment=str(item.get("comment", "")),
                starts=str(item.get("startsAt", "")),
                ends=str(item.get("endsAt", "")),
                state=str(state),
            )
        )
    return silences


@lru_cache(maxsize=256)
def _compiled(value: str) -> re.Pattern[str] | None:
    """Alertmanager's regular expression (RE2) in Python, anchored as Alertmanager anchors
    it (``^(?:VALUE)$``); None when Python cannot read it."""
    try:
        return re.compile(f"(?:{_python_regex(value)})", re.S)
    except re.error:
        return None


def _python_regex(value: str) -> str:
    """RE2's spellings Python's re lacks: ``\\Q...\\E``, ``[:alpha:]``, ``\\z`` (a negated
    class, ``[:^alpha:]``, is not read: re.error)."""

    def spell(match: re.Match[str]) -> str:
        if match.group(0).startswith("\\Q"):
            return re.escape(match.group(1))
        if match.group(0) == "\\z":
            return "\\Z"
        name = match.group(3)
        if match.group(2) or name not in _POSIX:
            raise re.error(f"[:{match.group(2)}{name}:] is not read here")
        return _POSIX[name]

    return _RE2_ONLY.sub(spell, value)
