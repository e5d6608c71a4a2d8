"""What the real `relman --json` prints on a real demo project fits docs/schemas/.

One demo per module: its unit suite run and recorded by `relman test` (so history has a
release and a run), and a few minutes of rollups and two alerts written into its metric
store through the store's own API, as the collector writes them (so `metrics` and
`alerts` have entries to check, without serving a Bento).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from core.alerts.alert_state import rollback_command
from core.config.model import load_project
from core.monitoring.collector_process import metrics_path
from store.metrics.alerts import AlertChange
from store.metrics.store import MetricStore, Rollup
from tests.contract.schemas import problems
from tests.e2e.conftest import isolate_user

pytestmark = pytest.mark.e2e


def relman(root: Path, *args: str) -> tuple[int, Any]:
    """Run the real relman with ``--json``: its exit code and the document it printed."""
    env = dict(os.environ)
    env["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), env.get("PATH", "")])
    done = subprocess.run(
        [sys.executable, "-m", "tui", "--project", str(root), "--json", *args],
        capture_output=True,
        text=True,
        env=env,
        check=False,
        timeout=300,
    )
    assert done.stdout.strip(), f"relman {' '.join(args)} printed nothing: {done.stderr}"
    return done.returncode, json.loads(done.stdout)


def _fill_metric_store(root: Path, release: str) -> None:
    """Five minutes of dev (the oldest without requests: no latency), and two alerts: one
    that fired and resolved, one firing."""
    project = load_project(root)
    now = int(time.time()) // 60 * 60
    rollups = [
        Rollup("iris", "dev", now - 60 * k, release, 0.0, 0.0, 0.0, 0.0, None, None, None, 0.0)
        if k == 5
        else Rollup(
            "iris", "dev", now - 60 * k, release, 120.0, 1.0, 2.0, 1 / 120, 12.0, 30.0, 640.0, 1.0
        )
        for k in range(5, 0, -1)
    ]

    def change(
        rule: str, kind: str, minutes_ago: int, state: str, value: float, detail: str
    ) -> AlertChange:
        rollback = rollback_command("iris", "dev", rule, detail)
        return AlertChange(
            rule,
            kind,
            "iris",
            "dev",
            now - 60 * minutes_ago,
            state,
            value,
            detail,
            release,
            rollback,
        )

    changes = [
        change("error_rate", "sudden", 4, "firing", 0.08, "error rate 8.0% > 5.0% for 2 min"),
        change(
            "error_rate", "sudden", 2, "resolved", 0.0, "error rate 0.0% <= 5.0%; clear for 2 min"
        ),
        change("latency_p99", "sudden", 1, "firing", 640.0, "p99 640 ms > 500 ms for 2 min"),
    ]
    with MetricStore.open(metrics_path(project)) as store:
        store.record_minute(rollups, changes)


@pytest.fixture(scope="module")
def outputs(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, tuple[int, Any]]]:
    """``{command: (exit code, document)}`` of the real relman on one demo project."""
    from core.scaffold.demo import create_demo

    base = tmp_path_factory.mktemp("contract")
    with pytest.MonkeyPatch.context() as mp:
        isolate_user(mp, base)
        root = create_demo(base / "iris-demo")
        found = {"test": relman(root, "test", "unit")}
        _fill_metric_store(root, found["test"][1]["release"])
        found["gate"] = relman(root, "gate", "iris", "--env", "dev")
        found["status"] = relman(root, "status")
        found["history"] = relman(root, "history")
        found["metrics"] = relman(root, "metrics", "iris", "--env", "dev", "--range", "1h")
        found["alerts"] = relman(root, "alerts")
        yield found


def test_status_fits_its_schema(outputs: dict[str, tuple[int, Any]]) -> None:
    code, document = outputs["status"]
    assert code == 0
    assert document["services"][0]["candidate"]["data"], "no data artifact to check"
    assert problems("status.json", document) == []


def test_history_fits_its_schema(outputs: dict[str, tuple[int, Any]]) -> None:
    code, document = outputs["history"]
    assert code == 0
    assert {"release", "run"} <= {entry["kind"] for entry in document["entries"]}
    assert problems("history.json", document) == []


def test_metrics_fit_their_schema_null_latencies_included(
    outputs: dict[str, tuple[int, Any]],
) -> None:
    code, document = outputs["metrics"]
    assert code == 0
    assert len(document["points"]) == 5
    assert document["points"][0]["p99_ms"] is None and document["points"][-1]["p99_ms"] == 640.0
    assert problems("metrics.json", document) == []


def test_alerts_fit_their_schema(outputs: dict[str, tuple[int, Any]]) -> None:
    code, document = outputs["alerts"]
    assert code == 0
    assert [(a["name"], a["state"]) for a in document["alerts"]] == [
        ("latency_p99", "firing"),
        ("error_rate", "resolved"),
    ]
    assert document["ok"] is False and document["firing"] == 1
    assert problems("alerts.json", document) == []


def test_test_run_fits_the_test_and_run_schemas(outputs: dict[str, tuple[int, Any]]) -> None:
    code, document = outputs["test"]
    assert code == 0 and document["recorded"] is True
    assert [step["name"] for step in document["steps"]] == ["unit"]
    assert problems("test.json", document) == []
    assert problems("run.json", document) == []


def test_a_blocked_gate_fits_the_gate_and_run_schemas(outputs: dict[str, tuple[int, Any]]) -> None:
    code, document = outputs["gate"]
    assert code == 1 and document["ok"] is False  # the data suite never ran
    assert {step["status"] for step in document["steps"]} == {"passed", "failed", "skipped"}
    assert problems("gate.json", document) == []
    assert problems("run.json", document) == []
