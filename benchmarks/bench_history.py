"""History pages of a large ledger: keyset cursor vs an OFFSET baseline, same process.

Builds a ledger of 10,000 releases, 100,000 runs, 100,000 audit events (a valid chain) and
a few thousand promotions and approvals in a temporary folder (bulk inserts for setup), then
times ``Ledger.history(limit=50)``: the first page, a middle page reached by cursor, and the
same middle page filtered by service and environment. The baseline is the obvious
alternative: one UNION ALL ordered by time with ``LIMIT 50 OFFSET n``.

    .venv/bin/python benchmarks/bench_history.py [--repeat 30]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from store import Ledger
from store.ledger.audit import GENESIS_HASH, event_hash
from store.ledger.db import iso

RELEASES = 10_000
RUNS = 100_000
EVENTS = 100_000
SERVICES = ("fraud", "churn", "pricing", "search", "ranking")
ENVS = ("dev", "staging", "prod")
GOAL_MS = 50.0
START = datetime(2024, 1, 1, tzinfo=UTC)


def build(path: Path) -> None:
    ledger = Ledger.open(path, actor="bench")
    db = ledger._db  # setup only: bulk inserts, bypassing one transaction per record
    step = timedelta(seconds=30)
    with db.atomic():
        db.table("releases").insert_all(
            {
                "id": f"{n:012x}",
                "service": SERVICES[n % len(SERVICES)],
                "version": f"v1.{n // len(SERVICES)}.0",
                "git_commit": f"{n:040x}",
                "git_branch": "main",
                "message": f"release {n}",
                "author": "bench",
                "created_at": iso(START + n * 10 * step),
                "params": json.dumps({"C": n}),
                "metrics": json.dumps({"accuracy": 0.9}),
            }
            for n in range(RELEASES)
        )
        db.table("runs").insert_all(
            {
                "id": n + 1,
                "kind": ("test", "gate", "build")[n % 3],
                "release_id": f"{n // 10:012x}",
                "service": SERVICES[(n // 10) % len(SERVICES)],
                "env": ENVS[n % len(ENVS)],
                "actor": "bench",
                "started_at": iso(START + n * step + timedelta(seconds=1)),
                "finished_at": iso(START + n * step + timedelta(seconds=20)),
                "status": "passed",
            }
            for n in range(RUNS)
        )
        db.table("promotions").insert_all(
            {
                "id": n + 1,
                "service": SERVICES[n % len(SERVICES)],
                "env": ENVS[n % len(ENVS)],
                "release_id": f"{n:012x}",
                "kind": "promote",
                "actor": "bench",
                "started_at": iso(START + n * 10 * step + timedelta(seconds=2)),
                "finished_at": iso(START + n * 10 * step + timedelta(seconds=9)),
                "status": "done",
            }
            for n in range(0, RELEASES, 3)
        )
        db.table("approvals").insert_all(
            {
                "id": n + 1,
                "release_id": f"{n:012x}",
                "service": SERVICES[n % len(SERVICES)],
                "env": "prod",
                "actor": "reviewer",
                "at": iso(START + n * 10 * step + timedelta(seconds=3)),
            }
            for n in range(0, RELEASES, 5)
        )
        db.table("audit_events").insert_all(_chain(EVENTS, step))
    ledger.close()


def _chain(count: int, step: timedelta) -> list[dict[str, Any]]:
    events, prev = [], GENESIS_HASH
    for seq in range(1, count + 1):
        event: dict[str, Any] = {
            "seq": seq,
            "at": iso(START + seq * step),
            "actor": "bench",
            "action": "run.finish",
            "service": SERVICES[seq % len(SERVICES)],
            "env": ENVS[seq % len(ENVS)],
            "release_id": f"{seq // 10:012x}",
            "outcome": "passed",
            "reason": "",
            "details": {"run": seq},
        }
        digest = event_hash(prev, event)
        events.append(
            {**event, "details": json.dumps(event["details"]), "prev_hash": prev, "hash": digest}
        )
        prev = digest
    return events


def offset_page(ledger: Ledger, offset: int) -> list[tuple[Any, ...]]:
    """The baseline: one merged, time-ordered query, paged with OFFSET."""
    return ledger._db.execute(
        "SELECT at, kind, key FROM ("
        " SELECT created_at AS at, 'release' AS kind, id AS key FROM releases"
        " UNION ALL SELECT started_at, 'run', id FROM runs"
        " UNION ALL SELECT started_at, 'promotion', id FROM promotions"
        " UNION ALL SELECT at, 'approval', id FROM approvals)"
        " ORDER BY at DESC, kind DESC, key DESC LIMIT 50 OFFSET ?",
        [offset],
    ).fetchall()


def median_ms(action: Callable[[], object], repeat: int) -> float:
    action()  # warm the page cache: we measure queries, not the first disk read
    samples = []
    for _ in range(repeat):
        started = time.perf_counter()
        action()
        samples.append((time.perf_counter() - started) * 1000)
    return statistics.median(samples)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=30)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="relman-bench-") as folder:
        path = Path(folder) / ".relman" / "ledger.db"
        started = time.perf_counter()
        build(path)
        size_mb = path.stat().st_size / 1e6
        print(
            f"setup: {RELEASES} releases, {RUNS} runs, {EVENTS} audit events, "
            f"{size_mb:.0f} MB in {time.perf_counter() - started:.1f} s"
        )
        open_ms = median_ms(lambda: Ledger.open(path).close(), max(3, args.repeat // 10))
        with Ledger.open(path, readonly=True) as ledger:
            total = RELEASES + RUNS + len(range(0, RELEASES, 3)) + len(range(0, RELEASES, 5))
            middle_at = START + (RUNS // 2) * timedelta(seconds=30)
            # A real cursor: the last entry of the page that ends at the middle of time.
            cursor = ledger.history(before=middle_at, limit=50).next_cursor
            assert cursor is not None
            offset = (
                ledger._db.execute(
                    "SELECT (SELECT count(*) FROM releases WHERE created_at >= :t)"
                    " + (SELECT count(*) FROM runs WHERE started_at >= :t)"
                    " + (SELECT count(*) FROM promotions WHERE started_at >= :t)"
                    " + (SELECT count(*) FROM approvals WHERE at >= :t)",
                    {"t": iso(middle_at)},
                ).fetchone()[0]
                + 50
            )
            rows = [
                ("first page", lambda: ledger.history(limit=50), lambda: offset_page(ledger, 0)),
                (
                    f"middle page (~{offset:,} of {total:,} entries)",
                    lambda: ledger.history(limit=50, before=cursor),
                    lambda: offset_page(ledger, offset),
                ),
            ]
            print(f"goal: history(limit=50) under {GOAL_MS:.0f} ms; median of {args.repeat}")
            for label, keyset, baseline in rows:
                ours = median_ms(keyset, args.repeat)
                base = median_ms(baseline, args.repeat)
                verdict = "ok" if ours < GOAL_MS else "OVER GOAL"
                print(
                    f"  {label:<40} keyset {ours:7.2f} ms  OFFSET baseline {base:8.2f} ms"
                    f"  ({base / ours:5.1f}x)  {verdict}"
                )
            filtered = median_ms(
                lambda: ledger.history(limit=50, before=cursor, service="fraud", env="prod"),
                args.repeat,
            )
            print(f"  {'middle page, service=fraud env=prod':<40} keyset {filtered:7.2f} ms")
            chain_started = time.perf_counter()
            report = ledger.verify_chain()
            chain_s = time.perf_counter() - chain_started
        print(f"  Ledger.open (read-write, quick_check + schema check): {open_ms:.1f} ms")
        print(f"  verify_chain: {report.checked} events in {chain_s:.2f} s, ok={report.ok}")


if __name__ == "__main__":
    main()
