"""`relman policy export --format prometheus`: the effective policies (templates, conditional
values, assignments) compiled into Prometheus rules, their labels and selectors, the YAML
written, and the command line (docs/prometheus.md, "Policies as Prometheus rules")."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from core.alerts import prom_rules
from core.alerts.prom_rules import AlertingRule, RecordingRule, RuleFile, compile_rules
from core.alerts.prom_yaml import render
from core.config.model import RelmanConfig, parse_config
from core.errors import ConfigError
from tests.unit.test_policies import BASE
from tui.cli import run

# iris and wine in dev, prod and prod-eu (tests/unit/test_policies.py), with a policy:
# [monitoring], a template assigned to iris with a value for prod, wine's own layer.
CONFIG = (
    BASE
    + """
[monitoring]
error_rate_max = 0.1

[monitoring.templates.strict]
error_rate_max = 0.02
latency_p99_ms = 400
error_for_minutes = 4

[[monitoring.templates.strict.when]]
match = { env = "prod" }
latency_p99_ms = 250
latency_for_minutes = 3

[[monitoring.assign]]
match = { service = "iris" }
templates = ["strict"]

[services.wine.monitoring]
resolve_for_minutes = 5
"""
)


def _config(text: str = CONFIG) -> RelmanConfig:
    return parse_config(text, Path("relman.toml"))


def _alert(rules: RuleFile, service: str, env: str, rule: str) -> AlertingRule:
    """The one alerting rule of relman's ``rule`` that covers ``service`` in ``env``."""
    found = [
        r
        for group in rules.groups
        for r in group.rules
        if isinstance(r, AlertingRule) and r.rule == rule and r.env == env and service in r.services
    ]
    assert len(found) == 1, (service, env, rule, found)
    return found[0]


def test_alerts_carry_the_effective_values_and_labels() -> None:
    rules = compile_rules(_config())

    # the template's conditional value (when env=prod) over the template's own
    p99 = _alert(rules, "iris", "prod", "latency_p99")
    assert p99.alert == "RelmanLatencyP99"
    # read at this instant from the recording rule before it in the group (this_instant)
    assert p99.expr == (
        'last_over_time(relman:latency_seconds:p99_rate1m{service="iris", env="prod"}[1ms])'
        " * 1000 > 250"
    )
    assert (p99.for_minutes, p99.keep_firing_minutes) == (3, 2)
    # service and env come with the series; env, severity and relman's rule are the rule's
    assert p99.labels == {
        "env": "prod",
        "severity": "critical",
        "rule": "latency_p99",
        "set_by": "built-in, assign #1 -> template strict (when env=prod)",
    }
    summary = p99.annotations["summary"]
    assert summary.startswith("{{ $labels.service }}/{{ $labels.env }}: p99 {{ if lt $value")
    assert summary.endswith(" ms > 250 ms for 3 min")
    assert p99.annotations["policy"] == (
        "latency_p99_ms 250 (assign #1 -> template strict (when env=prod)), "
        "latency_for_minutes 3 (assign #1 -> template strict (when env=prod)), "
        "resolve_for_minutes 2 (built-in); "
        "relman policy explain {{ $labels.service }} {{ $labels.env }}"
    )
    # the assigned template's value in dev, where its condition does not hold
    dev = _alert(rules, "iris", "dev", "latency_p99")
    assert dev.expr.endswith("* 1000 > 400") and dev.for_minutes == 2

    errors = _alert(rules, "iris", "prod", "error_rate")
    assert errors.expr == (
        'last_over_time(relman:error_ratio:rate1m{service="iris", env="prod"}[1ms]) > 0.02'
    )
    assert errors.for_minutes == 4
    assert errors.annotations["summary"] == (
        "{{ $labels.service }}/{{ $labels.env }}: error rate {{ $value | humanizePercentage }}"
        " > 2.0% for 4 min"
    )
    # relman's own rollback line, the service and environment filled in by Prometheus
    assert errors.annotations["rollback"] == (
        "relman rollback {{ $labels.service }} --env {{ $labels.env }} --reason 'error_rate: "
        "error rate {{ $value | humanizePercentage }} > 2.0% for 4 min'"
    )


