"""CPU of `relman monitor` (the collector) with three live environments: scraping them once a
second, or (``--source prometheus``) reading them from Prometheus every 5 s.

The demo (``relman demo``, made in a temp dir) gets ``[monitoring] scrape_interval = 1.0``
in its relman.toml (committed), then goes live in all three environments as a user would:

    relman --batch release --to staging               (dev, then staging)
    RELMAN_USER=bob relman approve RELEASE --env prod (four-eyes: not the promoter)
    RELMAN_USER=alice relman --batch promote iris --to prod

Promote starts the project's collector, detached (``relman monitor``, found again with
core.monitoring.collector_process.collector_pid). Its CPU is measured over ``--seconds`` (60) of
wall time,
twice: with no load, then with ``relman traffic iris --env ENV --rate R`` (5 a second) on
each of the three environments, so every scrape and monitor-log read carries data. CPU is
utime + stime of the collector from /proc/PID/stat (clock ticks, SC_CLK_TCK), before and
after, divided by wall time: % of one core. The passes are counted as the rows the
metric store's ``scrapes`` table gained per environment over the window (one per pass and
environment), against the ``seconds / scrape_interval`` expected. Goal: under 5% of one
core, with load.

When the goal is missed (or with ``--profile``), the detached collector is stopped
(core.monitoring.collector_process.stop_collector) and ``Collector.run_pass`` runs in this process
against
the same demo, under the same load, under cProfile: first the pass just after the next
minute boundary (the per-minute rollups, drift and accuracy), then ``--passes`` (10)
steady passes of that same minute, one a second; each profile shows its top functions by
cumulative time.

    python benchmarks/bench_collector.py [--seconds 60] [--rate 5] [--profile]
    python benchmarks/bench_collector.py --source prometheus [--minutes 3]

With ``--source prometheus`` a real Prometheus (tests/prom_stack.py: Debian's package on a
free loopback port, scraping every second) reads the file_sd list the collector keeps,
relman.toml gets ``source = "prometheus"``, its URL and the list, and ``scrape_interval =
5.0``; the goal is under 2% of one core with load. Then, under the same load, a scraping
collector runs beside it in this process, and the per-minute rollups of ``--minutes``
whole minutes are printed side by side (benchmarks/collector_compare.py says what may
differ and by how much).

Everything lives in one temp dir with its own BENTOML_HOME; at the end ``relman down``
runs, and every process still naming the temp dir (command line or environment: the Bento
servers, the proxies, the collector, the traffic) is stopped by pid and reported.
"""

from __future__ import annotations

import argparse
import contextlib
import cProfile
import io
import os
import pstats
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from demo_env import RELMAN, clean_up, environment, relman_json, run

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
MARKER = "RELMAN_BENCH_COLLECTOR"
IDENTITY = ["-c", "user.name=bench", "-c", "user.email=bench@relman.invalid"]
ENVS = ("dev", "staging", "prod")
SERVICE = "iris"
INTERVAL = 1.0  # seconds between passes; --source prometheus: PROM_INTERVAL
GOAL = 5.0  # % of one core; --source prometheus: PROM_GOAL
PROM_INTERVAL = 5.0
PROM_GOAL = 2.0
FILE_SD = ".relman/prometheus-targets.json"
TICK = os.sysconf("SC_CLK_TCK")


# ------------------------------------------------------------------------------ set-up


def set_interval(demo: Path, env: dict[str, str], prometheus_url: str | None = None) -> None:
    """``scrape_interval = INTERVAL`` under [monitoring]; with ``prometheus_url``, the
    Prometheus source and the file_sd list too. Committed."""
    path = demo / "relman.toml"
    line = f"scrape_interval = {INTERVAL}"
    if prometheus_url is not None:
        line += (
            f'\nsource = "prometheus"\nprometheus_url = "{prometheus_url}"\nfile_sd = "{FILE_SD}"'
        )
    text, count = re.subn(r"(?m)^scrape_interval\s*=\s*[0-9.]+", line, path.read_text())
    if count != 1:
        raise SystemExit("relman.toml: no 'scrape_interval = ...' line under [monitoring]")
    path.write_text(text)
    run(["git", *IDENTITY, "commit", "-qam", f"bench: {line}"], demo, env)


