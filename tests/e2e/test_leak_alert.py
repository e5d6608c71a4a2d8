"""A release that leaks from its first request is caught while the load runs (issue 18's
"done when"): the demo released to dev with no earlier history, `relman traffic --rate 20
--inject latency-leak` (+60 ms a minute), and the collector that promote started pages
`latency_trend` with a line that says what it compared. Real time, real processes: the
proxy measures each request, the collector reads its access log, the rules judge each
minute."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from core.host.processes import end_processes
from tests.e2e.served import relman_json, served
from tests.waiting import wait_for

pytestmark = pytest.mark.e2e
__all__ = ["served"]


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_a_leak_from_the_first_request_pages_before_the_load_ends(served: Path) -> None:
    root = served
    done = relman_json(root, "release", "--to", "dev")
    assert done["_exit"] == 0, done["_stderr"]
    load = subprocess.Popen(
        [sys.executable, "-m", "tui", "--project", str(root), "--batch", "traffic", "iris",
         "--env", "dev", "--rate", "20", "--duration", "240", "--inject", "latency-leak"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "RELMAN_USER": "alice"},
    )  # fmt: skip
    try:

        def trend_fired() -> dict | None:
            alerts = relman_json(root, "alerts")["alerts"]
            found = [a for a in alerts if a["name"] == "latency_trend" and a["state"] == "firing"]
            return found[0] if found else None

        # The load lasts 240 s; the alert must come before it ends.
        alert = wait_for(trend_fired, "latency_trend to fire while the leak runs", timeout=240)
        assert load.poll() is None, "the load ended before the alert"
    finally:
        end_processes([load.pid], 10.0)
        load.communicate(timeout=30)
    assert alert["kind"] == "trend" and alert["env"] == "dev"
    assert "rising" in alert["detail"] and "ms/min since the release" in alert["detail"]
    assert "p < 0.001" in alert["detail"]
    assert alert["rollback"].startswith("relman rollback iris --env dev")
    # The minutes on the screen come from the proxy's own measurements.
    points = relman_json(root, "metrics", "iris", "--env", "dev", "--range", "10m")["points"]
    assert any(p["latency_source"] == "proxy" for p in points), points
