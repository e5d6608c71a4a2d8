"""`relman test` and `relman gate`: run the suites and record them; what would block a
release from an environment. Progress goes to stderr, the answer to stdout: the suites (unless
the progress already showed them on the same screen) and each failing test by name."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from core import api
from tui.output import emit, out, progress_on_stdout, workflow_commands
from tui.output import log as _stderr


def add_parsers(verbs: Any) -> None:
    test = verbs.add_parser(
        "test",
        help="run test suites against the candidate and record the results",
        description="Run the named test suites (default: every suite relman.toml declares) "
        "with pytest in the project's interpreter, with live progress on stderr, and record "
        "the results in the ledger against the candidate release of every service. A dirty "
        "tree still runs, but is not recorded. Exit 1 when a suite failed.",
    )
    test.add_argument("suites", metavar="SUITE", nargs="*", help="suites to run (default: all)")
    test.add_argument("--junit", metavar="PATH", type=Path, help="write a JUnit XML report")
    test.set_defaults(handler=cmd_test, mutates=True)

    gate = verbs.add_parser(
        "gate",
        help="dry run: what would block the candidate (or a release) from an environment",
        description="Everything that would block the candidate of SERVICE (or --release ID) "
        "from ENV, in order: promotion order, data and model, required suites, metric gates, "
        "approvals, the environment's port. Reads only; exit 1 when something blocks.",
    )
    gate.add_argument("service", metavar="SERVICE")
    gate.add_argument("--env", required=True, metavar="ENV", help="the target environment")
    gate.add_argument(
        "--release", metavar="ID", help="a recorded release: id, id prefix or version"
    )
    gate.set_defaults(handler=cmd_gate)


def cmd_test(args: argparse.Namespace) -> int:
    project = api.load_project(args.project)
    report = api.run_tests(
        project,
        list(args.suites),
        junit=args.junit,
        on_event=api.progress_lines(_stderr),
        log=_stderr,
        read_only=args.read_only,
        cancel=getattr(args, "cancel", None),  # set by SIGHUP and SIGTERM (tui/hangup.py)
    )
    workflow_commands(api.github_annotations(report))
    if args.json:
        emit(report)
    else:
        if not progress_on_stdout():
            for step in report["steps"]:
                out(f"{step['status']:<7} {step['name']}  {step['detail']}")
        for line in api.failed_tests(report):
            out(line)
        if report["recorded"]:
            out(f"recorded for release {report['release']}")
        else:
            out(f"not recorded: {report['reason']}")
        if report.get("junit"):
            out(f"JUnit report: {report['junit']}")
    return 0 if report["ok"] else 1


def cmd_gate(args: argparse.Namespace) -> int:
    project = api.load_project(args.project)
    report = api.gate(project, args.service, args.env, release=args.release)
    if args.json:
        emit(report)
    else:
        subject = "release" if args.release else "candidate"
        out(f"{report['service']} -> {report['env']}: {subject} {report['release']}")
        for step in report["steps"]:
            out(f"{step['status']:<7} {step['name']}  {step['detail']}")
        out("nothing blocks" if report["ok"] else "blocked")
    return 0 if report["ok"] else 1
