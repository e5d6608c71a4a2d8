"""Reading the environment state without sqlite-utils: the one query `relman status` and the
overview make on every start.

sqlite-utils loads numpy when it is installed, a tenth of a second that a status line does
not need; this module reads through the standard library alone, with the same checks and
the same one-line errors as :meth:`store.ledger.ledger.Ledger.open` in read-only mode.
"""

from __future__ import annotations

from pathlib import Path

from store.ledger.db import DEFAULT_BUSY_TIMEOUT, inspect_file, reading_file
from store.ledger.migrations import check_readable
from store.ledger.records import (
    EnvState,
    PromotionRecord,
    RolloutRecord,
    RunRecord,
    promotion_from_row,
    rollout_from_row,
    run_from_row,
)


def environment_states(path: Path, *, busy_timeout: float = DEFAULT_BUSY_TIMEOUT) -> list[EnvState]:
    """Every row of ``environment_state``, ordered by service and environment; [] when the
    ledger does not exist yet. Never writes, never creates the file."""
    version = inspect_file(path, busy_timeout, deep=False)
    if not version:
        return []
    check_readable(version, path)
    with reading_file(path, busy_timeout) as conn:
        rows = conn.execute("SELECT * FROM environment_state ORDER BY service, env").fetchall()
    return [EnvState(**dict(row)) for row in rows]


def open_promotions(
    path: Path, *, busy_timeout: float = DEFAULT_BUSY_TIMEOUT
) -> list[PromotionRecord]:
    """Promotions and rollbacks begun and not finished (running, or interrupted)."""
    version = inspect_file(path, busy_timeout, deep=False)
    if not version:
        return []
    check_readable(version, path)
    with reading_file(path, busy_timeout) as conn:
        rows = conn.execute("SELECT * FROM promotions WHERE status = 'intent' ORDER BY id")
        return [promotion_from_row(dict(row)) for row in rows.fetchall()]


def open_rollouts(path: Path, *, busy_timeout: float = DEFAULT_BUSY_TIMEOUT) -> list[RolloutRecord]:
    """Rollouts progressing or paused (driven, or left by a driver that died), oldest first;
    [] when the ledger does not exist yet."""
    return [rollout for rollout in latest_rollouts(path, busy_timeout=busy_timeout) if rollout.open]


def latest_rollouts(
    path: Path, *, busy_timeout: float = DEFAULT_BUSY_TIMEOUT
) -> list[RolloutRecord]:
    """The newest rollout of each service and environment that had one, open or ended,
    oldest first (an open one is always its environment's newest)."""
    version = inspect_file(path, busy_timeout, deep=False)
    if not version:
        return []
    check_readable(version, path)
    with reading_file(path, busy_timeout) as conn:
        rows = conn.execute(
            "SELECT * FROM rollouts WHERE id IN"
            " (SELECT max(id) FROM rollouts GROUP BY service, env) ORDER BY id"
        ).fetchall()
    return [rollout_from_row(dict(row)) for row in rows]


def open_runs(
    path: Path, *, busy_timeout: float = DEFAULT_BUSY_TIMEOUT
) -> list[tuple[RunRecord, str | None]]:
    """Runs begun and not finished (running, or left by a relman that ended), oldest first,
    each with the version of its release; [] when the ledger does not exist yet."""
    version = inspect_file(path, busy_timeout, deep=False)
    if not version:
        return []
    check_readable(version, path)
    with reading_file(path, busy_timeout) as conn:
        rows = conn.execute(
            "SELECT runs.*, releases.version AS release_version FROM runs"
            " LEFT JOIN releases ON releases.id = runs.release_id"
            " WHERE runs.status = 'running' ORDER BY runs.id"
        ).fetchall()
    found = []
    for row in rows:
        fields = dict(row)
        release_version = fields.pop("release_version")
        found.append((run_from_row(fields), release_version))
    return found


def release_versions(
    path: Path, release_ids: list[str], *, busy_timeout: float = DEFAULT_BUSY_TIMEOUT
) -> dict[str, str | None]:
    """The version of each recorded release among ``release_ids`` (None while it has none)."""
    if not release_ids:
        return {}
    version = inspect_file(path, busy_timeout, deep=False)
    if not version:
        return {}
    check_readable(version, path)
    marks = ", ".join("?" for _ in release_ids)
    with reading_file(path, busy_timeout) as conn:
        rows = conn.execute(
            f"SELECT id, version FROM releases WHERE id IN ({marks})",
            release_ids,
        ).fetchall()
    return {row[0]: row[1] for row in rows}
