"""`relman release --to dev` on the demo, against the same steps done by hand with the tools.

Both sides start from the same committed demo project (``relman demo``, made in a temp dir)
with the dev environment down and no Bento in the store: every run gets a fresh, empty
``BENTOML_HOME`` of its own, so each one really builds. relman's side is one process,
``relman --batch --json release --to dev`` (verify, the suites dev requires, build, gates,
validate on a side port, switch the proxy, tags), timed from start to exit; ``relman down``
follows, untimed. The by-hand side is the same work with the tools, each its own process:

    dvc status; git status --porcelain           (lineage: nothing stale, nothing uncommitted)
    python -m pytest tests/unit tests/data       (dev's suites, in ONE pytest invocation;
                                                  relman runs one process per suite, side
                                                  by side, one per CPU)
    bentoml build --version hand-N               (a fresh version: a new Bento)
    bentoml serve TAG --port P                   (polled on /readyz every 0.1 s, as relman
                                                  does, until it answers 200)
    one POST of sample_request.json to /predict  (must answer 200); the server is then
                                                  stopped, untimed

The two sides alternate, round by round (which goes first alternates too), after one
warm-up each. Printed: the median of each phase on both sides, relman's per-step seconds
from its ``--json`` document next to the by-hand phase that does the same work (what no step
accounts for is CLI start-up, the ledger and the reports), the medians of the totals and
their ratio. Goal: <= 1.15.

    python benchmarks/bench_release.py [--runs 3]
    python benchmarks/bench_release.py --no-autoload   # PYTEST_DISABLE_PLUGIN_AUTOLOAD=1 on
                                                       # both sides: pytest starts without the
                                                       # entry-point plugins of its venv

Everything lives in one temp dir: the demo and its DVC remote, the BentoML homes, the
servers' working folders. Every process started carries a marker variable; at the end
``relman down`` runs and any ``bentoml`` or ``core.targets.proxy`` process whose command line or
environment still names the temp dir is killed, and reported. The build locks the Bento's
packages against PyPI (network), on both sides alike.
"""

from __future__ import annotations

import argparse
import contextlib
import http.client
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from demo_env import RELMAN, clean_up, environment, run

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
BENTOML = str(BIN / "bentoml")
DVC = str(BIN / "dvc")
MARKER = "RELMAN_BENCH_RELEASE"
READY_POLL = 0.1  # the interval relman's wait_ready polls /readyz at
READY_TIMEOUT = 120.0

# relman's steps, grouped under the by-hand phase doing the same work
PHASES = [
    ("lineage", "dvc status + git status", ("verify",)),
    ("tests", "pytest (1 run, both suites)", ("test ",)),
    ("build", "bentoml build", ("build",)),
    ("serve", "serve until ready + 1 request", ("dev: validate",)),
]


def fresh_home(tmp: Path, label: str) -> str:
    home = Path(tempfile.mkdtemp(prefix=f"bentoml-{label}-", dir=tmp))
    return str(home)


# --------------------------------------------------------------------------- relman's side


def timed_json(
    args: list[str], demo: Path, env: dict[str, str], home: str
) -> tuple[float, dict[str, Any]]:
    """``relman --batch --json ARGS`` from a BentoML home of its own, timed from start to
    exit, then ``relman down`` (untimed); its seconds and document. A failure ends the
    benchmark."""
    env = {**env, "BENTOML_HOME": home}
    started = time.perf_counter()
    done = subprocess.run(
        [RELMAN, "--batch", "--json", *args], cwd=demo, env=env, capture_output=True, text=True
    )
    total = time.perf_counter() - started
    try:
        document = json.loads(done.stdout)
    except ValueError:
        document = {"ok": False, "error": done.stderr.strip()[-300:]}
    run([RELMAN, "--batch", "down"], demo, env)  # untimed
    if done.returncode != 0 or not document.get("ok"):
        raise SystemExit(f"relman {args[0]} failed ({done.returncode}): {document.get('error')}")
    return total, document