def test_a_pair_that_inherits_other_values_gets_other_rules() -> None:
    rules = compile_rules(_config())
    iris = _alert(rules, "iris", "prod", "error_rate")
    wine = _alert(rules, "wine", "prod", "error_rate")
    # wine has no template: [monitoring]'s limit, the built-in for, its own resolve
    assert wine.expr == (
        'last_over_time(relman:error_ratio:rate1m{service="wine", env="prod"}[1ms]) > 0.1'
    )
    assert (wine.for_minutes, wine.keep_firing_minutes) == (2, 5)
    assert (iris.for_minutes, iris.keep_firing_minutes) == (4, 2)
    assert wine.annotations["policy"].startswith("error_rate_max 0.1 ([monitoring]), ")
    assert wine.labels["set_by"] == "built-in, [monitoring], [services.wine.monitoring]"
    assert _alert(rules, "wine", "prod", "latency_p99").expr.endswith("> 500")
    # recording rules first, then the alerts of each environment, in one group (run in
    # order); the baselines in a group of their own, once a minute
    assert [(group.name, group.interval) for group in rules.groups] == [
        ("relman", None),
        ("relman-baselines", "1m"),
    ]
    first = rules.groups[0].rules
    kinds = [isinstance(rule, AlertingRule) for rule in first]
    assert kinds == sorted(kinds)  # every recording rule before every alert
    envs = [rule.env for rule in first if isinstance(rule, AlertingRule)]
    assert envs == sorted(envs, key=["dev", "prod", "prod-eu"].index)


def test_services_that_share_every_value_share_a_rule() -> None:
    more = "".join(
        f'\n[services.{name}]\nbento = "service:S"\nmodel = ["{name}-model"]\n'
        for name in ("apple", "pear")
    )
    rules = compile_rules(
        _config(CONFIG.replace("[environments.dev]", more + "\n[environments.dev]"))
    )
    shared = _alert(rules, "apple", "dev", "latency_p99")
    assert shared.services == ("apple", "pear")
    assert shared.expr.startswith(
        'last_over_time(relman:latency_seconds:p99_rate1m{service=~"apple|pear", env="dev"}[1ms])'
    )
    assert _alert(rules, "iris", "dev", "latency_p99").services == ("iris",)
    # wine's own resolve_for_minutes makes each of its rules its own
    assert _alert(rules, "wine", "dev", "latency_p99").services == ("wine",)
    assert _alert(rules, "pear", "prod", "error_rate").services == ("apple", "pear")
    # no two rules alike for promtool's duplicate check: name and static labels differ
    seen = [
        (r.alert, tuple(sorted(r.labels.items())))
        for group in rules.groups
        for r in group.rules
        if isinstance(r, AlertingRule)
    ]
    assert len(seen) == len(set(seen))


def test_expressions_select_by_the_configured_label_names() -> None:
    config = _config(CONFIG + '\n[monitoring.labels]\nservice = "svc"\nenv = "stage"\n')
    rules = compile_rules(config)
    errors = _alert(rules, "iris", "prod", "error_rate")
    assert errors.expr == (
        'last_over_time(relman:error_ratio:rate1m{svc="iris", stage="prod"}[1ms]) > 0.02'
    )
    assert list(errors.labels) == ["stage", "severity", "rule", "set_by"]
    assert errors.annotations["rollback"].startswith(
        "relman rollback {{ $labels.svc }} --env {{ $labels.stage }} --reason "
    )
    recording = {r.record: r.expr for r in rules.groups[0].rules if isinstance(r, RecordingRule)}
    by_code = recording["relman:requests_by_code:rate1m"]
    assert by_code.startswith(
        "sum by (svc, stage, http_response_code) (rate(bentoml_service_request_total{"
    )
    assert 'svc=~"iris|wine"' in by_code and 'stage=~"dev|prod|prod-eu"' in by_code
    assert 'endpoint!~"/readyz|/livez|/healthz|/metrics|/docs.*"' in by_code
    buckets = recording["relman:request_duration_seconds_bucket:rate1m"]
    assert buckets.startswith("sum by (svc, stage, le) (rate(")
    assert 'http_response_code!~"2.*"' in recording["relman:errors:rate1m"]
    down = _alert(rules, "wine", "dev", "down")
    assert down.expr == 'up{svc="wine", stage="dev"} == 0'
    regression = _alert(rules, "wine", "dev", "latency_regression")
    assert regression.annotations["baseline"] == (
        'relman:latency_seconds:p95_daily{svc="{{ $labels.svc }}", stage="{{ $labels.stage }}"}'
        " * 1000"
    )
    # held open through Prometheus' ALERTS of this very rule and pair
    assert (
        'and on (svc, stage) ALERTS{alertname="RelmanLatencyRegression", svc="wine", '
        'stage="dev"}' in regression.expr
    )
    text = render(rules)
    assert 'service="' not in text and 'env="' not in text


