"""core.ledger.runs: a run whose relman ended without finishing it (killed outright, no
``finally`` ran) is shown ``interrupted`` by the next command that reads the ledger, and
closed so by the next one that may write; a read-only session writes nothing. A run whose
relman still works, or that runs on another host, stays ``running``."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from core.config.model import Project, load_project
from core.host.processes import this_host
from core.ledger.history import history
from core.ledger.releases import open_ledger
from core.ledger.runs import abandoned, as_seen, open_runs
from core.ledger.upgrade import READ_ONLY_VARIABLE
from store import Ledger, RunRecord

RELMAN_TOML = """\
[project]
name = "mini"

[services.svc]
bento = "service:Svc"
build = "bentofile.yaml"
model = ["m"]
data = ["d"]

[environments.dev]
port = 39112
"""


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Project:
    monkeypatch.delenv(READ_ONLY_VARIABLE, raising=False)
    monkeypatch.setenv("RELMAN_USER", "alice")
    root = tmp_path / "mini"
    root.mkdir()
    subprocess.run(["git", "init", "-q", str(root)], check=True)
    (root / "relman.toml").write_text(RELMAN_TOML)
    return load_project(root)


def dead_pid() -> int:
    """The pid of a process that has ended (and been reaped)."""
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


def start(ledger: Ledger, kind: str, **holder: object) -> int:
    return ledger.start_run(kind, service="svc", details=holder).id  # type: ignore[arg-type]


def statuses(project: Project) -> dict[int, tuple[str, str]]:
    """What the ledger holds (history's entries are as stored: not :func:`as_seen`)."""
    with Ledger.open(project.ledger_path, readonly=True) as ledger:
        runs = [e.record for e in ledger.history().entries if isinstance(e.record, RunRecord)]
    return {run.id: (run.status, run.reason) for run in runs}


def test_only_a_holder_that_ended_on_this_host_leaves_a_run_interrupted(project: Project) -> None:
    gone = dead_pid()
    with open_ledger(project, read_only=False) as ledger:
        mine = ledger.get_run(start(ledger, "test"))  # this process: alive
        left = ledger.get_run(start(ledger, "test", pid=gone, host=this_host()))
        elsewhere = ledger.get_run(start(ledger, "build", pid=gone, host="another-host"))
        older = ledger.get_run(start(ledger, "build", pid=None))
    assert abandoned(mine) is None and as_seen(mine) == mine
    assert abandoned(left) == f"interrupted: relman (pid {gone}) ended without finishing"
    assert (as_seen(left).status, as_seen(left).reason) == ("interrupted", abandoned(left))
    assert abandoned(elsewhere) is None  # its pids mean nothing here
    # Written by a relman older than holders: taken as ended, as promotions without one are.
    assert abandoned(older) == (
        "interrupted: relman ended without finishing (an older relman: no pid recorded)"
    )


def test_the_next_writing_open_closes_what_a_dead_relman_left(project: Project) -> None:
    gone = dead_pid()
    with open_ledger(project, read_only=False) as ledger:
        start(ledger, "test", pid=gone, host=this_host())
        start(ledger, "test")  # alive: this process
        start(ledger, "promote", pid=gone, host="another-host")
    before = statuses(project)
    assert before[1] == ("running", "") and before[3] == ("running", "")
    with open_ledger(project, read_only=False):
        pass
    after = statuses(project)
    assert after[1] == ("interrupted", f"interrupted: relman (pid {gone}) ended without finishing")
    assert after[2] == ("running", "") and after[3] == ("running", "")
    with Ledger.open(project.ledger_path, readonly=True) as ledger:
        finished = [e for e in ledger.audit_events() if e.action == "run.finish"]
    assert [(e.outcome, e.details["run"]) for e in finished] == [("interrupted", 1)]


def test_a_read_only_session_shows_it_interrupted_and_writes_nothing(
    project: Project, monkeypatch: pytest.MonkeyPatch
) -> None:
    gone = dead_pid()
    with open_ledger(project, read_only=False) as ledger:
        start(ledger, "test", pid=gone, host=this_host())
    why = f"interrupted: relman (pid {gone}) ended without finishing"
    monkeypatch.setenv(READ_ONLY_VARIABLE, "1")
    [entry] = history(project)["entries"]
    assert (entry["status"], entry["summary"]) == ("interrupted", f"test run #1: {why}")
    [(seen, _version)] = open_runs(project)
    assert (seen.status, seen.reason) == ("interrupted", why)
    assert statuses(project)[1] == ("running", "")  # nothing written
    # The next session that may write closes it, on a read too.
    monkeypatch.delenv(READ_ONLY_VARIABLE)
    assert history(project)["entries"][0]["summary"] == f"test run #1: {why}"
    assert statuses(project)[1] == ("interrupted", why)
    assert open_runs(project) == []


def test_nothing_to_close_loads_no_sqlite_utils(project: Project) -> None:
    """`relman status` reads the open runs on every start: with none to close, through the
    standard library alone (sqlite-utils loads numpy, a tenth of a second)."""
    with open_ledger(project, read_only=False) as ledger:
        start(ledger, "test", pid=os.getpid(), host=this_host())  # this test's process: alive
    code = (
        "import sys\n"
        "from core.config.model import load_project\n"
        "from core.ledger.runs import open_runs\n"
        f"[(run, _)] = open_runs(load_project({str(project.root)!r}))\n"
        "print(run.status, 'sqlite_utils' in sys.modules)"
    )
    found = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert found.stdout.split() == ["running", "False"], found.stderr
