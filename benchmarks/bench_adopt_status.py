"""relman on a big repository it never configured: `relman --json status` against `dvc
status` + `git status`, and the TUI's first row against a bare Textual app (issue 15).

The repository (benchmarks/adopt_repo.py): 200 DVC stages (foreach stages, a nested
sub/dvc.yaml), 5 models declared as ``artifacts:`` of ``type: model``, 10,000 files in
``dvc add``-ed folders, params, metrics, GTO tags; committed, ``dvc status`` up to date. Two
copies: as it is (no relman.toml: relman reads it, docs/adopting.md), and after `relman
init` (its relman.toml committed).

Status: on each copy, ``python -m tui --json status`` (cwd at the repository, exit 0) against
``python -m dvc status`` followed by ``git status --porcelain`` (each its own process), every
one a fresh process; one warm-up each, then ``--runs`` runs alternating which side goes
first; the medians and their ratio (goal <= 1.0). Then where relman's time goes: one run
under ``-X importtime`` (imports by top-level package) and one under cProfile (the top
cumulative entries).

TUI: on each copy, the time from the process's start until the first row of the overview
(churn in dev) is on a tmux screen, ``relman --project DIR`` against a bare Textual app (a
Header and a DataTable showing that row), by benchmarks/bench_tui.py's Terminal; one warm-up
each, medians of ``--runs`` alternating, ratio (goal <= 1.2).

All apps start from bytecode (a PYTHONPYCACHEPREFIX in the temp folder, filled by the
warm-ups), as installed apps do. HOME, git and DVC are isolated in the temp folder; every
process started is ended by pid and the folder removed.

    .venv/bin/python benchmarks/bench_adopt_status.py [--runs 5] [--top 25] [--no-tui]
"""

from __future__ import annotations

import argparse
import io
import json
import os
import pstats
import re
import statistics
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from collections.abc import Callable, Mapping
from functools import partial
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.adopt_repo import Repository, build, copy  # noqa: E402
from benchmarks.bench_tui import (  # noqa: E402
    RELMAN,
    TMUX,
    Terminal,
    isolate,
    time_to_row,
    use_bytecode_cache,
)

STATUS_GOAL = 1.0
ROW_GOAL = 1.2
NAME = "shop-ml"
RELMAN_STATUS = [sys.executable, "-m", "tui", "--json", "status"]
BASELINE = [[sys.executable, "-m", "dvc", "status"], ["git", "status", "--porcelain"]]

# The overview's first row: churn in dev, its release and state (bench_tui.py's idea).
FIRST_ROW = re.compile(r"^\W*churn\s+dev\s+\S+\s+(stage dev|not deployed|live)\b", re.MULTILINE)
# The row each copy shows first, as the bare app shows it too.
ROWS = {
    "inferred": ("churn", "dev", "v1.2.0", "stage dev (git tags)", "—", "—"),
    "relman.toml": ("churn", "dev", "—", "not deployed", "—", "127.0.0.1:3100"),
}
# `relman ARGS` under cProfile: tui.cli.main ends with os._exit, so run() is profiled.
PROFILED = """
import cProfile
profile = cProfile.Profile()
profile.enable()
from tui import cli
code = cli.run({args!r})
profile.disable()
profile.dump_stats({out!r})
raise SystemExit(code)
"""
BARE_APP = """
import json, sys
from textual.app import App
from textual.widgets import DataTable, Header

ROW = json.loads(sys.argv[1])


class Bare(App):
    def compose(self):
        yield Header()
        yield DataTable()

    def on_mount(self):
        table = self.query_one(DataTable)
        table.add_columns("Service", "Env", "Release", "State", "Since", "Traffic / URL / why")
        table.add_row(*ROW)


Bare().run()
"""


# ---------------------------------------------------------------------------- the copies


def make_copies(folder: Path) -> tuple[Repository, dict[str, Path]]:
    """The generated repository as it is, and a copy with the relman.toml `relman init`
    writes (committed): {"inferred": path, "relman.toml": path}."""
    started = time.perf_counter()
    repo = build(folder / "inferred" / NAME)
    print(
        f"repository: {repo.stages} stages, {len(repo.models)} models "
        f"({', '.join(repo.models)}), {repo.tracked_files:,} DVC-tracked files, "
        f"{repo.tags} GTO tags; built in {time.perf_counter() - started:.1f} s"
    )
    configured = copy(repo.root, folder / "configured" / NAME)
    done = run([sys.executable, "-m", "tui", "init"], configured)
    for args in (["add", "-A"], ["commit", "-q", "-m", "relman init"]):
        run(["git", *args], configured)
    print(f"relman init in the copy: {done.stdout.strip().splitlines()[0][:100]}")
    return repo, {"inferred": repo.root, "relman.toml": configured}


