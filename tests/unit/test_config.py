"""relman.toml: valid configs load; each kind of invalid one gives one line naming the file,
the line and the key."""

from __future__ import annotations

from pathlib import Path

import pytest

from core.config.lines import key_lines
from core.config.model import find_config, load_config, load_project, parse_config
from core.errors import ConfigError

VALID = """\
[project]
name = "shop"

[services.shop]
bento = "service:Shop"
model = ["shop-model"]
data = ["shop-data"]
sample_request = "sample.json"

[environments.dev]
port = 3100
suites = ["unit"]
gates = ["accuracy-floor"]

[environments.staging]
port = 3101

[environments.prod]
port = 3102
approvals = 1

[suites.unit]
paths = ["tests/unit"]
timeout = 60
env = { PYTHONHASHSEED = "0" }

[gates.accuracy-floor]
metric = "accuracy"
min = 0.9
"""


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "relman.toml"
    path.write_text(text)
    return path


def _error(tmp_path: Path, text: str, monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ConfigError) as info:
        load_config(_write(tmp_path, text))
    message = str(info.value)
    assert "\n" not in message
    assert info.value.exit_code == 2
    return message


def test_valid_config_loads_in_promotion_order(tmp_path: Path) -> None:
    config = load_config(_write(tmp_path, VALID))
    assert config.environment_order == ["dev", "staging", "prod"]
    assert config.environments["prod"].approvals == 1
    assert config.environments["dev"].host == "127.0.0.1"
    assert config.suites["unit"].env == {"PYTHONHASHSEED": "0"}
    assert config.suites["unit"].timeout == 60
    assert config.services["shop"].endpoint == "predict"
    assert config.gates["accuracy-floor"].min == 0.9


def test_default_environments_when_none_declared(tmp_path: Path) -> None:
    text = '[project]\nname = "p"\n[services.s]\nbento = "svc:S"\nmodel = ["m"]\n'
    config = load_config(_write(tmp_path, text))
    assert config.environment_order == ["dev", "staging", "prod"]
    assert config.environments["prod"].approvals == 1


