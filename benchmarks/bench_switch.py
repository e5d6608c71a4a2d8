"""Failed requests while relman promotes a new release to dev, rolls it back, and runs canary
and shadow rollouts, under load.

The demo (``relman demo``, made in a temp dir) is released to dev (release A). Then a second
release B is made as a user would: ``C`` in params.yaml 1.0 -> 0.5, ``dvc repro``, a commit,
``relman test``. The phases follow, each under load through dev's own address (relman.toml's
``[environments.dev]`` port, i.e. relman's proxy):

    promote    relman --batch promote iris --to dev      (builds B's Bento, starts and
                                                          validates it on a side port,
                                                          switches, retires A)
    rollback   relman --batch rollback iris --env dev    (A again, on a fresh side port)

and, unless ``--no-rollouts``, three rollouts of B beside A (docs/rollouts.md), relman.toml
given ``[analysis.bench]`` (one measurement 3 s after each weight's pause) and a committed
``[environments.dev.rollout]`` (a relman.toml change is not a new release):

    canary     relman --batch promote iris --to dev --strategy canary
               (steps: weight 10%, pause 3s, analysis bench, weight 50%, pause 3s,
               analysis bench; ends promoted: B answers every request). Then, without load,
               relman rollback puts A back.
    abort      relman --batch promote iris --to dev --strategy canary --detach (returns once
               the rollout began), then, 2 s after the weight is 10%,
               relman --batch rollout abort iris --env dev; A must answer everything after.
    shadow     relman --batch promote iris --to dev --strategy shadow
               (steps: weight 100% mirrored, pause 3s, analysis bench): A answers every client,
               copies go to B (access log role "shadow"); ends promoted.

The load starts 1 s before the command and stops ``--after`` (2) s after it exits: two
open-loop clients, each sending POST sample_request.json to /predict at ``--rate`` (50)
requests a second from a thread pool, one over kept-alive connections (one
``http.client.HTTPConnection`` per worker thread, reused), one opening a new connection per
request. A request fails when it raises or answers anything but 200; a failed request is
not retried. Printed per phase: requests sent and failed (with the first reasons), p50/p99
latency of each client, which release answered in which role (from the proxy's access log,
one JSON line per request with its ``release`` and ``role``), the mirrored copies, and the
seconds of relman's steps (abort: the rollout's steps; its "relman" seconds span both
commands and the waits between them); at the end one line per phase. Goal: 0 failed in
every phase.

    python benchmarks/bench_switch.py [--rate 50] [--after 2] [--no-rollouts] [--logs DIR]

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
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import tomllib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from demo_env import RELMAN, clean_up, environment, relman_json, run

from core import api
from core.host.processes import pid_alive

BIN = Path(sys.executable).parent
DVC = str(BIN / "dvc")
MARKER = "RELMAN_BENCH_SWITCH"
IDENTITY = ["-c", "user.name=bench", "-c", "user.email=bench@relman.invalid"]
KINDS = ("keep-alive", "new connection")
DESIGN = (
    "blue/green behind relman's per-request proxy: the new Bento is started and validated on "
    "a side port, the proxy switches new requests atomically, the old Bento drains in-flight "
    "requests on SIGTERM; a rollout changes the proxy's routing (a weighted draw per request, "
    "or a copy to the shadow after the stable answered) the same way"
)
ANALYSIS = """
[analysis.bench]
interval = "3s"
count = 1
inconclusive = "wait"
min_requests = 30
"""
CANARY = """
[environments.dev.rollout]
strategy = "canary"
steps = [ { weight = 10, pause = "3s" }, { analysis = "bench" },
          { weight = 50, pause = "3s" }, { analysis = "bench" } ]
