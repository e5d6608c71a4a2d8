"""Crash safety and locks with real processes: relman killed (SIGKILL) at each step boundary
of a promotion, then `status` tells the truth and the next promote finishes or undoes it,
with no orphan `bentoml serve`; and two promotions of one environment at once."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from store.ledger.snapshot import open_promotions
from tests.e2e.served import (
    environments,
    ports_of,
    predict,
    relman,
    relman_json,
    second_release,
    served,
    served_count,
)
from tests.waiting import wait_for

pytestmark = pytest.mark.e2e
__all__ = ["served"]

# Every boundary of the deploy sequence: before acting, after its result was recorded.
BOUNDARIES = [
    "lock:start",
    "lock:done",
    "validate:start",
    "validate:done",
    "switch:start",
    "switch:done",
    "retire:start",
    "retire:done",
]


@pytest.mark.slow
def test_kill_9_at_every_step_boundary_then_status_and_recovery(served: Path) -> None:
    root = served
    first = relman_json(root, "release")
    assert first["_exit"] == 0, first["_stderr"]
    second_release(root)
    tested = relman(root, "--batch", "test")
    assert tested.returncode == 0, tested.stderr
    second = relman_json(root, "status")["services"][0]["candidate"]["release"]
    releases = [first["release"], second]
    dev = ports_of(root)["dev"]

    for index, boundary in enumerate(BOUNDARIES):
        target = releases[(index + 1) % 2]  # the release not live now
        other = releases[index % 2]
        killed = relman(
            root, "--batch", "promote", "iris", "--to", "dev", "--release", target,
            RELMAN_FAILPOINT=boundary,
        )  # fmt: skip
        assert killed.returncode == -9, (boundary, killed.stderr)

        # status tells the truth: the promotion was interrupted (once its intent was
        # recorded: the lock is the intent), and what serves still serves
        status = relman_json(root, "status")["services"][0]
        state = status["environments"]["dev"]
        # The killed relman's promote run: interrupted, never running, closed by the first
        # relman that read the ledger (this status, or the collector running beside it).
        assert [run["status"] for run in status.get("runs", [])] in ([], ["interrupted"])
        run = next(e for e in relman_json(root, "history")["entries"] if e["kind"] == "run")
        assert run["summary"].startswith("promote run #"), (boundary, run)
        assert run["status"] == "interrupted", (boundary, run)
        assert ": interrupted: relman (pid " in run["summary"], (boundary, run)
        if boundary == "lock:start":
            assert (state["state"], state["release"]) == ("live", other), (boundary, state)
        else:
            assert state["state"] == "interrupted", (boundary, state)
            assert "interrupted" in state["note"]
            # and what really answers, whatever the ledger recorded before the kill
            assert state["serving"] in releases, (boundary, state)
        assert predict(dev) == ["setosa", "virginica"], boundary

        # the next promote takes the dead holder's lock over, finishes or undoes, goes on
        redo = relman_json(root, "promote", "iris", "--to", "dev", "--release", target)
        assert redo["_exit"] == 0, (boundary, redo.get("error"), redo["_stderr"])
        recovered = [step for step in redo["steps"] if step["name"] == "recover"]
        if boundary == "lock:start":  # no lock taken: nothing to recover, the run was closed
            assert recovered == [], (boundary, recovered)
        else:
            finished = (
                "completed interrupted"
                if boundary.startswith(("switch:done", "retire"))
                else "undid interrupted"
            )
            assert finished in recovered[0]["detail"], (boundary, recovered)
        state = environments(root)["dev"]
        assert (state["release"], state["state"]) == (target, "live"), (boundary, state)
        assert predict(dev) == ["setosa", "virginica"]
        assert served_count(root) == 1, (boundary, other)
        assert open_promotions(root / ".relman" / "ledger.db") == []


def test_a_second_promotion_at_once_is_refused_with_who_holds_it(served: Path) -> None:
    root = served
    assert relman(root, "--batch", "test").returncode == 0
    ledger = root / ".relman" / "ledger.db"
    first = subprocess.Popen(
        [sys.executable, "-m", "tui", "--project", str(root), "--batch", "promote", "iris",
         "--to", "dev"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**__import__("os").environ, "RELMAN_USER": "bob"},
    )  # fmt: skip

    def first_holds_the_lock() -> bool:
        assert first.poll() is None, first.communicate()
        return ledger.exists() and bool(open_promotions(ledger))

    try:
        wait_for(first_holds_the_lock, "the first promotion to take the lock")
        second = relman(root, "--batch", "promote", "iris", "--to", "dev")
        assert second.returncode == 1
        assert f"dev is being promoted by bob (pid {first.pid}) since" in second.stderr
    finally:
        _out, err = first.communicate(timeout=120)
    assert first.returncode == 0, err
    assert environments(root)["dev"]["state"] == "live"
