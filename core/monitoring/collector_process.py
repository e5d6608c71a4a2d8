"""The project's collector as a process: one per project, started detached by the first
promotion, found again by its tag, stopped by `relman down`.

The collector (core.monitoring.collector) runs as ``relman --batch monitor`` in a session of its
own,
its environment tagged ``RELMAN_INSTANCE=.relman/collector`` (core.host.processes), its output in
``.relman/collector.log``. It claims the project's slot in the metric store
(``.relman/metrics.db``) with its pid and host, and keeps it while it runs: a second one is
refused, one whose holder died on this host takes it over. SIGTERM (or SIGINT) ends its loop
after the pass in progress.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from core.config.model import Project
from core.errors import BlockedError
from core.host.processes import TAG_VARIABLE, carries_tag, pid_alive, stop_tagged, this_host
from core.ledger.steps import Log

if TYPE_CHECKING:
    from store.metrics.rows import CollectorRow


def metrics_path(project: Project) -> Path:
    return project.metrics_path


def collector_tag(project: Project) -> str:
    return str(project.state_dir / "collector")


def collector_pid(project: Project) -> int | None:
    """The pid of the project's running collector, if one runs."""
    from store.metrics.store import MetricStore

    path = metrics_path(project)
    if not path.exists():
        return None
    with MetricStore.open(path, readonly=True) as store:
        return running_collector(project, store.collector())


def running_collector(project: Project, claim: CollectorRow | None) -> int | None:
    """The pid of the collector holding ``claim`` (the store's claim row) when it runs on
    this host, for a caller that has the store open already."""
    if claim is None or claim.host != this_host():
        return None
    return claim.pid if carries_tag(claim.pid, collector_tag(project)) else None


def ensure_collector(project: Project) -> int | None:
    """Start the project's collector, detached, unless one runs; its pid when started."""
    if collector_pid(project) is not None:
        return None
    project.state_dir.mkdir(parents=True, exist_ok=True)
    environ = {**os.environ, TAG_VARIABLE: collector_tag(project)}
    with (project.state_dir / "collector.log").open("ab") as output:
        child = subprocess.Popen(
            [sys.executable, "-m", "tui", "--project", str(project.root), "--batch", "monitor"],
            stdin=subprocess.DEVNULL,
            stdout=output,
            stderr=subprocess.STDOUT,
            env=environ,
            start_new_session=True,
        )
    return child.pid


def stop_collector(project: Project) -> bool:
    """Stop the project's collector (and anything it started); True when one ran. A metric
    store that cannot be read (damaged, locked) does not stop it: the collector is found by
    its tag all the same."""
    from store.errors import StoreFailure

    try:
        pid = collector_pid(project)
    except StoreFailure:
        pid = None
    with contextlib.suppress(ProcessLookupError):
        return stop_tagged(collector_tag(project), pid)
    return False


def claim_slot(store: Any, pid: int, host: str, clock: Callable[[], float], log: Log) -> None:
    """Claim the project's collector slot in the metric store ``store`` for ``pid``: free,
    or taken over from a holder that died on this host (said in ``log``); BlockedError
    (exit 1) when another collector holds it."""
    if store.claim_collector(pid, host, int(clock())):
        return
    holder = store.collector()
    dead = holder is not None and holder.host == host and not pid_alive(holder.pid)
    now = int(clock())
    if not (dead and store.claim_collector(pid, host, now, replacing=holder.pid)):
        who = f"pid {holder.pid} on {holder.host}" if holder else "another process"
        raise BlockedError(
            f"a collector already runs for this project ({who}); `relman down` stops it"
        )
    log(f"took over from collector pid {holder.pid if holder else '?'}, gone")


@contextlib.contextmanager
def stop_on_signals() -> Iterator[threading.Event]:
    """An event that SIGTERM and SIGINT set while the block runs; the handlers found before
    are put back after it (a collector run in-process, as tests do, leaves none behind)."""
    event = threading.Event()

    def handler(_signum: int, _frame: Any) -> None:
        event.set()

    previous = {
        signum: signal.signal(signum, handler) for signum in (signal.SIGTERM, signal.SIGINT)
    }
    try:
        yield event
    finally:
        for signum, before in previous.items():
            signal.signal(signum, before)