"""
SHADOW = """
[environments.dev.rollout]
strategy = "shadow"
steps = [ { weight = 100, pause = "3s" }, { analysis = "bench" } ]
"""


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


def access_records(env_dir: Path, since: float, until: float) -> list[dict[str, Any]] | None:
    """The proxy's /predict records that ended between ``since`` and ``until`` (None: no
    access log)."""
    records, found = [], False
    for name in ("access.log.1", "access.log"):
        try:
            lines = (env_dir / name).read_text().splitlines()
        except OSError:
            continue
        found = True
        for line in lines:
            with contextlib.suppress(ValueError):
                entry = json.loads(line)
                if entry.get("path") == "/predict" and since <= entry.get("t", 0) <= until:
                    records.append(entry)
    return records if found else None


def answered(
    records: list[dict[str, Any]] | None, names: dict[str, str], by_upstream: dict[str, str]
) -> str:
    """Who answered the clients: release and role (stable/canary), with any non-200."""
    if records is None:
        return "no access log"
    counts: dict[str, int] = {}
    for entry in records:
        if entry.get("role") == "shadow":
            continue  # a copy: its answer was dropped
        upstream = entry.get("upstream") or ""
        release = entry.get("release") or by_upstream.get(upstream, upstream or "none")
        label = f"{names.get(release, release)} {entry.get('role') or 'stable'}"
        if entry.get("status") != 200:
            label += f" HTTP {entry.get('status')}"
        counts[label] = counts.get(label, 0) + 1
    return ", ".join(f"{label} {count}" for label, count in sorted(counts.items())) or "nobody"


def mirrored(records: list[dict[str, Any]] | None, names: dict[str, str]) -> str:
    """The copies the proxy sent to a shadow: by release and status, and how many agreed."""
    copies = [entry for entry in records or [] if entry.get("role") == "shadow"]
    counts: dict[str, int] = {}
    agree = {True: 0, False: 0, None: 0}
    for entry in copies:
        label = f"{names.get(entry.get('release') or '', entry.get('release'))}"
        label += f" HTTP {entry.get('status')}"
        counts[label] = counts.get(label, 0) + 1
        agree[entry.get("agree")] = agree.get(entry.get("agree"), 0) + 1
    by = ", ".join(f"{label} {count}" for label, count in sorted(counts.items()))
    return (
        f"{len(copies)} ({by or 'none'}); same answer as the stable: {agree[True]}, "
        f"different: {agree[False]}, not comparable: {agree[None]}"
    )


def dropped_copies(env_dir: Path) -> int:
    """Copies the proxy did not send (too many out at once), as its log says."""
    try:
        text = (env_dir / "proxy.log").read_text(errors="replace")
    except OSError:
        return 0
    return sum(int(n) for n in re.findall(r"shadow copies dropped: (\d+)", text))


def print_phase(
    name: str,
    results: list[Result],
    document: dict[str, Any],
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
        if s.get("seconds", 0) >= 0.005 or s["name"].startswith("weight")
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


def print_rollout(rollout: dict[str, Any]) -> None:
    """The rollout as `relman rollout status` left it: outcome, each measurement's checks."""
    print(
        f"  rollout         #{rollout.get('id')} {rollout.get('strategy')}: "
        f"{rollout.get('phase')}, weight {rollout.get('weight')}%: {rollout.get('detail')}"
    )
    for step in rollout.get("steps", []):
        if step["name"].startswith("analysis"):
            print(f"    {step['name']} {step['seconds']:.1f} s: {step['status']} {step['detail']}")


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


def configure(demo: Path, env: dict[str, str], base: str, extra: str, what: str) -> None:
    """relman.toml = ``base`` + ``extra``, committed (not a new release: docs/rollouts.md)."""
    (demo / "relman.toml").write_text(base + extra)
    run(["git", *IDENTITY, "add", "relman.toml"], demo, env)
    run(["git", *IDENTITY, "commit", "-q", "-m", f"bench: {what}"], demo, env)


def relman_any(args: list[str], demo: Path, env: dict[str, str]) -> tuple[int, dict[str, Any]]:
    """``relman --batch --json ARGS``: its exit code and document, whatever the outcome (a
    rollout aborted exits 1 with a document that says why)."""
    done = subprocess.run(
        [RELMAN, "--batch", "--json", *args], cwd=demo, env=env, capture_output=True, text=True
    )
    try:
        document: dict[str, Any] = json.loads(done.stdout)
    except ValueError:
        tail = (done.stderr or done.stdout).strip().splitlines()[-3:]
        document = {"ok": False, "error": " | ".join(tail)}
    return done.returncode, document


