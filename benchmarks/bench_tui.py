"""First paint, memory and idle CPU of the TUI on a big project, against a bare Textual app.

The project is the demo (``relman demo``) with 10,000 releases of iris in its ledger
(``Ledger.record_release`` in a loop, one process, recorded as of two hours ago), iris
live in dev, staging and prod, and a metric store of 10M samples: six hours of one-second
scrapes of 462 series (iris in each environment, ending now, and 459 others), with their
per-minute rollups, written with SQL in big transactions as bench_metric_store.py does.

Both apps run as fresh processes in a real terminal (tmux, 80x24, a server of its own):
``relman --project DIR`` through its command line, and a bare Textual app with a Header
and a DataTable of the same columns. Each marks its first paint (``call_after_refresh``
from the first screen's mount) with the time since its process started (/proc/self/stat)
and its VmRSS, then exits; the runs alternate and the medians are compared.
Goal: relman within 1.5x of the bare app, under 150 MB resident. For reference, the app is
also timed without the command line before it (which validates relman.toml first).

Then relman runs ``--idle`` seconds with its live refresh at 1 s (each second the overview
reads the environments, what the ledger says and what really serves; the alerts every 5 s,
the series every 10 s, the candidate, git and DVC, every 30 s), and the CPU it and its
children used (utime + stime + cutime + cstime) over that time is read from /proc/PID/stat,
after a settling time. Goal: under 2% of one core.

    .venv/bin/python benchmarks/bench_tui.py [--runs 7] [--idle 20] [--rows 10000000]
"""

from __future__ import annotations

import argparse
import hashlib
import os
import shutil
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

RELEASES = 10_000
SPAN = 6 * 3600  # seconds of one-second scrapes per series
ENVS = ("dev", "staging", "prod")
PAINT_GOAL = 1.5
RSS_GOAL_MB = 150.0
CPU_GOAL = 2.0
SETTLE = 10.0
TMUX = shutil.which("tmux")


# ---------------------------------------------------------------------------- in the child

# What each app runs: as little as possible before the app's own imports, so that both sides
# pay the same start-up. It marks the first paint (the first screen mounted and refreshed)
# with the seconds since the process started (/proc/self/stat, boot based) and its VmRSS,
# then exits, unless told to stay (the idle run).
CHILD_COMMON = """
import os, sys, time
def since_start():
    fields = open("/proc/self/stat").read().rsplit(")", 1)[1].split()
    started = int(fields[19]) / os.sysconf("SC_CLK_TCK")
    return time.clock_gettime(time.CLOCK_BOOTTIME) - started
def mark(app):
    rss = next(l.split()[1] for l in open("/proc/self/status") if l.startswith("VmRSS:"))
    open(MARKFILE, "w").write(f"{since_start():.4f} {int(rss) / 1024:.1f}\\n")
    if not STAY:
        app.exit()
"""
CHILD_BARE = """
from textual.app import App
from textual.widgets import DataTable, Header
class Bare(App):
    def compose(self):
        yield Header()
        table = DataTable()
        for label in ("Service", "Env", "Release", "State", "Since", "Traffic"):
            table.add_column(label)
        yield table
    def on_mount(self):
        self.call_after_refresh(mark, self)
Bare().run()
"""
# For reference only: the app without the command line before it (relman.toml is then read
# and validated by the overview's first read, after the paint).
CHILD_APP = """
sys.path.insert(0, ROOT)
from screens.overview import OverviewScreen
from tui.app import RelmanApp
mounted = OverviewScreen.on_mount
def on_mount(self):
    self.call_after_refresh(mark, self.app)
    mounted(self)
OverviewScreen.on_mount = on_mount
RelmanApp(project_dir=PROJECT).run()
"""
CHILD_RELMAN = """
sys.path.insert(0, ROOT)
from screens.overview import OverviewScreen
from tui import cli
mounted = OverviewScreen.on_mount
def on_mount(self):
    self.call_after_refresh(mark, self.app)  # before the overview's own first read
    mounted(self)
OverviewScreen.on_mount = on_mount
OverviewScreen.REFRESH_SECONDS = 1.0
sys.exit(cli.run(["--project", PROJECT]))
"""


