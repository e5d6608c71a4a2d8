"""status, history, diff and audit verify on a real demo repository, through the CLI."""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from core.config.model import load_project
from core.ledger.releases import ledger_path, open_ledger, record_candidate
from core.lineage.candidate import candidates
from tests.e2e.conftest import Demo
from tui.cli import run

pytestmark = pytest.mark.e2e


@pytest.fixture
def repo(demo: Demo, tmp_path: Path) -> Path:
    """A private copy of the demo (and its DVC remote) that a test may change."""
    root = tmp_path / demo.root.name
    shutil.copytree(demo.root, root, symlinks=True)
    remote = demo.root.parent / f"{demo.root.name}-dvc-remote"
    if remote.exists():
        shutil.copytree(remote, tmp_path / remote.name)
    return root


def relman(root: Path, *args: str) -> tuple[int, str, str]:
    env = dict(os.environ)
    env["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), env.get("PATH", "")])
    result = subprocess.run(
        [sys.executable, "-m", "tui", "--project", str(root), *args],
        capture_output=True,
        text=True,
        env=env,
        check=False,
        timeout=120,
    )
    return result.returncode, result.stdout, result.stderr


def git(root: Path, *args: str) -> str:
    return subprocess.run(
        ["git", *args], cwd=root, capture_output=True, text=True, check=True
    ).stdout.strip()


def record(root: Path) -> str:
    project = load_project(root)
    service = project.config.services["iris"]
    cand = candidates(root, {"iris": (list(service.model), list(service.data))})["iris"]
    with open_ledger(project, read_only=False) as ledger:
        return record_candidate(ledger, project, "iris", cand).id


def repro_and_commit(root: Path, message: str) -> None:
    env = dict(os.environ)
    env["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), env.get("PATH", "")])
    subprocess.run(
        [sys.executable, "-m", "dvc", "repro", "-q"], cwd=root, env=env, check=True, timeout=120
    )
    git(root, "add", "-A")
    git(root, "commit", "-qm", message)


def test_status_names_commit_and_model_md5_as_dvc_lock_has_it(repo: Path) -> None:
    code, out, _err = relman(repo, "--json", "status")
    assert code == 0
    report = json.loads(out)
    assert report["ok"] is True
    cand = report["services"][0]["candidate"]
    assert cand["git"]["commit"] == git(repo, "rev-parse", "HEAD")
    assert cand["git"]["dirty"] is False
    lock = yaml.safe_load((repo / "dvc.lock").read_text())
    outs = {o["path"]: o["md5"] for o in lock["stages"]["train"]["outs"]}
    (model,) = cand["model"]
    assert model["path"] == "models/model.pkl"
    assert model["md5"] == outs["models/model.pkl"]
    assert model["in_cache"] is True
    assert cand["data"][0]["path"] == "data/iris.csv"
    assert cand["problems"] == []
    envs = report["services"][0]["environments"]
    assert list(envs) == ["dev", "staging", "prod"]
    assert envs["dev"]["state"] == "not deployed"
    assert not (repo / ".relman").exists(), "status must not write"


def test_uncommitted_params_change_is_a_problem_with_its_reason(repo: Path) -> None:
    params = repo / "params.yaml"
    params.write_text(params.read_text().replace("max_iter: ", "max_iter: 1"))
    code, out, _err = relman(repo, "--json", "status")
    assert code == 0
    cand = json.loads(out)["services"][0]["candidate"]
    assert any(p.startswith("train: dependency params.yaml changed") for p in cand["problems"])
    assert cand["git"]["dirty"] is True
    code, text, _err = relman(repo, "status")
    assert "problem: train: dependency params.yaml changed" in text


def test_gto_tags_show_in_history_and_status(repo: Path) -> None:
    head = git(repo, "rev-parse", "HEAD")
    git(repo, "tag", "-a", "iris-model@v1.0.0", "-m", "register", head)
    git(repo, "tag", "-a", "iris-model#prod#1", "-m", "assign", head)
    git(repo, "tag", "iris-model@v1.2", head)  # looks like GTO's, but malformed
    code, out, err = relman(repo, "--json", "history")
    assert code == 0, err
    page = json.loads(out)
    summaries = [entry["summary"] for entry in page["entries"] if entry["kind"] == "gto"]
    assert any(s.startswith("registered iris-model v1.0.0") for s in summaries)
    assert any(s.startswith("assigned iris-model v1.0.0 to prod") for s in summaries)
    assert any("iris-model@v1.2" in w for w in page["warnings"])
    code, out, _err = relman(repo, "--json", "status")
    assert json.loads(out)["services"][0]["registry"] == {"iris-model": {"prod": "v1.0.0"}}
    # the version GTO registered is the one relman gives the release
    release = record(repo)
    with open_ledger(load_project(repo), read_only=True) as ledger:
        assert ledger.get_release(release).version == "v1.0.0"


def test_audit_verify_passes_untouched_and_fails_after_an_edit(repo: Path) -> None:
    record(repo)
    code, out, _err = relman(repo, "audit", "verify")
    assert code == 0
    assert out.startswith("audit chain intact: ")
    db = sqlite3.connect(ledger_path(load_project(repo)))
    triggers = [row[0] for row in db.execute("SELECT name FROM sqlite_master WHERE type='trigger'")]
    for name in triggers:
        db.execute(f"DROP TRIGGER {name}")
    db.execute("UPDATE audit_events SET reason = 'nothing to see' WHERE seq = 1")
    db.commit()
    db.close()
    code, out, _err = relman(repo, "--json", "audit", "verify")
    assert code == 1
    report = json.loads(out)
    assert report["ok"] is False
    assert report["first_broken"] == 1
    assert report["detail"].startswith("audit chain broken: event 1")


def test_diff_shows_params_metrics_artifacts_and_commits(repo: Path) -> None:
    first = record(repo)
    params = repo / "params.yaml"
    doc = yaml.safe_load(params.read_text())
    doc["train"]["C"] = 0.01
    params.write_text(yaml.safe_dump(doc, sort_keys=False))
    repro_and_commit(repo, "Regularise harder")
    second = record(repo)
    assert second != first
    code, out, err = relman(repo, "--json", "diff", first, second)
    assert code == 0, err
    answer = json.loads(out)
    assert {"key": "params.yaml:train.C", "a": 1.0, "b": 0.01} in answer["params"] or any(
        row["key"].endswith("train.C") and row["b"] == 0.01 for row in answer["params"]
    )
    model = next(row for row in answer["artifacts"] if row["kind"] == "model")
    assert model["changed"] is True
    data = next(row for row in answer["artifacts"] if row["kind"] == "data")
    assert data["changed"] is False
    assert len(answer["commits"]) == 1 and "Regularise harder" in answer["commits"][0]
    accuracy = next(row for row in answer["metrics"] if row["key"].endswith("accuracy"))
    assert accuracy["delta"] == pytest.approx(accuracy["b"] - accuracy["a"])
    code, text, _err = relman(repo, "diff", "v1.0.0", "v1.1.0")
    assert code == 0
    assert "model models/model.pkl: changed" in text


def test_history_at_answers_what_was_live(repo: Path) -> None:
    release = record(repo)
    project = load_project(repo)
    with open_ledger(project, read_only=False) as ledger:
        promotion = ledger.begin_promotion("iris", "prod", release)
        ledger.finish_promotion(promotion.id, "done")
    code, out, err = relman(repo, "--json", "history", "--at", "2999-01-01T00:00", "--env", "prod")
    assert code == 0, err
    (item,) = json.loads(out)["live"]
    assert item["release"] == release
    assert item["data"][0]["path"] == "data/iris.csv"
    code, out, _err = relman(repo, "--json", "history", "--at", "2000-01-01T00:00")
    assert all(item["release"] is None for item in json.loads(out)["live"])
    code, out, _err = relman(repo, "--json", "history", "--env", "prod")
    kinds = [entry["kind"] for entry in json.loads(out)["entries"]]
    assert "promotion" in kinds


def test_bad_input_is_one_line(repo: Path, tmp_path: Path) -> None:
    code, _out, err = relman(repo, "history", "--env", "qa")
    assert code == 2
    assert (
        err.strip()
        == "relman: no environment 'qa' in relman.toml (environments: dev, staging, prod)"
    )
    code, _out, err = relman(repo, "history", "--at", "yesterday-ish")
    assert code == 2 and "not a moment" in err
    code, _out, err = relman(repo, "diff", "ffffffff")
    assert code == 2 and err.count("\n") == 1
    # a corrupt ledger is refused, named, and left as it was
    ledger = repo / ".relman" / "ledger.db"
    ledger.parent.mkdir(exist_ok=True)
    ledger.write_bytes(b"not a database at all" * 100)
    code, _out, err = relman(repo, "status")
    assert code == 3
    assert ".relman/ledger.db" in err and err.count("\n") == 1
    assert ledger.read_bytes() == b"not a database at all" * 100
    # not a git repository
    plain = tmp_path / "plain"
    plain.mkdir()
    shutil.copy(repo / "relman.toml", plain / "relman.toml")
    code, _out, err = relman(plain, "status")
    assert code == 2
    assert "not a git repository" in err and err.count("\n") == 1


def test_run_in_process_keeps_stdout_json_only(
    repo: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(
        "PATH", os.pathsep.join([str(Path(sys.executable).parent), os.environ["PATH"]])
    )
    assert run(["--project", str(repo), "--json", "status"]) == 0
    json.loads(capsys.readouterr().out)
