"""`relman pipeline list|run|runs|resume|explain` and `relman watch`: pipelines defined in
relman.toml, their runs as recorded state machines, and the watcher that starts them
(docs/pipelines.md)."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from core import api
from tui.output import emit, out, workflow_commands
from tui.output import log as _stderr

MARKS = {
    "passed": "passed ",
    "failed": "failed ",
    "running": "running",
    "waiting": "waiting",
    "pending": "pending",
    "skipped": "skipped",
}


def add_parsers(verbs: Any) -> None:
    pipeline = verbs.add_parser(
        "pipeline",
        help="pipelines from relman.toml: list, run, runs, resume, explain",
        description="Pipelines as data ([pipelines.NAME] in relman.toml): run one, follow "
        "its runs, resume one that waits for an approval or was interrupted.",
    )
    actions = pipeline.add_subparsers(dest="action", metavar="ACTION", required=True)
    listing = actions.add_parser("list", help="every pipeline, its steps and services")
    listing.set_defaults(handler=cmd_list, mutates=False)
    run = actions.add_parser("run", help="start a pipeline and drive it")
    run.add_argument("name", metavar="NAME")
    run.add_argument("--service", metavar="SERVICE")
    run.add_argument("--junit", type=Path, metavar="PATH", help="write JUnit XML of the steps")
    run.add_argument("--summary", type=Path, metavar="PATH", help="write a Markdown summary")
    run.set_defaults(handler=cmd_run, mutates=True)
    runs = actions.add_parser("runs", help="the newest runs, their steps and triggers")
    runs.add_argument("--pipeline", metavar="NAME")
    runs.add_argument("--service", metavar="SERVICE")
    runs.add_argument("--limit", type=int, default=10, metavar="N")
    runs.set_defaults(handler=cmd_runs, mutates=False)
    resume = actions.add_parser(
        "resume", help="go on with a run that waits for an approval or was interrupted"
    )
    resume.add_argument("run", type=int, metavar="RUN")
    resume.set_defaults(handler=cmd_resume, mutates=True)
    cancel = actions.add_parser("cancel", help="end a run that waits or was interrupted, for good")
    cancel.add_argument("run", type=int, metavar="RUN")
    cancel.set_defaults(handler=cmd_cancel, mutates=True)
    explain = actions.add_parser(
        "explain", help="each step's timeout, retries and strategy, and who set it"
    )
    explain.add_argument("name", metavar="NAME")
    explain.add_argument("--service", metavar="SERVICE")
    explain.set_defaults(handler=cmd_explain, mutates=False)

    watch = verbs.add_parser(
        "watch",
        help="start the assigned pipelines on new commits and new data",
        description="Poll the watched branch and the DVC-tracked data; start the pipelines "
        "whose on = [...] names the change; carry on runs that wait or were interrupted. "
        "One per project; `relman down` stops it.",
    )
    watch.add_argument("--once", action="store_true", help="one round, then exit")
    watch.add_argument("--detach", action="store_true", help="run in the background")
    watch.set_defaults(handler=cmd_watch, mutates=True)


def cmd_list(args: argparse.Namespace) -> int:
    project = api.load_project(args.project)
    document = api.pipeline_list(project)
    if args.json:
        emit(document)
        return 0
    for row in document["pipelines"]:
        built = " (built-in)" if row["built_in"] else ""
        on = f"  on {', '.join(row['on'])}" if row["on"] else ""
        services = ", ".join(row["services"]) or "no service"
        out(f"{row['name']}{built}{on}  ->  {services}")
        out(f"  {' > '.join(row['steps'])}")
    return 0


def cmd_run(args: argparse.Namespace) -> int:
    project = api.load_project(args.project)
    document = api.pipeline_run(
        project,
        args.name,
        args.service,
        read_only=args.read_only,
        log=_stderr,
        cancel=getattr(args, "cancel", None),
        junit=args.junit,
        summary=args.summary,
    )
    return _ended(args, document)


def cmd_resume(args: argparse.Namespace) -> int:
    project = api.load_project(args.project)
    document = api.pipeline_resume(
        project,
        args.run,
        read_only=args.read_only,
        log=_stderr,
        cancel=getattr(args, "cancel", None),
    )
    return _ended(args, document)


def _ended(args: argparse.Namespace, document: dict[str, Any]) -> int:
    workflow_commands(api.github_annotations(document))
    if args.json:
        emit(document)
    else:
        for line in describe(document):
            out(line)
        for line in api.failed_tests(document):
            out(line)
    if document.get("error"):
        _stderr(document["error"])
    return int(document.get("exit_code") or 0)


def cmd_cancel(args: argparse.Namespace) -> int:
    project = api.load_project(args.project)
    document = api.pipeline_cancel(project, args.run, read_only=args.read_only)
    if args.json:
        emit(document)
    else:
        out(f"run #{document['run']} of {document['pipeline']} for {document['service']}: "
            f"cancelled ({document['detail']})")  # fmt: skip
    return 0


def cmd_runs(args: argparse.Namespace) -> int:
    project = api.load_project(args.project)
    document = api.pipeline_runs(
        project, pipeline=args.pipeline, service=args.service, limit=args.limit
    )
    if args.json:
        emit(document)
        return 0
    watcher = document["watcher"]
    if watcher["running"]:
        out(f"watcher running (pid {watcher['pid']}) on {watcher['branch']}")
    else:
        out("watcher not running (relman watch --detach starts it)")
    if not document["runs"]:
        out("no pipeline runs yet (relman pipeline run NAME starts one)")
    for run in document["runs"]:
        out("")
        for line in describe(run):
            out(line)
    return 0


def describe(run: dict[str, Any]) -> list[str]:
    """A run as a person reads it: its header, the trigger, one line per step."""
    version = run.get("version") or (run.get("release") or "")[:12]
    what = f" {version}" if version else ""
    lines = [
        f"run #{run['run']}  {run['pipeline']} for {run['service']}{what}: {run['status']}",
        f"  {run['trigger']}: {run['reason']}",
    ]
    for step in run["steps"]:
        tries = f" x{step['attempts']}" if step["attempts"] > 1 else ""
        seconds = f"{step['seconds']:6.1f}s" if step["status"] not in ("pending",) else "       "
        detail = f"  {step['detail']}" if step["detail"] else ""
        lines.append(
            f"  {MARKS.get(step['status'], step['status'])} {seconds} {step['name']}{tries}{detail}"
        )
    if run.get("waiting_for") and run["waiting_for"].get("command"):
        lines.append(
            f"  next: someone else runs {run['waiting_for']['command']}; then relman pipeline "
            f"resume {run['run']} (or a running relman watch goes on by itself)"
        )
    return lines


def cmd_explain(args: argparse.Namespace) -> int:
    project = api.load_project(args.project)
    document = api.pipeline_explain(project, args.name, args.service)
    if args.json:
        emit(document)
        return 0
    out(f"pipeline {document['pipeline']} for {document['service']}")
    for step in document["steps"]:
        values = [f"timeout {step['timeout']}", f"retries {step['retries']}"]
        if step["kind"] == "deploy":
            values.append(f"strategy {step['strategy']}")
        if "duration" in step:
            values.append(f"duration {step['duration']}")
        out(f"  {step['name']}: {', '.join(values)}")
        for key, source in step["sources"].items():
            out(f"      {key:<9} {source}")
    return 0


def cmd_watch(args: argparse.Namespace) -> int:
    project = api.load_project(args.project)
    if args.detach:
        document = api.watch_detached(project, read_only=args.read_only)
        if args.json:
            emit(document)
        else:
            out(f"watcher started (pid {document['pid']}); its log: {document['log']}")
        return 0
    document = api.watch(
        project,
        once=args.once,
        read_only=args.read_only,
        log=_stderr,
        stop=getattr(args, "cancel", None),
    )
    if args.json:
        emit(document)
    failed = [run for run in document["runs"] if run.get("exit_code") not in (0, None)]
    return 1 if args.once and failed else 0
