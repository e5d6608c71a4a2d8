"""Canary rollouts with real processes: the demo served on dev behind relman's proxy, load
from `relman traffic`, a healthy change promoted by its analysis, a change that answers
300 ms slower aborted back to the stable release with no failed request, and relman killed
(SIGKILL) at the rollout's step boundaries, after which `status` tells the truth and the
next promote completes from there."""

from __future__ import annotations

import contextlib
import json
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from core.host.processes import end_processes
from tests.e2e.served import (
    environments,
    git,
    ports_of,
    predict,
    relman,
    relman_json,
    second_release,
    served,
)
from tests.waiting import wait_for

pytestmark = pytest.mark.e2e
__all__ = ["served"]

# Quick steps for a test: about a minute of rollout at 10 requests a second (the latency
# check needs about 120 requests a side to bound the stable's p95 at this confidence).
ROLLOUT = """
[environments.dev.rollout]
strategy = "canary"
steps = [ { weight = 50, pause = "2s" }, { analysis = "quick" },
          { weight = 80 }, { analysis = "quick" } ]

[analysis.quick]
interval = "15s"
count = 2
min_requests = 50
checks = ["error-rate", "latency", "prediction-mix"]
# Both releases share two loaded cores here: a healthy canary must not fail on noise, and a
# change 300 ms slower (x20 and more) is still far beyond this.
latency_max_ratio = 2.0
"""

SLOW = """        if scope["type"] == "http" and scope["method"] == "POST":
            await asyncio.sleep(0.3)  # a change that makes every answer 300 ms slower
        await self.app(scope, receive, send)
"""


# For the crash tests, where what matters is the steps, not the verdict: seconds a rollout.
# At 80% the stable side sees 2 requests a second, fewer on a loaded machine: 5 requests
# and up to four 3 s looks (two more while inconclusive) keep the verdict off the clock.
QUICK_ROLLOUT = (
    ROLLOUT.replace('interval = "15s"', 'interval = "3s"')
    .replace("min_requests = 50", "min_requests = 5")
    .replace('checks = ["error-rate", "latency", "prediction-mix"]', 'checks = ["error-rate"]')
)


def configure(root: Path, rollout: str = ROLLOUT) -> None:
    config = root / "relman.toml"
    config.write_text(config.read_text() + rollout)
    git(root, "commit", "-qam", "canary rollouts in dev")


@contextlib.contextmanager
def traffic(root: Path, rate: int = 10) -> Iterator[subprocess.Popen[str]]:
    """`relman traffic` on dev in the background for the block; stopped by pid after."""
    process = subprocess.Popen(
        [sys.executable, "-m", "tui", "--project", str(root), "--batch", "--json", "traffic",
         "iris", "--env", "dev", "--rate", str(rate), "--duration", "900"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "RELMAN_USER": "alice"},
    )  # fmt: skip
    try:
        yield process
    finally:
        end_processes([process.pid], 10.0)
        process.communicate(timeout=30)


def access_records(root: Path) -> list[dict]:
    folder = root / ".relman/envs/iris/dev"
    records = []
    for name in ("access.log.1", "access.log"):
        path = folder / name
        if path.exists():
            for line in path.read_text().splitlines():
                with contextlib.suppress(ValueError):
                    records.append(json.loads(line))
    return records


def served_release(port: int) -> str | None:
    """The release that answers /metrics at the environment's own address: BentoML labels
    its series with the Bento's version, which relman sets to the release id."""
    import urllib.request

    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as answer:
        text = answer.read().decode()
    found = re.search(r'service_version="([^"]+)"', text)
    return found.group(1) if found else None


