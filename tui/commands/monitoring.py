"""`relman monitor`, `metrics`, `alerts`, `feedback`: the collector and what it stored."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from core import api
from tui.output import emit, out
from tui.output import log as _stderr


def add_parsers(verbs: Any) -> None:
    monitor = verbs.add_parser(
        "monitor",
        help="the collector: scrape, ingest, evaluate alerts",
        description="Collect from every live environment of the project into "
        ".relman/metrics.db: /metrics, the services' bentoml.monitor logs, per-minute "
        "rollups, drift and alerts. One per project; started by promote, stopped by down. "
        "--once does one pass.",
    )
    monitor.add_argument("--once", action="store_true", help="one pass, then exit")
    monitor.set_defaults(handler=cmd_monitor, mutates=True)

    metrics = verbs.add_parser(
        "metrics",
        help="the per-minute series the monitor panes draw",
        description="Request rate, error rate and latency p50/p95/p99 of SERVICE in ENV, one "
        "point a minute over --range (5m, 1h, 24h, 7d).",
    )
    metrics.add_argument("service", metavar="SERVICE")
    metrics.add_argument("--env", required=True, metavar="ENV")
    metrics.add_argument("--range", default="1h", dest="range_", metavar="RANGE")
    metrics.set_defaults(handler=cmd_metrics)

    alerts = verbs.add_parser(
        "alerts",
        help="firing and past alerts",
        description="Firing, pending and resolved alerts with their one-line explanation and "
        "the rollback command; with [monitoring] alertmanager_url, the silences that cover "
        "them. --check exits 1 while one fires (for CI soak steps); a silenced one does not "
        "count.",
    )
    alerts.add_argument(
        "--check", action="store_true", help="exit 1 while an alert fires (not silenced)"
    )
    alerts.set_defaults(handler=cmd_alerts)

    feedback = verbs.add_parser(
        "feedback",
        help="ground truth arriving late, joined to logged predictions",
        description="Store FILE's request_id,label rows for SERVICE in ENV; the collector "
        "joins them to the logged predictions for live accuracy.",
    )
    feedback.add_argument("service", metavar="SERVICE")
    feedback.add_argument("--env", required=True, metavar="ENV")
    feedback.add_argument("file", metavar="FILE", type=Path)
    feedback.set_defaults(handler=cmd_feedback, mutates=True)


def cmd_monitor(args: argparse.Namespace) -> int:
    project = api.load_project(args.project)
    return api.monitor(project, once=args.once, log=_stderr)


def _number(value: float | None, unit: str = "", digits: int = 1) -> str:
    return "—" if value is None else f"{value:.{digits}f}{unit}"


def cmd_metrics(args: argparse.Namespace) -> int:
    project = api.load_project(args.project)
    document = api.metrics(project, args.service, args.env, args.range_)
    if args.json:
        emit(document)
        return 0
    points = document["points"]
    if not points:
        where = f"{args.service} in {args.env} over {args.range_}"
        out(f"no data for {where} (is `relman monitor` running?)")
        return 0
    out(f"{'minute (UTC)':<17} {'rps':>7} {'errors':>7} {'p50':>8} {'p95':>8} {'p99':>8}")
    for p in points:
        out(
            f"{p['t'][:16]:<17} {_number(p['rps'], '', 2):>7} "
            f"{_number(None if p['error_rate'] is None else p['error_rate'] * 100, '%'):>7} "
            f"{_number(p['p50_ms'], 'ms'):>8} {_number(p['p95_ms'], 'ms'):>8} "
            f"{_number(p['p99_ms'], 'ms'):>8}"
        )
    return 0


def cmd_alerts(args: argparse.Namespace) -> int:
    project = api.load_project(args.project)
    document = api.alerts(project)
    if args.json:
        emit(document)
    else:
        if not document["alerts"]:
            out("no alerts")
        for alert in document["alerts"]:
            grouped = alert.get("grouped_with")
            joined = f"  (one incident with {grouped}: not paged)" if grouped else ""
            silence = alert.get("silence")
            state = "silenced" if silence and alert["state"] == "firing" else alert["state"]
            out(
                f"{state:<8} {alert['name']:<14} {alert['service']}/{alert['env']}  "
                f"since {alert['since']}  {alert['detail']}{joined}"
            )
            if silence:
                said = f": {silence['comment']}" if silence["comment"] else ""
                out(
                    f"         silenced by {silence['by'] or 'someone'} until "
                    f"{_utc(silence['until'])}{said} ({silence['matchers']})"
                )
            if alert["state"] != "resolved" and alert.get("rollback") and not grouped:
                out(f"         to roll back: {alert['rollback']}")
        if document["collector"] is None:
            _stderr("no collector is running: `relman monitor` (promote starts one)")
        reading = document.get("alertmanager")
        problem = reading["problem"] if reading else None
        if problem:
            _stderr(f"{problem}; firing alerts are counted as firing")
    return 1 if args.check and document["firing"] else 0


def _utc(moment: str) -> str:
    """Alertmanager's ``2026-12-07T20:14:42.000Z`` as ``2026-12-07 20:14:42 UTC``."""
    if len(moment) >= 19 and moment[10] == "T":
        return f"{moment[:10]} {moment[11:19]} UTC"
    return moment


def cmd_feedback(args: argparse.Namespace) -> int:
    project = api.load_project(args.project)
    document = api.feedback(project, args.service, args.env, args.file, read_only=args.read_only)
    if args.json:
        emit(document)
    else:
        out(f"stored {document['rows']} label(s) for {args.service} in {args.env}")
    return 0
