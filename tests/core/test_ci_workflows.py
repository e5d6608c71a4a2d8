"""`relman ci`: the GitHub workflow and the GitLab pipeline it generates, read back as a YAML
parser (and the platforms' JSON schemas) reads them, their shell lines run for real, and the
file written only where relman may write it (docs/ci.md)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from importlib import metadata
from pathlib import Path
from typing import Any

import pytest
import yaml

from core.ci.files import default_branch, relman_install, write_ci, write_workflow
from core.ci.render import dvc_pull, prepare
from core.ci.workflows import CiJob, github_workflow, gitlab_pipeline, select_jobs
from core.errors import UsageError

TRAIN = ("train", "iris", ["commit", "data"], ["repro", "commit", "test", "gate"])
TRAIN_SHOP = ("train", "shop", ["commit", "data"], ["repro", "commit", "test", "gate"])
SHIP = ("ship", "iris", ["commit"], ["test", "gate", "build", "deploy:dev"])
NIGHTLY = ("nightly", "iris", ["data"], ["repro", "test"])
USES = [TRAIN, TRAIN_SHOP, SHIP, NIGHTLY]
BIN = Path(sys.executable).parent


def _github(jobs: list[CiJob], **options: Any) -> dict[str, Any]:
    merged: dict[str, Any] = {"branch": "trunk", "has_requirements": True, "relman_install": "x"}
    loaded: dict[str, Any] = yaml.safe_load(github_workflow("shop", jobs, **merged | options))
    return loaded


def _gitlab(jobs: list[CiJob], **options: Any) -> dict[str, Any]:
    merged: dict[str, Any] = {"branch": "trunk", "has_requirements": True, "relman_install": "x"}
    loaded: dict[str, Any] = yaml.safe_load(gitlab_pipeline("shop", jobs, **merged | options))
    return loaded


def _run_steps(job: dict[str, Any]) -> list[dict[str, Any]]:
    return [step for step in job["steps"] if "run" in step]


# ------------------------------------------------------------------------ what runs


def test_the_pipelines_that_start_on_a_commit_run_once_per_service() -> None:
    jobs = select_jobs([*USES, TRAIN])  # assigned twice, by two rules: one job

    assert [(job.pipeline, job.service, job.commits) for job in jobs] == [
        ("train", "iris", True),
        ("train", "shop", True),
        ("ship", "iris", False),
    ]
    assert jobs[0].command == ["relman", "--batch", "pipeline", "run", "train", "--service", "iris"]
    assert jobs[0].report_stem == "reports/relman/train-iris"


def test_without_a_pipeline_on_commit_the_builtin_release_runs() -> None:
    unassigned = ("retrain", None, ["commit"], ["repro", "commit"])
    for uses in ([], [NIGHTLY], [unassigned]):
        (job,) = select_jobs(uses)
        assert (job.pipeline, job.service, job.command) == (
            "release",
            None,
            ["relman", "--batch", "release"],
        )
        assert job.report_stem == "reports/relman/release"


def test_pipelines_named_run_whatever_starts_them() -> None:
    unassigned = ("retrain", None, ["data"], ["repro", "commit"])
    jobs = select_jobs([*USES, unassigned], ["nightly", "release", "nightly", "retrain"])

    assert [(job.pipeline, job.service) for job in jobs] == [
        ("nightly", "iris"),
        ("release", None),
        ("retrain", None),
    ]
    assert jobs[2].command == ["relman", "--batch", "pipeline", "run", "retrain"]
    assert jobs[2].commits and jobs[2].report_stem == "reports/relman/retrain"
    assert select_jobs([("release", None, [], ["test"])], ["release"])[0].command[2:] == [
        "pipeline",
        "run",
        "release",
    ]


def test_an_unknown_pipeline_is_a_usage_error() -> None:
    with pytest.raises(UsageError) as info:
        select_jobs(USES, ["nighty"])

    assert info.value.exit_code == 2
    assert str(info.value) == (
        "relman ci: no pipeline 'nighty' in relman.toml (pipelines: train, ship, nightly); "
        "name one of them, or 'release' for the built-in one, with --pipeline"
    )


# -------------------------------------------------------------------------- GitHub


def test_github_triggers_and_the_checkout_relman_needs() -> None:
    workflow = _github(select_jobs(USES))

    # "on" stays a string key for a YAML 1.1 reader (PyYAML, GitHub), not the boolean True.
    assert all(isinstance(key, str) for key in workflow)
    assert workflow["on"] == {
        "push": {"branches": ["trunk"]},
        "pull_request": {"branches": ["trunk"]},
        "workflow_dispatch": None,
    }
    assert workflow["env"] == {"RELMAN_INSTALL": "x"}
    assert workflow["permissions"] == {"contents": "read"}
    assert list(workflow["jobs"]) == ["train", "ship"]
    for job in workflow["jobs"].values():
        checkout, python, cache = job["steps"][:3]
        assert checkout["uses"] == "actions/checkout@v4"
        assert checkout["with"] == {"fetch-depth": 0}
        assert python["with"]["python-version"] == "3.11"
        assert python["with"]["cache"] == "pip"
        assert cache["uses"] == "actions/cache@v4"
        assert cache["with"]["path"] == ".dvc/cache"
        assert "hashFiles('dvc.lock')" in cache["with"]["key"]


def test_github_runs_relman_in_batch_per_service_and_uploads_the_junit_always() -> None:
    workflow = _github(select_jobs(USES))
    train = workflow["jobs"]["train"]
    runs = [step["run"] for step in _run_steps(train)]

    relman = [step for step in train["steps"] if "--junit" in step.get("run", "")]
    assert [step["run"] for step in relman] == [
        "relman --batch pipeline run train --service iris --junit "
        'reports/relman/train-iris.xml --summary "$GITHUB_STEP_SUMMARY"',
        "relman --batch pipeline run train --service shop --junit "
        'reports/relman/train-shop.xml --summary "$GITHUB_STEP_SUMMARY"',
    ]
    # The second service runs even when the first was blocked.
    assert "if" not in relman[0] and relman[1]["if"] == "${{ !cancelled() }}"
    assert runs.index(next(r for r in runs if r.startswith("dvc pull"))) < runs.index(
        relman[0]["run"]
    )
    stop, upload = train["steps"][-2:]
    # A deploy step serves on the runner: stopped whatever happened.
    assert stop == {
        "name": "Stop what relman served",
        "run": "relman --batch down",
        "if": "always()",
    }
    assert upload["uses"] == "actions/upload-artifact@v4"
    assert upload["if"] == "always()"
    assert upload["with"]["path"] == "reports/relman/"
    assert upload["with"]["name"] == "relman-train"


def test_github_gives_a_git_identity_and_push_rights_only_to_pipelines_that_commit() -> None:
    jobs = _github(select_jobs(USES))["jobs"]
    train, ship = jobs["train"], jobs["ship"]

    identity = [s for s in train["steps"] if "git config user.email" in s.get("run", "")]
    assert len(identity) == 1
    assert train["permissions"] == {"contents": "write"}
    pushes = [step for step in train["steps"] if step.get("name") == "Push the pipeline's commits"]
    assert pushes == [
        {"name": "Push the pipeline's commits", "run": 'git push origin "HEAD:${GITHUB_REF_NAME}"'}
    ]
    assert train["if"] == "github.event_name != 'pull_request'"
    assert not [s for s in ship["steps"] if "git config" in s.get("run", "")]
    assert "permissions" not in ship and "if" not in ship


def test_github_builtin_release_without_requirements() -> None:
    workflow = _github(select_jobs([]), has_requirements=False, python="3.12")
    (job,) = workflow["jobs"].values()
    install = next(s for s in job["steps"] if s.get("name") == "Install the project and relman")

    assert job["name"] == "relman release"
    assert workflow["jobs"]["release"]["steps"][1]["with"] == {"python-version": "3.12"}
    assert "requirements.txt" not in install["run"]
    assert 'eval "$RELMAN_INSTALL"' in install["run"]
    assert any(
        s.get("run", "").startswith(
            'relman --batch release --junit reports/relman/release.xml --summary "$GITHUB_'
        )
        for s in job["steps"]
    )


def test_the_project_interpreter_gets_its_own_venv() -> None:
    jobs = select_jobs([])
    workflow = _github(jobs, project_python=".venv/bin/python")
    steps = workflow["jobs"]["release"]["steps"]
    install = next(s for s in steps if s.get("name") == "Install the project and relman")

    assert install["run"].splitlines() == [
        "python -m pip install --upgrade pip",
        "python -m venv .venv",
        ".venv/bin/python -m pip install -r requirements.txt",
        'eval "$RELMAN_INSTALL"',
    ]
    assert any("/.venv/" in s.get("run", "") for s in steps)
    pipeline = _gitlab(jobs, project_python="/opt/py/bin/python")  # not reproducible: left
    assert not any("venv" in line for line in pipeline[".relman"]["before_script"])


# -------------------------------------------------------------------------- GitLab


def test_gitlab_rules_depth_cache_and_junit_report() -> None:
    pipeline = _gitlab(select_jobs(USES))

    assert pipeline["workflow"]["rules"] == [
        {"if": '$CI_PIPELINE_SOURCE == "merge_request_event"'},
        {"if": '$CI_COMMIT_BRANCH == "trunk"'},
        {"if": '$CI_PIPELINE_SOURCE == "web"'},
    ]
    assert pipeline["variables"]["GIT_DEPTH"] == "0"
    assert pipeline["variables"]["RELMAN_INSTALL"] == "x"
    template = pipeline[".relman"]
    assert template["image"] == "python:3.11"
    dvc_cache, pip_cache = template["cache"]
    assert dvc_cache == {"key": {"files": ["dvc.lock"], "prefix": "dvc"}, "paths": [".dvc/cache/"]}
    assert pip_cache["key"] == {"files": ["requirements.txt"], "prefix": "pip"}
    assert template["before_script"][-1].startswith("dvc pull || echo ")
    assert template["after_script"] == ["relman --batch down || true"]
    assert [name for name in pipeline if not name.startswith(".")][3:] == [
        "relman-train",
        "relman-ship",
    ]
    for name in ("relman-train", "relman-ship"):
        job = pipeline[name]
        assert job["extends"] == ".relman"
        assert job["artifacts"] == {
            "when": "always",
            "paths": ["reports/relman/"],
            "reports": {"junit": "reports/relman/*.xml"},
        }
    assert pipeline["relman-ship"]["script"] == [
        "relman --batch pipeline run ship --service iris --junit reports/relman/ship-iris.xml "
        "--summary reports/relman/ship-iris.md"
    ]


def test_gitlab_pipeline_that_commits_runs_every_service_and_pushes_on_the_branch() -> None:
    train = _gitlab(select_jobs(USES))["relman-train"]
    script = train["script"]

    assert script[0] == 'git checkout -B "$CI_COMMIT_BRANCH"'
    assert any(line.startswith("git config user.email") for line in script)
    assert script[-4:] == [
        "relman --batch pipeline run train --service iris --junit reports/relman/train-iris.xml "
        "--summary reports/relman/train-iris.md || failed=1",
        "relman --batch pipeline run train --service shop --junit reports/relman/train-shop.xml "
        "--summary reports/relman/train-shop.md || failed=1",
        'test -z "${failed:-}"',
        # the retrained model's commit goes back to the branch, starting no second pipeline
        'git push -o ci.skip origin "HEAD:$CI_COMMIT_BRANCH"',
    ]
    assert train["rules"][0] == {
        "if": '$CI_PIPELINE_SOURCE == "merge_request_event"',
        "when": "never",
    }
    assert train["resource_group"] == "relman-train"


def test_the_same_input_makes_the_same_text() -> None:
    options: dict[str, Any] = {"branch": "main", "has_requirements": True, "relman_install": "i"}
    for generate in (github_workflow, gitlab_pipeline):
        first = generate("shop", select_jobs(USES), **options)
        assert generate("shop", select_jobs(list(USES)), **options) == first
        assert "&id" not in first and "*id" not in first  # steps written out, no YAML anchors


# ---------------------------------------------------------------- schemas and shell


def _check_jsonschema() -> str:
    found = shutil.which("check-jsonschema") or str(BIN / "check-jsonschema")
    if not Path(found).is_file():
        pytest.skip("check-jsonschema missing: pip install 'check-jsonschema>=0.39' (dev extras)")
    return found


@pytest.mark.parametrize(
    ("kind", "uses", "requirements"),
    [
        ("github", USES, True),
        ("github", [], False),
        ("gitlab", USES, True),
        ("gitlab", [], False),
    ],
)
def test_the_platforms_own_schemas_accept_it(
    tmp_path: Path, kind: str, uses: list[Any], requirements: bool
) -> None:
    checker = _check_jsonschema()
    generate = github_workflow if kind == "github" else gitlab_pipeline
    text = generate(
        "shop",
        select_jobs(uses),
        branch="main",
        has_requirements=requirements,
        relman_install='pip install "relman @ git+https://example.invalid/relman@v1"',
        project_python=".venv/bin/python",
    )
    path = tmp_path / f"{kind}.yml"
    path.write_text(text)
    schema = "vendor.github-workflows" if kind == "github" else "vendor.gitlab-ci"
    done = subprocess.run(
        [checker, "--builtin-schema", schema, str(path)],
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )
    assert done.returncode == 0, done.stdout + done.stderr


def test_every_shell_line_is_valid_bash() -> None:
    texts = [
        yaml.safe_load(
            generate(
                "shop",
                select_jobs(USES),
                branch="main",
                has_requirements=requirements,
                relman_install="pip install x",
                project_python=".venv/bin/python",
            )
        )
        for generate in (github_workflow, gitlab_pipeline)
        for requirements in (True, False)
    ]
    lines: list[str] = []
    for document in texts:
        for job in document.get("jobs", {}).values():
            lines += [step["run"] for step in _run_steps(job)]
        for job in document.values():
            if isinstance(job, dict):
                for key in ("before_script", "script", "after_script"):
                    lines += job.get(key, [])
    assert len(lines) > 20
    for line in lines:
        done = subprocess.run(["bash", "-n", "-c", line], capture_output=True, text=True)
        assert done.returncode == 0, f"{line!r}: {done.stderr}"


def _git(root: Path, *args: str) -> str:
    done = subprocess.run(["git", "-C", str(root), *args], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_the_jobs_own_files_stay_out_of_git_status(tmp_path: Path) -> None:
    root = tmp_path / "repo"
    root.mkdir()
    _git(root, "init", "-q", "-b", "main")
    lines = prepare(".venv/bin/python", ["/.cache/"])
    subprocess.run(["bash", "-ec", "\n".join(lines)], cwd=root, check=True)
    assert (root / "reports" / "relman").is_dir()  # relman writes its reports only there
    for made in (".relman/ledger.db", "reports/relman/a.xml", ".cache/pip/x", ".venv/bin/python"):
        (root / made).parent.mkdir(parents=True, exist_ok=True)
        (root / made).write_text("x")
    assert _git(root, "status", "--porcelain", "--untracked-files=all") == ""
    (root / "reports" / "other.txt").write_text("x")  # only relman's own folder is excluded
    assert _git(root, "status", "--porcelain") == "?? reports/\n"


def test_a_failed_dvc_pull_warns_and_the_job_goes_on(tmp_path: Path) -> None:
    dvc = BIN / "dvc"
    if not dvc.is_file():
        pytest.skip(f"dvc missing next to {sys.executable}: pip install dvc")
    root = tmp_path / "repo"
    root.mkdir()
    _git(root, "init", "-q", "-b", "main")
    env = {**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ['PATH']}"}

    def run(*args: str) -> None:
        subprocess.run([str(dvc), *args], cwd=root, env=env, check=True, capture_output=True)

    run("init", "-q")
    (root / "data.csv").write_text("a,b\n1,2\n")
    run("add", "-q", "data.csv")
    shutil.rmtree(root / ".dvc" / "cache")  # not in the cache, and no remote to pull from
    (root / "data.csv").unlink()

    done = subprocess.run(
        ["bash", "-ec", dvc_pull("::warning::")], cwd=root, env=env, capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr
    assert "\n::warning::dvc pull failed: no DVC remote, or no credentials" in done.stdout
    assert "data.csv" in done.stderr  # DVC itself names what it could not get


# ------------------------------------------------------------------------- the file

MARKER = "# Written by relman ci github (digest "


def test_written_under_a_marker_with_its_folders(tmp_path: Path) -> None:
    path = write_workflow(tmp_path, "github", "name: relman\n", None, force=False)

    assert path == tmp_path / ".github" / "workflows" / "relman.yml"
    first, rest = path.read_text().split("\n", 1)
    assert first.startswith(MARKER) and first.endswith("relman replaces it only with --force")
    assert rest == "name: relman\n"
    assert [p.name for p in path.parent.iterdir()] == ["relman.yml"]  # no temporary left
    gitlab = write_workflow(tmp_path, "gitlab", "stages: []\n", None, force=False)
    assert gitlab == tmp_path / ".gitlab-ci.yml"


def test_rerun_replaces_its_own_file(tmp_path: Path) -> None:
    write_workflow(tmp_path, "github", "name: old\n", None, force=False)
    path = write_workflow(tmp_path, "github", "name: new\n", None, force=False)

    assert path.read_text().endswith("\nname: new\n")


def test_a_foreign_file_is_kept_unless_forced(tmp_path: Path) -> None:
    path = tmp_path / ".gitlab-ci.yml"
    path.write_text("test:\n  script: [make]\n")

    with pytest.raises(UsageError) as info:
        write_workflow(tmp_path, "gitlab", "stages: []\n", None, force=False)
    assert info.value.exit_code == 2
    assert str(info.value) == (
        "relman ci: .gitlab-ci.yml exists and relman did not write it; merge by hand, write "
        "elsewhere with --out PATH, or replace it with --force"
    )
    assert path.read_text() == "test:\n  script: [make]\n"

    write_workflow(tmp_path, "gitlab", "stages: []\n", None, force=True)
    assert path.read_text().split("\n", 1)[1] == "stages: []\n"


def test_an_edited_file_is_kept_unless_forced(tmp_path: Path) -> None:
    path = write_workflow(tmp_path, "github", "name: relman\n", None, force=False)
    path.write_text(path.read_text() + "# our own step\n")

    with pytest.raises(UsageError, match="was edited since relman wrote it"):
        write_workflow(tmp_path, "github", "name: relman\n", None, force=False)
    assert path.read_text().endswith("# our own step\n")
    write_workflow(tmp_path, "github", "name: relman\n", None, force=True)
    assert path.read_text().endswith("\nname: relman\n")


def test_out_is_taken_from_the_current_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    path = write_workflow(tmp_path / "project", "github", "x: 1\n", Path("ci/r.yml"), force=False)

    assert path == elsewhere / "ci" / "r.yml"
    assert path.read_text().startswith(MARKER)
    with pytest.raises(UsageError, match="is a folder; name a file with --out"):
        write_workflow(tmp_path, "github", "x: 1\n", elsewhere, force=False)


def test_write_ci_reports_what_it_wrote(tmp_path: Path) -> None:
    (tmp_path / "requirements.txt").write_text("scikit-learn\n")
    report = write_ci(tmp_path, "shop", "github", USES, branch="trunk")

    assert report["ok"] is True and report["replaced"] is False
    assert (report["kind"], report["shown"], report["branch"]) == (
        "github",
        ".github/workflows/relman.yml",
        "trunk",
    )
    assert report["jobs"][0] == {
        "pipeline": "train",
        "service": "iris",
        "command": "relman --batch pipeline run train --service iris",
        "commits": True,
    }
    workflow = yaml.safe_load(Path(report["path"]).read_text())
    assert workflow["on"]["push"] == {"branches": ["trunk"]}
    steps = workflow["jobs"]["train"]["steps"]
    assert "pip install -r requirements.txt" in steps[3]["run"]
    assert write_ci(tmp_path, "shop", "github", USES, branch="trunk")["replaced"] is True
    with pytest.raises(UsageError, match="unknown CI 'jenkins'; name github or gitlab"):
        write_ci(tmp_path, "shop", "jenkins", USES)


# ---------------------------------------------------------------- branch and install


def test_the_default_branch_from_git(tmp_path: Path) -> None:
    upstream = tmp_path / "upstream"
    upstream.mkdir()
    _git(upstream, "init", "-q", "-b", "trunk")
    _git(upstream, "commit", "-q", "--allow-empty", "-m", "first")
    clone = tmp_path / "clone"
    _git(tmp_path, "clone", "-q", str(upstream), str(clone))
    _git(clone, "checkout", "-q", "-b", "feature")

    assert default_branch(clone) == "trunk"  # the remote's, not the branch checked out
    _git(clone, "remote", "set-head", "origin", "--delete")
    assert default_branch(clone) == "feature"
    _git(clone, "checkout", "-q", "--detach")
    _git(clone, "config", "init.defaultBranch", "develop")
    assert default_branch(clone) == "develop"
    (tmp_path / "plain").mkdir()
    assert default_branch(tmp_path / "plain") == "main"


class _Dist:
    version = "0.4.2"

    def __init__(self, direct_url: dict[str, Any] | None) -> None:
        self.direct_url = direct_url

    def read_text(self, name: str) -> str | None:
        assert name == "direct_url.json"
        return None if self.direct_url is None else json.dumps(self.direct_url)


@pytest.mark.parametrize(
    ("direct_url", "command"),
    [
        (
            {
                "url": "https://ci:s3cret@github.com/acme/relman.git",
                "vcs_info": {"vcs": "git", "commit_id": "0f33a0e", "requested_revision": "v1"},
            },
            'pip install "relman @ git+https://github.com/acme/relman.git@0f33a0e"',
        ),
        (
            {"url": "https://pkgs.acme.dev/relman-0.4.2.tar.gz", "archive_info": {}},
            'pip install "relman @ https://pkgs.acme.dev/relman-0.4.2.tar.gz"',
        ),
        ({"url": "file:///home/ada/relman", "dir_info": {"editable": True}}, None),
        (None, None),
    ],
)
def test_relman_is_installed_in_ci_from_where_it_came(
    monkeypatch: pytest.MonkeyPatch, direct_url: dict[str, Any] | None, command: str | None
) -> None:
    monkeypatch.setattr(metadata, "distribution", lambda name: _Dist(direct_url))

    assert relman_install() == (command or 'pip install "relman==0.4.2"')