def go_live(demo: Path, tmp: Path) -> str:
    """Release to dev and staging, approve as bob, promote to prod as alice."""
    released = relman_json(["release", "--to", "staging"], demo, environment(tmp, MARKER))
    release = released["release"]
    run(
        [RELMAN, "--batch", "approve", release, "--env", "prod"],
        demo,
        environment(tmp, MARKER, "bob"),
    )
    relman_json(["promote", SERVICE, "--to", "prod"], demo, environment(tmp, MARKER, "alice"))
    return release


def wait_collector(project: object, seconds: float = 30.0) -> int:
    from core.monitoring.collector_process import collector_pid

    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        pid = collector_pid(project)  # type: ignore[arg-type]
        if pid is not None:
            return pid
        time.sleep(0.2)
    raise SystemExit(
        "promote started no collector (core.monitoring.collector_process.collector_pid is None)"
    )


# ------------------------------------------------------------------------------ measuring


def cpu_ticks(pid: int) -> tuple[int, int]:
    """(utime + stime, cutime + cstime) of ``pid``, in clock ticks."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[-1].split()
    # after the command: state(0) ... utime(11) stime(12) cutime(13) cstime(14)
    return int(fields[11]) + int(fields[12]), int(fields[13]) + int(fields[14])


def scrape_rows(project: object, since: int, until: int) -> dict[str, tuple[int, int]]:
    """Per environment: (scrapes stored in [since, until), requests they counted)."""
    from core.monitoring.collector_process import metrics_path
    from store.metrics.store import MetricStore

    found = {}
    with MetricStore.open(metrics_path(project), readonly=True) as store:  # type: ignore[arg-type]
        for env in ENVS:
            rows = store.scrapes(SERVICE, env, since, until)
            found[env] = (len(rows), rows[-1].requests - rows[0].requests if rows else 0)
    return found


def measure(label: str, pid: int, project: object, seconds: float) -> float:
    """% of one core the collector used over ``seconds``, printed with the passes counted."""
    # start on a whole second, so the scrapes of [since, until) are exactly the window's
    time.sleep(1.0 - time.time() % 1.0)
    since, wall0 = round(time.time()), time.perf_counter()
    own0, children0 = cpu_ticks(pid)
    time.sleep(seconds)
    own1, children1 = cpu_ticks(pid)
    wall = time.perf_counter() - wall0
    until = since + round(wall)
    time.sleep(1.5)  # the pass of the window's last second is stored
    rows = scrape_rows(project, since, until)
    cpu = (own1 - own0) / TICK
    percent = 100.0 * cpu / wall
    expected = (until - since) / INTERVAL
    passes = ", ".join(f"{env} {n}" for env, (n, _) in rows.items())
    requests = ", ".join(f"{env} {r:.0f}" for env, (_, r) in rows.items())
    print(
        f"{label:<10} CPU {cpu:6.2f} s over {wall:5.1f} s wall = {percent:5.2f}% of one core "
        f"(children {(children1 - children0) / TICK:.2f} s)\n"
        f"{'':<10} scrapes stored: {passes} (expected {expected:.0f} each at {INTERVAL:g} s); "
        f"requests they counted: {requests}"
    )
    return percent


def start_traffic(demo: Path, env: dict[str, str], rate: float, seconds: float) -> list:
    """``relman traffic`` on each environment; its progress lines go to tmp/traffic-ENV.log."""
    options = ["--rate", f"{rate:g}", "--duration", f"{seconds:.0f}"]
    children = []
    for name in ENVS:
        with (demo.parent / f"traffic-{name}.log").open("wb") as output:
            children.append(
                subprocess.Popen(
                    [RELMAN, "--batch", "traffic", SERVICE, "--env", name, *options],
                    cwd=demo,
                    env=env,
                    stdin=subprocess.DEVNULL,
                    stdout=output,
                    stderr=subprocess.STDOUT,
                )
            )
    return children


def stop_traffic(children: list) -> None:
    for child in children:
        if child.poll() is None:
            child.terminate()
    for child in children:
        try:
            child.wait(timeout=10)
        except subprocess.TimeoutExpired:
            child.kill()
            child.wait()


# ------------------------------------------------------------------------------ profiling


def top(profile: cProfile.Profile, count: int) -> str:
    out = io.StringIO()
    stats = pstats.Stats(profile, stream=out)
    stats.strip_dirs().sort_stats("cumulative").print_stats(count)
    lines = out.getvalue().splitlines()
    start = next((i for i, line in enumerate(lines) if "ncalls" in line), 0)
    return "\n".join("    " + line for line in lines[start:] if line.strip())


def profile_passes(project: object, passes: int, count: int) -> None:
    from core.monitoring.collector import Collector
    from core.monitoring.collector_process import stop_collector

    stopped = stop_collector(project)  # type: ignore[arg-type]
    print(f"profile: detached collector stopped ({stopped}); run_pass in this process")
    collector = Collector(project)  # type: ignore[arg-type]
    started = time.perf_counter()
    collector.run_pass()  # warm-up: imports, readers, the ledger's first open
    print(f"  warm-up pass {1000 * (time.perf_counter() - started):.1f} ms")

    time.sleep(60.5 - time.time() % 60)  # just after the minute: rollups, drift, accuracy
    minute = cProfile.Profile()
    began, cpu0 = time.perf_counter(), time.process_time()
    minute.runcall(collector.run_pass)
    wall, cpu = time.perf_counter() - began, time.process_time() - cpu0
    print(f"  minute pass (profiled): {1000 * wall:.1f} ms wall, {1000 * cpu:.1f} ms CPU")
    print(top(minute, count))

    steady = cProfile.Profile()  # the passes of the same minute: no minute completes in them
    seconds = []
    for _ in range(passes):
        time.sleep(1.0 - time.time() % 1.0)
        began, cpu0 = time.perf_counter(), time.process_time()
        steady.runcall(collector.run_pass)
        seconds.append((time.perf_counter() - began, time.process_time() - cpu0))
    wall = sum(s[0] for s in seconds) / len(seconds)
    cpu = sum(s[1] for s in seconds) / len(seconds)
    print(
        f"  steady pass (x{passes}, profiled): mean {1000 * wall:.1f} ms wall, "
        f"{1000 * cpu:.1f} ms CPU"
    )
    print(top(steady, count))


# ------------------------------------------------------------------------------ cleanup


# ------------------------------------------------------------------------------ main


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=60.0, help="each measuring window")
    parser.add_argument("--rate", type=float, default=5.0, help="requests a second per env")
    parser.add_argument("--profile", action="store_true", help="profile even under the goal")
    parser.add_argument("--passes", type=int, default=10, help="steady passes profiled (<= 50)")
    parser.add_argument("--top", type=int, default=25, help="functions shown per profile")
    parser.add_argument(
        "--source", choices=("scrape", "prometheus"), default="scrape", help="the collector's"
    )
    parser.add_argument(
        "--minutes", type=int, default=3, help="--source prometheus: whole minutes compared"
    )
    args = parser.parse_args()
    if not 1 <= args.passes <= 50:
        parser.error("--passes: 1 to 50 (the steady passes stay inside one minute)")
    sys.path.insert(0, str(ROOT))
    if args.source == "prometheus":
        global INTERVAL, GOAL
        INTERVAL, GOAL = PROM_INTERVAL, PROM_GOAL
        from tests.prom_stack import MISSING, PROMETHEUS

        if shutil.which(PROMETHEUS) is None:
            raise SystemExit(f"--source prometheus {MISSING}")
    with contextlib.ExitStack() as stack:
        tmp = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="relman-bench-")))
        prometheus_url = None
        if args.source == "prometheus":  # its own folder: clean_up ends what names tmp
            from tests.prom_stack import prometheus_config, running_prometheus

            folder = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="bench-prom-")))
            config = prometheus_config(file_sd=[tmp / "demo" / FILE_SD])
            server = stack.enter_context(running_prometheus(folder, config))
            prometheus_url = server.url
            print(f"Prometheus {server.url} (pid {server.process.pid}), scraping every 1 s")
        bench(args, tmp, prometheus_url)
    return 0


def bench(args: argparse.Namespace, tmp: Path, prometheus_url: str | None) -> None:
    """The demo live in three environments, the collector's CPU measured idle and under
    load; with ``prometheus_url``, both sources' rollups compared."""
    from core.config.model import load_project

    env = environment(tmp, MARKER)
    demo = tmp / "demo"
    traffic: list = []
    beside = None
    try:
        print(f"creating the demo in {demo} ...", file=sys.stderr)
        run([RELMAN, "demo", str(demo)], tmp, env)
        set_interval(demo, env, prometheus_url)
        print("release --to staging, approve (bob), promote --to prod ...", file=sys.stderr)
        release = go_live(demo, tmp)
        project = load_project(demo)
        pid = wait_collector(project)
        print(
            f"release {release[:12]} live in {', '.join(ENVS)}; collector pid {pid}; "
            f"scrape_interval {INTERVAL:g} s; {os.cpu_count()} CPUs"
        )
        time.sleep(5.0)  # the collector's first passes (imports, readers) are behind it
        idle = measure("no load", pid, project, args.seconds)

        traffic = start_traffic(demo, env, args.rate, 10 * args.seconds + 600)
        time.sleep(5.0)
        for child in traffic:
            if child.poll() is not None:
                tail = (tmp / f"traffic-{ENVS[traffic.index(child)]}.log").read_text()
                raise SystemExit(f"relman traffic exited {child.returncode}: {tail[-300:]}")
        print(f"load: relman traffic --rate {args.rate:g} on each of {', '.join(ENVS)}")
        if prometheus_url is not None:  # the scraping collector beside, same traffic
            from collector_compare import Beside

            beside = Beside(project, tmp / "scraping", INTERVAL)
        loaded = measure("load", pid, project, args.seconds)

        verdict = "met" if max(idle, loaded) < GOAL else "MISSED"
        print(
            f"goal: under {GOAL:g}% of one core with load ({args.source}, "
            f"{INTERVAL:g} s interval): {verdict} ({loaded:.2f}%)"
        )
        if beside is not None:
            agreed = compare_minutes(project, beside, args.minutes)
            print(f"rollups of both sources agree: {'yes' if agreed else 'NO'}")
        if args.profile or max(idle, loaded) >= GOAL:
            profile_passes(project, args.passes, args.top)
    finally:
        if beside is not None:
            beside.stop()
        stop_traffic(traffic)
        clean_up(demo, env, tmp)


def compare_minutes(project: object, beside: object, count: int) -> bool:
    """Wait for ``count`` whole minutes after the scraping collector's first, both rolled
    up, and print them side by side."""
    from collector_compare import compare

    first = int(beside.started) // 60 * 60 + 60  # type: ignore[attr-defined]
    minutes = [first + 60 * i for i in range(count)]
    done = minutes[-1] + 60 + 3 * INTERVAL + 6  # both judged it (the access log's 6 s too)
    print(f"waiting {max(0, done - time.time()):.0f} s for {count} whole minutes of both ...")
    time.sleep(max(0.0, done - time.time()))
    return compare(
        project.metrics_path,  # type: ignore[attr-defined]
        beside.store,  # type: ignore[attr-defined]
        SERVICE,
        ENVS,
        minutes,
    )


if __name__ == "__main__":
    raise SystemExit(main())