def run(command: list[str], cwd: Path) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(command, cwd=cwd, capture_output=True, text=True)
    if done.returncode != 0:
        raise SystemExit(
            f"{' '.join(command)} exited {done.returncode} in {cwd}: {done.stderr.strip()[-800:]}"
        )
    return done


def check_copy(kind: str, root: Path) -> None:
    """Fail unless relman reads the copy as expected and the baseline sees nothing to do."""
    document = json.loads(run(RELMAN_STATUS, root).stdout)
    if bool(document.get("inferred")) != (kind == "inferred"):
        raise SystemExit(f"{kind}: relman --json status says inferred={document.get('inferred')}")
    services = document["services"]
    unhappy = [s["name"] for s in services if not s["candidate"].get("ok")]
    if unhappy:
        raise SystemExit(f"{kind}: candidates not ok: {unhappy}")
    said = run(BASELINE[0], root).stdout
    if "up to date" not in said or run(BASELINE[1], root).stdout.strip():
        raise SystemExit(f"{kind}: dvc or git sees changes: {said[:500]}")
    print(f"{kind}: relman reads {len(services)} services "
          f"({', '.join(s['name'] for s in services)}), all candidates ok")  # fmt: skip


# ---------------------------------------------------------------------------- status


def timed(commands: list[list[str]], root: Path) -> float:
    started = time.perf_counter()
    for command in commands:
        run(command, root)
    return time.perf_counter() - started


def alternate(sides: Mapping[str, Callable[[], float]], runs: int) -> dict[str, list[float]]:
    """One warm-up of each side, then ``runs`` runs, the side that goes first alternating."""
    for measure in sides.values():
        measure()
    times: dict[str, list[float]] = {kind: [] for kind in sides}
    order = list(sides)
    for i in range(runs):
        for kind in order if i % 2 == 0 else order[::-1]:
            times[kind].append(sides[kind]())
    return times


def report(title: str, labels: dict[str, str], times: dict[str, list[float]],
           goal: float) -> float:  # fmt: skip
    """Print each side's median and its runs, and the ratio first/second; the ratio."""
    ours, base = list(times)
    median = {kind: statistics.median(values) for kind, values in times.items()}
    print(title)
    for kind in times:
        shown = " ".join(f"{1000 * t:.0f}" for t in sorted(times[kind]))
        print(f"   {labels[kind]:<44} {1000 * median[kind]:6.0f} ms   [{shown}]")
    ratio = median[ours] / median[base]
    print(f"   ratio {ratio:.2f} (goal <= {goal})  {'ok' if ratio <= goal else 'OVER GOAL'}")
    return ratio


def measure_status(copies: dict[str, Path], runs: int) -> None:
    labels = {
        "relman": "relman --json status",
        "baseline": "dvc status + git status --porcelain",
    }
    for kind, root in copies.items():
        sides = {
            "relman": partial(timed, [RELMAN_STATUS], root),
            "baseline": partial(timed, BASELINE, root),
        }
        times = alternate(sides, runs)
        report(f"status, {kind} ({root.parent.name}/{NAME}), median of {runs}:", labels,
               times, STATUS_GOAL)  # fmt: skip


# ---------------------------------------------------------------------------- breakdown


def import_breakdown(root: Path, top: int) -> None:
    """One `relman --json status` under -X importtime: its imports by top-level package."""
    command = [sys.executable, "-X", "importtime", *RELMAN_STATUS[1:]]
    started = time.perf_counter()
    done = run(command, root)
    wall = time.perf_counter() - started
    by_package: dict[str, float] = defaultdict(float)
    for line in done.stderr.splitlines():
        match = re.match(r"import time:\s+\d+ \|\s+(\d+) \|( *)(\S+)", line)
        if match and len(match.group(2)) == 1:  # an import at the top of the tree
            by_package[match.group(3).split(".")[0]] += int(match.group(1)) / 1e6
    total = sum(by_package.values())
    print(f"   imports: {1000 * total:.0f} ms of {1000 * wall:.0f} ms (this run, with "
          "importtime's own cost); by top-level package:")  # fmt: skip
    ranked = sorted(by_package.items(), key=lambda item: -item[1])[:top]
    for package, seconds in ranked:
        print(f"      {1000 * seconds:7.1f} ms  {package}")


