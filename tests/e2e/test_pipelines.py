"""Pipelines as data, end to end on the demo with real processes: a pipeline that waits for a
second person's approval; new data that retrains and serves dev under `relman watch` with no
other command; a watcher killed in the middle of a run, whose run is finished by the next
command without a second commit or a second deploy."""

from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from tests.e2e.served import (
    environments,
    git,
    ports_of,
    predict,
    relman,
    relman_json,
    served,
)
from tests.waiting import wait_for

pytestmark = pytest.mark.e2e
__all__ = ["served"]  # the fixture, imported for pytest

BIN = str(Path(sys.executable).parent)


def _configure(root: Path, text: str) -> None:
    config = root / "relman.toml"
    body = config.read_text()
    head = body.split("\n# Pipelines (relman pipeline", 1)[0]
    config.write_text(head + text)
    git(root, "commit", "-qam", "pipelines of this test")


def _runs(root: Path) -> list[dict]:
    document = relman_json(root, "pipeline", "runs")
    assert document["_exit"] == 0, document["_stderr"]
    runs: list[dict] = document["runs"]
    return runs


def _add_rows(root: Path, rows: int = 30) -> None:
    subprocess.run(
        [sys.executable, "src/add_measurements.py", "--rows", str(rows)],
        cwd=root,
        check=True,
        capture_output=True,
    )


def _pipeline_commits(root: Path, run: int) -> list[str]:
    log = git(root, "log", "--format=%H %(trailers:key=Relman-Pipeline-Run,valueonly)")
    return [line.split()[0] for line in log.splitlines() if line.split()[1:] == [str(run)]]


def _promotions_of(root: Path, release: str, env: str) -> int:
    history = relman_json(root, "history", "--limit", "200")
    return sum(
        1
        for entry in history["entries"]
        if entry.get("kind") == "promotion"
        and entry.get("env") == env
        and entry.get("release") == release
        and entry.get("status") == "done"
    )


@pytest.mark.timeout(900)
def test_a_pipeline_waits_for_a_second_persons_approval_then_completes(served: Path) -> None:
    root = served
    _configure(
        root,
        """
[pipelines.to-prod]
steps = ["test", "build", "deploy:dev", "deploy:staging",
         { step = "soak", env = "staging", duration = "3s" }, "approve:prod", "deploy:prod"]

[[pipelines.assign]]
match = { service = "iris" }
pipelines = ["to-prod"]
""",
    )
    ports = ports_of(root)
    waiting = relman_json(root, "pipeline", "run", "to-prod")
    assert waiting["_exit"] == 1, waiting["_stderr"]
    assert waiting["status"] == "waiting" and waiting["error"].startswith("waiting at approve:prod")
    run = waiting["run"]
    listed = _runs(root)[0]
    assert listed["run"] == run and listed["status"] == "waiting"
    assert listed["waiting_for"]["env"] == "prod" and listed["waiting_for"]["command"]
    assert [s["status"] for s in listed["steps"]][-2:] == ["waiting", "pending"]
    soak = next(s for s in listed["steps"] if s["name"] == "soak:staging")
    assert soak["detail"] == "soak staging: no alert fired in 3s"  # the collector watched
    assert environments(root)["prod"]["state"] == "not deployed"

    # The one who drives it approving does not count; someone else's does.
    release = listed["release"]
    assert relman(root, "--batch", "approve", release[:12], "--env", "prod").returncode == 0
    still = relman_json(root, "pipeline", "resume", str(run))
    assert still["_exit"] == 1 and still["status"] == "waiting"
    assert (
        relman(root, "--batch", "approve", release[:12], "--env", "prod", user="bob").returncode
        == 0
    )
    done = relman_json(root, "pipeline", "resume", str(run))
    assert done["_exit"] == 0, done.get("error")
    assert done["status"] == "passed" and all(s["status"] == "passed" for s in done["steps"])
    approve = next(s for s in done["steps"] if s["name"] == "approve:prod")
    assert approve["attempts"] == 1 and "bob" in approve["detail"]
    assert environments(root)["prod"]["release"] == release
    assert predict(ports["prod"]) == ["setosa", "virginica"]
    again = relman_json(root, "pipeline", "resume", str(run))
    assert again["_exit"] == 2 and "already ended passed" in again["error"]


