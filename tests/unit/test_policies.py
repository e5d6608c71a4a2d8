"""Monitoring policies: the cascade built-in -> [monitoring] -> assigned templates ->
environment -> service, conditional values, glob matches, and the layer named for each value."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from string import Template
from typing import Any

import pytest

from core.alerts import alerting, policies
from core.alerts.alerting import DEFAULTS as BUILTIN
from core.alerts.policies import builtin_defaults, effective_policy, explain, resolve
from core.config.model import Project, RelmanConfig, parse_config
from core.errors import UsageError

BASE = """\
[project]
name = "shop"

[services.iris]
bento = "service:Iris"
model = ["iris-model"]

[services.wine]
bento = "service:Wine"
model = ["wine-model"]

[environments.dev]
port = 3100

[environments.prod]
port = 3102

[environments.prod-eu]
port = 3103
"""

ROOT = Path(__file__).resolve().parents[2]


def _config(extra: str = "") -> RelmanConfig:
    return parse_config(BASE + extra, Path("relman.toml"))


def _project(extra: str = "") -> Project:
    return Project(root=Path("."), config_path=Path("relman.toml"), config=_config(extra))


def test_builtin_only_and_one_type_per_parameter() -> None:
    policy = resolve(_config(), "iris", "dev")
    assert set(policy.sources.values()) == {"built-in"}
    assert policy.values["latency_p99_ms"] == 500.0
    assert isinstance(policy.values["latency_p99_ms"], float)
    assert isinstance(policy.values["latency_for_minutes"], int)
    assert policy.values["scrape_interval"] == 5.0
    assert policy.values["webhook"] is None
    assert policy.values["leak_metric"] == "p95_ms"
    assert set(policy.values) == set(BUILTIN) | set(policies.COLLECTION_KEYS) | set(
        policies.ACTION_DEFAULTS
    )
    assert policy.layers[0] == "built-in"
    assert builtin_defaults() == policy.values


CASCADE = """
[environments.prod.monitoring]
error_rate_max = 0.03
cooldown_minutes = 10

[services.iris.monitoring]
cooldown_minutes = 15

[monitoring]
scrape_interval = 2.0
latency_p99_ms = 900
error_rate_max = 0.1
drift_psi_max = 0.3

[monitoring.templates.strict]
latency_p99_ms = 400
error_rate_max = 0.02
drift_psi_max = 0.1

[monitoring.templates.loose]
drift_psi_max = 0.25

[[monitoring.assign]]
match = { env = "prod" }
templates = ["strict", "loose"]
"""


def test_cascade_order_and_sources() -> None:
    policy = resolve(_config(CASCADE), "iris", "prod")
    assert policy.values["scrape_interval"] == 2.0
    assert policy.sources["scrape_interval"] == "[monitoring]"
    assert policy.values["latency_p99_ms"] == 400
    assert policy.sources["latency_p99_ms"] == "assign #1 -> template strict"
    # templates of one rule apply in the order listed
    assert policy.values["drift_psi_max"] == 0.25
    assert policy.sources["drift_psi_max"] == "assign #1 -> template loose"
    assert policy.values["error_rate_max"] == 0.03
    assert policy.sources["error_rate_max"] == "[environments.prod.monitoring]"
    assert policy.values["cooldown_minutes"] == 15
    assert policy.sources["cooldown_minutes"] == "[services.iris.monitoring]"
    assert policy.sources["leak_k"] == "built-in"
    assert policy.layers == [
        "built-in",
        "[monitoring]",
        "assign #1 -> template strict",
        "assign #1 -> template loose",
        "[environments.prod.monitoring]",
        "[services.iris.monitoring]",
    ]
    # the rule does not match dev: only [monitoring] applies there
    dev = resolve(_config(CASCADE), "iris", "dev")
    assert dev.values["latency_p99_ms"] == 900
    assert dev.sources["latency_p99_ms"] == "[monitoring]"


def test_later_assign_rule_overrides_earlier() -> None:
    extra = """
