"""core/analysis/measurement.py: one measurement over real files -- an access log, two instances'
monitor logs and a metric store holding feedback -- in canary and shadow mode."""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path
from typing import Literal

from core.analysis import CheckResult, measure, verdict
from core.config.model import AnalysisConfig, Project, parse_config
from store.metrics.store import Feedback, MetricStore

T0 = 1_800_000_000.0
TOML = """\
[project]
name = "shop"

[services.iris]
bento = "service:Iris"
model = ["m"]
"""
ALL = ["accuracy", "error-rate", "shadow-agreement", "latency", "prediction-mix"]
ANALYSIS = AnalysisConfig(count=2, min_requests=100, checks=ALL)  # type: ignore[arg-type]
SCHEMA = json.dumps({"columns": [
    {"name": "x", "role": "feature", "type": "numerical"},
    {"name": "prediction", "role": "prediction", "type": "categorical"},
]}) + "\n"  # fmt: skip


def project_at(root: Path, feedback: dict[str, str]) -> Project:
    config_path = root / "relman.toml"
    config_path.write_text(TOML)
    project = Project(root, config_path, parse_config(TOML, config_path))
    if feedback:
        project.state_dir.mkdir()
        with MetricStore.open(project.state_dir / "metrics.db") as store:
            store.add_feedback(
                Feedback("iris", "prod", rid, label, int(T0)) for rid, label in feedback.items()
            )
    return project


def access_log(path: Path, *, canary_role: str, canary_5xx_every: int, canary_ms: float) -> None:
    """300 s at 10 requests a second, every other one the new release's (or mirrored)."""
    with open(path, "w", encoding="utf-8") as handle:
        for i in range(3000):
            t = T0 + i * 0.1
            stable = {"t": t, "status": 500 if i % 200 == 0 else 200, "ms": 20 + i % 7,
                      "role": "stable", "release": "r1"}  # fmt: skip
            handle.write(json.dumps(stable) + "\n")
            if i % 2:
                bad = (i // 2) % canary_5xx_every == 0
                other = {"t": t + 0.01, "status": 503 if bad else 200, "ms": canary_ms + i % 7,
                         "role": canary_role, "release": "r2"}  # fmt: skip
                if canary_role == "shadow":
                    other["agree"] = i % 50 != 1
                handle.write(json.dumps(other) + "\n")


def instance(root: Path, name: str, predictions: list[tuple[str, str]]) -> Path:
    """An instance folder whose monitor logged ``(prediction, request id)`` one a second."""
    folder = root / name
    monitor = folder / "monitoring" / "iris"
    (monitor / "data").mkdir(parents=True)
    (monitor / "schema").mkdir()
    (monitor / "schema" / "schema.1.log").write_text(SCHEMA)
    with open(monitor / "data" / "data.1.log", "w", encoding="utf-8") as handle:
        for i, (prediction, request_id) in enumerate(predictions):
            stamp = datetime.fromtimestamp(T0 - 100 + i).isoformat()
            row = {"x": 1.0, "prediction": prediction, "timestamp": stamp,
                   "request_id": request_id, "trace_id": "0"}  # fmt: skip
            handle.write(json.dumps(row) + "\n")
    return folder


def rows(prefix: str, classes: str) -> list[tuple[str, str]]:
    return [(classes[i % len(classes)], f"{prefix}{i}") for i in range(500)]


def run(
    project: Project, log: Path, folders: dict[str, Path], mode: Literal["canary", "shadow"]
) -> list[CheckResult]:
    """Measure [T0, T0 + 300) of r2 against r1."""
    return measure(
        project, "iris", "prod", ANALYSIS, since=T0, until=T0 + 300, stable="r1", canary="r2",
        mode=mode, access_log=log, instance_folders=folders,
    )  # fmt: skip


def test_a_bad_canary_fails_in_canary_mode(tmp_path: Path) -> None:
    feedback = {f"s{i}": "ab"[i % 2] for i in range(500)} | {
        f"c{i}": "ab"[i % 2] for i in range(500)
    }
    project = project_at(tmp_path, feedback)
    log = tmp_path / "access.log"
    access_log(log, canary_role="canary", canary_5xx_every=10, canary_ms=80.0)
    folders = {
        "r1": instance(tmp_path, "r1-9001", rows("s", "ab")),
        "r2": instance(tmp_path, "r2-9002", rows("c", "a")),
    }
    results = run(project, log, folders, "canary")
    assert [r.check for r in results] == ["accuracy", "error-rate", "latency", "prediction-mix"]
    by_check = {r.check: r for r in results}
    assert by_check["error-rate"].verdict == "fail"
    assert by_check["error-rate"].canary == "10.0% of 1500"
    assert by_check["error-rate"].stable == "0.5% of 3000"
    assert by_check["latency"].verdict == "fail"
    assert by_check["latency"].detail.startswith("p95 86 ms vs stable 26 ms (x3.31 > x1.25")
    # 300 rows of each in the window (the log starts 100 s before it, one row a second)
    assert by_check["prediction-mix"].verdict == "fail"
    assert by_check["prediction-mix"].canary == "a 100.0% of 300"
    assert by_check["accuracy"].verdict == "fail"
    assert by_check["accuracy"].detail.startswith(
        "accuracy 50.0% of 300 labelled vs stable 100.0% of 300 labelled"
    )
    assert verdict(results) == "fail"


def test_a_healthy_shadow_passes_in_shadow_mode(tmp_path: Path) -> None:
    project = project_at(tmp_path, {f"s{i}": "ab"[i % 2] for i in range(500)})
    log = tmp_path / "access.log"
    access_log(log, canary_role="shadow", canary_5xx_every=10_000, canary_ms=20.0)
    folders = {
        "r1": instance(tmp_path, "r1-9001", rows("s", "ab")),
        "r2": instance(tmp_path, "r2-9002", rows("m", "ba")),
    }
    results = run(project, log, folders, "shadow")
    assert [r.check for r in results] == ALL
    by_check = {r.check: r for r in results}
    assert by_check["shadow-agreement"].detail == (
        "96.0% of 1500 mirrored answers agree (>= 95.0%): pass"
    )
    for check in ("error-rate", "latency", "prediction-mix"):
        assert by_check[check].verdict == "pass", by_check[check].detail
    # The shadow's own request ids have no feedback: too few labels to compare.
    assert by_check["accuracy"].verdict == "inconclusive"
    assert "fewer than 100 labelled requests on the new release" in by_check["accuracy"].detail
    assert verdict(results) == "inconclusive"


def test_without_instance_folders_store_or_log(tmp_path: Path) -> None:
    project = project_at(tmp_path, {})
    folders = {"r1": instance(tmp_path, "r1-9001", rows("s", "ab"))}
    results = run(project, tmp_path / "access.log", folders, "canary")
    assert [r.verdict for r in results] == ["inconclusive"] * 4
    assert results[0].detail == (
        "no instance folder for release r2: no predictions to compare: inconclusive"
    )
    assert "fewer than 100 requests on the stable and the new release" in results[1].detail
    assert not (project.state_dir / "metrics.db").exists()  # reads never create the store
