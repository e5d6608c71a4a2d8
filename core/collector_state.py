"""What the collector keeps: per (service, environment) a :class:`Watch` between passes, and
``.relman/collector.json`` across restarts.

A watch holds the environment's alert rules and the last minute judged, its monitor-log
readers and the offsets of what is stored, the scrapes not stored yet (the store was
locked), the minutes whose scrape failed, and its model-quality measures
(core.model_quality). collector.json keeps, per environment, the rules' state, the last
minute and the stored offsets, and the webhook posts not delivered yet (``_webhooks``); it
is written after every pass, all at once, and a full disk is MetricStoreFull (the
collector stops). A pass visits each watched environment (:class:`Visit`) and says what
it did in a :class:`PassReport`.
"""

from __future__ import annotations

import errno
import json
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from core.model_quality import ModelQuality

STATE_FILE = "collector.json"


@dataclass
class Watch:
    """What the collector keeps between passes for one (service, env)."""

    rules: Any  # core.alerting.Rules
    quality: ModelQuality
    last_minute: int | None = None
    readers: dict[str, Any] = field(default_factory=dict)  # folder -> MonitorReader
    # The offsets of what is stored, by folder: a reader whose rows were not stored starts
    # again from here (and these are what collector.json keeps).
    reader_states: dict[str, Any] = field(default_factory=dict)
    failed_minutes: set[int] = field(default_factory=set)  # a scrape was tried and failed
    pending: list[Any] = field(default_factory=list)  # ScrapeRows not stored yet
    dropped: int = 0  # pending scrapes dropped over the cap since the store last took some
    said: set[str] = field(default_factory=set)  # lines logged once
    scrape_warning: str | None = None  # the last one logged: repeats are not


@dataclass
class PassReport:
    t: int
    scraped: list[str] = field(default_factory=list)  # stored this pass
    problems: list[str] = field(default_factory=list)
    transitions: list[dict[str, Any]] = field(default_factory=list)
    busy: bool = False  # the metric store was locked: some writes wait for the next pass


@dataclass
class Visit:
    """One (service, environment) in one pass."""

    service: str
    env: str
    release: str | None
    policy: dict[str, Any]
    now: int
    watch: Watch
    report: PassReport

    @property
    def name(self) -> str:
        return f"{self.service}/{self.env}"

    def problem(self, line: str) -> None:
        self.report.problems.append(f"{self.name}: {line}")

    def once(self, line: str) -> None:
        """A problem said once per collector process (the next passes meet it again)."""
        if line not in self.watch.said:
            self.watch.said.add(line)
            self.problem(line)


def load_state(state_dir: Path) -> dict[str, Any]:
    """collector.json as saved ({} when missing or unreadable)."""
    try:
        loaded = json.loads((state_dir / STATE_FILE).read_text())
    except (OSError, ValueError):
        return {}
    return loaded if isinstance(loaded, dict) else {}


def restore_watch(
    saved: Mapping[str, Any], policy: dict[str, Any], *, service: str, env: str, root: Path
) -> Watch:
    """The watch of (service, env) from its collector.json entry (new when ``saved`` is
    empty), its rules under ``policy``; ``root``: the project's."""
    from core.alerting import Rules

    rules = (
        Rules.from_dict(saved["rules"], policy)
        if "rules" in saved
        else Rules(policy, service=service, env=env)
    )
    return Watch(
        rules,
        ModelQuality(root),
        saved.get("last_minute"),
        reader_states=dict(saved.get("readers", {})),
    )


def save_state(
    state_dir: Path, watches: Mapping[tuple[str, str], Watch], posts: list[dict[str, Any]]
) -> None:
    """Write collector.json: the watches and the webhook posts not delivered yet."""
    from store.db import display_path
    from store.metrics import MetricStoreFull

    state: dict[str, Any] = {
        f"{service}/{env}": {
            "rules": watch.rules.to_dict(),
            "last_minute": watch.last_minute,
            "readers": watch.reader_states,  # what is stored, not what was read
        }
        for (service, env), watch in watches.items()
    }
    state["_webhooks"] = posts
    path = state_dir / STATE_FILE
    temporary = path.with_suffix(".tmp")
    try:
        temporary.write_text(json.dumps(state))
        os.replace(temporary, path)
    except OSError as exc:
        if exc.errno in (errno.ENOSPC, errno.EDQUOT):
            raise MetricStoreFull(
                f"{display_path(path)}: disk full; free space, the collector stops"
            ) from exc
        raise
