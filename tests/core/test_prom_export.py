"""The exported Prometheus rules in Prometheus' own tools: `promtool check rules` accepts the
export of the demo and of a config with templates; `promtool test rules` evaluates the
error-rate rule's `for` and `keep_firing_for` and the regression against earlier days,
annotations expanded; a real Prometheus scraping a fake BentoML fires the exported
error-rate alert under an error burst and not under clean traffic."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from string import Template
from typing import Any

import pytest

from core.alerts.prom_rules import AlertingRule, RuleFile, compile_rules
from core.alerts.prom_yaml import render
from core.config.model import RelmanConfig, parse_config
from tests.fake_bentoml import fake_bentoml
from tests.prom_stack import (
    PROMTOOL,
    needs_prometheus,
    prometheus_config,
    promtool_check_rules,
    running_prometheus,
)
from tests.unit.test_prom_rules import CONFIG as SHOP
from tests.waiting import wait_for

pytestmark = needs_prometheus

ROOT = Path(__file__).resolve().parents[2]

# The unit tests' project (tests/unit/test_prom_rules.py: iris with a template, wine with a
# layer of its own), and apple and pear on the built-in policy alone.
CONFIG = SHOP.replace(
    "[environments.dev]",
    "".join(
        f'[services.{n}]\nbento = "service:S"\nmodel = ["{n}-model"]\n\n' for n in ("apple", "pear")
    )
    + "[environments.dev]",
)


def _config(text: str = CONFIG) -> RelmanConfig:
    return parse_config(text, Path("relman.toml"))


def _demo_config() -> RelmanConfig:
    source = (ROOT / "core/scaffold/demo_template/relman.toml.tmpl").read_text(encoding="utf-8")
    text = Template(source).substitute(dev_port="3000", staging_port="3001", prod_port="3002")
    return _config(text)


@pytest.mark.parametrize("which", ["demo", "templates"])
def test_promtool_accepts_the_export(which: str, tmp_path: Path) -> None:
    config = _demo_config() if which == "demo" else _config()
    path = tmp_path / "relman.rules.yml"
    path.write_text(render(compile_rules(config)))
    checked = promtool_check_rules(path)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    rules = compile_rules(config)
    assert f"SUCCESS: {rules.recording + rules.alerting} rules found" in checked.stdout


def _alert(rules: RuleFile, service: str, env: str, rule: str) -> AlertingRule:
    (found,) = [
        r
        for group in rules.groups
        for r in group.rules
        if isinstance(r, AlertingRule) and (r.rule, r.env) == (rule, env) and service in r.services
    ]
    return found


def _series(service: str, env: str, code: str, values: str, le: str | None = None) -> Any:
    labels = f'endpoint="/predict",http_response_code="{code}",service="{service}",env="{env}"'
    if le is None:
        return {"series": f"bentoml_service_request_total{{{labels}}}", "values": values}
    name = "bentoml_service_request_duration_seconds_bucket"
    return {"series": f'{name}{{{labels},le="{le}"}}', "values": values}


def _promtool_test(
    tmp_path: Path,
    rules: RuleFile,
    series: list[dict[str, str]],
    alert: str,
    expected: dict[int, list[dict[str, Any]]],
) -> None:
    """`promtool test rules` of the export on ``series`` (one sample a minute): at each
    minute of ``expected``, the ``alert`` alerts firing then."""
    (tmp_path / "rules.yml").write_text(render(rules))
    checks = [
        {"eval_time": f"{minute}m", "alertname": alert, "exp_alerts": alerts}
        for minute, alerts in sorted(expected.items())  # promtool reads them in time order
    ]
    _promtool(tmp_path, {"interval": "1m", "input_series": series, "alert_rule_test": checks})


def _promtool(tmp_path: Path, test: dict[str, Any], evaluation_interval: str = "1m") -> None:
    """`promtool test rules` of rules.yml in ``tmp_path`` on one ``test``: exit 0."""
    spec = {
        "rule_files": ["rules.yml"],
        "evaluation_interval": evaluation_interval,
        "tests": [test],
    }
    (tmp_path / "test.yml").write_text(json.dumps(spec))  # JSON is YAML
    done = subprocess.run(
        [PROMTOOL, "test", "rules", "test.yml"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stdout + done.stderr


def _firing(rules: RuleFile, service: str, env: str, rule: str, value: str) -> dict[str, Any]:
    """The alert promtool must see firing: the rule's labels and the series' (service, env),
    its annotations expanded (``value`` for the error rate)."""
    alert = _alert(rules, service, env, rule)
    expanded = {
        "{{ $value | humanizePercentage }}": value,
        "{{ $labels.service }}": service,
        "{{ $labels.env }}": env,
    }
    annotations = {}
    for name, text in alert.annotations.items():
        for template, shown in expanded.items():
            text = text.replace(template, shown)
        annotations[name] = text
    return {"exp_labels": {**alert.labels, "service": service}, "exp_annotations": annotations}


def test_error_rate_for_and_keep_firing_as_relman_counts_them(tmp_path: Path) -> None:
    rules = compile_rules(_config())
    # 1 request/s answered 200 for iris and wine in prod; from minute 11 to 30, 0.1/s
    # answered 500 too: 9.1% errors, above iris's 2% (its template's) and below wine's 10%
    # ([monitoring]'s).
    errors = "0x10 6+6x19 120x30"
    series = [
        _series(service, "prod", code, values)
        for service in ("iris", "wine")
        for code, values in (("200", "0+60x60"), ("500", errors))
    ]
    iris = _firing(rules, "iris", "prod", "error_rate", "9.091%")
    # pending from minute 11: firing after 4 (the template's error_for_minutes); clear from
    # minute 31: still firing (its last value) for resolve_for_minutes (2), then resolved
    expected: dict[int, list[dict[str, Any]]] = {14: [], 15: [iris], 32: [iris], 33: []}
    _promtool_test(tmp_path, rules, series, "RelmanErrorRate", expected)


def test_regression_against_yesterday_held_half_way_once_open(tmp_path: Path) -> None:
    rules = compile_rules(_config())
    # apple and pear in dev share the built-in values, and so one rule. A day of requests at
    # 2/s, every one under 50 ms (p95 47.5 ms by the buckets). From minute 1501
    # apple's all take 50-100 ms (p95 97.5 ms: x2.05, it opens); from 1512 only 9 in 120 do
    # (p95 66.7 ms: x1.40, under x1.5 but above the half-way x1.25, so it holds); from 1533
    # none, and it resolves resolve_for_minutes (2) later. pear takes the x1.40 from minute
    # 1501: never enough to open it.
    apple = "180000x10 180111+111x19 182331+120x60"
    series = [
        _series("apple", "dev", "200", f"0+120x1500 {apple}", le="0.05"),
        _series("pear", "dev", "200", "0+120x1500 180111+111x99", le="0.05"),
        *(
            _series(service, "dev", "200", "0+120x1600", le=le)
            for service in ("apple", "pear")
            for le in ("0.1", "+Inf")
        ),
    ]
    expected: dict[int, list[dict[str, Any]]] = {1503: [], 1535: []}
    for minute, shown in ((1504, "98 ms"), (1525, "67 ms"), (1534, "67 ms")):
        alert = _firing(rules, "apple", "dev", "latency_regression", "")
        line = f"p95 {shown}, x1.5 or more of its level this hour on up to 7 earlier days"
        alert["exp_annotations"]["summary"] = f"apple/dev: {line}"
        alert["exp_annotations"]["rollback"] = (
            f"relman rollback apple --env dev --reason 'latency_regression: {line}'"
        )
        expected[minute] = [alert]
    # iris's template sets none of what this rule reads: the three share it
    assert _alert(rules, "pear", "dev", "latency_regression").services == ("iris", "apple", "pear")
    _promtool_test(tmp_path, rules, series, "RelmanLatencyRegression", expected)


def test_daily_level_is_the_median_of_the_days_recorded(tmp_path: Path) -> None:
    """The baseline of the regression: each earlier day's 10-minute median read back by a
    rule of its own (label lag), their median taken; a day without history is left out."""
    rules = compile_rules(_config())
    (tmp_path / "rules.yml").write_text(render(rules))
    name = "relman:latency_seconds:p95_median10m"
    day = 144  # points of 10 minutes
    # apple's medians on four days (seconds: exact in binary, so is their median); pear's
    # history starts on the third
    series = [
        {
            "series": f'{name}{{service="apple", env="dev"}}',
            "values": " ".join(f"{v}x{day - 1}" for v in (0.25, 2, 1, 0.5)),
        },
        {
            "series": f'{name}{{service="pear", env="dev"}}',
            "values": f"_x{2 * day - 1} 0.5x{day - 1} 2x{day - 1}",
        },
    ]
    level = "relman:latency_seconds:p95_daily"
    checks = [
        {
            # day 4, 00:00: days 3, 2, 1 and 0 at 00:05 (the window's middle), 4 of 7 days
            "expr": f"{level}_lags{{service='apple'}}",
            "eval_time": "4d",
            "exp_samples": [
                {"labels": f'{level}_lags{{service="apple", env="dev", lag="{k}"}}', "value": v}
                for k, v in ((1, 0.5), (2, 1), (3, 2), (4, 0.25))
            ],
        },
        {
            "expr": level,
            "eval_time": "4d",
            "exp_samples": [
                {"labels": f'{level}{{service="apple", env="dev"}}', "value": 0.75},
                {"labels": f'{level}{{service="pear", env="dev"}}', "value": 1.25},
            ],
        },
    ]
    test = {"interval": "10m", "input_series": series, "promql_expr_test": checks}
    _promtool(tmp_path, test, evaluation_interval="10m")


LABELLED = """
[monitoring.labels]
service = "svc"
env = "stage"

