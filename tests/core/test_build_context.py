"""The build context: which tracked files a service's Bento is built from, as BentoML's
include/exclude rules pick them, and a hash that moves only when one of them does."""

from __future__ import annotations

from pathlib import Path

import pytest

from core.lineage.build_context import BuildContext, build_context, context_folder, tracked_files
from core.lineage.gitinfo import git

BENTOFILE = """\
service: "service:Svc"
include:
  - "service.py"
  - "src/**/*.py"
exclude:
  - "src/scratch/"
python:
  packages: [numpy]
  requirements_txt: requirements.txt
"""

FILES = {
    "service.py": "svc = 1\n",
    "src/model/predict.py": "def predict(): ...\n",
    "src/scratch/try.py": "print('notebook leftovers')\n",
    "src/data.csv": "a,b\n",
    "requirements.txt": "numpy\n",
    "README.md": "# a service\n",
    "relman.toml": "[project]\nname = 'x'\n",
    "bentofile.yaml": BENTOFILE,
}


@pytest.fixture
def repo(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.setenv("GIT_CONFIG_GLOBAL", str(tmp_path / "gitconfig"))
    monkeypatch.setenv("GIT_CONFIG_NOSYSTEM", "1")
    for role in ("AUTHOR", "COMMITTER"):
        monkeypatch.setenv(f"GIT_{role}_NAME", "Ada Lovelace")
        monkeypatch.setenv(f"GIT_{role}_EMAIL", "ada@example.invalid")
    root = tmp_path / "repo"
    root.mkdir()
    git(root, "init", "-q", "-b", "main")
    for rel, text in FILES.items():
        write(root, rel, text)
    commit(root)
    return root


def write(root: Path, rel: str, text: str) -> None:
    (root / rel).parent.mkdir(parents=True, exist_ok=True)
    (root / rel).write_text(text)


def commit(root: Path, message: str = "change") -> None:
    git(root, "add", "-A")
    git(root, "commit", "-q", "--allow-empty", "-m", message)


def context(root: Path, build: str = "bentofile.yaml") -> BuildContext:
    return build_context(root, build, tracked_files(root))


def test_the_files_are_those_bentoml_would_copy(repo: Path) -> None:
    assert context(repo).files == ("service.py", "src/model/predict.py")


@pytest.mark.parametrize(
    ("rel", "text"),
    [
        ("service.py", "svc = 2\n"),
        ("src/model/predict.py", "def predict(): return 1\n"),
        ("src/model/new.py", "x = 1\n"),
        ("bentofile.yaml", BENTOFILE.replace("[numpy]", "[numpy, pandas]")),
        ("requirements.txt", "numpy==2.0\n"),
    ],
)
def test_a_commit_inside_the_build_context_changes_the_hash(
    repo: Path, rel: str, text: str
) -> None:
    before = context(repo)
    write(repo, rel, text)
    assert context(repo).serves(rel)
    commit(repo)
    assert context(repo).digest != before.digest


@pytest.mark.parametrize(
    ("rel", "text"),
    [
        ("relman.toml", "[project]\nname = 'y'\n"),
        ("README.md", "# a better README\n"),
        ("src/scratch/try.py", "print('excluded by the bentofile')\n"),
        ("src/data.csv", "not matched by any include\n"),
        ("notes/todo.txt", "a new file elsewhere\n"),
    ],
)
def test_a_commit_outside_the_build_context_keeps_the_hash(repo: Path, rel: str, text: str) -> None:
    before = context(repo)
    write(repo, rel, text)
    assert not context(repo).serves(rel)
    commit(repo)
    assert context(repo).digest == before.digest


def test_relman_toml_is_never_part_of_it_even_when_included(repo: Path) -> None:
    write(repo, "bentofile.yaml", 'service: "service:Svc"\n')  # include: everything
    commit(repo)
    before = context(repo)
    assert "README.md" in before.files and "relman.toml" not in before.files
    write(repo, "relman.toml", "[project]\nname = 'moved'\n")
    commit(repo)
    assert not before.serves("relman.toml")
    assert context(repo).digest == before.digest


def test_bentoml_fixed_exclusions_and_bentoignore(repo: Path) -> None:
    write(repo, "bentofile.yaml", 'service: "service:Svc"\n')
    write(repo, "src/.bentoignore", "scratch/\n")
    write(repo, "src/model/__pycache__/predict.cpython-311.pyc", "bytes\n")
    commit(repo)
    ctx = context(repo)
    assert "src/scratch/try.py" not in ctx.files
    assert "src/model/__pycache__/predict.cpython-311.pyc" not in ctx.files
    assert "src/model/predict.py" in ctx.files and "src/.bentoignore" in ctx.files


def test_pyproject_counts_by_its_build_table_only(repo: Path) -> None:
    (repo / "bentofile.yaml").unlink()
    pyproject = '[project]\nname = "svc"\n\n[tool.bentoml.build]\nservice = "service:Svc"\n'
    write(repo, "pyproject.toml", pyproject + 'include = ["service.py"]\n')
    commit(repo)
    before = context(repo, "pyproject.toml")
    assert before.files == ("service.py",)
    write(
        repo, "pyproject.toml", pyproject.replace('"svc"', '"svc2"') + 'include = ["service.py"]\n'
    )
    commit(repo)
    assert context(repo, "pyproject.toml").digest == before.digest
    write(repo, "pyproject.toml", pyproject + 'include = ["service.py", "src/**/*.py"]\n')
    commit(repo)
    assert context(repo, "pyproject.toml").digest != before.digest


def test_same_hash_in_a_clone_elsewhere(repo: Path, tmp_path: Path) -> None:
    clone = tmp_path / "elsewhere" / "clone"
    git(tmp_path, "clone", "-q", str(repo), str(clone))
    assert context(clone).digest == context(repo).digest


def test_a_project_in_a_subfolder_of_the_repository(repo: Path) -> None:
    write(repo, "svc/bentofile.yaml", 'service: "service:Svc"\ninclude: ["*.py"]\n')
    write(repo, "svc/service.py", "svc = 1\n")
    commit(repo)
    ctx = context(repo / "svc")
    assert ctx.files == ("service.py",)
    # git status names files from the repository's top
    assert ctx.serves("svc/service.py") and not ctx.serves("service.py")


def test_a_build_config_in_a_subfolder_builds_from_that_folder(repo: Path) -> None:
    """serving/bentofile.yaml naming service:Svc of serving/service.py: the context is
    serving/ (`bentoml build serving`), its patterns and named files relative to it."""
    write(
        repo,
        "serving/bentofile.yaml",
        'service: "service:Svc"\ninclude: ["*.py", "model.pkl"]\n'
        "python:\n  requirements_txt: requirements.txt\n",
    )
    write(repo, "serving/service.py", "svc = 1\n")
    write(repo, "serving/model.pkl", "weights\n")
    write(repo, "serving/requirements.txt", "numpy\n")
    write(repo, "serving/notes.md", "# not included\n")
    commit(repo)
    ctx = context(repo, "serving/bentofile.yaml")
    assert context_folder(repo, "serving/bentofile.yaml") == "serving/"
    # service.py at the root matches "*.py" from the root, not from serving/
    assert ctx.files == ("serving/model.pkl", "serving/service.py")
    assert ctx.config_files == {"serving/bentofile.yaml", "serving/requirements.txt"}
    assert ctx.serves("serving/service.py") and ctx.serves("serving/requirements.txt")
    assert not ctx.serves("service.py") and not ctx.serves("serving/notes.md")

    before = ctx.digest
    write(repo, "service.py", "svc = 2\n")  # the root's service.py is not this Bento's
    commit(repo)
    assert context(repo, "serving/bentofile.yaml").digest == before
    write(repo, "serving/model.pkl", "other weights\n")
    commit(repo)
    assert context(repo, "serving/bentofile.yaml").digest != before


def test_a_subfolder_config_naming_a_module_of_the_root_builds_from_the_root(
    repo: Path,
) -> None:
    """serving/bentofile.yaml naming serving.service:Svc: built with `bentoml build -f
    serving/bentofile.yaml .`, from the root, its patterns relative to the root."""
    write(repo, "serving/bentofile.yaml", 'service: "serving.service:Svc"\ninclude: ["*.py"]\n')
    write(repo, "serving/service.py", "svc = 1\n")
    write(repo, "serving/__init__.py", "")
    commit(repo)
    assert context_folder(repo, "serving/bentofile.yaml") == ""
    ctx = context(repo, "serving/bentofile.yaml")
    assert "service.py" in ctx.files and "serving/service.py" in ctx.files
    # a service named by no module found anywhere: BentoML's own way, the config's folder
    write(repo, "other/bentofile.yaml", 'service: "nowhere:Svc"\n')
    assert context_folder(repo, "other/bentofile.yaml") == "other/"


def test_pyproject_dependencies_count_as_bentoml_adds_them_to_the_packages(repo: Path) -> None:
    (repo / "bentofile.yaml").unlink()
    table = '\n[tool.bentoml.build]\nservice = "service:Svc"\ninclude = ["service.py"]\n'
    write(repo, "pyproject.toml", '[project]\nname = "svc"\ndependencies = ["numpy"]\n' + table)
    commit(repo)
    before = context(repo, "pyproject.toml").digest
    write(repo, "pyproject.toml", '[project]\nname = "svc"\ndependencies = ["pandas"]\n' + table)
    commit(repo)
    assert context(repo, "pyproject.toml").digest != before
