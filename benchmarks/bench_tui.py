"""Time to the first row a person sees, memory and idle CPU of the TUI on a big project,
against a bare Textual app.

The project is the demo (``relman demo``) made big by benchmarks/big_project.py: 10,000
releases of iris in its ledger, iris live in dev, staging and prod, and a metric store of
10M samples (six hours of one-second scrapes of 462 series, with their per-minute rollups).

Time to row: each app is started as a fresh process in a real terminal (tmux, 80x24, a
server of its own), ``relman --project DIR`` exactly as a person types it, and a bare
Textual app (a Header and a DataTable with iris's row, written by this script to a file).
The screen is read with ``tmux capture-pane`` every few milliseconds until the row of iris
in dev is on it (the service, the environment and its state ``live``); the time is taken
from the process's start (its start time in /proc/PID/stat, against CLOCK_BOOTTIME). The
runs alternate, bare then relman, after one warm-up each (imports in the OS cache); the
medians are compared. Goal: relman within 1.2x of the bare app. Measured twice: both apps
starting from bytecode, as installed apps do, and under PYTHONDONTWRITEBYTECODE=1, where a
checkout without __pycache__ compiles relman's modules at every start (use_bytecode_cache).

Then relman runs ``--idle`` seconds with its live refresh at 1 s (each second the overview
reads the environments, what the ledger says and what really serves; the alerts every 5 s,
the series every 10 s, the candidate, git and DVC, every 30 s), after a settling time
that lets every first read end (the candidate's among them), from bytecode, after a
warm-up run that compiled what the worker imports. The CPU it and its children
used (utime + stime + cutime + cstime) over that time is read from /proc/PID/stat (goal:
under 2% of one core), and its VmRSS and peak VmHWM from /proc/PID/status at the end
(goal: at most 120 MB).

Every tmux server and every process this script started is ended by pid before it exits.

    .venv/bin/python benchmarks/bench_tui.py [--runs 9] [--idle 20] [--rows 10000000]
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.big_project import RELEASES, SPAN, fill_ledger, fill_metric_store  # noqa: E402

ROW_GOAL = 1.2
RSS_GOAL_MB = 120.0
CPU_GOAL = 2.0
# Seconds relman idles after its candidate is on screen, before the CPU is measured: the
# first reads of the series and the alerts end meanwhile.
SETTLE = 5.0
TMUX = shutil.which("tmux")
RELMAN = str(Path(sys.executable).parent / "relman")
# iris's row in dev, as both apps show it: the service, the environment, then its state.
ROW = re.compile(r"^\W*iris\s+dev\s.*\blive\b", re.MULTILINE)
# The candidate's row once git and DVC were read (before: ``loading``).
CANDIDATE = re.compile(r"^\W*iris\s+candidate\s.*\b(clean|dirty|stale|unknown)\b", re.MULTILINE)

# The bare app: what Textual itself takes to show a Header and a DataTable with one row.
BARE_APP = """
from textual.app import App
from textual.widgets import DataTable, Header


class Bare(App):
    def compose(self):
        yield Header()
        yield DataTable()

    def on_mount(self):
        table = self.query_one(DataTable)
        table.add_columns("Service", "Env", "Release", "State", "Since", "Traffic / URL / why")
        table.add_row("iris", "dev", "f2a4c1b3 v0.9999.0", "live", "2h", "127.0.0.1:3100")


Bare().run()
"""
# relman as `relman --project DIR` runs it, its live refresh at 1 s (the idle run).
CHILD_IDLE = """
import sys
sys.path.insert(0, ROOT)
from screens.overview import OverviewScreen
from tui import cli
OverviewScreen.REFRESH_SECONDS = 1.0
sys.exit(cli.run(["--project", PROJECT]))
"""


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


def use_bytecode_cache(base: Path, cached: bool) -> None:
    """How the apps started from now on load Python code. ``cached``: from a bytecode cache
    in ``base`` (PYTHONPYCACHEPREFIX, written even where PYTHONDONTWRITEBYTECODE is set), as
    installed apps start (Textual comes compiled in its wheel). Otherwise under
    PYTHONDONTWRITEBYTECODE=1, as a checkout without __pycache__ runs with that setting:
    relman's modules compiled from source at every start, Textual's from its wheel's cache."""
    if cached:
        os.environ.pop("PYTHONDONTWRITEBYTECODE", None)
        os.environ["PYTHONPYCACHEPREFIX"] = str(base / "pycache")
    else:
        os.environ.pop("PYTHONPYCACHEPREFIX", None)
        os.environ["PYTHONDONTWRITEBYTECODE"] = "1"