def test_one_label_for_service_and_env_is_refused() -> None:
    config = _config(CONFIG + '\n[monitoring.labels]\nservice = "job"\nenv = "job"\n')
    with pytest.raises(ConfigError, match="service and env are both 'job'"):
        compile_rules(config)


def test_infra_endpoints_are_the_scrapers() -> None:
    from core.monitoring import scrape

    assert set(prom_rules.INFRA_ENDPOINTS) == scrape.INFRA_ENDPOINTS
    assert prom_rules.DOCS_PREFIX == scrape.DOCS_PREFIX


def test_regression_is_approximated_against_its_season_or_left() -> None:
    extra = """
[environments.dev.monitoring]
season = "none"

[environments.prod.monitoring]
season = "weekly"
leak_metric = "p99_ms"
regression_ratio = 2.0
"""
    rules = compile_rules(_config(CONFIG + extra))
    regression = _alert(rules, "wine", "prod", "latency_regression")
    assert regression.exact is False
    assert "relman:latency_seconds:p99_weekly" in regression.expr
    assert regression.expr.startswith("last_over_time(relman:latency_seconds:p99_rate1m{")
    assert " >= 2 * (" in regression.expr
    # relman's regression has no floor in ms (issue 18: 5 % of the level is the floor)
    assert " - relman:latency_seconds:p99_weekly" not in regression.expr
    assert regression.for_minutes == 3
    assert "approximation" in regression.annotations
    # the 10-minute medians of the leak metrics in use (prod's p99, prod-eu's built-in
    # p95), of the pairs that read them; each earlier week (day) read back by a rule of its
    # own, one offset (Prometheus looks it up in that day's blocks only), then their median
    baselines = rules.groups[1].rules
    assert all(isinstance(r, RecordingRule) for r in baselines)
    assert [(r.record, dict(r.labels)) for r in baselines if isinstance(r, RecordingRule)] == [
        ("relman:latency_seconds:p99_median10m", {}),
        ("relman:latency_seconds:p95_median10m", {}),
        *(("relman:latency_seconds:p99_weekly_lags", {"lag": str(k)}) for k in (1, 2, 3)),
        ("relman:latency_seconds:p99_weekly", {}),
        *(("relman:latency_seconds:p95_daily_lags", {"lag": str(k)}) for k in range(1, 8)),
        ("relman:latency_seconds:p95_daily", {}),
    ]
    exprs = [r.expr for r in baselines]
    assert exprs[:2] == [
        "quantile_over_time(0.5, relman:latency_seconds:p99_rate1m"
        '{service=~"iris|wine", env="prod"}[10m])',
        "quantile_over_time(0.5, relman:latency_seconds:p95_rate1m"
        '{service=~"iris|wine", env="prod-eu"}[10m])',
    ]
    assert exprs[2:6] == [
        *(
            f'relman:latency_seconds:p99_median10m{{service=~"iris|wine", env="prod"}} offset {lag}'
            for lag in ("6d23h55m", "13d23h55m", "20d23h55m")
        ),
        "quantile without (lag) (0.5, relman:latency_seconds:p99_weekly_lags)",
    ]
    assert exprs[6].endswith(" offset 23h55m") and exprs[12].endswith(" offset 6d23h55m")
    assert exprs[13] == "quantile without (lag) (0.5, relman:latency_seconds:p95_daily_lags)"
    # season = none: the hour before the release, which Prometheus does not know
    assert not any(
        isinstance(r, AlertingRule) and r.rule == "latency_regression" and r.env == "dev"
        for group in rules.groups
        for r in group.rules
    )
    dev = next(p for p in rules.pairs if (p.service, p.env) == ("iris", "dev"))
    assert "latency_regression" in dev.left and "latency_leak" in dev.left
    assert "latency_regression" not in dev.exported
    text = render(rules)
    assert "#   latency_regression of iris/dev, wine/dev: the hour before the release" in text