def test_unknown_key_names_file_line_key_and_table(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    text = VALID.replace("approvals = 1", "approvals = 1\nbogus_setting = true")
    line = text.splitlines().index("bogus_setting = true") + 1
    message = _error(tmp_path, text, monkeypatch)
    assert message == f"relman.toml:{line}: unknown key 'bogus_setting' in [environments.prod]"


def test_unknown_top_level_table(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    message = _error(tmp_path, VALID + "\n[deploy]\nx = 1\n", monkeypatch)
    line = (VALID + "\n[deploy]\nx = 1\n").splitlines().index("[deploy]") + 1
    assert message == f"relman.toml:{line}: unknown key 'deploy' in the top level"


def test_wrong_type_names_key_and_value(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    text = VALID.replace("port = 3101", 'port = "eighty"')
    line = text.splitlines().index('port = "eighty"') + 1
    message = _error(tmp_path, text, monkeypatch)
    assert message.startswith(f"relman.toml:{line}: bad value for 'port' in [environments.staging]")
    assert "'eighty'" in message


def test_out_of_range_port(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    message = _error(tmp_path, VALID.replace("port = 3102", "port = 70000"), monkeypatch)
    assert "'port' in [environments.prod]" in message
    assert "70000" in message


def test_missing_required_key_points_at_its_table(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    text = VALID.replace('model = ["shop-model"]\n', "")
    line = text.splitlines().index("[services.shop]") + 1
    message = _error(tmp_path, text, monkeypatch)
    assert message == f"relman.toml:{line}: missing key 'model' in [services.shop]"


def test_invalid_toml_names_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    text = VALID.replace("approvals = 1", "approvals = = 1")
    line = text.splitlines().index("approvals = = 1") + 1
    message = _error(tmp_path, text, monkeypatch)
    assert message.startswith(f"relman.toml:{line}: invalid TOML: ")


def test_environment_naming_an_undeclared_suite(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    text = VALID.replace('suites = ["unit"]', 'suites = ["unit", "smoke"]')
    line = text.splitlines().index('suites = ["unit", "smoke"]') + 1
    message = _error(tmp_path, text, monkeypatch)
    assert message.startswith(f"relman.toml:{line}: [environments.dev] suites names 'smoke'")
    assert "unit" in message


def test_two_environments_on_one_port(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    message = _error(tmp_path, VALID.replace("port = 3101", "port = 3100"), monkeypatch)
    assert "port 3100 is already used by [environments.dev]" in message


def test_bad_name(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    text = VALID.replace("[suites.unit]", "[suites.Unit]")
    message = _error(tmp_path, text, monkeypatch)
    line = _line_of(text, "[suites.Unit]")
    assert message.startswith(f"relman.toml:{line}: bad name [suites.Unit]: name 'Unit' must ")


def test_a_name_must_end_as_a_gto_stage_does(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Environments become GTO stages (``NAME#STAGE#N``), which end in a letter or digit."""
    text = VALID.replace("[environments.prod]", "[environments.prod-]")
    message = _error(tmp_path, text, monkeypatch)
    line = _line_of(text, "[environments.prod-]")
    assert message.startswith(f"relman.toml:{line}: bad name [environments.prod-]: ")
    assert "end with a letter or digit" in message


def test_several_problems_are_counted(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    text = VALID.replace("approvals = 1", "approvals = 1\nbogus = 1\nother = 2")
    message = _error(tmp_path, text, monkeypatch)
    assert message.endswith("(and 1 more problem)")


def test_find_config_walks_upward(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _write(tmp_path, VALID)
    deep = tmp_path / "a" / "b"
    deep.mkdir(parents=True)
    monkeypatch.chdir(deep)
    assert find_config() == tmp_path / "relman.toml"
    assert load_project().root == tmp_path.resolve()


def test_no_config_anywhere(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ConfigError, match=r"no relman.toml in .* or any folder above it"):
        load_project()


def test_project_dir_without_config(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"relman\.toml: not found"):
        load_project(tmp_path)
    with pytest.raises(ConfigError, match="no such folder"):
        load_project(tmp_path / "missing")


def test_not_utf8(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "relman.toml"
    path.write_bytes(b"\xff\xfe[project]")
    with pytest.raises(ConfigError, match="not UTF-8"):
        load_config(path)


def test_parse_config_does_not_touch_disk(tmp_path: Path) -> None:
    config = parse_config(VALID, tmp_path / "nowhere" / "relman.toml")
    assert config.project.name == "shop"


# ------------------------------------------------------------------- monitoring policies

POLICIES = """
[environments.prod.monitoring]
cooldown_minutes = 10

[services.shop.monitoring]
drift_psi_max = 0.3

[[services.shop.monitoring.when]]
match = { env = "prod" }
drift_psi_max = 0.25

[monitoring]
scrape_interval = 2.0
webhook = "http://127.0.0.1:9000/hook"

[monitoring.templates.strict]
latency_p99_ms = 400
leak_metric = "p99_ms"

[[monitoring.templates.strict.when]]
match = { env = "prod*", target = "local" }
latency_p99_ms = 300

[monitoring.templates.quiet]
cooldown_minutes = 30

[[monitoring.assign]]
match = { env = "prod" }
templates = ["strict"]

[[monitoring.assign]]
match = { service = "shop*", env = ["dev", "staging"] }
templates = ["strict", "quiet"]
"""


def test_monitoring_policy_keys_load(tmp_path: Path) -> None:
    config = load_config(_write(tmp_path, VALID + POLICIES))
    monitoring = config.monitoring
    assert monitoring.scrape_interval == 2.0
    assert monitoring.raw_retention_hours == 6.0
    assert monitoring.parameters() == {
        "scrape_interval": 2.0,
        "webhook": "http://127.0.0.1:9000/hook",
    }
    assert monitoring.templates["strict"].when[0].parameters() == {"latency_p99_ms": 300.0}
    assert monitoring.templates["strict"].when[0].match.patterns() == {
        "env": ["prod*"],
        "target": ["local"],
    }
    assert monitoring.assign[1].templates == ["strict", "quiet"]
    assert config.environments["prod"].monitoring.parameters() == {"cooldown_minutes": 10}
    assert config.services["shop"].monitoring.when[0].match.env == "prod"
    assert config.environments["dev"].monitoring.parameters() == {}


def test_monitoring_defaults_without_a_monitoring_table(tmp_path: Path) -> None:
    config = load_config(_write(tmp_path, VALID))
    assert config.monitoring.scrape_interval == 5.0
    assert config.monitoring.templates == {}
    assert config.monitoring.assign == []


def _line_of(text: str, needle: str, occurrence: int = 1) -> int:
    numbers = [n for n, line in enumerate(text.splitlines(), start=1) if needle in line]
    return numbers[occurrence - 1]


@pytest.mark.parametrize(
    ("old", "new", "expected"),
    [
        (
            "latency_p99_ms = 400",
            "latency_p99 = 400",
            "unknown key 'latency_p99' in [monitoring.templates.strict]",
        ),
        (
            "latency_p99_ms = 300",
            'latency_p99_ms = "300"',
            "bad value for 'latency_p99_ms' in [[monitoring.templates.strict.when]] #1: "
            "input should be a valid number (got '300')",
        ),
        (
            "cooldown_minutes = 10",
            "cooldown_minutes = 2.5",
            "bad value for 'cooldown_minutes' in [environments.prod.monitoring]: "
            "input should be a valid integer (got 2.5)",
        ),
        (
            "drift_psi_max = 0.25",
            "drift_psi_max = true",
            "bad value for 'drift_psi_max' in [[services.shop.monitoring.when]] #1: "
            "input should be a valid number (got True)",
        ),
        (
            'leak_metric = "p99_ms"',
            'leak_metric = "p42_ms"',
            "bad value for 'leak_metric' in [monitoring.templates.strict]",
        ),
        (
            'webhook = "http://127.0.0.1:9000/hook"',
            'webhook = "127.0.0.1:9000"',
            "bad value for 'webhook' in [monitoring]",
        ),
        (
            "scrape_interval = 2.0",
            "scrape_interval = 0",
            "bad value for 'scrape_interval' in [monitoring]",
        ),
        (
            "cooldown_minutes = 30",
            "cooldown_minutes = 30\nwhen = 3",
            "bad value for 'when' in [monitoring.templates.quiet]",
        ),
    ],
)
def test_bad_monitoring_parameter_names_line_and_key(
    old: str, new: str, expected: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    text = VALID + POLICIES.replace(old, new)
    line = _line_of(text, new.splitlines()[-1])
    message = _error(tmp_path, text, monkeypatch)
    assert message.startswith(f"relman.toml:{line}: {expected}")


def test_unknown_key_in_second_assign_rule_points_at_that_rule(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    text = VALID + POLICIES.replace(
        'templates = ["strict", "quiet"]', 'templates = ["strict", "quiet"]\npriority = 1'
    )
    message = _error(tmp_path, text, monkeypatch)
    line = _line_of(text, "priority = 1")
    assert message == f"relman.toml:{line}: unknown key 'priority' in [[monitoring.assign]] #2"


def test_conditional_without_match_points_at_its_table(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    text = VALID + POLICIES.replace('match = { env = "prod" }\ndrift_psi_max', "drift_psi_max")
    message = _error(tmp_path, text, monkeypatch)
    line = _line_of(text, "[[services.shop.monitoring.when]]")
    assert message == (
        f"relman.toml:{line}: missing key 'match' in [[services.shop.monitoring.when]] #1"
    )


def test_unknown_match_key(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    text = VALID + POLICIES.replace('match = { env = "prod" }', 'match = { stage = "prod" }')
    message = _error(tmp_path, text, monkeypatch)
    line = _line_of(text, 'match = { stage = "prod" }')
    assert message.startswith(f"relman.toml:{line}: unknown key 'stage' in ")


def test_assign_rule_naming_an_undeclared_template(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    text = VALID + POLICIES.replace('templates = ["strict", "quiet"]', 'templates = ["strcit"]')
    message = _error(tmp_path, text, monkeypatch)
    line = _line_of(text, 'templates = ["strcit"]')
    assert message == (
        f"relman.toml:{line}: [[monitoring.assign]] #2 templates names 'strcit', which is not "
        "a [monitoring.templates.*] table (quiet, strict)"
    )


@pytest.mark.parametrize(
    ("old", "new", "where"),
    [
        (
            'match = { env = "prod" }\ntemplates',
            'match = { env = "prdo" }\ntemplates',
            "[[monitoring.assign]] #1 match env = 'prdo'",
        ),
        (
            'env = "prod*", target',
            'env = "qa*", target',
            "[[monitoring.templates.strict.when]] #1 match env = 'qa*'",
        ),
        (
            'target = "local"',
            'target = "k8s"',
            "[[monitoring.templates.strict.when]] #1 match target = 'k8s'",
        ),
        (
            'env = ["dev", "staging"]',
            'env = ["dev", "stage"]',
            "[[monitoring.assign]] #2 match env = 'stage'",
        ),
    ],
)
def test_match_pattern_that_matches_no_environment(
    old: str, new: str, where: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    text = VALID + POLICIES.replace(old, new)
    message = _error(tmp_path, text, monkeypatch)
    line = _line_of(text, new.splitlines()[0])
    assert message.startswith(f"relman.toml:{line}: {where} matches no ")


def test_a_service_pattern_may_name_services_still_to_come(tmp_path: Path) -> None:
    text = VALID + POLICIES.replace('service = "shop*"', 'service = "cart*"')
    assert load_config(_write(tmp_path, text)).monitoring.assign[1].match.service == "cart*"


def test_key_lines_index_arrays_of_tables() -> None:
    text = (
        "[a]\nx = 1\n[[a.r]]\nk = 1\n[[a.r]]\nk = 2\n[[a.r.w]]\nm = { e = 1 }\n"
        "[[a.r]]\n[b]\ny = 1\n"
    )
    lines = key_lines(text)
    assert lines[("a", "r", "0", "k")] == 4
    assert lines[("a", "r", "1", "k")] == 6
    assert lines[("a", "r", "1", "w", "0", "m", "e")] == 8
    assert lines[("a", "r", "2")] == 9
    assert lines[("a", "r", "k")] == 4  # the unindexed path still names the first
    assert lines[("b", "y")] == 11


BEYOND = """
[monitoring]
source = "prometheus"
prometheus_url = "http://127.0.0.1:9090"
file_sd = ".relman/targets.json"
alertmanager_url = "http://127.0.0.1:9093"

[monitoring.labels]
env = "environment"
"""


def test_prometheus_and_alertmanager_keys_load(tmp_path: Path) -> None:
    monitoring = load_config(_write(tmp_path, VALID + BEYOND)).monitoring
    assert monitoring.source == "prometheus"
    assert monitoring.prometheus_url == "http://127.0.0.1:9090"
    assert monitoring.file_sd == ".relman/targets.json"
    assert monitoring.alertmanager_url == "http://127.0.0.1:9093"
    labels = monitoring.labels
    assert (labels.service, labels.env, labels.release) == (
        "service",
        "environment",
        "service_version",
    )
    assert monitoring.parameters() == {}  # the project's keys, no policy's
    plain = load_config(_write(tmp_path, VALID)).monitoring
    assert (plain.source, plain.prometheus_url, plain.alertmanager_url) == ("scrape", None, None)


@pytest.mark.parametrize(
    ("old", "new", "says"),
    [
        (
            'prometheus_url = "http://127.0.0.1:9090"\n',
            "",
            'source = "prometheus" needs prometheus_url',
        ),
        ('source = "prometheus"', 'source = "promql"', "source"),
        ('env = "environment"', 'env = "environment-name"', "env"),
        (
            'alertmanager_url = "http://127.0.0.1:9093"',
            'alertmanager_url = "127.0.0.1:9093"',
            "alertmanager_url",
        ),
    ],
)
def test_bad_prometheus_keys_name_their_line(
    old: str, new: str, says: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    text = VALID + BEYOND.replace(old, new)
    message = _error(tmp_path, text, monkeypatch)
    assert message.startswith("relman.toml:") and says in message


KUBERNETES = VALID.replace(
    "[environments.staging]\nport = 3101\n",
    """[environments.staging]
target = "kubernetes"
ready_timeout = 300

[environments.staging.kubernetes]
namespace = "ml-staging"
context = "ci"
image_registry = "ghcr.io/acme"
replicas = 2
resources = { cpu = "500m", memory = "1Gi" }
url = "https://shop.staging.example.com"
""",
)


def test_a_kubernetes_environment_loads(tmp_path: Path) -> None:
    config = load_config(_write(tmp_path, KUBERNETES))
    staging = config.environments["staging"]
    assert staging.target == "kubernetes" and staging.port is None and staging.served
    assert staging.kubernetes is not None
    assert (staging.kubernetes.namespace, staging.kubernetes.context) == ("ml-staging", "ci")
    assert staging.kubernetes.replicas == 2 and staging.kubernetes.strategy == "blue-green"
    assert staging.kubernetes.resources.memory == "1Gi"
    assert staging.url == "https://shop.staging.example.com"
    assert config.environments["dev"].kubernetes is None


@pytest.mark.parametrize(
    ("old", "new", "expected"),
    [
        (
            'namespace = "ml-staging"\n',
            "",
            "relman.toml:19: missing key 'namespace' in [environments.staging.kubernetes]",
        ),
        (
            'namespace = "ml-staging"',
            'namespace = "ML_Staging"',
            "relman.toml:20: bad value for 'namespace' in [environments.staging.kubernetes]",
        ),
        (
            "replicas = 2",
            "replicas = 2\nbogus = 1",
            "relman.toml:24: unknown key 'bogus' in [environments.staging.kubernetes]",
        ),
        (
            'memory = "1Gi"',
            'memory = "lots"',
            "relman.toml:24: bad value for 'memory' in [environments.staging.kubernetes.resources]",
        ),
        (
            "replicas = 2",
            'replicas = 2\nstrategy = "rolling"',
            "relman.toml:24: bad value for 'strategy' in [environments.staging.kubernetes]: "
            "input should be 'blue-green' (got 'rolling')",
        ),
    ],
)
def test_bad_kubernetes_keys_name_their_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, old: str, new: str, expected: str
) -> None:
    assert old in KUBERNETES
    assert _error(tmp_path, KUBERNETES.replace(old, new), monkeypatch).startswith(expected)


def test_a_kubernetes_environment_needs_its_table_and_no_port(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cut = KUBERNETES.index("[environments.staging.kubernetes]")
    no_table = KUBERNETES[:cut] + KUBERNETES[KUBERNETES.index("[environments.prod]") :]
    assert _error(tmp_path, no_table, monkeypatch) == (
        'relman.toml:16: [environments.staging] target = "kubernetes" needs a '
        '[environments.staging.kubernetes] table with at least namespace = "..." '
        "(docs/targets.md)"
    )
    with_port = KUBERNETES.replace('target = "kubernetes"', 'target = "kubernetes"\nport = 3101')
    assert _error(tmp_path, with_port, monkeypatch).startswith(
        "relman.toml:17: [environments.staging] port is the local target's; a kubernetes "
        "environment answers at its Service"
    )
    local = KUBERNETES.replace('target = "kubernetes"\n', "")
    assert _error(tmp_path, local, monkeypatch).startswith(
        'relman.toml:18: [environments.staging.kubernetes] applies to target = "kubernetes"'
    )
    canary = KUBERNETES.replace(
        "[environments.prod]",
        '[environments.staging.rollout]\nstrategy = "canary"\n\n[environments.prod]',
    )
    assert _error(tmp_path, canary, monkeypatch).startswith(
        "relman.toml:28: [environments.staging.rollout] strategy = 'canary' is not built for "
        "kubernetes environments yet"
    )
