"""`relman traffic` against a real `bentoml serve` of the demo: an error burst and a latency
spike applied by the demo service's fault hook, and removed at the end."""

from __future__ import annotations

import json
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from core.targets.proxy_control import current_upstream
from tests.e2e.served import ports_of, processes_of, relman, relman_json, served

pytestmark = pytest.mark.e2e
__all__ = ["served"]  # the fixture, imported for pytest


def traffic(root: Path, monkeypatch: pytest.MonkeyPatch, *args: str) -> dict[str, Any]:
    """``relman --json traffic iris ARGS`` as a user runs it."""
    del monkeypatch
    done = relman_json(root, "traffic", "iris", *args, timeout=60)
    assert done["_exit"] == 0, done["_stderr"]
    return done


def fault_files(root: Path) -> list[Path]:
    return list((root / ".relman/envs/iris/dev/instances").glob("*/faults.json"))


def scraped_500s(root: Path) -> float:
    """500s of /predict on the instance's own /metrics (what the collector scrapes)."""
    address = current_upstream(root / ".relman/envs/iris/dev")
    with urllib.request.urlopen(f"http://{address}/metrics", timeout=10) as answer:
        text = answer.read().decode()
    return sum(
        float(line.rsplit(" ", 1)[1])
        for line in text.splitlines()
        if line.startswith("bentoml_service_request_total{")
        and 'endpoint="/predict"' in line
        and 'http_response_code="500"' in line
    )


def test_error_burst_and_latency_spike_on_a_served_demo(
    served: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = served
    done = relman_json(root, "release")
    assert done["_exit"] == 0, done["_stderr"]

    burst = traffic(
        root, monkeypatch, "--env", "dev", "--rate", "20", "--duration", "3",
        "--inject", "error-burst",
    )  # fmt: skip
    assert burst["ok"] and burst["sent"] == 60
    assert 0 < burst["errors"]["500"] == burst["failed"] < 60, burst["detail"]
    assert burst["succeeded"] == 60 - burst["failed"]
    assert sum(burst["predictions"].values()) == burst["succeeded"]
    assert burst["release"] == done["release"] and burst["rows_from"].startswith("data/iris.csv")
    assert scraped_500s(root) == burst["failed"]  # counted by BentoML like any 500
    assert fault_files(root) == []

    spike = traffic(
        root, monkeypatch, "--env", "dev", "--rate", "20", "--duration", "3",
        "--inject", "latency-spike",
    )  # fmt: skip
    assert spike["failed"] == 0 and spike["succeeded"] == 60
    added = spike["p50_ms"] - burst["p50_ms"]
    assert 0.9 * 250 <= added <= 250 + 100, (burst["detail"], spike["detail"])
    assert fault_files(root) == []

    # without the fault the service answers at once again
    port = ports_of(root)["dev"]
    body = json.dumps({"features": [[5.1, 3.5, 1.4, 0.2]]}).encode()
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}/predict", data=body, headers={"Content-Type": "application/json"}
    )
    with urllib.request.urlopen(request, timeout=10) as answer:
        assert json.loads(answer.read()) == ["setosa"]

    blocked = relman(root, "--batch", "traffic", "iris", "--env", "staging", "--duration", "1")
    assert blocked.returncode == 1
    assert "iris is not deployed in staging; relman release --to staging first" in (blocked.stderr)
    refused = relman(root, "--read-only", "traffic", "iris", "--env", "dev")
    assert refused.returncode == 1 and "read-only" in refused.stderr

    # in the background: it runs until `relman down`, which stops it with the rest
    detached = relman(root, "traffic", "iris", "--env", "dev", "--duration", "0", "--detach")
    assert detached.returncode == 0, detached.stderr
    first = int(detached.stdout.split("(pid ")[1].split(")")[0])
    assert first in [p for p, _ in processes_of(root)]
    # a second background load replaces the first, and says so
    again = relman(root, "traffic", "iris", "--env", "dev", "--duration", "0", "--detach")
    assert again.returncode == 0, again.stderr
    assert f"stopped the background traffic already on iris in dev (pid {first})" in again.stderr
    pid = int(again.stdout.split("(pid ")[1].split(")")[0])
    running = [p for p, _ in processes_of(root)]
    assert pid in running and first not in running
    down = relman(root, "--batch", "down")
    assert "stopped the background traffic" in down.stderr
    assert pid not in [p for p, _ in processes_of(root)]
