"""`relman build` on the demo project: a real BentoML build, once per release, then reuse."""

from __future__ import annotations

import argparse
import io
import json
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from core.build import bento
from core.build.bento import BuildResult, build
from core.build.bento_runner import MARKER
from core.build.bento_store import bentoml_home, relman_version
from core.config.model import Project, load_project
from core.errors import BlockedError
from core.ledger.releases import open_ledger
from core.lineage.candidate import Candidate, project_candidates
from tests.e2e.conftest import Demo

pytestmark = pytest.mark.e2e


@dataclass(frozen=True)
class Built:
    project: Project
    candidate: Candidate
    results: list[BuildResult]
    lines: list[str]


@pytest.fixture(scope="module")
def built(demo: Demo) -> Built:
    """The first build of the demo's release: a real ``build_bentofile`` in the demo's
    environment (the demo fixture keeps BENTOML_HOME isolated while the module runs)."""
    project = load_project(demo.root)
    assert not list(bentoml_home().glob("bentos/*/*/bento.yaml")), "the store starts empty"
    lines: list[str] = []
    results = build(project, log=lines.append)
    candidate = project_candidates(project)["iris"]
    return Built(project, candidate, results, lines)


def test_the_first_build_makes_the_bento_of_the_release(built: Built) -> None:
    [result] = built.results
    release = built.candidate.release
    assert not result.reused
    assert result.bento.tag == f"iris_classifier:{release}"
    assert result.bento.path == bentoml_home() / "bentos" / "iris_classifier" / release
    # BentoML's own log lines were streamed, relman's marker line was not.
    assert any("Adding BentoML requirement" in line for line in built.lines), built.lines
    assert not any(line.startswith(MARKER) for line in built.lines)


def test_the_bento_carries_the_release_as_version_and_lineage_as_labels(built: Built) -> None:
    [result] = built.results
    cand = built.candidate
    info = yaml.safe_load((result.bento.path / "bento.yaml").read_text())
    assert info["version"] == cand.release
    with open_ledger(built.project, read_only=True) as ledger:
        version = ledger.get_release(cand.release).version
    assert version
    labels = info["labels"]
    assert labels["project"] == "iris-demo"  # the bentofile's own labels are kept
    assert {k: v for k, v in labels.items() if k.startswith("relman.")} == {
        "relman.release": cand.release,
        "relman.service": "iris",
        "relman.git_commit": cand.git.commit,
        "relman.model_md5": cand.model[0].md5,
        "relman.data_md5": cand.data[0].md5,
        "relman.version": version,
        "relman.relman_version": relman_version(),
    }
    assert result.bento.labels == labels


def test_the_bento_holds_the_model_of_the_release(built: Built) -> None:
    [result] = built.results
    packed = result.bento.path / "src" / "models" / "model.pkl"
    assert packed.read_bytes() == (built.project.root / "models" / "model.pkl").read_bytes()


def test_the_build_is_recorded_with_its_bento(built: Built) -> None:
    [result] = built.results
    with open_ledger(built.project, read_only=True) as ledger:
        run = ledger.latest_run("build", built.candidate.release, service="iris")
        assert run is not None
        steps = ledger.steps(run.id)
    assert run.status == "passed"
    assert run.reason == result.detail
    assert run.details["bento"] == result.bento.tag
    assert [(s.name, s.status, s.detail) for s in steps] == [("build", "passed", result.detail)]
    assert result.detail.startswith(f"built {result.bento.tag} in ")


def test_the_same_release_is_never_built_twice(
    built: Built, monkeypatch: pytest.MonkeyPatch
) -> None:
    def no_build(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("the release was built already: BentoML must not run again")

    monkeypatch.setattr(bento, "run_build_script", no_build)
    lines: list[str] = []
    [again] = build(built.project, "iris", log=lines.append)
    assert again.reused
    assert again.bento == built.results[0].bento
    assert again.to_step()["detail"] == f"reused {again.bento.tag}"
    assert lines == []  # no BentoML output: nothing was built
    with open_ledger(built.project, read_only=True) as ledger:
        run = ledger.latest_run("build", built.candidate.release)
        assert run is not None and run.reason == f"reused {again.bento.tag}"


def test_the_verb_prints_the_json_document(built: Built, monkeypatch: pytest.MonkeyPatch) -> None:
    from tui import output
    from tui.commands.build import cmd_build

    stdout = io.StringIO()
    monkeypatch.setattr(output, "_STDOUT", stdout)
    args = argparse.Namespace(project=built.project.root, service=None, json=True, read_only=False)
    assert cmd_build(args) == 0
    document = json.loads(stdout.getvalue())
    tag = built.results[0].bento.tag
    assert document["ok"] is True
    [step] = document["steps"]
    assert {k: step[k] for k in ("name", "status", "detail")} == {
        "name": "build",
        "status": "passed",
        "detail": f"reused {tag}",
    }
    assert isinstance(step["seconds"], float)
    assert document["bentos"] == [
        {
            "service": "iris",
            "release": built.candidate.release,
            "tag": tag,
            "reused": True,
            "path": str(built.results[0].bento.path),
        }
    ]
    stdout.truncate(0)
    stdout.seek(0)
    args.json = False
    assert cmd_build(args) == 0
    assert stdout.getvalue() == f"reused {tag}\n"


def test_relman_build_on_the_command_line(built: Built) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "tui", "--json", "--project", str(built.project.root), "build"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["bentos"][0]["reused"] is True
    unknown = subprocess.run(
        [sys.executable, "-m", "tui", "--project", str(built.project.root), "build", "nope"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert unknown.returncode == 2
    assert unknown.stderr.strip() == "relman: no service 'nope' in relman.toml (services: iris)"


def test_a_dirty_tree_is_refused_before_anything_builds(
    built: Built, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = tmp_path / "iris-demo"
    shutil.copytree(built.project.root, root, symlinks=True)
    with (root / "service.py").open("a") as handle:
        handle.write("# an uncommitted edit\n")
    monkeypatch.setattr(bento, "run_build_script", None)  # never reached
    with pytest.raises(BlockedError) as caught:
        build(load_project(root))
    assert caught.value.exit_code == 1
    assert str(caught.value) == (
        "iris: working tree has uncommitted changes (service.py); commit them so the Bento "
        "matches a release"
    )
    # The copy's ledger holds the builds of the original, and no new run.
    with open_ledger(built.project, read_only=True) as ledger:
        before = ledger.latest_run("build", service="iris")
    with open_ledger(load_project(root), read_only=True) as ledger:
        after = ledger.latest_run("build", service="iris")
    assert before is not None and after == before