def _where(filename: str, line: int, function: str) -> str:
    for prefix in ("site-packages/", str(ROOT) + "/", "/lib/python3.11/"):
        if prefix in filename:
            filename = filename.split(prefix, 1)[1]
            break
    return f"{filename}:{line}({function})" if line else function


def profile_breakdown(root: Path, folder: Path, top: int) -> None:
    """One `relman --json status` under cProfile (in a child, imports included): the top
    cumulative entries, import machinery left out (the import breakdown has it), then the
    same of relman's own functions alone (what calls into DVC, git and GTO, and how often)."""
    out = folder / "status.prof"
    child = PROFILED.format(out=str(out), args=RELMAN_STATUS[3:])
    run([sys.executable, "-c", child], root)
    stats = pstats.Stats(str(out), stream=io.StringIO())
    total = stats.total_tt  # type: ignore[attr-defined]
    rows, own = [], []
    for (filename, line, function), entry in stats.stats.items():  # type: ignore[attr-defined]
        calls, cumulative = entry[1], entry[3]
        if "importlib" in filename or function in ("<module>", "exec"):
            continue
        row = (cumulative, calls, _where(filename, line, function))
        rows.append(row)
        if filename.startswith(str(ROOT) + "/") and "site-packages" not in filename:
            own.append(row)
    print(f"   cProfile (its overhead included): {1000 * total:.0f} ms in all")
    for title, ranked in (("all functions", rows), ("relman's own functions", own)):
        ranked.sort(key=lambda row: -row[0])
        print(f"   top {top} cumulative, {title} (ms, calls):")
        for cumulative, calls, where in ranked[:top]:
            print(f"      {1000 * cumulative:7.0f}  {calls:>7}  {where}")


# ---------------------------------------------------------------------------- the TUI


def time_to_first_row(term: Terminal, command: list[str]) -> float:
    """Seconds from the start of ``command``'s process to churn's dev row on the screen."""
    return time_to_row(term, command, FIRST_ROW)


def measure_tui(copies: dict[str, Path], folder: Path, runs: int) -> None:
    bare = folder / "bare_app.py"
    bare.write_text(BARE_APP)
    term = Terminal(folder)
    labels = {
        "relman": "relman --project DIR",
        "bare": "bare Textual app (Header + DataTable)",
    }
    try:
        for kind, root in copies.items():
            commands = {
                "relman": [RELMAN, "--project", str(root)],
                "bare": [sys.executable, str(bare), json.dumps(ROWS[kind])],
            }
            sides = {
                name: partial(time_to_first_row, term, command)
                for name, command in commands.items()
            }
            times = alternate(sides, runs)
            report(f"TUI, first row (churn in dev) on screen, {kind}, median of {runs}:",
                   labels, times, ROW_GOAL)  # fmt: skip
    finally:
        term.close()


def end_leftovers(folder: Path) -> None:
    """End by pid anything still running with the temp folder in its environment."""
    from core.host.processes import end_processes, processes_mentioning

    left = [pid for pid, _ in processes_mentioning(folder) if pid != os.getpid()]
    if left:
        print(f"ending {len(left)} process(es) left behind: {left}")
        end_processes(left, 5.0)


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--top", type=int, default=25, help="breakdown entries to print")
    parser.add_argument("--no-tui", action="store_true", help="only the status figures")
    args = parser.parse_args()
    if TMUX is None and not args.no_tui:
        raise SystemExit("the TUI part runs the apps in tmux: install tmux, or pass --no-tui")
    with tempfile.TemporaryDirectory(prefix="relman-bench-adopt-") as name:
        folder = Path(name)
        isolate(folder)
        use_bytecode_cache(folder, True)
        try:
            _repo, copies = make_copies(folder)
            for kind, root in copies.items():
                check_copy(kind, root)
            measure_status(copies, args.runs)
            for kind, root in copies.items():
                print(f"where relman --json status spends its time, {kind}:")
                import_breakdown(root, min(args.top, 15))
                profile_breakdown(root, folder, args.top)
            if not args.no_tui:
                measure_tui(copies, folder, args.runs)
        finally:
            end_leftovers(folder)


if __name__ == "__main__":
    main()
