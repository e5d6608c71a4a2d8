"""Pipeline runs as recorded state machines, on a real git + DVC repository: each step
recorded with its attempts and output, retries, timeouts, a failing test named, a run that
cannot go on refused, a driver that died taken over, a stop that leaves the run resumable, and
a relman.toml changed under a run. No BentoML: the pipelines here test, verify and run."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from core import api
from core.config.model import Project, load_project
from core.errors import BlockedError, ConfigError, UsageError
from core.ledger.releases import open_ledger
from tests.core.conftest import DvcRepo
from tests.ports import worker_ports

TOML = """\
[project]
name = "runner"

[services.svc]
bento = "service:Svc"
model = ["clf"]
data = ["iris"]

[environments.dev]
port = {port}
suites = ["unit"]

[suites.unit]
paths = ["tests"]

[pipelines.check]
steps = ["test", {{ step = "run", cmd = "python count.py", retries = 2 }}]

[pipelines.slow]
steps = [{{ step = "run", cmd = "python -c 'import time; time.sleep(121.5)'", timeout = "1s" }}]

[pipelines.stop]
steps = [
    {{ step = "run", cmd = "python stop.py" }},
    {{ step = "run", cmd = "true", name = "after" }},
]
"""

# Fails until it has been called ``FAILS`` times (the count kept in a file).
COUNT_PY = """\
import pathlib, sys
path = pathlib.Path("count.txt")
n = int(path.read_text()) + 1 if path.exists() else 1
path.write_text(str(n))
print(f"attempt {n}")
sys.exit(0 if n > int(open("fails.txt").read()) else 1)
"""

STOP_PY = """\
import pathlib, time
pathlib.Path("started.txt").write_text("yes")
time.sleep(120)
"""


@pytest.fixture
def project(dvc_repo: DvcRepo, monkeypatch: pytest.MonkeyPatch) -> Project:
    monkeypatch.setenv("RELMAN_USER", "alice")
    (port,) = worker_ports(1)
    dvc_repo.write("relman.toml", TOML.format(port=port))
    dvc_repo.write("tests/test_ok.py", "def test_ok():\n    assert True\n")
    dvc_repo.write("count.py", COUNT_PY)
    dvc_repo.write("fails.txt", "1")
    dvc_repo.write("stop.py", STOP_PY)
    dvc_repo.write(".gitignore", ".relman/\ncount.txt\nstarted.txt\n")
    dvc_repo.commit("configure relman")
    return load_project(dvc_repo.root)


def test_a_run_records_each_step_and_retries_a_failing_one(
    project: Project, tmp_path: Path
) -> None:
    junit, summary = tmp_path / "run.xml", tmp_path / "run.md"
    document = api.pipeline_run(project, "check", junit=junit, summary=summary)
    assert document["exit_code"] == 0 and document["status"] == "passed", document
    assert [s["name"] for s in document["steps"]] == ["verify", "test", "run"]
    verify, test, run = document["steps"]
    assert verify["detail"].endswith("no lineage problems") and document["release"]
    assert test["status"] == "passed" and test["cases"][0]["nodeid"].endswith("test_ok")
    assert run["attempts"] == 2 and run["detail"] == "python count.py: exit 0"
    assert run["output"] == ["attempt 2"]  # the last attempt's lines
    assert junit.is_file() and summary.read_text().startswith("## ✅")
    listed = api.pipeline_runs(project)["runs"][0]
    assert listed["run"] == document["run"] and listed["trigger"] == "manual"
    assert listed["reason"] == "started by hand (alice)"


def test_a_failing_test_fails_the_run_and_is_named(project: Project, dvc_repo: DvcRepo) -> None:
    dvc_repo.write("tests/test_ok.py", "def test_ok():\n    assert 1 == 2, 'one is not two'\n")
    dvc_repo.commit("break a test")
    document = api.pipeline_run(project, "check")
    assert document["exit_code"] == 1 and document["status"] == "failed"
    assert document["error"].startswith("test: unit: ")
    assert [s["status"] for s in document["steps"]] == ["passed", "failed", "pending"]
    assert any("tests/test_ok.py::test_ok" in line for line in api.failed_tests(document))
    again = api.pipeline_run(project, "check")  # a failed run leaves the way free
    assert again["run"] == document["run"] + 1


def test_retries_run_out_and_the_run_says_after_how_many(
    project: Project, dvc_repo: DvcRepo
) -> None:
    (dvc_repo.root / "fails.txt").write_text("9")
    dvc_repo.commit("fail more")
    document = api.pipeline_run(project, "check")
    assert document["status"] == "failed" and document["steps"][-1]["attempts"] == 3
    assert document["error"] == ("run: python count.py: exit 1: attempt 3 (after 3 attempts)")


def test_a_step_past_its_timeout_fails_and_leaves_nothing_running(project: Project) -> None:
    document = api.pipeline_run(project, "slow")
    assert document["status"] == "failed" and document["exit_code"] == 1
    assert "timed out after 1s" in document["error"]
    left = subprocess.run(
        ["pgrep", "-f", "time.sleep\\(121.5\\)"], capture_output=True, text=True, check=False
    )
    assert left.stdout.strip() == ""


def test_an_uncommitted_change_stops_the_run_at_verify(project: Project, dvc_repo: DvcRepo) -> None:
    dvc_repo.write("params.yaml", "lr: 0.5\n")
    document = api.pipeline_run(project, "check")
    assert document["status"] == "failed" and document["steps"][0]["name"] == "verify"
    assert "uncommitted changes (params.yaml)" in document["error"]


def test_a_stop_leaves_the_run_interrupted_and_resumable(
    project: Project, dvc_repo: DvcRepo
) -> None:
    stop = threading.Event()
    started = dvc_repo.root / "started.txt"

    def stop_when_started() -> None:
        from tests.waiting import wait_for

        wait_for(started.exists, "the step's command to start")
        stop.set()

    helper = threading.Thread(target=stop_when_started)
    helper.start()
    document = api.pipeline_run(project, "stop", cancel=stop)
    helper.join()
    assert document["status"] == "interrupted" and document["exit_code"] == 1
    assert document["steps"][0]["status"] == "pending"
    assert document["error"] == (
        f"stopped at run; relman pipeline resume {document['run']} goes on from there"
    )
    # The next relman takes it over (here the command is made to pass) and finishes it.
    dvc_repo.write("stop.py", "print('quick')\n")
    dvc_repo.commit("a quick step")
    done = api.pipeline_resume(project, document["run"])
    assert done["status"] == "passed" and [s["name"] for s in done["steps"]] == ["run", "after"]
    with pytest.raises(UsageError, match="already ended passed"):
        api.pipeline_resume(project, document["run"])


def test_a_run_whose_driver_died_is_interrupted_and_taken_over(project: Project) -> None:
    from core.pipelines.runner import start_run

    run_id = start_run(project, "check", "svc")
    _orphan(project, run_id)
    assert api.pipeline_runs(project)["runs"][0]["status"] == "interrupted"
    entry = api.history(project)["entries"][0]
    assert entry["kind"] == "pipeline" and entry["status"] == "interrupted"
    with pytest.raises(BlockedError, match="has not ended"):
        api.pipeline_run(project, "check")  # one open run of a pipeline per service
    done = api.pipeline_resume(project, run_id)
    assert done["status"] == "passed" and done["driver"]["pid"] == os.getpid()


def test_a_run_driven_by_a_live_relman_is_not_taken(project: Project) -> None:
    from core.pipelines.runner import start_run

    run_id = start_run(project, "check", "svc")
    sleeper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        with open_ledger(project, read_only=False) as ledger:
            seen = ledger.get_pipeline_run(run_id).updated_at
            ledger.claim_pipeline_run(run_id, pid=sleeper.pid, host=_host(), seen=seen)
        with pytest.raises(BlockedError, match=f"is being driven by pid {sleeper.pid}"):
            api.pipeline_resume(project, run_id)
    finally:
        sleeper.kill()
        sleeper.wait()


def test_a_pipeline_changed_under_a_run_fails_it_with_that_line(
    project: Project, dvc_repo: DvcRepo
) -> None:
    from core.pipelines.runner import start_run

    run_id = start_run(project, "check", "svc")
    _orphan(project, run_id)  # its relman died
    config = dvc_repo.root / "relman.toml"
    config.write_text(config.read_text().replace('steps = ["test", {', "steps = [{", 1))
    changed = load_project(dvc_repo.root)
    done = api.pipeline_resume(changed, run_id)
    assert done["status"] == "failed"
    assert done["error"].startswith("relman.toml changed pipeline check since run")


def test_usage_errors_record_nothing(project: Project, tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="no pipeline 'nope'"):
        api.pipeline_run(project, "nope")
    with pytest.raises(UsageError, match="--junit"):
        api.pipeline_run(project, "check", junit=tmp_path / "missing" / "x.xml")
    with pytest.raises(UsageError, match="no pipeline run #42"):
        api.pipeline_resume(project, 42)
    assert api.pipeline_runs(project)["runs"] == []


def test_a_broken_pipeline_in_relman_toml_is_one_line(dvc_repo: DvcRepo) -> None:
    dvc_repo.write(
        "relman.toml",
        TOML.format(port=1).replace('cmd = "true", name = "after"', 'name = "after"'),
    )
    with pytest.raises(
        ConfigError, match=r"relman.toml:\d+: \[pipelines.stop\] steps #2: a run step needs cmd"
    ):
        load_project(dvc_repo.root)


def _orphan(project: Project, run_id: int) -> None:
    """Make ``run_id``'s driver a relman that has ended (a pid that ran and exited)."""
    dead = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"],
        capture_output=True,
        text=True,
        check=True,
    )
    with open_ledger(project, read_only=False) as ledger:
        seen = ledger.get_pipeline_run(run_id).updated_at
        ledger.claim_pipeline_run(run_id, pid=int(dead.stdout), host=_host(), seen=seen)


