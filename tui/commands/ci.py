"""`relman ci github|gitlab [--out PATH]`: write the CI workflow that runs relman in --batch on
each commit to the default branch and on pull requests (docs/ci.md)."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from core import api
from tui.output import emit, out


def add_parsers(verbs: Any) -> None:
    ci = verbs.add_parser(
        "ci",
        help="write a CI workflow (GitHub Actions, GitLab CI) that runs relman in --batch",
        description="Write a CI workflow that, on each push to the default branch, each pull "
        "request into it and on demand, checks out the history, restores the DVC cache keyed "
        "on dvc.lock, installs requirements.txt and relman, pulls the DVC data and runs, with "
        "--batch, JUnit and a Markdown summary, the pipelines assigned to run on a commit "
        '(on = ["commit"]), else the built-in release. A file relman did not write, or one '
        "edited since, is replaced only with --force.",
    )
    ci.add_argument(
        "platform",
        choices=["github", "gitlab"],
        metavar="github|gitlab",
        help="GitHub Actions (.github/workflows/relman.yml) or GitLab CI (.gitlab-ci.yml)",
    )
    ci.add_argument(
        "--out",
        metavar="PATH",
        type=Path,
        help="where to write it (default: the platform's place in the project)",
    )
    ci.add_argument(
        "--pipeline",
        metavar="NAME",
        action="append",
        default=[],
        help="run this pipeline (repeatable; 'release' is the built-in one) instead of those "
        "that start on a commit",
    )
    ci.add_argument(
        "--branch",
        metavar="NAME",
        help="the branch whose pushes run it (default: the remote's default branch, else "
        "the one checked out)",
    )
    ci.add_argument(
        "--force", action="store_true", help="replace a file relman did not write, or edits"
    )
    ci.set_defaults(handler=cmd_ci, mutates=True)


def cmd_ci(args: argparse.Namespace) -> int:
    project = api.load_project(args.project)
    report = api.ci_workflow(
        project,
        args.platform,
        out=args.out,
        pipelines=args.pipeline,
        branch=args.branch,
        force=args.force,
    )
    if args.json:
        emit(report)
        return 0
    verb = "replaced" if report["replaced"] else "wrote"
    out(f"{verb} {report['shown']}: on pushes to {report['branch']} and pull requests it runs")
    for job in report["jobs"]:
        # A pipeline that commits pushes to the branch: not from a pull request.
        out(f"  {job['command']}" + ("  (pushes only: it commits)" if job["commits"] else ""))
    out(f"next: review it, then commit {report['shown']}")
    return 0
