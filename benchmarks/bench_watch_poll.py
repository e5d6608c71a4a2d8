"""What the watcher's data poll costs while nothing changes, and how soon it sees a change.

Issue 14: the watcher detects a data change within 2 poll intervals and uses < 1% of a core
while idle, measured on a repository with 1,000 DVC-tracked files. This measures
``core.pipelines.data_changes.DataWatch.poll`` (the watcher's other work per tick, a
``git rev-parse`` for new commits, is not in it) on two throwaway git + DVC repositories:

- ``dir``: one tracked directory of 1,000 small CSVs (one .dvc file);
- ``files``: 1,000 CSVs, each with its own .dvc file (1,000 records to stat as well).

For each: the first poll (every file hashed), then ``--polls`` idle polls: the median wall
time and process CPU time (``time.process_time``) of one, the files hashed by them (must be
0), and the CPU share of one core at a 2 s and a 5 s poll interval. Then one file gets rows
appended and the polls until it is reported are counted (must be 1; the issue allows 2).

    python benchmarks/bench_watch_poll.py [--files 1000] [--polls 200]
"""

from __future__ import annotations

import argparse
import logging
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from core.pipelines.data_changes import DataWatch

LIMIT = 1.0  # % of one core while idle
INTERVALS = (2.0, 5.0)


def _git(root: Path, *args: str) -> None:
    subprocess.run(["git", "-C", str(root), *args], check=True, capture_output=True)


def build(root: Path, files: int, per_file: bool) -> list[str]:
    """A git + DVC repository whose data is ``files`` CSVs; the paths to watch."""
    os.environ.setdefault("DVC_NO_ANALYTICS", "1")
    from dvc.repo import Repo

    logging.getLogger("dvc").setLevel(logging.CRITICAL + 1)  # its hints to `git add` 1,000 files
    root.mkdir(parents=True)
    _git(root, "init", "-q", "-b", "main")
    shards = root / "data" / "shards"
    shards.mkdir(parents=True)
    for i in range(files):
        rows = "".join(f"{i}.{j},{j % 3},class{j % 3}\n" for j in range(20))
        (shards / f"part-{i:04d}.csv").write_text("x,y,label\n" + rows)
    cwd = os.getcwd()
    os.chdir(root)  # DVC resolves the targets of add from the current directory
    try:
        with Repo.init(str(root)) as repo:
            if per_file:
                repo.add([f"data/shards/part-{i:04d}.csv" for i in range(files)])
            else:
                repo.add("data/shards")
    finally:
        os.chdir(cwd)
    _git(root, "add", "-A")
    _git(
        root,
        "-c", "user.name=bench", "-c", "user.email=bench@localhost",
        "commit", "-q", "-m", "data",
    )  # fmt: skip
    if per_file:
        return [f"data/shards/part-{i:04d}.csv" for i in range(files)]
    return ["data/shards"]


def measure(root: Path, paths: list[str], polls: int) -> dict[str, float]:
    started = time.perf_counter()
    watch = DataWatch(root, paths)
    made = time.perf_counter() - started
    started = time.perf_counter()
    first = watch.poll()
    cold = time.perf_counter() - started
    assert first == [], f"a fresh repository reports changes: {first[:3]}"
    hashed = watch.files_hashed
    walls, cpus = [], []
    for _ in range(polls):
        wall, cpu = time.perf_counter(), time.process_time()
        assert watch.poll() == []
        cpus.append(time.process_time() - cpu)
        walls.append(time.perf_counter() - wall)
    idle_hashed = watch.files_hashed - hashed
    # One file gets new rows: how many polls until it is reported?
    target = root / "data" / "shards" / "part-0500.csv"
    with open(target, "a") as handle:
        handle.write("9.9,9,class9\n")
    latency = 0
    while True:
        latency += 1
        if watch.poll() or latency >= 10:
            break
    cpu = statistics.median(cpus)
    return {
        "init_ms": made * 1000,
        "cold_ms": cold * 1000,
        "wall_ms": statistics.median(walls) * 1000,
        "cpu_ms": cpu * 1000,
        "idle_hashed": idle_hashed,
        **{f"share_{interval:g}": cpu / interval * 100 for interval in INTERVALS},
        "latency": latency,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--files", type=int, default=1000)
    parser.add_argument("--polls", type=int, default=200)
    args = parser.parse_args()
    results = {}
    with tempfile.TemporaryDirectory(prefix="relman-bench-watch-") as tmp:
        for name, per_file in (("dir", False), ("files", True)):
            root = Path(tmp) / name
            started = time.perf_counter()
            paths = build(root, args.files, per_file)
            print(f"built '{name}': {args.files} files in {time.perf_counter() - started:.1f} s")
            results[name] = measure(root, paths, args.polls)
    print()
    print(f"DataWatch.poll on {args.files} DVC-tracked files, median of {args.polls} idle polls")
    header = f"{'':34}" + "".join(f"{name:>12}" for name in results)
    print(header)
    rows = [
        ("DataWatch() (finds records), ms", "init_ms", "{:12.1f}"),
        ("first poll (hashes all), ms", "cold_ms", "{:12.1f}"),
        ("idle poll, wall ms", "wall_ms", "{:12.2f}"),
        ("idle poll, CPU ms", "cpu_ms", "{:12.2f}"),
        ("files hashed by idle polls", "idle_hashed", "{:12.0f}"),
        *[
            (f"CPU at a {interval:g} s interval, % core", f"share_{interval:g}", "{:12.3f}")
            for interval in INTERVALS
        ],
        ("polls until a change is seen", "latency", "{:12.0f}"),
    ]
    for label, key, fmt in rows:
        print(f"{label:34}" + "".join(fmt.format(r[key]) for r in results.values()))
    worst = max(r[f"share_{INTERVALS[0]:g}"] for r in results.values())
    slowest = max(r["latency"] for r in results.values())
    print()
    print(f"limit: < {LIMIT:g}% of a core while idle: worst {worst:.3f}% at {INTERVALS[0]:g} s")
    print(f"limit: a change seen within 2 polls: worst {slowest:.0f}")


if __name__ == "__main__":
    main()
