"""The CI definitions `relman ci` writes: a GitHub Actions workflow and a GitLab CI pipeline
that, on each push to the default branch and each pull (merge) request, check out the history,
restore the DVC cache keyed on dvc.lock, install the project and relman, pull the DVC data and
run relman in --batch with JUnit and a Markdown summary (docs/ci.md).

Plain data in, YAML text out, the same text for the same input; core/ci/files.py writes it.
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

from core.ci.render import REPORTS, block, dump, dvc_pull, install_lines, prepare
from core.errors import UsageError

Kind = Literal["github", "gitlab"]

# The built-in pipeline, run when the project assigns none that starts on a commit.
BUILTIN = "release"
# (pipeline, service, its `on` triggers, its steps' kinds): one per service the pipeline is
# assigned to; a pipeline assigned to none has one with service None (run only when named).
PipelineUse = tuple[str, str | None, Sequence[str], Sequence[str]]

# What a deploy step started on the runner (served environments, the collector) ends with
# the job, whatever happened: on a self-hosted runner it would otherwise hold its ports.
_STOP = {"name": "Stop what relman served", "run": "relman --batch down"}
_GITHUB_BOT = ("github-actions[bot]", "41898282+github-actions[bot]@users.noreply.github.com")


@dataclass(frozen=True)
class CiJob:
    """One run of relman in CI: a pipeline for one service (None: the pipeline's own choice)."""

    pipeline: str
    service: str | None
    # relman's argv, without the report options each platform adds (--junit, --summary).
    command: list[str]
    # The pipeline has a "commit" step: it needs a git identity and leave to push.
    commits: bool = False

    @property
    def report_stem(self) -> str:
        """The reports' path without suffix: ``reports/relman/train-iris``."""
        name = self.pipeline if self.service is None else f"{self.pipeline}-{self.service}"
        return f"{REPORTS}/{name}"


def _step_name(step: str) -> str:
    return step.split(":", 1)[0].strip()


def _release_job() -> CiJob:
    return CiJob(BUILTIN, None, ["relman", "--batch", "release"])


def select_jobs(uses: Sequence[PipelineUse], chosen: Sequence[str] = ()) -> list[CiJob]:
    """The jobs to run on a new commit: the pipelines in ``chosen`` (``release`` is the
    built-in one unless relman.toml defines its own), else those assigned to a service whose
    ``on`` holds "commit", else the built-in ``release``; one job per assigned service."""
    configured = list(dict.fromkeys(use[0] for use in uses))
    if chosen:
        unknown = [name for name in chosen if name not in configured and name != BUILTIN]
        if unknown:
            known = ", ".join(configured) or "none"
            raise UsageError(
                f"relman ci: no pipeline {unknown[0]!r} in relman.toml (pipelines: {known}); "
                f"name one of them, or {BUILTIN!r} for the built-in one, with --pipeline"
            )
        wanted = [(name, list(uses)) for name in dict.fromkeys(chosen)]
    else:
        # As `relman watch` does: a pipeline starts on a commit for the services it serves.
        on_commit = [use for use in uses if "commit" in use[2] and use[1] is not None]
        wanted = [(name, on_commit) for name in dict.fromkeys(use[0] for use in on_commit)]
    jobs: list[CiJob] = []
    for name, candidates in wanted:
        if name not in configured:
            jobs.append(_release_job())
            continue
        for pipeline, service, _on, steps in candidates:
            if pipeline != name:
                continue
            command = ["relman", "--batch", "pipeline", "run", name]
            if service is not None:
                command += ["--service", service]
            commits = any(_step_name(step) == "commit" for step in steps)
            job = CiJob(pipeline, service, command, commits)
            if job not in jobs:
                jobs.append(job)
    return jobs or [_release_job()]


def _by_pipeline(jobs: Sequence[CiJob]) -> dict[str, list[CiJob]]:
    grouped: dict[str, list[CiJob]] = {}
    for job in jobs:
        grouped.setdefault(job.pipeline, []).append(job)
    return grouped


def _job_id(name: str, taken: set[str]) -> str:
    """A job id both platforms accept: letters, digits, ``_`` and ``-``, unique."""
    base = re.sub(r"[^A-Za-z0-9_-]+", "-", name).strip("-") or "relman"
    if not re.match(r"[A-Za-z_]", base):
        base = f"_{base}"
    found, n = base, 2
    while found in taken:
        found, n = f"{base}-{n}", n + 1
    taken.add(found)
    return found


def _what(group: Sequence[CiJob]) -> str:
    name = group[0].pipeline
    return f"relman {name}" if group[0].command[2:3] == [BUILTIN] else f"relman pipeline {name}"


def _runs(jobs: Sequence[CiJob]) -> str:
    names = list(dict.fromkeys(_what([job]) for job in jobs))
    return ", ".join(names)


def _header(platform: str, project_name: str, branch: str, jobs: Sequence[CiJob]) -> list[str]:
    """The paragraphs of the comment on top: what runs when, and what to adapt."""
    request = "merge request" if platform == "GitLab CI" else "pull request"
    return [
        f"relman in {platform} for {project_name}: on each push to {branch}, each {request} "
        f"into it and on demand, runs {_runs(jobs)} with `relman --batch`; the JUnit reports "
        "and the Markdown summary stay with the run.",
        "RELMAN_INSTALL is the command that installs relman in the job: pin it to the source "
        "your team installs relman from (a git URL at a tag, a wheel in your package index).",
        "A DVC remote's credentials come from CI secrets, as the environment variables DVC "
        "reads (docs/ci.md in relman's repository); without them `dvc pull` warns and the "
        "jobs go on with the DVC cache.",
    ]


# -------------------------------------------------------------------------------- GitHub


def github_workflow(
    project_name: str,
    jobs: Sequence[CiJob],
    *,
    branch: str,
    python: str = "3.11",
    has_requirements: bool,
    relman_install: str,
    project_python: str | None = None,
) -> str:
    """The GitHub Actions workflow (``.github/workflows/relman.yml``) running ``jobs``: one
    job per pipeline, a step per service, each report uploaded even when a step fails."""
    setup: dict[str, Any] = {"python-version": python}
    if has_requirements:
        setup.update({"cache": "pip", "cache-dependency-path": "requirements.txt"})
    common: list[dict[str, Any]] = [
        {
            "name": "Check out, with the history and tags relman reads",
            "uses": "actions/checkout@v4",
            "with": {"fetch-depth": 0},
        },
        {"name": f"Set up Python {python}", "uses": "actions/setup-python@v5", "with": setup},
        {
            "name": "Restore the DVC cache",
            "uses": "actions/cache@v4",
            "with": {
                "path": ".dvc/cache",
                "key": "dvc-${{ runner.os }}-${{ hashFiles('dvc.lock') }}",
                "restore-keys": "dvc-${{ runner.os }}-",
            },
        },
        {
            "name": "Install the project and relman",
            "run": block(install_lines(has_requirements, project_python)),
        },
        {
            "name": "Make relman's report folder; keep the job's files out of git status",
            "run": block(prepare(project_python)),
        },
    ]
    pull = {
        "name": "Pull the DVC-tracked data",
        "run": dvc_pull("::warning::"),
    }
    taken: set[str] = set()
    gh_jobs: dict[str, Any] = {}
    for name, group in _by_pipeline(jobs).items():
        commits = any(job.commits for job in group)
        job: dict[str, Any] = {"name": _what(group), "runs-on": "ubuntu-latest"}
        if commits:
            # It pushes to the branch: not from a pull request's merge commit.
            job["if"] = "github.event_name != 'pull_request'"
            job["permissions"] = {"contents": "write"}
        steps: list[dict[str, Any]] = list(common)
        if commits:
            user, email = _GITHUB_BOT
            steps.append(
                {
                    "name": "Git identity for the pipeline's commits",
                    "run": block(
                        [f'git config user.name "{user}"', f'git config user.email "{email}"']
                    ),
                }
            )
        steps.append(pull)
        for index, one in enumerate(group):
            step: dict[str, Any] = {
                "name": _what([one]) + (f" ({one.service})" if one.service else "")
            }
            if index:
                step["if"] = "${{ !cancelled() }}"  # every service runs, even after a block
            line = shlex.join([*one.command, "--junit", f"{one.report_stem}.xml"])
            # The summary shows on the run's page; relman appends it there.
            step["run"] = f'{line} --summary "$GITHUB_STEP_SUMMARY"'
            steps.append(step)
        if commits:
            # The retrained model's commit goes back to the branch (data and model went to
            # the DVC remote already); a push with GITHUB_TOKEN starts no workflow of its own.
            steps.append(
                {
                    "name": "Push the pipeline's commits",
                    "run": 'git push origin "HEAD:${GITHUB_REF_NAME}"',
                }
            )
        job_id = _job_id(name, taken)
        steps.append(_STOP | {"if": "always()"})
        steps.append(
            {
                "name": "Upload relman's JUnit reports",
                "if": "always()",
                "uses": "actions/upload-artifact@v4",
                "with": {
                    "name": f"relman-{job_id}",
                    "path": f"{REPORTS}/",
                    "if-no-files-found": "warn",
                },
            }
        )
        job["steps"] = steps
        gh_jobs[job_id] = job
    document: dict[str, Any] = {
        "name": "relman",
        "on": {
            "push": {"branches": [branch]},
            "pull_request": {"branches": [branch]},
            "workflow_dispatch": None,
        },
        "permissions": {"contents": "read"},
        # One run per branch at a time: pipelines that commit must not race each other.
        "concurrency": {"group": "relman-${{ github.ref }}", "cancel-in-progress": False},
        "env": {"RELMAN_INSTALL": relman_install},
        "jobs": gh_jobs,
    }
    return dump(document, _header("GitHub Actions", project_name, branch, jobs), ["jobs"])


# -------------------------------------------------------------------------------- GitLab


def gitlab_pipeline(
    project_name: str,
    jobs: Sequence[CiJob],
    *,
    branch: str,
    python: str = "3.11",
    has_requirements: bool,
    relman_install: str,
    project_python: str | None = None,
) -> str:
    """The GitLab CI pipeline (``.gitlab-ci.yml``) running ``jobs``: one job per pipeline,
    every service run even after one is blocked, the JUnit reports kept ``when: always``."""
    pip_key: Any = {"files": ["requirements.txt"], "prefix": "pip"} if has_requirements else "pip"
    template = {
        "image": f"python:{python}",
        "cache": [
            {"key": {"files": ["dvc.lock"], "prefix": "dvc"}, "paths": [".dvc/cache/"]},
            {"key": pip_key, "paths": [".cache/pip/"]},
        ],
        "before_script": [
            *install_lines(has_requirements, project_python),
            *prepare(project_python, ["/.cache/"]),
            dvc_pull("WARNING: "),
        ],
        # after_script runs after a failure too; a self-hosted shell runner keeps no server.
        "after_script": [f"{_STOP['run']} || true"],
    }
    document: dict[str, Any] = {
        "workflow": {
            "rules": [
                {"if": '$CI_PIPELINE_SOURCE == "merge_request_event"'},
                {"if": f"$CI_COMMIT_BRANCH == {_gitlab_string(branch)}"},
                {"if": '$CI_PIPELINE_SOURCE == "web"'},
            ]
        },
        "stages": ["relman"],
        "variables": {
            "RELMAN_INSTALL": relman_install,
            "GIT_DEPTH": "0",  # the whole history: lineage and GTO tags
            "PIP_CACHE_DIR": "$CI_PROJECT_DIR/.cache/pip",
        },
        ".relman": template,
    }
    taken = {"workflow", "stages", "variables", "default", "include", "image", "services"}
    taken |= {"cache", "before_script", "after_script", "types", "pages"}
    for name, group in _by_pipeline(jobs).items():
        script: list[str] = []
        commits = any(job.commits for job in group)
        if commits:
            script += [
                # GitLab checks out a detached commit: the pipeline commits onto the branch.
                'git checkout -B "$CI_COMMIT_BRANCH"',
                'git config user.name "${GITLAB_USER_NAME:-relman}"',
                'git config user.email "${GITLAB_USER_EMAIL:-relman@localhost}"',
                # The job token cannot push: a project access token in RELMAN_PUSH_TOKEN can.
                block(
                    [
                        'if [ -n "${RELMAN_PUSH_TOKEN:-}" ]; then',
                        "  git remote set-url --push origin "
                        '"https://oauth2:${RELMAN_PUSH_TOKEN}@${CI_SERVER_HOST}/${CI_PROJECT_PATH}.git"',
                        "fi",
                    ]
                ),
            ]
        for one in group:
            line = shlex.join(
                [
                    *one.command,
                    "--junit",
                    f"{one.report_stem}.xml",
                    "--summary",
                    f"{one.report_stem}.md",
                ]
            )
            # Every service runs; the job fails at the end if one did.
            script.append(line if len(group) == 1 else f"{line} || failed=1")
        if len(group) > 1:
            script.append('test -z "${failed:-}"')
        if commits:
            # The retrained model's commit goes back to the branch; ci.skip: that push starts
            # no second pipeline of its own.
            script.append('git push -o ci.skip origin "HEAD:$CI_COMMIT_BRANCH"')
        job: dict[str, Any] = {"extends": ".relman", "stage": "relman"}
        if commits:
            job["rules"] = [
                {"if": '$CI_PIPELINE_SOURCE == "merge_request_event"', "when": "never"},
                {"when": "on_success"},
            ]
            job["resource_group"] = f"relman-{name}"  # one at a time: they push
        job["script"] = script
        job["artifacts"] = {
            "when": "always",
            "paths": [f"{REPORTS}/"],
            "reports": {"junit": f"{REPORTS}/*.xml"},
        }
        document[_job_id(f"relman-{name}", taken)] = job
    return dump(document, _header("GitLab CI", project_name, branch, jobs), [])


def _gitlab_string(value: str) -> str:
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
