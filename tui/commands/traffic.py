"""`relman traffic`: demo load on a served environment, with a fault to inject. Progress on
stderr every few seconds, the counts (or one JSON document) on stdout."""

from __future__ import annotations

import argparse
from typing import Any

from core import api
from tui.output import emit, out
from tui.output import log as _stderr


def add_parsers(verbs: Any) -> None:
    traffic = verbs.add_parser(
        "traffic",
        help="demo load on an environment, with a fault to inject",
        description="Send requests built from the service's training data to ENV at --rate "
        "per second for --duration seconds (0: until Ctrl-C), and count the answers. "
        "--inject drift shifts the requests' features; latency-spike, latency-leak and "
        "error-burst make the served instance slow down or fail until the end (the demo's "
        "service applies them).",
    )
    traffic.add_argument("service", metavar="SERVICE")
    traffic.add_argument("--env", required=True, metavar="ENV")
    traffic.add_argument(
        "--rate", type=float, default=5.0, metavar="N", help="requests a second (default 5)"
    )
    traffic.add_argument(
        "--duration",
        type=float,
        default=60.0,
        metavar="S",
        help="seconds to run (default 60; 0: until Ctrl-C)",
    )
    # The fault kinds of core.traffic.faults, named here so that building the parser stays light.
    kinds = ("latency-leak", "latency-spike", "error-burst", "drift")
    traffic.add_argument("--inject", choices=kinds, metavar="KIND", help=", ".join(kinds))
    traffic.add_argument(
        "--target",
        choices=("stable", "canary"),
        default="stable",
        help="the instance --inject faults: the stable release (default), or the candidate "
        "of the rollout running in ENV",
    )
    traffic.add_argument(
        "--detach",
        action="store_true",
        help="run in the background (log in .relman/traffic.log); `relman down` stops it",
    )
    traffic.add_argument(
        "--stop",
        action="store_true",
        help="stop the background load on ENV (--detach), removing a fault it injected",
    )
    # It changes no record, but it writes a fault into a served instance: not in read-only.
    traffic.set_defaults(handler=cmd_traffic, mutates=True)


def cmd_traffic(args: argparse.Namespace) -> int:
    project = api.load_project(args.project)
    if args.stop:
        stopped = api.traffic_stop(project, args.service, args.env, read_only=args.read_only)
        out(f"stopped the background traffic on {args.service} in {args.env}" if stopped
            else f"no background traffic ran on {args.service} in {args.env}")  # fmt: skip
        return 0
    target = {"target": args.target}
    if args.detach:
        pid = api.traffic_detached(
            project,
            args.service,
            args.env,
            rate=args.rate,
            duration=args.duration,
            inject=args.inject,
            log=_stderr,
            **target,
        )
        out(f"traffic on {args.service} in {args.env} runs in the background (pid {pid}); "
            "`relman down` stops it")  # fmt: skip
        return 0
    report = api.traffic(
        project,
        args.service,
        args.env,
        rate=args.rate,
        duration=args.duration,
        inject=args.inject,
        read_only=args.read_only,
        log=_stderr,
        **target,
    )
    if args.json:
        emit(report)
        return 0
    out(report["detail"])
    if report["inject"]:
        removed = ", removed at the end" if report["fault_file"] else ""
        out(f"  fault: {report['fault_detail']}{removed}")
    if report["predictions"]:
        shares = ", ".join(f"{k} {n}" for k, n in sorted(report["predictions"].items()))
        out(f"  predictions: {shares}")
    if report["interrupted"]:
        out("  (interrupted)")
    return 0