def relman_side(demo: Path, env: dict[str, str], home: str) -> tuple[float, dict[str, float]]:
    total, document = timed_json(["release", "--to", "dev"], demo, env, home)
    built = [s for s in document["steps"] if s["name"] == "build"]
    if not built or "built" not in built[0]["detail"]:
        raise SystemExit(f"relman did not build a new Bento: {built}")
    steps: dict[str, float] = {}
    for entry in document["steps"]:
        steps[entry["name"]] = steps.get(entry["name"], 0.0) + float(entry.get("seconds", 0.0))
    return total, steps


def relman_phases(total: float, steps: dict[str, float]) -> dict[str, float]:
    phases: dict[str, float] = {}
    claimed = 0.0
    for key, _label, prefixes in PHASES:
        matching = [v for name, v in steps.items() if name.startswith(prefixes)]
        # The suites run side by side: their phase lasts as long as the longest of them.
        seconds = (max(matching) if key == "tests" else sum(matching)) if matching else 0.0
        phases[key] = seconds
        claimed += seconds
    suites = [v for name, v in steps.items() if name.startswith("test ")]
    in_steps = sum(steps.values()) - sum(suites) + (max(suites) if suites else 0.0)
    phases["other steps"] = in_steps - claimed  # lock, gates, switch, tags
    phases["outside steps"] = total - in_steps  # CLI start-up, imports, ledger, reports
    phases["total"] = total
    return phases


# --------------------------------------------------------------------------- by hand


def _get_status(port: int, path: str) -> int | None:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=1.0)
    try:
        conn.request("GET", path)
        return conn.getresponse().status
    except OSError:
        return None
    finally:
        conn.close()


def _stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            process.wait()