[monitoring.templates.a]
leak_k = 1.0
[monitoring.templates.b]
leak_k = 2.0
[[monitoring.assign]]
match = { env = "prod" }
templates = ["b"]
[[monitoring.assign]]
match = {}
templates = ["a"]
"""
    policy = resolve(_config(extra), "wine", "prod")
    assert policy.values["leak_k"] == 1.0
    assert policy.sources["leak_k"] == "assign #2 -> template a"


CONDITIONAL = """
[monitoring.templates.strict]
latency_p99_ms = 400

[[monitoring.templates.strict.when]]
match = { env = "prod*" }
latency_p99_ms = 300
latency_for_minutes = 1

[[monitoring.templates.strict.when]]
match = { env = "prod-eu", service = "iris" }
latency_p99_ms = 250

[[monitoring.assign]]
match = { service = "*" }
templates = ["strict"]

[environments.prod-eu.monitoring]
latency_for_minutes = 3

[services.wine.monitoring]
error_for_minutes = 4

[[services.wine.monitoring.when]]
match = { env = ["dev", "prod"] }
error_for_minutes = 5

[[services.wine.monitoring.when]]
match = { target = "local", env = "dev" }
down_for_minutes = 3
"""


def test_conditional_values_and_glob_matches() -> None:
    config = _config(CONDITIONAL)
    dev = resolve(config, "iris", "dev")
    assert dev.values["latency_p99_ms"] == 400
    assert dev.sources["latency_p99_ms"] == "assign #1 -> template strict"
    prod = resolve(config, "iris", "prod")
    assert prod.values["latency_p99_ms"] == 300
    assert prod.sources["latency_p99_ms"] == "assign #1 -> template strict (when env=prod*)"
    assert prod.values["latency_for_minutes"] == 1
    eu = resolve(config, "iris", "prod-eu")
    assert eu.values["latency_p99_ms"] == 250
    assert eu.sources["latency_p99_ms"] == (
        "assign #1 -> template strict (when service=iris, env=prod-eu)"
    )
    # a conditional value overrides its own layer, never a higher one
    assert eu.values["latency_for_minutes"] == 3
    assert eu.sources["latency_for_minutes"] == "[environments.prod-eu.monitoring]"
    assert resolve(config, "wine", "prod-eu").values["latency_p99_ms"] == 300
    wine_prod = resolve(config, "wine", "prod")
    assert wine_prod.values["error_for_minutes"] == 5
    assert wine_prod.sources["error_for_minutes"] == (
        "[services.wine.monitoring] (when env=dev|prod)"
    )
    assert wine_prod.sources["down_for_minutes"] == "built-in"
    assert resolve(config, "wine", "prod-eu").values["error_for_minutes"] == 4
    wine_dev = resolve(config, "wine", "dev")
    assert wine_dev.values["down_for_minutes"] == 3
    assert wine_dev.sources["down_for_minutes"] == (
        "[services.wine.monitoring] (when env=dev, target=local)"
    )


def test_new_unnamed_service_is_picked_up_by_an_assign_rule() -> None:
    rules = """
[monitoring.templates.strict]
error_rate_max = 0.01

