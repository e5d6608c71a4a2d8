"""`relman rollout status|pause|resume|abort|promote SERVICE --env ENV`: a canary or shadow
rollout as it stands, and the requests that steer it (docs/rollouts.md)."""

from __future__ import annotations

import argparse
from typing import Any

from core import api
from tui.output import emit, out
from tui.output import log as _stderr

ACTIONS = ("status", "pause", "resume", "abort", "promote")
HELP = {
    "status": "the rollout's phase, weight, steps and latest analysis",
    "pause": "hold the rollout at its current weight until resumed",
    "resume": "go on with a paused rollout",
    "abort": "send every request back to the stable release and stop the new one",
    "promote": "skip the remaining steps: the new release takes every request",
}


def add_parsers(verbs: Any) -> None:
    rollout = verbs.add_parser(
        "rollout",
        help="a canary or shadow rollout: status, pause, resume, abort, promote",
        description="Show or steer the rollout of SERVICE in ENV. The relman driving it "
        "acts on pause, resume, abort and promote at its next poll; when that relman was "
        "killed, abort and promote are done by this command.",
    )
    actions = rollout.add_subparsers(dest="action", metavar="ACTION", required=True)
    for action in ACTIONS:
        parser = actions.add_parser(action, help=HELP[action], description=HELP[action])
        parser.add_argument("service", metavar="SERVICE")
        parser.add_argument("--env", required=True, metavar="ENV")
        parser.set_defaults(handler=cmd_rollout, mutates=action != "status")


def cmd_rollout(args: argparse.Namespace) -> int:
    project = api.load_project(args.project)
    if args.action == "status":
        document = api.rollout_status(project, args.service, args.env)
    else:
        document = api.rollout_action(
            project, args.service, args.env, args.action, read_only=args.read_only, log=_stderr
        )
    if args.json:
        emit(document)
    else:
        for line in describe(document):
            out(line)
    return 0


def describe(document: dict[str, Any]) -> list[str]:
    """The rollout as a person reads it: one header line, the steps, the latest checks."""
    if document["phase"] == "none":
        return [document["detail"]]
    canary = document.get("canary_version") or document["canary"]
    stable = document.get("stable_version") or document["stable"]
    lines = [
        f"{document['service']} {document['env']}: {document['strategy']} rollout "
        f"#{document.get('id')} of {canary} (stable {stable}): {document['phase']}, "
        f"weight {document['weight']}%"
    ]
    if document.get("detail"):
        lines.append(f"  {document['detail']}")
    for step in document["steps"]:
        lines.append(f"  {step['status']:<8} {step['name']}  {step['detail']}".rstrip())
    if document["analysis"]:
        lines.append("  latest analysis:")
        for check in document["analysis"]:
            lines.append(f"    {check['verdict']:<12} {check['detail']}")
    return lines