def _data_md5(root: Path) -> str:
    return hashlib.md5((root / "data" / "iris.csv").read_bytes()).hexdigest()


RETRAIN = """
[watch]
poll = "1s"
debounce = "1s"

[pipelines.retrain]
on = ["data"]
steps = ["repro", "commit", "test", "deploy:dev"]

[[pipelines.assign]]
match = { service = "iris" }
pipelines = ["retrain"]
"""


@pytest.mark.timeout(900)
def test_new_data_retrains_and_serves_dev_under_the_watcher(served: Path) -> None:
    root = served
    _configure(root, RETRAIN)
    started = relman_json(root, "watch", "--detach")
    assert started["_exit"] == 0, started["_stderr"]
    second = relman(root, "--batch", "watch")
    assert second.returncode == 1 and "a watcher already runs" in second.stderr
    before = _data_md5(root)
    _add_rows(root, 30)
    after = _data_md5(root)

    def finished() -> dict | None:
        runs = _runs(root)
        return runs[0] if runs and runs[0]["status"] in ("passed", "failed") else None

    run = wait_for(finished, "the retrain run to end", timeout=600, poll=1)
    assert run["status"] == "passed", json.dumps(run, indent=1)
    assert run["trigger"] == "data"
    assert run["reason"].startswith(f"data/iris.csv changed: md5 {before[:8]} -> {after[:8]}")
    assert "150 -> 180 rows" in run["reason"]
    assert [s["name"] for s in run["steps"]] == ["repro", "commit", "verify", "test", "deploy:dev"]
    commits = _pipeline_commits(root, run["run"])
    assert len(commits) == 1
    assert "retrain" in git(root, "log", "-1", "--format=%an %s", commits[0])
    dev = environments(root)["dev"]
    assert dev["release"] == run["release"] and dev["state"] == "live"
    data = relman_json(root, "status")["services"][0]["candidate"]["data"]
    assert any(entry["md5"] == after for entry in data)
    status = relman_json(root, "pipeline", "runs")["watcher"]
    assert status["running"] and status["last_started"]["run"] == run["run"]
    down = relman(root, "--batch", "down")
    assert down.returncode == 0 and "stopped the watcher" in down.stderr
    assert "the pipeline watcher" in down.stdout
    assert not relman_json(root, "pipeline", "runs")["watcher"]["running"]


@pytest.mark.timeout(900)
@pytest.mark.parametrize("at", ["test", "deploy:dev"])
def test_a_watcher_killed_mid_run_is_finished_without_a_second_commit_or_deploy(
    served: Path, at: str
) -> None:
    root = served
    _configure(root, RETRAIN)
    assert relman_json(root, "watch", "--detach")["_exit"] == 0
    watcher = relman_json(root, "pipeline", "runs")["watcher"]["pid"]
    _add_rows(root, 30)

    def in_step() -> dict | None:
        runs = _runs(root)
        if not runs:
            return None
        steps = {s["name"]: s["status"] for s in runs[0]["steps"]}
        return runs[0] if steps.get(at) == "running" else None

    run = wait_for(in_step, f"the run to reach its {at} step", timeout=600, poll=0.05)
    os.kill(watcher, signal.SIGKILL)
    wait_for(lambda: _runs(root)[0]["status"] == "interrupted", "the run to show interrupted")
    assert len(_pipeline_commits(root, run["run"])) == 1

    resumed = relman_json(root, "pipeline", "resume", str(run["run"]))
    assert resumed["_exit"] == 0, resumed.get("error")
    assert resumed["status"] == "passed"
    commit = next(s for s in resumed["steps"] if s["name"] == "commit")
    assert commit["attempts"] == 1  # not done again: it had passed
    assert len(_pipeline_commits(root, run["run"])) == 1
    release = resumed["release"]
    dev = environments(root)["dev"]
    assert dev["release"] == release and dev["state"] == "live"
    assert predict(ports_of(root)["dev"]) == ["setosa", "virginica"]
    # A second resume, or a new watcher, starts nothing more for the same change.
    assert relman_json(root, "watch", "--once")["_exit"] == 0
    assert len(_runs(root)) == 1
    assert len(_pipeline_commits(root, run["run"])) == 1
    assert _promotions_of(root, release, "dev") == 1
