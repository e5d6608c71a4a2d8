"""What the parts of relman.toml share: the pattern of a name, where a value applies
(``match``), the rollout strategies."""

from __future__ import annotations

import fnmatch
from dataclasses import field
from typing import Literal

from core.config.schema import Model, toml_table

# Services and environments become GTO names and stages in git tags, which must end in a
# letter or digit.
NAME_PATTERN = r"^[a-z](?:[a-z0-9_-]*[a-z0-9])?$"
_NAME_MESSAGE = (
    "name {key!r} must start with a lowercase letter, end with a letter or digit, and hold "
    "only lowercase letters, digits, '-' and '_'"
)
_NAMES = {"key_pattern": NAME_PATTERN, "key_message": _NAME_MESSAGE}

STRATEGIES = ("all-at-once", "canary", "shadow")
Strategy = Literal["all-at-once", "canary", "shadow"]


@toml_table
class PolicyMatch(Model):
    """Which (service, env) a rule or conditional value applies to: every key given must
    match; each is a glob (``prod*``) or a list of globs (any of them)."""

    service: str | list[str] | None = field(default=None, metadata={"item_min_length": 1})
    env: str | list[str] | None = field(default=None, metadata={"item_min_length": 1})
    target: str | list[str] | None = field(default=None, metadata={"item_min_length": 1})

    def patterns(self) -> dict[str, list[str]]:
        found: dict[str, list[str]] = {}
        for key in ("service", "env", "target"):
            value = getattr(self, key)
            if value is not None:
                found[key] = [value] if isinstance(value, str) else list(value)
        return found

    def matches(self, *, service: str, env: str, target: str) -> bool:
        subject = {"service": service, "env": env, "target": target}
        return all(
            any(fnmatch.fnmatchcase(subject[key], pattern) for pattern in patterns)
            for key, patterns in self.patterns().items()
        )

    def describe(self) -> str:
        """``env=prod, service=iris*``; ``everything`` for an empty match."""
        parts = [f"{key}={'|'.join(patterns)}" for key, patterns in self.patterns().items()]
        return ", ".join(parts) or "everything"
