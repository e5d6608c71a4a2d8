"""Failed requests while relman promotes a new release to dev and rolls it back, under load.

The demo (``relman demo``, made in a temp dir) is released to dev (release A). Then a second
release B is made as a user would: ``C`` in params.yaml 1.0 -> 0.5, ``dvc repro``, a commit,
``relman test``. Two phases follow, each under load through dev's own address (relman.toml's
``[environments.dev]`` port, i.e. relman's proxy):

    promote    relman --batch promote iris --to dev      (builds B's Bento, starts and
                                                          validates it on a side port,
                                                          switches, retires A)
    rollback   relman --batch rollback iris --env dev    (A again, on a fresh side port)

The load starts 1 s before the command and stops ``--after`` (2) s after it exits: two
open-loop clients, each sending POST sample_request.json to /predict at ``--rate`` (50)
requests a second from a thread pool, one over kept-alive connections (one
``http.client.HTTPConnection`` per worker thread, reused), one opening a new connection per
request. A request fails when it raises or answers anything but 200; a failed request is
not retried. Printed per phase: requests sent and failed (with the first reasons), p50/p99
latency of each client, which release answered (from the proxy's access log, one JSON line
per request naming its upstream) and the seconds of relman's deploy steps. Goal: 0 failed.

    python benchmarks/bench_switch.py [--rate 50] [--after 2]

Everything lives in one temp dir with its own BENTOML_HOME; at the end ``relman down`` runs,
and any ``bentoml`` or ``core.targets.proxy`` process still naming the temp dir (command line or
environment) is stopped by pid and reported. The build locks packages against PyPI.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import contextlib
import http.client
import json
import re
import statistics
import sys
import tempfile
import threading
import time
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

from demo_env import RELMAN, clean_up, environment, relman_json, run

BIN = Path(sys.executable).parent
DVC = str(BIN / "dvc")
MARKER = "RELMAN_BENCH_SWITCH"
IDENTITY = ["-c", "user.name=bench", "-c", "user.email=bench@relman.invalid"]
KINDS = ("keep-alive", "new connection")
DESIGN = (
    "blue/green behind relman's per-request proxy: the new Bento is started and validated on "
    "a side port, the proxy switches new requests atomically, the old Bento drains in-flight "
    "requests on SIGTERM"
)


# ------------------------------------------------------------------------------ the load


@dataclass
class Result:
    kind: str
    sent_at: float
    ms: float
    failure: str | None


@dataclass
class Load:
    """Two open-loop clients at ``rate`` requests a second each, until stopped."""

    port: int
    body: bytes
    rate: float
    results: list[Result] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)
    stopping: threading.Event = field(default_factory=threading.Event)
    local: threading.local = field(default_factory=threading.local)

    def start(self) -> None:
        self.stopping.clear()
        self.pools = [concurrent.futures.ThreadPoolExecutor(32) for _ in KINDS]
        self.schedulers = [
            threading.Thread(target=self._schedule, args=(kind, pool))
            for kind, pool in zip(KINDS, self.pools, strict=True)
        ]
        for thread in self.schedulers:
            thread.start()

    def stop(self) -> list[Result]:
        self.stopping.set()
        for thread in self.schedulers:
            thread.join()
        for pool in self.pools:
            pool.shutdown(wait=True)  # its threads end, their kept-alive connections close
        with self.lock:
            done, self.results = self.results, []
        return done

    def _schedule(self, kind: str, pool: concurrent.futures.ThreadPoolExecutor) -> None:
        interval, next_at = 1.0 / self.rate, time.monotonic()
        while not self.stopping.is_set():
            now = time.monotonic()
            if now < next_at:
                time.sleep(next_at - now)
                continue
            next_at += interval
            pool.submit(self._one, kind)

    def _one(self, kind: str) -> None:
        keep = kind == "keep-alive"
        conn: http.client.HTTPConnection | None = (
            getattr(self.local, "conn", None) if keep else None
        )
        if conn is None:
            conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
        sent_at = time.time()
        started = time.perf_counter()
        failure = None
        try:
            conn.request("POST", "/predict", self.body, {"Content-Type": "application/json"})
            response = conn.getresponse()
            answer = response.read()
            if response.status != 200:
                text = answer.decode(errors="replace").strip()[:80]
                failure = f"HTTP {response.status}: {text}"
        except (OSError, http.client.HTTPException) as exc:
            failure = f"{type(exc).__name__}: {exc}"
        ms = (time.perf_counter() - started) * 1000
        if keep and failure is None:
            self.local.conn = conn
        else:
            conn.close()
            if keep:
                self.local.conn = None
        with self.lock:
            self.results.append(Result(kind, sent_at, ms, failure))


def _pct(values: list[float], q: int) -> float:
    if len(values) < 2:
        return float("nan")
    return statistics.quantiles(values, n=100)[q - 1]


# ------------------------------------------------------------------------------ reporting


def releases_by_upstream(env_dir: Path) -> dict[str, str]:
    found = {}
    for path in (env_dir / "instances").glob("*/instance.json"):
        with contextlib.suppress(OSError, ValueError):
            info = json.loads(path.read_text())
            found[info["address"]] = info["release"]
    return found


def answered(env_dir: Path, since: float, until: float, names: dict[str, str]) -> str:
    """Who answered /predict between ``since`` and ``until``, from the proxy's access log."""
    by_upstream = releases_by_upstream(env_dir)
    counts: dict[str, int] = {}
    try:
        lines = (env_dir / "access.log").read_text().splitlines()
    except OSError:
        return "no access log"
    for line in lines:
        with contextlib.suppress(ValueError):
            entry = json.loads(line)
            if entry.get("path") != "/predict" or not since <= entry.get("t", 0) <= until:
                continue
            release = by_upstream.get(entry.get("upstream") or "", entry.get("upstream"))
            label = names.get(release or "", str(release))
            if entry.get("status") != 200:
                label += f" HTTP {entry.get('status')}"
            counts[label] = counts.get(label, 0) + 1
    return ", ".join(f"{label} {count}" for label, count in sorted(counts.items()))


