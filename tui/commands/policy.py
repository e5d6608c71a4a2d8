"""`relman policy explain`: the effective monitoring parameters of a service in an environment
and the layer of relman.toml that set each (core/alerts/policies.py); `policy backtest`: a
recorded series replayed through them; `policy export --format prometheus`: all of them as a
Prometheus rule file (docs/prometheus.md). Read-only (export writes only the file it is given).
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from core import api
from tui.output import emit, out


def add_parsers(verbs: Any) -> None:
    policy = verbs.add_parser(
        "policy",
        help="monitoring policies: the effective parameters and who set them",
        description="Monitoring parameters cascade: built-in defaults -> [monitoring] -> "
        "templates attached by [[monitoring.assign]] rules -> [environments.ENV.monitoring] "
        "-> [services.NAME.monitoring], each layer with conditional [[...when]] values.",
    )
    actions = policy.add_subparsers(dest="policy_verb", metavar="ACTION", required=True)

    explain = actions.add_parser(
        "explain",
        help="each effective parameter of SERVICE in ENV and the layer that set it",
        description="Each effective monitoring parameter of SERVICE in ENV, its value and the "
        "layer of relman.toml that set it.",
    )
    explain.add_argument("service", metavar="SERVICE")
    explain.add_argument("env", metavar="ENV")
    # Also accepted after the verb; SUPPRESS keeps a global `relman --json policy ...`.
    explain.add_argument(
        "--json", action="store_true", default=argparse.SUPPRESS, help="one JSON document"
    )
    explain.set_defaults(handler=cmd_policy_explain)

    backtest = actions.add_parser(
        "backtest",
        help="replay a recorded series through the effective policy",
        description="Replay a recorded timestamp,value series (CSV) of METRIC through the "
        "effective rules of SERVICE in ENV: the alerts that would have fired, and when.",
    )
    backtest.add_argument("service", metavar="SERVICE")
    backtest.add_argument("env", metavar="ENV")
    backtest.add_argument("--series", required=True, type=Path, metavar="CSV")
    backtest.add_argument(
        "--metric", required=True, metavar="NAME", help="p50_ms, p95_ms, p99_ms or error_rate"
    )
    backtest.add_argument(
        "--json", action="store_true", default=argparse.SUPPRESS, help="one JSON document"
    )
    backtest.set_defaults(handler=cmd_policy_backtest)

    export = actions.add_parser(
        "export",
        help="every service and environment's policy as Prometheus recording and alerting rules",
        description="Compile the effective monitoring policy of every service and environment "
        "into a Prometheus rule file (recording and alerting rules over BentoML's metrics, "
        "with relman's limits, for durations, labels, explanation and rollback command); what "
        "PromQL cannot express is said in the file's header (docs/prometheus.md).",
    )
    export.add_argument(
        "--format", required=True, metavar="FORMAT", help="prometheus (the one format)"
    )
    export.add_argument(
        "--out",
        type=Path,
        metavar="FILE",
        help="write the rules there, atomically (default: stdout)",
    )
    export.add_argument(
        "--json", action="store_true", default=argparse.SUPPRESS, help="one JSON document"
    )
    export.set_defaults(handler=cmd_policy_export)


def format_value(value: Any) -> str:
    if value is None:
        return "—"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return f"{value:g}"
    return str(value)


def explain_lines(report: dict[str, Any]) -> list[str]:
    """The aligned table of ``relman policy explain``: name, value, set by."""
    rows = [("parameter", "value", "set by")]
    rows += [
        (row["name"], format_value(row["value"]), row["source"]) for row in report["parameters"]
    ]
    name_width = max(len(row[0]) for row in rows)
    value_width = max(len(row[1]) for row in rows)
    lines = [f"{report['service']} in {report['env']}:"]
    lines += [f"  {n:<{name_width}}  {v:<{value_width}}  {s}".rstrip() for n, v, s in rows]
    return lines


def cmd_policy_explain(args: argparse.Namespace) -> int:
    project = api.load_project(args.project)
    report = api.policy_explain(project, args.service, args.env)
    if args.json:
        emit(report)
        return 0
    for line in explain_lines(report):
        out(line)
    return 0


def cmd_policy_backtest(args: argparse.Namespace) -> int:
    project = api.load_project(args.project)
    report = api.policy_backtest(project, args.service, args.env, args.series, args.metric)
    if args.json:
        emit(report)
        return 0
    alerts = report.get("alerts", [])
    if "interval" in report:
        out(
            f"{report.get('points', 0)} points of {args.metric} at an interval of "
            f"{report['interval']} (inferred from the timestamps)"
        )
    if not alerts:
        out(f"no alert would have fired on {args.series} ({args.metric})")
    for alert in alerts:
        grouped = f" (with {alert['grouped_with']})" if alert.get("grouped_with") else ""
        line = f"{alert['state']:<8} {alert['rule']:<18} {alert['detail']}{grouped}"
        out(f"{alert.get('at', '')}  {line}")
    pages = report.get("pages")
    if alerts and pages is not None:
        out(f"{pages} page(s): alerts of one cause page once")
    return 0


def cmd_policy_export(args: argparse.Namespace) -> int:
    project = api.load_project(args.project)
    report = api.policy_export(project, args.format, out=args.out)
    if args.json:
        emit(report)
        return 0
    if args.out is None:
        out(report["text"].removesuffix("\n"))
        return 0
    approximated = sorted({name for pair in report["pairs"] for name in pair["approximated"]})
    out(
        f"wrote {report['rules']} rules to {args.out}: {report['alerting']} alerting, "
        f"{report['recording']} recording, for {len(report['pairs'])} service/environment "
        "pair(s)"
    )
    if approximated:
        out(f"approximated: {', '.join(approximated)} (docs/prometheus.md)")
    out(f"check it: promtool check rules {args.out}")
    return 0
