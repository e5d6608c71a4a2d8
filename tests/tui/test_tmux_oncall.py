"""On-call at 80x24 in a real terminal (tmux, the real ``relman --read-only``, see
tests/tui/test_tmux.py): with an alert firing in dev and dev left interrupted by a killed
relman, the header counts both, the line above the table names the alert and gives the
command that takes dev over, whole on its own line; the monitor of dev shows the alert above
its charts.

What the collector and a killed promotion would leave is written through the stores' own
APIs, as tests/contract/test_real_output.py does: a firing alert in the metric store, and an
open promotion of a recorded release whose holder (a process that has exited) is gone.
"""

from __future__ import annotations

import re
import subprocess
import sys
import time
from pathlib import Path

import pytest

from core.config.model import load_project
from core.host.processes import this_host
from core.ledger.releases import open_ledger, record_candidate
from core.lineage.candidate import candidates
from core.monitoring.collector_process import metrics_path
from store.metrics.alerts import AlertChange
from store.metrics.store import MetricStore
from tests.e2e.conftest import demo  # noqa: F401  (the demo project, once per module)
from tests.e2e.served import served  # noqa: F401  (a private copy, cleaned up after)
from tests.tui.test_tmux import (
    EXITED,
    TMUX,
    Terminal,
    overview_loaded,
    relman_command,
    terminal,  # noqa: F401  (the tmux server of each test)
)

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.skipif(TMUX is None, reason="tmux is not installed"),
]

ALERT = "error rate 31.0% > 5.0% for 2 min"


def gone_pid() -> int:
    """The pid of a process that has exited (and been reaped)."""
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


def leave_dev_interrupted_and_firing(root: Path) -> str:
    """Record the candidate, open a promotion of it to dev held by a dead relman, and write
    an error-rate alert firing in dev; the release id."""
    project = load_project(root)
    service = project.config.services["iris"]
    found = candidates(root, {"iris": (list(service.model), list(service.data))})["iris"]
    with open_ledger(project, read_only=False) as ledger:
        release = record_candidate(ledger, project, "iris", found).id
        ledger.begin_promotion("iris", "dev", release, pid=gone_pid(), host=this_host())
    minute = int(time.time()) // 60 * 60 - 60
    change = AlertChange(
        "error_rate",
        "sudden",
        "iris",
        "dev",
        minute,
        "firing",
        0.31,
        ALERT,
        release,
        f"relman rollback iris --env dev --reason 'error_rate: {ALERT}'",
    )
    with MetricStore.open(metrics_path(project)) as store:
        store.record_minute([], [change])
    return release


def test_on_call_sees_the_alert_and_the_next_step_at_80x24(
    served: Path,  # noqa: F811
    terminal: Terminal,  # noqa: F811
) -> None:
    release = leave_dev_interrupted_and_firing(served)
    command = f"relman promote iris --to dev --release {release}"
    terminal.start(relman_command(served, "--read-only"))

    def signals_shown(screen: str) -> bool:
        # The title counts the alert on its own refresh: wait for it too.
        title = screen.splitlines()[0] if screen else ""
        shown = command in screen and "firing" in screen and "1 firing" in title
        return overview_loaded(screen) and shown

    screen = terminal.wait_for(signals_shown, "the alert and the command above the table")
    lines = screen.splitlines()
    assert len(lines) == 24 and max(map(len, lines)) <= 80
    assert lines[0].rstrip().endswith("relman — iris-demo · READ-ONLY · 1 firing · 1 interrupted")
    # The alert on one line, the interrupted environment on the next, then the command on a
    # line of its own, whole.
    assert lines[1].strip() == f"firing error_rate in dev: {ALERT}"
    assert lines[2].strip() == (
        "interrupted in dev: relman was killed mid-way; to finish or undo it, run:"
    )
    assert lines[3].strip() == command
    assert re.search(r"^\s*iris\s+dev\s.*interrupted", screen, re.MULTILINE), screen

    terminal.press("m")  # the selected row: dev
    screen = terminal.wait_for(lambda s: "min with data" in s and "error_rate" in s, "the monitor")
    lines = screen.splitlines()
    title = next(i for i, line in enumerate(lines) if "iris in dev" in line)
    alert = next(i for i, line in enumerate(lines) if "error_rate" in line)
    charts = next(i for i, line in enumerate(lines) if line.lstrip().startswith("p50"))
    # Right under the title, above every chart: on screen at 80x24 without scrolling.
    assert title < alert < charts, screen
    assert " ".join(lines[alert].split()).startswith(f"firing error_rate {ALERT}")

    terminal.press("Escape")
    terminal.wait_for(overview_loaded, "the overview again")
    terminal.press("q")
    assert terminal.wait_for_exit() == f"{EXITED} 0"