[environments.dev.monitoring]
error_for_minutes = 1
"""


@pytest.mark.slow
def test_real_prometheus_fires_the_exported_error_rate_under_a_burst(tmp_path: Path) -> None:
    rules = compile_rules(_config(CONFIG + LABELLED))
    (rule_path := tmp_path / "relman.rules.yml").write_text(render(rules))
    targets = tmp_path / "targets.json"
    with fake_bentoml() as fake:
        fake.add("iris-dev")
        # BentoML's own probes failing are no error of the service's API.
        fake.add("iris-prod", probe_failures_per_second=20.0)
        labels = {
            "iris-dev": {"svc": "iris", "stage": "dev"},
            "iris-prod": {"svc": "iris", "stage": "prod"},
        }
        targets.write_text(json.dumps(fake.file_sd(labels)))
        config = prometheus_config(file_sd=[targets], rule_files=[rule_path])
        with running_prometheus(tmp_path / "prom", config) as prometheus:

            def ratios() -> dict[str, float]:
                found = prometheus.query("relman:error_ratio:rate1m")
                return {r["metric"]["stage"]: float(r["value"][1]) for r in found}

            def alerts() -> list[dict[str, Any]]:
                return list(prometheus.get("/api/v1/alerts")["data"]["alerts"])

            # Clean traffic, read through the recording rules: 0 errors, no alert.
            clean = wait_for(lambda: len(ratios()) == 2 and ratios(), "both error ratios")
            assert clean == {"dev": 0.0, "prod": 0.0}
            assert alerts() == []

            fake.set("iris-dev", errors_per_second=10.0)  # half the answers are 500s

            def dev_alert(state: str) -> dict[str, Any] | None:
                for alert in alerts():
                    if alert["labels"].get("stage") == "dev" and alert["state"] == state:
                        return alert
                return None

            pending = wait_for(lambda: dev_alert("pending"), "the error-rate alert pending")
            assert pending["labels"] == {
                "alertname": "RelmanErrorRate",
                "svc": "iris",
                "stage": "dev",
                "severity": "critical",
                "rule": "error_rate",
                "set_by": "built-in, assign #1 -> template strict, [environments.dev.monitoring]",
            }
            firing = wait_for(
                lambda: dev_alert("firing"), "the error-rate alert firing", timeout=180
            )
            summary = firing["annotations"]["summary"]
            assert summary.startswith("iris/dev: error rate ") and summary.endswith(
                "% > 2.0% for 1 min"
            )
            assert firing["annotations"]["rollback"].startswith(
                "relman rollback iris --env dev --reason 'error_rate: error rate "
            )
            # prod's probes fail all along and its API answers 200: never an alert there.
            assert [a["labels"]["stage"] for a in alerts()] == ["dev"]
            assert ratios()["prod"] == 0.0