# ---------------------------------------------------------------------------- measuring


def boot_seconds() -> float:
    return time.clock_gettime(time.CLOCK_BOOTTIME)


def started_at(pid: int) -> float:
    """When ``pid`` started, in seconds since boot (/proc/PID/stat, clock ticks)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return int(fields[19]) / os.sysconf("SC_CLK_TCK")


def rss_mb(pid: int, field: str = "VmRSS") -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024
    return 0.0


class Terminal:
    """A tmux server of its own, one 80x24 pane at a time; closing it ends what it ran."""

    def __init__(self, folder: Path) -> None:
        self.socket = f"relman-bench-{os.getpid()}"
        self.socket_path = ""
        self.folder = folder
        # A pane whose process ended stays, with what it printed last (its error, if any).
        self.config = folder / "tmux.conf"
        self.config.write_text("set -g remain-on-exit on\n")

    def tmux(self, *args: str) -> str:
        assert TMUX is not None
        done = subprocess.run(
            [TMUX, "-L", self.socket, "-f", str(self.config), *args],
            capture_output=True,
            text=True,
            check=True,
        )
        return done.stdout

    def run(self, command: list[str]) -> int:
        """Start ``command`` in a fresh session; its pid."""
        self.tmux("new-session", "-d", "-s", "bench", "-x", "80", "-y", "24", "--", *command)
        self.socket_path = self.tmux("display-message", "-p", "#{socket_path}").strip()
        return int(self.tmux("display-message", "-p", "-t", "bench", "#{pane_pid}"))

    def screen(self) -> str:
        return self.tmux("capture-pane", "-p", "-t", "bench")

    def wait_for(self, pattern: re.Pattern[str], pid: int, timeout: float = 60) -> str:
        """Read the screen until ``pattern`` is on it; the screen."""
        deadline = time.monotonic() + timeout
        while True:
            screen = self.screen()
            if pattern.search(screen):
                return screen
            if time.monotonic() > deadline or not Path(f"/proc/{pid}").exists():
                shown = "\n".join(f"   | {line}" for line in screen.splitlines() if line.strip())
                raise SystemExit(f"no {pattern.pattern!r} on the screen:\n{shown}")
            time.sleep(0.005)

    def close(self) -> None:
        """Kill the server, end by pid what it ran (anything with the benchmark's folder in
        its environment), and remove its socket (tmux 3.3 leaves it behind)."""
        from core.host.processes import end_processes, processes_mentioning

        subprocess.run([str(TMUX), "-L", self.socket, "kill-server"], capture_output=True)
        left = [pid for pid, _ in processes_mentioning(self.folder) if pid != os.getpid()]
        end_processes(left, 5.0)
        if self.socket_path:
            Path(self.socket_path).unlink(missing_ok=True)


def time_to_row(term: Terminal, command: list[str], row: re.Pattern[str] = ROW) -> float:
    """Seconds from the start of ``command``'s process to ``row`` (iris's) on the screen."""
    pid = term.run(command)
    try:
        try:
            started = started_at(pid)
        except FileNotFoundError:  # ended already: wait_for shows what it printed
            started = boot_seconds()
        term.wait_for(row, pid)
        return boot_seconds() - started
    finally:
        term.close()


def cpu_seconds(pid: int) -> tuple[float, float]:
    """CPU seconds of ``pid`` with its children (utime + stime + cutime + cstime), and of
    its main thread alone (the event loop; the rest is the workers and Textual's I/O)."""
    tick = os.sysconf("SC_CLK_TCK")
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    main = Path(f"/proc/{pid}/task/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    total = sum(int(fields[i]) for i in (11, 12, 13, 14)) / tick
    return total, (int(main[11]) + int(main[12])) / tick


def idle_run(term: Terminal, project: Path, seconds: float) -> tuple[float, ...]:
    """relman idling on the overview (1 s refresh) once its candidate is shown and SETTLE
    seconds passed: the seconds until the candidate was shown, the CPU % of one core over
    ``seconds`` (all of it, and the event loop's), VmRSS and VmHWM (MB) then. ``seconds``
    0: only until the candidate is shown (a warm-up: what the worker imports, compiled)."""
    head = f"ROOT, PROJECT = {str(ROOT)!r}, {str(project)!r}\n"
    pid = term.run([sys.executable, "-c", head + CHILD_IDLE])
    try:
        started = started_at(pid)
        term.wait_for(CANDIDATE, pid)
        candidate = boot_seconds() - started
        if not seconds:
            return (candidate,)
        time.sleep(SETTLE)
        (cpu0, main0), wall0 = cpu_seconds(pid), time.monotonic()
        time.sleep(seconds)
        (cpu1, main1), wall1 = cpu_seconds(pid), time.monotonic()
        rss, hwm = rss_mb(pid), rss_mb(pid, "VmHWM")
        screen = term.screen()
    finally:
        term.close()
    print("   the overview it showed:")
    print("\n".join(f"   | {line}" for line in screen.rstrip().splitlines()))
    wall = wall1 - wall0
    return candidate, 100 * (cpu1 - cpu0) / wall, 100 * (main1 - main0) / wall, rss, hwm


def time_to_rows(term: Terminal, commands: dict[str, list[str]], runs: int, cached: bool) -> None:
    """Print the medians of ``runs`` times to row of each command, alternating, and their
    ratio against ROW_GOAL."""
    for command in commands.values():  # warm-up: imports in the OS cache (and compiled)
        time_to_row(term, command)
    times: dict[str, list[float]] = {kind: [] for kind in commands}
    for _ in range(runs):
        for kind, command in commands.items():
            times[kind].append(time_to_row(term, command))
    median = {kind: statistics.median(runs) for kind, runs in times.items()}
    ratio = median["relman"] / median["bare"]
    how = "from bytecode, as installed" if cached else "relman compiled at each start"
    print(f"time to iris's row on screen, median of {runs}, {how}:")
    for label, kind in (("bare Textual app (Header + DataTable)", "bare"),
                        ("relman --project DIR", "relman")):  # fmt: skip
        shown = " ".join(f"{1000 * t:.0f}" for t in sorted(times[kind]))
        print(f"   {label:<38} {1000 * median[kind]:5.0f} ms   [{shown}]")
    verdict = "ok" if ratio <= ROW_GOAL else "OVER GOAL"
    print(f"   ratio {ratio:.2f} (goal <= {ROW_GOAL})  {verdict}")


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--runs", type=int, default=9)
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
        bare = folder / "bare_app.py"
        bare.write_text(BARE_APP)
        commands = {
            "bare": [sys.executable, str(bare)],
            "relman": [RELMAN, "--project", str(project)],
        }
        term = Terminal(folder)
        try:
            for cached in (True, False):
                use_bytecode_cache(folder, cached)
                time_to_rows(term, commands, args.runs, cached)
            use_bytecode_cache(folder, True)
            idle_run(term, project, 0)  # warm-up: the worker's imports compiled
            candidate, cpu, loop, rss, hwm = idle_run(term, project, args.idle)
        finally:
            term.close()
        print(f"relman on the overview: candidate (git and DVC) on screen {candidate:.2f} s "
              "after the process started")  # fmt: skip
        verdict = "ok" if hwm <= RSS_GOAL_MB else "OVER GOAL"
        print(
            f"   memory: VmRSS {rss:.1f} MB, peak VmHWM {hwm:.1f} MB (goal <= {RSS_GOAL_MB:.0f} "
            f"MB)  {verdict}"
        )
        verdict = "ok" if cpu < CPU_GOAL else "OVER GOAL"
        print(
            f"   idle {args.idle:.0f} s at a 1 s refresh: CPU {cpu:.2f}% of one core, children "
            f"included (goal < {CPU_GOAL}%)  {verdict}   [event loop {loop:.2f}%, workers and "
            f"terminal I/O {cpu - loop:.2f}%]"
        )


if __name__ == "__main__":
    main()
