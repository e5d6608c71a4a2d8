"""`relman promote`, `rollback`, `approve` and `down`: progress on stderr, the answer (or
one JSON document) on stdout, the exit code of docs/exit-codes.md."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from core import api
from tui.output import emit, out, progress_on_stdout, workflow_commands
from tui.output import log as _stderr


def add_parsers(verbs: Any) -> None:
    promote = verbs.add_parser(
        "promote",
        help="deploy a release to an environment through its gates",
        description="Deploy the candidate (or --release ID) of SERVICE to ENV: order, gates, "
        "approvals, lock, then start it beside the live release, check it, switch, and stop "
        "the previous one. Exit 1 when blocked, 3 when it failed (the previous release "
        "keeps serving).",
    )
    promote.add_argument("service", metavar="SERVICE")
    promote.add_argument("--to", required=True, metavar="ENV", help="the target environment")
    promote.add_argument("--release", metavar="ID", help="a recorded release id or version")
    promote.add_argument(
        "--force", action="store_true", help="skip the promotion-order check (recorded)"
    )
    _strategy_option(promote)
    promote.add_argument(
        "--detach",
        action="store_true",
        help="drive the rollout from a relman in the background; return once it began "
        "(follow it with `relman rollout status`)",
    )
    promote.set_defaults(handler=cmd_promote, mutates=True)

    rollback = verbs.add_parser(
        "rollback",
        help="back to the last known good release",
        description="Return ENV to the last release that was live there before the current "
        "one (or --to ID). A release never live in ENV needs ENV's approvals (from someone "
        "else, as for promote) or --force with --reason. The other gates are skipped, the "
        "health check is not; the audit log says who and why. Exit 1 when blocked.",
    )
    rollback.add_argument("service", metavar="SERVICE")
    rollback.add_argument("--env", required=True, metavar="ENV")
    rollback.add_argument("--to", metavar="ID", help="the release to return to")
    rollback.add_argument("--reason", default="", help="why, for the audit log")
    rollback.add_argument(
        "--force",
        action="store_true",
        help="go to a release never live in ENV without its approvals (needs --reason; recorded)",
    )
    rollback.set_defaults(handler=cmd_rollback, mutates=True)

    approve = verbs.add_parser(
        "approve",
        help="approve a release for an environment (four-eyes)",
        description="Record your approval of RELEASE (id, id prefix or version) for ENV. "
        "An approval counts only when it comes from someone other than the promoter.",
    )
    approve.add_argument("release", metavar="RELEASE")
    approve.add_argument("--env", required=True, metavar="ENV")
    approve.add_argument("--comment", default="")
    approve.set_defaults(handler=cmd_approve, mutates=True)

    release = verbs.add_parser(
        "release",
        help="the whole pipeline: verify, test, gate, build, promote env by env",
        description="Verify the candidate's lineage, run the suites the environments "
        "require, build its Bento, then promote it to each environment in order up to "
        "--to (default: the first), stopping at the first blocked step. With --batch for "
        "CI: --json, --junit PATH, and a Markdown summary to --summary PATH and to "
        "$GITHUB_STEP_SUMMARY when set.",
    )
    release.add_argument("--to", metavar="ENV", help="the last environment to reach")
    release.add_argument("--service", metavar="SERVICE", help="one service (default: all)")
    release.add_argument("--junit", metavar="PATH", type=Path, help="write a JUnit XML report")
    release.add_argument("--summary", metavar="PATH", type=Path, help="write a Markdown summary")
    _strategy_option(release)
    release.set_defaults(handler=cmd_release, mutates=True)

    down = verbs.add_parser(
        "down",
        help="stop locally served environments",
        description="Stop the local services of every environment (or --env ENV).",
    )
    down.add_argument("--env", metavar="ENV")
    down.set_defaults(handler=cmd_down, mutates=True)


def _strategy_option(parser: Any) -> None:
    parser.add_argument(
        "--strategy",
        choices=["all-at-once", "canary", "shadow"],
        help="how traffic moves to the new release (default: the environment's "
        "[environments.ENV.rollout] strategy, else all-at-once); canary and shadow are judged "
        "against the stable release and aborted back to it when they fail (exit 1)",
    )


def _answer(args: argparse.Namespace, document: dict[str, Any], done: str) -> int:
    """The steps and ``done`` (or the JSON document) on stdout, the error on stderr."""
    if args.json:
        emit(document)
    else:
        _steps(document)
        if document["ok"]:
            out(done)
    if not document["ok"] and document.get("error"):
        _stderr(document["error"])
    return 0 if document["ok"] else int(document.get("exit_code") or 1)


def _steps(document: dict[str, Any]) -> None:
    """Each step on stdout, unless stderr's progress already showed them on the same screen
    (every step is logged as it ends)."""
    if not progress_on_stdout():
        for step in document["steps"]:
            # A check that said no (kind: order, approvals, ...) blocked it, as the TUI says.
            blocked = step["status"] == "failed" and step.get("kind")
            status = "blocked" if blocked else step["status"]
            out(f"{status:<7} {step['name']}  {step['detail']}")


def _report(args: argparse.Namespace, report: dict[str, Any]) -> int:
    what = report.get("version") or report.get("release")
    return _answer(
        args, report, f"{report['service']} {what} is live in {report['env']} at {report['url']}"
    )


def cmd_promote(args: argparse.Namespace) -> int:
    project = api.load_project(args.project)
    if args.detach:
        document = api.promote_detached(
            project,
            args.service,
            args.to,
            release=args.release,
            strategy=args.strategy,
            force=args.force,
            read_only=args.read_only,
        )
        if document.get("detached"):
            if args.json:
                emit(document)
            else:
                out(document["detail"])
            return 0
        if args.json:
            emit(document)
        elif document.get("ok") and document.get("url"):
            out(f"{document['service']} is live in {document['env']} at {document['url']}")
        if not document.get("ok") and document.get("error"):
            _stderr(str(document["error"]))
        return int(document.get("exit_code") or 0)
    report = api.promote(
        project,
        args.service,
        args.to,
        release=args.release,
        force=args.force,
        read_only=args.read_only,
        log=_stderr,
        strategy=args.strategy,
        cancel=getattr(args, "cancel", None),  # SIGHUP, SIGTERM: a rollout goes back to stable
    )
    return _report(args, report)


def cmd_rollback(args: argparse.Namespace) -> int:
    project = api.load_project(args.project)
    report = api.rollback(
        project,
        args.service,
        args.env,
        to=args.to,
        reason=args.reason,
        force=args.force,
        read_only=args.read_only,
        log=_stderr,
    )
    return _report(args, report)


def cmd_release(args: argparse.Namespace) -> int:
    project = api.load_project(args.project)
    document = api.release(
        project,
        to=args.to,
        service=args.service,
        junit=args.junit,
        summary=args.summary,
        read_only=args.read_only,
        log=_stderr,
        on_event=api.progress_lines(_stderr),
        cancel=getattr(args, "cancel", None),  # SIGHUP, SIGTERM: a promotion finishes first
        strategy=args.strategy,
    )
    workflow_commands(api.github_annotations(document))
    if args.json:
        emit(document)
    else:
        _steps(document)
        for line in api.failed_tests(document):
            out(line)
        if document["ok"]:
            out(
                f"released {document.get('version') or ''} to {', '.join(document['environments'])}"
            )
    if not document["ok"] and document.get("error"):
        _stderr(document["error"])
    return int(document.get("exit_code") or 0)


def cmd_approve(args: argparse.Namespace) -> int:
    project = api.load_project(args.project)
    document = api.approve(
        project, args.release, args.env, comment=args.comment, read_only=args.read_only
    )
    if args.json:
        emit(document)
    else:
        what = document["version"] or document["release"]
        out(f"{document['approver']} approved {document['service']} {what} for {args.env}")
        out(f"  ({document['note']})")
    return 0


def _stopped_name(entry: dict[str, Any]) -> str:
    if entry.get("service"):
        return f"{entry['service']}/{entry['env']}"
    if entry.get("traffic"):
        return "the background traffic"
    if entry.get("watcher"):
        return "the pipeline watcher"
    return "the collector" if entry.get("collector") else "other processes of this project"


def cmd_down(args: argparse.Namespace) -> int:
    project = api.load_project(args.project)
    document = api.down(project, args.env, read_only=args.read_only, log=_stderr)
    if args.json:
        emit(document)
    else:
        stopped = [_stopped_name(e) for e in document["environments"] if e["stopped"]]
        out("stopped " + ", ".join(stopped) if stopped else "nothing was running")
    return 0
