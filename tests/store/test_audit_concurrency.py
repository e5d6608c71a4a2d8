"""Two processes appending to the audit log at once leave one valid chain."""

from __future__ import annotations

import itertools
import multiprocessing
import time
from pathlib import Path

from store import Ledger

PER_PROCESS = 200


def _append(path: str, actor: str, start: multiprocessing.synchronize.Event) -> None:
    with Ledger.open(Path(path), actor=actor) as ledger:
        start.wait()  # both processes hammer the file at the same moment
        for n in range(PER_PROCESS):
            ledger.log_event("load.test", outcome="ok", reason=f"{actor} {n}")
            # Yield the lock now and then: without it one process can win every race and
            # the test would no longer exercise interleaved appends.
            time.sleep(0.001)


def test_two_writers_keep_the_chain_valid(tmp_path: Path) -> None:
    path = tmp_path / ".relman" / "ledger.db"
    Ledger.open(path).close()  # created and migrated once, as relman would have
    # fork: the children run this module's function without importing the test package.
    context = multiprocessing.get_context("fork")
    start = context.Event()
    workers = [
        context.Process(target=_append, args=(str(path), actor, start)) for actor in ("p1", "p2")
    ]
    for worker in workers:
        worker.start()
    start.set()
    for worker in workers:
        worker.join(timeout=120)
        assert worker.exitcode == 0

    with Ledger.open(path, readonly=True) as ledger:
        report = ledger.verify_chain()
        assert report.ok, report.problem
        assert report.checked == 2 * PER_PROCESS
        events = ledger.audit_events(limit=1000)
    by_actor = {
        actor: [e.reason for e in reversed(events) if e.actor == actor] for actor in ("p1", "p2")
    }
    # Nothing lost, each writer's events in its own order; and they did interleave.
    assert by_actor == {a: [f"{a} {n}" for n in range(PER_PROCESS)] for a in ("p1", "p2")}
    switches = sum(1 for a, b in itertools.pairwise(events) if a.actor != b.actor)
    assert switches >= 10
