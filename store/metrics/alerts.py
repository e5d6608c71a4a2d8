"""The alerts of the metric store: one open alert per (rule, service, env) at most (dedupe),
moved ``pending -> firing -> resolved`` and never back, each state change an event in
``alert_events``; a resolved alert stays as history and a new breach opens a new one.

:class:`MetricAlerts` is a part of :class:`store.metrics.store.MetricStore` (its transactions and
reads are :class:`store.metrics.base.MetricStoreBase`'s). The functions that do the work take
an open transaction, so that the collector writes a minute's rollup and all its alert
changes together (:meth:`store.metrics.store.MetricStore.record_minute`): all of them, or none.

The webhook outbox is here too: the posts that announce alert changes, queued
(:func:`queue_posts`) in the transaction of the changes themselves and deleted once
delivered (:meth:`MetricAlerts.remove_webhook_posts`), so a post is never lost between the
change and its delivery.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from functools import partial
from typing import Any

from store.errors import InvalidRequest, RecordNotFound
from store.metrics.base import MetricStoreBase
from store.metrics.rows import AlertEvent, AlertRow

__all__ = ["AlertChange", "MetricAlerts", "WebhookPost", "apply_change", "queue_posts"]

STATES = ("pending", "firing", "resolved")
OPEN_STATES = ("pending", "firing")
_COLUMNS = (
    "id, rule, kind, service, env, state, since, updated, value, detail, release, rollback, "
    "grouped_with"
)
# The schema that added alerts.grouped_with (store.metrics.schema); an older file reads NULL.
_GROUPED_SCHEMA = 3


@dataclass(frozen=True, slots=True)
class AlertChange:
    """What a rule says about its alert at minute ``t``: the state it is in now."""

    rule: str
    kind: str
    service: str
    env: str
    t: int
    state: str
    value: float | None = None
    detail: str = ""
    release: str | None = None
    rollback: str | None = None
    grouped_with: str | None = None


@dataclass(frozen=True, slots=True)
class WebhookPost:
    """A post of the outbox: ``document`` to POST to ``url``; ``id`` orders and removes it."""

    id: int
    url: str
    document: dict[str, Any]


class MetricAlerts(MetricStoreBase):
    """Opening, moving on and reading alerts."""

    def open_alert(
        self,
        rule: str,
        kind: str,
        service: str,
        env: str,
        *,
        t: int,
        state: str = "pending",
        value: float | None = None,
        detail: str = "",
        release: str | None = None,
        rollback: str | None = None,
    ) -> AlertRow:
        """The open alert of (rule, service, env): the one already open, unchanged (dedupe),
        else a new one in ``state`` with its first event."""
        if state not in OPEN_STATES:
            raise InvalidRequest(f"an alert opens pending or firing, not {state!r}")
        change = AlertChange(rule, kind, service, env, t, state, value, detail, release, rollback)
        return self._write("opening an alert", partial(_open, change))

    def update_alert(
        self,
        alert_id: int,
        *,
        t: int,
        state: str | None = None,
        value: float | None = None,
        detail: str | None = None,
        release: str | None = None,
        rollback: str | None = None,
    ) -> AlertRow:
        """Move an alert on (pending -> firing -> resolved, never back; a state change is an
        event and restarts ``since``) and/or refresh its value, detail, release, rollback."""
        if state is not None and state not in STATES:
            raise InvalidRequest(f"unknown alert state {state!r}; one of {', '.join(STATES)}")
        work = partial(_update, alert_id, t, state, value, detail, release, rollback)
        return self._write("updating an alert", work)

    def alerts(
        self,
        state: str | None = None,
        service: str | None = None,
        env: str | None = None,
        limit: int = 100,
    ) -> list[AlertRow]:
        """Alerts, most recently changed first. ``state`` is one state, or "open" for
        pending and firing."""
        where: list[str] = []
        params: list[Any] = []
        if state == "open":
            where.append("state != 'resolved'")
        elif state is not None:
            where.append("state = ?")
            params.append(state)
        for column, wanted in (("service", service), ("env", env)):
            if wanted is not None:
                where.append(f"{column} = ?")
                params.append(wanted)
        clause = f"WHERE {' AND '.join(where)} " if where else ""
        columns = _COLUMNS
        with self._reading() as conn:
            if int(conn.execute("PRAGMA user_version").fetchone()[0]) < _GROUPED_SCHEMA:
                columns = columns.replace("grouped_with", "NULL AS grouped_with")
        rows = self._all(
            f"SELECT {columns} FROM alerts {clause}ORDER BY updated DESC, id DESC LIMIT ?",
            [*params, limit],
        )
        return [AlertRow(*row) for row in rows]

    def alert_events(self, alert_id: int) -> list[AlertEvent]:
        """The states an alert went through, oldest first."""
        rows = self._all(
            "SELECT id, alert_id, t, state, detail FROM alert_events WHERE alert_id = ? "
            "ORDER BY id",
            [alert_id],
        )
        return [AlertEvent(*row) for row in rows]

    def webhook_posts(self) -> list[WebhookPost]:
        """The posts not delivered yet, oldest first."""
        rows = self._all("SELECT id, url, document FROM webhook_outbox ORDER BY id", [])
        return [WebhookPost(row[0], row[1], json.loads(row[2])) for row in rows]

    def remove_webhook_posts(self, ids: Iterable[int]) -> None:
        """Delete delivered (or dropped) posts; an id not there is nothing."""
        self._check_writable("removing webhook posts")
        params = [(post_id,) for post_id in ids]
        if params:
            sql = "DELETE FROM webhook_outbox WHERE id = ?"
            self._write("removing webhook posts", lambda conn: conn.executemany(sql, params))


def queue_posts(conn: sqlite3.Connection, posts: Iterable[tuple[str, Mapping[str, Any]]]) -> None:
    """Add ``(url, document)`` posts to the outbox in the open transaction, in order."""
    params = [(url, json.dumps(document, default=str)) for url, document in posts]
    conn.executemany("INSERT INTO webhook_outbox (url, document) VALUES (?, ?)", params)


def apply_change(conn: sqlite3.Connection, change: AlertChange) -> str | None:
    """Persist one change in the open transaction; the state of the rule's open alert
    before it (None: none was open). A new breach opens an alert, unless the rule already
    has events from that minute on (the minute judged again after a crash: the change's own
    state is returned, so nothing is announced twice); a change of an open one moves it on.
    A state behind the open alert's (rules resumed from an older saved state than the
    store's) only refreshes it: the store never goes back, nor fails a minute."""
    row = _open_row(conn, change.rule, change.service, change.env)
    if row is None:
        if change.state in OPEN_STATES:
            if _recorded_since(conn, change):
                # The minute judged again after a crash, and this alert has moved on since
                # (resolved in the same pass): it is history already, not a new alert.
                return change.state
            _open(change, conn)
        return None
    state = change.state if STATES.index(change.state) >= STATES.index(row.state) else row.state
    _update(
        row.id, change.t, state, change.value, change.detail, change.release, change.rollback, conn
    )
    if change.grouped_with and state != row.state:
        conn.execute(
            "UPDATE alerts SET grouped_with = ? WHERE id = ?", (change.grouped_with, row.id)
        )
    return row.state


