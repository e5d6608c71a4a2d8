"""`relman status`, `history`, `diff` and `audit verify`: read-only views of lineage and the
ledger. Each handler calls core/api.py once and renders the answer (JSON or rich text)."""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING, Any

from core import api
from tui.columns import print_table
from tui.output import emit

if TYPE_CHECKING:
    from rich.console import Console


def add_parsers(verbs: Any) -> None:
    status = verbs.add_parser(
        "status",
        help="the candidate and what is live in each environment",
        description="For each service: the candidate (what the working tree would release: "
        "commit, DVC-tracked data and model, params, metrics, and every problem that would "
        "stop a release) and what is live in each environment.",
    )
    status.set_defaults(handler=cmd_status)

    history = verbs.add_parser(
        "history",
        help="releases, runs, promotions, rollbacks and approvals, newest first",
        description="Releases, test runs, promotions, rollbacks, approvals and GTO registry "
        "tags, newest first, a page at a time. With --at: what was live at that moment, and "
        "what it was made of.",
    )
    history.add_argument("--service", help="only this service")
    history.add_argument("--env", help="only this environment")
    history.add_argument("--limit", type=int, default=50, help="entries per page (50)")
    history.add_argument("--before", metavar="CURSOR", help="the page after this cursor")
    history.add_argument(
        "--at", metavar="TIMESTAMP", help="what was live then (ISO-8601, or HH:MM today)"
    )
    history.set_defaults(handler=cmd_history)

    diff = verbs.add_parser(
        "diff",
        help="what changed between two releases",
        description="Two releases side by side (id, id prefix or version; 'candidate' for the "
        "working tree): params, metrics with deltas, data and model hashes, commits between.",
    )
    diff.add_argument("a", metavar="A")
    diff.add_argument("b", metavar="B", nargs="?", default="candidate")
    diff.set_defaults(handler=cmd_diff)

    audit = verbs.add_parser(
        "audit",
        help="check the hash-chained audit log",
        description="The audit log of every mutation, hash-chained.",
    )
    audit_verbs = audit.add_subparsers(dest="audit_verb", metavar="ACTION", required=True)
    verify = audit_verbs.add_parser(
        "verify",
        help="check the chain; exit 1 at the first broken link",
        description="Check every audit event's hash and link; print the first broken one.",
    )
    verify.set_defaults(handler=cmd_audit_verify)


def _console() -> Console:
    from tui.output import answer_console

    return answer_console()


def _size(size: int | None) -> str:
    """``3.7 MiB``, as the TUI and the reports write it; ``?`` when unknown."""
    return api.human_size(size) or "?"


def _cache(item: dict[str, Any]) -> str:
    """``local``, ``remote 'storage' (needs dvc pull)``, ``unknown (remote 'storage' could
    not be reached: no answer within 5 s)``, ``missing``: where the content is."""
    state, remote = item["cache"], item.get("remote")
    if state == "remote":
        return f"remote '{remote}' (needs dvc pull)"
    if state == "unknown":
        reason = f": {item['remote_error']}" if item.get("remote_error") else ""
        return f"unknown (remote '{remote}' could not be reached{reason})"
    if state == "missing" and remote:
        return f"missing (nor in remote '{remote}')"
    return str(state)


def cmd_status(args: argparse.Namespace) -> int:
    with api.one_dvc_session():  # inferring and the candidates: DVC's index built once
        project = api.read_project(args.project)
        report = api.status(project)
    if args.json:
        emit(report)
        return 0
    from rich.text import Text

    console = _console()
    if report.get("reading"):
        console.print(Text(report["reading"], style="italic"))
    for service in report["services"]:
        cand = service["candidate"]
        git = cand["git"]
        state = "dirty" if git["dirty"] else "clean"
        console.print(
            Text.assemble(
                (service["name"], "bold"),
                f"  candidate {cand['release']}  ",
                f"{git['short']} on {git['branch'] or 'detached HEAD'} ({state}): ",
                git["message"],
            )
        )
        for kind in ("model", "data"):
            for item in cand[kind]:
                console.print(
                    f"  {kind:<5} {item['path']}  md5 {item['md5'] or '?'}  "
                    f"{_size(item['size'])}  cache {_cache(item)}"
                )
        metrics = ", ".join(
            f"{key} {_figure(value)}" for key, value in api.flat_metrics(cand["metrics"]).items()
        )
        if metrics:
            console.print(f"  metrics {metrics}")
        for problem in cand["problems"]:
            console.print(Text(f"  problem: {problem}", style="red"))
        for note in cand.get("notes", []):
            console.print(Text(f"  note: {note}", style="dim"))
        _environments(console, service["environments"])
        for run in service.get("runs", []):  # not finished: running, or left by a killed relman
            style = "yellow" if run["status"] == "interrupted" else ""
            console.print(Text(f"  {run['summary']}", style=style))
        for artifact, stages in service.get("registry", {}).items():
            pairs = ", ".join(f"{stage} {version}" for stage, version in stages.items())
            console.print(f"  registry (git tags) {artifact}: {pairs}")
    for warning in report.get("warnings", []):
        console.print(Text(f"warning: {warning}", style="yellow"))
    return 0


def _figure(value: Any) -> str:
    """A metric as a person reads it: ``0.83``, not ``0.8300000000000001``."""
    return f"{value:.6g}" if isinstance(value, float) else str(value)


