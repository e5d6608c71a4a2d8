"""The collector's own rows in the metric store: its claim on the project (one collector per
project, alive while its heartbeat is fresh) and what it consumed, the monitor-log readers'
offsets (``monitor_offsets``).

:class:`MetricCollector` is a part of :class:`store.metrics.store.MetricStore` (its transactions
and reads are :class:`store.metrics.base.MetricStoreBase`'s). The offsets are written by the
batch that stores the rows they cover (:meth:`store.metrics.store.MetricStore.add_batch`, through
:data:`UPSERT_OFFSET` and :func:`offset_params`), so a collector killed between that commit
and the end of its pass reads nothing twice; :meth:`MetricCollector.take_over_progress`
adopts what an older collector kept in ``collector.json`` instead.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from store.metrics.alerts import queue_posts
from store.metrics.base import MetricStoreBase
from store.metrics.rows import CollectorRow

__all__ = [
    "COLLECTOR_STALE_SECONDS",
    "UPSERT_OFFSET",
    "MetricCollector",
    "ReaderOffset",
    "offset_params",
]

# A collector whose heartbeat is older than this is taken for dead (claim_collector).
COLLECTOR_STALE_SECONDS = 60
UPSERT_OFFSET = (
    "INSERT INTO monitor_offsets (service, env, folder, state) VALUES (?, ?, ?, ?) "
    "ON CONFLICT (service, env, folder) DO UPDATE SET state = excluded.state"
)
_encode = json.JSONEncoder(separators=(",", ":"), check_circular=False).encode
_decode = json.JSONDecoder().decode


@dataclass(frozen=True, slots=True)
class ReaderOffset:
    """How far the monitor folder ``folder`` of (service, env) is stored: ``state`` is the
    reader's own JSON (core.targets.monitor_log.MonitorReader.state)."""

    service: str
    env: str
    folder: str
    state: Mapping[str, Any]


def offset_params(offsets: Iterable[ReaderOffset]) -> list[tuple[str, str, str, str]]:
    """The parameters of :data:`UPSERT_OFFSET` for ``offsets``."""
    return [(o.service, o.env, o.folder, _encode(o.state)) for o in offsets]


class MetricCollector(MetricStoreBase):
    """The collector's claim and heartbeat, and the reader offsets it stored."""

    def claim_collector(
        self,
        pid: int,
        host: str,
        now: int,
        *,
        stale_after: int = COLLECTOR_STALE_SECONDS,
        replacing: int | None = None,
    ) -> bool:
        """Become the project's one collector: yes when there is none, when it is this
        process (same pid and host) already, when its heartbeat is older than
        ``stale_after`` seconds (a dead collector), or when it is still ``replacing`` on
        ``host`` (a holder the caller found dead; whoever took over since is kept); no
        while another one beats."""

        def work(conn: sqlite3.Connection) -> bool:
            row = conn.execute("SELECT pid, host, started, heartbeat FROM collector").fetchone()
            started = now
            if row is not None:
                holder = CollectorRow(*row)
                if holder.pid == pid and holder.host == host:
                    started = holder.started
                elif (holder.pid, holder.host) == (replacing, host):
                    pass  # the dead holder the caller names: taken over
                elif now - holder.heartbeat <= stale_after:
                    return False
            conn.execute("DELETE FROM collector")
            conn.execute(
                "INSERT INTO collector (pid, host, started, heartbeat) VALUES (?, ?, ?, ?)",
                (pid, host, started, now),
            )
            return True

        return self._write("claiming the collector", work)

    def heartbeat(self, pid: int, now: int) -> bool:
        """Say the collector ``pid`` is alive; False when it is no longer the collector
        (another took over after it went stale): it should stop."""

        def work(conn: sqlite3.Connection) -> bool:
            sql = "UPDATE collector SET heartbeat = ? WHERE pid = ?"
            return conn.execute(sql, (now, pid)).rowcount > 0

        return self._write("a collector heartbeat", work)

    def release_collector(self, pid: int) -> None:
        """Step down (on exit); nothing when ``pid`` is not the collector."""
        self._write(
            "releasing the collector",
            lambda conn: conn.execute("DELETE FROM collector WHERE pid = ?", (pid,)),
        )

    def collector(self) -> CollectorRow | None:
        rows = self._all("SELECT pid, host, started, heartbeat FROM collector", [])
        return CollectorRow(*rows[0]) if rows else None

    def reader_offsets(self) -> dict[tuple[str, str], dict[str, dict[str, Any]]]:
        """The stored reader states: ``{(service, env): {folder: state}}``."""
        found: dict[tuple[str, str], dict[str, dict[str, Any]]] = {}
        for service, env, folder, state in self._all(
            "SELECT service, env, folder, state FROM monitor_offsets", []
        ):
            found.setdefault((service, env), {})[folder] = _decode(state)
        return found

    def take_over_progress(
        self, offsets: Iterable[ReaderOffset], posts: Iterable[tuple[str, Mapping[str, Any]]]
    ) -> tuple[bool, bool]:
        """Adopt what an older collector kept outside the store (collector.json), in one
        transaction: ``offsets`` when the store holds none, ``posts`` when its outbox is
        empty (so a second call, or one after this relman collected, adds nothing). Whether
        each was taken."""
        self._check_writable("taking over the collector's state")
        params = offset_params(offsets)
        queued = list(posts)

        def work(conn: sqlite3.Connection) -> tuple[bool, bool]:
            taken = (
                bool(params) and _empty(conn, "monitor_offsets"),
                bool(queued) and _empty(conn, "webhook_outbox"),
            )
            if taken[0]:
                conn.executemany(UPSERT_OFFSET, params)
            if taken[1]:
                queue_posts(conn, queued)
            return taken

        if not params and not queued:
            return False, False
        return self._write("taking over the collector's state", work)


def _empty(conn: sqlite3.Connection, table: str) -> bool:
    return conn.execute(f"SELECT 1 FROM {table} LIMIT 1").fetchone() is None
