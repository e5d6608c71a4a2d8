"""relman.toml: valid configs load; each kind of invalid one gives one line naming the file,
the line and the key."""

from __future__ import annotations

from pathlib import Path

import pytest

from core.config import find_config, load_config, load_project, parse_config
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
    text = VALID.replace('bento = "service:Shop"\n', "")
    line = text.splitlines().index("[services.shop]") + 1
    message = _error(tmp_path, text, monkeypatch)
    assert message == f"relman.toml:{line}: missing key 'bento' in [services.shop]"


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
    message = _error(tmp_path, VALID.replace("[suites.unit]", "[suites.Unit]"), monkeypatch)
    assert "'Unit'" in message


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
