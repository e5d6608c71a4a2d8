"""The built-in pipeline as data against `relman release` and the same work by hand; the
watcher's cost while idle and how soon it sees a data change.

Part 1, on the demo (as ``bench_release.py``, whose sides it reuses): each round runs
``relman --batch --json release --to dev``, ``relman --batch --json pipeline run release``
(the built-in pipeline: verify, test, gate, build, deploy:dev) and the same steps by hand
with the tools, each from a fresh, empty ``BENTOML_HOME`` (every side really builds) and
with dev down; the order rotates round by round, after a warm-up of each. Printed: the
median totals and the ratios pipeline / release (goal <= 1.0) and pipeline / by hand
(goal <= 1.05), and the pipeline's step times.

Part 2, a throwaway git + DVC repository with 1,000 DVC-tracked files (one tracked folder)
and a pipeline ``on = ["data"]``: ``relman watch`` runs as its own process with ``[watch]
poll`` (2 s by default here). Printed: its CPU time over an idle minute as a share of one
core (goal < 1%), next to the cost of one idle poll measured in process; then one file is
changed and the time until the watcher has started the run, in poll intervals (goal <= 2).

    python benchmarks/bench_pipeline.py [--runs 3] [--idle 60] [--poll 2] [--skip-release]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import bench_release
from demo_env import RELMAN, clean_up, environment, run

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
MARKER = "RELMAN_BENCH_PIPELINE"
FILES = 1000


# ------------------------------------------------------------------ part 1: on the demo


def pipeline_side(demo: Path, env: dict[str, str], home: str) -> tuple[float, dict[str, float]]:
    total, document = bench_release.timed_json(["pipeline", "run", "release"], demo, env, home)
    build = next(s for s in document["steps"] if s["name"] == "build")
    if not build["detail"].startswith("built"):
        raise SystemExit(f"the pipeline did not build a new Bento: {build['detail']}")
    return total, {s["name"]: float(s["seconds"]) for s in document["steps"]}


def part_one(runs: int) -> None:
    with tempfile.TemporaryDirectory(prefix="relman-bench-pipeline-") as name:
        tmp = Path(name)
        env = environment(tmp, MARKER)
        demo = tmp / "demo"
        totals: dict[str, list[float]] = {"release": [], "pipeline": [], "hand": []}
        steps_seen: list[dict[str, float]] = []
        try:
            print(f"creating the demo in {demo} ...", file=sys.stderr)
            run([RELMAN, "demo", str(demo)], tmp, {**env, "BENTOML_HOME": str(tmp / "unused")})
            run([RELMAN, "--batch", "down"], demo, env)
            order = ["release", "pipeline", "hand"]
            for number in range(runs + 1):  # round 0 warms every side up
                print(f"round {number}{' (warm-up)' if not number else ''} ...", file=sys.stderr)
                sides = order[number % 3 :] + order[: number % 3]
                for side in sides:
                    home = bench_release.fresh_home(tmp, f"{side}{number}")
                    if side == "release":
                        total, _ = bench_release.relman_side(demo, env, home)
                    elif side == "pipeline":
                        total, steps = pipeline_side(demo, env, home)
                        if number:
                            steps_seen.append(steps)
                    else:
                        phases = bench_release.by_hand(
                            demo, env, home, f"hand-{number}", tmp / f"serve-{number}"
                        )
                        total = phases["total"] if "total" in phases else sum(phases.values())
                    if number:
                        totals[side].append(total)
        finally:
            clean_up(demo, env, tmp)
    med = {side: statistics.median(values) for side, values in totals.items()}
    print(f"the built-in pipeline on the demo (dev): medians of {runs} rounds, seconds")
    print(f"  {'relman release --to dev':<34} {med['release']:8.2f}")
    print(f"  {'relman pipeline run release':<34} {med['pipeline']:8.2f}")
    print(f"  {'the same steps by hand':<34} {med['hand']:8.2f}")
    names = list(steps_seen[0]) if steps_seen else []
    detail = ", ".join(f"{n} {statistics.median(s[n] for s in steps_seen):.2f}" for n in names)
    print(f"  pipeline steps: {detail}")
    one = med["pipeline"] / med["release"]
    hand = med["pipeline"] / med["hand"]
    release = med["release"] / med["hand"]
    print(f"ratio pipeline / release {one:.3f} (goal <= 1.0): {'ok' if one <= 1.0 else 'OVER'}")
    print(f"ratio pipeline / by hand {hand:.3f} (goal <= 1.05): {'ok' if hand <= 1.05 else 'OVER'}")
    print(f"ratio release / by hand  {release:.3f} (for reference)")


# ------------------------------------------------------------------ part 2: the watcher

TOML = """[project]
name = "bench"

[services.svc]
bento = "service:Svc"
model = ["model.txt"]
data = ["data/files"]

[environments.dev]
port = {port}

[watch]
poll = "{poll}s"
debounce = "0s"

[pipelines.retrain]
on = ["data"]
steps = [{{ step = "run", cmd = "true" }}]