def child_command(kind: str, markfile: Path, project: Path, *, stay: bool = False) -> list[str]:
    head = f"MARKFILE, STAY, ROOT, PROJECT = {str(markfile)!r}, {stay}, {str(ROOT)!r}, "
    head += f"{str(project)!r}\n"
    body = {"bare": CHILD_BARE, "app": CHILD_APP, "relman": CHILD_RELMAN}[kind]
    return [sys.executable, "-c", head + CHILD_COMMON + body]


def rss_mb(pid: int, field: str = "VmRSS") -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024
    return 0.0


# ---------------------------------------------------------------------------- the project


def isolate(base: Path) -> None:
    """HOME, BentoML, DVC and git identity in ``base``, for this process and its children."""
    home = base / "home"
    home.mkdir(parents=True)
    os.environ.update(
        {
            "HOME": str(home),
            "XDG_CONFIG_HOME": str(home / ".config"),
            "XDG_CACHE_HOME": str(home / ".cache"),
            "BENTOML_HOME": str(base / "bentoml"),
            "GIT_CONFIG_NOSYSTEM": "1",
            "GIT_CONFIG_GLOBAL": os.devnull,
            "GIT_AUTHOR_NAME": "relman bench",
            "GIT_AUTHOR_EMAIL": "bench@relman.invalid",
            "GIT_COMMITTER_NAME": "relman bench",
            "GIT_COMMITTER_EMAIL": "bench@relman.invalid",
            "DVC_NO_ANALYTICS": "1",
            "DVC_SITE_CACHE_DIR": str(base / "dvc-site-cache"),
        }
    )


def release_id(n: int) -> str:
    """Twelve hex digits that differ from the first ones on, as real release ids do."""
    return hashlib.sha256(str(n).encode()).hexdigest()[:12]


def fill_ledger(project_root: Path) -> float:
    """10,000 releases of iris (the newest live in every environment); the seconds it took."""
    from core.api import load_project
    from store import Ledger

    project = load_project(project_root)
    started = time.perf_counter()
    # Recorded as of two hours ago: the ages on the overview are past their seconds, as on
    # a project in use (they would redraw the table every second for the first minute).
    ago = datetime.now(UTC) - timedelta(hours=2)
    ledger = Ledger.open(project.ledger_path, actor="bench", clock=lambda: ago)
    try:
        for n in range(RELEASES):
            ledger.record_release(
                release_id(n),
                service="iris",
                git_commit=f"{n:040x}",
                git_branch="main",
                message=f"release {n}",
                author="bench",
                params={"train": {"C": n}},
                metrics={"accuracy": 0.95},
                version=f"v0.{n}.0",
            )
        for offset, env in enumerate(ENVS):
            url = f"http://127.0.0.1:{project.config.environments[env].port}"
            release = release_id(RELEASES - 1 - offset)
            ledger.set_environment_state("iris", env, "live", release_id=release, url=url)
    finally:
        ledger.close()
    return time.perf_counter() - started


