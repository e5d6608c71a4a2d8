"""One Ledger shared by several threads (the TUI's workers): no thread-affinity errors, no
interleaved transactions, one valid chain."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from tests.store import add_release, open_ledger


def test_threads_share_one_ledger(tmp_path: Path) -> None:
    with open_ledger(tmp_path) as ledger:
        add_release(ledger, "aaaaaaaaaaaa")

        def work(worker: int) -> int:
            for n in range(25):
                run = ledger.start_run("test", release_id="aaaaaaaaaaaa")
                ledger.record_step(run.id, f"step {worker}.{n}", "passed")
                ledger.finish_run(run.id, "passed")
                ledger.history(limit=5)
            return worker

        with ThreadPoolExecutor(max_workers=4) as pool:
            assert sorted(pool.map(work, range(4))) == [0, 1, 2, 3]
        report = ledger.verify_chain()
        assert report.ok and report.checked == 1 + 4 * 25 * 3
        assert len(ledger.history(limit=1000).entries) == 1 + 4 * 25
