"""The logs a served environment writes, as the TUI's log view reads them (api.serve_log,
api.access_log), on a real `bentoml serve` of the demo: the instance that serves dev and its
output, then each request through the proxy as it comes; and `relman traffic --stop` ending
the background load the palette's Start traffic began."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from core import api
from core.targets.proxy_control import current_upstream
from tests.e2e.served import processes_of, relman, relman_json, served
from tests.waiting import wait_for

pytestmark = pytest.mark.e2e
__all__ = ["served"]  # the fixture, imported for pytest


def test_the_logs_of_a_served_environment(served: Path) -> None:
    root = served
    done = relman_json(root, "release")
    assert done["_exit"] == 0, done["_stderr"]
    project = api.load_project(root)

    output = api.serve_log(project, "iris", "dev")
    upstream = current_upstream(root / ".relman/envs/iris/dev")
    assert output.title == f"iris {done['release'][:12]} on {upstream}"
    assert output.path is not None and output.path.endswith("/serve.log")
    assert output.lines, "bentoml serve says nothing on start"

    before = api.access_log(project, "iris", "dev")
    sent = relman(
        root, "--batch", "traffic", "iris", "--env", "dev", "--rate", "5", "--duration", "1"
    )
    assert sent.returncode == 0, sent.stderr

    def new_requests() -> list[dict[str, object]]:
        tail = api.access_log(project, "iris", "dev", after=before.position)
        return [json.loads(line) for line in tail.lines if "/predict" in line]

    # The proxy writes its access log out once a second.
    requests = wait_for(lambda: len(new_requests()) >= 5 and new_requests(), "5 requests logged")
    assert {record["status"] for record in requests} == {200}
    assert {record["upstream"] for record in requests} == {upstream}

    started = relman(root, "traffic", "iris", "--env", "dev", "--duration", "0", "--detach")
    assert started.returncode == 0, started.stderr
    pid = int(started.stdout.split("(pid ")[1].split(")")[0])
    stopped = relman(root, "traffic", "iris", "--env", "dev", "--stop")
    assert stopped.returncode == 0, stopped.stderr
    assert stopped.stdout.strip() == "stopped the background traffic on iris in dev"
    assert pid not in [p for p, _ in processes_of(root)]