def by_hand(
    demo: Path, env: dict[str, str], home: str, version: str, scratch: Path
) -> dict[str, float]:
    from core.host.ports import ephemeral_port

    env = {**env, "BENTOML_HOME": home}
    phases: dict[str, float] = {}
    started = time.perf_counter()
    dvc = run([DVC, "status"], demo, env)
    git = run(["git", "status", "--porcelain"], demo, env)
    phases["lineage"] = time.perf_counter() - started
    if git.stdout.strip() or "up to date" not in dvc.stdout:
        raise SystemExit(f"demo not clean: {git.stdout.strip()!r} {dvc.stdout.strip()!r}")

    mark = time.perf_counter()
    run([sys.executable, "-m", "pytest", "tests/unit", "tests/data", "-q"], demo, env)
    phases["tests"] = time.perf_counter() - mark

    mark = time.perf_counter()
    run([BENTOML, "build", "--version", version], demo, env)
    phases["build"] = time.perf_counter() - mark
    tag = f"iris_classifier:{version}"

    mark = time.perf_counter()
    port = ephemeral_port()
    scratch.mkdir(parents=True, exist_ok=True)
    with open(scratch / "serve.log", "ab") as log:
        server = subprocess.Popen(
            [BENTOML, "serve", tag, "--host", "127.0.0.1", "--port", str(port)],
            cwd=scratch,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        deadline = time.monotonic() + READY_TIMEOUT
        while _get_status(port, "/readyz") != 200:
            if server.poll() is not None or time.monotonic() > deadline:
                raise SystemExit(f"bentoml serve {tag} never got ready; see {scratch}")
            time.sleep(READY_POLL)
        body = (demo / "sample_request.json").read_bytes()
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        conn.request("POST", "/predict", body, {"Content-Type": "application/json"})
        response = conn.getresponse()
        answer = response.read()
        conn.close()
        finished = time.perf_counter()
        phases["serve"] = finished - mark
        if response.status != 200:
            raise SystemExit(f"/predict answered {response.status}: {answer[:200]!r}")
    finally:
        _stop(server)  # untimed
    phases["total"] = finished - started
    return phases


# --------------------------------------------------------------------------- cleanup


# --------------------------------------------------------------------------- main


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument(
        "--no-autoload",
        action="store_true",
        help="PYTEST_DISABLE_PLUGIN_AUTOLOAD=1 on both sides (no entry-point pytest plugins)",
    )
    args = parser.parse_args()
    sys.path.insert(0, str(ROOT))

    with tempfile.TemporaryDirectory(prefix="relman-bench-release-") as name:
        tmp = Path(name)
        env = environment(tmp, MARKER)
        if args.no_autoload:
            env["PYTEST_DISABLE_PLUGIN_AUTOLOAD"] = "1"
        demo = tmp / "demo"
        ours: list[dict[str, float]] = []
        steps_seen: list[dict[str, float]] = []
        hand: list[dict[str, float]] = []
        try:
            print(f"creating the demo in {demo} ...", file=sys.stderr)
            run([RELMAN, "demo", str(demo)], tmp, {**env, "BENTOML_HOME": str(tmp / "unused")})
            run([RELMAN, "--batch", "down"], demo, env)
            for number in range(args.runs + 1):  # round 0 is the warm-up of both sides
                print(f"round {number}{' (warm-up)' if not number else ''} ...", file=sys.stderr)
                sides = ["relman", "hand"] if number % 2 == 0 else ["hand", "relman"]
                for side in sides:
                    home = fresh_home(tmp, f"{side}{number}")
                    if side == "relman":
                        total, steps = relman_side(demo, env, home)
                        if number:
                            ours.append(relman_phases(total, steps))
                            steps_seen.append(steps)
                    else:
                        phases = by_hand(demo, env, home, f"hand-{number}", tmp / f"serve-{number}")
                        if number:
                            hand.append(phases)
        finally:
            clean_up(demo, env, tmp)
    report(ours, steps_seen, hand, args.runs, args.no_autoload)
    return 0


def report(
    ours: list[dict[str, float]],
    steps_seen: list[dict[str, float]],
    hand: list[dict[str, float]],
    runs: int,
    no_autoload: bool,
) -> None:
    def med(rows: list[dict[str, float]], key: str) -> float:
        return statistics.median(row.get(key, 0.0) for row in rows)

    def row(label: str, relman: float, by_hand: float | None, detail: str = "") -> None:
        shown = f"{by_hand:8.2f} {relman - by_hand:+7.2f}" if by_hand is not None else " " * 16
        print(f"  {label:<34} {relman:8.2f} {shown}   {detail}".rstrip())

    plugins = "off" if no_autoload else "autoloaded"
    print(
        f"relman release --to dev vs by hand: medians of {runs} rounds, seconds "
        f"(pytest entry-point plugins {plugins})"
    )
    print(f"  {'phase':<34} {'relman':>8} {'by hand':>8} {'extra':>7}   relman's steps")
    claimed = tuple(prefix for *_, prefixes in PHASES for prefix in prefixes)
    for key, label, prefixes in PHASES:
        names = sorted({n for s in steps_seen for n in s if n.startswith(prefixes)})
        detail = ", ".join(f"{n} {med(steps_seen, n):.2f}" for n in names)
        row(label, med(ours, key), med(hand, key), detail)
    others = sorted({n for s in steps_seen for n in s if not n.startswith(claimed)})
    detail = ", ".join(
        f"{n} {med(steps_seen, n):.2f}" for n in others if med(steps_seen, n) >= 0.005
    )
    row("lock, gates, switch, tags", med(ours, "other steps"), None, detail)
    row("outside steps (CLI, ledger, ...)", med(ours, "outside steps"), None)
    ours_m, hand_m = med(ours, "total"), med(hand, "total")
    row("total (median of totals)", ours_m, hand_m)
    ratio = ours_m / hand_m
    print(f"ratio {ratio:.3f} (goal <= 1.15): {'ok' if ratio <= 1.15 else 'OVER'}")


if __name__ == "__main__":
    raise SystemExit(main())