def print_phase(
    name: str,
    results: list[Result],
    document: dict,
    seconds: float,
    who: str,
) -> int:
    failed = [r for r in results if r.failure]
    reasons: dict[str, int] = {}
    for r in failed:
        reasons[r.failure or ""] = reasons.get(r.failure or "", 0) + 1
    steps = ", ".join(
        f"{s['name']} {s['seconds']:.2f}"
        for s in document.get("steps", [])
        if s.get("seconds", 0) >= 0.005
    )
    print(f"{name}: relman {seconds:.1f} s ({steps})")
    print(f"  sent {len(results)}, failed {len(failed)}")
    for reason, count in list(reasons.items())[:3]:
        print(f"    {count} x {reason}")
    for kind in KINDS:
        mine = [r for r in results if r.kind == kind]
        ok = [r.ms for r in mine if not r.failure]
        bad = sum(1 for r in mine if r.failure)
        print(
            f"  {kind:<15} sent {len(mine):5d}  failed {bad:3d}  "
            f"latency ms p50 {_pct(ok, 50):7.1f}  p99 {_pct(ok, 99):7.1f}"
        )
    print(f"  answered by     {who}")
    return len(failed)


# ------------------------------------------------------------------------------ cleanup


# ------------------------------------------------------------------------------ main


def make_release_b(demo: Path, env: dict[str, str]) -> None:
    params = demo / "params.yaml"
    text, count = re.subn(r"(?m)^(\s+C:\s*)1\.0\b", r"\g<1>0.5", params.read_text())
    if count != 1:
        raise SystemExit("params.yaml: no 'C: 1.0' line to change")
    params.write_text(text)
    run([DVC, "repro", "-q"], demo, env)
    run(["git", *IDENTITY, "add", "-A"], demo, env)
    run(["git", *IDENTITY, "commit", "-q", "-m", "bench: C 1.0 -> 0.5"], demo, env)


def phase(
    load: Load, args: list[str], demo: Path, env: dict[str, str], after: float
) -> tuple[list[Result], dict, float, float, float]:
    load.start()
    since = time.time()
    time.sleep(1.0)
    started = time.perf_counter()
    try:
        document = relman_json(args, demo, env)
    finally:
        seconds = time.perf_counter() - started
        time.sleep(after)
        results = load.stop()
    return results, document, seconds, since, time.time()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rate", type=float, default=50.0, help="requests a second per client")
    parser.add_argument("--after", type=float, default=2.0, help="load kept up after (s)")
    args = parser.parse_args()

    failed = 0
    with tempfile.TemporaryDirectory(prefix="relman-bench-switch-") as name:
        tmp = Path(name)
        env = environment(tmp, MARKER)
        demo = tmp / "demo"
        try:
            print(f"creating the demo in {demo} ...", file=sys.stderr)
            run([RELMAN, "demo", str(demo)], tmp, env)
            config = tomllib.loads((demo / "relman.toml").read_text())
            port = int(config["environments"]["dev"]["port"])
            env_dir = demo / ".relman" / "envs" / "iris" / "dev"
            print("release A: relman release --to dev ...", file=sys.stderr)
            first = relman_json(["release", "--to", "dev"], demo, env)
            names = {first["release"]: f"A {first.get('version')}"}
            print("release B: C 1.0 -> 0.5, dvc repro, commit, relman test ...", file=sys.stderr)
            make_release_b(demo, env)
            tested = relman_json(["test"], demo, env)
            names[tested["release"]] = "B"
            load = Load(port, (demo / "sample_request.json").read_bytes(), args.rate)
            print(
                f"load: 2 clients x {args.rate:g}/s through http://127.0.0.1:{port}/predict "
                "(relman's dev proxy)"
            )
            for label, command in (
                ("promote", ["promote", "iris", "--to", "dev"]),
                ("rollback", ["rollback", "iris", "--env", "dev", "--reason", "bench"]),
            ):
                print(f"{label} under load ...", file=sys.stderr)
                results, document, seconds, since, until = phase(
                    load, command, demo, env, args.after
                )
                if label == "promote":
                    names[document["release"]] = f"B {document.get('version')}"
                time.sleep(1.2)  # the proxy flushes its access log every second
                who = answered(env_dir, since, until, names)
                failed += print_phase(label, results, document, seconds, who)
        finally:
            clean_up(demo, env, tmp)
    print(f"failed requests during promote + rollback: {failed} (goal 0)")
    print(f"design: {DESIGN}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