[[pipelines.assign]]
match = {{ service = "svc" }}
pipelines = ["retrain"]
"""


def make_repo(root: Path, env: dict[str, str], poll: float) -> None:
    from core.host.ports import ephemeral_port

    files = root / "data" / "files"
    files.mkdir(parents=True)
    for index in range(FILES):
        (files / f"part-{index:04d}.csv").write_text(f"x,y\n{index},{index * 2}\n")
    (root / "relman.toml").write_text(TOML.format(port=ephemeral_port(), poll=poll))
    (root / "dvc.yaml").write_text(
        "stages:\n  train:\n    cmd: python -c \"open('model.txt','w').write('m')\"\n"
        "    deps:\n      - data/files\n    outs:\n      - model.txt\n"
    )
    for cmd in (
        ["git", "init", "-q", "-b", "main"],
        ["git", "config", "user.email", "bench@example.invalid"],
        ["git", "config", "user.name", "bench"],
        [str(BIN / "dvc"), "init", "-q"],
        [str(BIN / "dvc"), "add", "-q", "data/files"],
        [str(BIN / "dvc"), "repro", "-q"],
        ["git", "add", "-A"],
        ["git", "commit", "-qm", "1,000 tracked files"],
    ):
        run(cmd, root, env)


def idle_poll_ms(root: Path) -> float:
    sys.path.insert(0, str(ROOT))
    from core.config.model import load_project
    from core.pipelines.data_changes import DataWatch, watched_data

    project = load_project(root)
    watch = DataWatch(root, watched_data(project, "svc"))
    watch.poll()  # the first poll hashes everything once
    samples = []
    for _ in range(50):
        started = time.process_time()
        changes = watch.poll()
        samples.append(time.process_time() - started)
        assert not changes, changes
    return statistics.median(samples) * 1000


def part_two(idle: float, poll: float) -> None:
    import psutil

    with tempfile.TemporaryDirectory(prefix="relman-bench-watch-") as name:
        tmp = Path(name)
        env = environment(tmp, MARKER)
        root = tmp / "repo"
        root.mkdir()
        make_repo(root, env, poll)
        per_poll = idle_poll_ms(root)
        state = root / ".relman" / "watch.json"
        watcher = subprocess.Popen(
            [RELMAN, "--batch", "watch"],
            cwd=root,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        try:
            deadline = time.monotonic() + 120
            while time.monotonic() < deadline:  # started: its first poll is written
                if state.exists() and json.loads(state.read_text()).get("last_poll"):
                    break
                time.sleep(0.1)
            process = psutil.Process(watcher.pid)
            time.sleep(2 * poll)  # past the first rounds, which read everything once
            before = process.cpu_times()
            wall = time.monotonic()
            time.sleep(idle)
            after = process.cpu_times()
            cpu = (after.user - before.user) + (after.system - before.system)
            share = cpu / (time.monotonic() - wall) * 100
            seen = []
            for attempt in range(5):  # five changes, each at a different point of a poll
                last = (json.loads(state.read_text()).get("last_started") or {}).get("run")
                target = root / "data" / "files" / f"part-{500 + attempt:04d}.csv"
                time.sleep(poll * attempt / 5)
                changed = time.monotonic()
                target.write_text(f"x,y\n{attempt},1\n{attempt},2\n")
                while time.monotonic() - changed < 60 * poll:
                    started = json.loads(state.read_text()).get("last_started") or {}
                    if started.get("run") not in (None, last):
                        seen.append(time.monotonic() - changed)
                        break
                    time.sleep(0.02)
        finally:
            watcher.terminate()
            watcher.wait(30)
    print(f"relman watch on {FILES:,} DVC-tracked files, poll every {poll:g} s")
    print(f"  {'one idle poll (data, in process)':<40} {per_poll:7.1f} ms CPU")
    print(f"  {'watcher process while idle':<40} {share:7.2f} % of a core over {idle:g} s")
    print(f"ratio idle CPU {share:.2f}% (goal < 1%): {'ok' if share < 1 else 'OVER'}")
    if len(seen) < 5:
        print(f"changed files: {5 - len(seen)} of 5 started no run within 60 polls: OVER")
    else:
        polls = [s / poll for s in seen]
        print(
            "a changed file: run started after "
            + ", ".join(f"{p:.2f}" for p in polls)
            + f" poll intervals (max {max(polls):.2f}; goal <= 2): "
            + ("ok" if max(polls) <= 2 else "OVER")
        )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--idle", type=float, default=60.0, help="seconds of idle watching")
    parser.add_argument("--poll", type=float, default=2.0, help="[watch] poll, seconds")
    parser.add_argument("--skip-release", action="store_true", help="only the watcher part")
    args = parser.parse_args()
    sys.path.insert(0, str(ROOT))
    os.environ.setdefault("DVC_NO_ANALYTICS", "1")
    if not args.skip_release:
        part_one(args.runs)
    part_two(args.idle, args.poll)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
