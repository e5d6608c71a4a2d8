"""Runs in the ledger around work that may fail: never left ``running``.

The ledger learns of a run before its work starts (``start_run``, which records the pid and
host of the relman that holds it); whatever stops the work early must still close it, so that
history and ``relman status`` tell the truth: Ctrl-C leaves it ``interrupted``, any other
exception ``error`` with the exception's line (:func:`finishing_runs`).

What no ``finally`` can close, a relman killed outright (SIGKILL, a machine that lost power),
the next relman does: a run whose holder no longer runs on this host is closed ``interrupted``
(:func:`close_abandoned`, on every writing open of the ledger; :func:`open_runs` before a
read). A read-only session writes nothing: it shows such a run interrupted (:func:`as_seen`)
and the next writing command closes it, as ``relman status`` does for promotions.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

from core.config.model import Project
from core.host.processes import pid_alive, stop_tagged, this_host

if TYPE_CHECKING:  # the store (sqlite-utils) only where a ledger is opened
    from core.documents import OpenRunDocument
    from store import Ledger, RunRecord

__all__ = [
    "abandoned",
    "as_seen",
    "close_abandoned",
    "finishing_runs",
    "interrupted_reason",
    "open_runs",
    "open_runs_by_service",
]


@contextmanager
def finishing_runs(
    ledger: Ledger, run_ids: Iterable[int], *, interrupted: str, failed: str
) -> Iterator[None]:
    """Close ``run_ids`` when the block raises: ``interrupted`` (the reason) on Ctrl-C,
    ``error`` with ``"{failed}: {the exception's line}"`` on anything else; then re-raise.
    A block that ends normally leaves the runs to the caller to finish with their outcome."""
    ids = list(run_ids)
    try:
        yield
    except KeyboardInterrupt:
        for run_id in ids:
            ledger.finish_run(run_id, "interrupted", reason=interrupted)
        raise
    except BaseException as exc:
        line = " ".join(str(exc).split()) or type(exc).__name__
        for run_id in ids:
            ledger.finish_run(run_id, "error", reason=f"{failed}: {line}")
        raise


def interrupted_reason(pid: int | None) -> str:
    """The reason a run left by a relman that ended is closed with."""
    if pid is None:
        return "interrupted: relman ended without finishing (an older relman: no pid recorded)"
    return f"interrupted: relman (pid {pid}) ended without finishing"


def abandoned(run: RunRecord) -> str | None:
    """Why ``run`` is interrupted when the relman that holds it has ended without finishing
    it (:func:`interrupted_reason`); None while that relman runs, for a finished run, and for
    a holder on another host (its pids mean nothing here). A run that names no holder was
    started by a relman older than holders: taken as ended, as promotions without one are
    (core.delivery.recovery)."""
    if run.status != "running":
        return None
    pid, host = run.details.get("pid"), run.details.get("host")
    if not isinstance(pid, int) or isinstance(pid, bool):
        return interrupted_reason(None)
    if host != this_host() or pid_alive(pid):
        return None
    return interrupted_reason(pid)


def as_seen(run: RunRecord) -> RunRecord:
    """``run`` as the next command shows it: ``interrupted``, with the reason it is closed
    with, once its relman has ended; closed in the ledger or not yet (a read-only session)."""
    reason = abandoned(run)
    if reason is None:
        return run
    return dataclasses.replace(run, status="interrupted", reason=reason)


def work_tag(state_dir: Path, pid: int | None = None) -> str:
    """The RELMAN_INSTANCE tag of the processes a relman's runs start (pytest suites): under
    the project's state folder, by the pid of that relman (default: this one). When a killed
    relman's run is closed, the processes it left, in sessions of their own, are found by it
    and stopped."""
    return str(state_dir / "runs" / str(os.getpid() if pid is None else pid))


def close_abandoned(
    ledger: Ledger, service: str | None = None, env: str | None = None
) -> list[RunRecord]:
    """Close ``interrupted`` every run (of ``service`` in ``env`` when given) whose relman
    ended without finishing it, and stop what that relman's runs left running (its test
    suites: :func:`work_tag`); the runs closed."""
    from store import LedgerConflict

    closed: list[RunRecord] = []
    for run in ledger.running_runs(service, env):
        reason = abandoned(run)
        if reason is None:
            continue
        try:
            closed.append(ledger.finish_run(run.id, "interrupted", reason=reason))
        except LedgerConflict:  # another relman closed it first, as something else
            continue
        pid = run.details.get("pid")
        if isinstance(pid, int) and not isinstance(pid, bool):
            stop_tagged(work_tag(Path(ledger.path).parent, pid), None)
    return closed


def open_runs(project: Project) -> list[tuple[RunRecord, str | None]]:
    """The runs that were open when this command started, each with its release's version,
    oldest first, as this command sees them: ``running`` while their relman works, else
    ``interrupted``. Those are closed in the ledger here, unless the session is read-only
    (nothing written: the next writing command closes them). Light: the store's full
    machinery (sqlite-utils) loads only when there is something to close."""
    from core.ledger.upgrade import READ_ONLY_VARIABLE, upgrade_ledger
    from store.ledger.snapshot import open_runs as recorded_open_runs

    if not project.ledger_path.exists():
        return []
    upgrade_ledger(project)
    found = [(as_seen(run), version) for run, version in recorded_open_runs(project.ledger_path)]
    if os.environ.get(READ_ONLY_VARIABLE) or all(r.status == "running" for r, _v in found):
        return found
    from core.ledger.identity import current_user
    from store import Ledger

    with Ledger.open(project.ledger_path, actor=current_user(project.root)) as ledger:
        close_abandoned(ledger)
    return found


def open_runs_by_service(project: Project) -> dict[str, list[OpenRunDocument]]:
    """:func:`open_runs` as ``relman status`` lists them (docs/json.md), by service."""
    from store.ledger.records import run_summary

    found: dict[str, list[OpenRunDocument]] = {}
    for run, version in open_runs(project):
        pid = run.details.get("pid")
        found.setdefault(run.service or "", []).append(
            {
                "id": run.id,
                "kind": run.kind,
                "release": run.release_id,
                "version": version,
                "env": run.env,
                "actor": run.actor,
                "started_at": run.started_at,
                "status": run.status,
                "reason": run.reason,
                "pid": pid if isinstance(pid, int) else None,
                "summary": run_summary(run, version),
            }
        )
    return found