def _environments(console: Console, environments: dict[str, Any]) -> None:
    """What is live where, then what on-call acts on first: the alerts firing in each
    environment, and what an unusual state means with the command that resolves it."""
    from rich.text import Text

    if not environments:  # a repository read as it is, whose tags assign no stage
        console.print("  environments: none (no GTO tag assigns a stage; 'relman init' adds some)")
        return

    rows = []
    for env, live in environments.items():
        firing = live.get("alerts", [])
        state = f"{live['state']}, {len(firing)} firing" if firing else live["state"]
        when = live["since"] or "—"
        rows.append(
            [env, live["release"] or "—", live["version"] or "—", state, when, live["url"] or "—"]
        )
    print_table(console, ["env", "release", "version", "state", "since", "url"], rows)
    width = max(map(len, environments), default=0)
    for env, live in environments.items():
        firing = live.get("alerts", [])
        if firing:
            lines = "; ".join(f"{alert['name']}: {alert['detail']}" for alert in firing)
            said = f"  {env:<{width}}  {len(firing)} firing: {lines} (relman alerts)"
            console.print(Text(said, style="red"))
        if live.get("note"):
            step = f"; run: {live['next']}" if live.get("next") else ""
            console.print(Text(f"  {env:<{width}}  {live['note']}{step}", style="yellow"))
        if live.get("rollout"):
            console.print(Text(f"  {env:<{width}}  {_rollout_line(live['rollout'])}", style="cyan"))
        cluster = live.get("cluster")
        if cluster and cluster.get("deployment"):
            said = (
                f"cluster: deployment/{cluster['deployment']} runs {cluster['image']} "
                f"({cluster['ready']}/{cluster['replicas']} ready)"
            )
            console.print(Text(f"  {env:<{width}}  {said}"))


def _rollout_line(rollout: dict[str, Any]) -> str:
    """``canary 50% of v1.1.0 (rollout #3): relman rollout status iris --env dev``."""
    what = rollout.get("canary_version") or str(rollout.get("canary", ""))[:12]
    phase = rollout["phase"] if rollout["phase"] != "progressing" else rollout["strategy"]
    said = f"{phase} {rollout['weight']}% of {what} (rollout #{rollout.get('id', '?')})"
    if rollout.get("interrupted"):
        said += " interrupted: the relman driving it stopped; the next command puts stable back"
    return f"{said}; {rollout.get('command', 'relman rollout status')}"


def cmd_history(args: argparse.Namespace) -> int:
    project = api.read_project(args.project)
    if args.at:
        answer = api.live_at(project, args.at, service=args.service, env=args.env)
        if args.json:
            emit(answer)
            return 0
        console = _console()
        console.print(f"live at {answer['at']}:")
        for item in answer["live"]:
            if not item["release"]:
                console.print(f"  {item['service']} {item['env']}: nothing live")
                continue
            data = ", ".join(f"{d['path']} (md5 {d['md5']})" for d in item["data"]) or "—"
            console.print(
                f"  {item['service']} {item['env']}: {item['version'] or ''} {item['release']} "
                f"(commit {item['commit'][:8]}: {item['message']}); trained on {data}"
            )
        return 0
    if args.limit < 1:
        from core.errors import UsageError

        raise UsageError(f"--limit {args.limit}: give at least 1")
    page = api.history(
        project, service=args.service, env=args.env, limit=args.limit, before=args.before
    )
    if args.json:
        emit(page)
        return 0
    from rich.text import Text

    console = _console()
    if not page["entries"]:
        console.print("nothing recorded yet")
    for entry in page["entries"]:
        where = " ".join(part for part in (entry["service"], entry["env"]) if part)
        console.print(f"{entry['at'][:19]}  {entry['kind']:<9} {where:<16} {entry['summary']}")
    if page["next_cursor"]:
        console.print(Text(f"more: relman history --before '{page['next_cursor']}'", style="dim"))
    for warning in page.get("warnings", []):
        console.print(Text(f"warning: {warning}", style="yellow"))
    return 0


def _delta(row: dict[str, Any]) -> str:
    if row["delta"] is None:
        return ""
    text = f"{row['delta']:+.4g}"
    if row["relative"] is not None:
        text += f" ({row['relative'] * 100:+.1f}%)"
    return text


def cmd_diff(args: argparse.Namespace) -> int:
    project = api.read_project(args.project)
    answer = api.diff(project, args.a, args.b)
    if args.json:
        emit(answer)
        return 0
    console = _console()
    a, b = answer["a"], answer["b"]
    console.print(
        f"A {a['version'] or ''} {a['release']} ({(a['commit'] or '')[:8]})  ->  "
        f"B {b['version'] or ''} {b['release']} ({(b['commit'] or '')[:8]})"
    )
    if answer["params"]:
        console.print("params:")
        for row in answer["params"]:
            console.print(f"  {row['key']}: {row['a']} -> {row['b']}")
    else:
        console.print("params: unchanged")
    console.print("metrics:")
    for row in answer["metrics"]:
        console.print(f"  {row['key']}: {row['a']} -> {row['b']}  {_delta(row)}")
    console.print("data and model:")
    for row in answer["artifacts"]:
        mark = "changed" if row["changed"] else "same"
        console.print(
            f"  {row['kind']:<5} {row['path']}: {mark}  {row['a_md5'] or '—'} -> "
            f"{row['b_md5'] or '—'}  ({_size(row['a_size'])} -> {_size(row['b_size'])})"
        )
    console.print(f"commits A..B: {len(answer['commits'])}")
    for line in answer["commits"]:
        console.print(f"  {line}")
    return 0


def cmd_audit_verify(args: argparse.Namespace) -> int:
    project = api.load_project(args.project)
    report = api.audit_verify(project)
    if args.json:
        emit(report)
    else:
        _console().print(report["detail"])
    return 0 if report["ok"] else 1