def fill_metric_store(path: Path, rows: int) -> tuple[int, float]:
    """``rows`` samples (SPAN one-second scrapes per series) ending now, and their rollups;
    the series count and the seconds it took."""
    from benchmarks.bench_metric_store import LES, SHARES
    from store.metrics.store import MetricStore

    started = time.perf_counter()
    series = max(len(ENVS), rows // SPAN)
    end = int(time.time()) // 60 * 60
    start = end - SPAN
    MetricStore.open(path).close()
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA synchronous = OFF")
    conn.execute("PRAGMA cache_size = -262144")
    conn.execute("CREATE TEMP TABLE bench_series (service TEXT, env TEXT, rate INTEGER)")
    names = [("iris", env) for env in ENVS] + [
        (f"svc{s // 3:03d}", ENVS[s % 3]) for s in range(series - len(ENVS))
    ]
    conn.executemany(
        "INSERT INTO bench_series VALUES (?, ?, ?)",
        [(service, env, 3 + s % 20) for s, (service, env) in enumerate(names)],
    )
    buckets = ", ".join(
        f"'{le}', CAST(CAST(r * {share} AS INTEGER) AS REAL)"
        for le, share in zip(LES[:-1], SHARES, strict=False)
    )
    insert = (
        "WITH RECURSIVE ticks(n) AS (SELECT ?1 UNION ALL SELECT n + 1 FROM ticks WHERE n + 1 < ?2),"
        " samples AS (SELECT s.service, s.env, ticks.n, CAST(ticks.n * s.rate AS REAL) AS r"
        "  FROM ticks CROSS JOIN bench_series AS s)"  # time-major, like the collector
        " INSERT INTO scrapes (service, env, t, release, requests, errors, in_progress, buckets)"
        " SELECT service, env, ?3 + n, 'r1', r, CAST(CAST(r / 50 AS INTEGER) AS REAL), n % 7,"
        f"  json_object({buckets}, '+Inf', r) FROM samples"
    )
    chunk = max(1, 500_000 // series)
    for first in range(0, SPAN, chunk):
        conn.execute("BEGIN")
        conn.execute(insert, (first, min(SPAN, first + chunk), start))
        conn.execute("COMMIT")
    conn.execute("BEGIN")
    conn.execute(
        "WITH RECURSIVE minutes(m) AS (SELECT 0 UNION ALL SELECT m + 1 FROM minutes "
        "WHERE m + 1 < ?1) INSERT INTO rollups SELECT s.service, s.env, ?2 + 60 * m, 'r1', "
        "60.0 * s.rate, 0.6 * s.rate, s.rate, 0.01, 40.0 + m % 7, 90.0 + m % 13, 240.0, 3.0 "
        "FROM minutes CROSS JOIN bench_series AS s",
        (SPAN // 60, start),
    )
    conn.execute("COMMIT")
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    conn.close()
    return series, time.perf_counter() - started


# ---------------------------------------------------------------------------- measuring


class Terminal:
    """A tmux server of its own, one 80x24 pane at a time."""

    def __init__(self) -> None:
        self.socket = f"relman-bench-{os.getpid()}"
        self.socket_path = ""

    def tmux(self, *args: str) -> str:
        assert TMUX is not None
        done = subprocess.run(
            [TMUX, "-L", self.socket, "-f", os.devnull, *args],
            capture_output=True,
            text=True,
            check=True,
        )
        return done.stdout

    def run(self, command: list[str]) -> int:
        """Start ``command`` in a fresh window; its pid."""
        self.tmux("new-session", "-d", "-s", "bench", "-x", "80", "-y", "24", "--", *command)
        self.socket_path = self.tmux("display-message", "-p", "#{socket_path}").strip()
        return int(self.tmux("display-message", "-p", "-t", "bench", "#{pane_pid}"))

    def close(self) -> None:
        """Kill the server and remove its socket (tmux 3.3 leaves it behind)."""
        subprocess.run([str(TMUX), "-L", self.socket, "kill-server"], capture_output=True)
        if self.socket_path:
            Path(self.socket_path).unlink(missing_ok=True)


def wait_for(path: Path, timeout: float = 60) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        text = path.read_text() if path.exists() else ""
        if text.endswith("\n"):
            return text
        time.sleep(0.01)
    raise SystemExit(f"no first paint marked in {timeout:.0f} s ({path})")


def wait_gone(pid: int, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while Path(f"/proc/{pid}").exists() and time.monotonic() < deadline:
        stat = Path(f"/proc/{pid}/stat").read_text() if Path(f"/proc/{pid}").exists() else ""
        if ") Z " in stat:
            return
        time.sleep(0.02)


def first_paint(term: Terminal, kind: str, project: Path, folder: Path, n: int) -> list[float]:
    markfile = folder / f"mark-{kind}-{n}"
    pid = term.run(child_command(kind, markfile, project))
    seconds, rss = (float(x) for x in wait_for(markfile).split())
    wait_gone(pid)
    term.close()
    return [seconds, rss]


def cpu_seconds(pid: int) -> tuple[float, float]:
    """CPU seconds of ``pid`` with its children (utime + stime + cutime + cstime), and of
    its main thread alone (the event loop; the rest is the workers and Textual's I/O)."""
    tick = os.sysconf("SC_CLK_TCK")
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    main = Path(f"/proc/{pid}/task/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    total = sum(int(fields[i]) for i in (11, 12, 13, 14)) / tick
    return total, (int(main[11]) + int(main[12])) / tick


def idle_cpu(term: Terminal, project: Path, folder: Path, seconds: float) -> tuple[float, ...]:
    """CPU % of one core over ``seconds`` of relman idling on the overview (1 s refresh),
    after SETTLE seconds (the first reads, DVC's among them): all of it and the event
    loop's; VmRSS and VmHWM (MB) then."""
    markfile = folder / "mark-idle"
    pid = term.run(child_command("relman", markfile, project, stay=True))
    wait_for(markfile)
    time.sleep(SETTLE)
    (cpu0, main0), wall0 = cpu_seconds(pid), time.monotonic()
    time.sleep(seconds)
    (cpu1, main1), wall1 = cpu_seconds(pid), time.monotonic()
    rss, hwm = rss_mb(pid), rss_mb(pid, "VmHWM")
    screen = term.tmux("capture-pane", "-p", "-t", "bench")
    term.tmux("send-keys", "-t", "bench", "q")
    wait_gone(pid)
    term.close()
    print("   the overview it showed:")
    print("\n".join(f"   | {line}" for line in screen.rstrip().splitlines()))
    wall = wall1 - wall0
    return 100 * (cpu1 - cpu0) / wall, 100 * (main1 - main0) / wall, rss, hwm


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--idle", type=float, default=20.0)
    parser.add_argument("--rows", type=int, default=10_000_000)
    args = parser.parse_args()
    if TMUX is None:
        raise SystemExit("this benchmark runs the apps in tmux: install tmux")
    with tempfile.TemporaryDirectory(prefix="relman-bench-tui-") as name:
        folder = Path(name)
        isolate(folder)
        from core.scaffold.demo import create_demo

        started = time.perf_counter()
        project = create_demo(folder / "iris-demo")
        print(f"demo made in {time.perf_counter() - started:.1f} s")
        print(f"ledger: {RELEASES:,} releases recorded in {fill_ledger(project):.1f} s")
        store = project / ".relman" / "metrics.db"
        series, built = fill_metric_store(store, args.rows)
        os.sync()  # gigabytes of dirty pages written back during the runs would skew them
        size_gb = store.stat().st_size / 1e9
        print(
            f"metric store: {series * SPAN:,} samples ({series} series x {SPAN:,} s) and "
            f"{series * SPAN // 60:,} rollups, {size_gb:.1f} GB, built in {built:.0f} s"
        )
        term = Terminal()
        try:
            results: dict[str, list[list[float]]] = {"bare": [], "relman": [], "app": []}
            for kind in results:  # warm-up: imports in the OS cache
                first_paint(term, kind, project, folder, -1)
            for n in range(args.runs):
                for kind in results:
                    results[kind].append(first_paint(term, kind, project, folder, n))
            paint = {k: statistics.median(r[0] for r in v) for k, v in results.items()}
            rss = {k: statistics.median(r[1] for r in v) for k, v in results.items()}
            ratio = paint["relman"] / paint["bare"]
            print(f"first paint, median of {args.runs} (80x24 in tmux, from process start):")
            print(f"   bare Textual app (Header + DataTable)  {1000 * paint['bare']:6.0f} ms"
                  f"   VmRSS {rss['bare']:5.1f} MB")  # fmt: skip
            print(f"   relman overview                        {1000 * paint['relman']:6.0f} ms"
                  f"   VmRSS {rss['relman']:5.1f} MB")  # fmt: skip
            verdict = "ok" if ratio <= PAINT_GOAL else "OVER GOAL"
            print(f"   ratio {ratio:.2f} (goal <= {PAINT_GOAL})  {verdict}")
            print(f"   for reference, RelmanApp run without the command line before it "
                  f"(relman.toml checked after the paint): {1000 * paint['app']:.0f} ms, "
                  f"{paint['app'] / paint['bare']:.2f}x")  # fmt: skip
            cpu, loop, rss_end, hwm = idle_cpu(term, project, folder, args.idle)
        finally:
            term.close()
        print(f"relman idle on the overview, live refresh 1 s, {args.idle:.0f} s:")
        verdict = "ok" if cpu < CPU_GOAL else "OVER GOAL"
        print(
            f"   CPU {cpu:.2f}% of one core, children included (goal < {CPU_GOAL}%)  {verdict}"
            f"   [event loop {loop:.2f}%, workers and terminal I/O {cpu - loop:.2f}%]"
        )
        verdict = "ok" if hwm < RSS_GOAL_MB else "OVER GOAL"
        print(
            f"   VmRSS {rss_end:.1f} MB, peak VmHWM {hwm:.1f} MB (goal < {RSS_GOAL_MB:.0f} MB)"
            f"  {verdict}"
        )


if __name__ == "__main__":
    main()