def _recorded_since(conn: sqlite3.Connection, change: AlertChange) -> bool:
    """Whether the rule's alerts of (service, env) hold an event at or after the change."""
    return (
        conn.execute(
            "SELECT 1 FROM alert_events e JOIN alerts a ON a.id = e.alert_id "
            "WHERE a.rule = ? AND a.service = ? AND a.env = ? AND e.t >= ? LIMIT 1",
            (change.rule, change.service, change.env, change.t),
        ).fetchone()
        is not None
    )


def _open_row(conn: sqlite3.Connection, rule: str, service: str, env: str) -> AlertRow | None:
    row = conn.execute(
        f"SELECT {_COLUMNS} FROM alerts WHERE rule = ? AND service = ? AND env = ? "
        "AND state != 'resolved'",
        (rule, service, env),
    ).fetchone()
    return None if row is None else AlertRow(*row)


def _open(change: AlertChange, conn: sqlite3.Connection) -> AlertRow:
    existing = _open_row(conn, change.rule, change.service, change.env)
    if existing is not None:
        return existing
    c = change
    alert_id = conn.execute(
        "INSERT INTO alerts (rule, kind, service, env, state, since, updated, value, "
        "detail, release, rollback, grouped_with) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) "
        "RETURNING id",
        (c.rule, c.kind, c.service, c.env, c.state, c.t, c.t, c.value, c.detail, c.release,
         c.rollback, c.grouped_with),
    ).fetchone()[0]  # fmt: skip
    conn.execute(
        "INSERT INTO alert_events (alert_id, t, state, detail) VALUES (?, ?, ?, ?)",
        (alert_id, c.t, c.state, c.detail),
    )
    return _alert(conn, alert_id)


def _update(
    alert_id: int,
    t: int,
    state: str | None,
    value: float | None,
    detail: str | None,
    release: str | None,
    rollback: str | None,
    conn: sqlite3.Connection,
) -> AlertRow:
    current = _alert(conn, alert_id)
    new_state = state or current.state
    if current.state == "resolved":
        raise InvalidRequest(
            f"alert {alert_id} is resolved and stays as history; a new breach opens a new alert"
        )
    if STATES.index(new_state) < STATES.index(current.state):
        raise InvalidRequest(
            f"alert {alert_id} is {current.state}; it cannot go back to {new_state}"
        )
    changed = new_state != current.state
    conn.execute(
        "UPDATE alerts SET state = ?, since = ?, updated = ?, value = coalesce(?, value), "
        "detail = coalesce(?, detail), release = coalesce(?, release), "
        "rollback = coalesce(?, rollback) WHERE id = ?",
        (new_state, t if changed else current.since, t, value, detail, release, rollback,
         alert_id),
    )  # fmt: skip
    if changed:
        conn.execute(
            "INSERT INTO alert_events (alert_id, t, state, detail) VALUES (?, ?, ?, ?)",
            (alert_id, t, new_state, detail if detail is not None else current.detail),
        )
    return _alert(conn, alert_id)


def _alert(conn: sqlite3.Connection, alert_id: int) -> AlertRow:
    row = conn.execute(f"SELECT {_COLUMNS} FROM alerts WHERE id = ?", (alert_id,)).fetchone()
    if row is None:
        raise RecordNotFound(f"no alert {alert_id} in the metric store; `relman alerts` lists them")
    return AlertRow(*row)