def test_baselines_cover_only_the_pairs_that_read_them() -> None:
    # p99 read by every pair of prod and by wine everywhere; p95 by iris in dev and prod-eu
    extra = '\n[environments.prod.monitoring]\nleak_metric = "p99_ms"\n'
    text = CONFIG.replace(
        "[services.wine.monitoring]\n", '[services.wine.monitoring]\nleak_metric = "p99_ms"\n'
    )
    rules = compile_rules(_config(text + extra))
    records = {r.record: r.expr for r in rules.groups[1].rules if isinstance(r, RecordingRule)}
    # one set of matchers per group of environments that hold the same services
    assert records["relman:latency_seconds:p99_median10m"] == (
        'quantile_over_time(0.5, relman:latency_seconds:p99_rate1m{service=~"iris|wine", '
        'env="prod"}[10m])\nor quantile_over_time(0.5, relman:latency_seconds:p99_rate1m'
        '{service="wine", env=~"dev|prod-eu"}[10m])'
    )
    assert records["relman:latency_seconds:p95_median10m"] == (
        "quantile_over_time(0.5, relman:latency_seconds:p95_rate1m"
        '{service="iris", env=~"dev|prod-eu"}[10m])'
    )
    lags = [
        r.expr
        for r in rules.groups[1].rules
        if isinstance(r, RecordingRule) and r.record == "relman:latency_seconds:p99_daily_lags"
    ]
    assert lags[0] == (
        'relman:latency_seconds:p99_median10m{service=~"iris|wine", env="prod"} offset 23h55m'
        '\nor relman:latency_seconds:p99_median10m{service="wine", env=~"dev|prod-eu"} '
        "offset 23h55m"
    )
    assert "p99_weekly" not in "".join(records) and "p95_weekly" not in "".join(records)


def test_series_recorded_in_the_group_are_read_at_this_instant() -> None:
    """Every read of a series a rule of the same group recorded at this evaluation goes
    through this_instant (1 ms window), after the rule that records it; the others (the
    baselines recorded once a minute in the other group, ALERTS, up) are read as they are."""
    rules = compile_rules(_config())
    main, baselines = rules.groups
    recorded: set[str] = set()
    reads = 0
    for rule in main.rules:
        for name in {r.record for r in main.rules if isinstance(r, RecordingRule)}:
            plain = re.findall(
                rf"(last_over_time\()?{re.escape(name)}(\{{[^}}]*\}})?(\[1ms\]\))?", rule.expr
            )
            for opened, _, closed in plain:
                reads += 1
                assert opened and closed, (name, rule.expr)
                assert name in recorded, f"{name} read before it is recorded: {rule.expr}"
        if isinstance(rule, RecordingRule):
            recorded.add(rule.record)
    # requests 1, errors 2, ratio 2, quantiles 3; p99, error rate, regression (2) each pair
    assert reads >= 8 + 4 * 3
    levels = {r.record for r in baselines.rules if isinstance(r, RecordingRule)}
    regression = _alert(rules, "wine", "prod", "latency_regression")
    assert "relman:latency_seconds:p95_daily{" in regression.expr
    assert "last_over_time(relman:latency_seconds:p95_daily" not in regression.expr
    assert "relman:latency_seconds:p95_daily" in levels
    assert prom_rules.this_instant("x") == "last_over_time(x[1ms])"


