"""What the collector keeps: per (service, environment) a :class:`Watch` between passes, and
``.relman/collector.json`` across restarts.

A watch holds the environment's alert rules and the last minute judged, its monitor-log
readers and its access-log reader (core.monitoring.latency_log) and the offsets of what is
stored, the scrapes not stored yet (the store was
locked), the minutes whose scrape failed, and its model-quality measures
(core.monitoring.model_quality), and with the Prometheus source how far it is read. A pass
visits each watched environment (:class:`Visit`) and says what it did in a
:class:`PassReport`; what is wrong with the source now goes to ``PROBLEMS_FILE`` for the
readers (`relman metrics`, the monitor screen).

What was consumed is not here: the readers' offsets (the access log's too) and the webhook
posts not delivered yet live in the metric store, written in the transactions that store
the rows and the alert changes (store.metrics.store), so that a collector killed between a
commit and the end of its pass reads no row twice and loses no post. collector.json keeps,
per environment, only the rules' state and the last minute judged: a crash before it is
saved judges the last minutes again, which changes nothing stored (rollups are replaced,
an alert never goes back, a post is queued only when the stored alert moves). It is
written after every pass, all at once; a full disk is MetricStoreFull (the collector
stops). An older collector.json also held the offsets (``readers``) and the posts
(``_webhooks``): the store takes them over once (:func:`take_over_progress`).
"""

from __future__ import annotations

import errno
import json
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from core.monitoring.model_quality import ModelQuality

STATE_FILE = "collector.json"
# What is wrong with the collector's source now, for the readers of the metric store.
PROBLEMS_FILE = "collector-problems.json"


@dataclass
class Watch:
    """What the collector keeps between passes for one (service, env)."""

    rules: Any  # core.alerts.alerting.Rules
    quality: ModelQuality
    last_minute: int | None = None
    readers: dict[str, Any] = field(default_factory=dict)  # folder -> MonitorReader
    # The offsets of what is stored, by folder (as the metric store holds them): a reader
    # whose rows were not stored starts again from here.
    reader_states: dict[str, Any] = field(default_factory=dict)
    # The access log's reader (core.monitoring.latency_log.AccessLatencyReader), and the
    # state of what is stored (as the metric store holds it; None: nothing yet): a reader
    # whose latencies were not stored starts again from here.
    access: Any = None
    access_state: dict[str, Any] | None = None
    failed_minutes: set[int] = field(default_factory=set)  # a scrape was tried and failed
    pending: list[Any] = field(default_factory=list)  # ScrapeRows not stored yet
    dropped: int = 0  # pending scrapes dropped over the cap since the store last took some
    said: set[str] = field(default_factory=set)  # lines logged once
    scrape_warning: str | None = None  # the last one logged: repeats are not
    # With source = "prometheus": how far it is read (core.monitoring.prom_feed.Cursor).
    prom: Any = None
    # What is wrong with the source now (a scrape that failed, Prometheus' series), for
    # the TUI and `relman metrics` (PROBLEMS_FILE); None: nothing.
    source_problem: str | None = None


class PassSource:
    """Where the counters come from: Prometheus' client with source = "prometheus" (None:
    the collector scrapes), whether it failed this pass (the other environments do not ask
    it again) and what was last said of it, which is said again only when it changes."""

    def __init__(self, project: Any) -> None:
        self.client: Any = None  # core.monitoring.prom_source.PromClient
        self.failed: str | None = None  # this pass
        self.said: str | None = None
        self.file_sd_problem: str | None = None
        self.configure(project)

    def configure(self, project: Any) -> None:
        monitoring = project.config.monitoring
        if monitoring.source == "prometheus" and monitoring.prometheus_url:
            from core.monitoring.prom_source import PromClient

            self.client = PromClient(monitoring.prometheus_url)
        else:
            self.client = None

    def begin_pass(self) -> None:
        self.failed = None

    def end_pass(self, report: PassReport) -> None:
        """Say that Prometheus failed, or answers again, when that changed."""
        if self.client is None or self.failed == self.said:
            return
        if self.failed is not None:
            report.problems.append(
                f"{self.failed}; no minute is judged until it answers, then the minutes "
                "missed are caught up (at most an hour)"
            )
        else:
            report.problems.append(
                f"Prometheus at {self.client.url} answers again; the minutes missed are caught up"
            )
        self.said = self.failed


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


