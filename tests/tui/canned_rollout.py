"""A canary rollout of shop v1.4.0 to prod over v1.3.2 (tests/tui/canned.py), as the engine
documents it (docs/json.md, ``rollout status`` and the status document's per-environment
``rollout``; core/delivery/rollout_control.py and status.py write them): at 20%, the first
analysis running, one check passed, one failed and one inconclusive so far.

``install`` makes core.api's overview carry the rollout on prod's row and ``rollout_status``
answer what ``world.document`` holds (a test changes it to see the pane follow);
``rollout_action`` is recorded in ``world.calls`` and answers as the engine does, refusing a
read-only session with its one line.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any

import pytest

from core import api
from core.api import EnvironmentView, ServiceView
from core.errors import ReadOnlyError
from tests.tui import canned

LATENCY_DETAIL = "p95 412 ms vs stable 31 ms (x13.3 > x1.5): fail"


@dataclass(frozen=True)
class RolloutEnvironmentView(EnvironmentView):
    """EnvironmentView with the status document's ``rollout`` (the engine's own view has
    the field once core gives it; this one has it either way)."""

    rollout: dict[str, Any] | None = None


def summary(
    phase: str = "progressing", weight: int = 20, strategy: str = "canary", **changes: Any
) -> dict[str, Any]:
    """The per-environment ``rollout`` of the status document."""
    return {
        "id": 3,
        "phase": phase,
        "strategy": strategy,
        "weight": weight,
        "stable": canned.PROD,
        "canary": canned.CANDIDATE,
        "canary_version": "v1.4.0",
        "interrupted": False,
        "command": "relman rollout status shop --env prod",
        **changes,
    }


def step(name: str, status: str, seconds: float | None, detail: str) -> dict[str, Any]:
    return {"name": name, "status": status, "seconds": seconds, "detail": detail}


def check(name: str, stable: str, canary: str, verdict: str, detail: str) -> dict[str, Any]:
    return {"check": name, "stable": stable, "canary": canary, "verdict": verdict, "detail": detail}


def document(phase: str = "progressing", **changes: Any) -> dict[str, Any]:
    """``api.rollout_status`` of shop in prod."""
    answer: dict[str, Any] = {
        "ok": True,
        "service": "shop",
        "env": "prod",
        "phase": phase,
        "strategy": "canary",
        "stable": canned.PROD,
        "stable_version": "v1.3.2",
        "canary": canned.CANDIDATE,
        "canary_version": "v1.4.0",
        "weight": 20,
        "step": 2,
        "steps": [
            step("weight 20%", "passed", 0.4, "20% of requests routed to v1.4.0 (a1b2c3d)"),
            step("pause 30s", "passed", 30.0, "waited 30 s"),
            step(
                "analysis default",
                "running",
                41.5,
                "measurement 2 of 2 in 19 s; 1 failed so far (failure limit 0) over 2400 "
                "stable and 260 canary requests",
            ),
            step("weight 50%", "pending", 0.0, ""),
            step("pause 20s", "pending", 0.0, ""),
            step("analysis default", "pending", 0.0, ""),
        ],
        "analysis": [
            check(
                "error-rate",
                "1.0% of 2400",
                "1.2% of 260",
                "pass",
                "1.2% vs 1.0%: not significantly higher (p 0.41 > 0.05): pass",
            ),
            check("latency", "p95 31 ms", "p95 412 ms", "fail", LATENCY_DETAIL),
            check("prediction-mix", "3 classes", "too few", "inconclusive", "PSI needs 50 records"),
        ],
        "detail": "analysis default: measuring the canary against the stable release",
        "since": "2026-11-27T11:58:00+00:00",
        "driver": {"pid": 4121, "host": "build-1", "alive": True},
    }
    answer.update(changes)
    return answer


def aborted() -> dict[str, Any]:
    """The same rollout once its analysis aborted it: the stable release serves again."""
    answer = document("aborted", weight=0, detail=f"latency: {LATENCY_DETAIL}")
    answer["steps"][2] = step("analysis default", "failed", 48.0, f"latency: {LATENCY_DETAIL}")
    answer["driver"] = None
    return answer


@dataclass
class World:
    """What the fakes answer and what they were asked."""

    document: dict[str, Any] = field(default_factory=document)
    rollouts: dict[str, dict[str, Any] | None] = field(default_factory=lambda: {"prod": summary()})
    calls: list[tuple[str, str, str, str, bool]] = field(default_factory=list)

    def overview(self, project: api.Project) -> list[ServiceView]:
        (service,) = canned.overview(project)
        envs = [
            RolloutEnvironmentView(**{**env.__dict__, "rollout": self.rollouts.get(env.name)})
            for env in service.environments
        ]
        return [replace(service, environments=envs)]

    def rollout_status(self, project: api.Project, service: str, env: str) -> dict[str, Any]:
        if env != self.document["env"]:
            return {"ok": True, "service": service, "env": env, "phase": "none", "steps": []}
        return copy.deepcopy(self.document)

    def rollout_action(
        self,
        project: api.Project,
        service: str,
        env: str,
        action: str,
        *,
        read_only: bool,
        log: Callable[[str], None],
    ) -> dict[str, Any]:
        self.calls.append((project.root.name, service, env, action, read_only))
        if read_only:
            raise ReadOnlyError(f"read-only mode: rollout {action} of {service} in {env} refused")
        phase = {"pause": "paused", "resume": "progressing", "abort": "aborted"}.get(
            action, "promoted"
        )
        self.document = document(phase, weight=100 if phase == "promoted" else 20)
        log(f"passed  {action}  rollout {phase}")
        return copy.deepcopy(self.document)


def install(monkeypatch: pytest.MonkeyPatch) -> World:
    """The canned world (tests/tui/canned.py) with a rollout going on in prod."""
    world = World()
    monkeypatch.setattr(api, "overview", world.overview)
    monkeypatch.setattr(api, "rollout_status", world.rollout_status, raising=False)
    monkeypatch.setattr(api, "rollout_action", world.rollout_action, raising=False)
    return world