def rollout_status(demo: Path, env: dict[str, str]) -> dict[str, Any]:
    """`relman rollout status iris --env dev` (its "ok" is false once a rollout aborted)."""
    code, document = relman_any(["rollout", "status", "iris", "--env", "dev"], demo, env)
    if "phase" not in document:
        raise SystemExit(f"relman rollout status exited {code}: {document.get('error')}")
    return document


def rollout_now(demo: Path) -> dict[str, Any]:
    """The rollout as the ledger has it now: in-process, so polling costs no relman start."""
    return api.rollout_status(api.load_project(demo), "iris", "dev")


def wait_until(what: str, check: Callable[[], bool], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise SystemExit(f"gave up after {timeout:g} s waiting until {what}")
        time.sleep(0.2)


def phase(
    load: Load, action: Callable[[], dict[str, Any]], after: float
) -> tuple[list[Result], dict[str, Any], float, float, float]:
    load.start()
    since = time.time()
    time.sleep(1.0)
    started = time.perf_counter()
    try:
        document = action()
    finally:
        seconds = time.perf_counter() - started
        time.sleep(after)
        results = load.stop()
    return results, document, seconds, since, time.time()


def abort_canary(demo: Path, env: dict[str, str]) -> dict[str, Any]:
    """A canary promoted with --detach, aborted with `relman rollout abort` 2 s after its
    first weight is set; the rollout's document, with ``aborted_at`` (when the ledger said
    aborted) and what the two commands answered."""
    promote = ["promote", "iris", "--to", "dev", "--strategy", "canary", "--detach"]
    code, detached = relman_any(promote, demo, env)
    if not detached.get("detached"):
        raise SystemExit(f"promote --detach exited {code} without a rollout: {detached}")
    status: dict[str, Any] = {}

    def weighted() -> bool:
        status.update(rollout_now(demo))
        return bool(status["weight"] >= 10 or status["phase"] != "progressing")

    wait_until("the canary's weight is 10%", weighted, 120)
    if status["phase"] != "progressing":  # ended before it could be aborted: say how
        log = demo / ".relman" / "rollouts" / "iris-dev.log"
        tail = log.read_text(errors="replace").strip().splitlines()[-3:] if log.exists() else []
        raise SystemExit(
            f"rollout #{status.get('id')} {status['phase']} before the abort: "
            f"{status.get('detail')} | {' | '.join(tail)}"
        )
    time.sleep(2.0)
    asked_at = time.time()
    code, answer = relman_any(["rollout", "abort", "iris", "--env", "dev"], demo, env)
    if "phase" not in answer:
        raise SystemExit(f"relman rollout abort exited {code}: {answer.get('error')}")
    wait_until("the rollout is aborted", lambda: rollout_now(demo)["phase"] != "progressing", 60)
    aborted_at = time.time()
    wait_until("the background promote exits", lambda: not pid_alive(detached["pid"]), 60)
    document = rollout_status(demo, env)
    document.update(asked_at=asked_at, aborted_at=aborted_at, answered_abort=answer["phase"])
    return document


def keep_logs(demo: Path, into: Path) -> None:
    """relman's state of the demo (ledger, dev's proxy, access and shadow logs, instance
    logs, the background promotes' output), copied before it is cleaned up."""
    with contextlib.suppress(OSError, shutil.Error):
        shutil.copytree(demo / ".relman", into, dirs_exist_ok=True, ignore_dangling_symlinks=True)
    print(f"relman's state kept in {into}", file=sys.stderr)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rate", type=float, default=50.0, help="requests a second per client")
    parser.add_argument("--after", type=float, default=2.0, help="load kept up after (s)")
    parser.add_argument(
        "--rollouts",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="the canary, abort and shadow phases after promote and rollback (default: on)",
    )
    parser.add_argument(
        "--logs", type=Path, help="copy the demo's .relman (logs, ledger) here at the end"
    )
    args = parser.parse_args()
    problem = ""

    table: list[tuple[str, float, int, int, str]] = []
    with tempfile.TemporaryDirectory(prefix="relman-bench-switch-") as name:
        tmp = Path(name)
        env = environment(tmp, MARKER)
        demo = tmp / "demo"
        try:
            print(f"creating the demo in {demo} ...", file=sys.stderr)
            run([RELMAN, "demo", str(demo)], tmp, env)
            base = (demo / "relman.toml").read_text()
            port = int(tomllib.loads(base)["environments"]["dev"]["port"])
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

            def measured(label: str, action: Callable[[], dict[str, Any]]) -> dict[str, Any]:
                print(f"{label} under load ...", file=sys.stderr)
                results, document, seconds, since, until = phase(load, action, args.after)
                if document.get("kind") == "promote" and document.get("release") in names:
                    names[document["release"]] = f"B {document.get('version')}"
                time.sleep(1.2)  # the proxy flushes its access log every second
                records = access_records(env_dir, since, until)
                by_upstream = releases_by_upstream(env_dir)
                failed = print_phase(
                    label, results, document, seconds, answered(records, names, by_upstream)
                )
                outcome = "done" if document.get("ok") else f"exit {document.get('exit_code')}"
                if document.get("error"):
                    print(f"  relman said     {document['error']}")
                if label in ("canary", "abort", "shadow"):
                    rollout = document if label == "abort" else rollout_status(demo, env)
                    outcome = str(rollout.get("phase"))
                    if label == "abort":
                        late = [r for r in records or [] if r.get("t", 0) > document["aborted_at"]]
                        print(
                            f"  after abort     {answered(late, names, by_upstream)} "
                            f"(`rollout abort` answered {document['answered_abort']}; the "
                            f"ledger said aborted "
                            f"{document['aborted_at'] - document['asked_at']:.1f} s after it was "
                            "asked)"
                        )
                    if label == "shadow":
                        print(f"  mirrored        {mirrored(records, names)}")
                        print(f"  not mirrored    {dropped_copies(env_dir)} (proxy.log)")
                    print_rollout(rollout)
                table.append((label, seconds, len(results), failed, outcome))
                return document

            measured("promote", lambda: relman_json(["promote", "iris", "--to", "dev"], demo, env))
            measured(
                "rollback",
                lambda: relman_json(
                    ["rollback", "iris", "--env", "dev", "--reason", "bench"], demo, env
                ),
            )
            if args.rollouts:
                configure(demo, env, base, ANALYSIS + CANARY, "canary rollout steps")

                def promote(strategy: str) -> Callable[[], dict[str, Any]]:
                    command = ["promote", "iris", "--to", "dev", "--strategy", strategy]
                    return lambda: relman_any(command, demo, env)[1]

                measured("canary", promote("canary"))
                if rollout_status(demo, env)["phase"] == "promoted":  # else A serves still
                    print("rollback to A (no load) ...", file=sys.stderr)
                    back = ["rollback", "iris", "--env", "dev", "--reason", "bench"]
                    relman_json(back, demo, env)
                measured("abort", lambda: abort_canary(demo, env))
                configure(demo, env, base, ANALYSIS + SHADOW, "shadow rollout steps")
                measured("shadow", promote("shadow"))
        except SystemExit as exc:  # a command failed or a wait gave up: said below
            problem = str(exc.code)
        finally:
            if args.logs:
                keep_logs(demo, args.logs)
            clean_up(demo, env, tmp)
    print()
    print(f"{'phase':<10} {'relman s':>8} {'sent':>6} {'failed':>6}  outcome")
    for label, seconds, sent, failed, outcome in table:
        print(f"{label:<10} {seconds:8.1f} {sent:6d} {failed:6d}  {outcome}")
    total = sum(row[3] for row in table)
    print(f"failed requests in {len(table)} phases: {total} (goal 0)")
    print(f"design: {DESIGN}")
    if problem:
        print(f"stopped early: {problem}")
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