def take_over_progress(
    store: Any, state_dir: Path, saved: Mapping[str, Any]
) -> tuple[dict[str, Any], str | None]:
    """Move what an older collector.json (``saved``) kept of what was consumed into the
    metric ``store`` (store.metrics.store.MetricStore.take_over_progress: the offsets when it has
    none, the posts when its outbox is empty), then rewrite collector.json without them;
    the caller reads or posts nothing before, so nothing is taken twice (killed in
    between, the store has them and the next call adds nothing). collector.json as it is
    now, and a line to log when something was taken over."""
    offsets, posts = _legacy_progress(saved)
    if not offsets and not posts:
        return dict(saved), None
    taken = store.take_over_progress(offsets, posts)
    kept = _without_progress(saved)
    write_state(state_dir, kept)
    names = [name for name, took in zip(("offsets", "webhook posts"), taken, strict=True) if took]
    if not names:
        return kept, None
    return kept, f"{' and '.join(names)} taken over from .relman/{STATE_FILE} into the metric store"


def _legacy_progress(saved: Mapping[str, Any]) -> tuple[list[Any], list[tuple[str, Any]]]:
    """What an older collector.json (``saved``) kept of what was consumed: its readers'
    offsets (store.metrics.collector.ReaderOffset) and its webhook posts not delivered yet
    (``(url, document)``). Malformed entries are left out."""
    from store.metrics.collector import ReaderOffset

    offsets: list[ReaderOffset] = []
    for key, entry in saved.items():
        service, _, env = key.partition("/")
        readers = entry.get("readers") if isinstance(entry, Mapping) else None
        if env and isinstance(readers, Mapping):
            offsets += [
                ReaderOffset(service, env, str(folder), state)
                for folder, state in readers.items()
                if isinstance(state, Mapping)
            ]
    webhooks = saved.get("_webhooks")
    posts = [
        (str(post["url"]), post["document"])
        for post in (webhooks if isinstance(webhooks, list) else [])
        if isinstance(post, Mapping) and isinstance(post.get("document"), Mapping)
        and "url" in post
    ]  # fmt: skip
    return offsets, posts


def _without_progress(saved: Mapping[str, Any]) -> dict[str, Any]:
    """``saved`` without what the metric store keeps now."""
    return {
        key: {k: v for k, v in entry.items() if k != "readers"}
        if isinstance(entry, Mapping)
        else entry
        for key, entry in saved.items()
        if key != "_webhooks"
    }


def restore_watch(
    saved: Mapping[str, Any],
    offsets: Mapping[str, Any],
    policy: dict[str, Any],
    *,
    service: str,
    env: str,
    root: Path,
    label: str | None = None,
    access_state: Mapping[str, Any] | None = None,
) -> Watch:
    """The watch of (service, env) from its collector.json entry (new when ``saved`` is
    empty) and its readers' stored ``offsets`` (by folder), its rules under ``policy``;
    ``root``: the project's, ``label``: the column of its training data the model predicts,
    ``access_state``: its access-log reader's stored state (None: never stored)."""
    from core.alerts.alerting import Rules

    rules = (
        Rules.from_dict(saved["rules"], policy)
        if "rules" in saved
        else Rules(policy, service=service, env=env)
    )
    return Watch(
        rules,
        ModelQuality(root, label),
        saved.get("last_minute"),
        reader_states=dict(offsets),
        access_state=None if access_state is None else dict(access_state),
    )


def save_state(state_dir: Path, watches: Mapping[tuple[str, str], Watch]) -> None:
    """Write collector.json: each watch's rules and last minute judged."""
    write_state(
        state_dir,
        {
            f"{service}/{env}": {"rules": watch.rules.to_dict(), "last_minute": watch.last_minute}
            for (service, env), watch in watches.items()
        },
    )


def write_state(state_dir: Path, state: Mapping[str, Any]) -> None:
    """Replace collector.json with ``state``, all at once."""
    from store.ledger.db import display_path
    from store.metrics.store import MetricStoreFull

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


def write_problems(state_dir: Path, document: Mapping[str, Any]) -> None:
    """Replace PROBLEMS_FILE with ``document`` (``{"source", "problem", "environments":
    {"SERVICE/ENV": line}}``), all at once."""
    path = state_dir / PROBLEMS_FILE
    temporary = path.with_suffix(".tmp")
    temporary.write_text(json.dumps(document))
    os.replace(temporary, path)


def source_problem(state_dir: Path, service: str, env: str) -> str | None:
    """What the collector last said is wrong with the source of (service, env): the
    source's own problem (Prometheus down) first, else the environment's; None when
    nothing is, or nothing was written."""
    try:
        document = json.loads((state_dir / PROBLEMS_FILE).read_text())
    except (OSError, ValueError):
        return None
    if not isinstance(document, dict):
        return None
    environments = document.get("environments")
    mine = environments.get(f"{service}/{env}") if isinstance(environments, dict) else None
    line = document.get("problem") or mine
    return line if isinstance(line, str) else None
