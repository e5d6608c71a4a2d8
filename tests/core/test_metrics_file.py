"""Reading DVC metrics files: formats, flattening, and errors that point at file and line."""

from __future__ import annotations

from pathlib import Path

import pytest

from core.errors import ConfigError
from core.lineage.metrics_file import (
    find_metric,
    flatten_metrics,
    load_metrics_file,
    read_metrics_file,
)


def write(folder: Path, name: str, text: str) -> Path:
    path = folder / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def test_json_nested_keys_are_flattened_with_dots(tmp_path: Path) -> None:
    path = write(tmp_path, "metrics.json", '{"accuracy": 0.95, "loss": {"train": 0.1, "n": 3}}')
    assert read_metrics_file(path) == {"accuracy": 0.95, "loss.train": 0.1, "loss.n": 3.0}


def test_yaml_is_read_and_only_numbers_are_metrics(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "eval/metrics.yaml",
        "accuracy: 0.9\nmodel: rf\ncalibrated: true\nper_class:\n  setosa: 1\n  virginica: 0.8\n"
        "classes: [a, b]\n",
    )
    assert read_metrics_file(path) == {
        "accuracy": 0.9,
        "per_class.setosa": 1.0,
        "per_class.virginica": 0.8,
    }
    # Every leaf stays available to a caller that must say why a value is not a number.
    assert load_metrics_file(path)["model"] == "rf"
    assert load_metrics_file(path)["calibrated"] is True


def test_toml_is_read(tmp_path: Path) -> None:
    path = write(tmp_path, "metrics.toml", "accuracy = 0.9\n[latency]\np95_ms = 38\n")
    assert read_metrics_file(path) == {"accuracy": 0.9, "latency.p95_ms": 38.0}


def test_empty_yaml_file_holds_no_metrics(tmp_path: Path) -> None:
    assert read_metrics_file(write(tmp_path, "metrics.yaml", "")) == {}


def test_invalid_json_names_file_line_and_reason(tmp_path: Path) -> None:
    path = write(tmp_path, "metrics.json", '{\n  "accuracy": 0.95\n  "f1_macro": 0.93\n}\n')
    with pytest.raises(ConfigError) as caught:
        read_metrics_file(path, root=tmp_path)
    assert str(caught.value) == "metrics.json:3: not valid JSON: Expecting ',' delimiter"
    assert caught.value.exit_code == 2


def test_invalid_yaml_names_file_and_line(tmp_path: Path) -> None:
    path = write(tmp_path, "eval/metrics.yaml", "accuracy: 0.9\nf1: [0.8\nloss: 0.2\n")
    with pytest.raises(ConfigError) as caught:
        read_metrics_file(path, root=tmp_path)
    assert str(caught.value) == (
        "eval/metrics.yaml:3: not valid YAML: expected ',' or ']', but got ':'"
    )


def test_invalid_toml_names_file_and_line(tmp_path: Path) -> None:
    path = write(tmp_path, "metrics.toml", "accuracy = 0.9\nf1 0.8\n")
    with pytest.raises(ConfigError) as caught:
        read_metrics_file(path, root=tmp_path)
    assert str(caught.value).startswith("metrics.toml:2: not valid TOML: ")


def test_top_level_must_be_key_value_pairs(tmp_path: Path) -> None:
    path = write(tmp_path, "metrics.json", "[0.9, 0.8]")
    with pytest.raises(ConfigError) as caught:
        read_metrics_file(path, root=tmp_path)
    assert str(caught.value) == (
        "metrics.json: not a metrics file: expected key: value pairs at the top level, found a list"
    )


def test_missing_file_says_how_to_produce_it(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as caught:
        read_metrics_file(tmp_path / "metrics.json", root=tmp_path)
    assert str(caught.value) == (
        "metrics.json: metrics file not found; run 'dvc repro' (or 'dvc pull') to produce it"
    )


def test_flatten_leaves_flat_input_alone() -> None:
    assert flatten_metrics({"loss.train": 0.1, "acc": 1}) == {"loss.train": 0.1, "acc": 1}


# ------------------------------------------------------------------------------ find_metric


def test_find_metric_in_any_file_and_in_nested_keys() -> None:
    metrics = {"metrics.json": {"accuracy": 0.95}, "eval.json": {"loss": {"train": 0.1}}}
    assert find_metric(metrics, "loss.train", file=None, owner="gate g") == ("eval.json", 0.1)
    assert find_metric(metrics, "accuracy", file="./metrics.json", owner="gate g") == (
        "metrics.json",
        0.95,
    )


def test_find_metric_in_two_files_asks_which() -> None:
    metrics = {"a.json": {"accuracy": 0.95}, "b.json": {"accuracy": 0.9}}
    with pytest.raises(ConfigError) as caught:
        find_metric(metrics, "accuracy", file=None, owner="gate g")
    assert str(caught.value) == (
        "gate g: metric 'accuracy' is in a.json and b.json; say which with file = ..."
    )
    assert find_metric(metrics, "accuracy", file="b.json", owner="gate g") == ("b.json", 0.9)


def test_find_metric_in_a_file_the_release_lacks() -> None:
    with pytest.raises(ConfigError) as caught:
        find_metric({"metrics.json": {"a": 1}}, "a", file="eval.json", owner="gate g")
    assert str(caught.value) == (
        "gate g: file 'eval.json' is not a metrics file of the release (has: metrics.json)"
    )


def test_find_metric_without_any_metrics_file() -> None:
    with pytest.raises(ConfigError) as caught:
        find_metric({}, "accuracy", file=None, owner="gate g")
    assert str(caught.value) == (
        "gate g: metric 'accuracy' not found: the release has no metrics files "
        "(declare one under metrics: in dvc.yaml)"
    )