def test_yaml_reads_back_as_the_rules() -> None:
    rules = compile_rules(_config())
    text = render(rules)
    document = yaml.safe_load(text)
    assert [g["name"] for g in document["groups"]] == [g.name for g in rules.groups]
    for group, compiled in zip(document["groups"], rules.groups, strict=True):
        for rule, source in zip(group["rules"], compiled.rules, strict=True):
            assert rule["expr"] == source.expr
            if isinstance(source, AlertingRule):
                assert rule["alert"] == source.alert
                assert rule["for"] == f"{source.for_minutes}m"
                assert rule["keep_firing_for"] == f"{source.keep_firing_minutes}m"
                assert rule["labels"] == source.labels
                assert rule["annotations"] == source.annotations
            else:
                assert rule["record"] == source.record
                assert rule.get("labels", {}) == dict(source.labels)
    assert document["groups"][1]["interval"] == "1m"
    assert "interval" not in document["groups"][0]
    header = text[: text.index("groups:")]
    assert all(line.startswith("#") for line in header.splitlines())
    assert "Left to relman's collector" in header and "latency_trend" in header


# -------------------------------------------------------------------------- the command


@pytest.fixture
def project(tmp_path: Path) -> Path:
    root = tmp_path / "shop"
    root.mkdir()
    (root / "relman.toml").write_text(CONFIG)
    return root


def test_export_to_stdout(project: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert run(["--project", str(project), "policy", "export", "--format", "prometheus"]) == 0
    printed = capsys.readouterr().out
    assert printed == render(compile_rules(_config()))


def test_export_out_file_and_json(project: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = project / "rules" / "relman.yml"
    out.parent.mkdir()
    out.write_text("old")
    argv = ["--project", str(project), "--json", "policy", "export", "--format", "prometheus"]
    assert run([*argv, "--out", str(out)]) == 0
    document: dict[str, Any] = json.loads(capsys.readouterr().out)
    assert document["ok"] is True and document["path"] == str(out)
    # 8 per minute, the 10-minute median, 7 earlier days and their median
    assert (document["recording"], document["alerting"]) == (17, 24)
    assert document["rules"] == 41 and document["groups"] == 2
    assert "text" not in document
    assert document["pairs"][0] == {
        "service": "iris",
        "env": "dev",
        "exported": ["latency_p99", "error_rate", "latency_regression", "down"],
        "approximated": ["latency_regression", "down"],
        "left_to_collector": [
            "latency_trend",
            "latency_leak",
            "error_leak",
            "drift",
            "performance",
        ],
    }
    assert out.read_text() == render(compile_rules(_config()))
    assert sorted(p.name for p in out.parent.iterdir()) == ["relman.yml"]  # no temporary left
    # without --out the document holds the text
    assert run(argv) == 0
    assert json.loads(capsys.readouterr().out)["text"] == out.read_text()


def test_human_line_after_writing(project: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = project / "relman-rules.yml"
    argv = ["--project", str(project), "policy", "export", "--format", "prometheus"]
    assert run([*argv, "--out", str(out)]) == 0
    assert capsys.readouterr().out.splitlines() == [
        f"wrote 41 rules to {out}: 24 alerting, 17 recording, for 6 service/environment pair(s)",
        "approximated: down, latency_regression (docs/prometheus.md)",
        f"check it: promtool check rules {out}",
    ]


@pytest.mark.parametrize("json_mode", [False, True])
def test_other_format_is_one_line_exit_2(
    project: Path, json_mode: bool, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ["--project", str(project), *(["--json"] if json_mode else [])]
    assert run([*argv, "policy", "export", "--format", "yaml"]) == 2
    captured = capsys.readouterr()
    line = "policy export: unknown format 'yaml'; the one format is prometheus"
    assert captured.err.splitlines() == [f"relman: {line}"]
    if json_mode:
        assert json.loads(captured.out) == {"ok": False, "error": line, "exit_code": 2}
    else:
        assert captured.out == ""


def test_unwritable_out_is_one_line_exit_2(
    project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ["--project", str(project), "policy", "export", "--format", "prometheus"]
    assert run([*argv, "--out", str(project)]) == 2
    assert capsys.readouterr().err.splitlines() == [
        f"relman: policy export: {project} is a folder; name a file with --out"
    ]
    assert run([*argv, "--out", str(project / "missing" / "rules.yml")]) == 2
    (line,) = capsys.readouterr().err.splitlines()
    assert line.startswith(f"relman: policy export: cannot write {project / 'missing'}")
