"""The quick reading of a repository without relman.toml (the TUI's first paint): its model
artifacts read as text where dvc.yaml is plain block style, as YAML where it is not, and the
same either way; the repository's top found from its folders as git finds it."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from core import api
from core.lineage.infer import quick_reading

BLOCK = """\
stages:
  train:
    cmd: python train.py
    outs:
    - models/churn.pkl
artifacts:
  churn:
    path: models/churn.pkl
    type: model
    labels:
    - tabular
  raw:
    path: data/raw.csv
    type: dataset
"""
FLOW = "artifacts: {forecast: {path: model.joblib, type: model}}\n"


def _repository(root: Path, files: dict[str, str]) -> Path:
    root.mkdir()
    subprocess.run(["git", "init", "-q", "-b", "main"], cwd=root, check=True)
    for name, text in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text)
    subprocess.run(["git", "add", "-A"], cwd=root, check=True)
    return root


def test_block_style_and_flow_style_read_the_same_models(tmp_path: Path) -> None:
    root = _repository(tmp_path / "shop", {"dvc.yaml": BLOCK, "sub/dvc.yaml": FLOW})
    reading = quick_reading(root)
    assert reading is not None
    assert [(s.name, s.model, s.model_paths) for s in reading.services] == [
        ("churn", ["churn"], ["models/churn.pkl"]),
        ("sub-forecast", ["sub:forecast"], ["sub/model.joblib"]),
    ]
    # The text path spared the YAML library (the flow-style file above needed it: a new
    # process reads only the block-style one).
    subprocess.run(["git", "rm", "-qf", "sub/dvc.yaml"], cwd=root, check=True)
    probe = (
        "import sys; from pathlib import Path; from core.lineage.infer import quick_reading; "
        f"r = quick_reading(Path({str(root)!r})); "
        "print(len(r.services), 'yaml' in sys.modules)"
    )
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    assert done.stdout.split() == ["1", "False"]


def test_a_dvc_yaml_yaml_cannot_read_leaves_it_to_the_full_reading(tmp_path: Path) -> None:
    root = _repository(tmp_path / "shop", {"dvc.yaml": "artifacts: {m: [\n"})
    assert quick_reading(root) is None


def test_the_repository_top_is_found_from_a_subfolder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = _repository(tmp_path / "shop", {"dvc.yaml": BLOCK})
    (root / "src").mkdir()
    monkeypatch.chdir(root / "src")
    project = api.read_project(None, quick=True)
    assert project.inferred and project.root == root.resolve()
    assert list(project.config.services) == ["shop"]


def test_the_first_screen_reads_the_tags_once_for_the_stages_and_their_versions(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from core.lineage import gitinfo

    root = _repository(tmp_path / "shop", {"dvc.yaml": BLOCK})
    subprocess.run(["git", "commit", "-qm", "pipeline"], cwd=root, check=True)
    for tag in ("churn@v1.0.0", "churn#dev#1"):
        subprocess.run(["git", "tag", "-a", tag, "-m", tag], cwd=root, check=True)
    asked: list[str] = []
    real_git = gitinfo.git

    def counted(where: Path, *args: str) -> str:
        asked.append(args[0])
        return real_git(where, *args)

    monkeypatch.setattr(gitinfo, "git", counted)
    project, recorded = api.first_screen(root)
    assert project.inferred and list(project.config.environments) == ["dev"]
    assert recorded is not None
    [dev] = recorded[0].environments
    assert (dev.name, dev.version, dev.state) == ("dev", "v1.0.0", "stage dev (git tags)")
    assert asked.count("for-each-ref") == 1
    # Each later reading reads them again (here: the poll's rows of the stages).
    api.recorded_overview(project)
    assert asked.count("for-each-ref") == 2
