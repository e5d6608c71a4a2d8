"""A canary rollout in a real terminal at 80x24 (tmux, the real ``relman`` on a copy of the
demo; see tests/tui/test_tmux.py): the overview says ``canary 20%`` in dev's row; ``R`` opens
the pane, whose releases, steps and analysis checks each fit one line; ``a`` asks first,
saying what aborting does and the command that does the same.

What a relman driving the rollout records is written through the ledger's own API
(``Ledger.begin_rollout``, ``update_rollout``, a run's steps), as tests/tui/test_tmux_oncall.py
writes what a killed promotion leaves: two real releases of the demo (the second a commit
that changes service.py), dev live with the first, a promotion of the second held by this
test's process (alive: the driver), and its rollout at 20% with the first analysis running.
Building and serving two Bentos would add minutes and show nothing more of the pane.
"""

from __future__ import annotations

import os
import re
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from core.config.model import load_project
from core.delivery.rollout_plan import plan_for
from core.host.processes import this_host
from core.ledger.releases import open_ledger, record_candidate
from core.lineage.candidate import candidates
from tests.e2e.conftest import demo  # noqa: F401  (the demo project, once per module)
from tests.e2e.served import git, served  # noqa: F401  (a private copy, cleaned up after)
from tests.tui.test_tmux import (
    EXITED,
    TMUX,
    Terminal,
    overview_loaded,
    relman_command,
    terminal,  # noqa: F401  (the tmux server of each test)
)

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.skipif(TMUX is None, reason="tmux is not installed"),
]

LATENCY = "p95 412 ms vs stable 31 ms (x13.3 > x1.5): fail"


def record(root: Path) -> str:
    """Record the demo's candidate as a release; its id."""
    project = load_project(root)
    service = project.config.services["iris"]
    found = candidates(root, {"iris": (list(service.model), list(service.data))})["iris"]
    with open_ledger(project, read_only=False) as ledger:
        return record_candidate(ledger, project, "iris", found).id


@pytest.fixture
def rollout_in_dev(served: Path) -> Iterator[tuple[str, str]]:  # noqa: F811
    """dev live with the first release and a canary rollout of the second at 20% (stable and
    canary ids); afterwards the rollout is aborted and its promotion undone, as its driver
    would leave them, so that `relman down` finds nothing open."""
    project = load_project(served)
    stable = record(served)
    with open_ledger(project, read_only=False) as ledger:
        port = project.config.environments["dev"].port
        ledger.set_environment_state(
            "iris", "dev", "live", release_id=stable, url=f"http://127.0.0.1:{port}"
        )
    service = served / "service.py"
    service.write_text(service.read_text() + "\n# the canary's change\n")
    git(served, "commit", "-qam", "a change the canary serves")
    canary = record(served)
    assert canary != stable
    plan = plan_for(project, "dev", "canary")
    with open_ledger(project, read_only=False) as ledger:
        promotion = ledger.begin_promotion("iris", "dev", canary, pid=os.getpid(), host=this_host())
        run = ledger.start_run("promote", service="iris", env="dev", release_id=canary)
        rollout = ledger.begin_rollout(
            "iris",
            "dev",
            promotion_id=promotion.id,
            run_id=run.id,
            strategy="canary",
            stable=stable,
            canary=canary,
            plan=[step.to_json() for step in plan],
            pid=os.getpid(),
            host=this_host(),
        )
        ledger.record_step(
            run.id, plan[0].name, "passed", seconds=0.4, detail="20% of requests routed to it"
        )
        ledger.record_step(run.id, plan[1].name, "passed", seconds=30.0, detail="waited 30 s")
        ledger.record_step(
            run.id,
            plan[2].name,
            "running",
            detail="measurement 1 of 2; 1 failed so far over 1200 stable and 300 canary requests",
        )
        now = time.time()
        ledger.update_rollout(
            rollout.id,
            step=2,
            weight=20,
            detail="analysis default: measuring the canary against the stable release",
            analysis_append=[
                {
                    "check": "error-rate",
                    "stable": "0.0% of 1200",
                    "canary": "0.3% of 300",
                    "verdict": "pass",
                    "detail": "0.3% vs 0.0%: not significantly higher (p 0.20 > 0.05): pass",
                    "t": now,
                    "step": 2,
                },
                {
                    "check": "latency",
                    "stable": "p95 31 ms",
                    "canary": "p95 412 ms",
                    "verdict": "fail",
                    "detail": LATENCY,
                    "t": now,
                    "step": 2,
                },
            ],
        )
    try:
        yield stable, canary
    finally:
        with open_ledger(project, read_only=False) as ledger:
            ledger.update_rollout(rollout.id, phase="aborted", weight=0, detail="test over")
            ledger.finish_promotion(promotion.id, "undone", reason="test over")
            ledger.finish_run(run.id, "failed", reason="test over")


def test_the_rollout_pane_at_80x24(
    served: Path,  # noqa: F811
    rollout_in_dev: tuple[str, str],
    terminal: Terminal,  # noqa: F811
) -> None:
    stable, canary = rollout_in_dev
    terminal.start(relman_command(served))

    def rollout_row(screen: str) -> bool:
        return overview_loaded(screen) and bool(
            re.search(r"^\s*iris\s+dev\s.*\scanary 20%\s", screen, re.MULTILINE)
        )

    terminal.wait_for(rollout_row, "canary 20% in dev's row")
    terminal.press("R")  # the selected row: dev
    screen = terminal.wait_for(lambda s: "latency" in s and "Promote now" in s, "the pane")
    lines = screen.splitlines()
    assert len(lines) == 24 and max(map(len, lines)) <= 80, screen
    assert lines[1].strip() == "iris in dev · canary rollout · progressing"
    # The releases as the ledger versions them (the first release recorded, then the next).
    releases = lines[2].strip()
    assert re.fullmatch(
        rf"stable v\S+ \({stable[:7]}\) · canary v\S+ \({canary[:7]}\) at 20% · step 3/\d+"
        r"( · for \S+)?",
        releases,
    ), releases
    steps = [line.split() for line in lines if re.match(r"^\s+(passed|running|pending)\s", line)]
    assert [step[0] for step in steps[:3]] == ["passed", "passed", "running"], screen
    assert steps[2][1:3] == ["analysis", "default"], screen
    assert all(step[0] == "pending" for step in steps[3:]) and len(steps) == 6, screen
    latency = next(line for line in lines if line.lstrip().startswith("latency"))
    assert latency.split()[:8] == ["latency", "p95", "31", "ms", "p95", "412", "ms", "fail"]
    assert latency.rstrip().endswith("…")  # cut to one line, never wrapped
    assert "p Pause/resume" in lines[-1] and "a Abort" in lines[-1]

    terminal.press("a")
    screen = terminal.wait_for(lambda s: "abort the canary rollout" in s, "the confirmation")
    said = " ".join(" ".join(line.strip(" │█") for line in screen.splitlines()).split())
    assert "canary rollout of iris in dev: v" in said and f"({stable[:7]}) serves every" in said
    assert "the canary v" in said and f"({canary[:7]}) is stopped" in said
    assert "rollout abort iris --env dev" in said, screen
    terminal.press("n")
    terminal.wait_for(lambda s: "Promote now" in s and "abort the" not in s, "the pane again")
    terminal.press("Escape")
    terminal.wait_for(rollout_row, "the overview again")
    terminal.press("q")
    assert terminal.wait_for_exit() == f"{EXITED} 0"
