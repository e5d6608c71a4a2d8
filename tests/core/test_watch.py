"""The watcher, one round at a time, on a real git + DVC repository: a new commit and a data
change start the pipelines whose ``on`` names them, once each and with the reason recorded;
its own commits do not start it again; a change still being written waits for the debounce;
an interrupted run is carried on; one watcher per project."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from core import api
from core.config.model import Project, load_project
from core.errors import BlockedError, UsageError
from core.pipelines.watch import Watcher, read_state, watcher_lock, watcher_status
from tests.core.conftest import DvcRepo
from tests.ports import worker_ports
from tests.waiting import wait_for

TOML = """\
[project]
name = "watched"

[services.svc]
bento = "service:Svc"
model = ["clf"]
data = ["iris"]

[environments.dev]
port = {port}

[watch]
poll = "1s"
debounce = "{debounce}"

[pipelines.on-commit]
on = ["commit"]
steps = [{{ step = "run", cmd = "git log -1 --format=%s > seen.txt" }}]

[pipelines.retrain]
on = ["data"]
steps = ["repro", "commit", {{ step = "run", cmd = "true" }}]

[[pipelines.assign]]
match = {{ service = "svc" }}
pipelines = ["on-commit", "retrain"]
"""


def _project(repo: DvcRepo, debounce: str = "0s") -> Project:
    (port,) = worker_ports(1)
    repo.write("relman.toml", TOML.format(port=port, debounce=debounce))
    repo.write(".gitignore", ".relman/\nseen.txt\n")
    repo.commit("configure relman")
    return load_project(repo.root)


def _watcher(project: Project, lines: list[str] | None = None) -> Watcher:
    return Watcher(project, log=(lines if lines is not None else []).append, stop=threading.Event())


@pytest.fixture(autouse=True)
def _user(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RELMAN_USER", "watcher")


def test_a_new_commit_starts_the_commit_pipelines_once(dvc_repo: DvcRepo) -> None:
    project = _project(dvc_repo)
    watcher = _watcher(project)
    assert watcher.poll() == []  # the first head seen starts nothing
    dvc_repo.write("notes.md", "hello\n")
    head = dvc_repo.commit("write notes")
    (run,) = watcher.poll()
    assert run["pipeline"] == "on-commit" and run["status"] == "passed"
    assert run["trigger"] == "commit"
    assert run["reason"] == f"new commit {head[:8]} on main: write notes"
    assert (dvc_repo.root / "seen.txt").read_text().strip() == "write notes"
    assert watcher.poll() == []  # the same head: nothing more
    # A new watcher (a restart) remembers the head it saw.
    assert _watcher(project).poll() == []
    assert read_state(project).last_started["run"] == run["run"]


def test_a_data_change_retrains_commits_and_is_not_started_twice(dvc_repo: DvcRepo) -> None:
    project = _project(dvc_repo)
    watcher = _watcher(project)
    watcher.poll()
    with (dvc_repo.root / "data" / "iris.csv").open("a") as data:
        data.write("4.9,1.5,setosa\n7.7,6.7,virginica\n")
    runs = watcher.poll()
    assert [run["pipeline"] for run in runs] == ["retrain"]
    run = runs[0]
    assert run["status"] == "passed", run
    assert run["reason"].startswith("data/iris.csv changed: md5 ")
    assert run["reason"].endswith("2 -> 4 rows")
    commit = next(step for step in run["steps"] if step["name"] == "commit")
    assert commit["detail"].startswith("committed ")
    trailers = dvc_repo.git("log", "-1", "--format=%(trailers:key=Relman-Pipeline,valueonly)")
    assert trailers.strip() == "retrain"
    # Its own commit starts the commit pipeline, not itself; the data is now what DVC
    # recorded, so nothing starts again.
    after = watcher.poll()
    assert [r["pipeline"] for r in after] == ["on-commit"]
    assert watcher.poll() == [] and _watcher(project).poll() == []


def test_a_change_waits_for_the_debounce(dvc_repo: DvcRepo) -> None:
    project = _project(dvc_repo, debounce="1s")
    lines: list[str] = []
    watcher = _watcher(project, lines)
    watcher.poll()
    with (dvc_repo.root / "data" / "iris.csv").open("a") as data:
        data.write("4.9,1.5,setosa\n")
    assert watcher.poll() == []
    assert lines[-1].endswith("waiting 1 s for it to settle")
    runs = wait_for(watcher.poll, "the change to settle and its run to start", timeout=120)
    assert [run["pipeline"] for run in runs] == ["retrain"]


def test_an_interrupted_run_is_carried_on(dvc_repo: DvcRepo) -> None:
    project = _project(dvc_repo)
    stop = threading.Event()
    stop.set()  # stopped before its first step
    stopped = api.pipeline_run(project, "on-commit", cancel=stop)
    assert stopped["status"] == "interrupted"
    watcher = _watcher(project)
    # This process stopped it itself: a watcher in the same process leaves it alone...
    assert watcher.poll() == []
    # ...until the run's driver is another relman that has ended.
    from tests.core.test_pipeline_runner import _orphan

    _orphan(project, stopped["run"])
    (carried,) = watcher.poll()
    assert carried["run"] == stopped["run"] and carried["status"] == "passed"


def test_one_watcher_per_project(dvc_repo: DvcRepo) -> None:
    project = _project(dvc_repo)
    with watcher_lock(project):
        assert watcher_status(project)["running"]
        with pytest.raises(BlockedError, match="a watcher already runs for this project"):
            _watcher(project).run(once=True)
    assert not watcher_status(project)["running"]
    document = _watcher(project).run(once=True)
    assert document["ok"] and document["branch"] == "main"


def test_the_watched_branch_must_be_checked_out(dvc_repo: DvcRepo) -> None:
    project = _project(dvc_repo)
    dvc_repo.git("checkout", "-q", "-b", "feature")
    with pytest.raises(UsageError, match="branch main is not checked out"):
        config = project.root / "relman.toml"
        config.write_text(config.read_text().replace("[watch]\n", '[watch]\nbranch = "main"\n'))
        _watcher(load_project(project.root))


def test_read_only_refuses_to_watch(dvc_repo: DvcRepo) -> None:
    project = _project(dvc_repo)
    from core.errors import ReadOnlyError

    with pytest.raises(ReadOnlyError):
        api.watch(project, once=True, read_only=True)
    assert not Path(project.state_dir / "watch.json").exists()


def test_a_commit_refused_while_a_run_is_open_starts_once_it_ends(dvc_repo: DvcRepo) -> None:
    import subprocess
    import sys

    from core.ledger.releases import open_ledger
    from core.pipelines.runner import start_run

    project = _project(dvc_repo)
    watcher = _watcher(project)
    watcher.poll()
    busy = start_run(project, "on-commit", "svc")
    sleeper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"])
    try:
        from core.host.processes import this_host

        with open_ledger(project, read_only=False) as ledger:  # a live relman drives it
            seen = ledger.get_pipeline_run(busy).updated_at
            ledger.claim_pipeline_run(busy, pid=sleeper.pid, host=this_host(), seen=seen)
        dvc_repo.write("notes.md", "hello\n")
        head = dvc_repo.commit("write notes")
        assert watcher.poll() == []
        assert read_state(project).pending == {
            "on-commit/svc": f"new commit {head[:8]} on main: write notes"
        }
    finally:
        sleeper.kill()
        sleeper.wait()
    # Its relman gone, the open run is carried on, then the commit's own run starts.
    runs = wait_for(watcher.poll, "the runs to be carried on and started", timeout=120)
    assert [run["run"] for run in runs] == [busy, busy + 1]
    assert runs[1]["reason"] == f"new commit {head[:8]} on main: write notes"
    assert read_state(project).pending == {}


def test_a_record_that_moved_while_the_file_did_not_starts_nothing(dvc_repo: DvcRepo) -> None:
    import yaml

    project = _project(dvc_repo)
    lines: list[str] = []
    watcher = _watcher(project, lines)
    watcher.poll()
    # What a `git pull` of someone's new data does without `dvc checkout`: the record moves.
    record = dvc_repo.root / "data" / "iris.csv.dvc"
    document = yaml.safe_load(record.read_text())
    document["outs"][0]["md5"] = "0" * 32
    record.write_text(yaml.safe_dump(document))
    assert watcher.poll() == [] and watcher.poll() == []
    assert any("DVC's record changed but the file did not" in line for line in lines)
    # The file then really changes: that is new data.
    with (dvc_repo.root / "data" / "iris.csv").open("a") as data:
        data.write("4.9,1.5,setosa\n")
    runs = watcher.poll()
    assert [run["pipeline"] for run in runs] == ["retrain"]


def test_a_changed_relman_toml_is_taken_and_a_broken_one_reported(dvc_repo: DvcRepo) -> None:
    project = _project(dvc_repo)
    lines: list[str] = []
    watcher = _watcher(project, lines)
    watcher.poll()
    config = dvc_repo.root / "relman.toml"
    good = config.read_text()
    config.write_text(good.replace('on = ["data"]', "on = [[["))
    assert config.read_text() != good
    assert watcher.poll() == []
    assert "relman.toml:22: invalid TOML" in read_state(project).last_error
    # Fixed, and the retrain pipeline no longer listens to data: taken at the next round.
    config.write_text(good.replace('on = ["data"]\n', ""))
    watcher.poll()
    assert read_state(project).last_error is None
    assert any(line.startswith("relman.toml changed: watching main") for line in lines)
    assert ("retrain", "svc") not in watcher.triggers["data"]
    with (dvc_repo.root / "data" / "iris.csv").open("a") as data:
        data.write("4.9,1.5,setosa\n")
    assert watcher.poll() == []
