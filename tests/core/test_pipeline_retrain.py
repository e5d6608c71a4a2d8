"""core/pipelines/retrain.py: the DVC stages behind a model reproduced, committed, pushed.

The repository is the ``dvc_repo`` fixture's (data/iris.csv tracked by a .dvc file, ``train``
writing models/model.pkl, the artifact ``clf``) with two more stages: ``evaluate``, downstream
of the model, run as ``python src/evaluate.py`` so the project's interpreter must be found on
PATH, and ``report``, which reads the data but leads to no model. Built once, copied per test.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import psutil
import pytest
import yaml

import core
from core.cancel import Cancelled
from core.config.model import Project, parse_config
from core.errors import BlockedError, InfraError
from core.host.processes import pid_alive
from core.pipelines.retrain import commit_and_push, commits_of_run, repro
from tests.core.conftest import TRAIN_PY, DvcRepo, _isolate
from tests.waiting import wait_for

TOML = """\
[project]
name = "shop"

[services.iris]
bento = "service:Iris"
model = ["clf"]
data = ["iris"]
"""

EVALUATE_PY = """\
import json, sys
model = open("models/model.pkl").read()
json.dump({"model": model.strip(), "prefix": sys.prefix}, open("eval.json", "w"))
print("evaluated", model.strip())
"""

REPORT_PY = """\
open("report.txt", "w").write(open("data/iris.csv").read().upper())
"""

STAGES = {
    "evaluate": {
        "cmd": "python src/evaluate.py",
        "deps": ["src/evaluate.py", "models/model.pkl"],
        "metrics": [{"eval.json": {"cache": False}}],
    },
    "report": {
        "cmd": "python src/report.py",
        "deps": ["src/report.py", "data/iris.csv"],
        "outs": ["report.txt"],
    },
}

NEW_ROWS = "4.9,1.5,setosa\n7.7,6.7,virginica\n"
REASON = "data/iris.csv changed: md5 1c5dc6ff -> 7a1c9e22, 2 -> 4 rows"


@dataclass
class Retrain:
    repo: DvcRepo
    project: Project

    def add_rows(self) -> None:
        with open(self.repo.root / "data" / "iris.csv", "a") as handle:
            handle.write(NEW_ROWS)

    def head(self) -> str:
        return self.repo.git("rev-parse", "HEAD")

    def stage_lock(self, stage: str) -> dict[str, object]:
        return self.repo.lock()["stages"][stage]  # type: ignore[no-any-return]


@pytest.fixture(scope="session")
def _retrain_template(_dvc_template: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    base = tmp_path_factory.mktemp("retrain-template")
    root = base / "repo"
    shutil.copytree(_dvc_template, root, symlinks=True)
    with pytest.MonkeyPatch.context() as mp:
        _isolate(mp, base / "home")
        mp.chdir(root)  # DVC's API resolves stages from the current directory
        # The stages call `python`: this interpreter's, for building the template.
        mp.setenv("PATH", os.pathsep.join([str(Path(sys.executable).parent), os.environ["PATH"]]))
        repo = DvcRepo(root, base / "remote")
        pipeline = yaml.safe_load((root / "dvc.yaml").read_text())
        pipeline["stages"].update(STAGES)
        repo.write("dvc.yaml", yaml.safe_dump(pipeline, sort_keys=False))
        repo.write("src/evaluate.py", EVALUATE_PY)
        repo.write("src/report.py", REPORT_PY)
        repo.write("relman.toml", TOML)
        repo.write("NOTES.md", "notes a person keeps\n")
        repo.dvc("reproduce")
        repo.commit("evaluate and report")
    return root


@pytest.fixture
def retrain(
    _retrain_template: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Retrain]:
    _isolate(monkeypatch, tmp_path / "home")
    root = tmp_path / "repo"
    shutil.copytree(_retrain_template, root, symlinks=True)
    (tmp_path / "remote").mkdir()
    git = shutil.which("git")
    assert git
    # Only git and sh on PATH: `python` must come from relman putting the project's first.
    monkeypatch.setenv("PATH", os.pathsep.join(dict.fromkeys([str(Path(git).parent), "/bin"])))
    monkeypatch.chdir(tmp_path)
    config = root / "relman.toml"
    yield Retrain(
        DvcRepo(root, tmp_path / "remote"), Project(root, config, parse_config(TOML, config))
    )


# ------------------------------------------------------------------------------------- repro


def test_repro_runs_the_model_and_downstream_stages_on_new_data(
    retrain: Retrain, capfd: pytest.CaptureFixture[str]
) -> None:
    before = {name: retrain.stage_lock(name) for name in ("train", "evaluate", "report")}
    retrain.add_rows()
    lines: list[str] = []

    result = repro(retrain.project, "iris", log=lines.append)

    assert result.stages == ["data/iris.csv.dvc", "train", "evaluate"]
    assert result.detail.startswith("ran data/iris.csv.dvc, train, evaluate (")
    assert retrain.stage_lock("train") != before["train"]
    assert retrain.stage_lock("evaluate") != before["evaluate"]
    assert retrain.stage_lock("report") == before["report"]  # reads the data, makes no model
    evaluated = json.loads((retrain.repo.root / "eval.json").read_text())
    assert evaluated == {"model": "model lr=0.1 rows=5", "prefix": sys.prefix}
    assert "evaluated model lr=0.1 rows=5" in result.lines
    assert any("Running stage 'train'" in line for line in result.lines)
    assert lines[-1] == f"repro iris: {result.detail}"
    out, err = capfd.readouterr()
    assert (out, err) == ("", "")  # neither DVC nor the stages print over relman's output

    again = repro(retrain.project, "iris")

    assert again.stages == []
    assert again.detail == "up to date: data/iris.csv.dvc, train, evaluate"


def test_a_failing_stage_blocks_with_its_last_error_line(retrain: Retrain) -> None:
    retrain.repo.write(
        "src/train.py",
        "print('reading data/iris.csv')\nraise ValueError('column petal is empty')\n",
    )

    with pytest.raises(BlockedError) as caught:
        repro(retrain.project, "iris")

    assert str(caught.value) == "repro: stage train failed: ValueError: column petal is empty"
    assert caught.value.exit_code == 1
    assert "reading data/iris.csv" in caught.value.lines  # type: ignore[attr-defined]


def test_an_output_the_stage_did_not_write_is_dvcs_reason(retrain: Retrain) -> None:
    retrain.repo.write("src/train.py", "print('forgot the model')\n")

    with pytest.raises(BlockedError) as caught:
        repro(retrain.project, "iris")

    assert (
        str(caught.value) == "repro: stage train failed: output 'models/model.pkl' does not exist"
    )


def test_a_cancel_stops_the_running_stage(retrain: Retrain) -> None:
    started = retrain.repo.root / "started"
    retrain.repo.write(
        "src/train.py",
        f"import os, time\nopen({str(started)!r}, 'w').write(str(os.getpid()))\ntime.sleep(600)\n",
    )

    class WhenTrainStarted:
        def is_set(self) -> bool:
            return started.exists() and bool(started.read_text())

    with pytest.raises(Cancelled) as caught:
        repro(retrain.project, "iris", cancel=WhenTrainStarted())

    assert "during stage train" in str(caught.value)
    pid = int(started.read_text())
    wait_for(lambda: not pid_alive(pid), "the stage's command to be stopped")


def test_a_killed_relman_leaves_no_stage_running(retrain: Retrain) -> None:
    """kill -9 of the process that runs repro: DVC and the stage command end with it, so the
    run that resumes finds the repository unlocked."""
    started = retrain.repo.root / "started"
    retrain.repo.write(
        "src/train.py",
        f"import os, time\nopen({str(started)!r}, 'w').write(str(os.getpid()))\ntime.sleep(600)\n",
    )
    relman = Path(core.__file__).resolve().parents[1]
    script = (
        f"import sys; sys.path.insert(0, {str(relman)!r})\n"
        "from pathlib import Path\n"
        "from core.config.model import load_project\n"
        "from core.pipelines.retrain import repro\n"
        f"repro(load_project(Path({str(retrain.repo.root)!r})), 'iris')\n"
    )
    parent = subprocess.Popen(
        [sys.executable, "-c", script],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        wait_for(lambda: started.exists() and started.read_text(), "the stage to start")
        stage = int(started.read_text())
        dvc = os.getpgid(stage)  # the DVC child leads the stage's process group
        os.kill(parent.pid, signal.SIGKILL)
        parent.wait()
        wait_for(lambda: not pid_alive(stage), "the stage's command to end with relman")
        # DVC's own lock counts a pid as long as it exists (a zombie included).
        wait_for(lambda: not psutil.pid_exists(dvc), "the DVC child to end with relman")
    finally:
        if parent.poll() is None:
            parent.kill()
            parent.wait()
        if started.exists() and started.read_text() and pid_alive(int(started.read_text())):
            os.kill(int(started.read_text()), signal.SIGKILL)
    retrain.repo.write("src/train.py", TRAIN_PY)
    assert repro(retrain.project, "iris").stages  # the repository is not left locked


# ---------------------------------------------------------------------------- commit and push


def _changed_files(retrain: Retrain, commit: str) -> set[str]:
    return set(retrain.repo.git("show", "--name-only", "--format=", commit).split())


def _trailer(retrain: Retrain, key: str) -> str:
    return retrain.repo.git("log", "-1", f"--format=%(trailers:key={key},valueonly)").strip()


def test_commit_takes_only_what_dvc_records_and_pushes_it(retrain: Retrain) -> None:
    retrain.add_rows()
    repro(retrain.project, "iris")
    (retrain.repo.root / "NOTES.md").write_text("an edit that is not the pipeline's\n")
    (retrain.repo.root / "scratch.txt").write_text("untracked\n")

    result = commit_and_push(retrain.project, "iris", pipeline="retrain", run_id=7, reason=REASON)

    assert result.commit == retrain.head() and not result.reused
    assert _changed_files(retrain, result.commit) == {"data/iris.csv.dvc", "dvc.lock", "eval.json"}
    status = retrain.repo.git("status", "--porcelain").splitlines()
    assert sorted(line.strip() for line in status) == ["?? scratch.txt", "M NOTES.md"]
    subject, _, body = retrain.repo.git("log", "-1", "--format=%B").partition("\n\n")
    assert subject == f"retrain iris: {REASON}"
    assert "Pipeline retrain, run 7" in body and REASON in body
    assert _trailer(retrain, "Relman-Pipeline-Run") == "7"
    assert _trailer(retrain, "Relman-Pipeline") == "retrain"
    author = retrain.repo.git("log", "-1", "--format=%an <%ae>|%cn")
    assert author == "relman pipeline retrain <author@example.invalid>|Test Author"
    assert result.detail.startswith(f"committed {result.commit[:8]}: retrain iris: ")
    assert "(pipeline retrain, run 7)" in result.detail
    # The new data and the new model are on the remote.
    new_data = yaml.safe_load((retrain.repo.root / "data" / "iris.csv.dvc").read_text())
    model = next(o for o in retrain.stage_lock("train")["outs"] if o["path"] == "models/model.pkl")  # type: ignore[attr-defined]
    for md5 in (new_data["outs"][0]["md5"], model["md5"]):
        assert (retrain.repo.remote / "files" / "md5" / md5[:2] / md5[2:]).is_file()
    assert result.pushed and result.pushed[0].endswith("to remote 'local'")
    assert commits_of_run(retrain.repo.root, 7) == [result.commit]
    assert commits_of_run(retrain.repo.root, 8) == []


def test_a_second_commit_of_the_same_run_is_the_first(retrain: Retrain) -> None:
    retrain.add_rows()
    repro(retrain.project, "iris")
    first = commit_and_push(retrain.project, "iris", pipeline="retrain", run_id=3, reason=REASON)
    count = retrain.repo.git("rev-list", "--count", "HEAD")

    second = commit_and_push(retrain.project, "iris", pipeline="retrain", run_id=3, reason=REASON)

    assert second.reused and second.commit == first.commit == retrain.head()
    assert retrain.repo.git("rev-list", "--count", "HEAD") == count
    assert second.detail.startswith(f"commit {first.commit[:8]} of run 3 already made")


def test_without_a_remote_nothing_is_pushed_and_nothing_left_commits_nothing(
    retrain: Retrain,
) -> None:
    (retrain.repo.root / ".dvc" / "config").write_text("[core]\n    autostage = false\n")

    result = commit_and_push(retrain.project, "iris", pipeline="retrain", run_id=4, reason=REASON)

    assert result.commit is None and result.pushed == [] and not result.reused
    assert result.detail == (
        "nothing to commit: what DVC records for the stages is as at HEAD; "
        "no DVC remote: nothing pushed"
    )


def test_a_failing_remote_keeps_the_commit_for_the_resume(retrain: Retrain) -> None:
    retrain.add_rows()
    repro(retrain.project, "iris")
    retrain.repo.remote.rmdir()
    retrain.repo.remote.write_text("a file where the remote folder should be\n")

    with pytest.raises(InfraError) as caught:
        commit_and_push(retrain.project, "iris", pipeline="retrain", run_id=5, reason=REASON)

    assert str(caught.value).startswith("push: the DVC remote failed from ")
    [made] = commits_of_run(retrain.repo.root, 5)
    retrain.repo.remote.unlink()
    retrain.repo.remote.mkdir()

    resumed = commit_and_push(retrain.project, "iris", pipeline="retrain", run_id=5, reason=REASON)

    assert resumed.reused and resumed.commit == made == retrain.head()
    assert resumed.pushed and resumed.pushed[0].endswith("to remote 'local'")


def test_code_changed_under_the_model_blocks_the_commit(retrain: Retrain) -> None:
    """dvc.lock would record a model trained on code that is in no commit."""
    train = retrain.repo.root / "src" / "train.py"
    train.write_text(train.read_text() + "# a change nobody committed\n")
    repro(retrain.project, "iris")

    with pytest.raises(BlockedError) as caught:
        commit_and_push(retrain.project, "iris", pipeline="retrain", run_id=6, reason=REASON)

    assert str(caught.value).startswith("commit: src/train.py has uncommitted changes")
    assert commits_of_run(retrain.repo.root, 6) == []


def test_a_repository_without_git_identity_still_commits(
    retrain: Retrain, monkeypatch: pytest.MonkeyPatch
) -> None:
    for role in ("AUTHOR", "COMMITTER"):
        monkeypatch.delenv(f"GIT_{role}_NAME", raising=False)
        monkeypatch.delenv(f"GIT_{role}_EMAIL", raising=False)
    monkeypatch.setenv("GIT_CONFIG_GLOBAL", os.devnull)
    monkeypatch.delenv("EMAIL", raising=False)
    retrain.add_rows()
    repro(retrain.project, "iris")

    reason = f"{REASON}; data/extra.csv changed: md5 0a1b2c3d -> 4e5f6a7b, 10 -> 12 rows"
    result = commit_and_push(retrain.project, "iris", pipeline="nightly", run_id=9, reason=reason)

    assert result.commit == retrain.head()
    subject, _, body = retrain.repo.git("log", "-1", "--format=%B").partition("\n\n")
    assert subject == f"retrain iris: {REASON}; data/extra.csv..."
    assert reason in body  # a long reason is cut at a word in the subject, whole in the body
    pipeline = "relman pipeline nightly <relman@localhost>"
    assert retrain.repo.git("log", "-1", "--format=%an <%ae>|%cn <%ce>") == f"{pipeline}|{pipeline}"
    local = subprocess.run(["git", "-C", str(retrain.repo.root), "config", "--local", "user.email"])
    assert local.returncode == 1  # nothing was written to the repository's config