@pytest.mark.slow
@pytest.mark.timeout(900)
def test_healthy_canary_promoted_and_slow_canary_aborted(served: Path) -> None:
    root = served
    configure(root)
    first = relman_json(root, "release", "--to", "dev")
    assert first["_exit"] == 0, first["_stderr"]
    dev = ports_of(root)["dev"]
    second_release(root)
    with traffic(root):
        wait_for(lambda: access_records(root), "the first requests of the traffic")
        healthy = relman_json(root, "release", "--to", "dev", "--strategy", "canary")
        assert healthy["_exit"] == 0, healthy["_stderr"]
        names = [step["name"] for step in healthy["steps"]]
        assert "dev: weight 50%" in names and "dev: analysis quick at 50%" in names, names
        status = relman_json(root, "rollout", "status", "iris", "--env", "dev")
        assert status["phase"] == "promoted", status
        assert status["canary"] == healthy["release"]
        assert status["stable"] == first["release"]
        assert {check["check"] for check in status["analysis"]} >= {"error-rate", "latency"}
        assert all(check["verdict"] == "pass" for check in status["analysis"]), status
        assert environments(root)["dev"]["release"] == healthy["release"]

        # A committed change that answers 300 ms slower: aborted, the stable release serves.
        service = root / "service.py"
        text = service.read_text()
        service.write_text(text.replace("        await self.app(scope, receive, send)\n", SLOW))
        git(root, "commit", "-qam", "slower")
        before = len(access_records(root))
        slow = relman_json(root, "release", "--to", "dev", "--strategy", "canary")
        assert slow["_exit"] == 1, slow["_stderr"]
        assert "aborted by analysis" in slow["error"], slow["error"]
        assert "latency" in slow["error"] or "p95" in slow["error"], slow["error"]
        status = relman_json(root, "rollout", "status", "iris", "--env", "dev")
        assert status["phase"] == "aborted", status
        failing = [c for c in status["analysis"] if c["verdict"] == "fail"]
        assert failing and failing[0]["check"] == "latency", status["analysis"]
        assert environments(root)["dev"]["release"] == healthy["release"]
        assert served_release(dev) == healthy["release"]
        assert predict(dev) == ["setosa", "virginica"]
    during = access_records(root)[before:]
    stable_failures = [
        r for r in during if r.get("role") == "stable" and int(r.get("status", 0)) >= 500
    ]
    assert not stable_failures, stable_failures[:3]
    assert any(r.get("role") == "canary" for r in during)


# Boundaries of a canary rollout: before acting, and after the result was recorded.
BOUNDARIES = [
    "weight 50%:done",
    "analysis quick at 50%:start",
    "weight 80%:done",
    "promote:done",
]


@pytest.mark.slow
@pytest.mark.timeout(900)
def test_kill_9_at_rollout_steps_then_status_and_next_promote(served: Path) -> None:
    root = served
    configure(root, QUICK_ROLLOUT)
    first = relman_json(root, "release", "--to", "dev")
    assert first["_exit"] == 0, first["_stderr"]
    dev = ports_of(root)["dev"]
    second_release(root)
    tested = relman(root, "--batch", "test")
    assert tested.returncode == 0, tested.stderr
    built = relman(root, "--batch", "build", "iris")
    assert built.returncode == 0, built.stderr
    second = relman_json(root, "status")["services"][0]["candidate"]["release"]
    live = first["release"]
    with traffic(root):
        for boundary in BOUNDARIES:
            target = second if live == first["release"] else first["release"]
            killed = relman(
                root, "--batch", "promote", "iris", "--to", "dev", "--release", target,
                RELMAN_FAILPOINT=boundary,
            )  # fmt: skip
            assert killed.returncode == -9, (boundary, killed.stderr)
            state = environments(root)["dev"]
            assert state["state"] == "interrupted", (boundary, state)
            rollout = state.get("rollout")
            assert rollout and rollout["interrupted"], (boundary, state)
            shown = relman_json(root, "rollout", "status", "iris", "--env", "dev")
            assert shown["phase"] in ("progressing", "paused", "promoted"), (boundary, shown)
            if shown["phase"] != "promoted":
                assert "interrupted" in shown["detail"], (boundary, shown)
            assert predict(dev) == ["setosa", "virginica"], boundary

            again = relman_json(root, "promote", "iris", "--to", "dev", "--release", target)
            assert again["_exit"] == 0, (boundary, again["_stderr"])
            names = [step["name"] for step in again["steps"]]
            assert "recover" in names, (boundary, names)
            assert environments(root)["dev"]["release"] == target, boundary
            assert served_release(dev) == target, boundary
            done = relman_json(root, "rollout", "status", "iris", "--env", "dev")
            assert done["phase"] in ("promoted", "aborted"), (boundary, done)
            live = target
    # Only the live release's server and the proxy are left: no orphan from the kills.
    wait_for(
        lambda: sum(1 for p in (root / ".relman/envs/iris/dev/instances").glob("*/pid")
                    if _alive(p)) == 1,
        "one instance left serving dev",
    )  # fmt: skip


def _alive(pid_file: Path) -> bool:
    from core.host.processes import pid_alive, read_pid

    pid = read_pid(pid_file)
    return pid is not None and pid_alive(pid)