def _host() -> str:
    from core.host.processes import this_host

    return this_host()


APPROVE_TOML = """
[environments.staging]
port = {port}
approvals = 1

[pipelines.ship]
steps = ["approve:staging", "deploy:staging"]
"""


def test_neither_the_driver_nor_the_starter_may_approve_their_run(
    project: Project, dvc_repo: DvcRepo, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = dvc_repo.root / "relman.toml"
    (port,) = worker_ports(1)
    config.write_text(config.read_text() + APPROVE_TOML.format(port=port))
    dvc_repo.commit("a staging that needs an approval")
    project = load_project(dvc_repo.root)
    waiting = api.pipeline_run(project, "ship")  # started by alice
    assert waiting["status"] == "waiting" and waiting["exit_code"] == 1
    release = waiting["release"]
    assert waiting["waiting_for"]["command"] == f"relman approve {release[:12]} --env staging"
    api.approve(project, release, "staging")  # alice's own
    monkeypatch.setenv("RELMAN_USER", "bob")
    still = api.pipeline_resume(project, waiting["run"])  # bob drives; alice approved
    assert still["status"] == "waiting"
    assert "alice started this run: theirs does not count" in still["detail"]
    approve = next(s for s in still["steps"] if s["name"] == "approve:staging")
    assert approve["attempts"] == 1  # looked at again, not attempted again
    monkeypatch.setenv("RELMAN_USER", "carol")
    api.approve(project, release, "staging")
    monkeypatch.setenv("RELMAN_USER", "bob")
    done = api.pipeline_resume(project, waiting["run"])
    approve = next(s for s in done["steps"] if s["name"] == "approve:staging")
    assert approve["status"] == "passed" and "carol" in approve["detail"]


def test_a_cancelled_run_ends_for_good(project: Project, dvc_repo: DvcRepo) -> None:
    stop = threading.Event()
    stop.set()
    stopped = api.pipeline_run(project, "check", cancel=stop)
    assert stopped["status"] == "interrupted"
    with pytest.raises(BlockedError, match=f"run #{stopped['run']} of pipeline check"):
        api.pipeline_run(project, "check")  # interrupted is not ended: resume or cancel it
    cancelled = api.pipeline_cancel(project, stopped["run"])
    assert cancelled["status"] == "cancelled" and cancelled["detail"] == "cancelled by alice"
    with pytest.raises(UsageError, match="already ended cancelled"):
        api.pipeline_resume(project, stopped["run"])
    with pytest.raises(UsageError, match="already ended cancelled"):
        api.pipeline_cancel(project, stopped["run"])
    assert api.pipeline_run(project, "check")["status"] == "passed"


def test_a_run_whose_pipeline_is_gone_fails_with_that_line(
    project: Project, dvc_repo: DvcRepo
) -> None:
    from core.pipelines.runner import start_run

    run_id = start_run(project, "slow", "svc")
    _orphan(project, run_id)
    config = dvc_repo.root / "relman.toml"
    text = config.read_text()
    config.write_text(
        text[: text.index("[pipelines.slow]")] + text[text.index("[pipelines.stop]") :]
    )
    done = api.pipeline_resume(load_project(dvc_repo.root), run_id)
    assert done["status"] == "failed" and done["exit_code"] == 2
    assert done["error"].startswith("no pipeline 'slow' in relman.toml")
    assert api.pipeline_runs(project)["runs"][0]["status"] == "failed"  # never left running