[[monitoring.assign]]
match = { env = "prod*" }
templates = ["strict"]
"""
    text = BASE.replace(
        "[environments.dev]",
        '[services.cart]\nbento = "svc:Cart"\nmodel = ["m"]\n\n[environments.dev]',
    )
    config = parse_config(text + rules, Path("relman.toml"))
    for env in ("prod", "prod-eu"):
        policy = resolve(config, "cart", env)
        assert policy.values["error_rate_max"] == 0.01
        assert policy.sources["error_rate_max"] == "assign #1 -> template strict"
    assert resolve(config, "cart", "dev").sources["error_rate_max"] == "built-in"


def test_effective_policy_and_explain_document() -> None:
    project = _project(CASCADE)
    assert effective_policy(project, "iris", "prod").values["cooldown_minutes"] == 15
    document = explain(project, "iris", "prod")
    json.dumps(document)
    assert document["ok"] is True
    assert (document["service"], document["env"]) == ("iris", "prod")
    names = [row["name"] for row in document["parameters"]]
    assert names[:4] == list(policies.COLLECTION_KEYS)
    assert len(names) == len(set(names)) == len(BUILTIN) + 4 + len(policies.ACTION_DEFAULTS)
    row = next(row for row in document["parameters"] if row["name"] == "cooldown_minutes")
    assert row == {
        "name": "cooldown_minutes",
        "value": 15,
        "source": "[services.iris.monitoring]",
        "description": alerting.DESCRIPTIONS["cooldown_minutes"],
    }
    assert all(row["description"] for row in document["parameters"])  # every one explained


def test_undeclared_service_or_env_is_a_usage_error() -> None:
    with pytest.raises(UsageError, match="no service 'nope'"):
        effective_policy(_project(), "nope", "prod")
    with pytest.raises(UsageError, match="no environment 'staging'"):
        effective_policy(_project(), "iris", "staging")


def test_demo_template_loads_with_its_policy_example() -> None:
    source = (ROOT / "core" / "scaffold" / "demo_template" / "relman.toml.tmpl").read_text(
        encoding="utf-8"
    )
    text = Template(source).substitute(dev_port="3000", staging_port="3001", prod_port="3002")
    config = parse_config(text, Path("relman.toml"))
    prod = resolve(config, "iris", "prod")
    assert prod.values["latency_p99_ms"] == 250
    assert prod.sources["latency_p99_ms"] == "assign #1 -> template latency (when env=prod)"
    staging = resolve(config, "iris", "staging")
    assert staging.values["latency_p99_ms"] == 400
    assert resolve(config, "iris", "dev").sources["latency_p99_ms"] == "built-in"


# ------------------------------------------------------------------------ the verb module


def test_explain_table_is_aligned() -> None:
    from tui.commands.policy import explain_lines

    lines = explain_lines(explain(_project(CASCADE), "iris", "prod"))
    assert lines[0] == "iris in prod:"
    header, *rows = lines[1:]
    value_at = header.index("value")
    source_at = header.index("set by")
    for row in rows:
        assert row[value_at - 1] == " " and row[value_at] != " "
        assert row[source_at - 1] == " " and row[source_at] != " "
    assert any(r.split()[:3] == ["webhook", "—", "built-in"] for r in rows)
    assert any(r.split()[:2] == ["latency_p99_ms", "400"] for r in rows)


@pytest.mark.parametrize(
    "argv", [["policy", "explain", "iris", "prod", "--json"], ["policy", "explain", "iris", "prod"]]
)
def test_explain_verb(
    argv: list[str], monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from core import api
    from tui import output
    from tui.commands import policy as verb

    project = _project(CASCADE)
    monkeypatch.setattr(api, "load_project", lambda _dir: project)
    monkeypatch.setattr(api, "policy_explain", explain, raising=False)
    monkeypatch.setattr(output, "_STDOUT", __import__("sys").stdout)
    parser = argparse.ArgumentParser(prog="relman")
    parser.add_argument("--project")
    parser.add_argument("--json", action="store_true")
    verb.add_parsers(parser.add_subparsers(dest="verb"))
    args: Any = parser.parse_args(argv)
    assert args.handler(args) == 0
    printed = capsys.readouterr().out
    if "--json" in argv:
        assert json.loads(printed)["parameters"][0]["name"] == "scrape_interval"
    else:
        assert "set by" in printed and "[services.iris.monitoring]" in printed
    # a global --json before the verb is not reset by the verb's own flag
    assert parser.parse_args(["--json", *argv[:4]]).json is True


def test_builtin_layer_is_core_alerting_defaults(monkeypatch: pytest.MonkeyPatch) -> None:
    from core.alerts import alerting

    monkeypatch.setitem(alerting.DEFAULTS, "latency_p99_ms", 700)
    policy = resolve(_config(), "iris", "dev")
    assert policy.values["latency_p99_ms"] == 700.0
    assert policy.sources["latency_p99_ms"] == "built-in"
