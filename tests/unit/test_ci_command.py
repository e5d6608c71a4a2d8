"""`relman ci github|gitlab [--out PATH]` through the command line: what it writes and says,
and the one line and exit code when it must not write (docs/ci.md, docs/exit-codes.md)."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest
import yaml

from tui.cli import run

CONFIG = """\
[project]
name = "shop"

[services.shop]
bento = "service:Shop"
model = ["m"]

[environments.dev]
port = 3101
"""


@pytest.fixture
def project(tmp_path: Path) -> Path:
    root = tmp_path / "shop"
    root.mkdir()
    (root / "relman.toml").write_text(CONFIG)
    (root / "requirements.txt").write_text("scikit-learn\n")
    subprocess.run(["git", "init", "-q", "-b", "trunk", str(root)], check=True)
    return root


def test_github_workflow_written_where_github_reads_it(
    project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run(["--project", str(project), "ci", "github"]) == 0

    path = project / ".github" / "workflows" / "relman.yml"
    workflow = yaml.safe_load(path.read_text())
    assert workflow["on"]["push"] == {"branches": ["trunk"]}  # the branch checked out
    (job,) = workflow["jobs"].values()
    relman = [s["run"] for s in job["steps"] if "--junit" in s.get("run", "")]
    assert relman == [
        'relman --batch release --junit reports/relman/release.xml --summary "$GITHUB_STEP_SUMMARY"'
    ]
    assert capsys.readouterr().out.splitlines() == [
        "wrote .github/workflows/relman.yml: on pushes to trunk and pull requests it runs",
        "  relman --batch release",
        "next: review it, then commit .github/workflows/relman.yml",
    ]


def test_gitlab_json_document_with_out_and_branch(
    project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = project / "ci" / "relman.gitlab-ci.yml"
    code = run(
        ["--json", "--project", str(project), "ci", "gitlab", "--out", str(out), "--branch", "main"]
    )

    assert code == 0
    document = json.loads(capsys.readouterr().out)
    assert document == {
        "ok": True,
        "kind": "gitlab",
        "path": str(out),
        "shown": "ci/relman.gitlab-ci.yml",
        "branch": "main",
        "replaced": False,
        "jobs": [
            {
                "pipeline": "release",
                "service": None,
                "command": "relman --batch release",
                "commits": False,
            }
        ],
    }
    pipeline = yaml.safe_load(out.read_text())
    assert pipeline["relman-release"]["artifacts"]["reports"] == {"junit": "reports/relman/*.xml"}
    assert not (project / ".gitlab-ci.yml").exists()


def test_a_foreign_file_is_one_line_exit_2_and_force_replaces_it(
    project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = project / ".gitlab-ci.yml"
    path.write_text("test:\n  script: [make]\n")

    assert run(["--project", str(project), "ci", "gitlab"]) == 2
    assert capsys.readouterr().err == (
        "relman: relman ci: .gitlab-ci.yml exists and relman did not write it; merge by hand, "
        "write elsewhere with --out PATH, or replace it with --force\n"
    )
    assert path.read_text() == "test:\n  script: [make]\n"

    assert run(["--project", str(project), "ci", "gitlab", "--force"]) == 0
    assert capsys.readouterr().out.startswith("replaced .gitlab-ci.yml: on pushes to trunk")
    assert path.read_text().startswith("# Written by relman ci gitlab (digest ")


def test_rerun_replaces_its_own_file(project: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert run(["--project", str(project), "ci", "github", "--branch", "one"]) == 0
    assert run(["--project", str(project), "ci", "github", "--branch", "two"]) == 0

    path = project / ".github" / "workflows" / "relman.yml"
    assert yaml.safe_load(path.read_text())["on"]["push"] == {"branches": ["two"]}
    assert capsys.readouterr().out.count("replaced .github/workflows/relman.yml") == 1


def test_unknown_pipeline_and_platform_are_usage_errors(
    project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run(["--project", str(project), "ci", "github", "--pipeline", "nightly"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("relman: relman ci: no pipeline 'nightly' in relman.toml")
    assert err.count("\n") == 1

    assert run(["--project", str(project), "ci", "jenkins"]) == 2
    assert "invalid choice: 'jenkins'" in capsys.readouterr().err
    assert not (project / ".github").exists()


def test_read_only_refuses_it(project: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert run(["--read-only", "--project", str(project), "ci", "github"]) == 1
    assert "refused in read-only mode" in capsys.readouterr().err
    assert not (project / ".github").exists()


PIPELINES = """
[pipelines.retrain]
steps = ["repro", "commit", "test", "gate", "build"]
on = ["commit", "data"]

[pipelines.nightly]
steps = ["test", "gate"]
on = ["data"]

[[pipelines.assign]]
match = { service = "shop" }
pipelines = ["retrain", "nightly"]
"""


def test_the_assigned_pipelines_that_start_on_a_commit(
    project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (project / "relman.toml").write_text(CONFIG + PIPELINES)

    assert run(["--project", str(project), "ci", "github"]) == 0
    assert capsys.readouterr().out.splitlines()[1:2] == [
        "  relman --batch pipeline run retrain --service shop  (pushes only: it commits)"
    ]
    workflow = yaml.safe_load((project / ".github" / "workflows" / "relman.yml").read_text())
    retrain = workflow["jobs"]["retrain"]
    assert retrain["permissions"] == {"contents": "write"}
    assert any("git config user.email" in step.get("run", "") for step in retrain["steps"])

    assert run(["--project", str(project), "ci", "github", "--pipeline", "nightly"]) == 0
    assert list(
        yaml.safe_load((project / ".github" / "workflows" / "relman.yml").read_text())["jobs"]
    ) == ["nightly"]
