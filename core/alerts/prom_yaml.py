"""The Prometheus rule file of core.alerts.prom_rules as YAML text, written by hand (every
string JSON-quoted, which YAML reads as it is; multi-line expressions as literal blocks), its
header saying what relman's collector keeps, and the file written atomically."""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any

from core.alerts.prom_rules import (
    APPROXIMATED,
    DOCS_PREFIX,
    INFRA_ENDPOINTS,
    SAME_INSTANT,
    AlertingRule,
    RecordingRule,
    RuleFile,
    left_lines,
    pair_summary,
)
from core.errors import UsageError

WIDTH = 92  # header comment lines are wrapped here


def render(rule_file: RuleFile) -> str:
    """The rule file's text: a header of comments, then ``groups:``."""
    lines = [f"# {line}".rstrip() for line in header(rule_file)]
    lines.append("groups:")
    for group in rule_file.groups:
        lines.append(f"  - name: {_q(group.name)}")
        if group.interval:
            lines.append(f"    interval: {group.interval}")
        lines.append("    rules:")
        for rule in group.rules:
            if isinstance(rule, RecordingRule):
                lines.append(f"      # {rule.help}")
                lines.append(f"      - record: {rule.record}")
                lines += _scalar("        ", "expr", rule.expr)
                if rule.labels:
                    lines.append("        labels:")
                    lines += [f"          {name}: {_q(value)}" for name, value in rule.labels]
            else:
                lines += _alerting(rule)
    return "\n".join(lines) + "\n"


def _alerting(rule: AlertingRule) -> list[str]:
    lines = [f"      - alert: {rule.alert}"]
    lines += _scalar("        ", "expr", rule.expr)
    lines.append(f"        for: {rule.for_minutes}m")
    lines.append(f"        keep_firing_for: {rule.keep_firing_minutes}m")
    lines.append("        labels:")
    lines += [f"          {name}: {_q(value)}" for name, value in rule.labels.items()]
    lines.append("        annotations:")
    lines += [f"          {name}: {_q(value)}" for name, value in rule.annotations.items()]
    return lines


def _scalar(indent: str, key: str, text: str) -> list[str]:
    """A literal block (``|-``: PromQL as it is, no escapes) for an expression holding
    quotes or lines, else ``key: "text"``."""
    if "\n" not in text and '"' not in text:
        return [f"{indent}{key}: {_q(text)}"]
    return [f"{indent}{key}: |-"] + [f"{indent}  {line}".rstrip() for line in text.split("\n")]


def _q(text: str) -> str:
    return json.dumps(text, ensure_ascii=False)


def header(rule_file: RuleFile) -> list[str]:
    """The comment at the top of the file: what it is, what it reads, what is approximated
    and what only relman's collector evaluates."""
    labels = rule_file.labels
    infra = ", ".join([*INFRA_ENDPOINTS, f"{DOCS_PREFIX}*"])
    out = _wrap(
        f"Prometheus rules written by `relman policy export --format prometheus` from the "
        f"relman.toml of {rule_file.project}: the effective monitoring policy of each service "
        "and environment (`relman policy explain SERVICE ENV`). Export again after changing "
        "relman.toml rather than editing this file."
    )
    out += _wrap(
        "Reads BentoML's bentoml_service_request_total and "
        "bentoml_service_request_duration_seconds_bucket of the service's API (not "
        f"{infra}), by the labels {labels.service} and {labels.env} ([monitoring.labels]); "
        "errors are answers outside 2xx. Rates are over 1 minute: scrape every 30 s or "
        "less. A `for` of N minutes fires once the condition held N minutes (relman: N "
        "breaching minutes), `keep_firing_for` is resolve_for_minutes. "
        f"last_over_time(X[{SAME_INSTANT}]) reads X as an earlier rule of the same group "
        "recorded it at this evaluation, the value X alone reads, without Prometheus "
        "decoding the 5 minutes before it (docs/prometheus.md, 'Cost')."
    )
    out.append("")
    out.append("Approximated (docs/prometheus.md, 'Policies as Prometheus rules', measures it):")
    for name, how in APPROXIMATED.items():
        out += _wrap(f"{name}: {how}", "  ")
    out.append("Left to relman's collector (`relman monitor`), which evaluates them as before:")
    for line in left_lines(rule_file):
        out += _wrap(line, "  ")
    out += _wrap("cooldown_minutes (an alert re-opened within it) and auto_rollback", "  ")
    out.append("")
    return out


def _wrap(text: str, indent: str = "") -> list[str]:
    """``text`` in lines of at most :data:`WIDTH` (less the ``# ``), continuations indented."""
    lines: list[str] = []
    current = indent
    for word in text.split():
        if current.strip() and len(current) + 1 + len(word) > WIDTH - 2:
            lines.append(current)
            current = indent + "  " + word
        else:
            current = f"{current} {word}" if current.strip() else current + word
    lines.append(current)
    return lines


def write_atomic(path: Path, text: str) -> None:
    """Replace ``path`` with ``text`` so that a reader (Prometheus reloading) sees the old
    file or the new one, never half; UsageError naming the file when it cannot be written."""
    target = path.expanduser()
    if target.is_dir():
        raise UsageError(f"policy export: {path} is a folder; name a file with --out")
    try:
        fd, temporary = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.")
    except OSError as exc:
        raise UsageError(
            f"policy export: cannot write {path}: {exc.strerror or exc}; name a file "
            "in a writable folder with --out"
        ) from None
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as file:
            file.write(text)
        os.chmod(temporary, 0o644)  # mkstemp's 0600 would hide it from a Prometheus user
        os.replace(temporary, target)
    except OSError as exc:
        Path(temporary).unlink(missing_ok=True)
        raise UsageError(
            f"policy export: cannot write {path}: {exc.strerror or exc}; name a "
            "writable file with --out"
        ) from None


def export_document(rule_file: RuleFile, text: str, path: Path | None) -> dict[str, Any]:
    """The ``--json`` answer of `relman policy export` (docs/json.md): where it went (the
    text itself when on stdout), how many rules, and what became of each (service, env)."""
    document: dict[str, Any] = {
        "ok": True,
        "format": "prometheus",
        "path": str(path) if path is not None else None,
        "groups": len(rule_file.groups),
        "rules": rule_file.recording + rule_file.alerting,
        "recording": rule_file.recording,
        "alerting": rule_file.alerting,
        "pairs": pair_summary(rule_file.pairs),
    }
    if path is None:
        document["text"] = text
    return document
