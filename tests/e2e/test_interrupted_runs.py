"""A real `relman test` on a tiny project whose test hangs, stopped from outside: killed with
SIGKILL, the next relman command shows its run interrupted, never running (a read-only one
without writing, the next writing one closing it in the ledger); sent SIGHUP (its terminal
closed), it stops its pytest processes and records the run interrupted itself."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from store.ledger.snapshot import open_runs
from tests.e2e.tiny import (
    ended_after,
    gone,
    make_tiny_project,
    output,
    running_test_pids,
    start_relman,
)
from tests.waiting import wait_for

pytestmark = pytest.mark.e2e


@pytest.fixture
def tiny(tmp_path: Path) -> Path:
    return make_tiny_project(tmp_path / "tiny")


def relman_json(root: Path, *args: str) -> dict:
    done = subprocess.run(
        [sys.executable, "-m", "tui", "--project", str(root), "--json", *args],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    document: dict = json.loads(done.stdout)
    return document


def run_entries(root: Path, *args: str) -> list[dict]:
    entries = relman_json(root, *args, "history")["entries"]
    return [entry for entry in entries if entry["kind"] == "run"]


def test_a_killed_relman_test_is_shown_interrupted_by_the_next_command(
    tiny: Path, tmp_path: Path
) -> None:
    pids = tmp_path / "pids"
    relman = start_relman(tiny, pids, "test")
    with ended_after(pids):
        test_pids = running_test_pids(tiny, relman, pids)
        [before] = run_entries(tiny)
        assert before["status"] == "running"  # its relman is alive: it is running

        os.killpg(relman.pid, signal.SIGKILL)  # no finally runs: the ledger keeps `running`
        assert relman.wait(timeout=60) == -signal.SIGKILL
        ledger = tiny / ".relman" / "ledger.db"
        assert [run.status for run, _version in open_runs(ledger)] == ["running"]

        why = f"interrupted: relman (pid {relman.pid}) ended without finishing"
        # A read-only session shows it interrupted, and writes nothing.
        [seen] = run_entries(tiny, "--read-only")
        assert (seen["status"], seen["summary"]) == (
            "interrupted",
            f"test run #1 of {before['release']} (v1.0.0): {why}",
        )
        [service] = relman_json(tiny, "--read-only", "status")["services"]
        assert [(run["status"], run["reason"]) for run in service["runs"]] == [("interrupted", why)]
        assert [run.status for run, _version in open_runs(ledger)] == ["running"]

        # pytest runs in a session of its own: the SIGKILL left it hanging, and a read-only
        # session does not touch it.
        assert not any(gone(pid) for pid in test_pids)

        # The next command that may write closes it in the ledger, and stops what it left.
        [after] = run_entries(tiny)
        assert (after["status"], after["summary"]) == (seen["status"], seen["summary"])
        assert open_runs(ledger) == []
        assert all(gone(pid) for pid in test_pids)
        [service] = relman_json(tiny, "status")["services"]
        assert "runs" not in service  # closed: nothing is open any more


def test_sighup_stops_the_pytest_processes_and_records_the_run_interrupted(
    tiny: Path, tmp_path: Path
) -> None:
    pids = tmp_path / "pids"
    relman = start_relman(tiny, pids, "test")
    with ended_after(pids):
        pytest_pid, its_child = running_test_pids(tiny, relman, pids)

        relman.send_signal(signal.SIGHUP)
        assert relman.wait(timeout=60) == 128 + signal.SIGHUP, output(pids)
        # The whole process group of the suite: pytest and what the test started.
        wait_for(lambda: gone(pytest_pid) and gone(its_child), "the suite's processes to end")
        _out, err = output(pids)
        assert "relman: SIGHUP: tests cancelled: slow cancelled after" in err
        assert "recorded as interrupted (run #1)" in err

        assert open_runs(tiny / ".relman" / "ledger.db") == []  # closed by relman itself
        [run] = run_entries(tiny, "--read-only")
        assert run["status"] == "interrupted"
        assert run["summary"].startswith(f"test run #1 of {run['release']} (v1.0.0): interrupted")
        assert "(cancelled: slow cancelled after" in run["summary"]
