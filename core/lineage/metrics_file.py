"""Reading a DVC metrics file from disk: JSON, YAML (or TOML), nested keys flattened with '.'.

DVC writes metrics as JSON or YAML documents of nested key: value pairs; relman names a metric
by its dotted path (``{"loss": {"train": 0.1}}`` gives ``loss.train``), as ``dvc metrics show``
does. The format follows the suffix: ``.json`` is JSON, ``.toml`` TOML, anything else YAML
(which also reads JSON). A file that does not parse is a :class:`ConfigError` naming the file
and line, e.g. ``metrics.json:3: not valid JSON: Expecting ',' delimiter``.

:func:`find_metric` looks a metric up in a release's metrics ``{file: {key: value}}`` (as DVC
reports them, or as read here) and says what exists when it is not there.
"""

from __future__ import annotations

import json
import os
import re
import tomllib
from collections.abc import Mapping
from pathlib import Path, PurePosixPath
from typing import Any

import yaml

from core.errors import ConfigError

__all__ = [
    "MetricsByFile",
    "find_metric",
    "flatten_metrics",
    "load_metrics_file",
    "read_metrics_file",
    "same_file",
]

# Metrics of a release as DVC reports them: {file: {key: value}}, nested or already flat.
MetricsByFile = Mapping[str, Mapping[str, Any]]


def read_metrics_file(path: Path, *, root: Path | None = None) -> dict[str, float]:
    """The numeric metrics of a file, ``{"accuracy": 0.95, "loss.train": 0.1}``.

    Text, lists and booleans are left out: a metrics file may record ``model: rf`` next to
    its numbers, and ``true`` is not a measurement. Messages name the file relative to
    ``root`` when given (the project), so they read as ``metrics.json:3: ...``.
    """
    return {
        key: float(value)
        for key, value in load_metrics_file(path, root=root).items()
        if isinstance(value, int | float) and not isinstance(value, bool)
    }


def load_metrics_file(path: Path, *, root: Path | None = None) -> dict[str, Any]:
    """Every leaf of a metrics file, flattened; for callers that must explain a text value."""
    shown = _shown(Path(path), root)
    try:
        text = Path(path).read_text(encoding="utf-8")
    except FileNotFoundError as exc:
        raise ConfigError(
            f"{shown}: metrics file not found; run 'dvc repro' (or 'dvc pull') to produce it"
        ) from exc
    except OSError as exc:
        raise ConfigError(f"{shown}: cannot read the metrics file: {exc.strerror}") from exc
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{shown}: metrics file is not UTF-8 text ({exc.reason})") from exc
    data = _parse(text, Path(path).suffix.lower(), shown)
    if data is None:  # an empty YAML file: no metrics yet, not an error
        return {}
    if not isinstance(data, Mapping):
        raise ConfigError(
            f"{shown}: not a metrics file: expected key: value pairs at the top level, "
            f"found {_kind(data)}"
        )
    return flatten_metrics(data)


def flatten_metrics(values: Mapping[Any, Any], prefix: str = "") -> dict[str, Any]:
    """``{"loss": {"train": 0.1}}`` -> ``{"loss.train": 0.1}``; flat input comes back as is."""
    flat: dict[str, Any] = {}
    for key, value in values.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping):
            flat.update(flatten_metrics(value, name + "."))
        else:
            flat[name] = value
    return flat


def find_metric(
    metrics: MetricsByFile, metric: str, *, file: str | None, owner: str
) -> tuple[str, float]:
    """The file that holds ``metric`` and its value (NaN stays NaN for the caller to judge).

    Raises ConfigError, its line starting with ``owner`` (``gate accuracy-floor``), when the
    metric is nowhere, in more than one file (``file`` then says which), or not a number.
    """
    files = {name: flatten_metrics(values) for name, values in metrics.items()}
    if not files:
        raise ConfigError(
            f"{owner}: metric {metric!r} not found: the release has no metrics files "
            "(declare one under metrics: in dvc.yaml)"
        )
    search = files
    if file is not None:
        search = {name: values for name, values in files.items() if same_file(name, file)}
        if not search:
            raise ConfigError(
                f"{owner}: file {file!r} is not a metrics file of the release "
                f"(has: {_listing(list(files))})"
            )
    hits = [(name, values[metric]) for name, values in search.items() if metric in values]
    if not hits:
        keys = sorted({key for values in search.values() for key in values})
        raise ConfigError(
            f"{owner}: metric {metric!r} not found in {', '.join(search)} "
            f"(has: {_listing(keys) or 'nothing'})"
        )
    if len(hits) > 1:
        raise ConfigError(
            f"{owner}: metric {metric!r} is in {' and '.join(name for name, _ in hits)}; "
            "say which with file = ..."
        )
    name, value = hits[0]
    # bool is an int in Python, but `true` in a metrics file is no measurement.
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ConfigError(
            f"{owner}: metric {metric!r} in {name} is {value!r}, not a number; "
            "point it at a numeric metric"
        )
    return name, float(value)


def same_file(first: str, second: str) -> bool:
    """``./metrics.json`` and ``metrics.json`` name the same file."""
    return _posix(first) == _posix(second)


def _posix(path: str) -> str:
    return PurePosixPath(path.replace("\\", "/")).as_posix()


def _listing(names: list[str], limit: int = 12) -> str:
    shown = ", ".join(names[:limit])
    return shown if len(names) <= limit else f"{shown} and {len(names) - limit} more"


def _parse(text: str, suffix: str, shown: str) -> Any:
    if suffix == ".json":
        try:
            return json.loads(text)
        except json.JSONDecodeError as exc:
            raise ConfigError(f"{shown}:{exc.lineno}: not valid JSON: {exc.msg}") from exc
    if suffix == ".toml":
        try:
            return tomllib.loads(text)
        except tomllib.TOMLDecodeError as exc:
            # tomllib puts the position at the end of its message; move it to the front.
            match = re.search(r"\s*\(at line (\d+), column \d+\)", str(exc))
            line = f":{match.group(1)}" if match else ""
            reason = str(exc)[: match.start()] if match else str(exc)
            raise ConfigError(f"{shown}{line}: not valid TOML: {reason}") from exc
    try:
        return yaml.safe_load(text)
    except yaml.MarkedYAMLError as exc:
        # problem_mark is where the parser gave up: the line a person should look at.
        mark = exc.problem_mark or exc.context_mark
        line = f":{mark.line + 1}" if mark is not None else ""
        raise ConfigError(f"{shown}{line}: not valid YAML: {exc.problem or exc.context}") from exc
    except yaml.YAMLError as exc:
        raise ConfigError(f"{shown}: not valid YAML: {exc}") from exc


def _kind(data: object) -> str:
    if isinstance(data, list):
        return "a list"
    if isinstance(data, str):
        return "text"
    if isinstance(data, bool):
        return "a boolean"
    if isinstance(data, int | float):
        return "a number"
    return type(data).__name__


def _shown(path: Path, root: Path | None) -> str:
    if root is None:
        return str(path)
    try:
        relative = os.path.relpath(path, root)
    except ValueError:  # another drive on Windows
        return str(path)
    return Path(relative).as_posix() if not relative.startswith("..") else str(path)
